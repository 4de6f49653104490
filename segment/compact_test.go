package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"samsa/segment/compress"
)

func compactConfig() Config {
	c := testConfig()
	c.Compact, c.Delete = true, false
	c.SegmentBytes = 2000
	c.MinCleanableRatio = 0.01
	return c
}

// keyedBatch is one batch of records with these keys and values (a nil
// value is a tombstone).
func keyedBatch(ts int64, codec compress.Codec, kvs ...[2]string) []byte {
	b := testBatch{FirstTs: ts, ProducerID: -1, Epoch: -1, Seq: -1, Codec: codec}
	for i, kv := range kvs {
		r := testRecord{Key: []byte(kv[0]), TsDelta: int64(i)}
		if kv[1] != "<nil>" {
			r.Value = []byte(kv[1])
		}
		b.Records = append(b.Records, r)
	}
	return b.encode()
}

// logRecord is one record as read back, with its offset.
type logRecord struct {
	offset     int64
	key, value string
	tombstone  bool
}

// readRecords reads every record of the log from its start, checking that
// offsets only increase and batches validate.
func readRecords(t *testing.T, l *Log) []logRecord {
	t.Helper()
	var out []logRecord
	last := int64(-1)
	for _, b := range readBatches(t, l, l.StartOffset(), l.EndOffset(), 1<<20) {
		h, err := ParseBatchHeader(b)
		if err != nil || BatchCRC(b) != h.CRC {
			t.Fatalf("batch does not parse or fails its CRC: %v", err)
		}
		if h.NumRecords == h.LastOffsetDelta+1 {
			// A batch compaction did not thin validates as produced.
			if _, err := ValidateBatch(b); err != nil {
				t.Fatalf("batch does not validate: %v", err)
			}
		}
		if h.BaseOffset <= last {
			t.Fatalf("batch at %d after offset %d", h.BaseOffset, last)
		}
		last = h.LastOffset()
		records, err := StoredRecords(nil, b, &h, MaxInflatedBatch)
		if err != nil {
			t.Fatal(err)
		}
		n, prev := int32(0), int32(-1)
		err = ForEachRecord(records, func(r *Record) bool {
			if r.OffsetDelta <= prev || r.OffsetDelta > h.LastOffsetDelta {
				t.Fatalf("batch at %d: offset delta %d after %d (last %d)", h.BaseOffset, r.OffsetDelta, prev, h.LastOffsetDelta)
			}
			prev = r.OffsetDelta
			n++
			out = append(out, logRecord{h.BaseOffset + int64(r.OffsetDelta), string(r.Key), string(r.Value), r.Value == nil})
			return true
		})
		if err != nil || n != h.NumRecords {
			t.Fatalf("batch at %d: %d records of %d: %v", h.BaseOffset, n, h.NumRecords, err)
		}
	}
	return out
}

// latest is the reference result: the last record per key, in offset
// order, with tombstones if keepTombstones.
func latest(all []logRecord, keepTombstones bool) []logRecord {
	last := map[string]int64{}
	for _, r := range all {
		last[r.key] = r.offset
	}
	var out []logRecord
	for _, r := range all {
		if last[r.key] == r.offset && (keepTombstones || !r.tombstone) {
			out = append(out, r)
		}
	}
	return out
}

func sameRecords(t *testing.T, what string, got, want []logRecord) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got %d records %v\nwant %d records %v", what, len(got), head(got), len(want), head(want))
	}
}

func head(rs []logRecord) []logRecord {
	if len(rs) > 8 {
		return rs[:8]
	}
	return rs
}

// fill appends n batches of random updates to keys k0..k(keys-1), with
// tombstones every so often and some compressed batches, and returns
// every record written.
func fill(t *testing.T, e *testEnv, n, keys int, rng *rand.Rand, ts int64) []logRecord {
	t.Helper()
	codecs := []compress.Codec{compress.None, compress.None, compress.LZ4, compress.Zstd, compress.Gzip, compress.Snappy}
	var all []logRecord
	for i := 0; i < n; i++ {
		var kvs [][2]string
		for j := 0; j < 1+rng.IntN(4); j++ {
			k := fmt.Sprintf("k%d", rng.IntN(keys))
			v := fmt.Sprintf("v%d-%d", i, j)
			if rng.IntN(10) == 0 {
				v = "<nil>"
			}
			kvs = append(kvs, [2]string{k, v})
		}
		res := e.mustAppend(keyedBatch(ts, codecs[rng.IntN(len(codecs))], kvs...))
		for j, kv := range kvs {
			all = append(all, logRecord{res.BaseOffset + int64(j), kv[0], kv[1], kv[1] == "<nil>"})
			if kv[1] == "<nil>" {
				all[len(all)-1].value = ""
			}
		}
	}
	syncWait(t, e.log)
	syncWait(t, e.log) // the seal of the last rolled segment
	return all
}

func TestCompactKeepsLatestPerKey(t *testing.T) {
	e := newTestEnv(t, compactConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	all := fill(t, e, 400, 30, rng, now.UnixMilli())
	end := e.log.EndOffset()
	segsBefore := len(segmentFiles(t, e.dir))
	e.log.mu.RLock()
	activeBase := e.log.segs[len(e.log.segs)-1].base
	e.log.mu.RUnlock()

	st, err := e.log.Compact(now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Segments == 0 || st.RecordsPruned == 0 || st.BytesAfter >= st.BytesBefore {
		t.Fatalf("compaction did nothing: %+v", st)
	}
	// The cleanable range is every record before the active segment;
	// tombstones are young, so they stay.
	var cleanable, active []logRecord
	for _, r := range all {
		if r.offset < activeBase {
			cleanable = append(cleanable, r)
		} else {
			active = append(active, r)
		}
	}
	want := append(latest(cleanable, true), active...)
	got := readRecords(t, e.log)
	sameRecords(t, "after compaction", got, want)
	if e.log.EndOffset() != end || e.log.StartOffset() != 0 {
		t.Fatalf("offsets moved: start %d end %d, want 0 and %d", e.log.StartOffset(), e.log.EndOffset(), end)
	}
	// Segments are grouped by their size before cleaning, as Kafka does:
	// full ones are cleaned one by one, and merge in a later pass.
	if n := len(segmentFiles(t, e.dir)); n != segsBefore {
		t.Fatalf("%d segments after compaction, %d before", n, segsBefore)
	}

	// A second pass has nothing new to do.
	if st, err := e.log.Compact(now); err != nil || st.Segments != 0 {
		t.Fatalf("second pass: %+v %v", st, err)
	}
	// More dirty data: the next pass merges the cleaned segments, which
	// are now small enough to share one.
	all = append(all, fill(t, e, 100, 30, rng, now.UnixMilli())...)
	segsBefore = len(segmentFiles(t, e.dir))
	e.log.mu.RLock()
	activeBase = e.log.segs[len(e.log.segs)-1].base
	e.log.mu.RUnlock()
	if st, err := e.log.Compact(now); err != nil || st.Segments == 0 {
		t.Fatalf("third pass: %+v %v", st, err)
	}
	if n := len(segmentFiles(t, e.dir)); n >= segsBefore {
		t.Fatalf("%d segments after the third pass, %d before: nothing merged", n, segsBefore)
	}
	cleanable, active = nil, nil
	for _, r := range all {
		if r.offset < activeBase {
			cleanable = append(cleanable, r)
		} else {
			active = append(active, r)
		}
	}
	want = append(latest(cleanable, true), active...)
	sameRecords(t, "after the third pass", readRecords(t, e.log), want)
	end = e.log.EndOffset()
	// Appends go on at the end; reopening (clean or not) reads the same.
	res := e.mustAppend(keyedBatch(now.UnixMilli(), 0, [2]string{"k1", "after"}))
	if res.BaseOffset != end {
		t.Fatalf("append at %d, want %d", res.BaseOffset, end)
	}
	want = append(want, logRecord{end, "k1", "after", false})
	syncWait(t, e.log)
	for _, clean := range []bool{true, false} {
		e.reopen(clean)
		sameRecords(t, fmt.Sprintf("after reopen (clean=%v)", clean), readRecords(t, e.log), want)
	}
	// Reads by offset land on the next record when theirs was compacted.
	for _, off := range []int64{0, 1, end / 2, end - 1} {
		sl, err := e.log.Read(off, e.log.EndOffset(), 1)
		if err != nil || sl.Len == 0 || sl.NextOffset <= off {
			t.Fatalf("read at %d: %+v %v", off, sl, err)
		}
		sl.Release()
	}
}

func TestCompactRemovesTombstonesAfterDeleteRetention(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 60_000
	e := newTestEnv(t, cfg)
	now := time.Now()
	old := now.Add(-time.Hour).UnixMilli()
	// Old writes and deletes of a..t, then enough young records to roll.
	for i := 0; i < 20; i++ {
		k := string(rune('a' + i))
		e.mustAppend(keyedBatch(old, 0, [2]string{k, "v1"}, [2]string{k, "v2"}))
		e.mustAppend(keyedBatch(old, 0, [2]string{k, "<nil>"}))
	}
	young := now.UnixMilli()
	e.mustAppend(keyedBatch(young, 0, [2]string{"z", "<nil>"}))
	for i := 0; i < 40; i++ {
		e.mustAppend(keyedBatch(young, 0, [2]string{fmt.Sprintf("y%d", i%5), "some value that takes room"}))
	}
	syncWait(t, e.log)
	syncWait(t, e.log)
	if _, err := e.log.Compact(now); err != nil {
		t.Fatal(err)
	}
	for _, r := range readRecords(t, e.log) {
		if r.key >= "a" && r.key <= "t" && len(r.key) == 1 {
			t.Fatalf("expired tombstone or deleted value kept: %+v", r)
		}
	}
	var zSeen bool
	for _, r := range readRecords(t, e.log) {
		zSeen = zSeen || (r.key == "z" && r.tombstone)
	}
	if !zSeen {
		t.Fatal("a young tombstone was removed before delete.retention.ms")
	}
	// Once its retention has passed, the next pass removes it even with
	// nothing new to clean.
	if _, err := e.log.Compact(now.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, r := range readRecords(t, e.log) {
		if r.key == "z" {
			t.Fatalf("tombstone of z kept after delete.retention.ms: %+v", r)
		}
	}
}

// Compressed batches keep their codec when rebuilt.
func TestCompactRecompressesWithTheBatchCodec(t *testing.T) {
	e := newTestEnv(t, compactConfig())
	now := time.Now().UnixMilli()
	for i := 0; i < 60; i++ {
		e.mustAppend(keyedBatch(now, compress.LZ4, [2]string{"a", fmt.Sprint(i)}, [2]string{fmt.Sprintf("u%d", i), "unique"}))
	}
	syncWait(t, e.log)
	syncWait(t, e.log)
	if _, err := e.log.Compact(time.Now()); err != nil {
		t.Fatal(err)
	}
	rebuilt := 0
	for _, b := range readBatches(t, e.log, 0, e.log.EndOffset(), 1<<20) {
		h, _ := ParseBatchHeader(b)
		if h.NumRecords == 1 {
			rebuilt++
			if h.Compression() != int8(compress.LZ4) {
				t.Fatalf("rebuilt batch at %d has codec %d, want lz4", h.BaseOffset, h.Compression())
			}
		}
	}
	if rebuilt == 0 {
		t.Fatal("no batch was rebuilt")
	}
}

// Readers holding a slice of a segment keep reading it while compaction
// replaces the file.
func TestCompactWhileReading(t *testing.T) {
	e := newTestEnv(t, compactConfig())
	rng := rand.New(rand.NewPCG(3, 4))
	fill(t, e, 200, 5, rng, time.Now().UnixMilli())
	sl, err := e.log.Read(0, e.log.EndOffset(), 1<<20)
	if err != nil || sl.Len == 0 {
		t.Fatalf("read: %+v %v", sl, err)
	}
	before := make([]byte, sl.Len)
	sl.ReadAt(before, 0)
	if _, err := e.log.Compact(time.Now()); err != nil {
		t.Fatal(err)
	}
	after := make([]byte, sl.Len)
	if _, err := sl.ReadAt(after, 0); err != nil {
		t.Fatalf("read of the old file after compaction: %v", err)
	}
	sl.Release()
	if !bytes.Equal(before, after) {
		t.Fatal("a held slice changed under its reader")
	}
}

// A crash in the middle of a swap leaves either the old segments and stray
// *.cleaned files, or the cleaned segment without indexes plus old
// segments it covers; both open to the same records.
func TestCompactCrashLeftovers(t *testing.T) {
	e := newTestEnv(t, compactConfig())
	rng := rand.New(rand.NewPCG(5, 6))
	fill(t, e, 300, 20, rng, time.Now().UnixMilli())
	before := readRecords(t, e.log)
	segs := segmentFiles(t, e.dir)

	// Stray cleaned files from a pass that never swapped.
	stray := filepath.Join(e.dir, filepath.Base(segs[0])+cleanedSuffix)
	os.WriteFile(stray, []byte("half a segment"), 0o644)
	e.reopen(false)
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("stray cleaned file kept: %v", err)
	}
	sameRecords(t, "with a stray cleaned file", readRecords(t, e.log), before)

	// Compact with room to merge every segment into the first, then put
	// back a covered segment and drop the indexes, as a crash right after
	// the rename would leave them.
	covered, _ := os.ReadFile(segs[1])
	coveredIdx, _ := os.ReadFile(segs[1][:len(segs[1])-len(".log")] + ".index")
	cfg := e.log.Config()
	cfg.SegmentBytes = 1 << 20
	e.log.SetConfig(cfg)
	if _, err := e.log.Compact(time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, e.dir)); n != 2 {
		t.Fatalf("%d segments after a merging pass, want the cleaned one and the active one", n)
	}
	after := readRecords(t, e.log)
	if len(after) >= len(before) {
		t.Fatal("compaction removed nothing")
	}
	e.shutdown(false)
	os.WriteFile(segs[1], covered, 0o644)
	os.WriteFile(segs[1][:len(segs[1])-len(".log")]+".index", coveredIdx, 0o644)
	base := segs[0][:len(segs[0])-len(".log")]
	os.Remove(base + ".index")
	os.Remove(base + ".timeindex")
	e.open(false)
	sameRecords(t, "after a crash mid-swap", readRecords(t, e.log), after)
	if _, err := os.Stat(segs[1]); !os.IsNotExist(err) {
		t.Fatalf("covered segment kept: %v", err)
	}
}

func TestCompactOnlyWhenConfigured(t *testing.T) {
	cfg := compactConfig()
	cfg.Compact, cfg.Delete = false, true
	e := newTestEnv(t, cfg)
	all := fill(t, e, 200, 5, rand.New(rand.NewPCG(7, 8)), time.Now().UnixMilli())
	if st, err := e.log.Compact(time.Now()); err != nil || st.Segments != 0 {
		t.Fatalf("compacted a delete-only log: %+v %v", st, err)
	}
	if got := readRecords(t, e.log); len(got) != len(all) {
		t.Fatalf("%d records, want %d", len(got), len(all))
	}
	// And retention leaves compact-only logs alone.
	cfg = compactConfig()
	cfg.RetentionMs = 1
	e2 := newTestEnv(t, cfg)
	fill(t, e2, 200, 5, rand.New(rand.NewPCG(7, 8)), time.Now().Add(-time.Hour).UnixMilli())
	if n := e2.log.enforceRetention(time.Now()); n != 0 {
		t.Fatalf("retention deleted %d segments of a compact-only log", n)
	}
}
