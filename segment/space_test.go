package segment

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory for the test.
// It needs root (CI runs as root).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a size-limited tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Fatalf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestFullDiskRecovers fills a real filesystem under a log, without a
// reserve: writes fail with ErrDiskFull, what was written stays readable,
// and once space is back the log takes appends again, right after its last
// good record, without a restart; a restart then finds it intact.
func TestFullDiskRecovers(t *testing.T) {
	dir := mountTmpfs(t, 8<<20)
	s, err := OpenStore(StoreOptions{Dir: dir, Logger: testLogger, RetentionCheckInterval: time.Hour, MinFreeBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	l, err := s.Open("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ballast(t, dir, 4<<20)
	var acked int64
	var full error
	for i := 0; i < 4000 && full == nil; i++ {
		_, err := appendWait(t, l, bigPidBatch(int32(i)).encode(), true)
		switch {
		case err == nil:
			acked++
		case errors.Is(err, ErrDiskFull) && errors.Is(err, ErrStorage):
			full = err
		default:
			t.Fatalf("append %d: %v, want ErrDiskFull", i, err)
		}
	}
	if full == nil {
		t.Fatal("an 8 MiB filesystem never filled")
	}
	if acked == 0 || l.EndOffset() != acked {
		t.Fatalf("acked %d, end offset %d", acked, l.EndOffset())
	}
	if s.Space().Free > 1<<20 {
		t.Fatalf("free %d bytes after ENOSPC", s.Space().Free)
	}
	// Offline now, whatever the batch: and what is there still reads.
	if _, err := appendWait(t, l, plainBatch(1, 10, 1).encode(), false); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append to a full log: %v", err)
	}
	checkLog(t, l)
	// No space yet: nothing changes.
	s.checkSpace()
	if l.Err() == nil {
		t.Fatal("the log came back with the disk still full")
	}
	// Space back (a file removed by hand): the next check lifts it.
	freeSome(t, dir)
	s.checkSpace()
	if err := l.Err(); err != nil {
		t.Fatalf("still offline with space back: %v", err)
	}
	// The producer's sequence continues where the acknowledged records
	// ended: the failed batches left no trace.
	res, err := appendWait(t, l, bigPidBatch(int32(acked)).encode(), true)
	if err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
	if res.BaseOffset != acked || res.Duplicate {
		t.Fatalf("appended at %d (duplicate %v), want %d", res.BaseOffset, res.Duplicate, acked)
	}
	if n := len(checkLog(t, l)); int64(n) != acked+1 {
		t.Fatalf("%d batches, want %d", n, acked+1)
	}
	// A restart finds the same log.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(StoreOptions{Dir: dir, Logger: testLogger, RetentionCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if l, err = s.Open("t-0", cfg); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != acked+1 {
		t.Fatalf("end offset %d after restart, want %d", l.EndOffset(), acked+1)
	}
	checkLog(t, l)
}

// bigPidBatch is a 4 KiB record from producer 1 with sequence seq.
func bigPidBatch(seq int32) testBatch {
	b := plainBatch(1, 4096, 1)
	b.ProducerID, b.Epoch, b.Seq = 1, 1, seq
	return b
}

// freeSome makes room on a full test filesystem by removing the ballast
// file the test put there first.
func freeSome(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, "ballast")); err != nil {
		t.Fatalf("no ballast to remove: %v", err)
	}
}

// TestReserveRefusesUserAppends: below min_free_bytes, a user log refuses
// appends before assigning an offset, an internal log writes on, and both
// work again once the disk is above the reserve.
func TestReserveRefusesUserAppends(t *testing.T) {
	dir := mountTmpfs(t, 32<<20)
	s, err := OpenStore(StoreOptions{Dir: dir, Logger: testLogger, RetentionCheckInterval: time.Hour, MinFreeBytes: 12 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user, err := s.Open("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	icfg := testConfig()
	icfg.Internal = true
	internal, err := s.Open("__consumer_offsets-0", icfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appendWait(t, user, plainBatch(1, 100, 1).encode(), true); err != nil {
		t.Fatalf("append with space: %v", err)
	}
	ballast(t, dir, int(s.Space().Free-6<<20)) // free drops below the reserve
	s.checkSpace()
	if !s.Space().Low {
		t.Fatalf("space %+v not low", s.Space())
	}
	if _, err := appendWait(t, user, plainBatch(1, 100, 1).encode(), true); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("user append below the reserve: %v", err)
	}
	if user.EndOffset() != 1 {
		t.Fatalf("a refused append moved the end to %d", user.EndOffset())
	}
	if user.Err() != nil {
		t.Fatalf("a refused append took the log offline: %v", user.Err())
	}
	if _, err := appendWait(t, internal, plainBatch(1, 100, 1).encode(), true); err != nil {
		t.Fatalf("internal append below the reserve: %v", err)
	}
	freeSome(t, dir)
	s.checkSpace()
	if _, err := appendWait(t, user, plainBatch(1, 100, 1).encode(), true); err != nil {
		t.Fatalf("user append with space back: %v", err)
	}
	checkLog(t, user)
}

// ballast writes a file of n bytes named ballast in dir.
func ballast(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "ballast"), make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFailedFsyncIsFinal: a failed fsync takes the log offline, and nothing
// brings it back but a restart: not a later fsync that succeeds, not the
// space check (fsyncgate: the kernel may have dropped the pages it could
// not write, so a retried fsync could report success for data that is
// gone). The restart recovers what is on disk.
func TestFailedFsyncIsFinal(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(plainBatch(1, 10, 1).encode())
	eio := error(unix.EIO)
	syncFault.Store(&eio)
	defer syncFault.Store(nil)
	if _, err := e.append(plainBatch(1, 10, 1).encode(), true); !errors.Is(err, ErrStorage) || errors.Is(err, ErrDiskFull) {
		t.Fatalf("append whose fsync failed: %v, want ErrStorage", err)
	}
	syncFault.Store(nil) // the device answers again
	if _, err := e.append(plainBatch(1, 10, 1).encode(), true); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after a failed fsync: %v", err)
	}
	done := make(chan error, 1)
	e.log.Sync(func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrStorage) {
		t.Fatalf("Sync after a failed fsync: %v", err)
	}
	if e.log.recoverSpace() || e.log.Err() == nil {
		t.Fatal("the space check lifted a failed fsync")
	}
	// A full disk afterwards does not turn it into a recoverable failure.
	e.log.failWrite(unix.ENOSPC)
	if e.log.recoverSpace() || e.log.Err() == nil {
		t.Fatal("a full disk after a failed fsync made it recoverable")
	}
	if e.log.SyncedOffset() > 1 {
		t.Fatalf("synced offset %d: the failed fsync counted", e.log.SyncedOffset())
	}
	e.reopen(false)
	if err := e.log.Err(); err != nil {
		t.Fatalf("offline after restart: %v", err)
	}
	e.mustAppend(plainBatch(1, 10, 1).encode())
	checkLog(t, e.log)
}
