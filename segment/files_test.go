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
	got := make([]byte, len(first))
	if _, err := seg.readAt(got, 0); err != nil {
		t.Fatalf("read of the deleted segment: %v", err)
	}
	if !bytes.Equal(got, first) {
		t.Fatal("the reader read other bytes than the segment held")
	}
	seg.unref()
	if seg.fp.Load() != nil {
		t.Fatal("the deleted segment's file is still open after its last reference")
	}
	checkLog(t, e.log)
}
