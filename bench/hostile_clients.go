package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The hostile workload's well-behaved side, which must keep working
// through the attacks: a franz-go producer (acks=all, idempotent, no
// linger) sending a sequenced record every Interval, a consumer of the
// topic's partition from its start (no group), a raw ApiVersions round
// trip on a fresh connection every ProbeEvery, and a sampler of the
// broker's RSS and open fds every second. Each records when things
// happened, so any time window (an attack) can be summarized after the
// run.

// Fates of a legitimate record.
const (
	legitPending = iota // no answer yet, or the client was closed first
	legitAcked
	legitFailed
)

// legitRecord is what happened to one record.
type legitRecord struct {
	sent, acked, read time.Time
	fate              uint8
}

// probe is one ApiVersions round trip.
type probe struct {
	start time.Time
	took  time.Duration
	err   error
}

// procSample is the broker's RSS and open fds at one moment.
type procSample struct {
	at  time.Time
	rss int64
	fds int
}

// legit runs the well-behaved clients. Its goroutines are owned by it:
// start them with start, end them with stopProducing and stop.
type legit struct {
	addr, topic string
	pid         int
	cfg         *HostileConfig
	tally       *errorTally
	prod, cons  *kgo.Client

	mu        sync.Mutex
	recs      []legitRecord // (mu) by id
	dupReads  int64         // (mu)
	probes    []probe       // (mu)
	fetchErrs []time.Time   // (mu) fetch errors other than the stop itself
	samples   []procSample  // (mu)

	// recCtx is the context records are produced with: a record whose
	// context ends while buffered fails and resets the idempotent
	// producer, so it ends only with the clients.
	recCtx     context.Context
	recCancel  context.CancelFunc
	runCancel  context.CancelFunc // ends the consumer, the prober and the sampler
	quitProd   chan struct{}
	quitOnce   sync.Once
	prodWG, wg sync.WaitGroup
}

func newLegit(ctx context.Context, addr, topic string, pid int, cfg *HostileConfig) (*legit, error) {
	l := &legit{addr: addr, topic: topic, pid: pid, cfg: cfg, tally: newErrorTally(), quitProd: make(chan struct{})}
	var err error
	l.prod, err = kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.MaxBufferedRecords(200_000),
		kgo.WithLogger(l.tally.named("produce: ")),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot create producer: %w", err)
	}
	l.cons, err = kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(1)}),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.WithLogger(l.tally.named("consume: ")),
	)
	if err != nil {
		l.prod.Close()
		return nil, fmt.Errorf("cannot create consumer: %w", err)
	}
	l.recCtx, l.recCancel = context.WithCancel(context.WithoutCancel(ctx))
	return l, nil
}

// start starts the producer, the consumer, the prober and the sampler.
func (l *legit) start(ctx context.Context) {
	l.prodWG.Add(1)
	go func() {
		defer l.prodWG.Done()
		l.produce()
	}()
	ctx, l.runCancel = context.WithCancel(ctx)
	for _, f := range []func(context.Context){l.consume, l.probeLoop, l.sampleLoop} {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			f(ctx)
		}()
	}
}

// produce sends a record every Interval until quitProd is closed.
func (l *legit) produce() {
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	pad := payload(64)
	for {
		select {
		case <-l.quitProd:
			return
		case <-t.C:
		}
		now := time.Now()
		l.mu.Lock()
		id := uint64(len(l.recs))
		l.recs = append(l.recs, legitRecord{sent: now})
		l.mu.Unlock()
		l.prod.Produce(l.recCtx, &kgo.Record{Value: seqValue(id, now, pad, idHeader+64)}, func(_ *kgo.Record, err error) {
			at := time.Now()
			l.mu.Lock()
			defer l.mu.Unlock()
			switch {
			case err == nil:
				l.recs[id].fate, l.recs[id].acked = legitAcked, at
			case isStop(err):
				// closed before an answer: pending
			default:
				l.recs[id].fate = legitFailed
			}
		})
	}
}

// consume reads the topic from its start until ctx ends, noting when each
// record arrived.
func (l *legit) consume(ctx context.Context) {
	for ctx.Err() == nil {
		fs := l.cons.PollFetches(ctx)
		now := time.Now()
		fs.EachError(func(_ string, _ int32, err error) {
			if isStop(err) {
				return
			}
			l.tally.named("consume: ").add(err)
			l.mu.Lock()
			l.fetchErrs = append(l.fetchErrs, now)
			l.mu.Unlock()
		})
		l.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			id, _, ok := parseSeqValue(r.Value)
			if !ok || id >= uint64(len(l.recs)) {
				return
			}
			if l.recs[id].read.IsZero() {
				l.recs[id].read = now
			} else {
				l.dupReads++
			}
		})
		l.mu.Unlock()
	}
}

// probeLoop makes an ApiVersions round trip every ProbeEvery; a probe
// that hangs delays the next (ticks are dropped, not queued).
func (l *legit) probeLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		err := apiVersions(ctx, l.addr, l.cfg.ProbeTimeout)
		if ctx.Err() != nil {
			return // the run ended under it: not a broker failure
		}
		l.mu.Lock()
		l.probes = append(l.probes, probe{start: start, took: time.Since(start), err: err})
		l.mu.Unlock()
	}
}

// apiVersions sends an ApiVersions v0 request on a fresh connection and
// reads its answer, all within timeout.
func apiVersions(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	const corr = 0x5a5a
	if _, err := c.Write(requestFrame(18, 0, corr, "samsa-bench-probe", nil)); err != nil {
		return fmt.Errorf("cannot send ApiVersions: %w", err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("cannot read ApiVersions response: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size < 6 || size > 1<<20 {
		return fmt.Errorf("cannot read ApiVersions response: size %d", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c, body); err != nil {
		return fmt.Errorf("cannot read ApiVersions response: %w", err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("ApiVersions response for correlation id %d, want %d", got, corr)
	}
	if code := int16(binary.BigEndian.Uint16(body[4:])); code != 0 {
		return fmt.Errorf("ApiVersions error code %d", code)
	}
	return nil
}

// sampleLoop samples the broker every second until ctx ends.
func (l *legit) sampleLoop(ctx context.Context) {
	if l.pid == 0 {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		l.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample reads the broker's RSS and open fds now and keeps them; ok is
// false when there is no broker process to read. Any goroutine.
func (l *legit) sample() (procSample, bool) {
	if l.pid == 0 {
		return procSample{}, false
	}
	s := procSample{at: time.Now(), fds: -1}
	mem, err := readMem(l.pid)
	if err != nil {
		return procSample{}, false
	}
	s.rss = mem.RSS
	if fds, err := openFDs(l.pid); err == nil {
		s.fds = fds
	}
	l.mu.Lock()
	l.samples = append(l.samples, s)
	l.mu.Unlock()
	return s, true
}

// stopProducing stops new records, then waits up to drain for the ones
// sent to be answered and for the consumer to read the acknowledged ones.
func (l *legit) stopProducing(ctx context.Context, drain time.Duration) {
	l.quitOnce.Do(func() { close(l.quitProd) })
	l.prodWG.Wait()
	dctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	_ = l.prod.Flush(dctx)
	for dctx.Err() == nil {
		l.mu.Lock()
		unread := 0
		for _, r := range l.recs {
			if r.fate == legitAcked && r.read.IsZero() {
				unread++
			}
		}
		l.mu.Unlock()
		if unread == 0 {
			return
		}
		wait(dctx, 50*time.Millisecond)
	}
}

// stop ends every goroutine and closes the clients; records still
// unanswered stay pending.
func (l *legit) stop() {
	l.quitOnce.Do(func() { close(l.quitProd) })
	l.prodWG.Wait()
	if l.runCancel != nil {
		l.runCancel()
	}
	l.wg.Wait()
	l.prod.Close()
	l.cons.Close()
	l.recCancel()
}

// window fills res with what the legitimate clients did in one window
// of time, [from, to): the records sent and probes started within it; and
// with the broker samples taken from `from` to `until`.
func (l *legit) window(from, to, until time.Time, res *HostileResult) {
	bound := l.cfg.StallBound
	l.mu.Lock()
	defer l.mu.Unlock()
	var ack, e2e []time.Duration
	for _, r := range l.recs {
		if r.sent.Before(from) || !r.sent.Before(to) {
			continue
		}
		res.Sent++
		switch r.fate {
		case legitAcked:
			res.Acked++
			took := r.acked.Sub(r.sent)
			ack = append(ack, took)
			if took > bound {
				res.Stalled++
			}
			if r.read.IsZero() {
				res.Unread++
			}
		case legitFailed:
			res.Failed++
			res.Stalled++
		default:
			res.NotAcked++
			res.Stalled++
		}
		if !r.read.IsZero() {
			e2e = append(e2e, r.read.Sub(r.sent))
			if r.fate == legitAcked {
				res.ReadAfterAckMax = max(res.ReadAfterAckMax, ms(r.read.Sub(r.acked)))
			}
		}
	}
	res.Produce, res.Consume = summarize(ack), summarize(e2e)
	var answered []time.Duration
	for _, p := range l.probes {
		if p.start.Before(from) || !p.start.Before(to) {
			continue
		}
		res.APIVersionsSent++
		if p.err != nil {
			res.APIVersionsFailed++
			if res.APIVersionsFirstError == "" {
				res.APIVersionsFirstError = p.err.Error()
			}
		} else {
			answered = append(answered, p.took)
		}
		res.APIVersionsMax = max(res.APIVersionsMax, ms(p.took))
	}
	res.APIVersions = summarize(answered)
	for _, at := range l.fetchErrs {
		if !at.Before(from) && at.Before(to) {
			res.FetchErrors++
		}
	}
	res.Errors = res.Failed + res.FetchErrors + int64(res.APIVersionsFailed)
	for _, s := range l.samples {
		if s.at.Before(from) || s.at.After(until) {
			continue
		}
		res.Samples = append(res.Samples, HostileSample{Sec: s.at.Sub(from).Seconds(), RSS: s.rss, FDs: s.fds})
		res.RSSPeak, res.FDsPeak = max(res.RSSPeak, s.rss), max(res.FDsPeak, s.fds)
	}
}
