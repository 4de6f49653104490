package segment

import (
	"bytes"
	"errors"
	"testing"

	"samsa/segment/compress"
)

func TestRecompress(t *testing.T) {
	codecs := []compress.Codec{compress.None, compress.Gzip, compress.Snappy, compress.LZ4, compress.Zstd}
	for _, from := range codecs {
		for _, to := range codecs {
			tb := pidBatch(20, 1000, 7, 3, 100)
			tb.Codec = from
			tb.Records[4].Key = nil
			tb.Records[5].Headers = []testHeader{{[]byte("hk"), []byte("hv")}}
			src := tb.encode()
			h, err := ValidateBatch(src)
			if err != nil {
				t.Fatal(err)
			}
			orig := append([]byte(nil), src...)
			records, err := BatchRecords(nil, src, &h, 1<<20)
			if err != nil {
				t.Fatalf("%v: %v", from, err)
			}
			out, err := Recompress([]byte("prefix"), records, src, &h, to)
			if err != nil {
				t.Fatalf("%v -> %v: %v", from, to, err)
			}
			if !bytes.Equal(src, orig) {
				t.Fatalf("%v -> %v: source batch modified", from, to)
			}
			if string(out[:6]) != "prefix" {
				t.Fatalf("dst prefix lost")
			}
			nb := out[6:]
			nh, err := ValidateBatch(nb)
			if err != nil {
				t.Fatalf("%v -> %v: %v", from, to, err)
			}
			if nh != h || compress.Codec(nh.Compression()) != to {
				t.Fatalf("%v -> %v: header %+v, updated %+v", from, to, nh, h)
			}
			// Everything but length, CRC and codec is as sent.
			if nh.ProducerID != 7 || nh.ProducerEpoch != 3 || nh.BaseSequence != 100 || nh.NumRecords != 20 || nh.FirstTimestamp != 1000 {
				t.Fatalf("%v -> %v: header fields changed: %+v", from, to, nh)
			}
			want := encodeRecords(tb.Records)
			got, err := BatchRecords(nil, nb, &nh, 1<<20)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%v -> %v: records differ (%v)", from, to, err)
			}
		}
	}
}

func TestBatchRecordsBadPayload(t *testing.T) {
	f := func(name string, mutate func(tb *testBatch, b []byte) []byte, target error) {
		t.Helper()
		tb := plainBatch(5, 30, 0)
		tb.Codec = compress.Zstd
		b := mutate(&tb, tb.encode())
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := BatchRecords(nil, b, &h, 1<<20); !errors.Is(err, target) {
			t.Fatalf("%s: %v, want %v", name, err, target)
		}
	}
	// Garbage where the zstd frame should be (the CRC is valid): the
	// producer's bytes are wrong, INVALID_RECORD, not a corrupt log.
	f("garbage", func(tb *testBatch, b []byte) []byte {
		for i := BatchHeaderSize; i < len(b); i++ {
			b[i] = byte(i)
		}
		fixCRC(b)
		return b
	}, ErrInvalidRecord)
	// A valid frame whose records disagree with the header's count.
	f("count", func(tb *testBatch, b []byte) []byte {
		tb.Records = tb.Records[:4]
		nb := tb.encode()
		copy(nb[23:27], b[23:27]) // last offset delta 4
		copy(nb[57:61], b[57:61]) // 5 records
		fixCRC(nb)
		return nb
	}, ErrInvalidRecord)
	// Inflating past the bound fails instead of allocating.
	tb := plainBatch(100, 1000, 0)
	tb.Codec = compress.LZ4
	b := tb.encode()
	h, _ := ValidateBatch(b)
	if _, err := BatchRecords(nil, b, &h, 10000); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("inflated past maxSize: %v, want %v", err, ErrBatchTooLarge)
	}
}
