// Package segment owns samsa's on-disk log: Kafka record batches stored
// byte-for-byte in segment files with sparse offset and time indexes, the
// per-disk writer that group-commits appends, recovery, retention,
// compaction, leader epochs and idempotent-producer state.
package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Record batch v2 layout (all big-endian):
//
//	baseOffset           int64   0
//	batchLength          int32   8   bytes after this field
//	partitionLeaderEpoch int32  12
//	magic                int8   16
//	crc                  uint32 17   CRC32C of attributes..end
//	attributes           int16  21
//	lastOffsetDelta      int32  23
//	firstTimestamp       int64  27
//	maxTimestamp         int64  35
//	producerId           int64  43
//	producerEpoch        int16  51
//	baseSequence         int32  53
//	recordCount          int32  57
//	records                     61
const (
	BatchHeaderSize = 61
	// batchLengthOverhead is the part of the header not counted by batchLength.
	batchLengthOverhead = 12
	crcStart            = 21
)

// Batch attribute bits.
const (
	AttrCompressionMask = 0x07
	AttrLogAppendTime   = 0x08
	AttrTransactional   = 0x10
	AttrControl         = 0x20
	AttrDeleteHorizon   = 0x40
)

// Errors reported by batch validation. The engine maps them to Kafka codes.
var (
	ErrCorruptBatch  = errors.New("corrupt record batch")
	ErrInvalidRecord = errors.New("invalid record")
	ErrBatchTooLarge = errors.New("record batch too large")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed part of a record batch.
type BatchHeader struct {
	BaseOffset      int64
	Length          int32
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// ParseBatchHeader decodes the header at the start of b. It checks only that
// enough bytes are present and that the magic byte is 2.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < BatchHeaderSize {
		return h, fmt.Errorf("cannot parse batch header: %d bytes: %w", len(b), ErrCorruptBatch)
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[0:]))
	h.Length = int32(binary.BigEndian.Uint32(b[8:]))
	h.LeaderEpoch = int32(binary.BigEndian.Uint32(b[12:]))
	h.Magic = int8(b[16])
	h.CRC = binary.BigEndian.Uint32(b[17:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[21:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[23:]))
	h.FirstTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[43:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[51:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[53:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[57:]))
	if h.Magic != 2 {
		return h, fmt.Errorf("cannot parse batch header: magic %d: %w", h.Magic, ErrCorruptBatch)
	}
	if h.Length < BatchHeaderSize-batchLengthOverhead {
		return h, fmt.Errorf("cannot parse batch header: length %d: %w", h.Length, ErrCorruptBatch)
	}
	return h, nil
}

// Size is the batch's total size in bytes, header included.
func (h *BatchHeader) Size() int64 { return int64(h.Length) + batchLengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression returns the codec bits of the attributes.
func (h *BatchHeader) Compression() int8 { return int8(h.Attributes & AttrCompressionMask) }

// IsTransactional reports whether the batch belongs to a transaction.
func (h *BatchHeader) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsControl reports whether the batch is a control batch.
func (h *BatchHeader) IsControl() bool { return h.Attributes&AttrControl != 0 }

// HasProducer reports whether the batch carries an idempotent producer id.
func (h *BatchHeader) HasProducer() bool { return h.ProducerID >= 0 }

// LastSequence is the sequence number of the batch's last record.
func (h *BatchHeader) LastSequence() int32 {
	return seqAdd(h.BaseSequence, h.LastOffsetDelta)
}

// seqAdd adds to a sequence number, wrapping at MaxInt32 as Kafka does.
func seqAdd(seq int32, n int32) int32 {
	s := int64(seq) + int64(n)
	if s > 0x7fffffff {
		s -= 0x7fffffff + 1
	}
	return int32(s)
}

// BatchCRC computes the CRC32C that a batch's header must carry.
func BatchCRC(batch []byte) uint32 {
	return crc32.Checksum(batch[crcStart:], crcTable)
}

// SetBaseOffset rewrites the batch's base offset in place. The CRC does not
// cover it.
func SetBaseOffset(batch []byte, off int64) {
	binary.BigEndian.PutUint64(batch[0:], uint64(off))
}

// SetLeaderEpoch rewrites the partition leader epoch in place. The CRC does
// not cover it.
func SetLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[12:], uint32(epoch))
}

// SetLogAppendTime stamps the batch with the broker's time: the attribute bit
// and maxTimestamp change, so the CRC is recomputed.
func SetLogAppendTime(batch []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(batch[21:])
	binary.BigEndian.PutUint16(batch[21:], attrs|AttrLogAppendTime)
	binary.BigEndian.PutUint64(batch[35:], uint64(ts))
	binary.BigEndian.PutUint32(batch[17:], BatchCRC(batch))
}

// ValidateBatch checks one complete batch from a producer: its framing, magic,
// CRC, and, for uncompressed batches, that the records parse and their count
// matches the header. It returns the decoded header.
func ValidateBatch(batch []byte) (BatchHeader, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return h, err
	}
	if h.Size() != int64(len(batch)) {
		return h, fmt.Errorf("cannot validate batch: length field %d for %d bytes: %w", h.Length, len(batch), ErrCorruptBatch)
	}
	if crc := BatchCRC(batch); crc != h.CRC {
		return h, fmt.Errorf("cannot validate batch: crc %08x, header says %08x: %w", crc, h.CRC, ErrCorruptBatch)
	}
	if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("cannot validate batch: %d records, last offset delta %d: %w", h.NumRecords, h.LastOffsetDelta, ErrInvalidRecord)
	}
	if h.Compression() > 4 {
		return h, fmt.Errorf("cannot validate batch: compression codec %d: %w", h.Compression(), ErrInvalidRecord)
	}
	if h.IsControl() && h.NumRecords != 1 {
		return h, fmt.Errorf("cannot validate batch: control batch with %d records: %w", h.NumRecords, ErrInvalidRecord)
	}
	if h.Compression() == 0 {
		maxDelta, err := checkRecords(batch[BatchHeaderSize:], h.NumRecords)
		if err != nil {
			return h, err
		}
		h.setRecordsMaxTimestamp(maxDelta)
	}
	return h, nil
}

// setRecordsMaxTimestamp sets h.MaxTimestamp to the records' own latest
// timestamp, given their largest delta, as Kafka's LogValidator does for
// CreateTime batches: the time index, ListOffsets by time and time-based
// retention go by it, and a client's header may say otherwise.
// SyncMaxTimestamp writes it into the batch.
func (h *BatchHeader) setRecordsMaxTimestamp(maxDelta int64) {
	if h.Attributes&AttrLogAppendTime == 0 && !h.IsControl() {
		h.MaxTimestamp = h.FirstTimestamp + maxDelta
	}
}

// SyncMaxTimestamp writes h.MaxTimestamp into batch when its header says
// otherwise (ValidateBatch and BatchRecords set it from the records),
// recomputing the CRC; it reports whether it wrote.
func SyncMaxTimestamp(batch []byte, h *BatchHeader) bool {
	if int64(binary.BigEndian.Uint64(batch[35:])) == h.MaxTimestamp {
		return false
	}
	binary.BigEndian.PutUint64(batch[35:], uint64(h.MaxTimestamp))
	h.CRC = BatchCRC(batch)
	binary.BigEndian.PutUint32(batch[17:], h.CRC)
	return true
}

// Record is one decoded record. Its byte slices alias the batch.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil for a null key
	Value          []byte // nil for a null value (a tombstone)
	// Headers holds the encoded headers, count first; see ForEachHeader.
	NumHeaders int
	Headers    []byte
}

// checkRecords checks every record of an uncompressed batch body: each
// parses (lengths within bounds, header keys not null, nothing left over)
// and there are want of them with offset deltas 0, 1, .... It returns
// their largest timestamp delta. It runs for every produced batch, so it
// walks the bytes without filling a Record and takes single-byte varints
// (nearly all of them) without a call.
func checkRecords(body []byte, want int32) (maxDelta int64, err error) {
	n := int32(0)
	maxDelta = math.MinInt64
	for len(body) > 0 {
		length, w := varint(body)
		if w <= 0 || length < 0 || int64(len(body)-w) < length {
			return 0, fmt.Errorf("cannot decode record length: %w", ErrInvalidRecord)
		}
		rec := body[w : w+int(length)]
		body = body[w+int(length):]
		delta, err := checkRecord(rec, n)
		if err != nil {
			return 0, err
		}
		maxDelta = max(maxDelta, delta)
		n++
	}
	if n != want {
		return 0, fmt.Errorf("cannot validate batch: header counts %d records, found %d: %w", want, n, ErrInvalidRecord)
	}
	return maxDelta, nil
}

// checkRecord checks one record (without its length prefix) and that its
// offset delta is want, and returns its timestamp delta.
func checkRecord(b []byte, want int32) (tsDelta int64, err error) {
	if len(b) < 1 {
		return 0, fmt.Errorf("cannot decode record: empty: %w", ErrInvalidRecord)
	}
	b = b[1:] // attributes
	tsDelta, w := varint(b)
	if w <= 0 {
		return 0, fmt.Errorf("cannot decode record timestamp: %w", ErrInvalidRecord)
	}
	b = b[w:]
	od, w := varint(b)
	if w <= 0 || od < 0 || od > 0x7fffffff {
		return 0, fmt.Errorf("cannot decode record offset delta: %w", ErrInvalidRecord)
	}
	if int32(od) != want {
		return 0, fmt.Errorf("cannot validate batch: record %d has offset delta %d: %w", want, od, ErrInvalidRecord)
	}
	b = b[w:]
	var ok bool
	if b, ok = skipVarBytes(b, true); !ok { // key
		return 0, fmt.Errorf("cannot decode record bytes: %w", ErrInvalidRecord)
	}
	if b, ok = skipVarBytes(b, true); !ok { // value
		return 0, fmt.Errorf("cannot decode record bytes: %w", ErrInvalidRecord)
	}
	nh, w := varint(b)
	if w <= 0 || nh < 0 || nh > int64(len(b)) {
		return 0, fmt.Errorf("cannot decode record header count: %w", ErrInvalidRecord)
	}
	b = b[w:]
	for i := int64(0); i < nh; i++ {
		if b, ok = skipVarBytes(b, false); !ok {
			return 0, fmt.Errorf("cannot decode record header key: %w", ErrInvalidRecord)
		}
		if b, ok = skipVarBytes(b, true); !ok {
			return 0, fmt.Errorf("cannot decode record bytes: %w", ErrInvalidRecord)
		}
	}
	if len(b) != 0 {
		return 0, fmt.Errorf("cannot decode record: %d trailing bytes: %w", len(b), ErrInvalidRecord)
	}
	return tsDelta, nil
}

// skipVarBytes skips a varint-length-prefixed byte string; length -1
// (null) is allowed when nullable.
func skipVarBytes(b []byte, nullable bool) ([]byte, bool) {
	l, w := varint(b)
	if w <= 0 || l < -1 || l > int64(len(b)-w) || (l == -1 && !nullable) {
		return nil, false
	}
	return b[w+int(max(l, 0)):], true
}

// varint is binary.Varint with the one- and two-byte cases inline.
func varint(b []byte) (int64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		u := int64(b[0])
		return u>>1 ^ -(u & 1), 1
	}
	if len(b) > 1 && b[1] < 0x80 {
		u := int64(b[0]&0x7f) | int64(b[1])<<7
		return u>>1 ^ -(u & 1), 2
	}
	return binary.Varint(b)
}

// nextRecord splits the first length-prefixed record off body.
func nextRecord(body []byte) (rec, rest []byte, err error) {
	length, n := varint(body)
	if n <= 0 || length < 0 || int64(len(body)-n) < length {
		return nil, nil, fmt.Errorf("cannot decode record length: %w", ErrInvalidRecord)
	}
	return body[n : n+int(length)], body[n+int(length):], nil
}

// ForEachRecord decodes the records of an uncompressed batch body (the bytes
// after the header) and calls fn for each until it returns false. The Record
// is reused between calls; it is the only allocation.
func ForEachRecord(body []byte, fn func(*Record) bool) error {
	var r Record
	for len(body) > 0 {
		rec, rest, err := nextRecord(body)
		if err != nil {
			return err
		}
		body = rest
		if err := decodeRecord(rec, &r); err != nil {
			return err
		}
		if !fn(&r) {
			return nil
		}
	}
	return nil
}

func decodeRecord(b []byte, r *Record) error {
	if len(b) < 1 {
		return fmt.Errorf("cannot decode record: empty: %w", ErrInvalidRecord)
	}
	r.Attributes = int8(b[0])
	b = b[1:]
	var n int
	if r.TimestampDelta, n = varint(b); n <= 0 {
		return fmt.Errorf("cannot decode record timestamp: %w", ErrInvalidRecord)
	}
	b = b[n:]
	od, n := varint(b)
	if n <= 0 || od < 0 || od > 0x7fffffff {
		return fmt.Errorf("cannot decode record offset delta: %w", ErrInvalidRecord)
	}
	r.OffsetDelta = int32(od)
	b = b[n:]
	var err error
	if r.Key, b, err = varBytes(b); err != nil {
		return err
	}
	if r.Value, b, err = varBytes(b); err != nil {
		return err
	}
	nh, n := varint(b)
	if n <= 0 || nh < 0 || nh > int64(len(b)) {
		return fmt.Errorf("cannot decode record header count: %w", ErrInvalidRecord)
	}
	r.NumHeaders = int(nh)
	r.Headers = b[n:]
	rest := r.Headers
	for i := 0; i < r.NumHeaders; i++ {
		var k []byte
		if k, rest, err = varBytes(rest); err != nil || k == nil {
			return fmt.Errorf("cannot decode record header key: %w", ErrInvalidRecord)
		}
		if _, rest, err = varBytes(rest); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("cannot decode record: %d trailing bytes: %w", len(rest), ErrInvalidRecord)
	}
	return nil
}

// varBytes reads a varint-length-prefixed byte string; length -1 is null.
func varBytes(b []byte) (v, rest []byte, err error) {
	l, n := varint(b)
	if n <= 0 || l < -1 || l > int64(len(b)-n) {
		return nil, nil, fmt.Errorf("cannot decode record bytes: %w", ErrInvalidRecord)
	}
	b = b[n:]
	if l < 0 {
		return nil, b, nil
	}
	return b[:l:l], b[l:], nil
}

// ForEachHeader walks a record's encoded headers.
func ForEachHeader(r *Record, fn func(key, value []byte)) {
	rest := r.Headers
	for i := 0; i < r.NumHeaders; i++ {
		var k, v []byte
		k, rest, _ = varBytes(rest)
		v, rest, _ = varBytes(rest)
		fn(k, v)
	}
}
