package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runMixed is the mixed workload: spec.Records records produced at full
// speed while spec.Consumers independent consumers (no group) each read
// every partition from offset 0 until they have all of them. Produce
// throughput is over the time to the last ack; consume throughput is every
// consumer's records together over the time to the last record the slowest
// consumer read.
func runMixed(ctx context.Context, e *env) error {
	s := e.spec
	consumers := make([]*kgo.Client, 0, s.Consumers)
	defer func() {
		for _, cl := range consumers {
			cl.Close()
		}
	}()
	for i := 0; i < s.Consumers; i++ {
		cl, err := newConsumer(e.addr, e.topic, fromStart(s.Partitions), s.Conn...)
		if err != nil {
			return err
		}
		consumers = append(consumers, cl)
	}

	prog := e.progress(s.Records * int64(1+s.Consumers))
	defer prog.stop()
	runCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	outs := make([]consumeOutcome, s.Consumers)
	var wg sync.WaitGroup
	defer wg.Wait() // before the deferred cancel and Close run
	var startErr error
	var t0 time.Time
	start := func() {
		startErr = e.meter.start()
		t0 = time.Now()
		for i, cl := range consumers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i] = consumeN(runCtx, cl, s.Records, nil, prog)
			}()
		}
	}
	p, pt0, err := produceFull(ctx, e.addr, e.topic, s, false, start, prog)
	if err != nil {
		cancel()
		return err
	}
	if p.acked+p.failed < s.Records || p.failed > 0 {
		// The consumers will never see s.Records records: give them a
		// moment to read what was acked, not the whole time limit.
		stop := time.AfterFunc(5*time.Second, cancel)
		defer stop.Stop()
	}
	wg.Wait()
	if startErr != nil {
		return startErr
	}

	e.res.Produce = newThroughput(p.acked, p.bytes, p.last.Sub(pt0))
	if p.acked == 0 {
		e.res.Produce = newThroughput(0, 0, 0)
	}
	e.res.TimedOut = p.timedOut
	e.res.Failed = p.failed
	e.fail(p.firstErr)
	var records, bytes int64
	var last time.Time
	for i, c := range outs {
		records += c.records
		bytes += c.bytes
		if c.last.After(last) {
			last = c.last
		}
		e.res.TimedOut = e.res.TimedOut || c.timedOut
		e.fail(c.firstErr)
		if c.records > p.acked+p.failed {
			e.fail(fmt.Errorf("consumer %d read %d records, more than the %d produced", i, c.records, p.acked+p.failed))
		}
	}
	if records == 0 {
		e.res.Consume = newThroughput(0, 0, 0)
	} else {
		e.res.Consume = newThroughput(records, bytes, last.Sub(t0))
	}
	return nil
}
