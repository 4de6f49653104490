package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeOutcome is what one consumer read.
type consumeOutcome struct {
	records, bytes int64
	last           time.Time // receipt of the last record
	firstErr       error
	timedOut       bool
}

// newConsumer returns a client reading every partition of topic from the
// given offsets (assigned partitions, never a group).
func newConsumer(addr, topic string, offsets map[int32]kgo.Offset, conn ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, conn...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create consumer: %w", err)
	}
	return cl, nil
}

func fromStart(partitions int32) map[int32]kgo.Offset {
	m := make(map[int32]kgo.Offset, partitions)
	for p := int32(0); p < partitions; p++ {
		m[p] = kgo.NewOffset().AtStart()
	}
	return m
}

// consumeN polls cl until it has read want records or ctx is done, calling
// each (when not nil) for every record at receipt. Fetch errors other than
// the stop itself are kept (the first) and polling goes on: kgo retries
// them.
func consumeN(ctx context.Context, cl *kgo.Client, want int64, each func(r *kgo.Record, now time.Time), prog *progress) consumeOutcome {
	var out consumeOutcome
	for out.records < want {
		if ctx.Err() != nil {
			out.timedOut = true
			break
		}
		fs := cl.PollFetches(ctx)
		now := time.Now()
		fs.EachError(func(topic string, p int32, err error) {
			if !isStop(err) && out.firstErr == nil {
				out.firstErr = fmt.Errorf("cannot fetch %s/%d: %w", topic, p, err)
			}
		})
		n := int64(0)
		fs.EachRecord(func(r *kgo.Record) {
			n++
			out.bytes += int64(len(r.Key) + len(r.Value))
			if each != nil {
				each(r, now)
			}
		})
		if n > 0 {
			out.records += n
			out.last = now
			prog.done.Add(n)
		}
	}
	return out
}
