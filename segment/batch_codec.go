package segment

import (
	"encoding/binary"
	"errors"
	"fmt"

	"samsa/segment/compress"
)

// MaxInflatedBatch bounds what the broker inflates one batch to (a scan by
// timestamp, compaction, a produce-time check or re-encode).
const MaxInflatedBatch = 256 << 20

// BatchRecords returns the record bytes of a validated batch (everything
// after the header), inflated into dst when the batch is compressed.
// Compressed batches are checked as ValidateBatch checks uncompressed ones:
// records parse, offset deltas run 0, 1, ... and match the count, and
// h.MaxTimestamp is set from them (SyncMaxTimestamp writes it). The
// result aliases batch when the batch is uncompressed. A payload that does
// not inflate is ErrInvalidRecord (the producer's bytes, not the log's);
// one inflating past maxSize is ErrBatchTooLarge, which clients answer by
// splitting the batch.
func BatchRecords(dst, batch []byte, h *BatchHeader, maxSize int) ([]byte, error) {
	c := compress.Codec(h.Compression())
	if c == compress.None {
		return batch[BatchHeaderSize:], nil
	}
	out, err := compress.Decompress(c, dst[:0], batch[BatchHeaderSize:], maxSize)
	switch {
	case errors.Is(err, compress.ErrTooLarge):
		return dst, fmt.Errorf("cannot decompress %s batch: its records exceed %d bytes: %w", c, maxSize, ErrBatchTooLarge)
	case err != nil:
		return dst, fmt.Errorf("cannot decompress %s batch: %v: %w", c, err, ErrInvalidRecord)
	}
	maxDelta, err := checkRecords(out, h.NumRecords)
	if err != nil {
		return dst, err
	}
	h.setRecordsMaxTimestamp(maxDelta)
	return out, nil
}

// StoredRecords is BatchRecords for batches read from a log, which
// compaction may have thinned: their records' offset deltas can skip, and
// ForEachRecord checks each record as it decodes it.
func StoredRecords(dst, batch []byte, h *BatchHeader, maxSize int) ([]byte, error) {
	body := batch[BatchHeaderSize:]
	c := h.Compression()
	if c == 0 {
		return body, nil
	}
	out, err := compress.Decompress(compress.Codec(c), dst[:0], body, maxSize)
	if err != nil {
		return dst, fmt.Errorf("cannot decompress %s batch: %v: %w", compress.Codec(c), err, ErrCorruptBatch)
	}
	return out, nil
}

// Recompress appends to dst the batch re-encoded with codec c: same header
// fields (producer, sequence, timestamps, offsets; the max timestamp as h
// has it), its records (inflated by BatchRecords) compressed again,
// length, attributes and CRC rewritten. h is updated to describe the new
// batch.
func Recompress(dst, records, batch []byte, h *BatchHeader, c compress.Codec) ([]byte, error) {
	start := len(dst)
	dst = append(dst, batch[:BatchHeaderSize]...)
	dst, err := compress.Compress(c, dst, records)
	if err != nil {
		return dst[:start], fmt.Errorf("cannot compress batch with %s: %w", c, err)
	}
	nb := dst[start:]
	if int64(len(nb))-batchLengthOverhead > 0x7fffffff {
		return dst[:start], fmt.Errorf("cannot recompress batch: %d bytes: %w", len(nb), ErrBatchTooLarge)
	}
	attrs := uint16(h.Attributes)&^AttrCompressionMask | uint16(c)
	binary.BigEndian.PutUint32(nb[8:], uint32(len(nb)-batchLengthOverhead))
	binary.BigEndian.PutUint16(nb[21:], attrs)
	binary.BigEndian.PutUint64(nb[35:], uint64(h.MaxTimestamp))
	crc := BatchCRC(nb)
	binary.BigEndian.PutUint32(nb[17:], crc)
	h.Length = int32(len(nb) - batchLengthOverhead)
	h.Attributes = int16(attrs)
	h.CRC = crc
	return dst, nil
}
