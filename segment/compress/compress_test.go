package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func TestRoundTrip(t *testing.T) {
	src := bytes.Repeat([]byte("samsa record payload "), 5000)
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		enc, err := Compress(c, []byte("prefix"), src)
		if err != nil {
			t.Fatalf("%v: compress: %v", c, err)
		}
		if !bytes.HasPrefix(enc, []byte("prefix")) {
			t.Fatalf("%v: compress dropped dst prefix", c)
		}
		if c != None && len(enc) >= len(src) {
			t.Fatalf("%v: compressed %d bytes to %d", c, len(src), len(enc))
		}
		dec, err := Decompress(c, []byte("x"), enc[6:], len(src))
		if err != nil {
			t.Fatalf("%v: decompress: %v", c, err)
		}
		if !bytes.Equal(dec[1:], src) || dec[0] != 'x' {
			t.Fatalf("%v: round trip mismatch", c)
		}
		if _, err := Decompress(c, nil, enc[6:], len(src)-1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v: limit not enforced: %v", c, err)
		}
	}
}

func TestXerialSnappy(t *testing.T) {
	a, b := bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("bc"), 700)
	var frame []byte
	frame = append(frame, xerialMagic...)
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint32(frame, 1)
	for _, chunk := range [][]byte{a, b} {
		enc := s2.EncodeSnappy(nil, chunk)
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(enc)))
		frame = append(frame, enc...)
	}
	got, err := Decompress(Snappy, nil, frame, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, a...), b...); !bytes.Equal(got, want) {
		t.Fatalf("xerial decode mismatch: %d bytes", len(got))
	}
	if _, err := Decompress(Snappy, nil, frame[:len(frame)-3], 1<<20); err == nil {
		t.Fatal("truncated xerial frame decoded without error")
	}
}

func TestGarbage(t *testing.T) {
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		if _, err := Decompress(c, nil, []byte("definitely not compressed"), 1<<20); err == nil {
			t.Errorf("%v: garbage decoded without error", c)
		}
	}
	if _, err := Decompress(Codec(5), nil, nil, 10); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("codec 5: %v", err)
	}
}

func TestParseCodec(t *testing.T) {
	for s, want := range map[string]Codec{"none": None, "gzip": Gzip, "snappy": Snappy, "lz4": LZ4, "zstd": Zstd} {
		if c, err := ParseCodec(s); err != nil || c != want {
			t.Errorf("ParseCodec(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseCodec("brotli"); err == nil {
		t.Error("brotli accepted")
	}
}

func FuzzDecompress(f *testing.F) {
	src := []byte("seed seed seed seed seed")
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		enc, _ := Compress(c, nil, src)
		f.Add(int8(c), enc)
	}
	f.Fuzz(func(t *testing.T, c int8, data []byte) {
		out, err := Decompress(Codec(c&7), nil, data, 1<<16)
		if err == nil && len(out) > 1<<16 {
			t.Fatalf("output %d exceeds limit", len(out))
		}
	})
}

// TestZstdBombWithoutSize: a zstd frame that declares no content size is
// cut at maxZstdOutput, not decoded to whatever it holds, and reports
// ErrTooLarge like the other codecs. The frame is built by hand from RLE
// blocks (RFC 8878 3.1.1): 8 KiB that inflate to 257 MiB.
func TestZstdBombWithoutSize(t *testing.T) {
	const block = 128 << 10
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3} // magic; no size, checksum or dictionary; window 2^17
	n := maxZstdOutput/block + 8
	for i := range n {
		hdr := uint32(block)<<3 | 1<<1 // RLE block of 128 KiB
		if i == n-1 {
			hdr |= 1 // the last
		}
		frame = append(frame, byte(hdr), byte(hdr>>8), byte(hdr>>16), 'z')
	}
	var h zstd.Header
	if err := h.Decode(frame); err != nil || h.HasFCS {
		t.Fatalf("the frame declares its size or does not parse (%v)", err)
	}
	if _, err := Decompress(Zstd, nil, frame, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d-byte bomb: %v, want %v", len(frame), err, ErrTooLarge)
	}
}
