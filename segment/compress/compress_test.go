package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
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

// lz4WithReader decodes src with lz4.Reader alone, the reference
// decodeLZ4Frame must agree with.
func lz4WithReader(src []byte, maxSize int) ([]byte, error) {
	zr := lz4.NewReader(bytes.NewReader(src))
	return readAllLimited(nil, zr, maxSize)
}

// lz4Frames are frames as clients write them, with every option the fast
// path follows or leaves to lz4.Reader.
func lz4Frames(t testing.TB) map[string][]byte {
	t.Helper()
	text := bytes.Repeat([]byte("samsa record payload, key k, value v "), 40000)
	random := make([]byte, 300<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	frames := map[string][]byte{}
	enc := func(name string, data []byte, opts ...lz4.Option) {
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		if err := w.Apply(opts...); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		frames[name] = b.Bytes()
	}
	enc("text, defaults", text)
	enc("text, 64 KiB blocks, block checksums", text, lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true))
	enc("text, 1 MiB blocks, no content checksum", text, lz4.BlockSizeOption(lz4.Block1Mb), lz4.ChecksumOption(false))
	enc("text, content size", text, lz4.SizeOption(uint64(len(text))))
	enc("random (stored blocks)", random, lz4.BlockSizeOption(lz4.Block64Kb))
	enc("empty", nil)
	frames["two frames"] = append(bytes.Clone(frames["text, defaults"]), frames["empty"]...)
	dep := bytes.Clone(frames["text, defaults"])
	dep[4] &^= 0x20 // claims dependent blocks: left to lz4.Reader
	frames["dependent blocks flag"] = dep
	return frames
}

// TestLZ4FrameFastPath: decodeLZ4Frame gives what lz4.Reader gives for the
// frames clients write, takes over every one of them but the dependent
// and two-frame cases, and refuses what inflates past the bound.
func TestLZ4FrameFastPath(t *testing.T) {
	for name, src := range lz4Frames(t) {
		want, wantErr := lz4WithReader(src, 64<<20)
		got, ok, err := decodeLZ4Frame([]byte("x"), src, 64<<20)
		follows := name != "two frames" && name != "dependent blocks flag"
		if ok != follows {
			t.Fatalf("%s: fast path taken %v, want %v", name, ok, follows)
		}
		if !ok {
			continue
		}
		if err != nil || wantErr != nil || got[0] != 'x' || !bytes.Equal(got[1:], want) {
			t.Fatalf("%s: %d bytes (%v), lz4.Reader %d (%v)", name, len(got)-1, err, len(want), wantErr)
		}
		if len(want) > 1000 {
			if _, ok, err := decodeLZ4Frame(nil, src, len(want)-1); !ok || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s: one byte over the bound: %v %v", name, ok, err)
			}
			if out, _, err := decodeLZ4Frame(nil, src, len(want)); err != nil || len(out) != len(want) {
				t.Fatalf("%s: exactly the bound: %d %v", name, len(out), err)
			}
		}
		for _, cut := range []int{len(src) - 1, len(src) / 2, 8} {
			if out, err := Decompress(LZ4, nil, src[:cut], 64<<20); err == nil && !bytes.Equal(out, want) {
				t.Fatalf("%s cut at %d: decoded %d bytes without error", name, cut, len(out))
			}
		}
	}
}

// FuzzLZ4Frame: on any input the fast path either steps aside or agrees
// with lz4.Reader wherever the reader succeeds (the reader also checks the
// frame's hashes, which the fast path leaves to the batch CRC).
func FuzzLZ4Frame(f *testing.F) {
	for _, src := range lz4Frames(f) {
		if len(src) < 4096 {
			f.Add(src)
		}
	}
	small, _ := Compress(LZ4, nil, []byte("seed seed seed seed seed"))
	f.Add(small)
	f.Fuzz(func(t *testing.T, src []byte) {
		got, ok, err := decodeLZ4Frame(nil, src, 1<<20)
		if !ok {
			return
		}
		if err == nil && len(got) > 1<<20 {
			t.Fatalf("output %d exceeds limit", len(got))
		}
		want, wantErr := lz4WithReader(src, 1<<20)
		if wantErr == nil && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("fast path %d bytes (%v), lz4.Reader %d", len(got), err, len(want))
		}
	})
}
