package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"samsa/segment/compress"
)

// testRecord is one record of a test batch.
type testRecord struct {
	Key, Value []byte // nil encodes as null
	Headers    []testHeader
	TsDelta    int64
}

type testHeader struct{ Key, Value []byte }

// testBatch describes a record batch to hand-encode in Kafka's v2 format.
type testBatch struct {
	Records     []testRecord
	FirstTs     int64
	Codec       compress.Codec
	ProducerID  int64
	Epoch       int16
	Seq         int32
	Attrs       int16 // extra attribute bits
	LeaderEpoch int32
}

// plainBatch is a batch of n records with values of size bytes, timestamps
// ts, ts+1, ... and no producer id.
func plainBatch(n, size int, ts int64) testBatch {
	b := testBatch{FirstTs: ts, ProducerID: -1, Epoch: -1, Seq: -1}
	for i := range n {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte('a' + (i+j)%26)
		}
		b.Records = append(b.Records, testRecord{Key: []byte(fmt.Sprintf("k%d", i)), Value: v, TsDelta: int64(i)})
	}
	return b
}

// pidBatch is plainBatch from an idempotent producer.
func pidBatch(n int, ts int64, pid int64, epoch int16, seq int32) testBatch {
	b := plainBatch(n, 8, ts)
	b.ProducerID, b.Epoch, b.Seq = pid, epoch, seq
	return b
}

func appendVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return appendVarint(dst, -1)
	}
	dst = appendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func encodeRecords(recs []testRecord) []byte {
	var body []byte
	for i, r := range recs {
		var rec []byte
		rec = append(rec, 0) // attributes
		rec = appendVarint(rec, r.TsDelta)
		rec = appendVarint(rec, int64(i))
		rec = appendVarBytes(rec, r.Key)
		rec = appendVarBytes(rec, r.Value)
		rec = appendVarint(rec, int64(len(r.Headers)))
		for _, h := range r.Headers {
			rec = appendVarBytes(rec, h.Key)
			rec = appendVarBytes(rec, h.Value)
		}
		body = appendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	return body
}

func (b testBatch) maxTs() int64 {
	m := int64(-1)
	for _, r := range b.Records {
		m = max(m, b.FirstTs+r.TsDelta)
	}
	return m
}

// encode returns the batch bytes with base offset 0 and a valid CRC.
func (b testBatch) encode() []byte {
	body := encodeRecords(b.Records)
	if b.Codec != compress.None {
		var err error
		if body, err = compress.Compress(b.Codec, nil, body); err != nil {
			panic(err)
		}
	}
	buf := make([]byte, BatchHeaderSize, BatchHeaderSize+len(body))
	binary.BigEndian.PutUint64(buf[0:], 0)
	binary.BigEndian.PutUint32(buf[8:], uint32(BatchHeaderSize-batchLengthOverhead+len(body)))
	binary.BigEndian.PutUint32(buf[12:], uint32(b.LeaderEpoch))
	buf[16] = 2
	binary.BigEndian.PutUint16(buf[21:], uint16(b.Attrs|int16(b.Codec)))
	binary.BigEndian.PutUint32(buf[23:], uint32(len(b.Records)-1))
	binary.BigEndian.PutUint64(buf[27:], uint64(b.FirstTs))
	binary.BigEndian.PutUint64(buf[35:], uint64(b.maxTs()))
	binary.BigEndian.PutUint64(buf[43:], uint64(b.ProducerID))
	binary.BigEndian.PutUint16(buf[51:], uint16(b.Epoch))
	binary.BigEndian.PutUint32(buf[53:], uint32(b.Seq))
	binary.BigEndian.PutUint32(buf[57:], uint32(len(b.Records)))
	buf = append(buf, body...)
	fixCRC(buf)
	return buf
}

func fixCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[17:], BatchCRC(batch))
}

var testLogger = slog.New(slog.DiscardHandler)

// testConfig is DefaultConfig with a small index interval so tests exercise
// the sparse indexes.
func testConfig() Config {
	c := DefaultConfig()
	c.IndexIntervalBytes = 256
	c.RetentionMs = -1
	return c
}

// testEnv is a log on its own disk in a temporary directory.
type testEnv struct {
	t    testing.TB
	dir  string
	cfg  Config
	disk *Disk
	log  *Log
}

func newTestEnv(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: filepath.Join(t.TempDir(), "topic-0"), cfg: cfg}
	e.open(false)
	t.Cleanup(func() { e.shutdown(false) })
	return e
}

// open starts a disk and opens the log, as after a clean or unclean stop.
func (e *testEnv) open(clean bool) {
	e.t.Helper()
	e.disk = NewDisk(filepath.Dir(e.dir), 0, nil, testLogger)
	l, err := OpenLog(e.dir, e.disk, e.cfg, clean, testLogger)
	if err != nil {
		e.disk.Close()
		e.disk = nil
		e.t.Fatalf("OpenLog: %v", err)
	}
	e.log = l
}

// shutdown drains the disk and closes the log; clean=false leaves the files
// as a killed process would (everything written is in the page cache, the
// active segment's indexes and the producer snapshot are not written).
func (e *testEnv) shutdown(clean bool) {
	if e.disk == nil {
		return
	}
	e.disk.Close()
	e.log.Close(clean)
	e.disk, e.log = nil, nil
}

func (e *testEnv) reopen(clean bool) {
	e.t.Helper()
	e.shutdown(clean)
	e.open(clean)
}

// append appends the batch and waits for its completion.
func (e *testEnv) append(b []byte, sync bool) (AppendResult, error) {
	e.t.Helper()
	return appendWait(e.t, e.log, b, sync)
}

func (e *testEnv) mustAppend(b []byte) AppendResult {
	e.t.Helper()
	res, err := e.append(b, false)
	if err != nil {
		e.t.Fatalf("append: %v", err)
	}
	return res
}

func appendWait(t testing.TB, l *Log, b []byte, sync bool) (AppendResult, error) {
	t.Helper()
	return appendWaitWith(t, b, func(h *BatchHeader, done func(error)) (AppendResult, error) {
		return l.Append(b, h, sync, done)
	})
}

// appendWaitWith validates b and appends it with app (Append or one of
// its variants), waiting for its done.
func appendWaitWith(t testing.TB, b []byte, app func(h *BatchHeader, done func(error)) (AppendResult, error)) (AppendResult, error) {
	t.Helper()
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatalf("test batch does not validate: %v", err)
	}
	done := make(chan error, 1)
	res, err := app(&h, func(err error) { done <- err })
	if err != nil {
		return res, err
	}
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("append never completed")
	}
	return res, err
}

// readBatches reads every batch in [from, upTo) in maxBytes steps.
func readBatches(t testing.TB, l *Log, from, upTo, maxBytes int64) [][]byte {
	t.Helper()
	var out [][]byte
	for off := from; off < upTo; {
		sl, err := l.Read(off, upTo, maxBytes)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if sl.Len == 0 {
			break
		}
		buf := make([]byte, sl.Len)
		if _, err := sl.ReadAt(buf, 0); err != nil {
			t.Fatalf("ReadAt: %v", err)
		}
		sl.Release()
		for len(buf) > 0 {
			h, err := ParseBatchHeader(buf)
			if err != nil {
				t.Fatalf("read batch at offset %d: %v", off, err)
			}
			out = append(out, buf[:h.Size()])
			buf = buf[h.Size():]
		}
		off = sl.NextOffset
	}
	return out
}

// checkLog verifies that the log holds whole valid batches with contiguous
// offsets from its start to its end and returns them.
func checkLog(t testing.TB, l *Log) [][]byte {
	t.Helper()
	batches := readBatches(t, l, l.StartOffset(), l.EndOffset(), 1<<20)
	next := l.StartOffset()
	for _, b := range batches {
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatalf("batch at %d does not validate: %v", next, err)
		}
		if h.BaseOffset != next {
			t.Fatalf("batch base offset %d, want %d", h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
	}
	if next != l.EndOffset() {
		t.Fatalf("batches end at %d, log end offset %d", next, l.EndOffset())
	}
	return batches
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSizeOf(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// writeCorpus writes fuzz seed files in the go test fuzz v1 format; args
// returns the values of seed i, or nil after the last.
func writeCorpus(t *testing.T, dir, prefix string, args func(i int) []any) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		vals := args(i)
		if vals == nil {
			return
		}
		var buf bytes.Buffer
		buf.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&buf, "[]byte(%s)\n", strconv.Quote(string(v)))
			case uint32:
				fmt.Fprintf(&buf, "uint32(%d)\n", v)
			case int64:
				fmt.Fprintf(&buf, "int64(%d)\n", v)
			case bool:
				fmt.Fprintf(&buf, "bool(%t)\n", v)
			default:
				t.Fatalf("cannot encode %T", v)
			}
		}
		name := filepath.Join(dir, fmt.Sprintf("%s-%02d", prefix, i))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// withActiveIndexes makes clean stops write index files for active
// segments of any size (and clean starts read them) for the rest of t.
func withActiveIndexes(t *testing.T) {
	old := activeIndexBytes
	activeIndexBytes = 0
	t.Cleanup(func() { activeIndexBytes = old })
}
