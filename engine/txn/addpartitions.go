package txn

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddPartitionsToTxn v0–5, AddOffsetsToTxn v0–4, and the engine's checks
// for produce and TxnOffsetCommit (Verify, AddImplicit), all of which add
// partitions to (or check them against) an id's transaction
// (docs/design/transactions.md §1.4, §3.1, §3.2, §5.8).

// fencedCode maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for request
// versions that predate it (below v2 for these APIs).
func fencedCode(code, version, since int16) int16 {
	if code == kerr.ProducerFenced.Code && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// addLocked adds parts to id's transaction: Empty/CompleteX → Ongoing,
// Ongoing → the union. It returns a code to answer at once (0 when there
// is nothing to write), or wait = true after starting a write whose
// result goes to done. Lock must be held.
func (c *Coordinator) addLocked(id string, pid int64, epoch int16, parts []TopicPartition, tv int16, done func(code int16)) (code int16, wait bool) {
	if code := c.gateLocked(); code != 0 {
		return code, false
	}
	t := c.txns[id]
	switch {
	case t != nil && t.pending != nil:
		// First, as Kafka since KAFKA-18660: a TV2 epoch overflow is
		// pending with the producer id the client already has.
		return kerr.ConcurrentTransactions.Code, false
	case t == nil || t.pid != pid:
		return kerr.InvalidProducerIDMapping.Code, false
	case t.epoch != epoch:
		return kerr.ProducerFenced.Code, false
	case t.state == PrepareCommit, t.state == PrepareAbort:
		return kerr.ConcurrentTransactions.Code, false
	}
	if t.state == Ongoing {
		news := false
		for _, tp := range parts {
			if _, ok := t.parts[tp]; !ok {
				news = true
				break
			}
		}
		if !news {
			return 0, false
		}
	}
	next := t.txnData.clone()
	if t.state != Ongoing {
		next.parts = map[TopicPartition]struct{}{}
		next.startMs = c.nowMs()
	}
	for _, tp := range parts {
		next.parts[tp] = struct{}{}
	}
	next.state = Ongoing
	next.tv = tv
	next.updateMs = c.nowMs()
	c.writeLocked(t, next, done)
	return 0, true
}

// verifyLocked is Kafka's handleVerifyPartitionsInTransaction for one
// partition. Lock must be held.
func (c *Coordinator) verifyLocked(id string, pid int64, epoch int16, tp TopicPartition) int16 {
	if code := c.gateLocked(); code != 0 {
		return code
	}
	t := c.txns[id]
	switch {
	case id == "":
		return kerr.InvalidRequest.Code
	case t == nil || t.pid != pid:
		return kerr.InvalidProducerIDMapping.Code
	case t.epoch != epoch:
		return kerr.ProducerFenced.Code
	case t.state == PrepareCommit, t.state == PrepareAbort:
		// A pending transition is not checked, as Kafka's
		// handleVerifyPartitionsInTransaction (KAFKA-14904): a partition
		// already in the transaction stays verified while another add
		// is written.
		return kerr.ConcurrentTransactions.Code
	}
	if _, ok := t.parts[tp]; ok && t.state == Ongoing {
		return 0
	}
	return kerr.TransactionAbortable.Code
}

// Verify returns 0 when tp is in the ongoing transaction of txnID with
// (pid, epoch), else Kafka's code: INVALID_PRODUCER_ID_MAPPING (unknown
// id, other producer id), PRODUCER_FENCED (other epoch),
// CONCURRENT_TRANSACTIONS (completing: PrepareCommit or PrepareAbort),
// TRANSACTION_ABORTABLE (not in the transaction), or a coordinator code
// (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS). The engine translates
// them per Produce/TxnOffsetCommit version (design notes §5.8). Any
// goroutine; does not block.
func (c *Coordinator) Verify(txnID string, pid int64, epoch int16, tp TopicPartition) int16 {
	c.lock()
	defer c.unlock()
	return c.verifyLocked(txnID, pid, epoch, tp)
}

// AddImplicit adds tps to the ongoing (or a new) transaction of txnID for
// Produce v12+ and TxnOffsetCommit v5 (KIP-890 part 2, TV2) and calls done
// once with 0 or the error code (as AddPartitionsToTxn's). Like Kafka's
// produce path, which retries CONCURRENT_TRANSACTIONS for up to 100 ms
// (add.partitions.to.txn.retry.backoff.max.ms), it waits that long for a
// pending transition to end. done runs on another goroutine or on the
// caller's, after the coordinator's lock is released. Any goroutine.
// A produce request adds all the partitions it needs in one call: one
// __transaction_state write.
func (c *Coordinator) AddImplicit(txnID string, pid int64, epoch int16, tps []TopicPartition, done func(int16)) {
	c.AddImplicitWaiting(txnID, pid, epoch, tps, func(code int16, _ bool) { done(code) })
}

// AddImplicitWaiting is AddImplicit whose done also says whether the add
// waited for a pending transition of the transactional id (the end of
// its previous transaction): the markers of that transaction were then
// written during the call (the produce path's verification guard).
func (c *Coordinator) AddImplicitWaiting(txnID string, pid int64, epoch int16, tps []TopicPartition, done func(code int16, waited bool)) {
	c.lock()
	defer c.unlock()
	if txnID == "" {
		c.later(func() { done(kerr.InvalidRequest.Code, false) })
		return
	}
	waited := false
	cl := c.newCallLocked(func(code int16) { done(code, waited) })
	cl.deadlineLocked(c.implicitWait, func() int16 { return kerr.ConcurrentTransactions.Code })
	var attempt func()
	attempt = func() {
		if cl.answered {
			return
		}
		code, wait := c.addLocked(txnID, pid, epoch, tps, 2, cl.replyLocked)
		if code == kerr.ConcurrentTransactions.Code {
			if t := c.txns[txnID]; t != nil && t.pending != nil {
				waited = true
				t.waitLocked(cl, attempt)
				return
			}
		}
		if !wait {
			cl.replyLocked(code)
		}
	}
	attempt()
}

// AddPartitionsToTxn serves v0–5: v0–3 from clients (one transaction), v4+
// batched from brokers and tools (VerifyOnly checks without adding).
// Answers through respond exactly once. Any goroutine.
func (c *Coordinator) AddPartitionsToTxn(r *kmsg.AddPartitionsToTxnRequest, respond Respond) {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	type one struct {
		id       string
		pid      int64
		epoch    int16
		verify   bool
		parts    []TopicPartition
		codes    []int16 // per partition, once resolved
		resolved bool
	}
	var txns []*one
	if r.Version <= 3 {
		o := &one{id: r.TransactionalID, pid: r.ProducerID, epoch: r.ProducerEpoch}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				o.parts = append(o.parts, TopicPartition{t.Topic, p})
			}
		}
		txns = append(txns, o)
	} else {
		for _, rt := range r.Transactions {
			o := &one{id: rt.TransactionalID, pid: rt.ProducerID, epoch: rt.ProducerEpoch, verify: rt.VerifyOnly}
			for _, t := range rt.Topics {
				for _, p := range t.Partitions {
					o.parts = append(o.parts, TopicPartition{t.Topic, p})
				}
			}
			txns = append(txns, o)
		}
	}
	// build fills the response; txns not resolved get code.
	answer := func(code int16) {
		for _, o := range txns {
			if !o.resolved {
				o.codes = make([]int16, len(o.parts))
				for i := range o.codes {
					o.codes[i] = code
				}
			}
		}
		if r.Version <= 3 {
			o := txns[0]
			for i, tp := range o.parts {
				code := fencedCode(o.codes[i], r.Version, 2)
				if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != tp.Topic {
					resp.Topics = append(resp.Topics, kmsg.AddPartitionsToTxnResponseTopic{Topic: tp.Topic})
				}
				rt := &resp.Topics[len(resp.Topics)-1]
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: tp.Partition, ErrorCode: code})
			}
		} else {
			for _, o := range txns {
				rt := kmsg.AddPartitionsToTxnResponseTransaction{TransactionalID: o.id}
				for i, tp := range o.parts {
					if n := len(rt.Topics); n == 0 || rt.Topics[n-1].Topic != tp.Topic {
						rt.Topics = append(rt.Topics, kmsg.AddPartitionsToTxnResponseTransactionTopic{Topic: tp.Topic})
					}
					tt := &rt.Topics[len(rt.Topics)-1]
					tt.Partitions = append(tt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: tp.Partition, ErrorCode: o.codes[i]})
				}
				resp.Transactions = append(resp.Transactions, rt)
			}
		}
		respond(resp)
	}
	// What each partition fails with before the coordinator looks, as
	// KafkaApis: from clients (v0–3) an internal topic is
	// TOPIC_AUTHORIZATION_FAILED whatever the ACLs; from any version a
	// partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION (also
	// for VerifyOnly). Existence is the engine's to know; ask before
	// taking the lock.
	failed := make([][]int16, len(txns))
	for i, o := range txns {
		for j, tp := range o.parts {
			code := int16(0)
			switch {
			case r.Version <= 3 && c.be.InternalTopic(tp.Topic):
				code = kerr.TopicAuthorizationFailed.Code
			case !c.be.PartitionExists(tp.Topic, tp.Partition):
				code = kerr.UnknownTopicOrPartition.Code
			}
			if code != 0 && failed[i] == nil {
				failed[i] = make([]int16, len(o.parts))
			}
			if failed[i] != nil {
				failed[i][j] = code
			}
		}
	}
	c.lock()
	defer c.unlock()
	cl := c.newCallLocked(answer)
	left := len(txns)
	finish := func(o *one) {
		o.resolved = true
		left--
		if left == 0 {
			cl.replyLocked(0)
		}
	}
	all := func(o *one, code int16) {
		if cl.answered {
			// Unloaded meanwhile: answer already built from the rest.
			return
		}
		o.codes = make([]int16, len(o.parts))
		for i := range o.codes {
			o.codes[i] = code
		}
		finish(o)
	}
	if left == 0 {
		cl.replyLocked(0)
		return
	}
	for i, o := range txns {
		if o.id == "" {
			all(o, kerr.InvalidRequest.Code)
			continue
		}
		if failed[i] != nil {
			// Kafka adds nothing then: the failed partitions say why,
			// the others OPERATION_NOT_ATTEMPTED.
			o.codes = failed[i]
			for j, code := range o.codes {
				if code == 0 {
					o.codes[j] = kerr.OperationNotAttempted.Code
				}
			}
			finish(o)
			continue
		}
		if code := c.gateLocked(); code != 0 {
			all(o, code)
			continue
		}
		if len(o.parts) == 0 {
			all(o, 0) // nothing to add: no transition either
			continue
		}
		if o.verify {
			o.codes = make([]int16, len(o.parts))
			for j, tp := range o.parts {
				o.codes[j] = c.verifyLocked(o.id, o.pid, o.epoch, tp)
			}
			finish(o)
			continue
		}
		var tv int16
		if r.Version >= 5 {
			tv = 2
		}
		o := o
		code, wait := c.addLocked(o.id, o.pid, o.epoch, o.parts, tv, func(code int16) { all(o, code) })
		if !wait {
			all(o, code)
		}
	}
}

// AddOffsetsToTxn serves v0–4: it adds the group's __consumer_offsets
// partition to the transaction, as AddPartitionsToTxn would. Kafka does
// not check that the group exists. Answers through respond exactly once.
// Any goroutine.
func (c *Coordinator) AddOffsetsToTxn(r *kmsg.AddOffsetsToTxnRequest, respond Respond) {
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	answer := func(code int16) {
		resp.ErrorCode = fencedCode(code, r.Version, 2)
		respond(resp)
	}
	if r.TransactionalID == "" {
		answer(kerr.InvalidRequest.Code)
		return
	}
	tp := c.be.OffsetsPartition(r.Group)
	c.lock()
	defer c.unlock()
	cl := c.newCallLocked(answer)
	code, wait := c.addLocked(r.TransactionalID, r.ProducerID, r.ProducerEpoch, []TopicPartition{tp}, 0, cl.replyLocked)
	if !wait {
		cl.replyLocked(code)
	}
}
