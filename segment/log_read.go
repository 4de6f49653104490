package segment

import (
	"fmt"
	"os"
	"sort"

	"samsa/segment/compress"
)

// Slice is a run of whole batches in one segment file, held open until
// Release. Its bytes may be sent with sendfile.
type Slice struct {
	seg         *Segment
	f           *os.File // acquired from seg until Release
	Pos, Len    int64
	FirstOffset int64 // base offset of the first batch
	NextOffset  int64 // offset after the last batch
}

// File is the segment file holding the slice.
func (s *Slice) File() *os.File {
	return s.f
}

// Release lets the segment file close once it is deleted.
func (s *Slice) Release() {
	if s.seg != nil {
		s.seg.release()
		s.seg.unref()
		s.seg, s.f = nil, nil
	}
}

// ReadAt copies the slice's bytes into p (len(p) <= Len-off).
func (s *Slice) ReadAt(p []byte, off int64) (int, error) {
	return s.f.ReadAt(p, s.Pos+off)
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
// The slice found holds the segment's file (acquire) until Release.
func scanSegment(seg *Segment, pos, offset, upTo, maxBytes int64, hb *[BatchHeaderSize]byte) (Slice, bool, error) {
	f, err := seg.acquire()
	if err != nil {
		return Slice{}, false, err
	}
	size := seg.size.Load()
	sl := Slice{seg: seg, f: f, Pos: -1}
	for pos < size {
		h, err := readHeaderAt(f, pos, hb)
		if err != nil {
			seg.release()
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
		seg.release()
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
			// A marker counts, as in Kafka's searchForTimestamp: the
			// first offset at or after ts may be a commit or abort.
			if h.MaxTimestamp >= ts && h.LastOffset() >= start {
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

// findRecordTime reads the batch at pos and returns the first record whose
// offset and timestamp satisfy pred. Compressed batches are inflated.
func findRecordTime(seg *Segment, pos int64, h *BatchHeader, pred func(offset, ts int64) bool) (offset, ts int64, found bool, err error) {
	if h.Attributes&AttrLogAppendTime != 0 {
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			if pred(off, h.MaxTimestamp) {
				return off, h.MaxTimestamp, true, nil
			}
		}
		return 0, 0, false, nil
	}
	buf := make([]byte, h.Size())
	if _, err := seg.readAt(buf, pos); err != nil {
		return 0, 0, false, fmt.Errorf("cannot read batch: %w", err)
	}
	body := buf[BatchHeaderSize:]
	if c := h.Compression(); c != 0 {
		body, err = compress.Decompress(compress.Codec(c), nil, body, MaxInflatedBatch)
		if err != nil {
			return 0, 0, false, fmt.Errorf("cannot decompress batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	err = ForEachRecord(body, func(r *Record) bool {
		t := h.FirstTimestamp + r.TimestampDelta
		if pred(h.BaseOffset+int64(r.OffsetDelta), t) {
			offset, ts, found = h.BaseOffset+int64(r.OffsetDelta), t, true
			return false
		}
		return true
	})
	return offset, ts, found, err
}
