package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The bulk load under an e2e run (Spec.Bulk): the edge box's normal day,
// against which the tail is measured. A second producer pushes
// bulkRecordSize records at Spec.Bulk MiB/s (paced every millisecond, with
// the spec's acks, or Spec.BulkAcks) to a topic of its own, and a consumer reads that topic
// from its start, both from before the e2e producer starts until it ends.
// samsa-bench runs them in a process of its own (Spec.BulkProcess,
// workload_bulk_child.go), as the edge box's other applications are: in
// the e2e clients' process, their 400 MiB/s through franz-go (125% of a
// core on the 2-core test VM) delayed the clients whose latency is
// measured. Under 200 MiB/s, three runs each in turn, e2e medians p50 /
// p99 / p99.9: 2.43 / 48.0 / 72.4 ms with the load apart, 4.04 / 67.5 /
// 106 ms with it inside.

// bulkRecordSize is the bulk producer's record size: big enough that 200
// MiB/s is a few thousand records a second for the load generator.
const bulkRecordSize = 16 << 10

// BulkFigures is what a bulk load moved, MiB/s.
type BulkFigures struct {
	Produced float64 `json:"produced_mib_s"`
	Consumed float64 `json:"consumed_mib_s"`
	// Bytes is what it acknowledged plus read: the broker's CPU per GiB
	// counts it with the e2e workload's.
	Bytes int64 `json:"bytes"`
}

// bulkLoad is a running bulk producer and reader.
type bulkLoad struct {
	cancel   context.CancelFunc // stops the reader
	stopProd context.CancelFunc // stops releasing records
	prodDone chan struct{}      // the producer loop has ended
	drop     context.CancelFunc // fails the records not yet acknowledged
	wg       sync.WaitGroup     // the reader
	prod     *kgo.Client
	cons     *kgo.Client
	topic    string
	start    time.Time
	acked    atomic.Int64 // bytes
	read     atomic.Int64 // bytes
	failed   atomic.Int64 // records
	firstErr atomic.Pointer[error]
}

// bulkRunner is a running bulk load, here or in a process of its own.
type bulkRunner interface {
	// stop ends the load and returns what it moved per second: the
	// bytes acknowledged over the time records were released. An error
	// if it fell short of its rate by more than a tenth or a record
	// failed.
	stop(ctx context.Context, e *env) (*BulkFigures, error)
}

// startBulk starts the bulk load: in a process of its own when the spec
// names one (Spec.BulkProcess), else in this one.
func startBulk(ctx context.Context, e *env) (bulkRunner, error) {
	if len(e.spec.BulkProcess) > 0 {
		return startBulkChild(ctx, e)
	}
	return startBulkHere(ctx, e)
}

// startBulkHere creates the bulk topic and starts the load in this
// process.
func startBulkHere(ctx context.Context, e *env) (*bulkLoad, error) {
	s := e.spec
	topic := freshTopic("bulk")
	if err := createTopic(ctx, e.adm, topic, s.Partitions); err != nil {
		return nil, err
	}
	opts := append(s.bulkSpec().producerOpts(e.addr, topic), kgo.ProducerLinger(0), kgo.MaxBufferedBytes(64<<20))
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create the bulk producer: %w", err)
	}
	cons, err := newConsumer(e.addr, topic, fromStart(s.Partitions), s.Conn...)
	if err != nil {
		prod.Close()
		return nil, err
	}
	bctx, cancel := context.WithCancel(ctx)
	// The records live on rctx, not on the loop's lctx: those in flight
	// when the load stops are waited for (up to bulkDrain) and counted,
	// not failed by the stop.
	rctx, drop := context.WithCancel(ctx)
	lctx, stopProd := context.WithCancel(rctx)
	b := &bulkLoad{cancel: cancel, stopProd: stopProd, prodDone: make(chan struct{}), drop: drop,
		prod: prod, cons: cons, start: time.Now(), topic: topic}
	b.wg.Add(1)
	go b.produce(lctx, rctx, int64(s.Bulk)<<20)
	go b.consume(bctx)
	return b, nil
}

func (b *bulkLoad) fail(err error) {
	b.failed.Add(1)
	b.firstErr.CompareAndSwap(nil, &err)
}

// produce releases, every millisecond, the records due at rate bytes/s
// since the start, on rctx, until ctx ends. A broker that cannot keep up
// fills the client's buffer, and Produce then blocks: the records due
// fall behind.
func (b *bulkLoad) produce(ctx, rctx context.Context, rate int64) {
	defer close(b.prodDone)
	value := payload(bulkRecordSize)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int64(time.Since(b.start).Seconds()*float64(rate)) / bulkRecordSize
		for ; sent < due && ctx.Err() == nil; sent++ {
			b.prod.Produce(rctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
				switch {
				case err == nil:
					b.acked.Add(int64(len(r.Value)))
				case !isStop(err):
					b.fail(err)
				}
			})
		}
	}
}

func (b *bulkLoad) consume(ctx context.Context) {
	defer b.wg.Done()
	for ctx.Err() == nil {
		fs := b.cons.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !isStop(err) {
				b.fail(fmt.Errorf("cannot fetch %s/%d: %w", topic, p, err))
			}
		})
		fs.EachRecord(func(r *kgo.Record) { b.read.Add(int64(len(r.Value))) })
	}
}

// bulkDrain bounds the wait, at stop, for the records still in flight.
const bulkDrain = 5 * time.Second

// stop ends the load and returns what it moved per second: the bytes
// acknowledged over the time records were released (those in flight at
// the stop are waited for, up to bulkDrain, so that a short run is not
// undercounted by its last window). An error if it fell short of its rate
// by more than a tenth or a record failed.
func (b *bulkLoad) stop(ctx context.Context, e *env) (_ *BulkFigures, err error) {
	rate := e.spec.Bulk
	b.stopProd()
	select {
	case <-b.prodDone:
	case <-time.After(bulkDrain):
		b.drop() // a Produce blocked on the client's full buffer
		<-b.prodDone
	}
	took := time.Since(b.start).Seconds()
	fctx, fcancel := context.WithTimeout(ctx, bulkDrain)
	_ = b.prod.Flush(fctx) // only ctx errors: what it left is a shortfall below
	fcancel()
	b.drop() // what is left is not counted: a shortfall below
	b.cancel()
	b.wg.Wait()
	readTook := time.Since(b.start).Seconds()
	b.prod.Close()
	b.cons.Close()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
	defer cancel()
	if resp, err := e.adm.DeleteTopic(dctx, b.topic); err == nil && resp.Err != nil || err != nil {
		slog.Warn("cannot delete the bulk topic", "subsystem", "bench", "topic", b.topic, "err", errors.Join(err, resp.Err))
	}
	f := &BulkFigures{
		Produced: float64(b.acked.Load()) / (1 << 20) / took,
		Consumed: float64(b.read.Load()) / (1 << 20) / readTook,
		Bytes:    b.acked.Load() + b.read.Load(),
	}
	if p := b.firstErr.Load(); p != nil {
		return f, fmt.Errorf("bulk load: %d records failed, the first: %w", b.failed.Load(), *p)
	}
	if f.Produced < 0.9*float64(rate) {
		return f, fmt.Errorf("bulk load: %.0f MiB/s acknowledged, short of the %d MiB/s asked (the machine cannot carry it; ask less)", f.Produced, rate)
	}
	return f, nil
}
