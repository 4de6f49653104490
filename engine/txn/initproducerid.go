package txn

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0–5 with a transactional id (docs/design/transactions.md
// §2). The engine handles the idempotent case (no transactional id).
//
// Deliberate difference from Kafka: when the id has a transaction open or
// completing, Kafka fences and aborts it and answers
// CONCURRENT_TRANSACTIONS, and the client retries. sarama and kafkajs
// treat that answer as fatal, so samsa waits for the abort (or the
// completion) itself and then runs the init again, as the client's retry
// would: the answer is what Kafka gives after the retry, and the new
// epoch is above the abort markers'. The wait is bounded (5 s); past it
// the answer is CONCURRENT_TRANSACTIONS, as Kafka's.

// InitProducerID serves InitProducerId for r.TransactionalID != nil and
// answers through respond exactly once. Any goroutine.
func (c *Coordinator) InitProducerID(r *kmsg.InitProducerIDRequest, respond Respond) {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	var pid int64
	var epoch int16
	answer := func(code int16) {
		if code == kerr.ProducerFenced.Code && r.Version < 4 {
			code = kerr.InvalidProducerEpoch.Code
		}
		resp.ErrorCode = code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		if code == 0 {
			resp.ProducerID, resp.ProducerEpoch = pid, epoch
		}
		respond(resp)
	}
	expPid, expEpoch := noPID, noEpoch
	if r.Version >= 3 {
		expPid, expEpoch = r.ProducerID, r.ProducerEpoch
	}
	switch {
	case r.TransactionalID == nil || *r.TransactionalID == "":
		answer(kerr.InvalidRequest.Code)
		return
	case (expPid == noPID) != (expEpoch == noEpoch):
		answer(kerr.InvalidRequest.Code)
		return
	case r.TransactionTimeoutMillis <= 0 || int64(r.TransactionTimeoutMillis) > c.cfg.MaxTimeout.Milliseconds():
		answer(kerr.InvalidTransactionTimeout.Code)
		return
	}
	id := *r.TransactionalID
	c.lock()
	defer c.unlock()
	if code := c.gateLocked(); code != 0 {
		answer(code)
		return
	}
	cl := c.newCallLocked(answer)
	cl.deadlineLocked(c.initWait, func() int16 { return kerr.ConcurrentTransactions.Code })
	var attempt func()
	attempt = func() {
		if cl.answered {
			return
		}
		code, wait := c.initLocked(id, r.TransactionTimeoutMillis, expPid, expEpoch, func(code int16, p int64, e int16) {
			pid, epoch = p, e
			cl.replyLocked(code)
		}, cl, attempt)
		if !wait {
			if code != 0 {
				cl.replyLocked(code)
			}
		}
	}
	attempt()
}

// initLocked runs one attempt of InitProducerId. It returns an error code
// to answer at once, or wait = true when it either started a write (done
// is called with its result) or registered retry to run when the id's
// transaction settles. Lock must be held.
func (c *Coordinator) initLocked(id string, timeoutMs int32, expPid int64, expEpoch int16, done func(code int16, pid int64, epoch int16), cl *call, retry func()) (code int16, wait bool) {
	if code := c.gateLocked(); code != 0 {
		return code, false
	}
	t := c.txns[id]
	if t == nil {
		pid, err := c.be.NewProducerID()
		if err != nil {
			c.logger.Error("cannot allocate a producer id", "transactional_id", id, "err", err)
			return kerr.CoordinatorNotAvailable.Code, false
		}
		// In memory only until the init's record is durable, as in
		// Kafka (a failed write leaves an id at epoch -1).
		t = &txn{id: id, p: c.cfg.PartitionFor(id, c.parts), txnData: txnData{
			pid: pid, prevPid: noPID, nextPid: noPID, epoch: noEpoch, lastEpoch: noEpoch,
			timeoutMs: timeoutMs, state: Empty, parts: map[TopicPartition]struct{}{}, startMs: -1, updateMs: c.nowMs(),
		}}
		c.txns[id] = t
	}
	if t.pending != nil {
		t.waitLocked(cl, retry)
		return 0, true
	}
	if expPid != noPID {
		valid := t.epoch == noEpoch || expPid == t.pid || (expPid == t.prevPid && epochExhausted(expEpoch))
		if !valid {
			return kerr.ProducerFenced.Code, false
		}
	}
	switch t.state {
	case PrepareCommit, PrepareAbort:
		// Completion stopped (this node was fenced): nothing will
		// settle it here; the deadline answers CONCURRENT_TRANSACTIONS.
		t.waitLocked(cl, retry)
		return 0, true
	case Ongoing:
		c.fenceAbortLocked(t, true, func(code int16) {
			if code != 0 {
				done(code, 0, 0)
				return
			}
			t.waitLocked(cl, retry)
		})
		return 0, true
	case Empty, CompleteCommit, CompleteAbort:
	default:
		c.logger.Error("BUG: transactional id in an impossible state", "transactional_id", id, "state", t.state.String())
		return kerr.UnknownServerError.Code, false
	}
	next := t.txnData.clone()
	switch {
	case epochExhausted(t.epoch) && (expEpoch == noEpoch || expEpoch == t.epoch):
		// Rotate: a new producer id at epoch 0.
		pid, err := c.be.NewProducerID()
		if err != nil {
			c.logger.Error("cannot allocate a producer id", "transactional_id", id, "err", err)
			return kerr.CoordinatorNotAvailable.Code, false
		}
		next.prevPid, next.pid, next.epoch = t.pid, pid, 0
		next.lastEpoch = noEpoch
		if expPid != noPID {
			next.lastEpoch = t.epoch
		}
	case expEpoch == noEpoch:
		next.epoch, next.lastEpoch = t.epoch+1, noEpoch
	case expEpoch == t.epoch || t.epoch == noEpoch:
		next.epoch, next.lastEpoch = t.epoch+1, t.epoch
	case expEpoch == t.lastEpoch:
		// The retry of a bump whose answer was lost: same epoch again.
	default:
		return kerr.ProducerFenced.Code, false
	}
	if next.epoch == math.MaxInt16 {
		// Only reachable from a log with odd epochs: never hand out the
		// epoch kept for fencing.
		return kerr.ProducerFenced.Code, false
	}
	next.timeoutMs = timeoutMs
	next.state = Empty
	next.parts = map[TopicPartition]struct{}{}
	next.startMs = -1
	next.nextPid = noPID
	next.updateMs = c.nowMs()
	c.writeLocked(t, next, func(code int16) {
		done(code, t.pid, t.epoch)
	})
	return 0, true
}
