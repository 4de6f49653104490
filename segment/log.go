package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

	end    atomic.Int64 // offsets below are written and readable
	synced atomic.Int64 // offsets below are fsynced
	start  atomic.Int64 // log start offset
	err    atomic.Pointer[error]

	cleanMu      sync.Mutex   // one compaction pass at a time
	cleanStop    atomic.Bool  // set on shutdown: a running pass gives up
	cleanedTo    int64        // (cleanMu) offsets below were compacted
	tombstonesAt atomic.Int64 // when the first kept tombstone may go (ms); 0: none

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{} // (waitMu) signalled on publish
}

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// SetConfig replaces the log's configuration.
func (l *Log) SetConfig(c Config) { l.cfg.Store(&c) }

// Config returns the log's configuration.
func (l *Log) Config() Config { return *l.cfg.Load() }

// EndOffset is the offset after the last readable record (the log end offset
// and, on a single node, the high watermark).
func (l *Log) EndOffset() int64 { return l.end.Load() }

// StartOffset is the log start offset.
func (l *Log) StartOffset() int64 { return l.start.Load() }

func (l *Log) failure() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *Log) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrStorage, err)
	l.err.CompareAndSwap(nil, &err)
}

func (l *Log) publish(end int64) {
	l.end.Store(end)
	l.wake()
}

func (l *Log) wake() {
	l.waitMu.Lock()
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
	res.LogStartOffset = l.start.Load()
	if h.HasProducer() {
		dup, err := l.producers.check(h)
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
	if h.HasProducer() {
		l.producers.update(h, now.UnixMilli())
	}
	o := getOp()
	o.kind, o.log, o.seg, o.pos, o.data, o.end, o.sync, o.done = opWrite, l, active, pos, batch, l.next, sync, done
	l.disk.enqueue(o)
}

// ErrReplicaOffset is returned by AppendReplica for a batch that does not
// start at the log end offset.
var ErrReplicaOffset = errors.New("replicated batch does not start at the log end offset")

// AppendReplica appends a batch copied from the leader's log: offsets,
// leader epoch and timestamps are already assigned and stay as they are.
// The batch must start at the log end offset; it must have passed
// ValidateBatch's framing and CRC checks (its record count may be thinned
// by compaction). done is called as for Append.
func (l *Log) AppendReplica(batch []byte, h *BatchHeader, done func(error)) error {
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
	active, err := l.activeForLocked(cfg, int64(len(batch)), h, now)
	if err != nil {
		return err
	}
	if h.LeaderEpoch > l.leaderEpoch {
		l.leaderEpoch = h.LeaderEpoch
	}
	l.noteEpochLocked(h.LeaderEpoch, h.BaseOffset)
	l.placeLocked(active, cfg, batch, h, now, false, done)
	return nil
}

// Notify wakes the log's watchers without an append: for a high
// watermark that moved because a replica caught up.
func (l *Log) Notify() { l.wake() }

// rollLocked seals the active segment and starts a new one at l.next.
// l.mu should be held.
func (l *Log) rollLocked() (*Segment, error) {
	old := l.segs[len(l.segs)-1]
	s, err := createSegment(l.dir, l.next)
	if err != nil {
		l.fail(err)
		return nil, err
	}
	old.sealed = true
	l.segs = append(l.segs, s)
	l.disk.enqueue(&op{kind: opSeal, log: l, seg: old, offIdx: old.offIdx, timeIdx: old.timeIdx})
	l.writeSnapshotLocked(true)
	return s, nil
}

// writeSnapshotLocked persists the producer state as of l.next; through the
// disk syncer when async, so it lands after the data it describes.
//
// A snapshot is written even with no producers: it spares the next start a
// replay of every batch header since the last one.
func (l *Log) writeSnapshotLocked(async bool) {
	cfg := l.cfg.Load()
	l.producers.expire(time.Now().UnixMilli() - cfg.ProducerExpirationMs)
	data := l.producers.marshal(nil)
	path := snapshotPath(l.dir, l.next)
	write := func(err error) {
		if err != nil {
			return // the data it describes may not be durable
		}
		if err := writeFileSync(path, data); err != nil {
			l.logger.Warn("cannot write producer snapshot", "err", err)
			return
		}
		// Older snapshots are superseded.
		for _, off := range listSnapshots(l.dir) {
			if snapshotPath(l.dir, off) != path {
				os.Remove(snapshotPath(l.dir, off))
			}
		}
	}
	if async {
		l.disk.enqueue(&op{kind: opBarrier, log: l, sync: true, done: write})
	} else {
		write(nil)
	}
}

// Sync queues a barrier that completes once everything appended so far is
// fsynced.
func (l *Log) Sync(done func(error)) {
	if l.disk.closing() {
		if done != nil {
			done(ErrLogClosed)
		}
		return
	}
	l.mu.Lock()
	l.disk.enqueue(&op{kind: opBarrier, log: l, sync: true, done: done})
	l.mu.Unlock()
}

// Slice is a run of whole batches in one segment file, held open until
// Release. Its bytes may be sent with sendfile.
type Slice struct {
	seg         *Segment
	Pos, Len    int64
	FirstOffset int64 // base offset of the first batch
	NextOffset  int64 // offset after the last batch
}

// File is the segment file holding the slice.
func (s *Slice) File() *os.File {
	if s.seg == nil {
		return nil
	}
	return s.seg.f
}

// Release lets the segment file close once it is deleted.
func (s *Slice) Release() {
	if s.seg != nil {
		s.seg.unref()
		s.seg = nil
	}
}

// ReadAt copies the slice's bytes into p (len(p) <= Len-off).
func (s *Slice) ReadAt(p []byte, off int64) (int, error) {
	return s.seg.f.ReadAt(p, s.Pos+off)
}

// Read returns the whole batches from the one containing offset, stopping
// before upTo (an exclusive offset bound, e.g. the high watermark) and after
// maxBytes, but always at least one batch when any is below upTo. An empty
// slice means nothing is readable at offset yet.
func (l *Log) Read(offset, upTo, maxBytes int64) (Slice, error) {
	var hb [BatchHeaderSize]byte
	for attempt := 0; ; attempt++ {
		l.mu.RLock()
		end := l.end.Load()
		upTo = min(upTo, end)
		if offset < l.start.Load() || offset > end {
			l.mu.RUnlock()
			return Slice{}, fmt.Errorf("cannot read offset %d of [%d, %d]: %w", offset, l.start.Load(), end, ErrOffsetOutOfRange)
		}
		if offset >= upTo {
			l.mu.RUnlock()
			return Slice{}, nil
		}
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
		if i < 0 {
			i = 0
		}
		seg := l.segs[i]
		pos := int64(seg.offIdx.lookup(uint32(offset - seg.base)))
		ok := seg.ref()
		l.mu.RUnlock()
		if !ok {
			continue // deleted under us; the list has changed
		}
		for seg != nil {
			sl, found, err := scanSegment(seg, pos, offset, upTo, maxBytes, &hb)
			if err != nil || found {
				if err != nil {
					seg.unref()
				}
				return sl, err
			}
			// Nothing at or after offset in this segment: try the next.
			seg.unref()
			seg = l.segmentAfter(seg.base)
			pos = 0
		}
		if attempt > 3 {
			return Slice{}, nil
		}
	}
}

// segmentAfter returns a referenced segment following base, or nil.
func (l *Log) segmentAfter(base int64) *Segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segs {
		if s.base > base && s.ref() {
			return s
		}
	}
	return nil
}

// scanSegment walks batch headers from pos to the batch holding offset and
// then takes batches up to maxBytes (at least one) below upTo.
func scanSegment(seg *Segment, pos, offset, upTo, maxBytes int64, hb *[BatchHeaderSize]byte) (Slice, bool, error) {
	size := seg.size.Load()
	sl := Slice{seg: seg, Pos: -1}
	for pos < size {
		h, err := seg.readHeader(pos, hb)
		if err != nil {
			return Slice{}, false, fmt.Errorf("cannot read batch header in %s at %d: %w", seg.path, pos, err)
		}
		if h.BaseOffset >= upTo {
			break
		}
		if sl.Pos < 0 {
			if h.LastOffset() < offset {
				pos += h.Size()
				continue
			}
			sl.Pos, sl.FirstOffset = pos, h.BaseOffset
		} else if sl.Len+h.Size() > maxBytes {
			break
		}
		sl.Len += h.Size()
		sl.NextOffset = h.LastOffset() + 1
		pos += h.Size()
	}
	if sl.Pos < 0 {
		return Slice{}, false, nil
	}
	return sl, true, nil
}

// OffsetForTime finds the first record with a timestamp >= ts. It returns
// the record's offset and timestamp, or found=false if there is none.
func (l *Log) OffsetForTime(ts int64) (offset, recordTs int64, found bool, err error) {
	l.mu.RLock()
	end, start := l.end.Load(), l.start.Load()
	type cand struct {
		seg *Segment
		pos int64
	}
	var cands []cand
	for _, s := range l.segs {
		if s.maxTs < ts || !s.ref() {
			continue
		}
		rel := s.timeIdx.lookup(ts)
		cands = append(cands, cand{s, int64(s.offIdx.lookup(rel))})
	}
	l.mu.RUnlock()
	defer func() {
		for _, c := range cands {
			c.seg.unref()
		}
	}()
	var hb [BatchHeaderSize]byte
	for _, c := range cands {
		size := c.seg.size.Load()
		for pos := c.pos; pos < size; {
			h, err := c.seg.readHeader(pos, &hb)
			if err != nil {
				return 0, 0, false, fmt.Errorf("cannot read batch header: %w", err)
			}
			if h.BaseOffset >= end {
				break
			}
			if h.MaxTimestamp >= ts && !h.IsControl() && h.LastOffset() >= start {
				off, rts, ok, err := findRecordTime(c.seg, pos, &h, func(o, t int64) bool { return t >= ts && o >= start })
				if err != nil || ok {
					return off, rts, ok, err
				}
			}
			pos += h.Size()
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the first such record), or found=false if empty.
func (l *Log) MaxTimestamp() (offset, ts int64, found bool, err error) {
	l.mu.RLock()
	var best *Segment
	for _, s := range l.segs {
		if s.maxTs >= 0 && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil || !best.ref() {
		l.mu.RUnlock()
		return 0, 0, false, nil
	}
	maxTs, boff := best.maxTs, best.maxTsOffset
	pos := int64(best.offIdx.lookup(uint32(boff - best.base)))
	l.mu.RUnlock()
	defer best.unref()
	var hb [BatchHeaderSize]byte
	for size := best.size.Load(); pos < size; {
		h, err := best.readHeader(pos, &hb)
		if err != nil {
			return 0, 0, false, err
		}
		if h.BaseOffset == boff {
			if h.Attributes&AttrLogAppendTime != 0 {
				// Every record has the append time; Kafka reports the
				// earliest record with the max timestamp.
				return h.BaseOffset, h.MaxTimestamp, true, nil
			}
			off, rts, ok, err := findRecordTime(best, pos, &h, func(_, t int64) bool { return t == maxTs })
			if ok || err != nil {
				return off, rts, ok, err
			}
			return h.LastOffset(), h.MaxTimestamp, true, nil
		}
		pos += h.Size()
	}
	return 0, 0, false, nil
}

// Close stops appends and, when clean, persists the active segment's
// indexes and the producer state so the next start need not scan. The disk
// must already be drained.
func (l *Log) Close(clean bool) {
	l.cleanStop.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	if clean && l.failure() == nil {
		active := l.segs[len(l.segs)-1]
		active.trimPrealloc(active.size.Load())
		if err := active.f.Sync(); err == nil {
			if err := active.writeIndexes(active.offIdx, active.timeIdx); err != nil {
				l.logger.Warn("cannot write indexes", "err", err)
			}
			l.writeSnapshotLocked(false)
		}
	}
	for _, s := range l.segs {
		s.unref()
	}
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	l.Close(false)
	return os.RemoveAll(l.dir)
}

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (int64, bool) {
	base, ok := strings.CutSuffix(name, ".log")
	if !ok {
		return 0, false
	}
	return ParseOffsetName(base)
}

// ParseOffsetName parses the 20-digit zero-padded offset that names segment,
// index and snapshot files. Only names segmentPath could have made are
// accepted: strconv alone would take "+0000000000000000001", and OpenLog
// would then look for a file of another name.
func ParseOffsetName(s string) (int64, bool) {
	if len(s) != 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	off, err := strconv.ParseInt(s, 10, 64)
	return off, err == nil
}

// OpenLog opens (or creates) the partition log in dir. clean says whether
// the last shutdown was clean; otherwise the tail is verified batch by batch
// and truncated at the first invalid one.
func OpenLog(dir string, disk *Disk, cfg Config, clean bool, logger *slog.Logger) (*Log, error) {
	l := &Log{dir: dir, disk: disk, logger: logger.With("subsystem", "log", "dir", filepath.Base(dir)), producers: producerState{}}
	l.cfg.Store(&cfg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create log dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list log dir: %w", err)
	}
	var bases []int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") || strings.HasSuffix(e.Name(), cleanedSuffix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
		if b, ok := parseSegmentName(e.Name()); ok {
			bases = append(bases, b)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	drop := func(rest []int64) {
		for _, b := range rest {
			l.logger.Warn("dropping segment after a truncated, missing or overlapping one", "segment", segmentPath(dir, b))
			for _, ext := range []string{".log", ".index", ".timeindex"} {
				os.Remove(segmentPath(dir, b) + ext)
			}
		}
	}
	for i, base := range bases {
		// A segment starting inside the previous one was merged into it
		// by compaction, which crashed before removing it.
		if n := len(l.segs); n > 0 && base <= l.segs[n-1].lastOffset && l.segs[n-1].base < base {
			l.logger.Info("removing segment left over from compaction", "segment", segmentPath(dir, base))
			for _, ext := range []string{".log", ".index", ".timeindex"} {
				os.Remove(segmentPath(dir, base) + ext)
			}
			continue
		}
		// samsa rolls a segment at the end offset of the previous one, so
		// a segment that does not start there follows lost data (a torn
		// or empty predecessor) or is a stray: it and everything after it
		// goes.
		if n := len(l.segs); n > 0 && base != l.segs[n-1].lastOffset+1 {
			drop(bases[i:])
			break
		}
		p := segmentPath(dir, base)
		f, err := os.OpenFile(p+".log", os.O_RDWR, 0o644)
		if err != nil {
			l.closeSegs()
			return nil, fmt.Errorf("cannot open segment: %w", err)
		}
		s := newSegment(base, p, f)
		last := i == len(bases)-1
		truncated, err := l.recoverSegment(s, clean, last)
		if err != nil {
			f.Close()
			l.closeSegs()
			return nil, err
		}
		l.segs = append(l.segs, s)
		if truncated {
			drop(bases[i+1:])
			break
		}
	}
	if len(l.segs) == 0 {
		s, err := createSegment(dir, 0)
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, s)
	}
	active := l.segs[len(l.segs)-1]
	active.sealed = false
	// A crash leaves the blocks allocated ahead of the writes.
	active.trimPrealloc(active.size.Load())
	// The active segment's index files are stale once it takes appends; a
	// crash from here on must rebuild them by scanning. The removal must be
	// durable before any append: otherwise, after a power loss, a stale
	// index could be trusted once the segment has been rolled away from.
	removed := false
	for _, ext := range []string{".index", ".timeindex"} {
		if err := os.Remove(active.path + ext); err == nil {
			removed = true
		}
	}
	if removed {
		if err := syncDir(dir); err != nil {
			l.closeSegs()
			return nil, err
		}
	}
	l.next = active.lastOffset + 1
	if active.reserved > 0 {
		// segment.ms counts from the first batch. Kafka uses its
		// timestamp; without one the segment is as old as this start.
		active.firstAppendAt = time.Now()
		var hb [BatchHeaderSize]byte
		if h, err := active.readHeader(0, &hb); err == nil && h.MaxTimestamp >= 0 && h.MaxTimestamp < active.firstAppendAt.UnixMilli() {
			active.firstAppendAt = time.UnixMilli(h.MaxTimestamp)
		}
	}
	l.start.Store(l.segs[0].base)
	l.end.Store(l.next)
	l.synced.Store(l.next)
	l.loadStart()
	if err := l.loadProducers(); err != nil {
		l.closeSegs()
		return nil, err
	}
	l.loadEpochs()
	return l, nil
}

func fileSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

func (l *Log) closeSegs() {
	for _, s := range l.segs {
		s.unref()
	}
	l.segs = nil
}

// recoverSegment loads a segment's indexes, or rebuilds them by scanning and
// truncates a torn tail, reporting whether it did.
func (l *Log) recoverSegment(s *Segment, clean, last bool) (truncated bool, err error) {
	cfg := l.cfg.Load()
	size := fileSize(s.f)
	// Sealed segments got their index files only after an fsync, so those
	// are trusted even after a crash; the active one only after a clean stop.
	if !last || clean {
		err := s.loadIndexes(size)
		if err == nil {
			s.size.Store(size)
			s.reserved = size
			s.sealed = !last
			s.indexed.Store(!last)
			return false, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			l.logger.Info("rebuilding indexes", "segment", s.path, "reason", err)
		}
	}
	valid, err := s.recoverScan(cfg.IndexIntervalBytes, !last)
	if err != nil {
		return false, err
	}
	s.trimPrealloc(valid)
	s.reserved = valid
	s.size.Store(valid)
	if valid < size {
		l.logger.Warn("truncating torn segment tail", "segment", s.path, "valid", valid, "size", size)
		if err := s.f.Truncate(valid); err != nil {
			return false, fmt.Errorf("cannot truncate %s: %w", s.path, err)
		}
		if err := s.f.Sync(); err != nil {
			return false, fmt.Errorf("cannot sync %s: %w", s.path, err)
		}
		return true, nil
	}
	// What a killed process wrote may still be only in the page cache: make
	// it durable before it is served, and before indexes describe it.
	if err := s.f.Sync(); err != nil {
		return false, fmt.Errorf("cannot sync %s: %w", s.path, err)
	}
	if !last {
		// Persist the rebuilt indexes so the next crash need not scan.
		if err := s.writeIndexes(s.offIdx, s.timeIdx); err != nil {
			l.logger.Warn("cannot write rebuilt indexes", "err", err)
		}
		s.sealed = true
	}
	return false, nil
}

// loadProducers restores producer state from the newest usable snapshot and
// replays the batch headers after it.
func (l *Log) loadProducers() error {
	from := l.segs[0].base
	for _, off := range listSnapshots(l.dir) {
		p := snapshotPath(l.dir, off)
		if off > l.next || off < l.segs[0].base {
			os.Remove(p)
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		ps, err := unmarshalProducerState(data)
		if err != nil {
			l.logger.Warn("ignoring producer snapshot", "file", p, "err", err)
			continue
		}
		l.producers, from = ps, off
	}
	var hb [BatchHeaderSize]byte
	nowMs := time.Now().UnixMilli()
	for _, s := range l.segs {
		if s.lastOffset < from {
			continue
		}
		pos := int64(0)
		if from > s.base {
			pos = int64(s.offIdx.lookup(uint32(from - s.base)))
		}
		for size := s.size.Load(); pos < size; {
			h, err := s.readHeader(pos, &hb)
			if err != nil {
				return fmt.Errorf("cannot replay producer state from %s: %w", s.path, err)
			}
			if h.BaseOffset >= from && h.HasProducer() {
				// Replayed batches were appended since the snapshot; count
				// their producers as seen now.
				l.producers.update(&h, nowMs)
			}
			pos += h.Size()
		}
	}
	return nil
}

// enforceRetention deletes whole segments that are past retention.ms or
// beyond retention.bytes. The active segment is rolled first when it alone
// is expired. It returns the number of segments deleted.
func (l *Log) enforceRetention(now time.Time) int {
	cfg := l.cfg.Load()
	if !cfg.Delete {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.failure() != nil {
		return 0
	}
	nowMs := now.UnixMilli()
	var total int64
	for _, s := range l.segs {
		total += s.reserved
	}
	n := 0
	for i, s := range l.segs {
		isActive := i == len(l.segs)-1
		if s.reserved == 0 {
			break
		}
		expired := cfg.RetentionMs >= 0 && s.maxTs >= 0 && nowMs-s.maxTs > cfg.RetentionMs
		oversize := cfg.RetentionBytes >= 0 && total-s.reserved >= cfg.RetentionBytes
		if !expired && !oversize {
			break
		}
		if isActive {
			if !expired || s.size.Load() != s.reserved {
				break // only roll a fully written, wholly expired segment
			}
			if _, err := l.rollLocked(); err != nil {
				break
			}
			// The new, empty segment now carries the log's start and end
			// offsets: its name must be durable before the files that
			// held them go, or a power loss could restart the log at 0.
			if err := syncDir(l.dir); err != nil {
				l.logger.Warn("cannot sync log dir", "err", err)
			}
		}
		total -= s.reserved
		n++
	}
	if n == 0 {
		return 0
	}
	for _, s := range l.segs[:n] {
		s.deleted.Store(true)
		s.removeFiles()
		s.unref()
	}
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.start.Store(max(l.start.Load(), l.segs[0].base))
	l.logger.Info("retention deleted segments", "count", n, "log_start_offset", l.start.Load())
	return n
}
