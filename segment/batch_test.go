package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment/compress"
)

func TestValidateBatchAccepts(t *testing.T) {
	f := func(name string, b testBatch) {
		t.Helper()
		raw := b.encode()
		h, err := ValidateBatch(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.NumRecords != int32(len(b.Records)) || h.LastOffsetDelta != h.NumRecords-1 {
			t.Fatalf("%s: header counts %d records, last delta %d", name, h.NumRecords, h.LastOffsetDelta)
		}
		if h.Size() != int64(len(raw)) || h.FirstTimestamp != b.FirstTs || h.MaxTimestamp != b.maxTs() {
			t.Fatalf("%s: header %+v", name, h)
		}
		if h.ProducerID != b.ProducerID || h.ProducerEpoch != b.Epoch || h.BaseSequence != b.Seq {
			t.Fatalf("%s: producer fields %+v", name, h)
		}
		if h.Compression() != int8(b.Codec) {
			t.Fatalf("%s: compression %d", name, h.Compression())
		}
	}
	f("one record", plainBatch(1, 10, 1000))
	f("many records", plainBatch(300, 100, 1000))
	f("empty values", plainBatch(5, 0, 0))
	f("idempotent", pidBatch(3, 5, 77, 2, 40))
	nulls := plainBatch(1, 1, 1)
	nulls.Records[0].Key, nulls.Records[0].Value = nil, nil
	f("null key and value", nulls)
	hdrs := plainBatch(2, 4, 1)
	hdrs.Records[1].Headers = []testHeader{{[]byte("h1"), []byte("v1")}, {[]byte("h2"), nil}, {[]byte(""), []byte("")}}
	f("headers", hdrs)
	for _, c := range []compress.Codec{compress.Gzip, compress.Snappy, compress.LZ4, compress.Zstd} {
		b := plainBatch(50, 64, 1000)
		b.Codec = c
		f(c.String(), b)
	}
	ctl := plainBatch(1, 6, 1)
	ctl.Attrs = AttrControl | AttrTransactional
	f("control", ctl)
}

func TestValidateBatchRejects(t *testing.T) {
	good := plainBatch(3, 10, 1000).encode()
	f := func(name string, want error, mutate func(b []byte) []byte) {
		t.Helper()
		b := mutate(bytes.Clone(good))
		_, err := ValidateBatch(b)
		if !errors.Is(err, want) {
			t.Fatalf("%s: error %v, want %v", name, err, want)
		}
	}
	// fixed recomputes the CRC so that the check under test is not the CRC.
	fixed := func(m func(b []byte) []byte) func(b []byte) []byte {
		return func(b []byte) []byte {
			b = m(b)
			fixCRC(b)
			return b
		}
	}
	f("bad crc", ErrCorruptBatch, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	f("crc field", ErrCorruptBatch, func(b []byte) []byte { b[17] ^= 0x80; return b })
	f("magic 1", ErrCorruptBatch, func(b []byte) []byte { b[16] = 1; return b })
	f("magic 3", ErrCorruptBatch, func(b []byte) []byte { b[16] = 3; return b })
	f("empty", ErrCorruptBatch, func(b []byte) []byte { return nil })
	f("truncated header", ErrCorruptBatch, func(b []byte) []byte { return b[:BatchHeaderSize-1] })
	f("truncated body", ErrCorruptBatch, func(b []byte) []byte { return b[:len(b)-1] })
	f("trailing byte", ErrCorruptBatch, func(b []byte) []byte { return append(b, 0) })
	f("length too big", ErrCorruptBatch, func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[8:], binary.BigEndian.Uint32(b[8:])+1)
		return b
	})
	f("length too small", ErrCorruptBatch, func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[8:], 48)
		return b
	})
	f("negative length", ErrCorruptBatch, func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[8:], 0xfffffff0)
		return b
	})
	f("count too high", ErrInvalidRecord, fixed(func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[57:], 4)
		binary.BigEndian.PutUint32(b[23:], 3)
		return b
	}))
	f("count too low", ErrInvalidRecord, fixed(func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[57:], 2)
		binary.BigEndian.PutUint32(b[23:], 1)
		return b
	}))
	f("zero records", ErrInvalidRecord, fixed(func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[57:], 0)
		binary.BigEndian.PutUint32(b[23:], 0xffffffff)
		return b
	}))
	f("negative count", ErrInvalidRecord, fixed(func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[57:], 0xffffffff)
		return b
	}))
	f("last offset delta mismatch", ErrInvalidRecord, fixed(func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[23:], 7)
		return b
	}))
	f("codec 5", ErrInvalidRecord, fixed(func(b []byte) []byte { b[22] |= 5; return b }))
	f("control with 3 records", ErrInvalidRecord, fixed(func(b []byte) []byte { b[22] |= AttrControl; return b }))
	// The first record starts at 61 with its length varint.
	f("negative record length", ErrInvalidRecord, fixed(func(b []byte) []byte { b[61] = 0x01; return b }))
	f("record length past end", ErrInvalidRecord, fixed(func(b []byte) []byte { b[61] = 0x7e; return b }))
	f("unterminated varint", ErrInvalidRecord, fixed(func(b []byte) []byte {
		for i := BatchHeaderSize; i < len(b); i++ {
			b[i] = 0xff
		}
		return b
	}))
	f("record offset delta", ErrInvalidRecord, fixed(func(b []byte) []byte {
		// attributes at 62, timestamp delta 0 at 63, offset delta at 64.
		b[64] = 2 // zigzag 1
		return b
	}))
}

// TestValidateBatchErrorNames checks that a bad record offset delta is
// reported as such, not as a record count mismatch.
func TestValidateBatchErrorNames(t *testing.T) {
	b := plainBatch(2, 1, 0).encode()
	b[64] = 4 // record 0 claims offset delta 2
	fixCRC(b)
	_, err := ValidateBatch(b)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("offset delta")) {
		t.Fatalf("error %v, want one naming the offset delta", err)
	}
}

func TestForEachRecord(t *testing.T) {
	b := plainBatch(3, 5, 100)
	b.Records[0].Key = nil
	b.Records[1].Value = nil
	b.Records[1].TsDelta = 40
	b.Records[2].Headers = []testHeader{{[]byte("a"), []byte("1")}, {[]byte("b"), nil}}
	raw := b.encode()
	var got []testRecord
	err := ForEachRecord(raw[BatchHeaderSize:], func(r *Record) bool {
		tr := testRecord{TsDelta: r.TimestampDelta}
		if r.Key != nil {
			tr.Key = bytes.Clone(r.Key)
		}
		if r.Value != nil {
			tr.Value = bytes.Clone(r.Value)
		}
		if int(r.OffsetDelta) != len(got) {
			t.Errorf("record %d has offset delta %d", len(got), r.OffsetDelta)
		}
		ForEachHeader(r, func(k, v []byte) {
			tr.Headers = append(tr.Headers, testHeader{bytes.Clone(k), v})
		})
		if len(tr.Headers) != r.NumHeaders {
			t.Errorf("walked %d headers of %d", len(tr.Headers), r.NumHeaders)
		}
		got = append(got, tr)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d records", len(got))
	}
	if got[0].Key != nil || !bytes.Equal(got[0].Value, b.Records[0].Value) {
		t.Fatalf("record 0: %+v", got[0])
	}
	if !bytes.Equal(got[1].Key, []byte("k1")) || got[1].Value != nil || got[1].TsDelta != 40 {
		t.Fatalf("record 1: %+v", got[1])
	}
	h := got[2].Headers
	if len(h) != 2 || string(h[0].Key) != "a" || string(h[0].Value) != "1" || string(h[1].Key) != "b" || h[1].Value != nil {
		t.Fatalf("record 2 headers: %q", h)
	}

	n := 0
	if err := ForEachRecord(raw[BatchHeaderSize:], func(*Record) bool { n++; return false }); err != nil || n != 1 {
		t.Fatalf("stop after first: n=%d err=%v", n, err)
	}
	if err := ForEachRecord(nil, func(*Record) bool { t.Fatal("called"); return true }); err != nil {
		t.Fatal(err)
	}
}

func TestValidateBatchAllocs(t *testing.T) {
	raw := plainBatch(50, 20, 0).encode()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ValidateBatch(raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ValidateBatch allocates %.1f times per batch", allocs)
	}
	n := 0
	fn := func(*Record) bool { n++; return true }
	allocs = testing.AllocsPerRun(100, func() {
		if err := ForEachRecord(raw[BatchHeaderSize:], fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("ForEachRecord allocates %.1f times per batch", allocs)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	f := func(name string, rec []byte) {
		t.Helper()
		body := appendVarint(nil, int64(len(rec)))
		body = append(body, rec...)
		if err := ForEachRecord(body, func(*Record) bool { return true }); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%s: error %v", name, err)
		}
	}
	f("empty record", nil)
	f("no timestamp", []byte{0})
	f("no offset delta", []byte{0, 0})
	f("negative offset delta", []byte{0, 0, 1})
	f("no key", []byte{0, 0, 0})
	f("key length -2", []byte{0, 0, 0, 3})
	f("key past end", []byte{0, 0, 0, 10, 'a'})
	f("no value", []byte{0, 0, 0, 1})
	f("no header count", []byte{0, 0, 0, 1, 1})
	f("negative header count", []byte{0, 0, 0, 1, 1, 1})
	f("header count past end", []byte{0, 0, 0, 1, 1, 100})
	f("null header key", []byte{0, 0, 0, 1, 1, 2, 1, 1})
	f("missing header value", []byte{0, 0, 0, 1, 1, 2, 2, 'k'})
	f("trailing bytes", []byte{0, 0, 0, 1, 1, 0, 9})
}

func TestSetBaseOffsetKeepsCRC(t *testing.T) {
	b := plainBatch(4, 10, 1000).encode()
	SetBaseOffset(b, 1<<40)
	SetLeaderEpoch(b, 7)
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 1<<40 || h.LastOffset() != 1<<40+3 || h.LeaderEpoch != 7 {
		t.Fatalf("header %+v", h)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	b := plainBatch(4, 10, 1000)
	b.Codec = compress.LZ4
	raw := b.encode()
	SetLogAppendTime(raw, 987654321)
	h, err := ValidateBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.MaxTimestamp != 987654321 || h.Attributes&AttrLogAppendTime == 0 || h.Compression() != int8(compress.LZ4) {
		t.Fatalf("header %+v", h)
	}
	if h.FirstTimestamp != 1000 {
		t.Fatalf("first timestamp changed to %d", h.FirstTimestamp)
	}
}

func TestLastSequenceWraps(t *testing.T) {
	f := func(base, delta, want int32) {
		t.Helper()
		h := BatchHeader{BaseSequence: base, LastOffsetDelta: delta}
		if got := h.LastSequence(); got != want {
			t.Fatalf("LastSequence(%d, %d) = %d, want %d", base, delta, got, want)
		}
	}
	f(0, 0, 0)
	f(10, 4, 14)
	f(0x7fffffff, 0, 0x7fffffff)
	f(0x7fffffff, 1, 0)
	f(0x7ffffffe, 4, 2)
}

// TestBatchMatchesKmsg cross-checks the test encoder and the parser against
// franz-go's independent implementation of the format.
func TestBatchMatchesKmsg(t *testing.T) {
	// Our encoder, kmsg's decoder.
	b := pidBatch(3, 1234, 9, 1, 5)
	b.Records[1].Headers = []testHeader{{[]byte("x"), []byte("y")}}
	raw := b.encode()
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if uint32(kb.CRC) != crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatal("CRC is not CRC32C over attributes..end")
	}
	if kb.NumRecords != 3 || kb.ProducerID != 9 || kb.FirstSequence != 5 || kb.MaxTimestamp != 1236 {
		t.Fatalf("kmsg read %+v", kb)
	}

	// kmsg's encoder, our decoder.
	var recs []byte
	for i := range 4 {
		r := kmsg.Record{TimestampDelta64: int64(i * 10), OffsetDelta: int32(i), Key: []byte{byte('a' + i)}, Value: []byte("value"),
			Headers: []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}}}
		enc := r.AppendTo(nil)
		r.Length = int32(len(enc) - 1)
		recs = r.AppendTo(recs)
	}
	kb = kmsg.RecordBatch{
		FirstOffset: 0, Length: int32(49 + len(recs)), PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: 3, FirstTimestamp: 5000, MaxTimestamp: 5030,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 4, Records: recs,
	}
	raw = kb.AppendTo(nil)
	fixCRC(raw)
	h, err := ValidateBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	var keys []byte
	if err := ForEachRecord(raw[BatchHeaderSize:], func(r *Record) bool {
		keys = append(keys, r.Key...)
		if h.FirstTimestamp+r.TimestampDelta != 5000+int64(r.OffsetDelta)*10 {
			t.Errorf("record %d timestamp delta %d", r.OffsetDelta, r.TimestampDelta)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if string(keys) != "abcd" {
		t.Fatalf("keys %q", keys)
	}
}

// TestBatchHeaderFormat freezes the header layout: offsets of every field.
func TestBatchHeaderFormat(t *testing.T) {
	raw := make([]byte, BatchHeaderSize)
	for i := range raw {
		raw[i] = byte(i)
	}
	raw[16] = 2
	binary.BigEndian.PutUint32(raw[8:], 49)
	h, err := ParseBatchHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := BatchHeader{
		BaseOffset: 0x0001020304050607, Length: 49, LeaderEpoch: 0x0c0d0e0f, Magic: 2,
		CRC: 0x11121314, Attributes: 0x1516, LastOffsetDelta: 0x1718191a,
		FirstTimestamp: 0x1b1c1d1e1f202122, MaxTimestamp: 0x232425262728292a,
		ProducerID: 0x2b2c2d2e2f303132, ProducerEpoch: 0x3334, BaseSequence: 0x35363738,
		NumRecords: 0x393a3b3c,
	}
	if h != want {
		t.Fatalf("parsed\n%+v\nwant\n%+v", h, want)
	}
}

func FuzzValidateBatch(f *testing.F) {
	for _, b := range fuzzSeedBatches() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Fix the CRC half the time so the fuzzer reaches the record decoder.
		if len(b) >= BatchHeaderSize && b[len(b)-1]&1 == 1 {
			fixCRC(b)
		}
		h, err := ValidateBatch(b)
		if err != nil {
			return
		}
		if h.Size() != int64(len(b)) || h.NumRecords <= 0 {
			t.Fatalf("accepted batch with header %+v for %d bytes", h, len(b))
		}
		if h.Compression() == 0 {
			n := 0
			if err := ForEachRecord(b[BatchHeaderSize:], func(r *Record) bool {
				ForEachHeader(r, func(k, v []byte) {})
				n++
				return true
			}); err != nil || n != int(h.NumRecords) {
				t.Fatalf("accepted batch decodes %d records, err %v", n, err)
			}
		}
		// Inflating an accepted batch either fails cleanly or yields its
		// records, and re-encoding them gives a valid batch with the same
		// records.
		if body, err := BatchRecords(nil, b, &h, 1<<20); err == nil {
			h2 := h
			nb, err := Recompress(nil, body, b, &h2, compress.Codec((h.Compression()+1)%5))
			if err != nil {
				t.Fatalf("recompress: %v", err)
			}
			if _, err := ValidateBatch(nb); err != nil {
				t.Fatalf("recompressed batch: %v", err)
			}
			body2, err := BatchRecords(nil, nb, &h2, 1<<20)
			if err != nil || !bytes.Equal(body, body2) {
				t.Fatalf("recompressed records differ (%v)", err)
			}
		}
		// Stamping keeps an accepted batch valid.
		SetBaseOffset(b, 42)
		SetLogAppendTime(b, 7)
		if _, err := ValidateBatch(b); err != nil {
			t.Fatalf("after stamping: %v", err)
		}
	})
}

func fuzzSeedBatches() [][]byte {
	hdrs := plainBatch(2, 3, 10)
	hdrs.Records[0].Headers = []testHeader{{[]byte("k"), []byte("v")}}
	hdrs.Records[1].Key = nil
	gz := plainBatch(3, 10, 0)
	gz.Codec = compress.Gzip
	return [][]byte{
		plainBatch(1, 1, 0).encode(),
		plainBatch(3, 20, 1000).encode(),
		pidBatch(2, 5, 1, 0, 0).encode(),
		hdrs.encode(),
		gz.encode(),
	}
}

// TestWriteFuzzSeeds regenerates the seed corpus in testdata when run with
// SAMSA_WRITE_CORPUS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_CORPUS") == "" {
		t.Skip("set SAMSA_WRITE_CORPUS=1 to regenerate testdata/fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzValidateBatch")
	writeCorpus(t, dir, "seed", func(i int) []any {
		seeds := fuzzSeedBatches()
		if i >= len(seeds) {
			return nil
		}
		return []any{seeds[i]}
	})
	dir = filepath.Join("testdata", "fuzz", "FuzzRecover")
	writeCorpus(t, dir, "seed", func(i int) []any {
		seeds := fuzzRecoverSeeds()
		if i >= len(seeds) {
			return nil
		}
		s := seeds[i]
		return []any{s.cut, s.flip, s.xor, s.fixCRC, s.tail}
	})
	rng := rand.New(rand.NewPCG(25, 26))
	writeCorpus(t, filepath.Join("testdata", "fuzz", "FuzzUnmarshalSnapshot"), "seed", func(i int) []any {
		if i >= 3 {
			return nil
		}
		return []any{randomProducerState(rng).marshal(nil)}
	})
	writeCorpus(t, filepath.Join("testdata", "fuzz", "FuzzUnmarshalIndex"), "seed", func(i int) []any {
		switch i {
		case 0:
			return []any{offsetIndex{{0, 0}, {3, 100}, {9, 250}}.marshal(nil), int64(300)}
		case 1:
			return []any{timeIndex{{5, 0}, {7, 3}}.marshal(nil), int64(0)}
		}
		return nil
	})
}

// TestVarintMatchesBinary: the inlined fast paths decode exactly as
// binary.Varint, for canonical, overlong and truncated encodings.
func TestVarintMatchesBinary(t *testing.T) {
	f := func(b []byte) {
		t.Helper()
		v, n := varint(b)
		wv, wn := binary.Varint(b)
		if v != wv || n != wn {
			t.Fatalf("varint(%x) = %d, %d; binary.Varint %d, %d", b, v, n, wv, wn)
		}
	}
	for _, x := range []int64{0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, -8193, 1 << 20, -1 << 40, math.MaxInt64, math.MinInt64} {
		b := binary.AppendVarint(nil, x)
		f(b)
		f(append(b, 0xff, 0x01))
		for i := range b {
			f(b[:i])
		}
	}
	for i := range 1 << 16 {
		f([]byte{byte(i), byte(i >> 8)})
		f([]byte{byte(i), byte(i >> 8), 0x01})
	}
	f([]byte{0x80, 0x00})
	f(nil)
}

// TestRecordsMaxTimestamp: a CreateTime batch's max timestamp is its
// records' own, whatever its header says, as Kafka's LogValidator sets it
// (the time index and time-based retention go by it); SyncMaxTimestamp
// writes it back with a new CRC. LogAppendTime and control batches keep
// their header's.
func TestRecordsMaxTimestamp(t *testing.T) {
	for _, c := range []compress.Codec{compress.None, compress.LZ4} {
		tb := plainBatch(5, 10, 1000)
		tb.Records[3].TsDelta = 7000 // the latest, not the last
		tb.Codec = c
		b := tb.encode()
		binary.BigEndian.PutUint64(b[35:], 1000) // the header says the first
		fixCRC(b)
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if c != compress.None {
			if _, err := BatchRecords(nil, b, &h, 1<<20); err != nil {
				t.Fatal(err)
			}
		}
		if h.MaxTimestamp != 8000 {
			t.Fatalf("%v: max timestamp %d, want 8000", c, h.MaxTimestamp)
		}
		if !SyncMaxTimestamp(b, &h) {
			t.Fatalf("%v: header not rewritten", c)
		}
		h2, err := ValidateBatch(b)
		if err != nil || h2.MaxTimestamp != 8000 || h2.CRC != h.CRC {
			t.Fatalf("%v: rewritten batch: %+v %v (CRC %08x)", c, h2, err, h.CRC)
		}
		if SyncMaxTimestamp(b, &h2) {
			t.Fatalf("%v: a right header rewritten", c)
		}
	}
	lat := plainBatch(3, 10, 1000)
	lat.Attrs = AttrLogAppendTime
	b := lat.encode()
	binary.BigEndian.PutUint64(b[35:], 5)
	fixCRC(b)
	if h, err := ValidateBatch(b); err != nil || h.MaxTimestamp != 5 {
		t.Fatalf("LogAppendTime batch: max timestamp %d (%v), want the header's 5", h.MaxTimestamp, err)
	}
}
