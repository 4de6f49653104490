package txn

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn v0–5 (docs/design/transactions.md §1.4, §1.5, §3.3). v0–4 are
// TV1: the epoch stays. v5 is TV2 (KIP-890 part 2): every end bumps the
// epoch (PrepareX carries epoch+1, and so do the markers), an abort with
// no transaction open is allowed ("empty abort"), and the answer carries
// the producer id and epoch to use next.
//
// Deliberate difference from Kafka: Kafka answers once PrepareX is durable
// and writes the markers in the background, so a client's next
// AddPartitionsToTxn gets CONCURRENT_TRANSACTIONS until CompleteX (kafkajs
// surfaces that to the application). samsa's markers are local appends,
// so it answers once CompleteX is durable — but at most 5 s after PrepareX
// was, then answers success and completes in the background, as Kafka.

// EndTxn serves EndTxn and answers through respond exactly once. Any
// goroutine.
func (c *Coordinator) EndTxn(r *kmsg.EndTxnRequest, respond Respond) {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	pid, epoch := noPID, noEpoch
	answer := func(code int16) {
		resp.ErrorCode = fencedCode(code, r.Version, 2)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		if code == 0 && r.Version >= 5 {
			resp.ProducerID, resp.ProducerEpoch = pid, epoch
		}
		respond(resp)
	}
	if r.TransactionalID == "" {
		answer(kerr.InvalidRequest.Code)
		return
	}
	c.lock()
	defer c.unlock()
	cl := c.newCallLocked(answer)
	if code := c.gateLocked(); code != 0 {
		cl.replyLocked(code)
		return
	}
	t := c.txns[r.TransactionalID]
	if t == nil {
		cl.replyLocked(kerr.InvalidProducerIDMapping.Code)
		return
	}
	var code int16
	var next *txnData
	if r.Version >= 5 {
		code, next = c.endTV2Locked(t, r.ProducerID, r.ProducerEpoch, r.Commit)
	} else {
		code, next = c.endTV1Locked(t, r.ProducerID, r.ProducerEpoch, r.Commit)
	}
	if code != 0 || next == nil {
		// An error, or the retry of an end that is complete: Kafka
		// answers the stored id and epoch.
		pid, epoch = t.pid, t.epoch
		cl.replyLocked(code)
		return
	}
	t.fencedAbort = false
	c.prepareEndLocked(t, *next, func(code int16) {
		if code != 0 {
			cl.replyLocked(code)
			return
		}
		// Durable: from here on the answer is success whatever happens.
		if t.pending != nil {
			pid, epoch = t.pending.pid, t.pending.epoch
		} else {
			pid, epoch = t.pid, t.epoch
		}
		cl.durable = true
		t.ends = append(t.ends, cl)
		cl.deadlineLocked(c.endWait, func() int16 { return 0 })
	})
}

// endTV1Locked is Kafka's endTransactionWithTV1: it returns a code to
// answer, or the PrepareX to write. (0, nil) is an idempotent retry. Lock
// must be held.
func (c *Coordinator) endTV1Locked(t *txn, pid int64, epoch int16, commit bool) (int16, *txnData) {
	switch {
	case t.pid != pid:
		return kerr.InvalidProducerIDMapping.Code, nil
	case t.epoch != epoch:
		return kerr.ProducerFenced.Code, nil
	case t.pending != nil:
		return kerr.ConcurrentTransactions.Code, nil
	}
	switch t.state {
	case Ongoing:
		return c.prepLocked(t, commit, false)
	case PrepareCommit:
		if commit {
			return kerr.ConcurrentTransactions.Code, nil
		}
	case PrepareAbort:
		if !commit {
			return kerr.ConcurrentTransactions.Code, nil
		}
	case CompleteCommit:
		if commit {
			return 0, nil
		}
	case CompleteAbort:
		if !commit {
			return 0, nil
		}
	}
	return kerr.InvalidTxnState.Code, nil
}

// endTV2Locked is Kafka's TV2 endTransaction and its table (design notes
// §1.4), with two upstream fixes: the pending check comes first
// (KAFKA-18464: an empty abort racing the last commit's completion must
// not fence itself), and a commit at the retry epoch after an abort the
// coordinator made gets PRODUCER_FENCED, not the fatal INVALID_TXN_STATE
// (KAFKA-20785). Lock must be held.
func (c *Coordinator) endTV2Locked(t *txn, pid int64, epoch int16, commit bool) (int16, *txnData) {
	retryOnOverflow := t.prevPid == pid && pid != noPID && epoch == math.MaxInt16-1 && t.epoch == 0
	retry := retryOnOverflow || (t.pid == pid && epoch >= 0 && int32(t.epoch) == int32(epoch)+1)
	current := t.pid == pid && t.epoch == epoch
	switch {
	case t.pending != nil:
		return kerr.ConcurrentTransactions.Code, nil
	case t.pid != pid && !retryOnOverflow:
		return kerr.InvalidProducerIDMapping.Code, nil
	case !retry && !current:
		return kerr.ProducerFenced.Code, nil
	}
	its := kerr.InvalidTxnState.Code
	fencedCommit := its
	if t.fencedAbort {
		fencedCommit = kerr.ProducerFenced.Code
	}
	switch t.state {
	case Empty:
		if !commit && current {
			return c.prepLocked(t, false, true)
		}
		if retry {
			return kerr.ProducerFenced.Code, nil
		}
		return its, nil
	case Ongoing:
		if retry {
			return kerr.ProducerFenced.Code, nil
		}
		return c.prepLocked(t, commit, true)
	case PrepareAbort:
		switch {
		case !commit && retry:
			return kerr.ConcurrentTransactions.Code, nil
		case commit && retry:
			return fencedCommit, nil
		}
		return kerr.ProducerFenced.Code, nil
	case PrepareCommit:
		switch {
		case commit && retry:
			return kerr.ConcurrentTransactions.Code, nil
		case !commit && retry:
			return its, nil
		}
		return kerr.ProducerFenced.Code, nil
	case CompleteAbort:
		switch {
		case !commit && retry:
			return 0, nil
		case !commit && current:
			return c.prepLocked(t, false, true)
		case commit && retry:
			return fencedCommit, nil
		}
		return its, nil
	case CompleteCommit:
		switch {
		case commit && retry:
			return 0, nil
		case !commit && current:
			return c.prepLocked(t, false, true)
		}
		return its, nil
	}
	return its, nil
}

// prepLocked is prepareNext as endTV1Locked/endTV2Locked answer.
func (c *Coordinator) prepLocked(t *txn, commit, bump bool) (int16, *txnData) {
	next := c.prepareNext(t, commit, bump)
	if next == nil {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	return 0, next
}

// prepareNext is the PrepareCommit/PrepareAbort that ends t's transaction
// (an empty one when t is not Ongoing). With bump (TV2) the epoch rises by
// one; if the current epoch is exhausted, a new producer id is allocated
// now, written as NextProducerId, and taken at CompleteX. Returns nil if no
// producer id could be allocated (the caller answers with an error).
// Lock must be held.
func (c *Coordinator) prepareNext(t *txn, commit, bump bool) *txnData {
	next := t.txnData.clone()
	next.state = PrepareAbort
	if commit {
		next.state = PrepareCommit
	}
	next.updateMs = c.nowMs()
	if t.state != Ongoing {
		next.parts = map[TopicPartition]struct{}{}
		next.startMs = next.updateMs
	}
	if bump {
		next.tv = 2
		if epochExhausted(t.epoch) {
			npid, err := c.be.NewProducerID()
			if err != nil {
				c.logger.Error("cannot allocate a producer id", "transactional_id", t.id, "err", err)
				return nil
			}
			next.nextPid = npid
		}
		if next.epoch < math.MaxInt16 {
			next.epoch++
		}
		next.lastEpoch = t.epoch
	}
	return &next
}
