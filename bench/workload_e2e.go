package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// e2eHeader is the bytes at the start of each e2e record value: the send
// time (nanoseconds on the monotonic clock since the workload began) and a
// warm-up flag.
const e2eHeader = 9

// e2eTick is the pacing period of the e2e producer.
const e2eTick = time.Millisecond

// runE2E is the end-to-end latency workload: one producer (no linger,
// spec.Acks) sends spec.Records records at spec.Rate records/s, paced by a
// ticker that releases the records due since the start; one consumer
// reading every partition from its end records, for each record, the time
// from the produce call to receipt. The first half second of records (at
// most a tenth of them) warms the clients up and is left out of the
// percentiles.
func runE2E(ctx context.Context, e *env) error {
	s := e.spec
	ends, err := e.adm.ListEndOffsets(ctx, e.topic)
	if err != nil {
		return fmt.Errorf("cannot list end offsets of %s: %w", e.topic, err)
	}
	offsets := make(map[int32]kgo.Offset, s.Partitions)
	for p := int32(0); p < s.Partitions; p++ {
		o, ok := ends.Lookup(e.topic, p)
		if !ok || o.Err != nil {
			return fmt.Errorf("cannot list end offset of %s/%d: %v", e.topic, p, o.Err)
		}
		offsets[p] = kgo.NewOffset().At(o.Offset)
	}
	cons, err := newConsumer(e.addr, e.topic, offsets, s.Conn...)
	if err != nil {
		return err
	}
	defer cons.Close()
	opts := append(s.producerOpts(e.addr, e.topic), kgo.ProducerLinger(0))
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("cannot create producer: %w", err)
	}
	defer prod.Close()
	pctx, pcancel := context.WithTimeout(ctx, setupTimeout)
	err = prod.Ping(pctx)
	pcancel()
	if err != nil {
		return fmt.Errorf("cannot reach broker %s: %w", e.addr, err)
	}

	if s.Bulk > 0 {
		bulk, err := startBulk(ctx, e)
		if err != nil {
			return err
		}
		defer func() {
			var err error
			e.res.Bulk, err = bulk.stop(ctx, e)
			e.fail(err)
		}()
		time.Sleep(2 * time.Second) // the load settles before the e2e producer starts
	}
	warm := min(int64(s.Rate)/2, s.Records/10)
	prog := e.progress(s.Records)
	defer prog.stop()
	runCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if err := e.meter.start(); err != nil {
		return err
	}
	base := time.Now()

	// The consumer goroutine is owned here and waited for below.
	lat := make([]time.Duration, 0, min(s.Records-warm, 1<<20))
	var c consumeOutcome
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c = consumeN(runCtx, cons, s.Records, func(r *kgo.Record, now time.Time) {
			if len(r.Value) < e2eHeader || r.Value[8] != 0 {
				return // warm-up
			}
			sent := time.Duration(binary.BigEndian.Uint64(r.Value))
			lat = append(lat, now.Sub(base)-sent)
		}, prog)
	}()

	var st producerState
	sendCtx, sendCancel := context.WithDeadline(ctx, base.Add(s.Timeout+flushGrace))
	defer sendCancel()
	sent := pace(runCtx, sendCtx, prod, s, warm, base, &st)
	ferr := prod.Flush(sendCtx)
	prod.Close() // fails whatever the flush left; then every callback has run
	st.mu.Lock()
	p := st.out
	st.mu.Unlock()
	if ferr != nil || sent < s.Records {
		p.timedOut = true
	}
	if p.acked < s.Records {
		// The consumer will never see s.Records records: give it a moment
		// to read what was acked, not the whole time limit.
		stop := time.AfterFunc(5*time.Second, cancel)
		defer stop.Stop()
	}
	wg.Wait()

	if p.acked > 0 {
		e.res.Produce = newThroughput(p.acked, p.bytes, p.last.Sub(base))
	} else {
		e.res.Produce = newThroughput(0, 0, 0)
	}
	if c.records > 0 {
		e.res.Consume = newThroughput(c.records, c.bytes, c.last.Sub(base))
	} else {
		e.res.Consume = newThroughput(0, 0, 0)
	}
	e.res.Latency = summarize(lat)
	e.res.TimedOut = p.timedOut || c.timedOut
	e.res.Failed = p.failed
	e.fail(p.firstErr)
	e.fail(c.firstErr)
	if c.records > p.acked+p.failed {
		e.fail(fmt.Errorf("read %d records, more than the %d produced", c.records, p.acked+p.failed))
	}
	return nil
}

// pace produces s.Records records at s.Rate records/s, until ctx is done:
// each tick of a ticker releases the records due since base and not yet
// sent, each produced with sendCtx. The first warm records are flagged as
// warm-up. It returns how many it sent.
func pace(ctx, sendCtx context.Context, cl *kgo.Client, s Spec, warm int64, base time.Time, st *producerState) int64 {
	fill := payload(s.Size - e2eHeader)
	t := time.NewTicker(e2eTick)
	defer t.Stop()
	var sent int64
	for sent < s.Records {
		select {
		case <-ctx.Done():
			return sent
		case <-t.C:
		}
		due := min(int64(time.Since(base).Seconds()*float64(s.Rate)), s.Records)
		for ; sent < due && ctx.Err() == nil; sent++ {
			v := make([]byte, s.Size)
			now := time.Now()
			binary.BigEndian.PutUint64(v, uint64(now.Sub(base)))
			if sent < warm {
				v[8] = 1
			}
			copy(v[e2eHeader:], fill)
			cl.Produce(sendCtx, &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
				st.record(r, err, now, false)
			})
		}
	}
	return sent
}
