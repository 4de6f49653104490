package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OpenLog opens (or creates) the partition log in dir. clean says whether
// the last shutdown was clean; otherwise the tail is verified batch by batch
// and truncated at the first invalid one.
func OpenLog(dir string, disk *Disk, cfg Config, clean bool, logger *slog.Logger) (*Log, error) {
	l := &Log{dir: dir, disk: disk, logger: logger.With("subsystem", "log", "dir", filepath.Base(dir)), producers: producerState{}}
	l.cfg.Store(&cfg)
	l.firstUnstable.Store(-1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create log dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list log dir: %w", err)
	}
	var bases []int64
	txnFiles := map[int64]bool{}
	names := make(map[string]bool, len(ents))
	for _, e := range ents {
		names[e.Name()] = true
		if b, ok := strings.CutSuffix(e.Name(), ".txnindex"); ok {
			if off, ok := ParseOffsetName(b); ok {
				txnFiles[off] = true
			}
		}
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
			for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
				os.Remove(segmentPath(dir, b) + ext)
			}
		}
	}
	// rescanned: a sealed segment's indexes were rebuilt by a scan, so its
	// transaction index must be too, from producer state as of its start.
	rescanned, activeScanned := false, false
	for i, base := range bases {
		// A segment starting inside the previous one was merged into it
		// by compaction, which crashed before removing it.
		if n := len(l.segs); n > 0 && base <= l.segs[n-1].lastOffset && l.segs[n-1].base < base {
			l.logger.Info("removing segment left over from compaction", "segment", segmentPath(dir, base))
			for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
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
		f, err := openSegmentFile(p + ".log")
		if err != nil {
			l.closeSegs()
			return nil, fmt.Errorf("cannot open segment: %w", err)
		}
		s := newSegment(base, p, f)
		last := i == len(bases)-1
		truncated, scanned, err := l.recoverSegment(s, clean, last)
		activeScanned = scanned && last
		if err != nil {
			s.unref()
			l.closeSegs()
			return nil, err
		}
		s.txnOnDisk.Store(txnFiles[base])
		if txnFiles[base] && (!scanned || last) {
			if err := s.loadTxnIndex(); err != nil {
				l.logger.Warn("rebuilding transaction index", "segment", s.path, "reason", err)
				scanned = true
			}
		}
		rescanned = rescanned || (scanned && !last)
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
	active.trimPrealloc(active.size.Load(), minPrealloc)
	// The active segment's index files, if a clean stop left them, stay
	// until it rolls (Segment.idxFiles): a crash before then scans it as
	// the last segment, whatever they say.
	base := filepath.Base(active.path)
	idxOnDisk := names[base+".index"] && names[base+".timeindex"]
	active.idxFiles = names[base+".index"] || names[base+".timeindex"]
	if active.size.Load() >= activeIndexBytes {
		l.changed = activeScanned || !idxOnDisk
	} else {
		l.changed = !clean || active.idxFiles // files to write, or to remove
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
	if names[startCheckpoint] {
		l.loadStart()
	}
	snaps := snapshotsIn(names)
	if rescanned {
		// Replay from the log start: no snapshot is kept from before the
		// rescanned segment.
		for _, s := range l.segs {
			s.txnIdx = nil
		}
		for _, off := range snaps {
			os.Remove(snapshotPath(l.dir, off))
		}
		snaps = nil
	}
	l.hasSnapshot.Store(len(snaps) > 0)
	from, err := l.loadProducers(snaps)
	if err != nil {
		l.closeSegs()
		return nil, err
	}
	if from != l.next && l.snapshotUsefulLocked() {
		l.changed = true // no snapshot at the end: a clean close writes one
	}
	for _, s := range l.segs {
		if len(s.txnIdx) > 0 {
			l.hasAborts.Store(true)
		}
	}
	// Sealed segments rebuilt by a scan get their indexes now that the
	// replay has rebuilt their transaction indexes, which go first.
	for _, s := range l.segs[:len(l.segs)-1] {
		if !s.indexed.Load() {
			if err := s.writeIndexes(s.offIdx, s.timeIdx, s.txnIdx); err != nil {
				l.logger.Warn("cannot write rebuilt indexes", "err", err)
			}
		}
	}
	l.loadEpochs(names[epochCheckpoint])
	return l, nil
}

// openSegmentFile opens a segment for reading and appending. Not with
// os.OpenFile, which tries (and fails) to register a regular file with the
// poller: two system calls of the dozen an open of a partition makes.
func openSegmentFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
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

// recoverSegment loads a segment's indexes, or rebuilds them by scanning
// (scanned) and truncates a torn tail, reporting whether it did.
func (l *Log) recoverSegment(s *Segment, clean, last bool) (truncated, scanned bool, err error) {
	cfg := l.cfg.Load()
	f, err := s.acquire()
	if err != nil {
		return false, false, err
	}
	defer s.release()
	size := fileSize(f)
	// Sealed segments got their index files only after an fsync, so those
	// are trusted even after a crash; the active one only after a clean
	// stop, and only when it is not so small that scanning it is cheaper
	// than reading them (a clean stop writes none for it then).
	if !last || (clean && size >= activeIndexBytes) {
		err := s.loadIndexes(size)
		if err == nil {
			s.size.Store(size)
			s.reserved = size
			s.sealed = !last
			s.indexed.Store(!last)
			return false, false, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			l.logger.Info("rebuilding indexes", "segment", s.path, "reason", err)
		}
	}
	valid, err := s.recoverScan(cfg.IndexIntervalBytes, !last)
	if err != nil {
		return false, true, err
	}
	s.trimPrealloc(valid, minPrealloc)
	s.reserved = valid
	s.size.Store(valid)
	if valid < size {
		l.logger.Warn("truncating torn segment tail", "segment", s.path, "valid", valid, "size", size)
		if err := f.Truncate(valid); err != nil {
			return false, true, fmt.Errorf("cannot truncate %s: %w", s.path, err)
		}
		if err := f.Sync(); err != nil {
			return false, true, fmt.Errorf("cannot sync %s: %w", s.path, err)
		}
		return true, true, nil
	}
	// What a killed process wrote may still be only in the page cache: make
	// it durable before it is served, and before indexes describe it. For
	// the last segment at start-up, one syncfs does it for every log
	// (Store.MarkOpen) before anything is served; its indexes are written
	// at its seal or a clean stop, after that.
	if !last || !l.disk.starting.Load() {
		if err := f.Sync(); err != nil {
			return false, true, fmt.Errorf("cannot sync %s: %w", s.path, err)
		}
	}
	if !last {
		// The offset and time indexes are persisted once the replay has
		// rebuilt the transaction index (loadProducers), which goes first.
		s.sealed = true
	}
	return false, true, nil
}

// loadProducers restores producer state from the newest usable of the
// snapshots at offsets snaps (ascending) and replays the batch headers
// after it. It returns the snapshot's offset (the log start when there was
// none).
func (l *Log) loadProducers(snaps []int64) (int64, error) {
	from := l.segs[0].base
	for _, off := range snaps {
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
	l.rebuildOngoingLocked()
	var hb [BatchHeaderSize]byte
	var control []byte
	nowMs := time.Now().UnixMilli()
	expiry := l.cfg.Load().ProducerExpirationMs
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
				return from, fmt.Errorf("cannot replay producer state from %s: %w", s.path, err)
			}
			if h.BaseOffset >= from && h.HasProducer() {
				// Replayed batches were appended since the snapshot. A
				// producer was last seen at its batch's max timestamp, as
				// Kafka's replay (ProducerAppendInfo): DescribeProducers
				// and find-hanging show its age, not the restart's. Unlike
				// Kafka, a timestamp in the future or older than
				// producer.id.expiration.ms counts as now: a client
				// writing old CreateTimes keeps its dedupe state across
				// a crash. Markers are read whole.
				seen := nowMs
				if h.MaxTimestamp < nowMs && h.MaxTimestamp > nowMs-expiry {
					seen = h.MaxTimestamp
				}
				batch := hb[:]
				if h.IsControl() && h.Size() <= 4096 {
					control = append(control[:0], make([]byte, h.Size())...)
					if _, err := s.readAt(control, pos); err == nil {
						batch = control
					}
				}
				l.applyProducerLocked(s, batch, &h, seen)
			}
			pos += h.Size()
		}
	}
	return from, nil
}
