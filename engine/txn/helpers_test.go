package txn

import (
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var errDisk = errors.New("disk on fire")

// fakeBackend keeps appends in memory and answers them in order on one
// goroutine. Marker writes are recorded and answered with markerCode.
type fakeBackend struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []func()
	held    []func() // callbacks parked while hold is set
	hold    bool
	stopped bool
	done    chan struct{}

	recs      map[int32][]Record // (mu) durable records by partition
	appendErr error              // (mu) appends fail with it while set
	appends   int                // (mu)
	markers   []markerCall       // (mu)
	// markerCode answers marker call n (from 0) for tp; nil = 0.
	markerCode func(n int, tp TopicPartition) int16
	nextPid    int64
	pidErr     error
	missing    map[TopicPartition]bool
}

type markerCall struct {
	pid        int64
	epoch      int16
	coordEpoch int32
	commit     bool
	parts      []TopicPartition
}

func newFakeBackend() *fakeBackend {
	f := &fakeBackend{recs: map[int32][]Record{}, nextPid: 1000, missing: map[TopicPartition]bool{}, done: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	go f.run()
	return f
}

func (f *fakeBackend) run() {
	defer close(f.done)
	f.mu.Lock()
	for {
		for len(f.queue) == 0 && !f.stopped {
			f.cond.Wait()
		}
		if len(f.queue) == 0 {
			f.mu.Unlock()
			return
		}
		fn := f.queue[0]
		f.queue = f.queue[1:]
		f.mu.Unlock()
		fn()
		f.mu.Lock()
	}
}

// later queues fn (or parks it while hold is set). f.mu must be held.
func (f *fakeBackend) laterLocked(fn func()) {
	if f.hold {
		f.held = append(f.held, fn)
		return
	}
	f.queue = append(f.queue, fn)
	f.cond.Signal()
}

func (f *fakeBackend) stop() {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	f.stopped = true
	f.queue = append(f.queue, f.held...)
	f.held = nil
	f.cond.Signal()
	f.mu.Unlock()
	<-f.done
}

func (f *fakeBackend) setHold(h bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = h
	if !h {
		f.queue = append(f.queue, f.held...)
		f.held = nil
		f.cond.Signal()
	}
}

func (f *fakeBackend) Append(p int32, recs []Record, done func(error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends++
	err := f.appendErr
	if err == nil {
		f.recs[p] = append(f.recs[p], recs...)
	}
	f.laterLocked(func() { done(err) })
}

func (f *fakeBackend) AppendErrorCode(err error) int16 {
	if errors.Is(err, errDisk) {
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

func (f *fakeBackend) WriteMarkers(pid int64, epoch int16, coordEpoch int32, commit bool, parts []TopicPartition, done func([]int16)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.markers)
	f.markers = append(f.markers, markerCall{pid, epoch, coordEpoch, commit, append([]TopicPartition(nil), parts...)})
	codes := make([]int16, len(parts))
	if f.markerCode != nil {
		for i, tp := range parts {
			codes[i] = f.markerCode(n, tp)
		}
	}
	f.laterLocked(func() { done(codes) })
}

func (f *fakeBackend) NewProducerID() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pidErr != nil {
		return 0, f.pidErr
	}
	f.nextPid++
	return f.nextPid, nil
}

func (f *fakeBackend) PartitionExists(topic string, partition int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.missing[TopicPartition{topic, partition}] && partition >= 0
}

func (f *fakeBackend) OffsetsPartition(group string) TopicPartition {
	return TopicPartition{"__consumer_offsets", testPartitionFor(group, 50)}
}

func (f *fakeBackend) markerCalls() []markerCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]markerCall(nil), f.markers...)
}

// allRecords decodes every durable record, in partition then log order.
func (f *fakeBackend) allRecords(t *testing.T) []decoded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []decoded
	for p := int32(0); p < 64; p++ {
		for _, r := range f.recs[p] {
			var k kmsg.TxnMetadataKey
			if err := k.ReadFrom(r.Key); err != nil {
				t.Fatalf("bad key: %v", err)
			}
			d := decoded{id: k.TransactionalID, tombstone: r.Value == nil}
			if r.Value != nil {
				var err error
				if d.data, err = decodeValue(r.Value); err != nil {
					t.Fatalf("bad value: %v", err)
				}
			}
			out = append(out, d)
		}
	}
	return out
}

type decoded struct {
	id        string
	tombstone bool
	data      txnData
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	c     *Coordinator
	be    *fakeBackend
	clock *fakeClock
}

const coordEpoch = 7

// newEnv is a loaded coordinator on a fake backend and clock, with 4
// __transaction_state partitions and short waits.
func newEnv(t *testing.T) *env {
	e := newUnloadedEnv(t)
	e.c.Loaded(coordEpoch)
	return e
}

func newUnloadedEnv(t *testing.T) *env {
	t.Helper()
	be := newFakeBackend()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	cfg := DefaultConfig()
	cfg.PartitionFor = testPartitionFor
	cfg.AbortInterval, cfg.ExpireInterval = 0, 0 // the tests sweep by hand
	c := New(cfg, be, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.now = clock.Now
	c.markerBackoff = 2 * time.Millisecond
	t.Cleanup(func() {
		c.Close()
		be.stop()
	})
	return &env{t: t, c: c, be: be, clock: clock}
}

// call runs a handler and returns its one response; it fails the test if
// none comes within 5 s, or if a second one comes.
func (e *env) call(f func(Respond)) kmsg.Response {
	e.t.Helper()
	ch := make(chan kmsg.Response, 2)
	f(func(r kmsg.Response) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		e.t.Fatal("no response")
		return nil
	}
}

func (e *env) init(v int16, id string, timeoutMs int32, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	e.t.Helper()
	r := kmsg.NewPtrInitProducerIDRequest()
	r.Version, r.TransactionalID, r.TransactionTimeoutMillis, r.ProducerID, r.ProducerEpoch = v, &id, timeoutMs, pid, epoch
	return e.call(func(rf Respond) { e.c.InitProducerID(r, rf) }).(*kmsg.InitProducerIDResponse)
}

// initOK inits id (v4, no expected pid) and returns its pid and epoch.
func (e *env) initOK(id string) (int64, int16) {
	e.t.Helper()
	resp := e.init(4, id, 60000, -1, -1)
	if resp.ErrorCode != 0 {
		e.t.Fatalf("init %s: %v", id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// add sends AddPartitionsToTxn (v0–3) and returns each partition's code in
// request order.
func (e *env) add(v int16, id string, pid int64, epoch int16, parts ...TopicPartition) []int16 {
	e.t.Helper()
	r := kmsg.NewPtrAddPartitionsToTxnRequest()
	r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch = v, id, pid, epoch
	for _, tp := range parts {
		if n := len(r.Topics); n == 0 || r.Topics[n-1].Topic != tp.Topic {
			r.Topics = append(r.Topics, kmsg.AddPartitionsToTxnRequestTopic{Topic: tp.Topic})
		}
		r.Topics[len(r.Topics)-1].Partitions = append(r.Topics[len(r.Topics)-1].Partitions, tp.Partition)
	}
	resp := e.call(func(rf Respond) { e.c.AddPartitionsToTxn(r, rf) }).(*kmsg.AddPartitionsToTxnResponse)
	var codes []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	return codes
}

// add1 adds parts and fails unless each gets code want.
func (e *env) addOK(id string, pid int64, epoch int16, parts ...TopicPartition) {
	e.t.Helper()
	for _, code := range e.add(3, id, pid, epoch, parts...) {
		if code != 0 {
			e.t.Fatalf("add to %s: %v", id, kerr.ErrorForCode(code))
		}
	}
}

func (e *env) end(v int16, id string, pid int64, epoch int16, commit bool) *kmsg.EndTxnResponse {
	e.t.Helper()
	r := kmsg.NewPtrEndTxnRequest()
	r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = v, id, pid, epoch, commit
	return e.call(func(rf Respond) { e.c.EndTxn(r, rf) }).(*kmsg.EndTxnResponse)
}

// state is a copy of id's durable data and whether a transition is
// pending; ok is false if the id is unknown.
func (e *env) state(id string) (d txnData, pending, ok bool) {
	e.c.lock()
	defer e.c.unlock()
	t := e.c.txns[id]
	if t == nil {
		return txnData{}, false, false
	}
	return t.clone(), t.pending != nil, true
}

// waitState waits until id is in s with nothing pending.
func (e *env) waitState(id string, s State) txnData {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, pending, ok := e.state(id)
		if ok && d.state == s && !pending {
			return d
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: state %v (pending %v, known %v), want %v", id, d.state, pending, ok, s)
		}
		time.Sleep(time.Millisecond)
	}
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}

func tp(topic string, p int32) TopicPartition { return TopicPartition{topic, p} }

// testPartitionFor stands in for Kafka's partitioner, which the engine
// passes (engine/group.PartitionFor, tested there).
func testPartitionFor(id string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32() % uint32(partitions))
}

func (f *fakeBackend) InternalTopic(topic string) bool {
	return topic == "__consumer_offsets" || topic == "__transaction_state"
}
