package segment

import (
	"bytes"
	"fmt"
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

	big := plainBatch(20, 1024, 1000).encode()
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
	select {
	case err := <-bigDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bulk append never completed once released")
	}
	if got := bulk.SyncedOffset(); got != 20 {
		t.Fatalf("bulk log synced to %d after its acks=all append, want 20", got)
	}
	if n := len(checkLog(t, bulk)); n != 1 {
		t.Fatalf("bulk log holds %d batches", n)
	}
	if n := len(checkLog(t, small)); n != 1 {
		t.Fatalf("small log holds %d batches", n)
	}
}

// TestLanesKeepEachLogInOrder appends batches of both sizes, with and
// without fsync and with Sync barriers between, to four logs at once, so
// that each log's ops keep moving between the lanes; every log must hold
// exactly its batches, in order, and be synced to its end.
func TestLanesKeepEachLogInOrder(t *testing.T) {
	var used [numLanes]atomic.Int64
	beforeWrite = func(lane int, n int64) { used[lane].Add(1) }
	t.Cleanup(func() { beforeWrite = nil })
	logs := groupCommitLogs(t, 4)
	want := make([][][]byte, len(logs))
	errs := make([]error, len(logs))
	var wg sync.WaitGroup
	for i, l := range logs {
		wg.Go(func() { want[i], errs[i] = appendBothLanes(l, rand.New(rand.NewPCG(uint64(i), 1)), 300) })
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
}

// appendBothLanes appends n batches of random sizes to l without waiting
// for each, and a Sync now and then and at the end; once all completed it
// returns the batches as appended (with their offsets).
func appendBothLanes(l *Log, r *rand.Rand, n int) ([][]byte, error) {
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
		if r.IntN(3) == 0 {
			b = plainBatch(20, 1024, int64(i)).encode() // the bulk lane's
		} else {
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
	}
	pending.Add(1)
	l.Sync(done)
	ch := make(chan struct{})
	go func() { pending.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: appends never completed", l.Dir())
	}
	mu.Lock()
	defer mu.Unlock()
	return want, failed
}
