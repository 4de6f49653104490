package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Segment is one file of a partition's log, named after its base offset.
//
// Fields marked (Log.mu) are guarded by the owning Log's mutex; size is
// published by the disk writer once bytes are in the file.
type Segment struct {
	base int64
	path string // without extension

	// The file, opened on demand and closed while idle (files.go): used
	// between acquire and release, never directly.
	fp    atomic.Pointer[os.File]
	fmu   sync.Mutex   // opens and closes fp
	users atomic.Int32 // acquires not yet released
	// unsynced: written and not yet fsynced (set and cleared under
	// Disk.syncMu). Such a file is never closed while idle, so that its
	// fsync, and any error it reports, is on the descriptor that wrote.
	unsynced atomic.Bool
	used     atomic.Bool // acquired since the clock's hand last passed
	ringAt   int         // (files.mu) its place in files.ring, -1 if closed
	pinned   bool        // (fmu) not closed while idle: not yet under its name
	gone     bool        // (fmu) its name may lead to another file: never reopened

	size atomic.Int64 // bytes written to the file and visible to readers

	reserved      int64                 // (Log.mu) bytes assigned to appends
	offIdx        offsetIndex           // (Log.mu)
	timeIdx       timeIndex             // (Log.mu)
	sinceIndex    int64                 // (Log.mu) bytes since the last index entry
	maxTs         int64                 // (Log.mu) largest batch max timestamp, -1 if none
	maxTsOffset   int64                 // (Log.mu) base offset of the batch holding maxTs
	txnIdx        txnIndex              // (Log.mu) aborted transactions whose markers it holds (txn.go)
	txnOnDisk     atomic.Bool           // a .txnindex file may exist
	lastOffset    int64                 // (Log.mu) last offset assigned, base-1 if empty
	firstAppendAt time.Time             // (Log.mu) wall time of the first append, for segment.ms
	sealed        bool                  // (Log.mu) no more appends; indexes written on sync
	needDirSync   atomic.Bool           // the directory entry is not yet durable
	syncErr       atomic.Pointer[error] // an fdatasync of it failed (Segment.failSync)
	// idxFiles: the active segment's .index and .timeindex files, kept
	// from a clean stop, may exist and describe only a prefix of it once
	// it takes appends. Harmless while it is the last segment (after a
	// crash the last one is always scanned); rollLocked removes them,
	// durably, before a segment follows it.
	idxFiles bool         // (Log.mu)
	prealloc atomic.Int64 // blocks are allocated up to here (prealloc.go)

	indexed atomic.Bool // sealed, and its data and index files are durable

	refs    atomic.Int32 // readers holding the file open, plus one for the log
	deleted atomic.Bool
}

func segmentPath(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", base))
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

// createSegment makes a new empty segment file.
func createSegment(dir string, base int64) (*Segment, error) {
	p := segmentPath(dir, base)
	f, err := os.OpenFile(p+".log", os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create segment: %w", err)
	}
	s := newSegment(base, p, f)
	s.needDirSync.Store(true)
	return s, nil
}

func newSegment(base int64, path string, f *os.File) *Segment {
	return newSegmentFile(base, path, f, false)
}

// newSegmentFile makes a segment of an open file; a pinned one's file is
// never closed while idle (the segment is not yet under its name).
func newSegmentFile(base int64, path string, f *os.File, pinned bool) *Segment {
	s := &Segment{base: base, path: path, maxTs: -1, maxTsOffset: -1, lastOffset: base - 1, ringAt: -1, pinned: pinned}
	s.refs.Store(1)
	s.fp.Store(f)
	files.add(s)
	files.trim()
	return s
}

// Base is the segment's first offset.
func (s *Segment) Base() int64 { return s.base }

// Size is the number of bytes visible to readers.
func (s *Segment) Size() int64 { return s.size.Load() }

func (s *Segment) ref() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Segment) unref() {
	if s.refs.Add(-1) == 0 {
		s.closeFile()
	}
}

// drop is the log letting go of a segment it deletes (Log.mu held): the
// files go now, and the file closes when the last reader lets go of it.
// (Not by name then: a new segment may have the same base by that time.)
func (s *Segment) drop() {
	s.retire()
	s.deleted.Store(true)
	s.removeFiles()
	s.unref()
}

func (s *Segment) removeFiles() {
	for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex", ".log.deleted"} {
		os.Remove(s.path + ext)
	}
}

// indexBatchLocked records a batch in the sparse indexes when due.
// Log.mu should be held.
func (s *Segment) indexBatchLocked(h *BatchHeader, pos int64, interval int64) {
	rel := uint32(h.BaseOffset - s.base)
	if len(s.offIdx) == 0 || s.sinceIndex >= interval {
		s.offIdx = append(s.offIdx, offsetEntry{rel: rel, pos: uint32(pos)})
		// A time entry (ts, rel) says every batch before rel has a max
		// timestamp <= ts, so a search for ts' > ts may start at rel.
		if n := len(s.timeIdx); s.maxTs >= 0 && (n == 0 || s.timeIdx[n-1].ts < s.maxTs) {
			s.timeIdx = append(s.timeIdx, timeEntry{ts: s.maxTs, rel: rel})
		}
		s.sinceIndex = 0
	}
	s.sinceIndex += h.Size()
	if h.MaxTimestamp > s.maxTs {
		s.maxTs = h.MaxTimestamp
		s.maxTsOffset = h.BaseOffset
	}
	s.lastOffset = h.LastOffset()
}

// writeIndexes persists the indexes of a sealed segment. Called by the disk
// syncer after the segment's data is fsynced, so an index on disk always
// describes durable data. The transaction index goes first: an offset index
// on disk says the segment's .txnindex (or its absence) is complete.
func (s *Segment) writeIndexes(off offsetIndex, ts timeIndex, txn txnIndex) error {
	return s.writeIndexFiles(off, ts, txn, true)
}

// writeIndexesNoSync is writeIndexes for a clean stop, which makes them
// durable with one syncfs (Store.Close).
func (s *Segment) writeIndexesNoSync(off offsetIndex, ts timeIndex, txn txnIndex) error {
	return s.writeIndexFiles(off, ts, txn, false)
}

func (s *Segment) writeIndexFiles(off offsetIndex, ts timeIndex, txn txnIndex, sync bool) error {
	// The aborted transactions are fsynced even at a clean stop (there are
	// rarely any): after a power loss before its syncfs, a replay adds only
	// those past the newest snapshot, so a lost .txnindex would lose the
	// ones before it.
	if err := s.writeTxnIndex(txn); err != nil {
		return err
	}
	write := writeFileSync
	if !sync {
		write = writeInPlace
	}
	if err := write(s.path+".index", off.marshal(nil)); err != nil {
		return err
	}
	if err := write(s.path+".timeindex", ts.marshal(nil)); err != nil {
		return err
	}
	s.indexed.Store(true)
	return nil
}

// readHeader reads the batch header at pos.
func (s *Segment) readHeader(pos int64, buf *[BatchHeaderSize]byte) (BatchHeader, error) {
	f, err := s.acquire()
	if err != nil {
		return BatchHeader{}, err
	}
	defer s.release()
	return readHeaderAt(f, pos, buf)
}

// readHeaderAt reads the batch header at pos of f.
func readHeaderAt(f *os.File, pos int64, buf *[BatchHeaderSize]byte) (BatchHeader, error) {
	n, err := f.ReadAt(buf[:], pos)
	if n < BatchHeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return BatchHeader{}, err
	}
	return ParseBatchHeader(buf[:])
}

// recoverScan reads the segment from the start, verifies each batch's
// framing, CRC and offsets, rebuilds the indexes and returns the size of the
// valid prefix. Each batch must start where the previous one ended, the
// first at the segment's base: that also catches damage to the base offset,
// which the CRC does not cover. With gaps, as compaction leaves in the
// sealed segments it rewrites, offsets must only increase. (The active
// segment, where torn writes happen, is never compacted.)
func (s *Segment) recoverScan(interval int64, gaps bool) (valid int64, err error) {
	f, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.release()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("cannot stat segment: %w", err)
	}
	fileSize := st.Size()
	s.offIdx, s.timeIdx, s.sinceIndex = nil, nil, 0
	s.maxTs, s.maxTsOffset, s.lastOffset = -1, -1, s.base-1
	var buf []byte
	pos := int64(0)
	next := s.base
	for pos+BatchHeaderSize <= fileSize {
		var hb [BatchHeaderSize]byte
		h, err := readHeaderAt(f, pos, &hb)
		if err != nil {
			break
		}
		if h.Size() > fileSize-pos || h.BaseOffset < next || (!gaps && h.BaseOffset != next) || h.LastOffsetDelta < 0 {
			break
		}
		if int64(cap(buf)) < h.Size() {
			buf = make([]byte, h.Size())
		}
		b := buf[:h.Size()]
		if _, err := f.ReadAt(b, pos); err != nil {
			break
		}
		if BatchCRC(b) != h.CRC {
			break
		}
		s.indexBatchLocked(&h, pos, interval)
		next = h.LastOffset() + 1
		pos += h.Size()
	}
	return pos, nil
}

// loadIndexes reads the segment's index files, written when it was sealed,
// and checks them against the log file's size. It also recovers the segment's
// last offset and max timestamp from the last batches.
func (s *Segment) loadIndexes(logSize int64) error {
	ob, err := os.ReadFile(s.path + ".index")
	if err != nil {
		return fmt.Errorf("cannot read offset index: %w", err)
	}
	tb, err := os.ReadFile(s.path + ".timeindex")
	if err != nil {
		return fmt.Errorf("cannot read time index: %w", err)
	}
	off, err := unmarshalOffsetIndex(ob, logSize)
	if err != nil {
		return err
	}
	ts, err := unmarshalTimeIndex(tb)
	if err != nil {
		return err
	}
	if logSize > 0 && len(off) == 0 {
		return fmt.Errorf("cannot load offset index: empty for a non-empty segment")
	}
	// Walk the batch headers to recover the last offset and the offset of
	// the max timestamp, which the indexes do not hold, and to check every
	// index entry against the batches: a stale or damaged index would send
	// reads to the middle of a batch or make time lookups skip records.
	pos := int64(0)
	s.maxTs, s.maxTsOffset, s.lastOffset = -1, -1, s.base-1
	oi, ti := 0, 0
	var hb [BatchHeaderSize]byte
	for pos < logSize {
		h, err := s.readHeader(pos, &hb)
		if err != nil {
			return fmt.Errorf("cannot read batch at %d: %w", pos, err)
		}
		if pos+h.Size() > logSize {
			return fmt.Errorf("cannot load segment: batch at %d overruns the file", pos)
		}
		if h.BaseOffset <= s.lastOffset || h.LastOffsetDelta < 0 {
			return fmt.Errorf("cannot load segment: batch at %d has offsets %d..%d after %d", pos, h.BaseOffset, h.LastOffset(), s.lastOffset)
		}
		rel := h.BaseOffset - s.base
		if oi < len(off) && int64(off[oi].pos) < pos {
			return fmt.Errorf("cannot load offset index: position %d is inside a batch", off[oi].pos)
		}
		if oi < len(off) && int64(off[oi].pos) == pos {
			if int64(off[oi].rel) != rel {
				return fmt.Errorf("cannot load offset index: entry for position %d says offset %d, batch has %d", pos, off[oi].rel, rel)
			}
			oi++
		}
		if ti < len(ts) && int64(ts[ti].rel) < rel {
			return fmt.Errorf("cannot load time index: offset %d is inside a batch", ts[ti].rel)
		}
		for ti < len(ts) && int64(ts[ti].rel) == rel {
			if ts[ti].ts < s.maxTs {
				return fmt.Errorf("cannot load time index: entry (%d, %d) below earlier timestamp %d", ts[ti].ts, ts[ti].rel, s.maxTs)
			}
			ti++
		}
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.BaseOffset
		}
		s.lastOffset = h.LastOffset()
		pos += h.Size()
	}
	if pos != logSize {
		return fmt.Errorf("cannot load segment: batches end at %d, file at %d", pos, logSize)
	}
	if oi != len(off) || ti != len(ts) {
		return fmt.Errorf("cannot load indexes: entries past the last batch")
	}
	s.offIdx, s.timeIdx = off, ts
	s.sinceIndex = 0
	return nil
}
