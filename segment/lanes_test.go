package segment

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSmallAppendPassesBulk holds the write of a bulk append and requires
// an acks=all append of a few records to another partition on the same
// disk to complete meanwhile: with one writer for all, it waited behind the
// bulk partitions' runs (p99 56 ms under a 200 MiB/s bulk load).
func TestSmallAppendPassesBulk(t *testing.T) {
	held := make(chan struct{}) // closed: the bulk write is held
	release := make(chan struct{})
	var once sync.Once
	beforeWrite = func(lane int, n int64) {
		if n >= bulkWrite {
			once.Do(func() { close(held); <-release })
		}
	}
	t.Cleanup(func() { beforeWrite = nil })
	logs := groupCommitLogs(t, 2)
	bulk, small := logs[0], logs[1]
	letGo := sync.OnceFunc(func() { close(release) })
	defer letGo() // before the logs close, if the test fails

	big := plainBatch(64, 4096, 1000).encode()
	if len(big) < bulkWrite {
		t.Fatalf("test batch of %d bytes is below bulkWrite", len(big))
	}
	bigDone := appendAsync(t, bulk, big, true)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the bulk append was never written")
	}
	if _, err := appendWait(t, small, plainBatch(2, 100, 2000).encode(), true); err != nil {
		t.Fatal(err)
	}
	if got := small.SyncedOffset(); got != 2 {
		t.Fatalf("small log synced to %d after its acks=all append, want 2", got)
	}
	select {
	case err := <-bigDone:
		t.Fatalf("the bulk append completed (%v) while its write was held", err)
	default:
	}
	if got := bulk.EndOffset(); got != 0 {
		t.Fatalf("bulk log readable to %d while its write was held", got)
	}
	letGo()
	waitAll(t, bigDone) // the bulk append completes once released
	if got := bulk.SyncedOffset(); got != 64 {
		t.Fatalf("bulk log synced to %d after its acks=all append, want 64", got)
	}
	if n := len(checkLog(t, bulk)); n != 1 {
		t.Fatalf("bulk log holds %d batches", n)
	}
	if n := len(checkLog(t, small)); n != 1 {
		t.Fatalf("small log holds %d batches", n)
	}
}

// TestLanesKeepEachLogInOrder appends batches of both lanes, with and
// without fsync and with Sync barriers between, to four logs at once, so
// that each log's ops keep moving between the lanes; every log must hold
// exactly its batches, in order, and be synced to its end. Sized: only
// the size rule (bulkWrite) picks the lane, which a log leaves whenever
// it has nothing in flight. Rated: small batches only, the logs turn to
// the bulk lane once their rate does (bulkRecent, lowered here so that
// a slow disk cannot keep them cold).
func TestLanesKeepEachLogInOrder(t *testing.T) {
	for _, sized := range []bool{true, false} {
		name := map[bool]string{true: "sized", false: "rated"}[sized]
		t.Run(name, func(t *testing.T) {
			was := bulkRecent
			t.Cleanup(func() { bulkRecent = was })
			if sized {
				bulkRecent = math.MaxInt64
			} else {
				// A request of 16 appends (136 KiB on average) turns a
				// log hot, however slow the disk makes the test.
				bulkRecent = 32 << 10
			}
			var used [numLanes]atomic.Int64
			beforeWrite = func(lane int, n int64) { used[lane].Add(1) }
			t.Cleanup(func() { beforeWrite = nil })
			logs := groupCommitLogs(t, 4)
			want := make([][][]byte, len(logs))
			errs := make([]error, len(logs))
			var wg sync.WaitGroup
			for i, l := range logs {
				wg.Go(func() { want[i], errs[i] = appendBothLanes(l, rand.New(rand.NewPCG(uint64(i), 1)), 300, sized) })
			}
			wg.Wait()
			for i, l := range logs {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				if s, e := l.SyncedOffset(), l.EndOffset(); s != e {
					t.Fatalf("%s: synced to %d after Sync, ends at %d", l.Dir(), s, e)
				}
				got := checkLog(t, l)
				if len(got) != len(want[i]) {
					t.Fatalf("%s: %d batches read, %d appended", l.Dir(), len(got), len(want[i]))
				}
				for j := range got {
					if !bytes.Equal(got[j], want[i][j]) {
						t.Fatalf("%s: batch %d differs from the one appended", l.Dir(), j)
					}
				}
			}
			if used[smallLane].Load() == 0 || used[bulkLane].Load() == 0 {
				t.Fatalf("writes per lane: small %d, bulk %d; want both used", used[smallLane].Load(), used[bulkLane].Load())
			}
		})
	}
}

// TestLaneRate is the rate rule: a log turns hot once it appended
// bulkRecent bytes within its current and previous rateWindow, and cools
// after two windows of less; a steady stream below it never turns hot,
// however it batches.
func TestLaneRate(t *testing.T) {
	var l Log
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	if l.noteRateLocked(bulkRecent-1, at(0)) {
		t.Fatal("hot below bulkRecent")
	}
	if !l.noteRateLocked(1, at(rateWindow/2)) {
		t.Fatal("not hot at bulkRecent within one window")
	}
	// The next window still counts the previous one's bytes.
	if !l.noteRateLocked(1, at(rateWindow+rateWindow/2)) {
		t.Fatal("cooled one window after bulkRecent")
	}
	// A window later, the previous one held a single byte.
	if l.noteRateLocked(1, at(2*rateWindow+rateWindow/2)) {
		t.Fatal("still hot two windows after bulkRecent")
	}
	// An appender that read the clock before another took the lock
	// counts in the current window.
	if !l.noteRateLocked(bulkRecent, at(2*rateWindow-time.Millisecond)) {
		t.Fatal("bytes at a time before the window's start not counted")
	}
	if l.noteRateLocked(1, at(10*rateWindow)) {
		t.Fatal("hot after an idle second")
	}

	// A latency-sensitive stream: 1.25 MiB/s (10,000 1 KiB records/s over
	// 8 partitions), whose batches grow to 64 KiB when its requests wait.
	var e2e Log
	per := 1250 << 10 // bytes/s
	for i, d := 0, time.Duration(0); d < 5*time.Second; i++ {
		size := 8 << 10
		if i%10 == 9 {
			size = 64 << 10 // a stalled request's backlog
		}
		d += time.Duration(int64(size) * int64(time.Second) / int64(per))
		if e2e.noteRateLocked(int64(size), at(d)) {
			t.Fatalf("a 1.25 MiB/s stream hot at %v", d)
		}
	}
	// A bulk partition: 25 MiB/s in 48 KiB batches.
	var bulk Log
	hot := false
	for d := time.Duration(0); d < time.Second; d += 48 * time.Second / (25 << 10) {
		hot = bulk.noteRateLocked(48<<10, at(d))
	}
	if !hot {
		t.Fatal("a 25 MiB/s stream not hot")
	}
}

// appendBothLanes appends n batches of random sizes to l without waiting
// for each, and a Sync now and then and at the end; once all completed it
// returns the batches as appended (with their offsets).
func appendBothLanes(l *Log, r *rand.Rand, n int, sized bool) ([][]byte, error) {
	var (
		mu      sync.Mutex
		failed  error
		pending sync.WaitGroup
		want    [][]byte
	)
	done := func(err error) {
		if err != nil {
			mu.Lock()
			failed = err
			mu.Unlock()
		}
		pending.Done()
	}
	for i := range n {
		var b []byte
		switch {
		case sized && r.IntN(6) == 0:
			b = plainBatch(64, 4096, int64(i)).encode() // the bulk lane's by size
		case !sized:
			b = plainBatch(1+r.IntN(16), 1024, int64(i)).encode() // 2.5 MiB a log in all: hot in a window
		default:
			b = plainBatch(1+r.IntN(3), 100, int64(i)).encode()
		}
		h, err := ValidateBatch(b)
		if err != nil {
			return nil, err
		}
		pending.Add(1)
		if _, err := l.Append(b, &h, r.IntN(2) == 0, done); err != nil {
			return nil, err
		}
		want = append(want, b) // Append set its offsets in place
		if r.IntN(20) == 0 {
			pending.Add(1)
			l.Sync(done)
		}
		if !sized && i%16 == 15 {
			// A producer's request: a log turns to the bulk lane only
			// between them, with nothing in flight.
			if !waitTimeout(&pending, 30*time.Second) {
				return nil, fmt.Errorf("%s: appends never completed", l.Dir())
			}
		}
	}
	pending.Add(1)
	l.Sync(done)
	if !waitTimeout(&pending, 30*time.Second) {
		return nil, fmt.Errorf("%s: appends never completed", l.Dir())
	}
	mu.Lock()
	defer mu.Unlock()
	return want, failed
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}
