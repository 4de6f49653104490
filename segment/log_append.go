package segment

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// AppendResult describes where an appended batch went.
type AppendResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	Duplicate      bool // an idempotent retry of a batch already in the log
}

// Append assigns offsets to a validated batch (h is its header), rewrites
// its header in place and queues it on the disk writer. done is called from
// a disk goroutine once the batch is written, or also fsynced if sync is
// set; it must not block. The batch bytes must stay untouched until then.
func (l *Log) Append(batch []byte, h *BatchHeader, sync bool, done func(error)) (AppendResult, error) {
	return l.append(batch, h, sync, done, false, nil)
}

// ErrTxnNotVerified is AppendVerified's error for a transactional batch
// whose transaction ended (a marker) after it was verified.
var ErrTxnNotVerified = fmt.Errorf("the transaction ended between the batch's verification and its append: %w", ErrInvalidTxnState)

// AppendVerified is Append for a transactional batch verified against
// guard (TxnGuard, read before the verification). As Kafka's
// UnifiedLog.append, it fails with ErrTxnNotVerified unless the batch is
// a duplicate of one in the log, the producer still has a transaction
// open here at the batch's epoch, or no marker was written for it since
// the guard was read.
func (l *Log) AppendVerified(batch []byte, h *BatchHeader, guard uint64, sync bool, done func(error)) (AppendResult, error) {
	return l.append(batch, h, sync, done, false, &guard)
}

// AppendCoordinator appends a batch a coordinator wrote for a producer
// (transactional offset commits in __consumer_offsets): the producer's
// epoch is checked and a transactional batch opens a transaction, but no
// sequence is (Kafka's AppendOrigin.COORDINATOR).
func (l *Log) AppendCoordinator(batch []byte, h *BatchHeader, sync bool, done func(error)) (AppendResult, error) {
	return l.append(batch, h, sync, done, true, nil)
}

func (l *Log) append(batch []byte, h *BatchHeader, sync bool, done func(error), coordinator bool, guard *uint64) (AppendResult, error) {
	cfg := l.cfg.Load()
	res := AppendResult{LogAppendTime: -1}
	if int64(len(batch)) > cfg.MaxMessageBytes {
		return res, fmt.Errorf("cannot append %d bytes, max.message.bytes is %d: %w", len(batch), cfg.MaxMessageBytes, ErrBatchTooLarge)
	}
	now := time.Now()
	nowMs := now.UnixMilli()
	if !cfg.LogAppendTime && !h.IsControl() {
		if h.MaxTimestamp >= 0 && (nowMs-h.MaxTimestamp > cfg.TimestampBeforeMaxMs || h.MaxTimestamp-nowMs > cfg.TimestampAfterMaxMs) {
			return res, fmt.Errorf("cannot append: timestamp %d too far from broker time %d: %w", h.MaxTimestamp, nowMs, ErrInvalidTimestamp)
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.disk.closing() {
		return res, ErrLogClosed
	}
	if err := l.failure(); err != nil {
		return res, err
	}
	if err := l.checkSpace(cfg); err != nil {
		return res, err
	}
	res.LogStartOffset = l.start.Load()
	// As Kafka's analyzeAndValidateProducerState: a duplicate first, then
	// the verification guard, then the epoch and sequence checks.
	notVerified := func() bool {
		if guard == nil {
			return false
		}
		e := l.producers[h.ProducerID]
		ongoing := e != nil && e.epoch == h.ProducerEpoch && e.txnFirst >= 0
		return e != nil && !ongoing && e.lastMarker > *guard
	}
	if coordinator && h.HasProducer() {
		if e := l.producers[h.ProducerID]; e != nil && h.ProducerEpoch < e.epoch {
			return res, fmt.Errorf("cannot append: producer %d epoch %d < %d: %w", h.ProducerID, h.ProducerEpoch, e.epoch, ErrProducerFenced)
		}
	} else if h.HasProducer() {
		dup, err := l.producers.check(h)
		if dup == nil && notVerified() {
			return res, ErrTxnNotVerified
		}
		if err != nil {
			return res, err
		}
		if dup != nil {
			res.BaseOffset, res.Duplicate = dup.firstOffset, true
			l.disk.enqueue(&op{kind: opBarrier, log: l, sync: sync && dup.lastOffset >= l.synced.Load(), done: done})
			return res, nil
		}
	}

	active, err := l.activeForLocked(cfg, int64(len(batch)), h, now)
	if err != nil {
		return res, err
	}
	res.BaseOffset = l.next
	l.noteEpochLocked(l.leaderEpoch, l.next)
	SetBaseOffset(batch, l.next)
	SetLeaderEpoch(batch, l.leaderEpoch)
	h.BaseOffset, h.LeaderEpoch = l.next, l.leaderEpoch
	if cfg.LogAppendTime && !h.IsControl() {
		SetLogAppendTime(batch, nowMs)
		h.MaxTimestamp = nowMs
		res.LogAppendTime = nowMs
	}
	l.placeLocked(active, cfg, batch, h, now, sync, done)
	return res, nil
}

// activeForLocked returns the segment a batch of size bytes goes to,
// rolling first when segment.bytes, segment.ms or the int32 offsets and
// positions of Kafka's index formats say so. l.mu is held.
func (l *Log) activeForLocked(cfg *Config, size int64, h *BatchHeader, now time.Time) (*Segment, error) {
	active := l.segs[len(l.segs)-1]
	if active.reserved > 0 && (active.reserved+size > min(cfg.SegmentBytes, math.MaxInt32) ||
		(cfg.SegmentMs > 0 && now.Sub(active.firstAppendAt) >= time.Duration(cfg.SegmentMs)*time.Millisecond) ||
		l.next+int64(h.LastOffsetDelta)-active.base > math.MaxInt32) {
		return l.rollLocked()
	}
	return active, nil
}

// placeLocked reserves the batch's place at the end of active, indexes it,
// advances the log end and producer state, and queues the write. h holds
// the batch's final offsets. l.mu is held.
func (l *Log) placeLocked(active *Segment, cfg *Config, batch []byte, h *BatchHeader, now time.Time, sync bool, done func(error)) {
	pos := active.reserved
	if pos == 0 {
		active.firstAppendAt = now
	}
	active.reserved += int64(len(batch))
	active.indexBatchLocked(h, pos, cfg.IndexIntervalBytes)
	l.next = h.LastOffset() + 1
	l.changed = true
	if h.HasProducer() {
		l.applyProducerLocked(active, batch, h, now.UnixMilli())
	}
	o := getOp()
	o.kind, o.log, o.seg, o.pos, o.data, o.end, o.sync, o.done = opWrite, l, active, pos, batch, l.next, sync, done
	o.hot = l.noteRateLocked(int64(len(batch)), now)
	l.disk.enqueue(o)
}

// noteRateLocked counts n bytes appended at now and reports whether the
// log appended bulkRecent bytes or more in this rateWindow and the one
// before: a throughput stream, whose ops go to the bulk lane. l.mu is
// held.
func (l *Log) noteRateLocked(n int64, now time.Time) bool {
	// now was read before l.mu: a little behind rateAt counts in it.
	switch d := now.Sub(l.rateAt); {
	case d >= 2*rateWindow:
		l.ratePrev, l.rateCur, l.rateAt = 0, 0, now
	case d >= rateWindow:
		l.ratePrev, l.rateCur, l.rateAt = l.rateCur, 0, l.rateAt.Add(rateWindow)
	}
	l.rateCur += n
	return l.ratePrev+l.rateCur >= bulkRecent
}

// ErrReplicaOffset is returned by AppendReplica for a batch that does not
// start at the log end offset.
var ErrReplicaOffset = errors.New("replicated batch does not start at the log end offset")

// AppendReplica appends a batch copied from the leader's log: offsets,
// leader epoch and timestamps are already assigned and stay as they are.
// The batch must start at the log end offset; it must have passed
// ValidateBatch's framing and CRC checks (its record count may be thinned
// by compaction). With sync, done waits for the batch's fsync (group
// commit), as Append's does. done is called as for Append.
func (l *Log) AppendReplica(batch []byte, h *BatchHeader, sync bool, done func(error)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.disk.closing() {
		return ErrLogClosed
	}
	if err := l.failure(); err != nil {
		return err
	}
	if h.BaseOffset != l.next {
		return fmt.Errorf("batch at %d, log ends at %d: %w", h.BaseOffset, l.next, ErrReplicaOffset)
	}
	cfg, now := l.cfg.Load(), time.Now()
	if err := l.checkSpace(cfg); err != nil {
		return err
	}
	active, err := l.activeForLocked(cfg, int64(len(batch)), h, now)
	if err != nil {
		return err
	}
	if h.LeaderEpoch > l.leaderEpoch {
		l.leaderEpoch = h.LeaderEpoch
	}
	l.noteEpochLocked(h.LeaderEpoch, h.BaseOffset)
	l.placeLocked(active, cfg, batch, h, now, sync, done)
	return nil
}

// rollLocked seals the active segment and starts a new one at l.next.
// l.mu should be held.
func (l *Log) rollLocked() (*Segment, error) {
	old := l.segs[len(l.segs)-1]
	if old.idxFiles {
		// A clean stop's index files describe only a prefix of old now;
		// once another segment follows it, a crash would have them
		// trusted. The seal writes them afresh after its fsync.
		for _, ext := range []string{".index", ".timeindex"} {
			os.Remove(old.path + ext)
		}
		if err := syncDir(l.dir); err != nil {
			l.failWrite(err)
			return nil, l.failure()
		}
		old.idxFiles = false
	}
	s, err := createSegment(l.dir, l.next)
	if err != nil {
		l.failWrite(err)
		return nil, l.failure()
	}
	old.sealed = true
	l.segs = append(l.segs, s)
	l.disk.enqueue(&op{kind: opSeal, log: l, seg: old, offIdx: old.offIdx, timeIdx: old.timeIdx, txnIdx: old.txnIdx})
	l.writeSnapshotLocked(snapshotAsync)
	return s, nil
}

// snapshotMode is how writeSnapshotLocked writes.
type snapshotMode uint8

const (
	// snapshotAsync: through the disk syncer, fsynced after the data it
	// describes (a roll).
	snapshotAsync snapshotMode = iota
	// snapshotNoSync: now, in place and without fsync (writeInPlace), at a
	// clean stop whose syncfs makes it durable. A power loss before that
	// leaves it torn (its CRC tells) and the next start replays from the
	// log start.
	snapshotNoSync
)

// writeSnapshotLocked persists the producer state as of l.next.
//
// A snapshot is written even with no producers: it spares the next start a
// replay of every batch header since the last one.
func (l *Log) writeSnapshotLocked(mode snapshotMode) {
	cfg := l.cfg.Load()
	l.producers.expire(time.Now().UnixMilli() - cfg.ProducerExpirationMs)
	data := l.producers.marshal(nil)
	path := snapshotPath(l.dir, l.next)
	write := func(err error) {
		if err != nil {
			return // the data it describes may not be durable
		}
		write := writeFileSync
		if mode == snapshotNoSync {
			write = writeInPlace
		}
		if err := write(path, data); err != nil {
			l.logger.Warn("cannot write producer snapshot", "err", err)
			return
		}
		if !l.hasSnapshot.Swap(true) {
			return // the first: none to supersede
		}
		// Older snapshots are superseded.
		for _, off := range listSnapshots(l.dir) {
			if snapshotPath(l.dir, off) != path {
				os.Remove(snapshotPath(l.dir, off))
			}
		}
	}
	if mode == snapshotAsync {
		l.disk.enqueue(&op{kind: opBarrier, log: l, sync: true, done: write})
	} else {
		write(nil)
	}
}

// Sync queues a barrier that completes once everything appended so far is
// fsynced (SyncedOffset then reaches it, also for appends that did not ask
// for an fsync).
func (l *Log) Sync(done func(error)) {
	if l.disk.closing() {
		if done != nil {
			done(ErrLogClosed)
		}
		return
	}
	l.mu.Lock()
	l.disk.enqueue(&op{kind: opBarrier, log: l, sync: true, end: l.next, done: done})
	l.mu.Unlock()
}
