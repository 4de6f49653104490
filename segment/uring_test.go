package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// newTestRing sets up a ring, or skips where the kernel has no io_uring
// for this process (the disks then sync on goroutines, as
// TestGroupCommitOnGoroutines covers).
func newTestRing(t *testing.T, entries uint32) *syncRing {
	t.Helper()
	r, err := newSyncRing(entries)
	if err != nil {
		// ENOMEM: a kernel before 5.12 charges the ring to RLIMIT_MEMLOCK.
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
			t.Skipf("no io_uring here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

// The ring syncs more files than it has entries (in turns), and reports
// each file's own error: a closed descriptor fails alone.
func TestSyncRingFdatasync(t *testing.T) {
	r := newTestRing(t, 4)
	dir := t.TempDir()
	var fds []int
	for i := range 11 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write([]byte("record")); err != nil {
			t.Fatal(err)
		}
		fds = append(fds, int(f.Fd()))
	}
	bad, err := unix.Open(filepath.Join(dir, "0"), unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(bad) // a descriptor no longer open
	fds[7] = bad
	for round := range 3 { // the ring is reused
		errs := make([]error, len(fds))
		for i := range errs {
			errs[i] = errors.New("not set")
		}
		if err := r.fdatasync(fds, errs); err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			switch {
			case i == 7 && !errors.Is(err, unix.EBADF):
				t.Fatalf("round %d: the closed descriptor gave %v, want EBADF", round, err)
			case i != 7 && err != nil:
				t.Fatalf("round %d: file %d: %v", round, i, err)
			}
		}
	}
	if err := r.fdatasync(nil, nil); err != nil {
		t.Fatalf("nothing to sync: %v", err)
	}
}

// syncAppends appends one synced batch to each log at once and waits.
func syncAppends(t *testing.T, logs []*Log) []error {
	t.Helper()
	errs := make([]error, len(logs))
	var wg sync.WaitGroup
	for i, l := range logs {
		b := plainBatch(1, 10, 1).encode()
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		if _, err := l.Append(b, &h, true, func(err error) { errs[i] = err; wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	return errs
}

// groupCommitLogs opens n logs on one new disk.
func groupCommitLogs(t *testing.T, n int) []*Log {
	t.Helper()
	dir := t.TempDir()
	disk := NewDisk(dir, 0, nil, testLogger)
	t.Cleanup(disk.Close)
	logs := make([]*Log, n)
	for i := range logs {
		l, err := OpenLog(filepath.Join(dir, fmt.Sprint("p-", i)), disk, testConfig(), false, testLogger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(false) })
		logs[i] = l
	}
	return logs
}

// checkGroupCommit appends to every log twice, checks each append is
// durable when answered, then fails the device and checks every append
// fails.
func checkGroupCommit(t *testing.T, logs []*Log) {
	t.Helper()
	for round := int64(1); round <= 2; round++ {
		for i, err := range syncAppends(t, logs) {
			if err != nil {
				t.Fatalf("append to log %d: %v", i, err)
			}
			if got := logs[i].SyncedOffset(); got != round {
				t.Fatalf("log %d synced to %d, want %d", i, got, round)
			}
		}
	}
	eio := error(unix.EIO)
	syncFault.Store(&eio)
	defer syncFault.Store(nil)
	for i, err := range syncAppends(t, logs) {
		if !errors.Is(err, ErrStorage) {
			t.Fatalf("append to log %d with a failing device: %v, want ErrStorage", i, err)
		}
	}
}

// A group commit over several files goes through the ring, where there is
// one.
func TestGroupCommitOnRing(t *testing.T) {
	newTestRing(t, 4) // skips without io_uring
	before := ringSyncCount.Load()
	checkGroupCommit(t, groupCommitLogs(t, 12))
	if ringSyncCount.Load() == before {
		t.Fatal("no group commit went through the ring")
	}
}

// Without io_uring (old kernels, seccomp, kernel.io_uring_disabled) the
// group commit fdatasyncs on goroutines, with the same outcome.
func TestGroupCommitOnGoroutines(t *testing.T) {
	useSyncRing = false
	defer func() { useSyncRing = true }()
	before := ringSyncCount.Load()
	checkGroupCommit(t, groupCommitLogs(t, 12))
	if ringSyncCount.Load() != before {
		t.Fatal("a group commit went through the ring while it was off")
	}
}

// A kernel without what the ring needs gets no ring, and the disk syncs on
// goroutines (setup failing half-way closes what it set up, no panic).
func TestSyncRingSetupRefused(t *testing.T) {
	ringNeeds = 1 << 31
	defer func() { ringNeeds = ioringFeat56 }()
	if r, err := newSyncRing(4); err == nil || r != nil || !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("setup without the features: ring %v, err %v; want ENOSYS", r, err)
	}
	before := ringSyncCount.Load()
	checkGroupCommit(t, groupCommitLogs(t, 4))
	if ringSyncCount.Load() != before {
		t.Fatal("a group commit went through a ring that could not be set up")
	}
}

// A ring that fails reports what it could not finish: fsyncs never
// submitted as such (safe to redo another way), and with its eventfd gone
// it still waits for what it submitted (in io_uring_enter).
func TestSyncRingFails(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fds := []int{int(f.Fd()), int(f.Fd())}

	r := newTestRing(t, 4)
	fd := r.fd
	r.fd = -1 // io_uring_enter fails: nothing is submitted
	errs := make([]error, len(fds))
	err = r.fdatasync(fds, errs)
	r.fd = fd
	if err == nil {
		t.Fatal("a ring without its descriptor did not fail")
	}
	for i, e := range errs {
		if e != errNotSubmitted {
			t.Fatalf("fd %d: %v, want errNotSubmitted", i, e)
		}
	}

	r2 := newTestRing(t, 4)
	r2.efd.Close() // os.File: its descriptor closes once, whatever follows
	if err := r2.fdatasync(fds, errs); err == nil {
		t.Fatal("a ring without its eventfd did not report it")
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("fd %d after waiting in io_uring_enter: %v, want synced", i, e)
		}
	}
}

// The group commit on a ring that fails: the files the kernel never took
// are synced on the syncer itself, and the ring is dropped.
func TestSyncOnFailingRing(t *testing.T) {
	useSyncRing = false // the disk's own syncer keeps off rings
	defer func() { useSyncRing = true }()
	logs := groupCommitLogs(t, 2)
	dirty := map[*Segment]struct{}{}
	for _, l := range logs {
		if err := <-appendAsync(t, l, plainBatch(1, 10, 1).encode(), false); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		dirty[l.segs[len(l.segs)-1]] = struct{}{}
		l.mu.Unlock()
	}
	r := newTestRing(t, 4)
	fd := r.fd
	r.fd = -1
	d := &Disk{logger: testLogger, ring: r}
	d.syncOnRing(dirty)
	r.fd = fd
	if d.ring != nil {
		t.Fatal("a failed ring was kept")
	}
	r.close() // what syncOnRing closed was fd -1
	for s := range dirty {
		if err := s.syncErr.Load(); err != nil {
			t.Fatalf("%s: %v", s.path, *err)
		}
	}
}
