package segment

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Log operations.
var (
	ErrOffsetOutOfRange = errors.New("offset out of range")
	ErrInvalidTimestamp = errors.New("invalid timestamp")
	ErrLogClosed        = errors.New("log closed")
	ErrStorage          = errors.New("storage failure")
)

// Config is a partition's log configuration (Kafka topic config names in
// comments).
type Config struct {
	SegmentBytes       int64 // segment.bytes
	SegmentMs          int64 // segment.ms
	RetentionMs        int64 // retention.ms, -1 = forever
	RetentionBytes     int64 // retention.bytes, -1 = unlimited
	IndexIntervalBytes int64 // index.interval.bytes
	MaxMessageBytes    int64 // max.message.bytes
	LogAppendTime      bool  // message.timestamp.type=LogAppendTime
	// message.timestamp.before.max.ms / after.max.ms (CreateTime only).
	TimestampBeforeMaxMs int64
	TimestampAfterMaxMs  int64
	ProducerExpirationMs int64 // producer.id.expiration.ms
	// cleanup.policy: Delete enforces retention.ms and retention.bytes,
	// Compact keeps the latest record per key (compact.go).
	Delete, Compact    bool
	DeleteRetentionMs  int64   // delete.retention.ms: how long tombstones stay
	MinCleanableRatio  float64 // min.cleanable.dirty.ratio
	MinCompactionLagMs int64   // min.compaction.lag.ms
	// Internal logs (the metadata log, committed offsets) may write into
	// the disk's free-space reserve, where user appends are refused.
	Internal bool
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:         1 << 30,
		SegmentMs:            7 * 24 * 3600 * 1000,
		RetentionMs:          7 * 24 * 3600 * 1000,
		RetentionBytes:       -1,
		IndexIntervalBytes:   4096,
		MaxMessageBytes:      1048588,
		TimestampBeforeMaxMs: math.MaxInt64,
		TimestampAfterMaxMs:  math.MaxInt64,
		ProducerExpirationMs: 24 * 3600 * 1000,
		Delete:               true,
		DeleteRetentionMs:    24 * 3600 * 1000,
		MinCleanableRatio:    0.5,
	}
}

// Log is one partition's log: an ordered list of segments, the last of which
// takes appends. Appends assign offsets under mu and queue the bytes on the
// disk writer; readers see bytes once the writer publishes them.
//
// Lock order: cleanMu before mu before the Disk's locks; waitMu is a leaf
// (LOCKS.md).
type Log struct {
	dir    string
	disk   *Disk
	logger *slog.Logger
	cfg    atomic.Pointer[Config]

	mu          sync.RWMutex
	segs        []*Segment    // (mu) ascending base offsets; never empty
	next        int64         // (mu) next offset to assign
	producers   producerState // (mu)
	leaderEpoch int32         // (mu)
	epochs      []epochEntry  // (mu) first offset of each leader epoch (epochs.go)
	closed      bool          // (mu)
	// lane is the disk writer lane the log's ops go to (Disk.enqueue), and
	// laneOps counts those its writer has not handed on yet: a log moves
	// to another lane only with none in flight, so its ops stay in order.
	lane    int // (mu and Disk.mu)
	laneOps atomic.Int32
	// rateAt begins the current rateWindow, in which the log appended
	// rateCur bytes, and ratePrev in the one before (noteRateLocked).
	rateAt            time.Time // (mu)
	rateCur, ratePrev int64     // (mu)
	// changed: the log's files differ from what a clean close would
	// write (appended, truncated or recovered since it was opened, or
	// its active indexes or snapshot missing); a clean close of an
	// unchanged log writes nothing.
	changed bool // (mu)
	// hasSnapshot: a producer snapshot file may exist (false only when
	// none does: a new log, or one whose snapshots were all removed).
	hasSnapshot atomic.Bool
	ongoing     map[int64]int64 // (mu) first offset of each open transaction by producer (txn.go)
	// markerSeq counts every marker applied to the log, never reset (not
	// even when the producer state is rebuilt): TxnGuard's clock.
	markerSeq uint64 // (mu)

	firstUnstable atomic.Int64 // first offset of the oldest open transaction, -1 if none
	hasAborts     atomic.Bool  // some segment has indexed an aborted transaction
	// decided holds the transactions ended by a marker the high watermark
	// may not have passed yet, oldest first (Kafka's unreplicatedTxns): an
	// immutable slice replaced under mu, read without it. seenHW is the
	// highest high watermark LastStableOffset was given (txn.go).
	decided atomic.Pointer[[]decidedTxn]
	seenHW  atomic.Int64

	// retentionBound, if set, gives the offset retention may not delete
	// past (the high watermark: SetRetentionBound).
	retentionBound atomic.Pointer[func() int64]

	end    atomic.Int64            // offsets below are written and readable
	synced atomic.Int64            // offsets below are fsynced
	start  atomic.Int64            // log start offset
	err    atomic.Pointer[failure] // set: the log is offline (space.go)

	cleanMu      sync.Mutex   // one compaction pass at a time
	cleanStop    atomic.Bool  // set on shutdown: a running pass gives up
	cleanedTo    int64        // (cleanMu) offsets below were compacted
	tombstonesAt atomic.Int64 // when the first kept tombstone may go (ms); 0: none

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{} // (waitMu) signalled on publish
	woke    atomic.Int64               // Unix ns of the last wake with waiters
}

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// SetRetentionBound makes retention keep every segment holding offsets at
// or above hw(), as Kafka deletes only segments wholly below the high
// watermark: in a pair, records the standby does not hold yet (and whose
// acks=all produces still wait for it) are never deleted under it. hw is
// called without the log's lock.
func (l *Log) SetRetentionBound(hw func() int64) { l.retentionBound.Store(&hw) }

// SetConfig replaces the log's configuration.
func (l *Log) SetConfig(c Config) { l.cfg.Store(&c) }

// Config returns the log's configuration.
func (l *Log) Config() Config { return *l.cfg.Load() }

// MaxMessageBytes is the log's max.message.bytes.
func (l *Log) MaxMessageBytes() int64 { return l.cfg.Load().MaxMessageBytes }

// SyncedOffset is the offset below which the log is fsynced.
func (l *Log) SyncedOffset() int64 { return l.synced.Load() }

// EndOffset is the offset after the last readable record (the log end offset
// and, on a single node, the high watermark).
func (l *Log) EndOffset() int64 { return l.end.Load() }

// StartOffset is the log start offset.
func (l *Log) StartOffset() int64 { return l.start.Load() }

func (l *Log) publish(end int64) {
	l.end.Store(end)
	l.wake()
}

func (l *Log) wake() {
	l.waitMu.Lock()
	if len(l.waiters) > 0 {
		l.woke.Store(time.Now().UnixNano())
	}
	for ch := range l.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	l.waitMu.Unlock()
}

func (l *Log) publishSynced(end int64) {
	for {
		cur := l.synced.Load()
		if end <= cur || l.synced.CompareAndSwap(cur, end) {
			return
		}
	}
}

// Watch registers ch to receive a non-blocking send whenever new records
// become readable. Unwatch removes it.
func (l *Log) Watch(ch chan struct{}) {
	l.waitMu.Lock()
	if l.waiters == nil {
		l.waiters = map[chan struct{}]struct{}{}
	}
	l.waiters[ch] = struct{}{}
	l.waitMu.Unlock()
}

// Unwatch undoes Watch.
func (l *Log) Unwatch(ch chan struct{}) {
	l.waitMu.Lock()
	delete(l.waiters, ch)
	l.waitMu.Unlock()
}

// Notify wakes the log's watchers without an append: for a high
// watermark that moved because a replica caught up.
func (l *Log) Notify() { l.wake() }

// LastWake is when the log last woke its watchers (Unix ns; 0: never):
// how long a parked fetch took to answer after it was woken (metrics).
func (l *Log) LastWake() int64 { return l.woke.Load() }

// Close stops appends and, when clean, persists the active segment's
// indexes and the producer state so the next start need not scan, if the
// log changed since it was opened. The disk must already be drained (its
// data fsynced). The files are written without fsync: the caller makes
// them durable before it marks the shutdown clean (Store.Close: one
// syncfs for every log). It reports whether it wrote them.
func (l *Log) Close(clean bool) (wrote bool) {
	l.cleanStop.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	if clean && l.changed && l.failure() == nil {
		wrote = true
		active := l.segs[len(l.segs)-1]
		size := active.size.Load()
		if active.prealloc.Load() > size+minPrealloc {
			// Blocks this process allocated ahead (those a crash left
			// went at the open).
			active.trimPrealloc(size, minPrealloc)
		}
		switch {
		case size >= activeIndexBytes:
			if err := active.writeIndexesNoSync(active.offIdx, active.timeIdx, active.txnIdx); err != nil {
				l.logger.Warn("cannot write indexes", "err", err)
			}
		case active.idxFiles:
			// The next start scans it: files an earlier stop left go,
			// never stale for that start to trust.
			for _, ext := range []string{".index", ".timeindex"} {
				if err := os.Remove(active.path + ext); err != nil && !os.IsNotExist(err) {
					l.logger.Warn("cannot remove stale index", "err", err)
				}
			}
			active.idxFiles = false
			fallthrough
		default:
			// Its aborted transactions, which a scan does not rebuild
			// (a no-op without any).
			if err := active.writeTxnIndex(active.txnIdx); err != nil {
				l.logger.Warn("cannot write transaction index", "err", err)
			}
		}
		if l.snapshotUsefulLocked() {
			l.writeSnapshotLocked(snapshotNoSync)
		}
	}
	for _, s := range l.segs {
		s.unref()
	}
	return wrote
}

// snapshotUsefulLocked reports whether a clean stop should write a
// producer snapshot. Not with no producer and no snapshot yet, in one
// small segment: the next start's replay of its batch headers from the
// start costs less than the file (a partition created and written a
// little, of thousands). l.mu is held.
func (l *Log) snapshotUsefulLocked() bool {
	return len(l.producers) > 0 || l.hasSnapshot.Load() || len(l.segs) > 1 || l.segs[0].size.Load() >= activeIndexBytes
}

// activeIndexBytes is the size from which an active segment gets index
// files at a clean stop and a clean start reads them. Below it, scanning
// the segment (its headers and CRCs, mostly one read) costs less than
// reading two files: a start of 10,000 small partitions took 0.8 s with
// them and 0.5 s without. A variable for tests of the index files.
var activeIndexBytes int64 = 64 << 10

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	l.mu.Lock()
	for _, s := range l.segs {
		s.retire() // a topic of the same name may come back
	}
	l.mu.Unlock()
	l.Close(false)
	return os.RemoveAll(l.dir)
}

// Size is the bytes the log's segments hold.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size.Load()
	}
	return n
}
