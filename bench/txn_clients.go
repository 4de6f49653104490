package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The txn workload's phases (txn.go). Each runs on its own goroutine
// (RunTxn's) and waits for every goroutine it starts.

// txnClientSpec is the produce workload's spec the txn producers share:
// acks=all (so idempotent), no compression, no keys; records may take
// the phase and the flush grace to be acknowledged.
func (s TxnSpec) clientSpec() Spec {
	c := DefaultSpec(KindProduce)
	c.Size, c.Partitions, c.Timeout = s.Size, s.Partitions, s.Duration
	return c
}

// producer returns a connected producer to topic: idempotent, and
// transactional when id is not "".
func (r *txnRun) producer(ctx context.Context, topic, id string, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := r.s.clientSpec().producerOpts(r.t.Addr, topic)
	if id != "" {
		opts = append(opts, kgo.TransactionalID(id))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create producer: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("cannot reach broker %s: %w", r.t.Addr, err)
	}
	return cl, nil
}

// txnID is a transactional id unique to this process and moment.
func txnID(kind string) string { return freshTopic(kind) }

// produceUntil produces value to topic ("": cl's default topic) as fast
// as cl takes records, until end (checked every 16 records) or ctx ends;
// each record's fate goes to st. It returns how many it handed to cl.
func produceUntil(ctx context.Context, cl *kgo.Client, topic string, value []byte, end time.Time, st *producerState) int64 {
	var n int64
	for ; ; n++ {
		if n%16 == 0 && (!time.Now().Before(end) || ctx.Err() != nil) {
			return n
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(r *kgo.Record, err error) {
			st.record(r, err, time.Time{}, false)
		})
	}
}

// txnTally is what a run of transactions achieved.
type txnTally struct {
	acked, failed, committed, committedBytes int64
	commits, aborts                          int
	lastCommit                               time.Time
	flush, commit                            []time.Duration
}

// endTxn flushes cl and ends its transaction, committing when every
// record of it was acknowledged; st is the transaction's records. It
// returns the first record error of the transaction, and an error that
// leaves the producer unusable.
func endTxn(ctx context.Context, cl *kgo.Client, st *producerState, t *txnTally) (recordErr, fatal error) {
	f0 := time.Now()
	ferr := cl.Flush(ctx)
	c0 := time.Now()
	st.mu.Lock()
	o := st.out
	st.mu.Unlock()
	commit := ferr == nil && o.failed == 0
	cerr := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
	c1 := time.Now()
	t.acked += o.acked
	t.failed += o.failed
	t.flush = append(t.flush, c0.Sub(f0))
	recordErr = o.firstErr
	if ferr != nil {
		recordErr = fmt.Errorf("cannot flush the transaction: %w", ferr)
	}
	if commit && cerr == nil {
		t.commits++
		t.committed += o.acked
		t.committedBytes += o.bytes
		t.lastCommit = c1
		t.commit = append(t.commit, c1.Sub(c0))
		return nil, nil
	}
	t.aborts++
	if cerr != nil {
		// The documented way out of a failed commit is an abort.
		if aerr := cl.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
			return recordErr, fmt.Errorf("cannot end the transaction (%v) nor abort it: %w", cerr, aerr)
		}
		return recordErr, fmt.Errorf("cannot commit the transaction: %w", cerr)
	}
	return recordErr, nil
}

// txnSlice is how long each producer runs before the other takes a turn
// in the producing phase: ten commits at the default interval.
const txnSlice = time.Second

// sliceOrder is which producer runs in each of n slices, true for the
// transactional one: pairs in alternating order (ABBA ABBA ..., starting
// with the transactional producer in even rounds), so both see the same
// disk and page-cache state on average and a drift over the phase (dirty
// pages piling up, segments rolling) is charged to neither side.
func sliceOrder(n int, txnFirst bool) []bool {
	order := make([]bool, 0, 2*n)
	first := txnFirst
	for range n {
		order = append(order, first, !first)
		first = !first
	}
	return order
}

// produceBoth is phases 1 and 2: the idempotent producer (the baseline)
// and the transactional one, committing every CommitInterval, connected
// together and taking turns of txnSlice until each has produced for
// Duration. Each turn ends with the producer's records acknowledged (a
// Flush, or the last EndTransaction), and each side's rate is its records
// over the sum of its turns. Taking turns rather than running one phase
// after the other matters on a disk being filled at full speed: measured
// back to back, whichever phase ran second was 0.5-0.6x of the first,
// for either producer. It returns the idempotent records acknowledged,
// the consume-transform-produce phase's input.
func (r *txnRun) produceBoth(ctx context.Context, idemTopic, txnTopic, warmTopic string) int64 {
	s := r.s
	idem, err := r.producer(ctx, idemTopic, "")
	if err != nil {
		r.res.fail(err)
		return 0
	}
	defer idem.Close()
	txn, err := r.producer(ctx, txnTopic, txnID("txn-producer"))
	if err != nil {
		r.res.fail(err)
		return 0
	}
	defer txn.Close()
	// Not cancelled at the end of a turn: a cancelled EndTransaction
	// leaves the transaction's outcome unknown.
	sendCtx, cancel := context.WithDeadline(ctx, time.Now().Add(2*s.Duration+flushGrace))
	defer cancel()

	slice := min(txnSlice, s.Duration)
	turns := int((s.Duration + slice - 1) / slice)
	if fatal := r.warmUp(sendCtx, idem, txn, warmTopic, slice/2); fatal != nil {
		r.res.fail(fatal)
		return 0
	}
	var (
		idemOut           produceOutcome
		idemTime, txnTime time.Duration
		idemCPU, txnCPU   cpuSum
		t                 txnTally
		value             = payload(s.Size)
	)
	r.res.TxnFirst = r.round%2 == 0
	for _, isTxn := range sliceOrder(turns, r.res.TxnFirst) {
		if ctx.Err() != nil {
			break
		}
		m := r.meter()
		if err := m.start(); err != nil {
			r.res.fail(err)
			return 0
		}
		t0 := time.Now()
		if isTxn {
			committed := t.committed
			if fatal := r.txnTurn(sendCtx, txn, "", value, t0.Add(slice), &t); fatal != nil {
				r.res.fail(fatal)
				break
			}
			if t.committed > committed {
				txnTime += t.lastCommit.Sub(t0)
			}
			txnCPU.add(m, int64(s.Size)*(t.committed-committed), r.res)
			continue
		}
		var st producerState
		produceUntil(sendCtx, idem, "", value, t0.Add(slice), &st)
		if ferr := idem.Flush(sendCtx); ferr != nil {
			r.res.fail(fmt.Errorf("idempotent producer: cannot flush: %w", ferr))
		}
		o := st.out
		idemOut.acked += o.acked
		idemOut.bytes += o.bytes
		idemOut.failed += o.failed
		if idemOut.firstErr == nil {
			idemOut.firstErr = o.firstErr
		}
		if o.acked > 0 {
			idemTime += o.last.Sub(t0)
		}
		idemCPU.add(m, o.bytes, r.res)
	}
	res := r.res
	res.Idempotent = newThroughput(idemOut.acked, idemOut.bytes, idemTime)
	res.Failed += idemOut.failed
	res.fail(idemOut.firstErr)
	idemCPU.keep(res, txnPhaseIdempotent)
	res.TxnAcked, res.Commits, res.Aborts = t.acked, t.commits, t.aborts
	res.Failed += t.failed
	res.Transactional = newThroughput(t.committed, t.committedBytes, txnTime)
	if t.commits == 0 {
		res.Transactional = newThroughput(0, 0, 0)
	}
	txnCPU.keep(res, txnPhaseTxn)
	res.Flush, res.Commit = summarize(t.flush), summarize(t.commit)
	r.logf("idempotent: %d records, %s records/s, %s MiB/s", idemOut.acked,
		fmtCount(res.Idempotent.RecordsPerSec), fmtMiB(res.Idempotent.MiBPerSec))
	line := fmt.Sprintf("transactional: %d records committed in %d transactions (%d aborted), %s records/s, %s MiB/s",
		t.committed, t.commits, t.aborts, fmtCount(res.Transactional.RecordsPerSec), fmtMiB(res.Transactional.MiBPerSec))
	if res.Commit != nil {
		line += fmt.Sprintf("; EndTransaction p50 %s p99 %s max %s ms", fmtMs(res.Commit.P50), fmtMs(res.Commit.P99), fmtMs(res.Commit.Max))
	}
	r.logf("%s", line)
	return idemOut.acked
}

// warmUp runs each producer for d on warmTopic, uncounted, before the
// measured turns. The first second after the broker started ran at about
// half speed for whichever producer took it (216,000-281,000 records/s
// against 370,000-740,000 in the later turns of the same rounds, either
// producer), so the turn order decided the ratio: 0.46-0.66x in rounds
// where the transactional producer went first, 0.96-1.11x where the
// idempotent one did (`samsa-bench txn -rounds 7`).
func (r *txnRun) warmUp(ctx context.Context, idem, txn *kgo.Client, warmTopic string, d time.Duration) error {
	value := payload(r.s.Size)
	var st producerState
	produceUntil(ctx, idem, warmTopic, value, time.Now().Add(d), &st)
	if err := idem.Flush(ctx); err != nil {
		return fmt.Errorf("idempotent producer: cannot flush the warm-up: %w", err)
	}
	if st.out.firstErr != nil {
		return fmt.Errorf("idempotent producer: warm-up: %w", st.out.firstErr)
	}
	var t txnTally
	if err := r.txnTurn(ctx, txn, warmTopic, value, time.Now().Add(d), &t); err != nil {
		return err
	}
	if t.aborts > 0 {
		return fmt.Errorf("transactional producer: %d of its warm-up transactions aborted", t.aborts)
	}
	return nil
}

// txnTurn runs transactions on cl producing to topic ("": cl's default
// topic), each committed after CommitInterval, until end. It returns an error that leaves the producer unusable;
// record errors go to the round.
func (r *txnRun) txnTurn(ctx context.Context, cl *kgo.Client, topic string, value []byte, end time.Time, t *txnTally) error {
	for time.Now().Before(end) && ctx.Err() == nil {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("cannot begin a transaction: %w", err)
		}
		var st producerState
		produceUntil(ctx, cl, topic, value, minTime(time.Now().Add(r.s.CommitInterval), end), &st)
		recErr, fatal := endTxn(ctx, cl, &st, t)
		r.res.fail(recErr)
		if fatal != nil {
			return fatal
		}
	}
	return nil
}

// cpuSum adds up the broker's CPU over one side's turns.
type cpuSum struct {
	cpu   float64
	moved int64
	last  *BrokerUsage
}

// add stops m, the meter of one turn that moved the given payload bytes.
func (c *cpuSum) add(m *meter, moved int64, res *TxnResult) {
	u, err := m.stop(moved)
	if err != nil {
		res.fail(err)
		return
	}
	if u != nil {
		c.cpu += u.CPUSeconds
		c.moved += moved
		c.last = u
	}
}

// keep records the sum as the usage of phase.
func (c *cpuSum) keep(res *TxnResult, phase string) {
	if c.last == nil {
		return
	}
	u := *c.last
	u.CPUSeconds = c.cpu
	u.CPUSecPerGiB = 0
	if c.moved > 0 {
		u.CPUSecPerGiB = c.cpu / (float64(c.moved) / (1 << 30))
	}
	if res.Usage == nil {
		res.Usage = map[string]*BrokerUsage{}
	}
	res.Usage[phase] = &u
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// txnConsumer returns a client reading every partition of topic from
// offset 0 at the given isolation level.
func txnConsumer(addr, topic string, partitions int32, committed bool) (*kgo.Client, error) {
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(partitions)}),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchIsolationLevel(iso),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot create consumer: %w", err)
	}
	return cl, nil
}

// extraWait is how long a consumer that has read every record it expects
// keeps polling, untimed, to catch records it should not see.
const extraWait = 300 * time.Millisecond

// readBoth is phase 3: the transactional topic read from the start by a
// read_uncommitted and a read_committed consumer, one after the other;
// odd rounds read uncommitted first.
func (r *txnRun) readBoth(ctx context.Context, topic string) {
	res := r.res
	if res.Transactional == nil || res.TxnAcked == 0 {
		return
	}
	res.CommittedFirst = r.round%2 == 0
	order := []bool{false, true}
	if res.CommittedFirst {
		order = []bool{true, false}
	}
	for _, committed := range order {
		want, phase := res.TxnAcked, txnPhaseUncommit
		if committed {
			want, phase = res.Transactional.Records, txnPhaseCommitted
		}
		tp, err := r.readAll(ctx, topic, committed, want, phase)
		r.res.fail(err)
		if committed {
			res.ReadCommitted = tp
		} else {
			res.ReadUncommitted = tp
		}
		if tp != nil {
			r.logf("%s: %d records, %s MiB/s", phase, tp.Records, fmtMiB(tp.MiBPerSec))
		}
	}
}

// readAll reads topic from the start until want records, timed from
// creating the client to the last record, then polls extraWait more for
// records beyond want (an error).
func (r *txnRun) readAll(ctx context.Context, topic string, committed bool, want int64, phase string) (*Throughput, error) {
	rctx, cancel := context.WithTimeout(ctx, r.s.Timeout)
	defer cancel()
	m := r.meter()
	if err := m.start(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	cl, err := txnConsumer(r.t.Addr, topic, r.s.Partitions, committed)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	c := consumeN(rctx, cl, want, nil, startProgress(nil, "", 0))
	r.usage(phase, m, c.bytes)
	tp := newThroughput(c.records, c.bytes, c.last.Sub(t0))
	if c.records == 0 {
		tp = newThroughput(0, 0, 0)
	}
	if c.firstErr != nil {
		return tp, fmt.Errorf("%s: %w", phase, c.firstErr)
	}
	if c.records < want {
		return tp, fmt.Errorf("%s read %d of %d records within %v", phase, c.records, want, r.s.Timeout)
	}
	xctx, xcancel := context.WithTimeout(ctx, extraWait)
	defer xcancel()
	if x := consumeN(xctx, cl, math.MaxInt64, nil, startProgress(nil, "", 0)); c.records+x.records != want {
		return tp, fmt.Errorf("%s read %d records, want exactly %d", phase, c.records+x.records, want)
	}
	return tp, nil
}

// consumeTransformProduce is phase 4: a GroupTransactSession reads the
// idempotent topic (input records) read_committed in a group and writes
// each record to out, committing output and input offsets every
// CommitInterval, for Duration from the first record it polls (joining
// the group is not timed) or until it has read every input record.
func (r *txnRun) consumeTransformProduce(ctx context.Context, in, out string, input int64) {
	s := r.s
	res := r.res
	opts := append(s.clientSpec().producerOpts(r.t.Addr, out),
		kgo.TransactionalID(txnID("txn-ctp")),
		kgo.ConsumerGroup(freshTopic("txn-ctp-group")),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		res.fail(fmt.Errorf("cannot create the consume-transform-produce session: %w", err))
		return
	}
	defer sess.Close()

	// The first records come once the group has formed.
	jctx, jcancel := context.WithTimeout(ctx, r.s.Timeout)
	defer jcancel()
	var first kgo.Fetches
	for first.NumRecords() == 0 {
		first = sess.PollFetches(jctx)
		if err := fetchErr(first); err != nil {
			res.fail(fmt.Errorf("consume-transform-produce: %w", err))
			return
		}
		if jctx.Err() != nil {
			res.fail(fmt.Errorf("consume-transform-produce: no input record within %v", r.s.Timeout))
			return
		}
	}

	m := r.meter()
	if err := m.start(); err != nil {
		res.fail(err)
		return
	}
	t0 := time.Now()
	end := t0.Add(s.Duration)
	sendCtx, cancel := context.WithDeadline(ctx, end.Add(flushGrace))
	defer cancel()
	var (
		t        txnTally
		consumed int64
	)
	pending := first
	for ctx.Err() == nil {
		if err := sess.Begin(); err != nil {
			res.fail(fmt.Errorf("consume-transform-produce: cannot begin: %w", err))
			break
		}
		var st producerState
		produce := func(fs kgo.Fetches) {
			fs.EachRecord(func(rec *kgo.Record) {
				consumed++
				sess.Produce(sendCtx, &kgo.Record{Key: rec.Key, Value: rec.Value}, func(r *kgo.Record, err error) {
					st.record(r, err, time.Time{}, false)
				})
			})
		}
		produce(pending)
		txnEnd := minTime(time.Now().Add(s.CommitInterval), end)
		for consumed < input && time.Now().Before(txnEnd) {
			pctx, pcancel := context.WithDeadline(ctx, txnEnd)
			fs := sess.PollFetches(pctx)
			pcancel()
			if err := fetchErr(fs); err != nil {
				res.fail(fmt.Errorf("consume-transform-produce: %w", err))
			}
			produce(fs)
		}
		pending = nil
		st.mu.Lock()
		ok := st.out.failed == 0
		st.mu.Unlock()
		e0 := time.Now()
		committed, err := sess.End(sendCtx, kgo.TransactionEndTry(ok))
		e1 := time.Now()
		st.mu.Lock()
		o := st.out
		st.mu.Unlock()
		t.failed += o.failed
		res.fail(o.firstErr)
		if committed {
			t.commits++
			t.committed += o.acked
			t.committedBytes += o.bytes
			t.lastCommit = e1
			t.commit = append(t.commit, e1.Sub(e0))
		} else {
			t.aborts++
		}
		if err != nil {
			res.fail(fmt.Errorf("consume-transform-produce: cannot end the transaction: %w", err))
			break
		}
		if consumed >= input || !time.Now().Before(end) {
			break
		}
	}
	r.usage(txnPhaseCTP, m, consumed*int64(s.Size)+t.committedBytes)
	res.CTP = newThroughput(t.committed, t.committedBytes, t.lastCommit.Sub(t0))
	if t.commits == 0 {
		res.CTP = newThroughput(0, 0, 0)
	}
	res.CTPCommits, res.CTPAborts, res.CTPCommit = t.commits, t.aborts, summarize(t.commit)
	res.Failed += t.failed
	line := fmt.Sprintf("consume-transform-produce: %d records in %d transactions (%d aborted), %s records/s",
		t.committed, t.commits, t.aborts, fmtCount(res.CTP.RecordsPerSec))
	if res.CTPCommit != nil {
		line += fmt.Sprintf("; End p50 %s p99 %s ms", fmtMs(res.CTPCommit.P50), fmtMs(res.CTPCommit.P99))
	}
	r.logf("%s", line)
}

// fetchErr returns the first error of fs that is not the poll's own
// context ending.
func fetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(topic string, p int32, err error) {
		if first == nil && !isStop(err) {
			first = fmt.Errorf("cannot fetch %s/%d: %w", topic, p, err)
		}
	})
	return first
}

// endToEnd is phase 5: a transactional producer (no linger) sends Rate
// records/s for Duration, paced like the e2e workload, committing every
// CommitInterval; a read_committed consumer from the start takes, for
// each record past the first half second, its receipt minus its produce
// call. A record is readable only once its transaction commits, so this
// includes the wait for the commit: about half the interval on average.
func (r *txnRun) endToEnd(ctx context.Context, topic string) {
	s := r.s
	res := r.res
	cons, err := txnConsumer(r.t.Addr, topic, s.Partitions, true)
	if err != nil {
		res.fail(err)
		return
	}
	defer cons.Close()
	prod, err := r.producer(ctx, topic, txnID("txn-e2e"), kgo.ProducerLinger(0))
	if err != nil {
		res.fail(err)
		return
	}
	defer prod.Close()

	total := int64(float64(s.Rate) * s.Duration.Seconds())
	warm := min(int64(s.Rate)/2, total/10)
	m := r.meter()
	if err := m.start(); err != nil {
		res.fail(err)
		return
	}
	base := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, s.Duration+s.Timeout)
	defer cancel()

	// The consumer reads until it has every committed record; how many
	// that is is known once the producer is done.
	var target atomic.Int64
	target.Store(math.MaxInt64)
	var (
		lat      = make([]time.Duration, 0, total)
		received int64
		cerr     error
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for received < target.Load() && runCtx.Err() == nil {
			// Short polls, so the loop sees the target once it is set.
			pctx, pcancel := context.WithTimeout(runCtx, 100*time.Millisecond)
			fs := cons.PollFetches(pctx)
			pcancel()
			now := time.Now()
			if err := fetchErr(fs); err != nil && cerr == nil {
				cerr = err
			}
			fs.EachRecord(func(rec *kgo.Record) {
				received++
				if len(rec.Value) < e2eHeader || rec.Value[8] != 0 {
					return // warm-up
				}
				sent := time.Duration(binary.BigEndian.Uint64(rec.Value))
				lat = append(lat, now.Sub(base)-sent)
			})
		}
	}()

	sendCtx, sendCancel := context.WithDeadline(ctx, base.Add(s.Duration+flushGrace))
	defer sendCancel()
	fill := payload(s.Size - e2eHeader)
	var t txnTally
	var sent int64
	var fatal error
	tick := time.NewTicker(e2eTick)
	defer tick.Stop()
	st := &producerState{}
	if err := prod.BeginTransaction(); err != nil {
		fatal = fmt.Errorf("cannot begin a transaction: %w", err)
	}
	txnStart := time.Now()
	for fatal == nil && sent < total && ctx.Err() == nil {
		<-tick.C
		if time.Since(txnStart) >= s.CommitInterval {
			recErr, err := endTxn(sendCtx, prod, st, &t)
			res.fail(recErr)
			if fatal = err; fatal != nil {
				break
			}
			st = &producerState{}
			if err := prod.BeginTransaction(); err != nil {
				fatal = fmt.Errorf("cannot begin a transaction: %w", err)
				break
			}
			txnStart = time.Now()
		}
		due := min(int64(time.Since(base).Seconds()*float64(s.Rate)), total)
		cur := st
		for ; sent < due; sent++ {
			v := make([]byte, s.Size)
			binary.BigEndian.PutUint64(v, uint64(time.Since(base)))
			if sent < warm {
				v[8] = 1
			}
			copy(v[e2eHeader:], fill)
			prod.Produce(sendCtx, &kgo.Record{Value: v}, func(rec *kgo.Record, err error) {
				cur.record(rec, err, time.Time{}, false)
			})
		}
	}
	if fatal == nil {
		recErr, err := endTxn(sendCtx, prod, st, &t)
		res.fail(recErr)
		fatal = err
	}
	res.fail(fatal)
	target.Store(t.committed)
	wg.Wait()
	if runCtx.Err() != nil && received < t.committed {
		res.fail(fmt.Errorf("e2e: read_committed read %d of %d committed records within %v", received, t.committed, s.Timeout))
	}
	if cerr != nil && !errors.Is(cerr, context.Canceled) {
		res.fail(fmt.Errorf("e2e: %w", cerr))
	}
	if received > t.committed && t.aborts == 0 {
		res.fail(fmt.Errorf("e2e: read_committed read %d records, more than the %d committed", received, t.committed))
	}
	r.usage(txnPhaseE2E, m, (t.acked+received)*int64(s.Size))
	res.E2E, res.E2ESent, res.E2ECommits, res.E2EReceived = summarize(lat), sent, t.commits, received
	res.E2ECommit, res.E2EFlush = summarize(t.commit), summarize(t.flush)
	res.Failed += t.failed
	if res.E2E != nil {
		r.logf("e2e read_committed: %d records, p50 %s p99 %s p99.9 %s max %s ms", received,
			fmtMs(res.E2E.P50), fmtMs(res.E2E.P99), fmtMs(res.E2E.P999), fmtMs(res.E2E.Max))
	}
}
