package replica

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/segment"
)

// Log is one log the pair replicates (a partition, or the metadata log):
// on a primary, what it knows of the standby's copy (its fetch offset, ISR
// membership, the high watermark and the acks=all produces waiting for
// the standby); on a standby, the high watermark the primary last
// reported. The catalog embeds one in each partition and calls Init once
// the segment log is open.
type Log struct {
	Topic string       // the topic's name (MetadataTopic for the metadata log)
	ID    [16]byte     // the topic's id (MetadataID)
	Index int32        // the partition
	Seg   *segment.Log // the log itself
	pair  *Pair

	mu       sync.Mutex
	offset   int64     // (mu) the standby's fetch offset: it holds everything below
	caughtUp time.Time // (mu) when its fetch offset last reached the log end of its previous fetch
	prevLEO  int64     // (mu) the log end when the standby last fetched
	inISR    bool      // (mu)
	hwm      int64     // (mu) primary: the high watermark; standby: the primary's, as last reported
	logStart int64     // (mu) the standby's log start offset, as of its last fetch
	waiters  []ackWaiter
}

// ackWaiter is an acks=all produce waiting for the standby.
type ackWaiter struct {
	end    int64 // the standby must hold offsets below this
	minISR int
	done   func(code int16)
}

// Init names the log and ties it to the pair. Call it before the log is
// shared. Retention then deletes only what is below the high watermark,
// as Kafka's: never records the standby in sync does not hold yet.
func (l *Log) Init(p *Pair, topic string, id [16]byte, idx int32, seg *segment.Log) {
	l.pair, l.Topic, l.ID, l.Index, l.Seg = p, topic, id, idx, seg
	seg.SetRetentionBound(l.HighWatermark)
}

// HighWatermark is the end of what consumers may read: the log end while
// the standby is out of the ISR (or on a node that is not the primary),
// the lesser of the log end and the standby's offset while it is in. It
// never goes back.
func (l *Log) HighWatermark() int64 { return l.HighWatermarkAt(time.Now()) }

// HighWatermarkAt is HighWatermark with the clock already read: a fetch
// of many partitions reads it once (at hundreds of replica fetches a
// second over 500 partitions, a clock read per partition was a tenth of
// the primary's CPU).
func (l *Log) HighWatermarkAt(now time.Time) int64 {
	leo := l.Seg.EndOffset()
	if !l.pair.IsPrimary() {
		return leo
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(leo, now)
	return l.hwm
}

// advanceLocked recomputes the ISR membership and high watermark and
// completes the waiters the standby's progress (or its leaving the ISR)
// releases. l.mu must be held.
func (l *Log) advanceLocked(leo int64, now time.Time) {
	lag := l.pair.lagTime()
	switch {
	case l.inISR && now.Sub(l.caughtUp) > lag:
		l.inISR = false
		l.pair.logger.Warn("standby left the ISR", "topic", l.Topic, "partition", l.Index, "standby_offset", l.offset, "log_end", leo)
	case !l.inISR && l.offset >= l.hwm && now.Sub(l.caughtUp) <= lag && !l.caughtUp.IsZero():
		l.inISR = true
		l.pair.logger.Info("standby joined the ISR", "topic", l.Topic, "partition", l.Index, "offset", l.offset)
	}
	hwm := leo
	if l.inISR {
		hwm = min(leo, l.offset)
	}
	if hwm > l.hwm {
		l.hwm = hwm
		l.Seg.NoteHighWatermark(hwm)
	}
	// Produces waiting for the standby: done once it holds them, or once
	// it is out of the ISR (then min.insync.replicas decides).
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		switch {
		case l.offset >= w.end:
			w.done(0)
		case !l.inISR:
			if w.minISR > 1 {
				w.done(kerr.NotEnoughReplicasAfterAppend.Code)
			} else {
				w.done(0)
			}
		default:
			kept = append(kept, w)
		}
	}
	clear(l.waiters[len(kept):])
	l.waiters = kept
}

// advance recomputes the state at now and wakes consumers parked at the
// old high watermark if it moved.
func (l *Log) advance(now time.Time) {
	l.mu.Lock()
	before := l.hwm
	l.advanceLocked(l.Seg.EndOffset(), now)
	moved := l.hwm != before
	l.mu.Unlock()
	if moved {
		l.Seg.Notify()
	}
}

// FetchedAt records, on the primary, a replica fetch of the standby at now:
// its fetch offset and its log start.
func (l *Log) FetchedAt(offset, logStart int64, now time.Time) {
	l.mu.Lock()
	before := l.hwm
	l.offset, l.logStart = offset, logStart
	leo := l.Seg.EndOffset()
	if offset >= leo || offset >= l.prevLEO {
		// Kafka's lastCaughtUpTime: set by fetches only (a standby that
		// stops fetching leaves the ISR even when nothing is written),
		// when the standby reached the log end as of its previous fetch,
		// so it stays in sync under a steady stream of writes.
		l.caughtUp = now
	}
	l.prevLEO = leo
	l.advanceLocked(leo, now)
	moved := l.hwm != before
	l.mu.Unlock()
	if moved {
		l.Seg.Notify() // consumers parked at the old high watermark
	}
}

// WaitForStandby calls done once the standby holds offsets below end, or
// at once when it is not in the ISR (NOT_ENOUGH_REPLICAS_AFTER_APPEND if
// minISR then is unmet). done may run on the caller's goroutine or, later,
// on the goroutine of the standby's fetch; it must not block.
func (l *Log) WaitForStandby(end int64, minISR int, done func(code int16)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.pair.IsPrimary() {
		// Stepped down after the append: nobody will acknowledge it.
		done(kerr.NotEnoughReplicasAfterAppend.Code)
		return
	}
	l.advanceLocked(l.Seg.EndOffset(), time.Now())
	if !l.inISR || l.offset >= end {
		code := int16(0)
		if !l.inISR && minISR > 1 {
			code = kerr.NotEnoughReplicasAfterAppend.Code
		}
		done(code)
		return
	}
	l.waiters = append(l.waiters, ackWaiter{end: end, minISR: minISR, done: done})
}

// AwaitStandby blocks, on a primary, until the standby holds offsets
// below end, while it is in the ISR, or until the pair stops.
func (l *Log) AwaitStandby(end int64) {
	if !l.pair.IsPrimary() {
		return
	}
	ch := make(chan struct{})
	l.WaitForStandby(end, 1, func(int16) { close(ch) })
	select {
	case <-ch:
	case <-l.pair.quit:
	}
}

// InSync reports whether the standby is in the log's ISR (always false on
// a node that is not the primary).
func (l *Log) InSync() bool {
	if !l.pair.IsPrimary() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(l.Seg.EndOffset(), time.Now())
	return l.inISR
}

// JoinISR puts the standby in the ISR of a log created while it is in
// sync: as in Kafka, a new partition's ISR is its replicas, and the
// standby, following, fetches it within the lag time.
func (l *Log) JoinISR() {
	l.mu.Lock()
	l.inISR, l.caughtUp = true, time.Now()
	l.mu.Unlock()
}

// Standby is, on a primary, how far the standby's copy is behind the log
// end and whether it is in the ISR.
func (l *Log) Standby() (lag int64, inISR bool) {
	leo := l.Seg.EndOffset()
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(0, leo-l.offset), l.inISR
}

// AwaitStandbyStart waits, on a primary, until the standby's log start is
// at least start, while it is in the ISR, or until deadline
// (REQUEST_TIMED_OUT). The standby reports its log start in every fetch;
// polling it costs a lock per 10 ms for the rare DeleteRecords.
func (l *Log) AwaitStandbyStart(start int64, deadline time.Time) int16 {
	for {
		l.mu.Lock()
		held := l.logStart >= start
		l.mu.Unlock()
		switch {
		case held || !l.InSync():
			return 0
		case time.Now().After(deadline):
			return kerr.RequestTimedOut.Code
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-l.pair.quit:
			return kerr.RequestTimedOut.Code
		}
	}
}

// PrimaryHWM is, on a standby, the high watermark the primary last
// reported for the log.
func (l *Log) PrimaryHWM() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hwm
}

// observePrimaryHWM records, on a standby, the primary's high watermark.
func (l *Log) observePrimaryHWM(hwm int64) {
	l.mu.Lock()
	l.hwm = max(l.hwm, hwm)
	l.mu.Unlock()
	l.Seg.NoteHighWatermark(hwm)
}

// reset forgets the standby's state when this node becomes the primary:
// the high watermark starts at the log end.
func (l *Log) reset() {
	l.mu.Lock()
	l.offset, l.inISR, l.caughtUp = 0, false, time.Time{}
	l.hwm = l.Seg.EndOffset()
	l.mu.Unlock()
	l.Seg.NoteHighWatermark(l.hwm)
}

// release completes every waiter with NOT_ENOUGH_REPLICAS_AFTER_APPEND:
// the pair stops, or this node stepped down, and nobody will acknowledge
// them now.
func (l *Log) release() {
	l.mu.Lock()
	for _, w := range l.waiters {
		w.done(kerr.NotEnoughReplicasAfterAppend.Code)
	}
	l.waiters = nil
	l.mu.Unlock()
}
