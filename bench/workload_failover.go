package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The failover workload: a pair of samsa processes, an acks=all
// idempotent producer at a steady rate and a group consumer, both given
// both nodes' addresses; after a warm-up the primary is SIGKILLed and the
// standby promoted (by an ElectLeaders request, as `samsactl promote`
// does, or by its own auto_failover); the run measures how long writes
// and reads stop, and checks that every acknowledged record is read.

// Promotion modes of the failover workload.
const (
	PromoteManual = "manual"
	PromoteAuto   = "auto"
)

// FailoverSpec is one failover run's parameters.
type FailoverSpec struct {
	Promote    string `json:"promote"`    // PromoteManual or PromoteAuto
	Rate       int    `json:"rate"`       // records produced per second
	Size       int    `json:"size"`       // value bytes (at least 16: the id and send time)
	Partitions int32  `json:"partitions"` // partitions of the fresh topic
	// MinInsync is the topic's min.insync.replicas; 0 keeps the pair's
	// default (min_insync_replicas, 2 as shipped).
	MinInsync int `json:"min_insync_replicas,omitempty"`
	// FailoverTimeout sets both nodes' failover_timeout_ms; 0 keeps the
	// config's.
	FailoverTimeout time.Duration `json:"failover_timeout_ns,omitempty"`
	// Rejoin restarts the killed node once the standby leads; it comes
	// back as the new primary's standby. Without a standby, acks=all to a
	// topic with min.insync.replicas 2 cannot succeed.
	Rejoin bool          `json:"rejoin"`
	Warmup time.Duration `json:"warmup_ns"` // producing and consuming before the kill
	After  time.Duration `json:"after_ns"`  // producing after writes resumed
	Drain  time.Duration `json:"drain_ns"`  // after the producer stops, for the consumer to read every acked record
	// MetadataMinAge is the clients' kgo.MetadataMinAge: how soon a
	// client may refresh metadata after the last refresh, which bounds how
	// fast it finds the new leader. 0 keeps kgo's default (5 s).
	MetadataMinAge time.Duration `json:"metadata_min_age_ns"`
	// Timeout bounds the run from the first record produced to the end of
	// the drain; setting up (the pair, the topic) has its own bound.
	Timeout time.Duration `json:"timeout_ns"`
}

// DefaultFailoverSpec is a run of about 20 seconds: 2,000 records/s of
// 1 KiB to 4 partitions, 5 s of warm-up, the killed node restarted once
// the standby leads, 5 s of writes after they resume, a 90 s limit.
func DefaultFailoverSpec(promote string) FailoverSpec {
	return FailoverSpec{
		Promote:        promote,
		Rate:           2000,
		Size:           1024,
		Partitions:     4,
		Rejoin:         true,
		Warmup:         5 * time.Second,
		After:          5 * time.Second,
		Drain:          30 * time.Second,
		MetadataMinAge: 100 * time.Millisecond,
		Timeout:        90 * time.Second,
	}
}

// Validate reports the first thing wrong with s.
func (s FailoverSpec) Validate() error {
	switch {
	case s.Promote != PromoteManual && s.Promote != PromoteAuto:
		return fmt.Errorf("cannot run failover: promote %q is not manual or auto", s.Promote)
	case s.Rate <= 0 || s.Rate > 1_000_000:
		return fmt.Errorf("cannot run failover: rate must be between 1 and 1,000,000 records/s, not %d", s.Rate)
	case s.Size < idHeader:
		return fmt.Errorf("cannot run failover: size must be at least %d bytes (the id and send time), not %d", idHeader, s.Size)
	case s.Partitions <= 0:
		return fmt.Errorf("cannot run failover: partitions must be positive, not %d", s.Partitions)
	case s.MinInsync < 0 || s.MinInsync > 2:
		return fmt.Errorf("cannot run failover: min.insync.replicas must be 1 or 2 (0: the pair's default), not %d", s.MinInsync)
	case s.Warmup < 0 || s.After < 0 || s.Drain < 0 || s.FailoverTimeout < 0 || s.MetadataMinAge < 0:
		return errors.New("cannot run failover: durations must not be negative")
	case s.Timeout <= s.Warmup:
		return fmt.Errorf("cannot run failover: the timeout %v leaves no time after the warm-up %v", s.Timeout, s.Warmup)
	}
	return nil
}

// FailoverResult is one failover run. Times are milliseconds from the
// SIGKILL of the primary; -1 means it did not happen within the run.
type FailoverResult struct {
	Spec  FailoverSpec `json:"spec"`
	Topic string       `json:"topic"`
	// Promoted: the standby names itself the leader (Metadata, polled
	// every 20 ms).
	Promoted float64 `json:"promoted_ms"`
	// Rejoined: the killed node, restarted, is back in the ISR of the
	// topic's every partition.
	Rejoined float64 `json:"rejoined_ms"`
	// Writes: the first produce request the new primary acknowledged.
	Writes float64 `json:"writes_resumed_ms"`
	// Reads: the first records the consumer fetched from the new primary.
	Reads float64 `json:"reads_resumed_ms"`
	// PostKillRead: the first record produced after the kill that the
	// consumer received.
	PostKillRead float64 `json:"post_kill_read_ms"`
	// MaxAckWait is the longest any acknowledged record waited for its
	// ack, from its produce call.
	MaxAckWait float64 `json:"max_ack_wait_ms"`

	Produced        int64 `json:"produced"`          // records handed to the producer
	Acked           int64 `json:"acked"`             // acknowledged
	AckedBeforeKill int64 `json:"acked_before_kill"` // of which before the kill
	Failed          int64 `json:"failed"`            // the producer gave up on them
	Pending         int64 `json:"pending"`           // no fate known when the run ended
	Consumed        int64 `json:"consumed"`          // distinct ids the group consumer read
	Lost            int64 `json:"lost"`              // acknowledged and never read by the group consumer
	Duplicates      int64 `json:"duplicates"`        // reads by the group consumer of ids it had read before
	// LogMissing and LogDuplicates are from reading the topic from the
	// start after the run: acknowledged ids not in the log, ids in it more
	// than once (an idempotent producer's retry written twice).
	LogMissing    int64 `json:"log_missing"`
	LogDuplicates int64 `json:"log_duplicates"`
	// ClientErrors are the errors the clients' logs reported, by kind,
	// "produce: " or "consume: " first.
	ClientErrors map[string]int `json:"client_errors,omitempty"`
	FirstError   string         `json:"first_record_error,omitempty"`
	Error        string         `json:"error,omitempty"` // why the run failed or could not check everything
}

// Bad reports whether the run lost an acknowledged record or could not
// finish its checks.
func (r *FailoverResult) Bad() bool {
	return r.Lost > 0 || r.LogMissing > 0 || r.Error != ""
}

// FailoverConfig is what RunFailover starts.
type FailoverConfig struct {
	SamsaBin string
	Config   string // config.toml, the pair's configs are made from it
	Spec     FailoverSpec
	Progress io.Writer // nil for none
	KeepLogs string    // when not "", the brokers' logs are copied here
	// Set overrides keys of the pair's configs (PairConfig.Set).
	Set map[string]any
}

// failoverRun is one run's state, shared by its goroutines.
type failoverRun struct {
	cfg    FailoverConfig
	s      FailoverSpec
	pair   *Pair
	topic  string
	led    *ledger
	tally  *errorTally
	killAt atomic.Int64 // unix ns of the SIGKILL, 0 before
	// First events after the kill, unix ns, 0 before.
	writesAt, readsAt, postKillAt atomic.Int64
	res                           *FailoverResult
	outMu                         sync.Mutex // serializes writes to cfg.Progress
}

// logf writes a progress line. Any goroutine.
func (f *failoverRun) logf(format string, args ...any) {
	if f.cfg.Progress != nil {
		f.outMu.Lock()
		defer f.outMu.Unlock()
		fmt.Fprintf(f.cfg.Progress, "  failover %s: "+format+"\n", append([]any{f.s.Promote}, args...)...)
	}
}

// sinceKill is the time from the kill to at (unix ns) in ms, or -1.
func (f *failoverRun) sinceKill(at int64) float64 {
	if at == 0 || f.killAt.Load() == 0 {
		return -1
	}
	return ms(time.Duration(at - f.killAt.Load()))
}

// newPrimaryHooks notes, after the kill, the first batch node 2 (the
// standby, promoted) acknowledged and the first one read from it.
type newPrimaryHooks struct{ f *failoverRun }

func (h newPrimaryHooks) OnProduceBatchWritten(meta kgo.BrokerMetadata, _ string, _ int32, _ kgo.ProduceBatchMetrics) {
	if meta.NodeID == 2 && h.f.killAt.Load() != 0 {
		h.f.writesAt.CompareAndSwap(0, time.Now().UnixNano())
	}
}

func (h newPrimaryHooks) OnFetchBatchRead(meta kgo.BrokerMetadata, _ string, _ int32, _ kgo.FetchBatchMetrics) {
	if meta.NodeID == 2 && h.f.killAt.Load() != 0 {
		h.f.readsAt.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// RunFailover starts a pair, runs one failover, stops the pair and removes
// its files, also when ctx ends or the run fails. A run that started
// producing returns its result (with Error set if it could not finish); an
// error means nothing was measured.
func RunFailover(ctx context.Context, cfg FailoverConfig) (res *FailoverResult, err error) {
	s := cfg.Spec
	if err := s.Validate(); err != nil {
		return nil, err
	}
	f := &failoverRun{cfg: cfg, s: s, led: &ledger{}, tally: newErrorTally(),
		res: &FailoverResult{Spec: s, Promoted: -1, Rejoined: -1, Writes: -1, Reads: -1, PostKillRead: -1}}
	f.pair, err = StartPair(ctx, PairConfig{
		SamsaBin:        cfg.SamsaBin,
		Config:          cfg.Config,
		AutoFailover:    s.Promote == PromoteAuto,
		FailoverTimeout: s.FailoverTimeout,
		Set:             cfg.Set,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cfg.KeepLogs != "" {
			if lerr := f.pair.CopyLogs(cfg.KeepLogs); lerr != nil && res != nil && res.Error == "" {
				res.Error = lerr.Error()
			}
		}
		serr := f.pair.Stop()
		if serr != nil && res != nil && res.Error == "" {
			res.Error = "stopping the pair: " + serr.Error()
		}
	}()
	f.logf("pair up: node 1 %s (primary), node 2 %s (standby)", f.pair.Nodes[0].Addr, f.pair.Nodes[1].Addr)
	if err := f.createTopic(ctx); err != nil {
		return nil, err
	}
	f.res.Topic = f.topic
	f.run(ctx)
	return f.res, nil
}

// createTopic creates the run's topic through the primary with the pair's
// defaults (replication factor -1: both nodes) and waits until the
// standby is in the ISR of every partition.
func (f *failoverRun) createTopic(ctx context.Context) error {
	f.topic = freshTopic("failover")
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.pair.Nodes[0].Addr), kgo.RequestRetries(3))
	if err != nil {
		return fmt.Errorf("cannot create admin client: %w", err)
	}
	defer cl.Close()
	var configs map[string]*string
	if f.s.MinInsync > 0 {
		configs = map[string]*string{"min.insync.replicas": kadm.StringPtr(strconv.Itoa(f.s.MinInsync))}
	}
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(cctx, f.s.Partitions, -1, configs, f.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("cannot create topic %s: %w", f.topic, err)
	}
	return f.pair.WaitInSync(ctx, f.pair.Nodes[0], f.topic)
}

// run is the measured part; what goes wrong ends up in f.res.Error.
func (f *failoverRun) run(ctx context.Context) {
	s, res := f.s, f.res
	start := time.Now()
	deadline := start.Add(s.Timeout)
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	fail := func(err error) {
		if err != nil && res.Error == "" {
			res.Error = err.Error()
		}
	}
	seeds := f.pair.Addrs()
	hooks := kgo.WithHooks(newPrimaryHooks{f})

	// The producer's records may take the whole run (and a little more
	// for the flush) to be acknowledged.
	recCtx, recCancel := context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(flushGrace))
	defer recCancel()
	prodCl, err := kgo.NewClient(pairProducerOpts(seeds, s.Timeout, s.MetadataMinAge,
		kgo.DefaultProduceTopic(f.topic), hooks, kgo.WithLogger(f.tally.named("produce: ")))...)
	if err != nil {
		fail(fmt.Errorf("cannot create producer: %w", err))
		return
	}
	defer prodCl.Close()
	prod := &pacedProducer{cl: prodCl, topic: f.topic, rate: s.Rate, size: s.Size, led: f.led, recCtx: recCtx}

	consOpts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ConsumerGroup(f.topic + "-readers"),
		kgo.ConsumeTopics(f.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.RetryTimeout(s.Timeout),
		hooks,
		kgo.WithLogger(f.tally.named("consume: ")),
	}
	if s.MetadataMinAge > 0 {
		consOpts = append(consOpts, kgo.MetadataMinAge(s.MetadataMinAge))
	}
	consCl, err := kgo.NewClient(consOpts...)
	if err != nil {
		fail(fmt.Errorf("cannot create consumer: %w", err))
		return
	}
	// Closing leaves the group; bounded by the client's own timeouts.
	defer consCl.Close()
	var firstRead atomic.Int64 // unix ns
	consStop := make(chan struct{})
	var consWG sync.WaitGroup
	consWG.Add(1)
	go func() {
		defer consWG.Done()
		f.consume(runCtx, consCl, consStop, &firstRead)
	}()
	stopConsumer := sync.OnceFunc(func() {
		close(consStop)
		consWG.Wait()
	})
	defer stopConsumer()

	prod.start()
	stopProducer := sync.OnceFunc(prod.stop)
	defer stopProducer()

	progQuit := make(chan struct{})
	var progWG sync.WaitGroup
	progWG.Add(1)
	go func() {
		defer progWG.Done()
		f.reportProgress(start, progQuit)
	}()
	defer func() {
		close(progQuit)
		progWG.Wait()
	}()

	// Warm-up: the producer acknowledged and the consumer read something,
	// and the warm-up time has passed.
	err = poll(runCtx, s.Timeout, 20*time.Millisecond, func() (bool, error) {
		c := f.led.counts()
		return c.acked > 0 && firstRead.Load() != 0 && time.Since(start) >= s.Warmup, nil
	}, func() error { return errors.New("no record was acknowledged and read before the time limit") })
	if err != nil {
		fail(fmt.Errorf("warm-up: %w", err))
		return
	}

	primary, standby := f.pair.Nodes[0], f.pair.Nodes[1]
	f.killAt.Store(time.Now().UnixNano())
	primary.Kill()
	res.AckedBeforeKill = f.led.counts().acked
	f.logf("killed node 1 (the primary) after %.1fs, %d records acknowledged", time.Since(start).Seconds(), res.AckedBeforeKill)

	if s.Promote == PromoteManual {
		err = poll(runCtx, setupTimeout, 50*time.Millisecond, func() (bool, error) {
			return standby.Promote(runCtx) == nil, nil
		}, func() error { return errors.New("node 2 refused every promotion request") })
		if err != nil {
			fail(err)
		}
	}
	err = poll(runCtx, time.Until(deadline), 20*time.Millisecond, func() (bool, error) {
		leader, _ := standby.Leader(runCtx)
		return leader == standby.ID, standby.Alive()
	}, func() error { return errors.New("node 2 never took over") })
	if err != nil {
		fail(fmt.Errorf("promotion: %w", err))
	} else {
		res.Promoted = f.sinceKill(time.Now().UnixNano())
		f.logf("node 2 leads, %.0f ms after the kill", res.Promoted)
	}

	if err == nil && s.Rejoin {
		if err := primary.Restart(runCtx); err != nil {
			fail(fmt.Errorf("cannot restart node 1: %w", err))
		} else {
			f.logf("node 1 restarted, %.0f ms after the kill", f.sinceKill(time.Now().UnixNano()))
			err := poll(runCtx, time.Until(deadline), 50*time.Millisecond, func() (bool, error) {
				ok, _ := standby.InSync(runCtx, f.topic)
				return ok, errors.Join(standby.Alive(), primary.Alive())
			}, func() error { return errors.New("node 1 never got back in sync") })
			if err != nil {
				fail(fmt.Errorf("rejoin: %w", err))
			} else {
				res.Rejoined = f.sinceKill(time.Now().UnixNano())
				f.logf("node 1 in sync as the standby, %.0f ms after the kill", res.Rejoined)
			}
		}
	}

	// Writes resumed, then After more of them.
	// (Without a standby back and with min.insync.replicas 2 they never
	// do: that is a figure, "never", not a failure of the run.)
	err = poll(runCtx, time.Until(deadline), 20*time.Millisecond, func() (bool, error) {
		return f.writesAt.Load() != 0, nil
	}, func() error { return errors.New("writes never resumed") })
	if err != nil {
		f.logf("writes did not resume within the time limit")
	} else {
		f.logf("writes resumed %.0f ms after the kill", f.sinceKill(f.writesAt.Load()))
		select {
		case <-runCtx.Done():
		case <-time.After(time.Until(time.Unix(0, f.writesAt.Load()).Add(s.After))):
		}
	}
	stopProducer()
	fctx, fcancel := context.WithDeadline(ctx, deadline.Add(flushGrace))
	if err := prodCl.Flush(fctx); err != nil {
		fail(fmt.Errorf("cannot flush the producer: %w", err))
	}
	fcancel()

	// Drain: the consumer reads every acknowledged record, or the drain
	// time (or the run's) runs out.
	drainEnd := time.Now().Add(s.Drain)
	if drainEnd.After(deadline) {
		drainEnd = deadline
	}
	_ = poll(runCtx, time.Until(drainEnd), 50*time.Millisecond, func() (bool, error) {
		return f.led.counts().missing == 0, nil
	}, func() error { return nil })
	stopConsumer()

	c := f.led.counts()
	res.Produced, res.Acked, res.Failed, res.Pending = c.sent, c.acked, c.failed, c.pending
	res.Consumed, res.Lost, res.Duplicates = c.readDistinct, c.missing, c.dups
	if c.firstErr != nil {
		res.FirstError = c.firstErr.Error()
	}
	res.Writes = f.sinceKill(f.writesAt.Load())
	res.Reads = f.sinceKill(f.readsAt.Load())
	res.PostKillRead = f.sinceKill(f.postKillAt.Load())
	res.MaxAckWait = ms(time.Duration(prod.maxAck.Load()))
	if res.Lost > 0 {
		f.logf("%d acknowledged records never read by the group consumer", res.Lost)
	}

	// The log itself, from the start, on whichever node leads now.
	missing, dups, err := f.checkLog(ctx)
	if err != nil {
		fail(fmt.Errorf("cannot check the log: %w", err))
	}
	res.LogMissing, res.LogDuplicates = missing, dups
	res.ClientErrors = f.tally.snapshot()
	if len(res.ClientErrors) == 0 {
		res.ClientErrors = nil
	}
}

// consume polls the group consumer until stop is closed or ctx ends.
func (f *failoverRun) consume(ctx context.Context, cl *kgo.Client, stop chan struct{}, firstRead *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		now := time.Now()
		fs.EachError(func(_ string, _ int32, err error) { f.tally.named("consume: ").add(err) })
		fs.EachRecord(func(r *kgo.Record) {
			id, sent, ok := parseSeqValue(r.Value)
			if !ok {
				return
			}
			f.led.saw(id)
			firstRead.CompareAndSwap(0, now.UnixNano())
			if k := f.killAt.Load(); k != 0 && sent.UnixNano() > k {
				f.postKillAt.CompareAndSwap(0, now.UnixNano())
			}
		})
	}
}

// reportProgress writes a line a second until quit is closed.
func (f *failoverRun) reportProgress(start time.Time, quit chan struct{}) {
	if f.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		c := f.led.counts()
		f.logf("%.0fs: %d sent, %d acked, %d failed, %d read", time.Since(start).Seconds(), c.sent, c.acked, c.failed, c.readDistinct)
	}
}

// checkLog reads the topic from the start up to its high watermarks, on
// whichever node leads now, and returns the acknowledged ids missing from
// it and the ids in it more than once.
func (f *failoverRun) checkLog(ctx context.Context) (missing, dups int64, err error) {
	seen := map[uint64]int{}
	err = scanTopic(ctx, f.pair.Addrs(), f.topic, setupTimeout, func(r *kgo.Record) {
		if id, _, ok := parseSeqValue(r.Value); ok {
			seen[id]++
		}
	})
	if err != nil {
		return 0, 0, err
	}
	for _, n := range seen {
		if n > 1 {
			dups += int64(n - 1)
		}
	}
	for _, id := range f.led.ackedIDs() {
		if seen[id] == 0 {
			missing++
		}
	}
	return missing, dups, nil
}

// scanTopic reads every partition of topic from its start to its high
// watermark (as of the call), with a plain consumer seeded with seeds,
// calling each for every record, on this goroutine. Bounded by within.
func scanTopic(ctx context.Context, seeds []string, topic string, within time.Duration, each func(*kgo.Record)) error {
	rctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return fmt.Errorf("cannot create admin client: %w", err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(rctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("cannot list the end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return fmt.Errorf("cannot create consumer: %w", err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			return fmt.Errorf("cannot read %s to its end: %d partitions unfinished: %w", topic, len(want), rctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			each(r)
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return nil
}
