package segment

import (
	"encoding/binary"
	"fmt"

	"samsa/segment/compress"
)

// BatchRecords returns the record bytes of a validated batch (everything
// after the header), inflated into dst when the batch is compressed.
// Compressed batches are checked as ValidateBatch checks uncompressed ones:
// records parse, offset deltas run 0, 1, ... and match the count. The
// result aliases batch when the batch is uncompressed.
func BatchRecords(dst, batch []byte, h *BatchHeader, maxSize int) ([]byte, error) {
	body := batch[BatchHeaderSize:]
	c := h.Compression()
	if c == 0 {
		return body, nil
	}
	out, err := compress.Decompress(compress.Codec(c), dst[:0], body, maxSize)
	if err != nil {
		return dst, fmt.Errorf("cannot decompress %s batch: %v: %w", compress.Codec(c), err, ErrCorruptBatch)
	}
	if err := checkRecords(out, h.NumRecords); err != nil {
		return dst, err
	}
	return out, nil
}

// Recompress appends to dst the batch re-encoded with codec c: same header
// fields (producer, sequence, timestamps, offsets), records inflated and
// compressed again, length, attributes and CRC rewritten. h is updated to
// describe the new batch. scratch is a buffer for the inflated records,
// returned for reuse.
func Recompress(dst, scratch, batch []byte, h *BatchHeader, c compress.Codec, maxSize int) (out, scratchOut []byte, err error) {
	body, err := BatchRecords(scratch, batch, h, maxSize)
	if err != nil {
		return dst, scratch, err
	}
	if h.Compression() != 0 {
		scratch = body
	}
	start := len(dst)
	dst = append(dst, batch[:BatchHeaderSize]...)
	if dst, err = compress.Compress(c, dst, body); err != nil {
		return dst[:start], scratch, fmt.Errorf("cannot compress batch with %s: %w", c, err)
	}
	nb := dst[start:]
	if int64(len(nb))-batchLengthOverhead > 0x7fffffff {
		return dst[:start], scratch, fmt.Errorf("cannot recompress batch: %d bytes: %w", len(nb), ErrBatchTooLarge)
	}
	attrs := uint16(h.Attributes)&^AttrCompressionMask | uint16(c)
	binary.BigEndian.PutUint32(nb[8:], uint32(len(nb)-batchLengthOverhead))
	binary.BigEndian.PutUint16(nb[21:], attrs)
	crc := BatchCRC(nb)
	binary.BigEndian.PutUint32(nb[17:], crc)
	h.Length = int32(len(nb) - batchLengthOverhead)
	h.Attributes = int16(attrs)
	h.CRC = crc
	return dst, scratch, nil
}
