package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The hostile workload: raw-socket clients that break the framing (frames
// declared and never sent, random bytes, a frame dribbled a byte a
// second, garbage bodies for every API key) attack one broker, one attack
// at a time, while well-behaved franz-go clients keep producing and
// consuming. For each attack it measures the legitimate clients' latency
// and errors, an ApiVersions round trip on a fresh connection every half
// second, and the broker's RSS and open fds before, during (every second)
// and after. It is the measure and the test harness of "a few broken
// clients stop or bloat the broker for everyone".

// HostileConfig is what RunHostile runs; zero fields take the defaults
// of DefaultHostileConfig.
type HostileConfig struct {
	// Addr and PID are the broker attacked (PID 0: no RSS or fd figures),
	// unless SamsaBin is set: then RunHostile starts SamsaBin from Config
	// with a temp data dir on a free port, and stops it at the end.
	Addr     string `json:"addr,omitempty"`
	PID      int    `json:"pid,omitempty"`
	SamsaBin string `json:"samsa_bin,omitempty"`
	Config   string `json:"config,omitempty"`

	Attacks  []string      `json:"attacks"`     // HostileAttacks names, run in this order
	Duration time.Duration `json:"duration_ns"` // of each attack
	Warmup   time.Duration `json:"warmup_ns"`   // legitimate clients alone, before the first attack
	// Settle is the wait after each attack before the broker's "after"
	// figures are read.
	Settle time.Duration `json:"settle_ns"`
	// AttackFrom is the attack sockets' source address, so that a
	// per-IP connection limit can be tested apart from the legitimate
	// clients (which connect from the default source): any 127.x.y.z
	// works on Linux.
	AttackFrom string `json:"attack_from"`

	Declare100MConns int `json:"declare100m_conns"` // 2, as in the issue
	Declare1MConns   int `json:"declare1m_conns"`   // 1,000
	RandomWorkers    int `json:"random_workers"`    // 4 connections writing random bytes at once
	MixedWorkers     int `json:"mixed_workers"`     // 64 attacking goroutines
	DribbleSize      int `json:"dribble_size"`      // the dribbled frame's declared size, 1 KiB
	NoReadConns      int `json:"noread_conns"`      // 2 connections that never read an answer

	Interval   time.Duration `json:"interval_ns"`    // between legitimate records, 20 ms
	ProbeEvery time.Duration `json:"probe_every_ns"` // between ApiVersions probes, 500 ms
	// ProbeTimeout bounds one ApiVersions round trip (10 s): one that
	// takes longer counts as unanswered.
	ProbeTimeout time.Duration `json:"probe_timeout_ns"`
	// StallBound is the longest a produce ack, an ApiVersions round trip
	// or a read after an ack may take before the legitimate clients count
	// as stopped (5 s: generous for a loaded machine, short next to a
	// wedged broker).
	StallBound time.Duration `json:"stall_bound_ns"`
	// Drain bounds the wait, after the last attack, for every record to
	// be answered and every acknowledged one read.
	Drain time.Duration `json:"drain_ns"`
	// RSSLimit stops an attack early once the broker's RSS passes it, so
	// that a broker that bloats does not take the machine down with it;
	// the attack then fails. Default: 8 GiB or half the machine's
	// memory, whichever is less; -1: none.
	RSSLimit int64 `json:"rss_limit_bytes"`

	Progress io.Writer `json:"-"` // a line per attack; nil for none
}

// DefaultHostileConfig is every attack for 20 s each against addr.
func DefaultHostileConfig(addr string, pid int) HostileConfig {
	return HostileConfig{
		Addr:             addr,
		PID:              pid,
		Attacks:          slices.Clone(HostileAttacks),
		Duration:         20 * time.Second,
		Warmup:           5 * time.Second,
		Settle:           10 * time.Second,
		AttackFrom:       "127.0.0.1",
		Declare100MConns: 2,
		Declare1MConns:   1000,
		RandomWorkers:    4,
		MixedWorkers:     64,
		DribbleSize:      1 << 10,
		NoReadConns:      2,
		Interval:         20 * time.Millisecond,
		ProbeEvery:       500 * time.Millisecond,
		ProbeTimeout:     10 * time.Second,
		StallBound:       5 * time.Second,
		Drain:            30 * time.Second,
		RSSLimit:         defaultRSSLimit(),
	}
}

// defaultRSSLimit is 8 GiB or half of MemTotal, whichever is less.
func defaultRSSLimit() int64 {
	limit := int64(8 << 30)
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return limit
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil && len(f) == 2 && f[1] == "kB" {
				limit = min(limit, kb<<10/2)
			}
		}
	}
	return limit
}

// withDefaults fills the zero fields from DefaultHostileConfig.
func (c HostileConfig) withDefaults() HostileConfig {
	d := DefaultHostileConfig(c.Addr, c.PID)
	if len(c.Attacks) == 0 {
		c.Attacks = d.Attacks
	}
	if c.AttackFrom == "" {
		c.AttackFrom = d.AttackFrom
	}
	if c.RSSLimit == 0 {
		c.RSSLimit = d.RSSLimit
	}
	for _, f := range []struct{ v, d *time.Duration }{
		{&c.Duration, &d.Duration}, {&c.Warmup, &d.Warmup}, {&c.Settle, &d.Settle}, {&c.Interval, &d.Interval},
		{&c.ProbeEvery, &d.ProbeEvery}, {&c.ProbeTimeout, &d.ProbeTimeout}, {&c.StallBound, &d.StallBound}, {&c.Drain, &d.Drain},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *int }{
		{&c.Declare100MConns, &d.Declare100MConns}, {&c.Declare1MConns, &d.Declare1MConns},
		{&c.RandomWorkers, &d.RandomWorkers}, {&c.MixedWorkers, &d.MixedWorkers}, {&c.DribbleSize, &d.DribbleSize},
		{&c.NoReadConns, &d.NoReadConns},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	return c
}

// Validate reports the first thing wrong with c (after the defaults).
func (c HostileConfig) Validate() error {
	for _, a := range c.Attacks {
		if !slices.Contains(HostileAttacks, a) {
			return fmt.Errorf("cannot run hostile: unknown attack %q (want some of %v)", a, HostileAttacks)
		}
	}
	switch {
	case c.SamsaBin == "" && c.Addr == "":
		return errors.New("cannot run hostile: no broker address and no samsa binary to start")
	case net.ParseIP(c.AttackFrom) == nil:
		return fmt.Errorf("cannot run hostile: attack source %q is not an IP address", c.AttackFrom)
	case c.Duration < 0 || c.Warmup < 0 || c.Settle < 0 || c.Interval < 0 || c.ProbeEvery < 0 ||
		c.ProbeTimeout < 0 || c.StallBound < 0 || c.Drain < 0:
		return errors.New("cannot run hostile: durations must not be negative")
	case c.Declare100MConns < 0 || c.Declare1MConns < 0 || c.RandomWorkers < 0 || c.MixedWorkers < 0 || c.DribbleSize < 0 || c.NoReadConns < 0:
		return errors.New("cannot run hostile: counts and sizes must not be negative")
	}
	return nil
}

// HostileSample is the broker's RSS and open fds at Sec seconds from the
// start of an attack.
type HostileSample struct {
	Sec float64 `json:"sec"`
	RSS int64   `json:"rss_bytes"`
	FDs int     `json:"fds"`
}

// HostileResult is one attack: what the legitimate clients saw of the
// records and probes they started during it (their answers may come
// later), and the broker's figures. Latencies are in milliseconds.
type HostileResult struct {
	Attack  string  `json:"attack"` // "baseline" for the warm-up, no attack
	Seconds float64 `json:"seconds"`

	Produce *Latency `json:"produce_ack,omitempty"`     // produce call to ack
	Consume *Latency `json:"produce_to_read,omitempty"` // produce call to the consumer's receipt
	// ReadAfterAckMax is the longest from a record's ack to its receipt
	// by the consumer: how long a fetch kept a written record back.
	ReadAfterAckMax float64 `json:"read_after_ack_max_ms"`
	Sent            int64   `json:"sent"`
	Acked           int64   `json:"acked"`
	Failed          int64   `json:"failed"`    // the producer gave up on them
	NotAcked        int64   `json:"not_acked"` // no answer by the end of the run
	// Stalled: acknowledged after more than the stall bound, failed, or
	// never answered.
	Stalled     int64 `json:"stalled"`
	Unread      int64 `json:"unread"` // acknowledged, never read by the consumer
	FetchErrors int64 `json:"fetch_errors"`

	APIVersions           *Latency `json:"api_versions,omitempty"` // answered round trips
	APIVersionsSent       int      `json:"api_versions_sent"`
	APIVersionsFailed     int      `json:"api_versions_failed"` // unanswered within ProbeTimeout, or broken
	APIVersionsMax        float64  `json:"api_versions_max_ms"` // answered or not
	APIVersionsFirstError string   `json:"api_versions_first_error,omitempty"`

	// Errors is Failed + FetchErrors + APIVersionsFailed; ClientErrors
	// are what the clients' logs reported from the attack's start to its
	// "after" figures, by kind.
	Errors       int64          `json:"errors"`
	ClientErrors map[string]int `json:"client_errors,omitempty"`

	// The broker: before the attack, the peak of the samples from its
	// start to the "after" figures (closing the attack's connections
	// moves memory too), at its end, and Settle after it. Zero without a
	// broker pid.
	RSSBefore int64           `json:"rss_before_bytes"`
	RSSPeak   int64           `json:"rss_peak_bytes"`
	RSSEnd    int64           `json:"rss_end_bytes"`
	RSSAfter  int64           `json:"rss_after_bytes"`
	FDsBefore int             `json:"fds_before"`
	FDsPeak   int             `json:"fds_peak"`
	FDsEnd    int             `json:"fds_end"`
	FDsAfter  int             `json:"fds_after"`
	Samples   []HostileSample `json:"samples,omitempty"` // every second from the attack's start to the "after" figures

	Conns AttackStats `json:"conns"`

	StallBound float64 `json:"stall_bound_ms"`
	Error      string  `json:"error,omitempty"` // the attack could not run, or the broker died
}

// RSSAt returns the RSS of the last sample at or before sec seconds into
// the attack, or 0.
func (r *HostileResult) RSSAt(sec float64) int64 {
	var rss int64
	for _, s := range r.Samples {
		if s.Sec <= sec {
			rss = s.RSS
		}
	}
	return rss
}

// Problems says how the legitimate clients did not keep working during
// the attack; none means they did.
func (r *HostileResult) Problems() []string {
	var p []string
	bound := r.StallBound
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if r.Error != "" {
		add("%s", r.Error)
	}
	if r.Sent == 0 {
		add("no record sent")
	}
	if r.Failed > 0 {
		add("%d of %d records failed", r.Failed, r.Sent)
	}
	if r.NotAcked > 0 {
		add("%d of %d records never answered", r.NotAcked, r.Sent)
	}
	if r.Produce != nil && r.Produce.Max > bound {
		add("%d records stalled: acknowledged after more than %s (the longest after %s)",
			r.Stalled-r.Failed-r.NotAcked, fmtMsBound(bound), fmtMsBound(r.Produce.Max))
	}
	if r.Unread > 0 {
		add("%d acknowledged records never read", r.Unread)
	}
	if r.ReadAfterAckMax > bound {
		add("a record read %s after its ack", fmtMsBound(r.ReadAfterAckMax))
	}
	if r.FetchErrors > 0 {
		add("%d fetch errors", r.FetchErrors)
	}
	if r.APIVersionsSent == 0 {
		add("no ApiVersions probe ran")
	}
	if r.APIVersionsFailed > 0 {
		add("%d of %d ApiVersions probes unanswered or failed (first: %s)", r.APIVersionsFailed, r.APIVersionsSent, r.APIVersionsFirstError)
	}
	if r.APIVersionsMax > bound {
		add("ApiVersions took up to %s", fmtMsBound(r.APIVersionsMax))
	}
	return p
}

func fmtMsBound(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fs", v/1000)
	}
	return fmt.Sprintf("%.0fms", v)
}

// HostileReport is a hostile run: the warm-up without attack, then each
// attack.
type HostileReport struct {
	Machine  Machine          `json:"machine"`
	Settings HostileConfig    `json:"settings"`
	Broker   string           `json:"broker"`
	PID      int              `json:"pid,omitempty"`
	Started  bool             `json:"started"` // the broker was started by the run
	Topic    string           `json:"topic"`
	Baseline *HostileResult   `json:"baseline,omitempty"`
	Attacks  []*HostileResult `json:"attacks"`
	// ClientErrors are what the legitimate clients' logs reported over
	// the whole run, by kind.
	ClientErrors map[string]int `json:"client_errors,omitempty"`
	DupReads     int64          `json:"dup_reads"` // records the consumer read twice
	Error        string         `json:"error,omitempty"`
}

// Attack returns the result of the named attack, or nil.
func (rep *HostileReport) Attack(name string) *HostileResult {
	for _, r := range rep.Attacks {
		if r.Attack == name {
			return r
		}
	}
	return nil
}

// Failed reports whether the run failed or the legitimate clients did not
// keep working through an attack.
func (rep *HostileReport) Failed() bool {
	if rep.Error != "" {
		return true
	}
	for _, r := range rep.Attacks {
		if len(r.Problems()) > 0 {
			return true
		}
	}
	return false
}

// hostileRun is one run's state.
type hostileRun struct {
	cfg   HostileConfig
	rep   *HostileReport
	outMu sync.Mutex
}

func (h *hostileRun) logf(format string, args ...any) {
	if h.cfg.Progress != nil {
		h.outMu.Lock()
		defer h.outMu.Unlock()
		fmt.Fprintf(h.cfg.Progress, "  hostile: "+format+"\n", args...)
	}
}

// RunHostile runs cfg's attacks one after the other against one broker,
// the legitimate clients running throughout. A run that could not set up
// returns an error; one that stopped part way (the broker died, ctx
// ended) returns what it measured with the report's Error set.
func RunHostile(ctx context.Context, cfg HostileConfig) (rep *HostileReport, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &hostileRun{cfg: cfg}
	rep = &HostileReport{Machine: ThisMachine(), Settings: cfg, Broker: cfg.Addr, PID: cfg.PID}
	h.rep = rep
	addr, pid := cfg.Addr, cfg.PID
	alive := func() error {
		if pid == 0 {
			return nil
		}
		if _, err := readMem(pid); err != nil {
			return fmt.Errorf("the broker (pid %d) is gone: %w", pid, err)
		}
		return nil
	}
	if cfg.SamsaBin != "" {
		p, err := StartSamsa(ctx, cfg.SamsaBin, cfg.Config)
		if err != nil {
			return nil, err
		}
		defer func() {
			if serr := p.Stop(); serr != nil && rep.Error == "" {
				rep.Error = serr.Error()
			}
		}()
		addr, pid = p.Addr, p.PID()
		rep.Broker, rep.PID, rep.Started = addr, pid, true
		alive = p.Alive
	}

	adm, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(3))
	if err != nil {
		return nil, fmt.Errorf("cannot create admin client: %w", err)
	}
	defer adm.Close()
	kadmCl := kadm.NewClient(adm)
	rep.Topic = freshTopic("hostile")
	if err := createTopic(ctx, kadmCl, rep.Topic, 1); err != nil {
		return nil, err
	}
	if !rep.Started {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
			defer cancel()
			_, _ = kadmCl.DeleteTopics(dctx, rep.Topic)
		}()
	}

	l, err := newLegit(ctx, addr, rep.Topic, pid, &cfg)
	if err != nil {
		return nil, err
	}
	l.start(ctx)
	stopped := false
	defer func() {
		if !stopped {
			l.stop()
		}
	}()

	type window struct {
		res      *HostileResult
		from, to time.Time
		after    time.Time      // of the "after" figures: samples until then count
		errs0    map[string]int // the clients' errors at the start
		errs1    map[string]int // and at the "after" figures
	}
	var windows []window

	h.logf("broker %s (pid %d), topic %s; %v of warm-up", addr, pid, rep.Topic, cfg.Warmup)
	warm := window{res: &HostileResult{Attack: "baseline"}, from: time.Now(), errs0: l.tally.snapshot()}
	if s, ok := l.sample(); ok {
		warm.res.RSSBefore, warm.res.FDsBefore = s.rss, s.fds
	}
	wait(ctx, cfg.Warmup)
	warm.to, warm.errs1 = time.Now(), l.tally.snapshot()
	if s, ok := l.sample(); ok {
		warm.res.RSSEnd, warm.res.FDsEnd, warm.res.RSSAfter, warm.res.FDsAfter = s.rss, s.fds, s.rss, s.fds
	}
	warm.after = warm.to
	windows = append(windows, warm)

	for _, name := range cfg.Attacks {
		if ctx.Err() != nil {
			break
		}
		res := &HostileResult{Attack: name}
		w := window{res: res, errs0: l.tally.snapshot()}
		if s, ok := l.sample(); ok {
			res.RSSBefore, res.FDsBefore = s.rss, s.fds
		}
		a, err := newAttacker(addr, cfg.AttackFrom)
		if err != nil {
			return nil, err
		}
		h.logf("%s for %v from %s", name, cfg.Duration, cfg.AttackFrom)
		actx, cancel := context.WithTimeout(ctx, cfg.Duration)
		w.from = time.Now()
		over := watchRSS(actx, cancel, pid, cfg.RSSLimit)
		aerr := runAttack(actx, name, a, &cfg)
		cancel()
		w.to = time.Now()
		switch rss := over(); {
		case aerr != nil:
			res.Error = aerr.Error()
		case rss > 0:
			res.Error = fmt.Sprintf("the broker's RSS reached %s, over the limit of %s: attack stopped after %.0f s",
				fmtBytes(rss), fmtBytes(cfg.RSSLimit), w.to.Sub(w.from).Seconds())
			h.logf("%s: %s", name, res.Error)
		}
		if s, ok := l.sample(); ok {
			res.RSSEnd, res.FDsEnd = s.rss, s.fds
		}
		res.Conns = a.stats()
		if name == AttackDribble {
			res.Conns.DribbleClosedAfter = -1
			if ns := a.dribbleClosed.Load(); ns > 0 {
				res.Conns.DribbleClosedAfter = time.Duration(ns).Round(time.Second).Seconds()
			}
		}
		c := res.Conns
		h.logf("%s done: %d connected, %d refused, %d closed by the broker, %d open at the end; %s sent",
			name, c.Connected, c.Refused, c.ClosedByBroker, c.OpenAtEnd, fmtBytes(c.BytesSent))
		wait(ctx, cfg.Settle)
		w.errs1 = l.tally.snapshot()
		if s, ok := l.sample(); ok {
			res.RSSAfter, res.FDsAfter = s.rss, s.fds
		}
		w.after = time.Now()
		windows = append(windows, w)
		if err := alive(); err != nil {
			res.Error = err.Error()
			rep.Error = fmt.Sprintf("after %s: %v", name, err)
			break
		}
	}
	if err := ctx.Err(); err != nil && rep.Error == "" {
		rep.Error = fmt.Sprintf("stopped: %v", err)
	}

	h.logf("draining: every record answered and read, for up to %v", cfg.Drain)
	l.stopProducing(ctx, cfg.Drain)
	l.stop()
	stopped = true
	for i, w := range windows {
		w.res.Seconds = w.to.Sub(w.from).Seconds()
		w.res.StallBound = ms(cfg.StallBound)
		l.window(w.from, w.to, w.after, w.res)
		w.res.ClientErrors = tallyDiff(w.errs0, w.errs1)
		if i == 0 {
			rep.Baseline = w.res
		} else {
			rep.Attacks = append(rep.Attacks, w.res)
		}
	}
	rep.ClientErrors = l.tally.snapshot()
	rep.DupReads = l.dupReads
	rep.Machine.LoadEnd = loadAvg()
	return rep, nil
}

// watchRSS calls stop once the RSS of pid passes limit, checking every
// half second until ctx ends. The returned function waits for the
// watcher to end and returns the RSS that passed the limit, or 0.
func watchRSS(ctx context.Context, stop context.CancelFunc, pid int, limit int64) (over func() int64) {
	if pid == 0 || limit <= 0 {
		return func() int64 { return 0 }
	}
	var rss int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if m, err := readMem(pid); err == nil && m.RSS > limit {
				rss = m.RSS
				stop()
				return
			}
		}
	}()
	return func() int64 {
		<-done
		return rss
	}
}

// tallyDiff returns the counts in b above those in a.
func tallyDiff(a, b map[string]int) map[string]int {
	var d map[string]int
	for k, n := range b {
		if n > a[k] {
			if d == nil {
				d = map[string]int{}
			}
			d[k] = n - a[k]
		}
	}
	return d
}
