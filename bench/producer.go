package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// flushGrace is how long producers may take past the time limit to learn
// the fate of records already sent, before their clients are closed.
const flushGrace = 10 * time.Second

// payload returns n random upper-case letters, like Kafka's
// producer-perf-test: compressible about as well as typical text.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'A' + byte(rand.IntN(26))
	}
	return b
}

// next returns the key of the next record; safe for concurrent use.
func (k keyMode) next() []byte {
	switch {
	case k.random:
		return strconv.AppendUint(make([]byte, 0, 16), rand.Uint64(), 16)
	case len(k.set) > 0:
		return k.set[rand.IntN(len(k.set))]
	}
	return nil
}

// produceOutcome is what a full-speed produce achieved.
type produceOutcome struct {
	acked, bytes, failed int64
	firstErr             error
	last                 time.Time       // last successful ack
	lat                  []time.Duration // per-record ack latency, when kept
	timedOut             bool
}

// producerState is one producer's share of the outcome, written by kgo's
// promise callbacks.
type producerState struct {
	mu  sync.Mutex
	out produceOutcome
}

func (st *producerState) record(r *kgo.Record, err error, sent time.Time, keepLat bool) {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case err == nil:
		st.out.acked++
		st.out.bytes += int64(len(r.Key) + len(r.Value))
		st.out.last = now
		if keepLat {
			st.out.lat = append(st.out.lat, now.Sub(sent))
		}
	case isStop(err):
		// Never sent because the time limit stopped the workload.
		st.out.timedOut = true
	default:
		st.out.failed++
		if st.out.firstErr == nil {
			st.out.firstErr = err
		}
	}
}

// produceFull produces s.Records records of s.Size bytes to topic from
// s.Producers separate clients as fast as the clients allow, until the
// count is done or s.Timeout has passed. Clients are connected before start
// is called, so start marks the beginning of the timed part; it returns
// when every record's fate is known (or flushGrace after the time limit).
func produceFull(ctx context.Context, addr, topic string, s Spec, keepLat bool, start func(), prog *progress) (*produceOutcome, time.Time, error) {
	keys, err := parseKeys(s.Keys)
	if err != nil {
		return nil, time.Time{}, err
	}
	value := payload(s.Size)
	clients := make([]*kgo.Client, 0, s.Producers)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for i := 0; i < s.Producers; i++ {
		cl, err := kgo.NewClient(s.producerOpts(addr, topic)...)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("cannot create producer: %w", err)
		}
		clients = append(clients, cl)
		pctx, cancel := context.WithTimeout(ctx, setupTimeout)
		err = cl.Ping(pctx)
		cancel()
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("cannot reach broker %s: %w", addr, err)
		}
	}

	states := make([]*producerState, s.Producers)
	var wg sync.WaitGroup
	if start != nil {
		start()
	}
	t0 := time.Now()
	// Producing stops at the time limit; records already handed to the
	// client get the flush grace to be acked. A record whose context ends
	// while buffered fails, which would also reset an idempotent producer:
	// hence two contexts.
	runCtx, cancel := context.WithDeadline(ctx, t0.Add(s.Timeout))
	defer cancel()
	sendCtx, sendCancel := context.WithDeadline(ctx, t0.Add(s.Timeout+flushGrace))
	defer sendCancel()
	for i, cl := range clients {
		n := s.Records / int64(s.Producers)
		if int64(i) < s.Records%int64(s.Producers) {
			n++
		}
		st := &producerState{}
		if keepLat {
			// Grows past this only as records are acked.
			st.out.lat = make([]time.Duration, 0, min(n, 1<<20))
		}
		states[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := int64(0); j < n && runCtx.Err() == nil; j++ {
				sent := time.Now()
				cl.Produce(sendCtx, &kgo.Record{Key: keys.next(), Value: value}, func(r *kgo.Record, err error) {
					st.record(r, err, sent, keepLat)
					if err == nil {
						prog.done.Add(1)
					}
				})
			}
			if err := cl.Flush(sendCtx); err != nil {
				st.mu.Lock()
				st.out.timedOut = true
				st.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Closing fails whatever a flush that ran out of time left behind;
	// then every callback has run.
	for _, cl := range clients {
		cl.Close()
	}
	clients = nil

	out := &produceOutcome{}
	for _, st := range states {
		st.mu.Lock()
		o := st.out
		st.mu.Unlock()
		out.acked += o.acked
		out.bytes += o.bytes
		out.failed += o.failed
		out.timedOut = out.timedOut || o.timedOut
		if out.firstErr == nil {
			out.firstErr = o.firstErr
		}
		if o.last.After(out.last) {
			out.last = o.last
		}
		out.lat = append(out.lat, o.lat...)
	}
	if out.acked+out.failed < s.Records {
		out.timedOut = true
	}
	return out, t0, nil
}
