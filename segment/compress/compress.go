// Package compress owns the record-batch codecs Kafka defines (attribute
// bits 0-2): gzip, snappy (raw and xerial-framed), lz4 (frame format) and zstd.
package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is the compression type stored in a batch's attributes.
type Codec int8

const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

var (
	// ErrUnknownCodec is returned for attribute values above 4.
	ErrUnknownCodec = errors.New("unknown compression codec")
	// ErrTooLarge is returned when output would exceed the caller's bound.
	ErrTooLarge = errors.New("decompressed data exceeds limit")
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCodec maps Kafka's compression.type names to codecs.
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "none", "uncompressed", "":
		return None, nil
	case "gzip":
		return Gzip, nil
	case "snappy":
		return Snappy, nil
	case "lz4":
		return LZ4, nil
	case "zstd":
		return Zstd, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownCodec, s)
}

var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// maxZstdOutput bounds what the zstd decoder allocates for one frame
// without a declared size: no caller inflates a batch past 256 MiB
// (segment.MaxInflatedBatch), so a bomb is cut there rather than at a GiB.
const maxZstdOutput = 256 << 20

var zstdDec = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxZstdOutput))
	if err != nil {
		panic("BUG: zstd decoder: " + err.Error())
	}
	return d
})

var zstdEnc = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		panic("BUG: zstd encoder: " + err.Error())
	}
	return e
})

var lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
var gzipReaders sync.Pool

// Decompress appends the decompressed form of src to dst. It never produces
// more than maxSize bytes; larger input fails with ErrTooLarge.
func Decompress(c Codec, dst, src []byte, maxSize int) ([]byte, error) {
	switch c {
	case None:
		if len(src) > maxSize {
			return dst, ErrTooLarge
		}
		return append(dst, src...), nil
	case Gzip:
		var zr *gzip.Reader
		if v := gzipReaders.Get(); v != nil {
			zr = v.(*gzip.Reader)
			if err := zr.Reset(bytes.NewReader(src)); err != nil {
				return dst, fmt.Errorf("cannot read gzip: %w", err)
			}
		} else {
			var err error
			if zr, err = gzip.NewReader(bytes.NewReader(src)); err != nil {
				return dst, fmt.Errorf("cannot read gzip: %w", err)
			}
		}
		defer gzipReaders.Put(zr)
		return readAllLimited(dst, zr, maxSize)
	case Snappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(dst, src, maxSize)
		}
		return decodeSnappyBlock(dst, src, maxSize)
	case LZ4:
		if out, ok, err := decodeLZ4Frame(dst, src, maxSize); ok {
			return out, err
		}
		zr := lz4Readers.Get().(*lz4.Reader)
		zr.Reset(bytes.NewReader(src))
		defer lz4Readers.Put(zr)
		return readAllLimited(dst, zr, maxSize)
	case Zstd:
		// Check the declared size first so a bomb is refused cheaply.
		var h zstd.Header
		if err := h.Decode(src); err == nil && h.HasFCS && h.FrameContentSize > uint64(maxSize) {
			return dst, ErrTooLarge
		}
		d := zstdDec()
		out, err := d.DecodeAll(src, dst)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return dst, ErrTooLarge
		}
		if err != nil {
			return dst, fmt.Errorf("cannot read zstd: %w", err)
		}
		if len(out)-len(dst) > maxSize {
			return dst, ErrTooLarge
		}
		return out, nil
	}
	return dst, ErrUnknownCodec
}

func decodeSnappyBlock(dst, src []byte, maxSize int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, fmt.Errorf("cannot read snappy: %w", err)
	}
	if n > maxSize {
		return dst, ErrTooLarge
	}
	start := len(dst)
	dst = grow(dst, n)
	if _, err := s2.Decode(dst[start:start+n], src); err != nil {
		return dst[:start], fmt.Errorf("cannot read snappy: %w", err)
	}
	return dst[:start+n], nil
}

// decodeXerial reads the framing Java's snappy-java writes: 8-byte magic,
// two int32 versions, then (int32 length, snappy block) chunks.
func decodeXerial(dst, src []byte, maxSize int) ([]byte, error) {
	if len(src) < 16 {
		return dst, errors.New("cannot read snappy: short xerial header")
	}
	src = src[16:]
	start := len(dst)
	for len(src) > 0 {
		if len(src) < 4 {
			return dst[:start], errors.New("cannot read snappy: truncated xerial chunk")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return dst[:start], errors.New("cannot read snappy: truncated xerial chunk")
		}
		var err error
		dst, err = decodeSnappyBlock(dst, src[:n], maxSize-(len(dst)-start))
		if err != nil {
			return dst[:start], err
		}
		src = src[n:]
	}
	return dst, nil
}

// decodeLZ4Frame decodes the common LZ4 frame (one frame of independent
// blocks, no dictionary: what every Kafka client writes) straight into dst
// with lz4.UncompressBlock. lz4.Reader decodes each block into a buffer of
// its own, copies it out and hashes the content: twice the work of the
// decode itself on the produce path, which inflates every batch to check
// it. The checksums are not verified: the batch's CRC32C covers every
// byte of the frame, and the records are walked after. ok is false for a
// frame it does not follow (dependent blocks, a dictionary, a second
// frame), which the caller decodes with lz4.Reader.
func decodeLZ4Frame(dst, src []byte, maxSize int) (out []byte, ok bool, err error) {
	const magic = 0x184D2204
	if len(src) < 7 || binary.LittleEndian.Uint32(src) != magic {
		return dst, false, nil
	}
	flg, bd := src[4], src[5]
	if flg>>6 != 1 || flg&0x20 == 0 || flg&0x01 != 0 { // version 01, independent blocks, no dictionary
		return dst, false, nil
	}
	blockMax := 0
	switch bd >> 4 & 7 {
	case 4:
		blockMax = 64 << 10
	case 5:
		blockMax = 256 << 10
	case 6:
		blockMax = 1 << 20
	case 7:
		blockMax = 4 << 20
	default:
		return dst, false, nil
	}
	blockSum, contentSum := flg&0x10 != 0, flg&0x04 != 0
	p := 7 // magic, FLG, BD, HC
	if flg&0x08 != 0 {
		p += 8 // content size
	}
	start := len(dst)
	for {
		if p+4 > len(src) {
			return dst[:start], true, errors.New("cannot read lz4: truncated frame")
		}
		n := binary.LittleEndian.Uint32(src[p:])
		p += 4
		if n == 0 { // end mark
			break
		}
		raw := n&0x80000000 != 0
		n &= 0x7fffffff
		if uint64(n) > uint64(len(src)-p) || int(n) > blockMax {
			return dst[:start], true, errors.New("cannot read lz4: bad block size")
		}
		block := src[p : p+int(n)]
		p += int(n)
		if blockSum {
			p += 4
		}
		left := maxSize - (len(dst) - start)
		if raw {
			if len(block) > left {
				return dst[:start], true, ErrTooLarge
			}
			dst = append(dst, block...)
			continue
		}
		// The frame does not say what a block inflates to. Reserving
		// blockMax (4 MiB in most frames) for each would stretch the
		// pooled buffer far past the batch, so try four times the
		// block, doubling up to blockMax while it does not fit.
		// UncompressBlock says the same for a short buffer and a bad
		// block.
		for room := min(blockMax, max(4*len(block), 64<<10)); ; room = min(2*room, blockMax) {
			r := min(room, left)
			at := len(dst)
			dst = grow(dst, r)
			m, err := lz4.UncompressBlock(block, dst[at:])
			if err == nil {
				dst = dst[:at+m]
				break
			}
			dst = dst[:at]
			switch {
			case r == room && room < blockMax:
				continue
			case r == left && left < blockMax:
				return dst[:start], true, ErrTooLarge
			default:
				return dst[:start], true, fmt.Errorf("cannot read lz4: %w", err)
			}
		}
	}
	if contentSum {
		p += 4
	}
	if p != len(src) {
		return dst[:start], false, nil // something follows: another frame
	}
	return dst, true, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, len(b)+n+len(b)/4)
	copy(nb, b)
	return nb
}

func readAllLimited(dst []byte, r io.Reader, maxSize int) ([]byte, error) {
	start := len(dst)
	if cap(dst)-len(dst) < 4096 {
		dst = append(dst, make([]byte, 4096)...)[:len(dst)]
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > maxSize {
			return dst[:start], ErrTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], fmt.Errorf("cannot decompress: %w", err)
		}
	}
}

var lz4Writers = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}

// Compress appends the compressed form of src to dst, in the format Kafka
// clients expect for codec c (snappy as a raw block, lz4 as a frame).
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		buf := bytes.NewBuffer(dst)
		zw := gzip.NewWriter(buf)
		if _, err := zw.Write(src); err != nil {
			return dst, err
		}
		if err := zw.Close(); err != nil {
			return dst, err
		}
		return buf.Bytes(), nil
	case Snappy:
		start := len(dst)
		dst = grow(dst, s2.MaxEncodedLen(len(src)))
		out := s2.EncodeSnappy(dst[start:], src)
		return dst[:start+len(out)], nil
	case LZ4:
		buf := bytes.NewBuffer(dst)
		zw := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(zw)
		zw.Reset(buf)
		if _, err := zw.Write(src); err != nil {
			return dst, err
		}
		if err := zw.Close(); err != nil {
			return dst, err
		}
		return buf.Bytes(), nil
	case Zstd:
		return zstdEnc().EncodeAll(src, dst), nil
	}
	return dst, ErrUnknownCodec
}
