package logtool

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"samsa/segment"
	"samsa/segment/compress"
)

// testRecord is one record of a test batch.
type testRecord struct {
	key, value []byte // nil encodes as null
	headers    [][2][]byte
	tsDelta    int64
}

// testBatch is a record batch to hand-encode in Kafka's v2 format, as
// segment's own tests do.
type testBatch struct {
	records  []testRecord
	firstTs  int64
	codec    compress.Codec
	pid      int64
	epoch    int16
	seq      int32
	attrs    int16
	baseOff  int64
	leaderEp int32
}

func plain(ts int64, recs ...testRecord) testBatch {
	return testBatch{records: recs, firstTs: ts, pid: -1, epoch: -1, seq: -1}
}

func kv(k, v string) testRecord {
	var kb, vb []byte
	if k != "\x00null" {
		kb = []byte(k)
	}
	if v != "\x00null" {
		vb = []byte(v)
	}
	return testRecord{key: kb, value: vb}
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

func (b testBatch) encode() []byte {
	var body []byte
	maxTs := int64(-1)
	for i, r := range b.records {
		rec := []byte{0}
		rec = binary.AppendVarint(rec, r.tsDelta)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendVarBytes(rec, r.key)
		rec = appendVarBytes(rec, r.value)
		rec = binary.AppendVarint(rec, int64(len(r.headers)))
		for _, h := range r.headers {
			rec = appendVarBytes(rec, h[0])
			rec = appendVarBytes(rec, h[1])
		}
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
		maxTs = max(maxTs, b.firstTs+r.tsDelta)
	}
	if b.codec != compress.None {
		var err error
		if body, err = compress.Compress(b.codec, nil, body); err != nil {
			panic(err)
		}
	}
	buf := make([]byte, segment.BatchHeaderSize, segment.BatchHeaderSize+len(body))
	binary.BigEndian.PutUint64(buf[0:], uint64(b.baseOff))
	binary.BigEndian.PutUint32(buf[8:], uint32(segment.BatchHeaderSize-12+len(body)))
	binary.BigEndian.PutUint32(buf[12:], uint32(b.leaderEp))
	buf[16] = 2
	binary.BigEndian.PutUint16(buf[21:], uint16(b.attrs|int16(b.codec)))
	binary.BigEndian.PutUint32(buf[23:], uint32(len(b.records)-1))
	binary.BigEndian.PutUint64(buf[27:], uint64(b.firstTs))
	binary.BigEndian.PutUint64(buf[35:], uint64(maxTs))
	binary.BigEndian.PutUint64(buf[43:], uint64(b.pid))
	binary.BigEndian.PutUint16(buf[51:], uint16(b.epoch))
	binary.BigEndian.PutUint32(buf[53:], uint32(b.seq))
	binary.BigEndian.PutUint32(buf[57:], uint32(len(b.records)))
	buf = append(buf, body...)
	binary.BigEndian.PutUint32(buf[17:], segment.BatchCRC(buf))
	return buf
}

const ts0 = int64(1700000000000)

// binaryValue is a value that must not reach a terminal raw.
var binaryValue = []byte{0, 1, 'a', 'b', '\n', 0xff, 0x1b}

// longValue is over the text dump's default 64 bytes.
var longValue = strings.Repeat("x", 200)

// testBatches is the log the tests build, in append order; offsets
// follow from the record counts.
func testBatches() []testBatch {
	hdr := testRecord{key: []byte("k0"), value: []byte("hello"), headers: [][2][]byte{{[]byte("h1"), []byte("v1")}}}
	lz4 := plain(ts0+10, kv("c0", "compressed-0"), kv("c1", "compressed-1"), kv("c2", "compressed-2"), kv("c3", "compressed-3"), kv("c4", "compressed-4"))
	lz4.codec = compress.LZ4
	zstd := plain(ts0+20, kv("z0", "zstd-0"), kv("z1", "zstd-1"))
	zstd.codec = compress.Zstd
	pid := plain(ts0+30, kv("p0", "idem-0"), kv("p1", "idem-1"), kv("p2", "idem-2"), kv("p3", "idem-3"))
	pid.pid, pid.epoch, pid.seq = 1000, 0, 0
	ctl := plain(ts0+40, testRecord{key: []byte{0, 0, 0, 1}, value: []byte{0, 0, 0, 0, 0, 5}})
	ctl.pid, ctl.epoch, ctl.seq = 2000, 0, -1
	ctl.attrs = segment.AttrTransactional | segment.AttrControl
	odd := plain(ts0+50, testRecord{key: []byte("bin"), value: binaryValue}, kv("tomb", "\x00null"), kv("\x00null", longValue))
	bs := []testBatch{
		plain(ts0, hdr, kv("k1", "world"), kv("k2", "!")),
		lz4, zstd, pid, ctl, odd,
	}
	for i := range 6 {
		bs = append(bs, plain(ts0+100+int64(i), kv(fmt.Sprintf("f%d", i), strings.Repeat("v", 100)), kv("g", "w")))
	}
	return bs
}

// testEpochFrom is the index in testBatches from which the log is led in
// epoch 3.
const testEpochFrom = 8

// built describes the log buildLog made.
type built struct {
	dataDir, partDir string
	segs             []string // segment files, ascending
	batches          int
	records          int
}

// buildLog writes testBatches through a real segment.Store into a fresh
// data directory, rolling segments every few batches, and closes it
// cleanly so that every index and the producer snapshot are on disk.
func buildLog(t *testing.T) built {
	t.Helper()
	dataDir := t.TempDir()
	st, err := segment.OpenStore(segment.StoreOptions{Dir: dataDir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 700
	cfg.IndexIntervalBytes = 1
	cfg.RetentionMs = -1
	l, err := st.Open("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := built{dataDir: dataDir, partDir: filepath.Join(dataDir, "t-0")}
	for i, tb := range testBatches() {
		if i == testEpochFrom {
			l.SetLeaderEpoch(3)
		}
		data := tb.encode()
		h, err := segment.ValidateBatch(data)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		done := make(chan error, 1)
		if _, err := l.Append(data, &h, true, func(err error) { done <- err }); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		b.batches++
		b.records += len(tb.records)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	b.segs, _ = filepath.Glob(filepath.Join(b.partDir, "*.log"))
	sort.Strings(b.segs)
	if len(b.segs) < 3 {
		t.Fatalf("want at least 3 segments, got %v", b.segs)
	}
	return b
}

// batchAt is a batch found by reading a segment file directly.
type batchAt struct {
	pos int64
	h   segment.BatchHeader
}

func batchesOf(t *testing.T, path string) []batchAt {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []batchAt
	for pos := int64(0); pos < int64(len(data)); {
		h, err := segment.ParseBatchHeader(data[pos:])
		if err != nil {
			t.Fatalf("%s at %d: %v", path, pos, err)
		}
		out = append(out, batchAt{pos, h})
		pos += h.Size()
	}
	return out
}

// fields splits a kafka-dump-log line into its "name: value" pairs.
func fields(line string) map[string]string {
	m := map[string]string{}
	toks := strings.Fields(strings.TrimPrefix(line, "| "))
	for i := 0; i+1 < len(toks); i++ {
		if k, ok := strings.CutSuffix(toks[i], ":"); ok {
			m[k] = toks[i+1]
			i++
		}
	}
	return m
}

// dumpString dumps path to a string.
func dumpString(t *testing.T, path string, opt DumpOptions) string {
	t.Helper()
	var sb strings.Builder
	if err := Dump(&sb, path, opt); err != nil {
		t.Fatalf("Dump(%s): %v", path, err)
	}
	return sb.String()
}

// verify runs Verify and fails the test on an error.
func verify(t *testing.T, dir string) (Report, string) {
	t.Helper()
	var sb strings.Builder
	rep, err := Verify(&sb, dir)
	if err != nil {
		t.Fatalf("Verify(%s): %v", dir, err)
	}
	return rep, sb.String()
}

// onlyProblem asserts that the report holds exactly one problem, and
// returns it.
func onlyProblem(t *testing.T, rep Report) Problem {
	t.Helper()
	if len(rep.Problems) != 1 {
		t.Fatalf("want 1 problem, got %d: %v", len(rep.Problems), rep.Problems)
	}
	return rep.Problems[0]
}

func patchFile(t *testing.T, path string, off int64, fn func(b []byte)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(data[off:])
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
