package txn

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// writeLocked makes next the pending transit of t, appends it to
// __transaction_state, and once the append is done applies it (or, if it
// failed, leaves t as it was) and calls then with 0 or the client's error
// code. then runs with the lock held; after it, the waiters run if nothing
// is pending any more. If the coordinator was unloaded or closed
// meanwhile, t is not touched and then gets NOT_COORDINATOR. Lock must be
// held.
func (c *Coordinator) writeLocked(t *txn, next txnData, then func(code int16)) {
	p := &next
	t.pending = p
	gen := c.gen
	c.be.Append(t.p, []Record{txnRecord(t.id, p)}, func(err error) {
		c.lock()
		defer c.unlock()
		if gen != c.gen {
			then(kerr.NotCoordinator.Code)
			return
		}
		if t.pending == p {
			t.pending = nil
		}
		if err != nil {
			code := c.be.AppendErrorCode(err)
			c.logger.Warn("cannot write transaction state", "transactional_id", t.id, "state", p.state.String(), "code", code, "err", err)
			then(code)
		} else {
			t.txnData = *p
			then(0)
		}
		t.settleLocked()
	})
}

// prepareEndLocked writes next (PrepareCommit or PrepareAbort) and, once
// it is durable, starts the completion. then gets the append's result
// after the completion started. Lock must be held.
func (c *Coordinator) prepareEndLocked(t *txn, next txnData, then func(code int16)) {
	gen := c.gen
	c.writeLocked(t, next, func(code int16) {
		if code == 0 && gen == c.gen {
			c.startCompletionLocked(t)
		}
		then(code)
	})
}

// fenceAbortLocked aborts t's ongoing transaction on the coordinator's
// own behalf (transaction timeout, InitProducerId of a new producer
// instance): the epoch is bumped once (unless bump is false) so the old
// producer is fenced, the abort markers carry the bumped epoch, and
// lastEpoch is forgotten so no KIP-360 retry can claim the fenced epoch.
//
// Kafka marks the fence as a pending PrepareEpochFence and then runs an
// internal EndTxn(abort); samsa writes the PrepareAbort with the bumped
// epoch in one step. Nothing in memory changes before that write is
// durable, so a failed fence never bumps twice (what Kafka's
// hasFailedEpochFence guards, KAFKA-9666). Under TV2 Kafka 4.0 bumped
// twice (fence, then the TV2 prepare bump); the newest Kafka bumps once
// (KAFKA-19367, as I read it), and so does samsa for both versions.
// Lock must be held.
func (c *Coordinator) fenceAbortLocked(t *txn, bump bool, then func(code int16)) {
	next := t.txnData.clone()
	if bump && next.epoch < math.MaxInt16 {
		next.epoch++
	}
	next.lastEpoch = noEpoch
	next.state = PrepareAbort
	next.updateMs = c.nowMs()
	c.prepareEndLocked(t, next, func(code int16) {
		if code == 0 {
			t.fencedAbort = true
		}
		then(code)
	})
}

// completeData is what CompleteCommit/CompleteAbort of t (in PrepareX)
// will hold: no partitions, and under a TV2 epoch overflow the next
// producer id at epoch 0 ("the client only sees the transition as MAX-1
// followed by 0", Kafka's prepareComplete).
func (c *Coordinator) completeData(t *txn) txnData {
	d := t.txnData.clone()
	d.parts = map[TopicPartition]struct{}{}
	if t.state == PrepareCommit {
		d.state = CompleteCommit
	} else {
		d.state = CompleteAbort
	}
	if d.nextPid != noPID {
		d.prevPid, d.pid, d.epoch, d.nextPid = t.pid, t.nextPid, 0, noPID
	}
	return d
}

// startCompletionLocked writes the markers of t (in PrepareCommit or
// PrepareAbort) and then CompleteX. Meanwhile the CompleteX is t's pending
// transit, so requests on the id get CONCURRENT_TRANSACTIONS (or wait) as
// in Kafka. Lock must be held.
func (c *Coordinator) startCompletionLocked(t *txn) {
	done := c.completeData(t)
	t.pending = &done
	parts := t.sortedParts()
	if len(parts) == 0 {
		c.writeCompleteLocked(t, c.gen, c.markerBackoff)
		return
	}
	c.sendMarkersLocked(t, c.gen, parts, c.markerBackoff)
}

// sendMarkersLocked writes markers to parts; partitions that fail with a
// retriable code are tried again after backoff (doubling up to 1 s), until
// every marker is durable, the partition is gone, or this node stops
// coordinating. Lock must be held.
func (c *Coordinator) sendMarkersLocked(t *txn, gen uint64, parts []TopicPartition, backoff time.Duration) {
	commit := t.state == PrepareCommit
	pid, epoch, coordEpoch := t.pid, t.epoch, c.coordEpoch
	c.be.WriteMarkers(pid, epoch, coordEpoch, commit, parts, func(codes []int16) {
		c.lock()
		defer c.unlock()
		if gen != c.gen {
			return
		}
		var retry []TopicPartition
		for i, tp := range parts {
			code := kerr.UnknownServerError.Code
			if i < len(codes) {
				code = codes[i]
			}
			switch code {
			case 0:
				c.markers++
			case kerr.UnknownTopicOrPartition.Code, kerr.UnsupportedForMessageFormat.Code, kerr.UnsupportedVersion.Code:
				// The partition is gone (or cannot take markers): nothing
				// to complete there, as Kafka drops it.
			case kerr.TransactionCoordinatorFenced.Code, kerr.NotCoordinator.Code, kerr.InvalidProducerEpoch.Code:
				// A newer coordinator (or epoch) owns the transaction:
				// Kafka gives up on its markers and leaves it pending
				// until this coordinator is unloaded.
				c.logger.Error("cannot write transaction markers: fenced", "transactional_id", t.id, "topic", tp.Topic, "partition", tp.Partition, "code", code)
				return
			default:
				retry = append(retry, tp)
			}
		}
		if len(retry) == 0 {
			c.writeCompleteLocked(t, gen, c.markerBackoff)
			return
		}
		c.logger.Debug("retrying transaction markers", "transactional_id", t.id, "partitions", len(retry), "backoff", backoff)
		next := min(2*backoff, maxMarkerBackoff)
		t.timer = time.AfterFunc(backoff, func() {
			c.lock()
			defer c.unlock()
			if gen == c.gen {
				c.sendMarkersLocked(t, gen, retry, next)
			}
		})
	})
}

// writeCompleteLocked appends t's pending CompleteX, retrying after
// backoff if the append fails, and answers the EndTxn calls waiting for
// it. Lock must be held.
func (c *Coordinator) writeCompleteLocked(t *txn, gen uint64, backoff time.Duration) {
	if t.pending == nil {
		return
	}
	next := *t.pending
	next.updateMs = c.nowMs()
	c.writeLocked(t, next, func(code int16) {
		if gen != c.gen {
			return
		}
		if code != 0 {
			// Stay pending: the markers are written, only the record
			// is missing. Append failures here are storage trouble that
			// the engine answers by stepping down (Unload) or that pass.
			failed := next
			t.pending = &failed
			t.timer = time.AfterFunc(backoff, func() {
				c.lock()
				defer c.unlock()
				if gen == c.gen {
					c.writeCompleteLocked(t, gen, min(2*backoff, maxMarkerBackoff))
				}
			})
			return
		}
		ends := t.ends
		t.ends = nil
		for _, cl := range ends {
			cl.replyLocked(0)
		}
	})
}
