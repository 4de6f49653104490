package bench

import (
	"context"
	"fmt"
	"time"
)

// runConsume is the consume workload: spec.Records records are produced
// first (acks=all, not timed), then one consumer reads them all from offset
// 0 of every partition; throughput over the time from creating the consumer
// to the last record. With spec.Cold the page cache is dropped in between.
func runConsume(ctx context.Context, e *env) error {
	s := e.spec
	prep := s
	prep.Kind, prep.Acks = KindProduce, "all"
	fill := startProgress(e.out, e.label+" (filling)", s.Records)
	out, _, err := produceFull(ctx, e.addr, e.topic, prep, false, nil, fill)
	fill.stop()
	if err != nil {
		return err
	}
	if out.acked != s.Records {
		return fmt.Errorf("cannot fill the topic to consume: %d of %d records acked (first error: %v)", out.acked, s.Records, out.firstErr)
	}
	if s.Cold {
		if err := dropPageCache(); err != nil {
			return err
		}
	}

	prog := e.progress(s.Records)
	defer prog.stop()
	runCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if err := e.meter.start(); err != nil {
		return err
	}
	t0 := time.Now()
	cl, err := newConsumer(e.addr, e.topic, fromStart(s.Partitions), s.Conn...)
	if err != nil {
		return err
	}
	defer cl.Close()
	c := consumeN(runCtx, cl, s.Records, nil, prog)
	e.res.Consume = newThroughput(c.records, c.bytes, c.last.Sub(t0))
	if c.records == 0 {
		e.res.Consume = newThroughput(0, 0, 0)
	}
	e.res.TimedOut = c.timedOut
	e.fail(c.firstErr)
	if c.records > s.Records {
		e.fail(fmt.Errorf("read %d records, more than the %d produced", c.records, s.Records))
	}
	return nil
}
