package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stall blocks the disk writer (or, with sync, the syncer) until release is
// called, by queueing a barrier whose completion waits.
func stall(t testing.TB, e *testEnv, sync bool) (release func()) {
	t.Helper()
	started, ch := make(chan struct{}), make(chan struct{})
	e.log.mu.Lock()
	e.disk.enqueue(&op{kind: opBarrier, log: e.log, sync: sync, done: func(error) { close(started); <-ch }})
	e.log.mu.Unlock()
	<-started
	return func() { close(ch) }
}

// appendAsync appends without waiting and returns the completion channel.
func appendAsync(t testing.TB, l *Log, b []byte, sync bool) chan error {
	t.Helper()
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if _, err := l.Append(b, &h, sync, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	return done
}

func waitAll(t testing.TB, chs ...chan error) {
	t.Helper()
	for _, ch := range chs {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("append never completed")
		}
	}
}

func segmentBases(t testing.TB, dir string) []int64 {
	t.Helper()
	var bases []int64
	for _, s := range segmentFiles(t, dir) {
		b, ok := parseSegmentName(filepath.Base(s))
		if !ok {
			t.Fatalf("bad segment name %s", s)
		}
		bases = append(bases, b)
	}
	return bases
}

func TestRetentionMs(t *testing.T) {
	cfg := testConfig()
	batchSize := int64(len(plainBatch(2, 50, 0).encode()))
	cfg.SegmentBytes = 3 * batchSize
	cfg.RetentionMs = 3_600_000
	e := newTestEnv(t, cfg)
	now := time.Now()
	old := now.Add(-2 * time.Hour).UnixMilli()
	for range 9 { // three full old segments
		e.mustAppend(plainBatch(2, 50, old).encode())
	}
	e.mustAppend(plainBatch(2, 50, old).encode())
	e.mustAppend(plainBatch(2, 50, now.UnixMilli()).encode()) // segment 3 has a new record
	for range 4 {
		e.mustAppend(plainBatch(2, 50, now.UnixMilli()).encode())
	}
	syncWait(t, e.log)
	if n := e.log.enforceRetention(now); n != 3 {
		t.Fatalf("deleted %d segments, want 3", n)
	}
	if got, want := segmentBases(t, e.dir), []int64{18, 24}; !reflect2(got, want) {
		t.Fatalf("segments %v, want %v", got, want)
	}
	for _, ext := range []string{".index", ".timeindex", ".log"} {
		if _, err := os.Stat(segmentPath(e.dir, 0) + ext); !os.IsNotExist(err) {
			t.Fatalf("deleted segment's %s remains: %v", ext, err)
		}
	}
	if e.log.StartOffset() != 18 {
		t.Fatalf("log start offset %d, want 18", e.log.StartOffset())
	}
	for _, off := range []int64{0, 17} {
		if _, err := e.log.Read(off, e.log.EndOffset(), 1000); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) below the start: %v", off, err)
		}
	}
	checkLog(t, e.log)
	if res := e.mustAppend(plainBatch(1, 1, now.UnixMilli()).encode()); res.LogStartOffset != 18 {
		t.Fatalf("append reports log start offset %d", res.LogStartOffset)
	}
	if _, _, found, _ := e.log.OffsetForTime(0); !found {
		t.Fatal("OffsetForTime finds nothing after retention")
	}
	if n := e.log.enforceRetention(now); n != 0 {
		t.Fatalf("second pass deleted %d", n)
	}
	for _, clean := range []bool{true, false} {
		e.reopen(clean)
		if e.log.StartOffset() != 18 {
			t.Fatalf("clean=%v: start offset %d after reopen", clean, e.log.StartOffset())
		}
		checkLog(t, e.log)
	}
}

func reflect2(a, b []int64) bool {
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

func TestRetentionRollsExpiredActive(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	cfg.RetentionMs = 60_000
	e := newTestEnv(t, cfg)
	old := time.Now().Add(-time.Hour).UnixMilli()
	e.mustAppend(pidBatch(3, old, 5, 0, 0).encode())
	for range 10 {
		e.mustAppend(plainBatch(2, 100, old).encode())
	}
	end := e.log.EndOffset()
	n := len(segmentFiles(t, e.dir))
	if got := e.log.enforceRetention(time.Now()); got != n {
		t.Fatalf("deleted %d of %d segments", got, n)
	}
	if e.log.StartOffset() != end || e.log.EndOffset() != end {
		t.Fatalf("log is [%d, %d), want empty at %d", e.log.StartOffset(), e.log.EndOffset(), end)
	}
	if got := segmentBases(t, e.dir); !reflect2(got, []int64{end}) {
		t.Fatalf("segments %v, want one at %d", got, end)
	}
	if sl, err := e.log.Read(end, end, 100); err != nil || sl.Len != 0 {
		t.Fatalf("Read at end of an empty log: %+v %v", sl, err)
	}
	if _, _, found, err := e.log.MaxTimestamp(); found || err != nil {
		t.Fatalf("MaxTimestamp of an empty log: %v %v", found, err)
	}
	// The producer's state outlives its batches, as in Kafka.
	res, err := e.append(pidBatch(3, old, 5, 0, 0).encode(), false)
	if err != nil || !res.Duplicate {
		t.Fatalf("retry after retention: %+v %v", res, err)
	}
	res = e.mustAppend(plainBatch(1, 1, time.Now().UnixMilli()).encode())
	if res.BaseOffset != end || res.LogStartOffset != end {
		t.Fatalf("append after retention: %+v", res)
	}
	for _, clean := range []bool{false, true} {
		e.reopen(clean)
		if e.log.StartOffset() != end || e.log.EndOffset() != end+1 {
			t.Fatalf("clean=%v: reopened as [%d, %d)", clean, e.log.StartOffset(), e.log.EndOffset())
		}
	}

	// An expired active segment that is alone and empty stays.
	e.log.enforceRetention(time.Now().Add(time.Hour))
	if e.log.StartOffset() != end+1 {
		t.Fatalf("start offset %d", e.log.StartOffset())
	}
	if n := e.log.enforceRetention(time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("deleted %d from an empty log", n)
	}
}

func TestRetentionBytes(t *testing.T) {
	cfg := testConfig()
	batchSize := int64(len(plainBatch(1, 100, 0).encode()))
	cfg.SegmentBytes = 2 * batchSize
	cfg.RetentionBytes = 5 * batchSize
	e := newTestEnv(t, cfg)
	for range 11 { // five full segments and one with a batch
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	// 11 batches, 5 allowed: whole segments go while what stays is still
	// at least retention.bytes, as in Kafka.
	if n := e.log.enforceRetention(time.Now()); n != 3 {
		t.Fatalf("deleted %d segments, want 3", n)
	}
	if got := segmentBases(t, e.dir); !reflect2(got, []int64{6, 8, 10}) {
		t.Fatalf("segments %v", got)
	}
	checkLog(t, e.log)
	// The active segment is never deleted for size.
	cfg.RetentionBytes = 0
	e.log.SetConfig(cfg)
	e.log.enforceRetention(time.Now())
	if got := segmentBases(t, e.dir); !reflect2(got, []int64{10}) {
		t.Fatalf("segments %v", got)
	}
}

func TestRetentionIgnoresMissingTimestamps(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 200
	cfg.RetentionMs = 1
	e := newTestEnv(t, cfg)
	for range 5 {
		e.mustAppend(plainBatch(1, 100, -1).encode())
	}
	if n := e.log.enforceRetention(time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("deleted %d segments without timestamps", n)
	}
}

// TestRetentionWithPendingWrites deletes a segment whose writes are still
// queued on the disk writer.
func TestRetentionWithPendingWrites(t *testing.T) {
	cfg := testConfig()
	batchSize := int64(len(plainBatch(1, 100, 0).encode()))
	cfg.SegmentBytes = 2 * batchSize
	cfg.RetentionBytes = 1
	e := newTestEnv(t, cfg)
	release := stall(t, e, false)
	var chs []chan error
	for range 3 { // two into segment 0, one rolls to segment 2
		chs = append(chs, appendAsync(t, e.log, plainBatch(1, 100, time.Now().UnixMilli()).encode(), false))
	}
	if n := e.log.enforceRetention(time.Now()); n != 1 {
		t.Fatalf("deleted %d segments", n)
	}
	release()
	waitAll(t, chs...)
	syncWait(t, e.log)
	if err := e.log.failure(); err != nil {
		t.Fatalf("log failed: %v", err)
	}
	e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	checkLog(t, e.log)
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		if _, err := os.Stat(segmentPath(e.dir, 0) + ext); !os.IsNotExist(err) {
			t.Fatalf("deleted segment's %s: %v", ext, err)
		}
	}
}

// TestRetentionWithPendingSeal deletes a rolled segment before the syncer
// has fsynced it and written its indexes.
func TestRetentionWithPendingSeal(t *testing.T) {
	cfg := testConfig()
	batchSize := int64(len(plainBatch(1, 100, 0).encode()))
	cfg.SegmentBytes = 2 * batchSize
	cfg.RetentionBytes = 1
	e := newTestEnv(t, cfg)
	release := stall(t, e, true)
	for range 3 {
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	if n := e.log.enforceRetention(time.Now()); n != 1 {
		t.Fatalf("deleted %d segments", n)
	}
	release()
	syncWait(t, e.log)
	if err := e.log.failure(); err != nil {
		t.Fatalf("log failed: %v", err)
	}
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		if _, err := os.Stat(segmentPath(e.dir, 0) + ext); !os.IsNotExist(err) {
			t.Fatalf("deleted segment's %s: %v", ext, err)
		}
	}
	e.reopen(false)
	checkLog(t, e.log)
}

// TestRetentionKeepsOpenSlices checks that a reader holding a slice of a
// deleted segment can still read it.
func TestRetentionKeepsOpenSlices(t *testing.T) {
	cfg := testConfig()
	batchSize := int64(len(plainBatch(1, 100, 0).encode()))
	cfg.SegmentBytes = 2 * batchSize
	cfg.RetentionBytes = 1
	e := newTestEnv(t, cfg)
	var first []byte
	for i := range 3 {
		b := plainBatch(1, 100, time.Now().UnixMilli()).encode()
		if i == 0 {
			first = b
		}
		e.mustAppend(b)
	}
	sl, err := e.log.Read(0, e.log.EndOffset(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.log.enforceRetention(time.Now()); n != 1 {
		t.Fatalf("deleted %d segments", n)
	}
	buf := make([]byte, sl.Len)
	if _, err := sl.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, first) {
		t.Fatalf("read from a deleted segment: %v", err)
	}
	sl.Release()
	sl.Release() // twice is harmless
}

// TestConcurrentRetention runs appends, reads and retention passes at once.
func TestConcurrentRetention(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	cfg.RetentionBytes = 6000
	e := newTestEnv(t, cfg)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			e.log.enforceRetention(time.Now())
			time.Sleep(100 * time.Microsecond)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start, end := e.log.StartOffset(), e.log.EndOffset()
			for off := start; off < end; {
				sl, err := e.log.Read(off, end, 3000)
				if errors.Is(err, ErrOffsetOutOfRange) {
					break // retention overtook us
				}
				if err != nil {
					t.Error(err)
					return
				}
				if sl.Len == 0 {
					break
				}
				buf := make([]byte, sl.Len)
				if _, err := sl.ReadAt(buf, 0); err != nil {
					t.Error(err)
				}
				sl.Release()
				if h, err := ValidateBatch(buf[:min(len(buf), int(binary.BigEndian.Uint32(buf[8:]))+12)]); err != nil || h.BaseOffset != sl.FirstOffset {
					t.Errorf("read at %d: %v", off, err)
					return
				}
				off = sl.NextOffset
			}
			e.log.OffsetForTime(0)
			e.log.MaxTimestamp()
		}
	}()
	var chs []chan error
	for i := range 400 {
		chs = append(chs, appendAsync(t, e.log, plainBatch(1+i%3, 100, time.Now().UnixMilli()).encode(), false))
		if i%50 == 0 {
			waitAll(t, chs...)
			chs = chs[:0]
		}
	}
	waitAll(t, chs...)
	close(stop)
	wg.Wait()
	if err := e.log.failure(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.log)
	e.reopen(false)
	checkLog(t, e.log)
}

// TestRetentionKeepsAboveBound: retention deletes only segments wholly
// below the bound (the high watermark, as Kafka's deletableSegments), and
// the rest once the bound passes them.
func TestRetentionKeepsAboveBound(t *testing.T) {
	cfg := testConfig()
	batchSize := int64(len(plainBatch(1, 100, 0).encode()))
	cfg.SegmentBytes = 2 * batchSize
	cfg.RetentionBytes = batchSize
	e := newTestEnv(t, cfg)
	for range 9 { // segments at 0, 2, 4, 6 and 8
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	var hw atomic.Int64
	hw.Store(5)
	e.log.SetRetentionBound(hw.Load)
	if n := e.log.enforceRetention(time.Now()); n != 2 {
		t.Fatalf("deleted %d segments under a bound of 5, want 2 (those below 4)", n)
	}
	if got := segmentBases(t, e.dir); !reflect2(got, []int64{4, 6, 8}) {
		t.Fatalf("segments %v", got)
	}
	hw.Store(9)
	if n := e.log.enforceRetention(time.Now()); n != 2 {
		t.Fatalf("deleted %d segments once the bound passed them, want 2", n)
	}
	if got := segmentBases(t, e.dir); !reflect2(got, []int64{8}) {
		t.Fatalf("segments %v", got)
	}
	checkLog(t, e.log)
}
