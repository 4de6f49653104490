package segment

import (
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

func openTestStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := OpenStore(StoreOptions{Dir: dir, Logger: testLogger, RetentionCheckInterval: time.Hour})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

// crashStore stops a store as a killed process would: no clean marker, no
// index or snapshot writes, the lock released by the kernel.
func crashStore(s *Store) {
	close(s.quit)
	s.wg.Wait()
	s.disk.Close()
	for _, l := range s.logs {
		l.Close(false)
	}
	s.lock.Close()
}

func TestStoreLock(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	if _, err := OpenStore(StoreOptions{Dir: dir, Logger: testLogger}); err == nil {
		t.Fatal("second OpenStore on a locked dir succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s = openTestStore(t, dir)
	crashStore(s)
	s = openTestStore(t, dir) // a dead process's lock is gone
	s.Close()
}

func TestStoreCleanMarker(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, cleanMarker)
	s := openTestStore(t, dir)
	if s.WasClean() {
		t.Fatal("a new data dir reports a clean shutdown")
	}
	if err := s.MarkOpen(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no clean marker after Close: %v", err)
	}
	s = openTestStore(t, dir)
	if !s.WasClean() {
		t.Fatal("clean shutdown not seen")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("marker removed before MarkOpen")
	}
	if err := s.MarkOpen(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("marker still there after MarkOpen: %v", err)
	}
	crashStore(s)
	s = openTestStore(t, dir)
	if s.WasClean() {
		t.Fatal("crash reported as a clean shutdown")
	}
	s.Close()
}

func TestStoreLogs(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	cfg := testConfig()
	a, err := s.Open("a-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Open("b-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Open("a-0", cfg); again != a {
		t.Fatal("Open of an open log returned another Log")
	}
	for i := range 10 {
		if _, err := appendWait(t, a, plainBatch(1, 10, time.Now().UnixMilli()).encode(), i%2 == 0); err != nil {
			t.Fatal(err)
		}
		if _, err := appendWait(t, b, plainBatch(2, 10, time.Now().UnixMilli()).encode(), false); err != nil {
			t.Fatal(err)
		}
	}
	names := s.Names()
	sort.Strings(names)
	if len(names) != 2 || names[0] != "a-0" || names[1] != "b-0" {
		t.Fatalf("names %v", names)
	}
	if err := s.Remove("b-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b-0")); !os.IsNotExist(err) {
		t.Fatalf("removed log's dir: %v", err)
	}
	if err := s.Remove("never-opened"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Clean restart.
	s = openTestStore(t, dir)
	a, err = s.Open("a-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.EndOffset() != 10 {
		t.Fatalf("a-0 end offset %d after clean restart", a.EndOffset())
	}
	s.MarkOpen()
	if _, err := appendWait(t, a, plainBatch(1, 10, time.Now().UnixMilli()).encode(), true); err != nil {
		t.Fatal(err)
	}
	crashStore(s)

	// Crash restart.
	s = openTestStore(t, dir)
	defer s.Close()
	a, err = s.Open("a-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.EndOffset() != 11 {
		t.Fatalf("a-0 end offset %d after crash", a.EndOffset())
	}
	checkLog(t, a)
}

func TestStoreRetention(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(StoreOptions{Dir: dir, Logger: testLogger, RetentionCheckInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := testConfig()
	cfg.RetentionMs = 60_000
	l, err := s.Open("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).UnixMilli()
	for range 3 {
		if _, err := appendWait(t, l, plainBatch(1, 10, old).encode(), false); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.StartOffset() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("retention loop never ran: start offset %d", l.StartOffset())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStoreCloseWithPendingSync(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	l, err := s.Open("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var chs []chan error
	for range 50 {
		chs = append(chs, appendAsync(t, l, plainBatch(1, 1000, 1).encode(), false))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitAll(t, chs...)
	// After Close, appends and syncs fail instead of hanging.
	b := plainBatch(1, 1, 1).encode()
	h, _ := ValidateBatch(b)
	if _, err := l.Append(b, &h, false, nil); err == nil {
		t.Fatal("append after Store.Close succeeded")
	}
	done := make(chan error, 1)
	l.Sync(func(err error) { done <- err })
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("sync after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sync after Close hangs")
	}
	s = openTestStore(t, dir)
	defer s.Close()
	if !s.WasClean() {
		t.Fatal("not clean")
	}
	l, _ = s.Open("t-0", testConfig())
	if l.EndOffset() != 50 {
		t.Fatalf("end offset %d", l.EndOffset())
	}
}

// OnStages sees every append that waits for its fsync, once, after that
// fsync, with each stage measured; appends that do not wait are not seen.
func TestStoreOnStages(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []Stages
	)
	s, err := OpenStore(StoreOptions{Dir: t.TempDir(), Logger: testLogger, RetentionCheckInterval: time.Hour,
		OnStages: func(st Stages) {
			mu.Lock()
			seen = append(seen, st)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.Open("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := appendWait(t, l, plainBatch(1, 10, 1).encode(), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 10 {
		t.Fatalf("%d appends observed, want the 10 synced ones", len(seen))
	}
	for i, st := range seen {
		if st.WriteWait < 0 || st.Write <= 0 || st.SyncWait < 0 || st.Fsync <= 0 || st.Fsync > time.Minute {
			t.Fatalf("append %d: stages %+v", i, st)
		}
	}
}
