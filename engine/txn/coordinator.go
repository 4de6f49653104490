// Package txn owns Kafka's transaction coordinator: transactional ids and
// their state machine (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
// EndTxn, DescribeTransactions, ListTransactions), the records of the
// internal __transaction_state log that make them durable, transaction
// timeouts, id expiration, and the completion of transactions by markers.
// It knows nothing of sockets or segments: the engine hands it decoded
// requests and a Backend that appends records and writes markers.
// Behaviour follows docs/design/transactions.md; locks and goroutines:
// LOCKS.md.
package txn

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config holds the coordinator's settings, with Kafka's names in comments.
type Config struct {
	MaxTimeout     time.Duration // transaction.max.timeout.ms
	IDExpiration   time.Duration // transactional.id.expiration.ms
	AbortInterval  time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms
	ExpireInterval time.Duration // transaction.remove.expired.transaction.cleanup.interval.ms
	// PartitionFor maps a transactional id to its __transaction_state
	// partition: Kafka's abs(javaHashCode) % n, the function groups use
	// (engine/group.PartitionFor), which the engine passes. Required.
	PartitionFor func(id string, partitions int32) int32
}

// DefaultConfig is Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MaxTimeout:     15 * time.Minute,
		IDExpiration:   7 * 24 * time.Hour,
		AbortInterval:  10 * time.Second,
		ExpireInterval: time.Hour,
	}
}

// Record is one record of __transaction_state; a nil Value is a tombstone.
type Record struct{ Key, Value []byte }

// TopicPartition names a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Backend is what the coordinator needs of the broker. The coordinator
// calls it with its lock held: no method may call back into the
// coordinator on the calling goroutine, and none should block for long.
type Backend interface {
	// Append writes recs to partition p of __transaction_state as one
	// batch and calls done once they are durable (fsynced, and on the
	// standby while one is in sync) or failed. Appends to one partition
	// complete in order. done runs on another goroutine, never before
	// Append returns (it takes the coordinator's lock).
	Append(p int32, recs []Record, done func(error))
	// AppendErrorCode maps an Append error to the Kafka code the client
	// gets (NOT_COORDINATOR for storage failures,
	// COORDINATOR_NOT_AVAILABLE when the standby is not in sync, ...).
	AppendErrorCode(err error) int16
	// WriteMarkers appends a commit or abort control batch for (pid,
	// epoch), stamped with coordEpoch, to every partition in parts, and
	// calls done (on another goroutine) with one Kafka error code per
	// partition, in order: 0 = the marker is durable;
	// UNKNOWN_TOPIC_OR_PARTITION = the partition is gone;
	// TRANSACTION_COORDINATOR_FENCED / NOT_COORDINATOR = this node no
	// longer coordinates; anything else is retried after a backoff.
	// __consumer_offsets partitions are among parts when offsets were
	// added: the engine settles the group's pending transactional offsets
	// when it writes those markers.
	WriteMarkers(pid int64, epoch int16, coordEpoch int32, commit bool, parts []TopicPartition, done func(codes []int16))
	// NewProducerID allocates a fresh producer id, never handed out
	// before (shared with idempotent producers).
	NewProducerID() (int64, error)
	// PartitionExists says whether a topic partition exists.
	PartitionExists(topic string, partition int32) bool
	// InternalTopic says whether topic is one of the broker's own
	// (__consumer_offsets, __transaction_state): clients may not add
	// its partitions to a transaction.
	InternalTopic(topic string) bool
	// OffsetsPartition is the __consumer_offsets partition of a group
	// (what AddOffsetsToTxn adds).
	OffsetsPartition(group string) TopicPartition
}

// Respond delivers a response; it may be called from any goroutine. The
// coordinator calls it after releasing its lock.
type Respond func(kmsg.Response)

// Stats is what /metrics reports of the coordinator.
type Stats struct {
	// States counts transactional ids by state name (Empty, Ongoing,
	// PrepareCommit, ...).
	States map[string]int
	// OldestOngoing is the age of the oldest transaction in Ongoing, 0
	// when there is none.
	OldestOngoing time.Duration
	// TimedOut counts transactions aborted because they ran past their
	// timeout, since New.
	TimedOut uint64
	// Markers counts markers written (one per partition per transaction
	// end), since New.
	Markers uint64
}

// Waits that samsa adds on top of Kafka (see the EndTxn and
// InitProducerId files for why). Fields of the Coordinator so tests can
// shorten them.
const (
	defaultEndWait       = 5 * time.Second
	defaultInitWait      = 5 * time.Second
	defaultImplicitWait  = 100 * time.Millisecond // add.partitions.to.txn.retry.backoff.max.ms
	defaultMarkerBackoff = 100 * time.Millisecond
	maxMarkerBackoff     = time.Second
)

// Coordinator is the transaction coordinator of one node.
type Coordinator struct {
	cfg    Config
	be     Backend
	parts  int32 // partitions of __transaction_state
	logger *slog.Logger
	now    func() time.Time

	endWait, initWait, implicitWait time.Duration
	markerBackoff                   time.Duration

	mu sync.Mutex
	// deferred holds responses to send once mu is released (unlock).
	deferred       []func()           // (mu)
	txns           map[string]*txn    // (mu)
	calls          map[*call]struct{} // (mu) requests not yet answered
	loaded         bool               // (mu)
	notCoordinator bool               // (mu) a standby: NOT_COORDINATOR until Loaded
	closed         bool               // (mu)
	coordEpoch     int32              // (mu) stamped on markers; set by Loaded
	gen            uint64             // (mu) bumped by Unload and Close: callbacks of an older generation are stale
	timedOut       uint64             // (mu)
	markers        uint64             // (mu)
	loopOnce       sync.Once          // the timeout/expiry loop starts at the first Loaded
	quit           chan struct{}      // closed by Close
	wg             sync.WaitGroup     // the loop
	closeOnce      sync.Once
}

// New returns a coordinator whose transactional ids live in partitions
// partitions of __transaction_state. It answers
// COORDINATOR_LOAD_IN_PROGRESS until Loaded.
func New(cfg Config, be Backend, partitions int32, logger *slog.Logger) *Coordinator {
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.PartitionFor == nil {
		panic("BUG: txn.Config.PartitionFor is not set")
	}
	if partitions <= 0 {
		partitions = 1
	}
	return &Coordinator{
		cfg:           cfg,
		be:            be,
		parts:         partitions,
		logger:        logger.With("subsystem", "transactions"),
		now:           time.Now,
		endWait:       defaultEndWait,
		initWait:      defaultInitWait,
		implicitWait:  defaultImplicitWait,
		markerBackoff: defaultMarkerBackoff,
		txns:          map[string]*txn{},
		calls:         map[*call]struct{}{},
		quit:          make(chan struct{}),
	}
}

// Partitions is the number of __transaction_state partitions.
func (c *Coordinator) Partitions() int32 { return c.parts }

func (c *Coordinator) lock() { c.mu.Lock() }

// unlock releases mu, then sends the responses queued meanwhile, so no
// Respond runs with the lock held.
func (c *Coordinator) unlock() {
	q := c.deferred
	c.deferred = nil
	c.mu.Unlock()
	for _, f := range q {
		f()
	}
}

// later queues f to run after mu is released. Lock must be held.
func (c *Coordinator) later(f func()) { c.deferred = append(c.deferred, f) }

func (c *Coordinator) nowMs() int64 { return c.now().UnixMilli() }

// gateLocked is the error for a request that cannot be served now, or 0.
// Lock must be held.
func (c *Coordinator) gateLocked() int16 {
	switch {
	case c.closed:
		return kerr.CoordinatorNotAvailable.Code
	case c.loaded:
		return 0
	case c.notCoordinator:
		return kerr.NotCoordinator.Code
	default:
		return kerr.CoordinatorLoadInProgress.Code
	}
}

// Loaded marks the end of replay: transactional ids are served from now
// on with coordEpoch stamped on markers; transactions the log left in
// PrepareCommit or PrepareAbort are completed (markers, then CompleteX),
// those left in PrepareEpochFence are aborted; and the timeout/expiry loop
// runs.
func (c *Coordinator) Loaded(coordEpoch int32) { c.loaded0(nil, coordEpoch) }

// ErrStaleLoad is ReplayIn's answer once the load it was part of is stale.
var ErrStaleLoad = errors.New("transaction load is stale: the coordinator was unloaded")

// Generation is the coordinator's generation, which Unload and Close move
// on: a load passes it to ReplayIn and LoadedIn, which change nothing once
// the node has stepped down meanwhile.
func (c *Coordinator) Generation() uint64 {
	c.lock()
	defer c.unlock()
	return c.gen
}

// LoadedIn is Loaded for the load that Generation returned gen to; it
// reports false, and does nothing, once that load is stale. A node that
// stepped down while it loaded served transactions it no longer
// coordinates (found by review).
func (c *Coordinator) LoadedIn(gen uint64, coordEpoch int32) bool { return c.loaded0(&gen, coordEpoch) }

func (c *Coordinator) loaded0(gen *uint64, coordEpoch int32) bool {
	c.lock()
	defer c.unlock()
	if c.closed || gen != nil && *gen != c.gen {
		return false
	}
	c.coordEpoch = coordEpoch
	c.loaded = true
	c.notCoordinator = false
	for _, t := range c.sortedLocked() {
		if t.pending != nil {
			continue // Loaded twice: already completing
		}
		switch t.state {
		case PrepareCommit, PrepareAbort:
			c.logger.Info("completing a transaction the log left prepared", "transactional_id", t.id, "state", t.state.String(),
				"producer_id", t.pid, "epoch", t.epoch, "partitions", len(t.parts))
			c.startCompletionLocked(t)
		case PrepareEpochFence:
			// Kafka never writes PrepareEpochFence (it is a pending state
			// replaced by PrepareAbort), but a record saying so means the
			// epoch was bumped already: abort without bumping again, as
			// Kafka's hasFailedEpochFence does.
			c.fenceAbortLocked(t, false, func(int16) {})
		}
	}
	c.loopOnce.Do(func() {
		c.wg.Add(1)
		go c.loop()
	})
	return true
}

// Unload stops serving transactions (a primary that steps down): requests
// get NOT_COORDINATOR, the state and marker work are dropped; Loaded after
// a new replay serves them again. Requests waiting for an answer get
// NOT_COORDINATOR, except an EndTxn whose PrepareCommit/PrepareAbort is
// durable: the next coordinator completes that transaction, so it gets
// the success Kafka would have sent already.
func (c *Coordinator) Unload() {
	c.lock()
	defer c.unlock()
	c.loaded = false
	c.notCoordinator = true
	c.dropLocked(kerr.NotCoordinator.Code)
}

// SetNotCoordinator makes every request answer NOT_COORDINATOR until
// Loaded: for a standby, whose primary coordinates the transactions.
func (c *Coordinator) SetNotCoordinator() {
	c.lock()
	defer c.unlock()
	c.notCoordinator = true
}

// Close stops the timeout/expiry loop and every timer and waits for the
// loop to return. Requests waiting for an answer get
// COORDINATOR_NOT_AVAILABLE (an EndTxn whose prepare is durable: success,
// as in Unload). Requests after Close get COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() {
	c.closeOnce.Do(func() {
		c.lock()
		c.closed = true
		c.loaded = false
		c.dropLocked(kerr.CoordinatorNotAvailable.Code)
		c.unlock()
		close(c.quit)
		c.wg.Wait()
	})
}

// dropLocked forgets every transaction, stops their timers and answers
// the calls still waiting. Lock must be held.
func (c *Coordinator) dropLocked(code int16) {
	c.gen++
	for _, t := range c.txns {
		t.stopTimer()
		t.waiters = nil
	}
	c.txns = map[string]*txn{}
	for cl := range c.calls {
		if cl.durable {
			cl.replyLocked(0)
		} else {
			cl.replyLocked(code)
		}
	}
}

func (c *Coordinator) loop() {
	defer c.wg.Done()
	abort := tick(c.cfg.AbortInterval)
	expire := tick(c.cfg.ExpireInterval)
	defer abort.Stop()
	defer expire.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-abort.C:
			c.abortTimedOut()
		case <-expire.C:
			c.expireIDs()
		}
	}
}

// tick is a ticker every d, or one that never fires when d is not
// positive.
func tick(d time.Duration) *time.Ticker {
	if d <= 0 {
		t := time.NewTicker(time.Hour)
		t.Stop()
		return t
	}
	return time.NewTicker(d)
}

// sortedLocked lists the transactions in id order, so what Loaded and the
// sweeps start is deterministic. Lock must be held.
func (c *Coordinator) sortedLocked() []*txn {
	out := make([]*txn, 0, len(c.txns))
	for _, t := range c.txns {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Stats reports the ids by state, the oldest ongoing transaction's age,
// and the timeouts and markers so far. Any goroutine.
func (c *Coordinator) Stats() Stats {
	c.lock()
	defer c.unlock()
	s := Stats{States: map[string]int{}, TimedOut: c.timedOut, Markers: c.markers}
	now := c.nowMs()
	for _, t := range c.txns {
		s.States[t.state.String()]++
		if t.state == Ongoing && t.startMs >= 0 {
			if age := time.Duration(now-t.startMs) * time.Millisecond; age > s.OldestOngoing {
				s.OldestOngoing = age
			}
		}
	}
	return s
}

// TopicDeleted drops a deleted topic's partitions from every transaction,
// so markers are not written for it (a marker being written gets
// UNKNOWN_TOPIC_OR_PARTITION and is dropped as well). The next record of
// each transaction no longer lists them.
func (c *Coordinator) TopicDeleted(topic string) {
	c.lock()
	defer c.unlock()
	for _, t := range c.txns {
		t.dropTopic(topic)
		if t.pending != nil {
			t.pending.dropTopic(topic)
		}
	}
}

// call is a request not yet answered. Every handler answers through one,
// so Unload and Close can answer whatever is still waiting.
type call struct {
	c        *Coordinator
	answer   func(code int16) // builds and sends the response; runs after the lock is released
	answered bool
	// durable is set on an EndTxn once its PrepareX is in the log: from
	// then on it can only succeed.
	durable bool
	timer   *time.Timer
}

// newCallLocked registers a request. Lock must be held.
func (c *Coordinator) newCallLocked(answer func(code int16)) *call {
	cl := &call{c: c, answer: answer}
	c.calls[cl] = struct{}{}
	return cl
}

// replyLocked answers the call once; later replies are ignored. Lock must
// be held.
func (cl *call) replyLocked(code int16) {
	if cl.answered {
		return
	}
	cl.answered = true
	if cl.timer != nil {
		cl.timer.Stop()
	}
	delete(cl.c.calls, cl)
	answer := cl.answer
	cl.c.later(func() { answer(code) })
}

// deadlineLocked answers the call with what() after d unless it was
// answered before. Lock must be held.
func (cl *call) deadlineLocked(d time.Duration, what func() int16) {
	if cl.answered || cl.timer != nil {
		return
	}
	cl.timer = time.AfterFunc(d, func() {
		c := cl.c
		c.lock()
		defer c.unlock()
		cl.replyLocked(what())
	})
}
