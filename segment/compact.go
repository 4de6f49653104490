package segment

// Log compaction (cleanup.policy=compact), as Kafka's log cleaner does it:
// keep the latest record of each key, drop tombstones (null values) once
// delete.retention.ms has passed, never change an offset.
//
// One pass over a log:
//  1. The cleanable range is the sealed segments whose indexes are durable
//     (never the active one), up to the first that is younger than
//     min.compaction.lag.ms. A pass runs when the share of bytes not yet
//     cleaned reaches min.cleanable.dirty.ratio, or when a kept tombstone
//     has become removable.
//  2. A map from key to its latest offset is built over that range (bounded
//     by CleanerMapBytes; the range ends where the map filled up).
//  3. Consecutive segments are rewritten together into one cleaned file
//     while their sizes add up to at most segment.bytes: each batch keeps
//     the records that are the latest for their key (compressed batches are
//     inflated, filtered and compressed again with their codec); a batch
//     left empty is dropped, except the last of a group, kept with no
//     records so the group still ends at the same offset (segments follow
//     each other without gaps, which recovery relies on).
//  4. The cleaned file and its indexes are written and fsynced beside the
//     old ones (*.cleaned), then swapped in under the log lock: old index
//     files removed, the log file renamed over the first segment's, the
//     indexes renamed, the directory fsynced. Readers holding the old files
//     keep reading them until they let go. A crash at any point leaves
//     either the old segments (stray *.cleaned files are removed on open),
//     or the cleaned one without indexes (rebuilt by a scan), plus old
//     segments it covers (removed on open: they start inside it).
//
// Transactions: a pass never goes past the first offset of an open
// transaction, so every transaction in the range is decided; records of
// aborted transactions are removed whatever their keys (and never shadow
// an older record of their key), and each cleaned segment keeps the
// aborted-transaction index entries of the segments it replaces. A marker
// stays while any batch of its transaction does (as Kafka's cleaner: a
// commit marker whose records remain tells a replay of the log, and the
// group coordinator's, that they were committed), and for
// delete.retention.ms after it was written, as tombstones do (consumers
// part-way through a transaction still see how it ended); then it goes
// with its index entry. Every pass starts at the log start, so it sees
// each transaction's batches before its marker.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"samsa/segment/compress"
)

// CleanerMapBytes bounds the key map of one compaction pass (Kafka's
// log.cleaner.dedupe.buffer.size); a pass covers as many segments as fit.
var CleanerMapBytes = 128 << 20

const cleanedSuffix = ".cleaned"

var errCompactionStopped = errors.New("compaction stopped for shutdown")

// CompactStats describes one compaction pass.
type CompactStats struct {
	Segments      int   // segments read
	BytesBefore   int64 // their size
	BytesAfter    int64 // the size of the cleaned segments
	RecordsKept   int64
	RecordsPruned int64 // superseded records and expired tombstones
}

// Compact runs one compaction pass if the log's configuration asks for
// compaction and enough of it is dirty (or a kept tombstone has expired).
// It runs beside appends and reads; one pass per log at a time.
func (l *Log) Compact(now time.Time) (CompactStats, error) {
	var st CompactStats
	cfg := l.cfg.Load()
	if !cfg.Compact {
		return st, nil
	}
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()

	l.mu.RLock()
	if l.closed || l.failure() != nil {
		l.mu.RUnlock()
		return st, nil
	}
	var segs []*Segment
	var total, dirty int64
	lagLimit := now.UnixMilli() - cfg.MinCompactionLagMs
	fu := l.firstUnstable.Load()
	for _, s := range l.segs[:len(l.segs)-1] {
		if !s.indexed.Load() || (cfg.MinCompactionLagMs > 0 && s.maxTs > lagLimit) || (fu >= 0 && s.lastOffset >= fu) || !s.ref() {
			break
		}
		segs = append(segs, s)
		total += s.reserved
		if s.lastOffset >= l.cleanedTo {
			dirty += s.reserved
		}
	}
	var aborted abortedRanges
	if l.hasAborts.Load() {
		aborted = abortedRanges{}
		for _, s := range l.segs {
			for _, e := range s.txnIdx {
				aborted[e.ProducerID] = append(aborted[e.ProducerID], e)
			}
		}
	}
	l.mu.RUnlock()
	defer func() {
		for _, s := range segs {
			s.unref()
		}
	}()
	if len(segs) == 0 || total == 0 {
		return st, nil
	}
	tombstonesDue := l.tombstonesAt.Load() != 0 && now.UnixMilli() >= l.tombstonesAt.Load()
	if !(dirty > 0 && float64(dirty)/float64(total) >= cfg.MinCleanableRatio) && !tombstonesDue {
		return st, nil
	}

	keys, n, err := buildKeyMap(segs, aborted, &l.cleanStop)
	if errors.Is(err, errCompactionStopped) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	segs, rest := segs[:n], segs[n:]
	for _, s := range rest {
		s.unref()
	}
	var tombstonesAt int64
	live := map[int64]txnSeen{} // producers with transactional batches in this pass since their last marker
	for i := 0; i < len(segs); {
		j := i + 1
		size := segs[i].reserved
		for j < len(segs) && size+segs[j].reserved <= min(cfg.SegmentBytes, 1<<31-1) &&
			segs[j].lastOffset-segs[i].base <= 1<<31-1 {
			size += segs[j].reserved
			j++
		}
		gs, err := l.cleanGroup(segs[i:j], keys, aborted, live, now, cfg, &tombstonesAt)
		st.Segments += gs.Segments
		st.BytesBefore += gs.BytesBefore
		st.BytesAfter += gs.BytesAfter
		st.RecordsKept += gs.RecordsKept
		st.RecordsPruned += gs.RecordsPruned
		if errors.Is(err, errCompactionStopped) {
			return st, nil
		}
		if err != nil {
			return st, err
		}
		i = j
	}
	l.cleanedTo = segs[len(segs)-1].lastOffset + 1
	l.tombstonesAt.Store(tombstonesAt)
	if st.Segments > 0 {
		l.logger.Info("compacted", "segments", st.Segments, "bytes_before", st.BytesBefore, "bytes_after", st.BytesAfter,
			"records_kept", st.RecordsKept, "records_pruned", st.RecordsPruned)
	}
	return st, nil
}

// forEachBatch reads a segment's batches in order. The batch bytes are
// valid until fn returns.
func forEachBatch(s *Segment, fn func(pos int64, h *BatchHeader, batch []byte) error) error {
	size := s.size.Load()
	var buf []byte
	var hb [BatchHeaderSize]byte
	for pos := int64(0); pos < size; {
		h, err := s.readHeader(pos, &hb)
		if err != nil {
			return fmt.Errorf("cannot read batch in %s at %d: %w", s.path, pos, err)
		}
		if pos+h.Size() > size {
			return fmt.Errorf("batch in %s at %d overruns the segment", s.path, pos)
		}
		if int64(cap(buf)) < h.Size() {
			buf = make([]byte, h.Size())
		}
		b := buf[:h.Size()]
		if _, err := s.readAt(b, pos); err != nil {
			return fmt.Errorf("cannot read batch in %s at %d: %w", s.path, pos, err)
		}
		if err := fn(pos, &h, b); err != nil {
			return err
		}
		pos += h.Size()
	}
	return nil
}

// abortedRanges holds the aborted transactions of a log by producer.
type abortedRanges map[int64][]AbortedTxn

// has reports whether h is a batch of an aborted transaction.
func (a abortedRanges) has(h *BatchHeader) bool {
	if !h.IsTransactional() || h.IsControl() {
		return false
	}
	for _, e := range a[h.ProducerID] {
		if e.FirstOffset <= h.BaseOffset && h.BaseOffset < e.LastOffset {
			return true
		}
	}
	return false
}

// buildKeyMap maps each key to its latest offset over segs, aborted
// records aside. It stops at a segment boundary when the map is full,
// returning how many segments it covers (at least one, which may then
// exceed the bound).
func buildKeyMap(segs []*Segment, aborted abortedRanges, stop *atomic.Bool) (map[string]int64, int, error) {
	keys := map[string]int64{}
	var mapBytes int
	var scratch []byte
	for i, s := range segs {
		if i > 0 && mapBytes > CleanerMapBytes {
			return keys, i, nil
		}
		err := forEachBatch(s, func(_ int64, h *BatchHeader, batch []byte) error {
			if stop.Load() {
				return errCompactionStopped
			}
			if h.IsControl() || aborted.has(h) {
				return nil
			}
			records, err := StoredRecords(scratch[:0], batch, h, MaxInflatedBatch)
			if err != nil {
				return err
			}
			if h.Compression() != 0 {
				scratch = records
			}
			return ForEachRecord(records, func(r *Record) bool {
				if r.Key == nil {
					return true
				}
				if _, ok := keys[string(r.Key)]; !ok {
					mapBytes += len(r.Key) + 48
				}
				keys[string(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
				return true
			})
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return keys, len(segs), nil
}

// cleanGroup rewrites the consecutive segments group into one cleaned
// segment and swaps it in.
func (l *Log) cleanGroup(group []*Segment, keys map[string]int64, aborted abortedRanges, live map[int64]txnSeen, now time.Time, cfg *Config, tombstonesAt *int64) (CompactStats, error) {
	var st CompactStats
	first, last := group[0], group[len(group)-1]
	tmp := first.path + ".log" + cleanedSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return st, fmt.Errorf("cannot create cleaned segment: %w", err)
	}
	// Pinned until swapped in: until then its name is first's.
	ns := newSegmentFile(first.base, first.path, f, true)
	ok := false
	defer func() {
		if !ok {
			ns.unref()
			for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
				os.Remove(first.path + ext + cleanedSuffix)
			}
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var pos int64
	var scratch, out []byte
	nowMs := now.UnixMilli()
	var droppedMarkers map[int64]bool
	for gi, s := range group {
		st.Segments++
		st.BytesBefore += s.reserved
		size := s.size.Load()
		err := forEachBatch(s, func(bpos int64, h *BatchHeader, batch []byte) error {
			if l.cleanStop.Load() {
				return errCompactionStopped
			}
			keepEmpty := gi == len(group)-1 && bpos+h.Size() == size
			var kept, pruned int64
			var err error
			// A marker may go only once no batch of its transaction is left.
			seen := live[h.ProducerID]
			keepMarker := keepEmpty || (h.IsControl() && seen != txnNone)
			// A marker past its time kept only for the pass that removed
			// its transaction's last records goes at the next pass, which
			// its deadline (already due) brings; one kept for records
			// still there, or as the group's last batch, goes when dirty
			// data brings a pass: no deadline, or every pass would find
			// one due and rewrite the range unchanged.
			retry := h.IsControl() && seen == txnRemoved && !keepEmpty
			out, kept, pruned, err = filterBatch(out[:0], &scratch, batch, h, keys, aborted.has(h), nowMs, cfg.DeleteRetentionMs, keepMarker, retry, tombstonesAt)
			if err != nil {
				return err
			}
			// A marker stays through the pass that removes its records,
			// kept or not, as Kafka's cleaner ("retain the marker until
			// all batches from the transaction have been removed"): a
			// read_committed fetch that read the aborted records just
			// before this pass must still find the abort (its index
			// entry goes with the marker).
			switch {
			case h.IsControl():
				delete(live, h.ProducerID)
			case h.IsTransactional() && len(out) > 0:
				live[h.ProducerID] = txnKept
			case h.IsTransactional() && seen == txnNone:
				live[h.ProducerID] = txnRemoved
			}
			st.RecordsKept += kept
			st.RecordsPruned += pruned
			if len(out) == 0 {
				if h.IsControl() {
					if droppedMarkers == nil {
						droppedMarkers = map[int64]bool{}
					}
					droppedMarkers[h.BaseOffset] = true
				}
				return nil
			}
			nh, err := ParseBatchHeader(out)
			if err != nil {
				return fmt.Errorf("BUG: cleaned batch does not parse: %w", err)
			}
			if _, err := w.Write(out); err != nil {
				return fmt.Errorf("cannot write cleaned segment: %w", err)
			}
			ns.indexBatchLocked(&nh, pos, cfg.IndexIntervalBytes)
			pos += int64(len(out))
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	if err := w.Flush(); err != nil {
		return st, fmt.Errorf("cannot write cleaned segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return st, fmt.Errorf("cannot sync cleaned segment: %w", err)
	}
	if ns.lastOffset != last.lastOffset {
		return st, fmt.Errorf("BUG: cleaned segment ends at %d, its segments at %d", ns.lastOffset, last.lastOffset)
	}
	if err := writeFileSync(first.path+".index"+cleanedSuffix, ns.offIdx.marshal(nil)); err != nil {
		return st, err
	}
	if err := writeFileSync(first.path+".timeindex"+cleanedSuffix, ns.timeIdx.marshal(nil)); err != nil {
		return st, err
	}
	// Markers stay, so do the index entries of the aborts they close.
	l.mu.RLock()
	for _, s := range group {
		for _, e := range s.txnIdx {
			if !droppedMarkers[e.LastOffset] {
				ns.txnIdx = append(ns.txnIdx, e)
			}
		}
	}
	l.mu.RUnlock()
	if len(ns.txnIdx) > 0 {
		if err := writeFileSync(first.path+".txnindex"+cleanedSuffix, ns.txnIdx.marshal(nil)); err != nil {
			return st, err
		}
	}
	ns.size.Store(pos)
	ns.reserved = pos
	ns.sealed = true
	st.BytesAfter = pos

	l.mu.Lock()
	defer l.mu.Unlock()
	idx := -1
	for i, s := range l.segs {
		if s == first {
			idx = i
		}
	}
	if l.closed || idx < 0 || idx+len(group) >= len(l.segs) {
		return st, nil // retention or a close got there first
	}
	for i, s := range group {
		if l.segs[idx+i] != s {
			return st, nil
		}
	}
	// Readers holding the old segments keep their files: the names are
	// about to be removed or taken by ns.
	for _, s := range group {
		s.retire()
	}
	if err := l.swapCleaned(first, group[1:], len(ns.txnIdx) > 0); err != nil {
		l.fail(err)
		return st, err
	}
	ok = true
	ns.unpin()
	ns.indexed.Store(true)
	ns.txnOnDisk.Store(len(ns.txnIdx) > 0)
	segs := append([]*Segment{}, l.segs[:idx]...)
	segs = append(segs, ns)
	l.segs = append(segs, l.segs[idx+len(group):]...)
	// The old first segment's name now belongs to ns: close its file only.
	first.unref()
	for _, s := range group[1:] {
		s.deleted.Store(true)
		s.unref()
	}
	return st, nil
}

// swapCleaned puts the cleaned files of first in place. l.mu is held.
func (l *Log) swapCleaned(first *Segment, covered []*Segment, hasTxn bool) error {
	for _, ext := range []string{".index", ".timeindex", ".txnindex"} {
		if err := os.Remove(first.path + ext); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot remove old index: %w", err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	exts := []string{".log", ".index", ".timeindex"}
	if hasTxn {
		// Before the offset index, which vouches for it.
		exts = []string{".log", ".txnindex", ".index", ".timeindex"}
	}
	for _, ext := range exts {
		if err := os.Rename(first.path+ext+cleanedSuffix, first.path+ext); err != nil {
			return fmt.Errorf("cannot swap in cleaned segment: %w", err)
		}
	}
	for _, s := range covered {
		s.removeFiles()
	}
	return syncDir(l.dir)
}

// txnSeen is what a pass saw of a producer's transactional batches since
// its last marker: none, only batches it removed, or some it kept.
type txnSeen uint8

const (
	txnNone txnSeen = iota
	txnRemoved
	txnKept
)

// filterBatch appends to dst what remains of batch after compaction:
// nothing, the batch unchanged, or a rebuilt batch with the kept records.
// A marker kept (keepEmpty) past delete.retention.ms sets a deadline only
// when retry says the next pass removes it.
func filterBatch(dst []byte, scratch *[]byte, batch []byte, h *BatchHeader, keys map[string]int64, aborted bool, nowMs, deleteRetentionMs int64, keepEmpty, retry bool, tombstonesAt *int64) (out []byte, kept, pruned int64, err error) {
	if h.IsControl() {
		if deleteRetentionMs >= 0 {
			expired := nowMs-h.MaxTimestamp > deleteRetentionMs
			if !keepEmpty && expired {
				return dst, 0, 0, nil
			}
			if due := h.MaxTimestamp + deleteRetentionMs; (!expired || retry) && (*tombstonesAt == 0 || due < *tombstonesAt) {
				*tombstonesAt = max(due, 1)
			}
		}
		return append(dst, batch...), 0, 0, nil
	}
	if aborted {
		keys = nil // every record goes: see keepRecord
	}
	records, err := StoredRecords((*scratch)[:0], batch, h, MaxInflatedBatch)
	if err != nil {
		return dst, 0, 0, err
	}
	if h.Compression() != 0 {
		*scratch = records
	}
	tombstoneExpired := deleteRetentionMs >= 0 && nowMs-h.MaxTimestamp > deleteRetentionMs
	// First pass: does anything go?
	var r Record
	body := records
	for len(body) > 0 {
		rec, rest, err := nextRecord(body)
		if err != nil {
			return dst, 0, 0, err
		}
		body = rest
		if err := decodeRecord(rec, &r); err != nil {
			return dst, 0, 0, err
		}
		if keepRecord(&r, h, keys, tombstoneExpired) {
			kept++
			if r.Value == nil && r.Key != nil {
				due := h.MaxTimestamp + deleteRetentionMs
				if *tombstonesAt == 0 || due < *tombstonesAt {
					*tombstonesAt = max(due, 1)
				}
			}
		} else {
			pruned++
		}
	}
	// An empty batch (kept as the last of an earlier pass's group) goes
	// too once it is no longer the last: kept unchanged, every pass would
	// keep it, and with it its transaction's marker.
	if kept == 0 && !keepEmpty {
		return dst, 0, pruned, nil
	}
	if pruned == 0 {
		return append(dst, batch...), kept, 0, nil
	}
	// Rebuild with the kept records, their bytes unchanged (deltas are
	// relative to the base offset and timestamp, which stay).
	var body2 []byte
	for body = records; len(body) > 0; {
		start := body
		rec, rest, _ := nextRecord(body)
		body = rest
		decodeRecord(rec, &r)
		if keepRecord(&r, h, keys, tombstoneExpired) {
			body2 = append(body2, start[:len(start)-len(rest)]...)
		}
	}
	hdr := make([]byte, BatchHeaderSize)
	copy(hdr, batch[:BatchHeaderSize])
	binary.BigEndian.PutUint32(hdr[57:], uint32(kept))
	nh := *h
	nh.NumRecords = int32(kept)
	codec := compress.Codec(h.Compression())
	if kept == 0 {
		codec = 0 // an empty batch needs no codec
	}
	start := len(dst)
	if codec == 0 {
		dst = append(dst, hdr...)
		dst = append(dst, body2...)
		nb := dst[start:]
		attrs := uint16(h.Attributes) &^ AttrCompressionMask
		binary.BigEndian.PutUint16(nb[21:], attrs)
		binary.BigEndian.PutUint32(nb[8:], uint32(len(nb)-batchLengthOverhead))
		binary.BigEndian.PutUint32(nb[17:], BatchCRC(nb))
		return dst, kept, pruned, nil
	}
	dst, err = Recompress(dst, body2, hdr, &nh, codec)
	return dst, kept, pruned, err
}

// keepRecord decides a record's fate; a nil keys map means the batch was
// aborted and nothing of it stays.
func keepRecord(r *Record, h *BatchHeader, keys map[string]int64, tombstoneExpired bool) bool {
	if keys == nil {
		return false
	}
	if r.Key == nil {
		return true
	}
	if latest, ok := keys[string(r.Key)]; ok && latest > h.BaseOffset+int64(r.OffsetDelta) {
		return false
	}
	return r.Value != nil || !tombstoneExpired
}
