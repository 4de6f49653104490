package txn

import (
	"math"
	"slices"
	"sort"
	"time"
)

// State is a transactional id's state, numbered as in
// __transaction_state's TransactionStatus field (Kafka's TransactionState).
type State int8

const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
	PrepareEpochFence
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String is the state's name as DescribeTransactions and ListTransactions
// spell it.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// stateByName is the inverse of String.
func stateByName(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// noPID and noEpoch are Kafka's RecordBatch.NO_PRODUCER_ID/EPOCH.
const (
	noPID   int64 = -1
	noEpoch int16 = -1
)

// epochExhausted is Kafka's isEpochExhausted: the coordinator keeps the
// last epoch (32767) in reserve to fence with, so an id at 32766 rotates
// to a new producer id at its next InitProducerId (or TV2 EndTxn).
func epochExhausted(e int16) bool { return e >= math.MaxInt16-1 }

// txnData is everything a __transaction_state record holds of one id, plus
// lastEpoch (memory only, as in Kafka). The durable value and a pending
// transit are both txnData: a transition computes the next txnData, writes
// it, and only copies it in once the write is durable.
type txnData struct {
	pid, prevPid, nextPid int64
	epoch                 int16
	// lastEpoch is the epoch before the last bump, for KIP-360 retries of
	// an InitProducerId whose answer was lost. Not in the log: -1 after a
	// load, as in Kafka.
	lastEpoch int16
	timeoutMs int32
	state     State
	parts     map[TopicPartition]struct{}
	// startMs is when the transaction began (-1 when there is none);
	// updateMs when the id last changed.
	startMs, updateMs int64
	// tv is the ClientTransactionVersion of the request that made the
	// transition: 2 for KIP-890 part 2 (EndTxn v5, Produce v12+), else 0.
	tv int16
}

// clone copies d with its own partition set.
func (d *txnData) clone() txnData {
	n := *d
	n.parts = make(map[TopicPartition]struct{}, len(d.parts))
	for tp := range d.parts {
		n.parts[tp] = struct{}{}
	}
	return n
}

func (d *txnData) dropTopic(topic string) {
	for tp := range d.parts {
		if tp.Topic == topic {
			delete(d.parts, tp)
		}
	}
}

// sortedParts lists the partitions by topic, then partition.
func (d *txnData) sortedParts() []TopicPartition {
	out := make([]TopicPartition, 0, len(d.parts))
	for tp := range d.parts {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// txn is one transactional id. All fields are guarded by Coordinator.mu.
type txn struct {
	id string
	p  int32 // its __transaction_state partition
	txnData
	// pending is the transit being written; while it is set every request
	// on the id gets CONCURRENT_TRANSACTIONS (or waits, where samsa
	// waits). Between a durable PrepareX and a durable CompleteX it holds
	// the CompleteX to write, as Kafka's pendingState does while markers
	// are written.
	pending *txnData
	// fencedAbort is set when the coordinator itself aborted the last
	// transaction (timeout, InitProducerId fence), and after a load (not
	// in the log): a late commit at the retry epoch then gets
	// PRODUCER_FENCED, not INVALID_TXN_STATE (KAFKA-20785).
	fencedAbort bool
	// waiters run (with the lock held) when a pending transition ends,
	// durable or failed: requests that samsa makes wait rather than
	// answer CONCURRENT_TRANSACTIONS try again.
	waiters []waiter
	// ends are EndTxn calls answered when CompleteX is durable.
	ends []*call
	// timer is the marker or CompleteX retry.
	timer *time.Timer
}

func (t *txn) stopTimer() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
}

// settleLocked runs the waiters once no transition is pending. Lock must
// be held.
func (t *txn) settleLocked() {
	if t.pending != nil {
		return
	}
	w := t.waiters
	t.waiters = nil
	for _, x := range w {
		if !x.cl.answered {
			x.f()
		}
	}
}

// waiter is a call's retry, run when a pending transition ends.
type waiter struct {
	cl *call
	f  func()
}

// waitLocked makes f, the retry of cl, run (with the lock held) when t's
// pending transition ends, unless cl was answered by then (its deadline).
// Retries of calls already answered are dropped here: a transition that
// never ends (a marker retried while its partition is offline) kept one
// per client retry, without bound. Lock must be held.
func (t *txn) waitLocked(cl *call, f func()) {
	t.waiters = slices.DeleteFunc(t.waiters, func(x waiter) bool { return x.cl.answered })
	t.waiters = append(t.waiters, waiter{cl, f})
}
