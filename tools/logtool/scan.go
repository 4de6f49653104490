package logtool

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"samsa/segment"
)

// maxBatchRead bounds the batch bytes held in memory at once. A larger
// batch within the file is still framed and its CRC checked, streaming;
// only its records are not decoded. A variable for tests.
var maxBatchRead int64 = 64 << 20

// crcStart is where a batch's CRC32C coverage begins (attributes).
const crcStart = 21

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Problem kinds found while framing batches.
const (
	kindCRC      = "crc"
	kindFraming  = "framing"
	kindTornTail = "torn-tail"
)

// frame is one batch as batchScanner found it.
type frame struct {
	pos    int64
	header bool // h parsed; false: the bytes at pos are no batch header
	h      segment.BatchHeader
	size   int64  // bytes the frame spans (h.Size() when framed)
	batch  []byte // the whole batch; nil when over maxBatchRead or unframed. Valid until the next call.
	crc    uint32 // CRC32C computed over the batch
	kind   string // "" when sound, else kindCRC, kindFraming or kindTornTail
	detail string // what is wrong, when kind is set
	stop   bool   // the bytes from pos on cannot be read as batches
}

// batchScanner reads the batches of one segment file front to back
// through a buffer, without seeking: one header, then that batch, then
// the next.
type batchScanner struct {
	r    *bufio.Reader
	size int64 // file size when the scan began; bytes appended later are not read
	pos  int64 // position of the next frame
	hb   [segment.BatchHeaderSize]byte
	buf  []byte
}

func newBatchScanner(f *os.File, size int64) *batchScanner {
	return &batchScanner{r: bufio.NewReaderSize(f, bufferSize(size, 1<<20)), size: size}
}

// bufferSize sizes a read buffer for a file of size bytes: up to limit,
// and no bigger than the file needs.
func bufferSize(size int64, limit int) int {
	return int(max(min(size, int64(limit)), 4096))
}

// next returns the frame at the scanner's position; ok is false at the end
// of the file or after a frame with stop set. err reports a failed read.
func (s *batchScanner) next() (fr frame, ok bool, err error) {
	rem := s.size - s.pos
	if rem <= 0 {
		return fr, false, nil
	}
	fr.pos = s.pos
	if rem < segment.BatchHeaderSize {
		fr.size, fr.stop, fr.kind = rem, true, kindTornTail
		fr.detail = fmt.Sprintf("%d bytes at the end, too few for a batch header", rem)
		s.pos = s.size
		return fr, true, nil
	}
	if _, err := io.ReadFull(s.r, s.hb[:]); err != nil {
		return fr, false, readErr(err)
	}
	h, herr := segment.ParseBatchHeader(s.hb[:])
	fr.h = h
	size := int64(h.Length) + 12
	if herr != nil {
		if size >= segment.BatchHeaderSize && size <= rem {
			// The length field still frames something: skip by it and
			// look for a batch after it.
			fr.size, fr.kind = size, kindFraming
			fr.detail = fmt.Sprintf("cannot parse batch: %v; skipping %d bytes by its length field", herr, size)
			if _, err := s.r.Discard(int(size - segment.BatchHeaderSize)); err != nil {
				return fr, false, readErr(err)
			}
			s.pos += size
			return fr, true, nil
		}
		zero, err := s.restIsZero()
		if err != nil {
			return fr, false, err
		}
		fr.size, fr.stop = rem, true
		if zero {
			fr.kind = kindTornTail
			fr.detail = fmt.Sprintf("%d zero bytes at the end (never written, or preallocated)", rem)
		} else {
			fr.kind = kindFraming
			fr.detail = fmt.Sprintf("cannot parse batch: %v", herr)
		}
		s.pos = s.size
		return fr, true, nil
	}
	fr.header, fr.size = true, size
	if size > rem {
		fr.size, fr.stop, fr.kind = rem, true, kindTornTail
		fr.detail = fmt.Sprintf("truncated batch: its header says %d bytes, the file has %d from here", size, rem)
		s.pos = s.size
		return fr, true, nil
	}
	if size <= maxBatchRead {
		if int64(cap(s.buf)) < size {
			s.buf = make([]byte, size)
		}
		b := s.buf[:size]
		copy(b, s.hb[:])
		if _, err := io.ReadFull(s.r, b[segment.BatchHeaderSize:]); err != nil {
			return fr, false, readErr(err)
		}
		fr.batch = b
		fr.crc = segment.BatchCRC(b)
	} else {
		fr.crc, err = s.streamCRC(size)
		if err != nil {
			return fr, false, err
		}
	}
	if fr.crc != h.CRC {
		fr.kind = kindCRC
		fr.detail = fmt.Sprintf("crc mismatch: stored %d, computed %d", h.CRC, fr.crc)
	}
	s.pos += size
	return fr, true, nil
}

// streamCRC computes the CRC of a batch too large to hold, whose header is
// in s.hb, reading its body in chunks.
func (s *batchScanner) streamCRC(size int64) (uint32, error) {
	crc := crc32.Update(0, castagnoli, s.hb[crcStart:])
	for left := size - segment.BatchHeaderSize; left > 0; {
		chunk, err := s.r.Peek(int(min(left, int64(s.r.Size()))))
		if len(chunk) == 0 && err != nil {
			return 0, readErr(err)
		}
		crc = crc32.Update(crc, castagnoli, chunk)
		s.r.Discard(len(chunk))
		left -= int64(len(chunk))
	}
	return crc, nil
}

// restIsZero reports whether every byte from the scanner's position to the
// end of the file is zero; it consumes them.
func (s *batchScanner) restIsZero() (bool, error) {
	for _, c := range s.hb {
		if c != 0 {
			return false, nil
		}
	}
	for left := s.size - s.pos - segment.BatchHeaderSize; left > 0; {
		chunk, err := s.r.Peek(int(min(left, int64(s.r.Size()))))
		if len(chunk) == 0 && err != nil {
			return false, readErr(err)
		}
		for _, c := range chunk {
			if c != 0 {
				return false, nil
			}
		}
		s.r.Discard(len(chunk))
		left -= int64(len(chunk))
	}
	return true, nil
}

// readErr names a read that ended early: the file shrank under the scan.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("cannot read segment: the file shrank while being read: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("cannot read segment: %w", err)
}

// walkRecords decodes the records of a framed batch (inflating it into
// *scratch when compressed) and calls fn for each. It checks what holds
// for every stored batch, compacted or not: the records parse, their
// offset deltas increase and stay within the header's last offset delta,
// and there are as many as the header counts. fn sees the records before
// the first bad one.
func walkRecords(batch []byte, h *segment.BatchHeader, scratch *[]byte, fn func(*segment.Record)) (int, error) {
	records, err := segment.StoredRecords((*scratch)[:0], batch, h, segment.MaxInflatedBatch)
	if err != nil {
		return 0, err
	}
	if h.Compression() != 0 {
		*scratch = records
	}
	n := 0
	prev := int32(-1)
	var bad error
	err = segment.ForEachRecord(records, func(r *segment.Record) bool {
		if r.OffsetDelta <= prev || r.OffsetDelta > h.LastOffsetDelta {
			bad = fmt.Errorf("record %d has offset delta %d after %d, batch's last offset delta is %d", n, r.OffsetDelta, prev, h.LastOffsetDelta)
			return false
		}
		prev = r.OffsetDelta
		n++
		fn(r)
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return n, fmt.Errorf("cannot decode records: %w", err)
	}
	if int64(n) != int64(h.NumRecords) {
		return n, fmt.Errorf("header counts %d records, found %d", h.NumRecords, n)
	}
	return n, nil
}
