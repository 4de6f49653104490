package segment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"samsa/segment/compress"
)

// appendMixed appends n batches of varying size, some from idempotent
// producers, and returns the stored bytes of each.
func appendMixed(t testing.TB, e *testEnv, n int, rng *rand.Rand) [][]byte {
	t.Helper()
	seqs := map[int64]int32{}
	var out [][]byte
	for i := range n {
		records := 1 + rng.IntN(20)
		b := plainBatch(records, rng.IntN(200), 1_000_000+int64(i)*10)
		if pid := int64(rng.IntN(4)) - 1; pid >= 0 {
			b.ProducerID, b.Epoch, b.Seq = pid, 0, seqs[pid]
			seqs[pid] += int32(records)
		}
		raw := b.encode()
		res := e.mustAppend(raw)
		if res.Duplicate {
			t.Fatalf("batch %d reported as duplicate", i)
		}
		out = append(out, raw)
	}
	return out
}

func TestAppendAssignsOffsets(t *testing.T) {
	e := newTestEnv(t, testConfig())
	next := int64(0)
	for i := range 50 {
		b := plainBatch(1+i%7, 30, 1000).encode()
		res := e.mustAppend(b)
		if res.BaseOffset != next || res.LogAppendTime != -1 || res.LogStartOffset != 0 {
			t.Fatalf("append %d: %+v, want base offset %d", i, res, next)
		}
		h, _ := ParseBatchHeader(b)
		if h.BaseOffset != next {
			t.Fatalf("batch header not rewritten: base %d", h.BaseOffset)
		}
		next += int64(1 + i%7)
		if e.log.EndOffset() != next {
			t.Fatalf("end offset %d, want %d", e.log.EndOffset(), next)
		}
	}
}

func TestReadReturnsWholeBatches(t *testing.T) {
	e := newTestEnv(t, testConfig())
	batches := appendMixed(t, e, 60, rand.New(rand.NewPCG(1, 2)))
	got := checkLog(t, e.log)
	if len(got) != len(batches) {
		t.Fatalf("read %d batches, appended %d", len(got), len(batches))
	}
	for i := range got {
		if !bytes.Equal(got[i], batches[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	// Every offset finds the batch holding it.
	for i, b := range batches {
		h, _ := ParseBatchHeader(b)
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			sl, err := e.log.Read(off, e.log.EndOffset(), 1)
			if err != nil {
				t.Fatal(err)
			}
			if sl.FirstOffset != h.BaseOffset || sl.Len != h.Size() || sl.NextOffset != h.LastOffset()+1 {
				t.Fatalf("Read(%d) in batch %d: %+v", off, i, sl)
			}
			buf := make([]byte, sl.Len)
			if _, err := sl.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, b) {
				t.Fatalf("Read(%d): bytes differ (err %v)", off, err)
			}
			if sl.File() == nil {
				t.Fatal("slice has no file")
			}
			sl.Release()
		}
	}
}

func TestReadLimits(t *testing.T) {
	e := newTestEnv(t, testConfig())
	var sizes, bases []int64
	for i := range 10 {
		b := plainBatch(3, 50+i, 1000).encode()
		res := e.mustAppend(b)
		sizes = append(sizes, int64(len(b)))
		bases = append(bases, res.BaseOffset)
	}
	end := e.log.EndOffset()
	f := func(name string, offset, upTo, maxBytes int64, wantFirst, wantBatches int) {
		t.Helper()
		sl, err := e.log.Read(offset, upTo, maxBytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer sl.Release()
		if wantBatches == 0 {
			if sl.Len != 0 {
				t.Fatalf("%s: %d bytes, want none", name, sl.Len)
			}
			return
		}
		var want int64
		for _, s := range sizes[wantFirst : wantFirst+wantBatches] {
			want += s
		}
		if sl.Len != want || sl.FirstOffset != bases[wantFirst] {
			t.Fatalf("%s: got %d bytes from %d, want %d batches (%d bytes) from %d", name, sl.Len, sl.FirstOffset, wantBatches, want, bases[wantFirst])
		}
		if next := bases[wantFirst] + int64(wantBatches)*3; sl.NextOffset != next {
			t.Fatalf("%s: next offset %d, want %d", name, sl.NextOffset, next)
		}
	}
	f("all", 0, end, 1<<20, 0, 10)
	f("maxBytes 0 still one batch", 0, end, 0, 0, 1)
	f("maxBytes 1 still one batch", 4, end, 1, 1, 1)
	f("maxBytes exactly three", 3, end, sizes[1]+sizes[2]+sizes[3], 1, 3)
	f("maxBytes just under three", 3, end, sizes[1]+sizes[2]+sizes[3]-1, 1, 2)
	f("upTo cuts", 0, bases[4], 1<<20, 0, 4)
	f("upTo inside a batch keeps it", 0, bases[4]+1, 1<<20, 0, 5)
	f("upTo at offset", bases[4], bases[4], 1<<20, 0, 0)
	f("upTo beyond end", 27, end+100, 1<<20, 9, 1)
	f("at end", end, end, 1<<20, 0, 0)

	for _, off := range []int64{-1, end + 1, 1 << 50} {
		if _, err := e.log.Read(off, end, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d): %v, want out of range", off, err)
		}
	}
}

func TestReadAcrossSegments(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	e := newTestEnv(t, cfg)
	batches := appendMixed(t, e, 80, rand.New(rand.NewPCG(3, 4)))
	if n := len(segmentFiles(t, e.dir)); n < 5 {
		t.Fatalf("%d segments, want several", n)
	}
	got := readBatches(t, e.log, 0, e.log.EndOffset(), 1<<20)
	if len(got) != len(batches) {
		t.Fatalf("read %d batches, want %d", len(got), len(batches))
	}
	for i := range got {
		if !bytes.Equal(got[i], batches[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	// A slice never crosses a segment file.
	for off := int64(0); off < e.log.EndOffset(); {
		sl, err := e.log.Read(off, e.log.EndOffset(), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if sl.Pos+sl.Len > fileSizeOf(t, sl.File().Name()) {
			t.Fatalf("slice %+v overruns its file", sl)
		}
		sl.Release()
		off = sl.NextOffset
	}
}

func TestSegmentRollBytes(t *testing.T) {
	cfg := testConfig()
	one := int64(len(plainBatch(2, 100, 0).encode()))
	cfg.SegmentBytes = 3 * one
	e := newTestEnv(t, cfg)
	for range 10 {
		e.mustAppend(plainBatch(2, 100, 1000).encode())
	}
	segs := segmentFiles(t, e.dir)
	var names []string
	for _, s := range segs {
		names = append(names, filepath.Base(s))
	}
	want := []string{"00000000000000000000.log", "00000000000000000006.log", "00000000000000000012.log", "00000000000000000018.log"}
	if !equalStrings(names, want) {
		t.Fatalf("segments %q, want %q", names, want)
	}
	for _, s := range segs[:3] {
		if fileSizeOf(t, s) != 3*one {
			t.Fatalf("%s has %d bytes, want %d", s, fileSizeOf(t, s), 3*one)
		}
	}
	// Sealed segments get their index files once synced.
	syncWait(t, e.log)
	for _, s := range segs[:3] {
		base := s[:len(s)-len(".log")]
		if _, err := os.Stat(base + ".index"); err != nil {
			t.Fatalf("sealed segment has no offset index: %v", err)
		}
		if _, err := os.Stat(base + ".timeindex"); err != nil {
			t.Fatalf("sealed segment has no time index: %v", err)
		}
	}
	// A batch bigger than a segment still goes in (alone).
	big := plainBatch(1, int(4*one), 1000).encode()
	res := e.mustAppend(big)
	if res.BaseOffset != 20 {
		t.Fatalf("big batch at %d", res.BaseOffset)
	}
	checkLog(t, e.log)
}

func TestSegmentRollMs(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentMs = 30
	e := newTestEnv(t, cfg)
	e.mustAppend(plainBatch(1, 10, 1000).encode())
	e.mustAppend(plainBatch(1, 10, 1000).encode())
	if n := len(segmentFiles(t, e.dir)); n != 1 {
		t.Fatalf("%d segments before segment.ms", n)
	}
	time.Sleep(40 * time.Millisecond)
	e.mustAppend(plainBatch(1, 10, 1000).encode())
	if n := len(segmentFiles(t, e.dir)); n != 2 {
		t.Fatalf("%d segments after segment.ms, want 2", n)
	}
	checkLog(t, e.log)
}

// TestSegmentMsAfterRestart checks that reopening a log does not by itself
// make the next append roll a fresh segment.
func TestSegmentMsAfterRestart(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentMs = 3_600_000
	e := newTestEnv(t, cfg)
	now := time.Now().UnixMilli()
	e.mustAppend(plainBatch(1, 10, now).encode())
	for _, clean := range []bool{true, false} {
		e.reopen(clean)
		e.mustAppend(plainBatch(1, 10, now).encode())
		if n := len(segmentFiles(t, e.dir)); n != 1 {
			t.Fatalf("clean=%v: %d segments after reopen, want 1", clean, n)
		}
	}
}

func syncWait(t testing.TB, l *Log) {
	t.Helper()
	done := make(chan error, 1)
	l.Sync(func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sync never completed")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// timedRecord is one appended record with its final offset and timestamp.
type timedRecord struct {
	offset, ts int64
	control    bool
}

// appendTimed appends batches with scattered, non-monotonic timestamps in
// every codec and returns every record.
func appendTimed(t testing.TB, e *testEnv, n int, rng *rand.Rand) []timedRecord {
	t.Helper()
	codecs := []compress.Codec{compress.None, compress.Gzip, compress.Snappy, compress.LZ4, compress.Zstd}
	var recs []timedRecord
	for i := range n {
		b := plainBatch(1+rng.IntN(8), 20, 1_000_000+int64(rng.IntN(5000)))
		for j := 1; j < len(b.Records); j++ {
			b.Records[j].TsDelta = int64(rng.IntN(400)) - 100
		}
		b.Codec = codecs[i%len(codecs)]
		control := i%13 == 12
		if control {
			b.Records = b.Records[:1]
			b.Attrs = AttrControl | AttrTransactional
		}
		res := e.mustAppend(b.encode())
		for j, r := range b.Records {
			recs = append(recs, timedRecord{res.BaseOffset + int64(j), b.FirstTs + r.TsDelta, control})
		}
	}
	return recs
}

func TestOffsetForTime(t *testing.T) {
	for _, segBytes := range []int64{1 << 30, 1500} {
		cfg := testConfig()
		cfg.SegmentBytes = segBytes
		cfg.IndexIntervalBytes = 200
		e := newTestEnv(t, cfg)
		rng := rand.New(rand.NewPCG(5, uint64(segBytes)))
		recs := appendTimed(t, e, 120, rng)
		check := func(when string) {
			t.Helper()
			targets := []int64{0, 999_000, 1_000_000, 1_006_000, 1_010_000}
			for _, r := range recs {
				targets = append(targets, r.ts-1, r.ts, r.ts+1)
			}
			for _, target := range targets {
				var want *timedRecord
				for i := range recs {
					if !recs[i].control && recs[i].ts >= target {
						want = &recs[i]
						break
					}
				}
				off, ts, found, err := e.log.OffsetForTime(target)
				if err != nil {
					t.Fatalf("%s: OffsetForTime(%d): %v", when, target, err)
				}
				if want == nil {
					if found {
						t.Fatalf("%s: OffsetForTime(%d) = %d@%d, want none", when, target, off, ts)
					}
					continue
				}
				if !found || off != want.offset || ts != want.ts {
					t.Fatalf("%s: OffsetForTime(%d) = %d@%d found=%v, want %d@%d", when, target, off, ts, found, want.offset, want.ts)
				}
			}
		}
		check("live")
		e.reopen(true)
		check("after clean reopen")
		e.reopen(false)
		check("after crash")
	}
}

func TestMaxTimestamp(t *testing.T) {
	e := newTestEnv(t, testConfig())
	if _, _, found, err := e.log.MaxTimestamp(); found || err != nil {
		t.Fatalf("empty log: found=%v err=%v", found, err)
	}
	cfg := testConfig()
	cfg.SegmentBytes = 1500
	e.log.SetConfig(cfg)
	recs := appendTimed(t, e, 100, rand.New(rand.NewPCG(7, 8)))
	check := func(when string) {
		t.Helper()
		var want timedRecord
		want.ts = -1
		for _, r := range recs {
			if r.ts > want.ts {
				want = r
			}
		}
		off, ts, found, err := e.log.MaxTimestamp()
		if err != nil || !found || off != want.offset || ts != want.ts {
			t.Fatalf("%s: MaxTimestamp = %d@%d found=%v err=%v, want %d@%d", when, off, ts, found, err, want.offset, want.ts)
		}
	}
	check("live")
	// A later batch with the same max timestamp does not win.
	maxTs := int64(0)
	for _, r := range recs {
		maxTs = max(maxTs, r.ts)
	}
	tie := plainBatch(2, 5, maxTs)
	tie.Records[1].TsDelta = 0
	e.mustAppend(tie.encode())
	check("after a tie")
	e.reopen(true)
	check("after clean reopen")
	e.reopen(false)
	check("after crash")
}

func TestLogAppendTime(t *testing.T) {
	cfg := testConfig()
	cfg.LogAppendTime = true
	e := newTestEnv(t, cfg)
	before := time.Now().UnixMilli()
	b := plainBatch(3, 10, 5) // CreateTime far in the past
	b.Codec = compress.Snappy
	raw := b.encode()
	res := e.mustAppend(raw)
	after := time.Now().UnixMilli()
	if res.LogAppendTime < before || res.LogAppendTime > after {
		t.Fatalf("log append time %d not in [%d, %d]", res.LogAppendTime, before, after)
	}
	got := checkLog(t, e.log)
	h, _ := ParseBatchHeader(got[0])
	if h.MaxTimestamp != res.LogAppendTime || h.Attributes&AttrLogAppendTime == 0 {
		t.Fatalf("stored header %+v", h)
	}
	// Every record now has the append time, so the first record matches.
	off, ts, found, err := e.log.OffsetForTime(res.LogAppendTime)
	if err != nil || !found || off != 0 || ts != res.LogAppendTime {
		t.Fatalf("OffsetForTime = %d@%d %v %v", off, ts, found, err)
	}
	if _, _, found, _ := e.log.OffsetForTime(res.LogAppendTime + 1); found {
		t.Fatal("OffsetForTime after the append time found a record")
	}
	// Kafka reports the earliest record holding the max timestamp.
	off, ts, found, err = e.log.MaxTimestamp()
	if err != nil || !found || off != 0 || ts != res.LogAppendTime {
		t.Fatalf("MaxTimestamp = %d@%d %v %v, want 0@%d", off, ts, found, err, res.LogAppendTime)
	}
}

func TestAppendRejects(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes = 500
	cfg.TimestampBeforeMaxMs = 60_000
	cfg.TimestampAfterMaxMs = 60_000
	e := newTestEnv(t, cfg)
	now := time.Now().UnixMilli()
	f := func(name string, b testBatch, want error) {
		t.Helper()
		_, err := e.append(b.encode(), false)
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
	}
	f("too large", plainBatch(1, 600, now), ErrBatchTooLarge)
	f("too old", plainBatch(1, 10, now-120_000), ErrInvalidTimestamp)
	f("too new", plainBatch(1, 10, now+120_000), ErrInvalidTimestamp)
	if e.log.EndOffset() != 0 {
		t.Fatalf("rejected appends moved the end offset to %d", e.log.EndOffset())
	}
	f("ok", plainBatch(1, 10, now), nil)
	noTs := plainBatch(1, 10, -1) // no timestamp: not checked
	f("no timestamp", noTs, nil)
	ctl := plainBatch(1, 10, 5)
	ctl.Attrs = AttrControl
	f("control batches are not checked", ctl, nil)
}

func TestAppendAfterClose(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(plainBatch(1, 1, 1).encode())
	e.disk.Close()
	e.log.Close(true)
	b := plainBatch(1, 1, 1).encode()
	h, _ := ValidateBatch(b)
	if _, err := e.log.Append(b, &h, false, func(error) { t.Error("done called") }); !errors.Is(err, ErrLogClosed) {
		t.Fatalf("append after close: %v", err)
	}
	e.disk, e.log = nil, nil
}

func TestSyncAppend(t *testing.T) {
	e := newTestEnv(t, testConfig())
	for i := range 20 {
		b := plainBatch(2, 100, 1000).encode()
		h, _ := ValidateBatch(b)
		done := make(chan error, 1)
		var syncedAtDone int64
		_, err := e.log.Append(b, &h, i%2 == 0, func(err error) {
			syncedAtDone = e.log.synced.Load()
			done <- err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 && syncedAtDone < h.LastOffset()+1 {
			t.Fatalf("sync append %d completed with synced offset %d < %d", i, syncedAtDone, h.LastOffset()+1)
		}
	}
	syncWait(t, e.log)
	// Durable across a crash.
	e.reopen(false)
	if e.log.EndOffset() != 40 {
		t.Fatalf("end offset %d after crash", e.log.EndOffset())
	}
	checkLog(t, e.log)
}

func TestSyncNilDone(t *testing.T) {
	e := newTestEnv(t, testConfig())
	b := plainBatch(1, 1, 1).encode()
	h, _ := ValidateBatch(b)
	if _, err := e.log.Append(b, &h, true, nil); err != nil {
		t.Fatal(err)
	}
	e.log.Sync(nil)
	syncWait(t, e.log)
	if e.log.EndOffset() != 1 {
		t.Fatalf("end offset %d", e.log.EndOffset())
	}
}

func TestWatch(t *testing.T) {
	e := newTestEnv(t, testConfig())
	ch := make(chan struct{}, 1)
	e.log.Watch(ch)
	e.mustAppend(plainBatch(1, 1, 1).encode())
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher not signalled")
	}
	// Many appends, one pending signal: sends never block.
	for range 5 {
		e.mustAppend(plainBatch(1, 1, 1).encode())
	}
	<-ch
	e.log.Unwatch(ch)
	e.mustAppend(plainBatch(1, 1, 1).encode())
	select {
	case <-ch:
		t.Fatal("signalled after Unwatch")
	default:
	}
}

// TestWatchSeesData checks that a watcher woken by an append can read it.
func TestWatchSeesData(t *testing.T) {
	e := newTestEnv(t, testConfig())
	ch := make(chan struct{}, 1)
	e.log.Watch(ch)
	defer e.log.Unwatch(ch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 {
			b := plainBatch(1, 10, 1).encode()
			h, _ := ValidateBatch(b)
			if _, err := e.log.Append(b, &h, false, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := int64(0)
	for seen < 100 {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("stuck at %d", seen)
		}
		for _, b := range readBatches(t, e.log, seen, e.log.EndOffset(), 1<<20) {
			if _, err := ValidateBatch(b); err != nil {
				t.Fatal(err)
			}
			seen++
		}
	}
	wg.Wait()
}

func TestConcurrentAppendRead(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 10
	e := newTestEnv(t, cfg)
	const writers, perWriter = 4, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				b := pidBatch(1+i%5, 1000, int64(w), 0, 0)
				seq := int32(0)
				for j := range i {
					seq += int32(1 + j%5)
				}
				b.Seq = seq
				if _, err := appendWait(t, e.log, b.encode(), i%3 == 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	for range 3 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				end := e.log.EndOffset()
				for _, b := range readBatches(t, e.log, 0, end, 4096) {
					if _, err := ValidateBatch(b); err != nil {
						t.Error(err)
						return
					}
				}
				e.log.OffsetForTime(1002)
				e.log.MaxTimestamp()
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	batches := checkLog(t, e.log)
	if len(batches) != writers*perWriter {
		t.Fatalf("%d batches, want %d", len(batches), writers*perWriter)
	}
	e.reopen(false)
	if n := len(checkLog(t, e.log)); n != writers*perWriter {
		t.Fatalf("%d batches after crash", n)
	}
}

func TestEmptyLogReopen(t *testing.T) {
	e := newTestEnv(t, testConfig())
	for _, clean := range []bool{true, false, true} {
		e.reopen(clean)
		if e.log.StartOffset() != 0 || e.log.EndOffset() != 0 {
			t.Fatalf("clean=%v: empty log reopened as [%d, %d)", clean, e.log.StartOffset(), e.log.EndOffset())
		}
		if sl, err := e.log.Read(0, 0, 100); err != nil || sl.Len != 0 {
			t.Fatalf("Read of an empty log: %+v %v", sl, err)
		}
		if _, _, found, err := e.log.OffsetForTime(0); found || err != nil {
			t.Fatalf("OffsetForTime of an empty log: %v %v", found, err)
		}
	}
	if res := e.mustAppend(plainBatch(1, 1, 1).encode()); res.BaseOffset != 0 {
		t.Fatalf("first append at %d", res.BaseOffset)
	}
}

func TestFlushInterval(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	disk := NewDisk(filepath.Dir(dir), 5*time.Millisecond, nil, testLogger)
	defer disk.Close()
	l, err := OpenLog(dir, disk, testConfig(), false, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(false)
	if _, err := appendWait(t, l, plainBatch(1, 10, 1).encode(), false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		disk.syncMu.Lock()
		n := len(disk.dirty)
		disk.syncMu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background flush never ran")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteFailure checks that a failed write takes only its partition
// offline, with ErrStorage, and that a restart recovers it.
func TestWriteFailure(t *testing.T) {
	e := newTestEnv(t, testConfig())
	other, err := OpenLog(filepath.Join(filepath.Dir(e.dir), "other-0"), e.disk, testConfig(), false, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(false)
	e.mustAppend(plainBatch(1, 10, 1).encode())
	// Break the file under the log: put a read-only file on its fd, so
	// writes fail with EBADF while the fd number stays taken.
	seg := e.log.segs[0]
	saved, err := unix.Dup(int(seg.fp.Load().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := unix.Dup2(int(ro.Fd()), int(seg.fp.Load().Fd())); err != nil {
		t.Fatal(err)
	}
	restore := sync.OnceFunc(func() {
		unix.Dup2(saved, int(seg.fp.Load().Fd()))
		unix.Close(saved)
	})
	defer restore()
	_, err = e.append(plainBatch(1, 10, 1).encode(), false)
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("append to a broken file: %v, want ErrStorage", err)
	}
	if _, err := e.append(plainBatch(1, 10, 1).encode(), false); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after the failure: %v", err)
	}
	done := make(chan error, 1)
	e.log.Sync(func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrStorage) {
		t.Fatalf("sync of a failed log: %v", err)
	}
	if e.log.EndOffset() != 1 {
		t.Fatalf("end offset %d", e.log.EndOffset())
	}
	// The other partition on the disk is fine.
	if _, err := appendWait(t, other, plainBatch(1, 10, 1).encode(), true); err != nil {
		t.Fatal(err)
	}
	// A restart brings the partition back with what it had.
	restore()
	e.reopen(false)
	if e.log.EndOffset() != 1 {
		t.Fatalf("end offset %d after restart", e.log.EndOffset())
	}
	e.mustAppend(plainBatch(1, 10, 1).encode())
	checkLog(t, e.log)
}

// A follower that appends the leader's batches as they are ends with a
// byte-identical log, producer state included, and refuses a batch that
// does not continue it.
func TestAppendReplicaCopiesTheLeader(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 3000
	leader := newTestEnv(t, cfg)
	appendMixed(t, leader, 60, rand.New(rand.NewPCG(21, 22)))
	syncWait(t, leader.log)
	follower := newTestEnv(t, cfg)
	for _, b := range readBatches(t, leader.log, 0, leader.log.EndOffset(), 1<<20) {
		b = bytes.Clone(b)
		h, err := ParseBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		if err := follower.log.AppendReplica(b, &h, false, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if follower.log.EndOffset() != leader.log.EndOffset() {
		t.Fatalf("follower ends at %d, leader at %d", follower.log.EndOffset(), leader.log.EndOffset())
	}
	got := checkLog(t, follower.log)
	want := checkLog(t, leader.log)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	// A retry of a producer's last batch is a duplicate on the follower
	// too: it learned the producer state from the copied batches.
	retry := pidBatch(1, 1000, 77, 0, 0).encode()
	leader.mustAppend(retry)
	last := readBatches(t, leader.log, leader.log.EndOffset()-1, leader.log.EndOffset(), 1<<20)[0]
	h, _ := ParseBatchHeader(last)
	done := make(chan error, 1)
	if err := follower.log.AppendReplica(bytes.Clone(last), &h, false, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	<-done
	again := pidBatch(1, 1000, 77, 0, 0).encode()
	res, err := follower.append(again, false)
	if err != nil || !res.Duplicate {
		t.Fatalf("retry on the follower: %+v %v, want a duplicate", res, err)
	}
	h.BaseOffset += 5
	if err := follower.log.AppendReplica(last, &h, false, func(error) {}); !errors.Is(err, ErrReplicaOffset) {
		t.Fatalf("out of place batch: %v", err)
	}
}

// Epochs are recorded where they start and survive a reopen; TruncateTo
// cuts the log at a batch boundary, producer state and epochs included,
// and appends go on from there.
func TestEpochsAndTruncate(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	e := newTestEnv(t, cfg)
	appendMixed(t, e, 30, rand.New(rand.NewPCG(31, 32)))
	mid := e.log.EndOffset()
	e.log.SetLeaderEpoch(3)
	for i := 0; i < 30; i++ {
		e.mustAppend(plainBatch(1+i%4, 40, 1000).encode())
	}
	end := e.log.EndOffset()
	syncWait(t, e.log)
	check := func(when string) {
		if ep, off := e.log.EndOffsetForEpoch(0); ep != 0 || off != mid {
			t.Fatalf("%s: epoch 0 ends at %d (epoch %d), want %d", when, off, ep, mid)
		}
		if ep, off := e.log.EndOffsetForEpoch(2); ep != 0 || off != mid {
			t.Fatalf("%s: epoch 2 answered %d/%d, want epoch 0 ending at %d", when, ep, off, mid)
		}
		if ep, off := e.log.EndOffsetForEpoch(3); ep != 3 || off != e.log.EndOffset() {
			t.Fatalf("%s: epoch 3 answered %d/%d", when, ep, off)
		}
	}
	check("live")
	e.reopen(true)
	check("after a clean reopen")
	e.reopen(false)
	check("after a crash")
	before := readBatches(t, e.log, 0, mid, 1<<20)
	got, err := e.log.TruncateTo(mid)
	if err != nil || got != mid {
		t.Fatalf("truncate to %d: %d %v", mid, got, err)
	}
	if ep, off := e.log.EndOffsetForEpoch(0); ep != 0 || off != mid {
		t.Fatalf("after truncation epoch 0 answered %d/%d, want its end at %d", ep, off, mid)
	}
	if ep, off := e.log.EndOffsetForEpoch(3); ep != -1 || off != -1 {
		t.Fatalf("after truncation epoch 3 answered %d/%d, want -1/-1 (newer than any)", ep, off)
	}
	after := checkLog(t, e.log)
	if len(after) != len(before) {
		t.Fatalf("%d batches after truncation, want %d", len(after), len(before))
	}
	res := e.mustAppend(plainBatch(2, 10, 5).encode())
	if res.BaseOffset != mid {
		t.Fatalf("append after truncation at %d, want %d", res.BaseOffset, mid)
	}
	e.reopen(false)
	checkLog(t, e.log)
	if e.log.EndOffset() != mid+2 || end <= mid {
		t.Fatalf("end %d after reopen, want %d", e.log.EndOffset(), mid+2)
	}
}

// TestCopyingStartsWriteback: on a disk of a standby's copies each write
// starts the writeback of exactly the bytes it wrote, once its append has
// completed (the follower's next fetch does not wait for it), and nothing
// else changes: the append completes once written, without an fsync, and
// a Sync makes it durable. Off, writes leave the writeback to the kernel.
func TestCopyingStartsWriteback(t *testing.T) {
	type call struct{ off, n int64 }
	var (
		mu    sync.Mutex
		calls []call
		hold  = make(chan struct{}) // closed: writebacks go on
	)
	close(hold)
	orig := startWriteback
	startWriteback = func(fd int, off, n int64) error {
		mu.Lock()
		calls = append(calls, call{off, n})
		h := hold
		mu.Unlock()
		<-h
		return orig(fd, off, n)
	}
	t.Cleanup(func() { startWriteback = orig })
	taken := func() []call {
		mu.Lock()
		defer mu.Unlock()
		out := calls
		calls = nil
		return out
	}

	e := newTestEnv(t, testConfig())
	a := plainBatch(3, 100, 1000).encode()
	e.mustAppend(a)
	if c := taken(); len(c) != 0 {
		t.Fatalf("writeback started on a disk that is not copying: %v", c)
	}
	e.disk.SetCopying(true)
	mu.Lock()
	hold = make(chan struct{})
	mu.Unlock()
	release := sync.OnceFunc(func() { mu.Lock(); close(hold); mu.Unlock() })
	t.Cleanup(release) // before the env's: a failed append must not leave the writer held
	b := plainBatch(2, 200, 2000).encode()
	e.mustAppend(b) // completes while its writeback is held
	deadline := time.Now().Add(10 * time.Second)
	var c []call
	for len(c) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		c = taken()
	}
	release()
	if len(c) != 1 || c[0] != (call{int64(len(a)), int64(len(b))}) {
		t.Fatalf("writeback calls %v, want one of %d bytes at %d", c, len(b), len(a))
	}
	if got := e.log.SyncedOffset(); got != 0 {
		t.Fatalf("synced offset %d after appends that asked for no fsync", got)
	}
	done := make(chan error, 1)
	e.log.Sync(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, end := e.log.SyncedOffset(), e.log.EndOffset(); got != end {
		t.Fatalf("after Sync the log is synced below %d, ends at %d", got, end)
	}
	e.disk.SetCopying(false)
	e.mustAppend(plainBatch(1, 10, 3000).encode())
	if c := taken(); len(c) != 0 {
		t.Fatalf("writeback started after copying was turned off: %v", c)
	}
	checkLog(t, e.log)
}
