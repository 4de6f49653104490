package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The soak: a pair with auto_failover under a mixed acks=all load for a
// long time (make soak, 30 minutes by default), the primary and the
// standby SIGKILLed in turn and restarted, each node's memory, open
// files, goroutines and disk sampled for trends, and, at the end, a check
// that nothing acknowledged was lost.

// The soak's three topics, by index.
const (
	soakPlain     = iota // keeps everything: every acked id must be in it
	soakCompact          // cleanup.policy=compact: the latest acked value of every key must be in it
	soakRetention        // small retention: segments deleted under the load; checked for errors only
	soakTopics
)

var soakTopicKinds = [soakTopics]string{"plain", "compact", "retention"}

// SoakSpec is a soak's parameters.
type SoakSpec struct {
	Duration    time.Duration `json:"duration_ns"`     // the load runs this long
	KillEvery   time.Duration `json:"kill_every_ns"`   // SIGKILL the primary, then the standby, alternately
	SampleEvery time.Duration `json:"sample_every_ns"` // a line of node figures
	ChurnEvery  time.Duration `json:"churn_every_ns"`  // a group member joins or leaves
	// TrendAfter leaves the first samples (start-up, first allocations) out
	// of the trends.
	TrendAfter time.Duration `json:"trend_after_ns"`
	// RestartDelay is the pause between a node's death (or, for the
	// primary, the standby's taking over) and its restart, as systemd's
	// RestartSec (2 s in the shipped unit).
	RestartDelay time.Duration `json:"restart_delay_ns"`
	// FailoverTimeout sets failover_timeout_ms; 0 keeps the config's.
	FailoverTimeout time.Duration `json:"failover_timeout_ns,omitempty"`
	Rate            int           `json:"rate"` // records per second, to each topic
	Size            int           `json:"size"` // value bytes
	Partitions      int32         `json:"partitions"`
	Keys            int           `json:"keys"`        // the compacted topic's keys
	MaxMembers      int           `json:"max_members"` // group members on the plain topic at most
	MetadataMinAge  time.Duration `json:"metadata_min_age_ns"`
}

// DefaultSoakSpec is what make soak runs: 30 minutes, a kill every 3, a
// sample every 30 s, 500 records/s of 512 B to each of the three topics.
func DefaultSoakSpec() SoakSpec {
	return SoakSpec{
		Duration:       30 * time.Minute,
		KillEvery:      3 * time.Minute,
		SampleEvery:    30 * time.Second,
		ChurnEvery:     30 * time.Second,
		TrendAfter:     2 * time.Minute,
		RestartDelay:   2 * time.Second,
		Rate:           500,
		Size:           512,
		Partitions:     4,
		Keys:           200,
		MaxMembers:     3,
		MetadataMinAge: 100 * time.Millisecond,
	}
}

// Validate reports the first thing wrong with s.
func (s SoakSpec) Validate() error {
	switch {
	case s.Duration <= 0 || s.KillEvery <= 0 || s.SampleEvery <= 0 || s.ChurnEvery <= 0:
		return errors.New("cannot soak: duration and the kill, sample and churn intervals must be positive")
	case s.TrendAfter < 0 || s.RestartDelay < 0 || s.FailoverTimeout < 0 || s.MetadataMinAge < 0:
		return errors.New("cannot soak: durations must not be negative")
	case s.Rate <= 0 || s.Rate > 100_000:
		return fmt.Errorf("cannot soak: rate must be between 1 and 100,000 records/s, not %d", s.Rate)
	case s.Size < idHeader:
		return fmt.Errorf("cannot soak: size must be at least %d bytes, not %d", idHeader, s.Size)
	case s.Partitions <= 0 || s.Keys <= 0 || s.MaxMembers <= 0:
		return errors.New("cannot soak: partitions, keys and members must be positive")
	}
	return nil
}

// SoakConfig is what RunSoak starts.
type SoakConfig struct {
	SamsaBin string
	Config   string // config.toml, the pair's configs are made from it
	Spec     SoakSpec
	Lines    io.Writer // samples and events as they happen; nil for none
	KeepLogs string    // when not "", the brokers' logs are copied here
	Set      map[string]any
}

// NodeSample is one node at one sample.
type NodeSample struct {
	Up         bool   `json:"up"`
	Role       string `json:"role,omitempty"` // as the node itself says
	PID        int    `json:"pid,omitempty"`
	RSS        int64  `json:"rss_bytes"`
	FDs        int    `json:"open_fds"`
	Goroutines int    `json:"goroutines"` // go_goroutines from /metrics; -1 when it did not answer
	Disk       int64  `json:"disk_bytes"` // blocks allocated under the data dir
	// DiskOther leaves out the plain topic, which keeps everything by
	// design; what remains should not grow.
	DiskOther int64 `json:"disk_bytes_without_plain"`
}

// SoakSample is both nodes and the load at one time.
type SoakSample struct {
	Elapsed   float64           `json:"elapsed_sec"`
	Nodes     [2]NodeSample     `json:"nodes"`
	Acked     [soakTopics]int64 `json:"acked"`  // plain, compact, retention
	Failed    [soakTopics]int64 `json:"failed"` // the producers gave up on them
	GroupRead int64             `json:"group_read"`
	Members   int               `json:"members"`
}

// SoakEvent is a kill, a failover, a restart, an unexpected exit.
type SoakEvent struct {
	Elapsed float64 `json:"elapsed_sec"`
	What    string  `json:"what"`
}

// SoakTrend is one node's figures over the soak, least squares slopes per
// hour over the samples after TrendAfter while it was up. A restart
// resets RSS (and goroutines, fds), so the slopes over the longest
// stretch of one process are given too.
type SoakTrend struct {
	Samples              int       `json:"samples"`
	RSSPerHour           float64   `json:"rss_bytes_per_hour"`
	FDsPerHour           float64   `json:"fds_per_hour"`
	GoroutinesPerHour    float64   `json:"goroutines_per_hour"`
	DiskPerHour          float64   `json:"disk_bytes_per_hour"`
	DiskOtherPerHour     float64   `json:"disk_bytes_without_plain_per_hour"`
	Restarts             []float64 `json:"restarts_sec"` // elapsed seconds of each restart
	StretchSamples       int       `json:"stretch_samples"`
	StretchSec           float64   `json:"stretch_sec"`
	StretchRSSPerHour    float64   `json:"stretch_rss_bytes_per_hour"`
	StretchFDsPerHour    float64   `json:"stretch_fds_per_hour"`
	StretchGorPerHour    float64   `json:"stretch_goroutines_per_hour"`
	LastRSS, LastDisk    int64     `json:"-"`
	LastFDs, LastGorouts int       `json:"-"`
}

// SoakTopic is what was produced to one topic.
type SoakTopic struct {
	Name         string  `json:"name"`
	Produced     int64   `json:"produced"`
	Acked        int64   `json:"acked"`
	Failed       int64   `json:"failed"`
	Pending      int64   `json:"pending"` // no fate known at the end
	MaxAckWaitMs float64 `json:"max_ack_wait_ms"`
	// LongestStallMs is the longest time between two acks.
	LongestStallMs float64 `json:"longest_stall_ms"`
	FirstError     string  `json:"first_record_error,omitempty"`
}

// SoakReport is the outcome of a soak.
type SoakReport struct {
	Machine    Machine                `json:"machine"`
	Spec       SoakSpec               `json:"spec"`
	ElapsedSec float64                `json:"elapsed_sec"`
	Samples    []SoakSample           `json:"samples"`
	Events     []SoakEvent            `json:"events"`
	Trends     [2]*SoakTrend          `json:"trends"`
	Topics     [soakTopics]*SoakTopic `json:"topics"`

	Kills      [2]int    `json:"kills"`       // primary, standby
	FailoverMs []float64 `json:"failover_ms"` // each primary kill -> the standby leads
	Unexpected int       `json:"unexpected_exits"`

	PlainInLog          int64 `json:"plain_in_log"`
	PlainMissing        int64 `json:"plain_missing"` // acked ids not in the log: lost
	PlainLogDuplicates  int64 `json:"plain_log_duplicates"`
	GroupRead           int64 `json:"group_read"`       // distinct plain ids the group members read
	GroupDuplicates     int64 `json:"group_duplicates"` // reads of ids read before
	MembersStarted      int   `json:"members_started"`
	CompactKeys         int   `json:"compact_keys"`
	CompactKeysBad      int   `json:"compact_keys_bad"` // latest acked value missing: lost
	CompactRecordsInLog int64 `json:"compact_records_in_log"`
	RetentionTrimmed    int   `json:"retention_partitions_trimmed"` // partitions whose log start moved
	RetentionRead       int64 `json:"retention_group_read"`

	ClientErrors map[string]int `json:"client_errors,omitempty"`
	Errors       []string       `json:"errors,omitempty"`
}

// Lost is the acknowledged records (plain) and keys (compacted) lost.
func (r *SoakReport) Lost() int64 { return r.PlainMissing + int64(r.CompactKeysBad) }

// Failed reports whether something acknowledged was lost, a node died
// unbidden, or the soak could not run or check everything.
func (r *SoakReport) Failed() bool { return r.Lost() > 0 || len(r.Errors) > 0 }

// soak is one soak's state. The chaos goroutine alone drives the pair's
// processes; the others see which nodes are up through pid.
type soak struct {
	cfg    SoakConfig
	s      SoakSpec
	pair   *Pair
	topics [soakTopics]string
	leds   [soakTopics]*ledger
	prods  [soakTopics]*pacedProducer
	tally  *errorTally
	start  time.Time
	pid    [2]atomic.Int64 // 0 while the node is down
	http   *http.Client

	groupRead     *readCounter // plain ids the group members read
	retentionRead atomic.Int64

	mu         sync.Mutex // guards the fields below and serializes cfg.Lines
	rep        *SoakReport
	members    int
	errs       []string
	nodeEvents [2][]float64 // restarts
}

func (k *soak) elapsed() float64 { return time.Since(k.start).Seconds() }

// event records and prints an event. Any goroutine.
func (k *soak) event(format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	k.mu.Lock()
	defer k.mu.Unlock()
	e := SoakEvent{Elapsed: k.elapsed(), What: what}
	k.rep.Events = append(k.rep.Events, e)
	if k.cfg.Lines != nil {
		fmt.Fprintf(k.cfg.Lines, "soak %s: %s\n", fmtElapsed(e.Elapsed), what)
	}
}

// fail records an error that fails the soak. Any goroutine.
func (k *soak) fail(err error) {
	k.event("ERROR: %v", err)
	k.mu.Lock()
	k.errs = append(k.errs, fmt.Sprintf("%s: %v", fmtElapsed(k.elapsed()), err))
	k.mu.Unlock()
}

// RunSoak starts a pair, runs the soak for cfg.Spec.Duration, checks for
// loss, stops the pair and removes its files, also when ctx ends or
// something fails. An error means the soak could not start.
func RunSoak(ctx context.Context, cfg SoakConfig) (rep *SoakReport, err error) {
	s := cfg.Spec
	if err := s.Validate(); err != nil {
		return nil, err
	}
	set := map[string]any{
		// Retention and compaction run every few seconds, not every 5 and
		// 15 minutes, so that a soak sees many of them.
		"broker.retention_check_interval_ms": int64(5000),
		"broker.log_cleaner_backoff_ms":      int64(1000),
	}
	for key, v := range cfg.Set {
		set[key] = v
	}
	k := &soak{cfg: cfg, s: s, tally: newErrorTally(), groupRead: &readCounter{},
		http: &http.Client{Timeout: 2 * time.Second},
		rep:  &SoakReport{Machine: ThisMachine(), Spec: s}}
	k.pair, err = StartPair(ctx, PairConfig{
		SamsaBin: cfg.SamsaBin, Config: cfg.Config, AutoFailover: true, FailoverTimeout: s.FailoverTimeout, Admin: true, Set: set,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		var errs []error
		if cfg.KeepLogs != "" {
			errs = append(errs, k.pair.CopyLogs(cfg.KeepLogs))
		}
		if serr := k.pair.Stop(); serr != nil {
			errs = append(errs, fmt.Errorf("stopping the pair: %w", serr))
		}
		switch e := errors.Join(errs...); {
		case e == nil:
		case rep != nil:
			rep.Errors = append(rep.Errors, e.Error())
		default:
			err = errors.Join(err, e)
		}
	}()
	for i, n := range k.pair.Nodes {
		k.pid[i].Store(int64(n.PID()))
	}
	if err := k.createTopics(ctx); err != nil {
		return nil, err
	}
	k.run(ctx)
	return k.rep, nil
}

func (k *soak) createTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.pair.Nodes[0].Addr), kgo.RequestRetries(3))
	if err != nil {
		return fmt.Errorf("cannot create admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	configs := [soakTopics]map[string]*string{
		soakPlain: nil,
		soakCompact: {
			"cleanup.policy":            kadm.StringPtr("compact"),
			"segment.bytes":             kadm.StringPtr("524288"),
			"min.cleanable.dirty.ratio": kadm.StringPtr("0.1"),
		},
		soakRetention: {
			"segment.bytes":   kadm.StringPtr("524288"),
			"retention.bytes": kadm.StringPtr("2097152"),
			"retention.ms":    kadm.StringPtr("60000"),
		},
	}
	for i := range k.topics {
		k.topics[i] = freshTopic("soak-" + soakTopicKinds[i])
		resp, err := adm.CreateTopic(cctx, k.s.Partitions, -1, configs[i], k.topics[i])
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("cannot create topic %s: %w", k.topics[i], err)
		}
	}
	return k.pair.WaitInSync(ctx, k.pair.Nodes[0], k.topics[:]...)
}

// run is the soak itself and its checks; what goes wrong ends up in the
// report's errors.
func (k *soak) run(ctx context.Context) {
	s := k.s
	k.start = time.Now()
	seeds := k.pair.Addrs()
	delivery := 2 * time.Minute
	k.event("pair up: node 1 %s, node 2 %s; topics %s", k.pair.Nodes[0].Addr, k.pair.Nodes[1].Addr, strings.Join(k.topics[:], ", "))

	// Records are produced with a context that outlives the soak by the
	// flush: a record whose context ends while buffered fails.
	recCtx, recCancel := context.WithTimeout(context.WithoutCancel(ctx), s.Duration+2*delivery)
	defer recCancel()
	var clients []*kgo.Client
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for i := range k.prods {
		cl, err := kgo.NewClient(pairProducerOpts(seeds, delivery, s.MetadataMinAge, kgo.WithLogger(k.tally.named("produce: ")))...)
		if err != nil {
			k.fail(fmt.Errorf("cannot create producer: %w", err))
			return
		}
		clients = append(clients, cl)
		k.leds[i] = &ledger{}
		k.prods[i] = &pacedProducer{cl: cl, topic: k.topics[i], rate: s.Rate, size: s.Size, led: k.leds[i], recCtx: recCtx}
		if i == soakCompact {
			k.prods[i].keyed = s.Keys
		}
	}

	quit := make(chan struct{})
	var wg sync.WaitGroup
	stopBackground := sync.OnceFunc(func() {
		close(quit)
		wg.Wait()
	})
	defer stopBackground()
	for _, p := range k.prods {
		p.start()
	}
	stopProducers := sync.OnceFunc(func() {
		for _, p := range k.prods {
			p.stop()
		}
	})
	defer stopProducers()

	// Consumers: the plain topic's group, members joining and leaving;
	// one member reading the retention topic under its deletions.
	consumers := &soakMembers{k: k, quit: quit}
	wg.Add(3)
	go func() { defer wg.Done(); consumers.churn() }()
	go func() { defer wg.Done(); k.readRetention(quit) }()
	go func() { defer wg.Done(); k.sampleLoop(quit) }()

	// Chaos stops first, through its own context, bringing back any node
	// it killed.
	chaosCtx, chaosCancel := context.WithCancel(ctx)
	defer chaosCancel()
	var chaosWG sync.WaitGroup
	chaosWG.Add(1)
	go func() { defer chaosWG.Done(); k.chaos(chaosCtx) }()
	stopChaos := sync.OnceFunc(func() {
		chaosCancel()
		chaosWG.Wait()
	})
	defer stopChaos()

	select {
	case <-ctx.Done():
		k.fail(fmt.Errorf("interrupted: %w", ctx.Err()))
	case <-time.After(s.Duration):
	}
	k.event("%v done: stopping the chaos and the producers", s.Duration)
	stopChaos()
	stopProducers()
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), delivery)
	for i, cl := range clients {
		if err := cl.Flush(fctx); err != nil {
			k.fail(fmt.Errorf("cannot flush the %s producer: %w", soakTopicKinds[i], err))
		}
	}
	fcancel()
	k.sample() // the last
	stopBackground()
	k.rep.ElapsedSec = k.elapsed()

	cctx := context.WithoutCancel(ctx) // the checks run even after an interrupt, bounded
	if leader := k.leader(cctx); leader == nil {
		k.fail(errors.New("no node leads at the end"))
	} else if err := k.pair.WaitInSync(cctx, leader, k.topics[:]...); err != nil {
		k.fail(fmt.Errorf("at the end: %w", err))
	}
	k.check(cctx)
	k.finish()
}

// check reads the plain and compacted topics back from the start and the
// retention topic's log starts, and fills the report's loss figures.
func (k *soak) check(ctx context.Context) {
	rep, seeds := k.rep, k.pair.Addrs()
	// Reading a long soak's topic back takes a while on a small machine.
	within := max(setupTimeout, k.s.Duration/10)

	plain := k.leds[soakPlain]
	sent := plain.counts().sent
	seen := make([]uint16, sent)
	err := scanTopic(ctx, seeds, k.topics[soakPlain], within, func(r *kgo.Record) {
		if id, _, ok := parseSeqValue(r.Value); ok && id < uint64(sent) && seen[id] < 1<<15 {
			seen[id]++
		}
	})
	if err != nil {
		k.fail(fmt.Errorf("cannot check the plain topic: %w", err))
	} else {
		for _, n := range seen {
			if n > 0 {
				rep.PlainInLog++
			}
			if n > 1 {
				rep.PlainLogDuplicates += int64(n - 1)
			}
		}
		for _, id := range plain.ackedIDs() {
			if seen[id] == 0 {
				rep.PlainMissing++
			}
		}
	}

	// Compacted: the latest acked id of each key must be the latest in the
	// log, or older than it (a later record whose ack was lost may be
	// there too).
	want := map[string]uint64{}
	for _, id := range k.leds[soakCompact].ackedIDs() {
		key := fmt.Sprintf("key-%d", id%uint64(k.s.Keys))
		want[key] = max(want[key], id)
	}
	last := map[string]uint64{}
	err = scanTopic(ctx, seeds, k.topics[soakCompact], within, func(r *kgo.Record) {
		rep.CompactRecordsInLog++
		if id, _, ok := parseSeqValue(r.Value); ok {
			last[string(r.Key)] = id
		}
	})
	if err != nil {
		k.fail(fmt.Errorf("cannot check the compacted topic: %w", err))
	} else {
		rep.CompactKeys = len(want)
		for key, id := range want {
			if got, ok := last[key]; !ok || got < id {
				rep.CompactKeysBad++
			}
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		k.fail(fmt.Errorf("cannot create admin client: %w", err))
		return
	}
	defer cl.Close()
	lctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	starts, err := kadm.NewClient(cl).ListStartOffsets(lctx, k.topics[soakRetention])
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		k.fail(fmt.Errorf("cannot list the retention topic's start offsets: %w", err))
		return
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			rep.RetentionTrimmed++
		}
	})
}

// finish fills in the rest of the report: topics, group, trends, errors.
func (k *soak) finish() {
	rep := k.rep
	for i, l := range k.leds {
		c := l.counts()
		t := &SoakTopic{Name: k.topics[i], Produced: c.sent, Acked: c.acked, Failed: c.failed, Pending: c.pending,
			MaxAckWaitMs: ms(time.Duration(k.prods[i].maxAck.Load())), LongestStallMs: ms(time.Duration(k.prods[i].maxGap.Load()))}
		if c.firstErr != nil {
			t.FirstError = c.firstErr.Error()
		}
		rep.Topics[i] = t
	}
	rep.GroupRead, rep.GroupDuplicates = k.groupRead.counts()
	rep.RetentionRead = k.retentionRead.Load()
	rep.Machine.LoadEnd = loadAvg()
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range rep.Trends {
		rep.Trends[i] = soakTrend(rep.Samples, i, k.s.TrendAfter.Seconds(), k.nodeEvents[i])
	}
	rep.ClientErrors = k.tally.snapshot()
	if len(rep.ClientErrors) == 0 {
		rep.ClientErrors = nil
	}
	rep.Errors = append(rep.Errors, k.errs...)
}
