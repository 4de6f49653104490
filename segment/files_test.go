package segment

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain runs the package with a bound on open segment files when
// SAMSA_SEGMENT_FILES is set (make test does, on a second run): every test
// then has its idle files closed and reopened under it.
func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv("SAMSA_SEGMENT_FILES")); err == nil {
		SetOpenFileLimit(n)
	}
	os.Exit(m.Run())
}

func withOpenFileLimit(t *testing.T, n int) {
	old := files.limit.Load()
	SetOpenFileLimit(n)
	t.Cleanup(func() { SetOpenFileLimit(int(old)) })
}

// openLogFiles counts the process's descriptors open on .log files under
// dir, from /proc.
func openLogFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(p, dir) && strings.HasSuffix(p, ".log") {
			n++
		}
	}
	return n
}

// More segments than the bound on open files: appends, reads, a clean and
// an unclean restart all work, and at rest no more files are open than the
// bound allows.
func TestSegmentFilesBounded(t *testing.T) {
	const limit, logs = 16, 48
	withOpenFileLimit(t, limit)
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	open := func() (*Store, []*Log) {
		t.Helper()
		s, err := OpenStore(StoreOptions{Dir: dir, Logger: testLogger, RecoveryThreads: 4})
		if err != nil {
			t.Fatal(err)
		}
		specs := make([]LogSpec, logs)
		for i := range specs {
			specs[i] = LogSpec{Name: fmt.Sprintf("t-%d", i), Config: cfg}
		}
		s.OpenAll(specs, func(name string, err error) { t.Errorf("open %s: %v", name, err) })
		ls := make([]*Log, logs)
		for i, sp := range specs {
			l, err := s.Open(sp.Name, sp.Config)
			if err != nil {
				t.Fatal(err)
			}
			ls[i] = l
		}
		if err := s.MarkOpen(); err != nil {
			t.Fatal(err)
		}
		return s, ls
	}
	// batches[i] is how many batches were appended to log i.
	batches := make([]int, logs)
	write := func(ls []*Log, rounds int) {
		t.Helper()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for r := range rounds {
					for i := w; i < logs; i += 4 {
						b := plainBatch(3, 200, int64(r)).encode()
						if _, err := appendWait(t, ls[i], b, true); err != nil {
							t.Errorf("append to log %d: %v", i, err)
							return
						}
						batches[i]++
					}
				}
			})
		}
		wg.Wait()
	}
	check := func(ls []*Log) {
		t.Helper()
		var wg sync.WaitGroup
		for i, l := range ls {
			wg.Go(func() {
				if got := checkLog(t, l); len(got) != batches[i] {
					t.Errorf("log %d: %d batches, want %d", i, len(got), batches[i])
				}
			})
		}
		wg.Wait()
	}

	s, ls := open()
	write(ls, 8) // about 3 segments a log
	check(ls)
	files.trim()
	if n := openLogFiles(t, dir); n > limit {
		t.Errorf("%d segment files open at rest, bound %d", n, limit)
	}
	st := OpenFileStats()
	if st.Parked == 0 || st.Reopened == 0 {
		t.Errorf("stats %+v: want files parked and reopened", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openLogFiles(t, dir); n != 0 {
		t.Errorf("%d segment files open after Close", n)
	}

	s, ls = open() // clean
	check(ls)
	write(ls, 2)
	check(ls)
	crashStore(s)

	s, ls = open() // after a crash: every log's active segment scanned
	check(ls)
	write(ls, 1)
	check(ls)
	if n := openLogFiles(t, dir); n > limit+logs {
		t.Errorf("%d segment files open, bound %d", n, limit)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A reader holding a segment whose file was closed while idle, deleted by
// retention under it: the file is reopened before its name goes, and the
// reader reads the bytes it found.
func TestParkedSegmentDeletedUnderReader(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1000 // a segment per batch
	e := newTestEnv(t, cfg)
	first := plainBatch(4, 300, 1).encode()
	e.mustAppend(first)
	e.mustAppend(plainBatch(4, 300, 2).encode())
	e.log.mu.RLock()
	seg := e.log.segs[0]
	e.log.mu.RUnlock()
	for deadline := time.Now().Add(10 * time.Second); (!seg.indexed.Load() || seg.refs.Load() != 1) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // its seal, by the disk's syncer
	}
	files.park(0)
	if seg.fp.Load() != nil {
		t.Fatal("an idle segment's file was not closed")
	}
	if !seg.ref() { // a reader's, as Log.Read takes before it reads
		t.Fatal("cannot reference the first segment")
	}
	if _, err := e.log.DeleteBefore(4); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(seg.path + ".log"); !os.IsNotExist(err) {
		t.Fatalf("deleted segment's file still there: %v", err)
	}
	wantSegmentBytes(t, seg, first, "the reader of the deleted segment")
	seg.unref()
	if seg.fp.Load() != nil {
		t.Fatal("the deleted segment's file is still open after its last reference")
	}
	checkLog(t, e.log)
}

// waitIdle waits until only its log references seg (its seal and syncs
// done), so that park may close its file.
func waitIdle(t *testing.T, seg *Segment) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); (seg.refs.Load() != 1 || seg.users.Load() != 0) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

// Out of descriptors when an idle partition's closed file must be reopened
// for a write: the write waits for one instead of taking the log offline,
// and completes once descriptors are back.
func TestWriteWaitsOutFileShortage(t *testing.T) {
	e := newTestEnv(t, testConfig())
	if _, err := e.append(plainBatch(2, 100, 1).encode(), true); err != nil {
		t.Fatal(err)
	}
	seg := e.log.segs[len(e.log.segs)-1]
	waitIdle(t, seg)
	files.park(0)
	if seg.fp.Load() != nil {
		t.Fatal("the idle active segment's file was not closed")
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	saved := lim
	ents, _ := os.ReadDir("/proc/self/fd")
	lim.Cur = uint64(len(ents) + 64)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip("cannot lower the open files limit:", err)
	}
	var fill []int
	release := sync.OnceFunc(func() {
		for _, fd := range fill {
			unix.Close(fd)
		}
		unix.Setrlimit(unix.RLIMIT_NOFILE, &saved)
	})
	defer release()
	for {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fill = append(fill, fd)
	}
	waits := outOfFilesWaits.Load()
	time.AfterFunc(300*time.Millisecond, release)
	if _, err := e.append(plainBatch(2, 100, 2).encode(), true); err != nil {
		t.Fatalf("append through a short descriptor shortage: %v", err)
	}
	if outOfFilesWaits.Load() == waits {
		t.Error("the write never waited for a descriptor")
	}
	e.mustAppend(plainBatch(2, 100, 3).encode())
	if got := checkLog(t, e.log); len(got) != 3 {
		t.Fatalf("%d batches, want 3", len(got))
	}
}

// A reader that referenced a segment of a deleted topic reads that
// segment's bytes, or an error, never those of a topic created again under
// the same name.
func TestDeletedLogReaderNeverReadsItsSuccessor(t *testing.T) {
	e := newTestEnv(t, testConfig())
	old := plainBatch(2, 100, 1).encode()
	if _, err := e.append(old, true); err != nil {
		t.Fatal(err)
	}
	seg := e.log.segs[0]
	waitIdle(t, seg)
	files.park(0)
	if seg.fp.Load() != nil {
		t.Fatal("the idle segment's file was not closed")
	}
	if !seg.ref() { // a reader: OffsetForTime's candidate, or Read before scanSegment
		t.Fatal("cannot reference the segment")
	}
	e.disk.Close()
	if err := e.log.Delete(); err != nil {
		t.Fatal(err)
	}
	e.open(false) // the topic again, under the same name
	e.mustAppend(plainBatch(2, 100, 99).encode())
	files.park(0)
	wantSegmentBytes(t, seg, old, "the reader of the deleted log")
	seg.unref()
}

// A reader holds a segment that a truncation drops; appends roll a new
// segment of the same base; the reader's release must not remove the new
// segment's files.
func TestDroppedSegmentReleaseKeepsSuccessor(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1000 // a segment per batch
	e := newTestEnv(t, cfg)
	for i := range 3 {
		e.mustAppend(plainBatch(4, 300, int64(i)).encode()) // 0-3, 4-7, 8-11
	}
	sl, err := e.log.Read(8, 12, 1<<20)
	if err != nil || sl.Len == 0 {
		t.Fatalf("read: %v, %d bytes", err, sl.Len)
	}
	if _, err := e.log.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	e.mustAppend(plainBatch(4, 300, 4).encode()) // 4-7 again
	e.mustAppend(plainBatch(4, 300, 5).encode()) // 8-11 again: a new segment at 8
	sl.Release()
	files.park(0)
	for _, s := range e.log.segs {
		if _, err := os.Stat(s.path + ".log"); err != nil {
			t.Errorf("segment %d lost its file: %v", s.base, err)
		}
	}
	e.mustAppend(plainBatch(4, 300, 6).encode())
	if got := checkLog(t, e.log); len(got) != 4 {
		t.Fatalf("%d batches, want 4", len(got))
	}
}

// A file with writes not yet fsynced stays open, whatever the bound: its
// fsync, and the error it may report, must be on the descriptor that
// wrote. Once synced it may close.
func TestUnsyncedFileStaysOpen(t *testing.T) {
	e := newTestEnv(t, testConfig()) // no flush interval: synced on demand
	e.mustAppend(plainBatch(2, 100, 1).encode())
	seg := e.log.segs[0]
	files.park(0)
	if seg.fp.Load() == nil {
		t.Fatal("a file with unsynced writes was closed")
	}
	done := make(chan error, 1)
	e.log.Sync(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); seg.unsynced.Load() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	files.park(0)
	if seg.fp.Load() != nil {
		t.Fatal("a synced idle file was not closed")
	}
	if got := checkLog(t, e.log); len(got) != 1 {
		t.Fatalf("%d batches, want 1", len(got))
	}
}

// wantSegmentBytes requires seg to read want from its start.
func wantSegmentBytes(t *testing.T, seg *Segment, want []byte, who string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := seg.readAt(got, 0); err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s read other bytes than the segment held", who)
	}
}
