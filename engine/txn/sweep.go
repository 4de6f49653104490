package txn

// The two sweeps the loop runs (docs/design/transactions.md §4.4, §4.6):
// aborting transactions past their timeout and deleting ids idle past
// transactional.id.expiration.ms.

// abortTimedOut aborts every Ongoing transaction, with no transition
// pending, older than its timeout: the epoch is bumped so the producer is
// fenced, and abort markers written with it. Any goroutine.
func (c *Coordinator) abortTimedOut() {
	c.lock()
	defer c.unlock()
	if !c.loaded {
		return
	}
	now := c.nowMs()
	for _, t := range c.sortedLocked() {
		if t.state != Ongoing || t.pending != nil || t.startMs+int64(t.timeoutMs) >= now {
			continue
		}
		c.logger.Info("aborting a transaction past its timeout", "transactional_id", t.id, "producer_id", t.pid, "epoch", t.epoch, "timeout_ms", t.timeoutMs)
		c.fenceAbortLocked(t, true, func(code int16) {
			if code == 0 {
				c.timedOut++
			}
		})
	}
}

// expireIDs deletes, with a tombstone, every id in Empty, CompleteCommit
// or CompleteAbort with no transition pending whose last change is older
// than IDExpiration. Meanwhile the id is pending Dead, as in Kafka. Appends
// of at most expiryBatchBytes per __transaction_state partition. Any
// goroutine.
func (c *Coordinator) expireIDs() {
	c.lock()
	defer c.unlock()
	if !c.loaded || c.cfg.IDExpiration <= 0 {
		return
	}
	limit := c.nowMs() - c.cfg.IDExpiration.Milliseconds()
	byPart := map[int32][]*txn{}
	var order []int32
	for _, t := range c.sortedLocked() {
		switch t.state {
		case Empty, CompleteCommit, CompleteAbort:
		default:
			continue
		}
		if t.pending != nil || t.updateMs > limit {
			continue
		}
		dead := t.txnData.clone()
		dead.state = Dead
		t.pending = &dead
		if byPart[t.p] == nil {
			order = append(order, t.p)
		}
		byPart[t.p] = append(byPart[t.p], t)
	}
	for _, p := range order {
		// Batches under the log's max.message.bytes, as Kafka's
		// removeExpiredTransactionalIds: one batch of every tombstone
		// was refused past 1 MiB at every sweep, and no id of the
		// partition expired again.
		ts := byPart[p]
		for len(ts) > 0 {
			n, size := 0, 0
			for n < len(ts) && (n == 0 || size+len(ts[n].id)+expiryRecordOverhead <= expiryBatchBytes) {
				size += len(ts[n].id) + expiryRecordOverhead
				n++
			}
			c.expireLocked(p, ts[:n])
			ts = ts[n:]
		}
	}
}

// expiryBatchBytes bounds the tombstones of one expiry append, well under
// the internal topics' max.message.bytes (1 MiB); expiryRecordOverhead is
// a tombstone's bytes beside its id, rounded up.
const (
	expiryBatchBytes     = 512 << 10
	expiryRecordOverhead = 32
)

// expireLocked writes the tombstones of ts, ids of partition p pending
// Dead, and forgets them once written. Lock must be held.
func (c *Coordinator) expireLocked(p int32, ts []*txn) {
	gen := c.gen
	recs := make([]Record, len(ts))
	for i, t := range ts {
		recs[i] = Record{Key: txnKey(t.id)}
	}
	c.be.Append(p, recs, func(err error) {
		c.lock()
		defer c.unlock()
		if gen != c.gen {
			return
		}
		if err != nil {
			c.logger.Warn("cannot expire transactional ids", "partition", p, "ids", len(ts), "code", c.be.AppendErrorCode(err), "err", err)
		}
		for _, t := range ts {
			t.pending = nil
			if err == nil && c.txns[t.id] == t {
				delete(c.txns, t.id)
				c.logger.Info("transactional id expired", "transactional_id", t.id)
			}
			// Waiters look the id up again: an InitProducerId that
			// waited starts it afresh.
			t.settleLocked()
		}
	})
}
