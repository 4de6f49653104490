package segment

import (
	"fmt"

	"samsa/segment/compress"
)

// MaxInflatedBatch bounds what the broker inflates one batch to (a scan by
// timestamp, a produce-time check or re-encode).
const MaxInflatedBatch = 256 << 20

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
	if _, err := seg.f.ReadAt(buf, pos); err != nil {
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
