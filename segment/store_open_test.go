package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// A store of many logs: OpenAll opens the existing ones in parallel (and
// reports the one it cannot open, which Open then fails on), a clean close
// rewrites only the logs appended to since they were opened, and the next
// start finds every record.
func TestStoreOpenAllAndCleanClose(t *testing.T) {
	dir := t.TempDir()
	const n = 40
	open := func() *Store {
		t.Helper()
		s, err := OpenStore(StoreOptions{Dir: dir, Logger: testLogger, RecoveryThreads: 4})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	specs := make([]LogSpec, n)
	for i := range specs {
		specs[i] = LogSpec{Name: fmt.Sprintf("t-%d", i), Config: testConfig()}
	}
	s := open()
	for i, sp := range specs {
		l, err := s.Open(sp.Name, sp.Config)
		if err != nil {
			t.Fatal(err)
		}
		for range i%3 + 1 {
			if _, err := appendWait(t, l, plainBatch(2, 50, 1).encode(), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.MarkOpen(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Files of every log as the first clean close left them.
	stamps := func() map[string]time.Time {
		m := map[string]time.Time{}
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && filepath.Base(p) != cleanMarker && filepath.Base(p) != ".lock" {
				m[p] = fi.ModTime()
			}
			return nil
		})
		return m
	}
	before := stamps()
	time.Sleep(20 * time.Millisecond) // mtimes of rewritten files differ

	// A log whose segment cannot be read: OpenAll reports it, Open fails.
	broken := filepath.Join(dir, "broken")
	os.MkdirAll(filepath.Join(broken, "00000000000000000000.log"), 0o755)
	var mu sync.Mutex
	var failed []string
	s = open()
	s.OpenAll(append(specs, LogSpec{Name: "broken", Config: testConfig()}, LogSpec{Name: "new", Config: testConfig()}),
		func(name string, err error) { mu.Lock(); failed = append(failed, name); mu.Unlock() })
	if len(failed) != 1 || failed[0] != "broken" {
		t.Fatalf("OpenAll reported %v, want [broken]", failed)
	}
	if _, err := s.Open("broken", testConfig()); err == nil {
		t.Fatal("Open of the broken log succeeded")
	}
	os.RemoveAll(broken)
	s.mu.Lock()
	opened, hasNew := len(s.logs), s.logs["new"] != nil
	s.mu.Unlock()
	if opened != n || hasNew {
		t.Fatalf("OpenAll opened %d logs (new one: %v), want the %d existing ones", opened, hasNew, n)
	}
	for i, sp := range specs {
		l, err := s.Open(sp.Name, sp.Config)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(2 * (i%3 + 1)); l.EndOffset() != want {
			t.Fatalf("%s ends at %d, want %d", sp.Name, l.EndOffset(), want)
		}
		if i == 7 {
			if _, err := appendWait(t, l, plainBatch(1, 50, 1).encode(), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.MarkOpen(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := stamps()
	var changed []string
	for p, m := range after {
		if !before[p].Equal(m) {
			rel, _ := filepath.Rel(dir, p)
			changed = append(changed, rel)
		}
	}
	sort.Strings(changed)
	for _, p := range changed {
		if filepath.Dir(p) != "t-7" {
			t.Fatalf("a clean close rewrote %s of a log nobody appended to (changed: %v)", p, changed)
		}
	}
	if len(changed) == 0 {
		t.Fatal("a clean close did not rewrite the log appended to")
	}

	s = open()
	defer s.Close()
	l, err := s.Open("t-7", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 2*(7%3+1)+1 {
		t.Fatalf("t-7 ends at %d after a clean restart", l.EndOffset())
	}
	checkLog(t, l)
}

// A clean stop of a small log without producers writes no snapshot (the
// next start replays its few batch headers instead); with a producer it
// does, and either way the next start has the log and its producers.
func TestCleanStopSnapshotOnlyWhenUseful(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(plainBatch(3, 50, 1).encode())
	e.reopen(true)
	if snaps := listSnapshots(e.dir); len(snaps) != 0 {
		t.Fatalf("snapshots %v of a small log without producers", snaps)
	}
	if got := checkLog(t, e.log); len(got) != 1 {
		t.Fatalf("%d batches, want 1", len(got))
	}
	e.log.mu.RLock()
	changed := e.log.changed
	e.log.mu.RUnlock()
	if changed {
		t.Fatal("a clean start marks the log changed for a snapshot its clean stop would not write")
	}
	e.mustAppend(pidBatch(2, 1, 9, 0, 0).encode())
	e.reopen(true)
	if snaps := listSnapshots(e.dir); len(snaps) != 1 || snaps[0] != 5 {
		t.Fatalf("snapshots %v, want one at 5", snaps)
	}
	if _, ok := e.log.producers[9]; !ok {
		t.Fatal("producer 9 lost by a clean restart")
	}
	// Its next batch in sequence is taken; a repeat is a duplicate.
	if _, err := e.append(pidBatch(2, 2, 9, 0, 2).encode(), false); err != nil {
		t.Fatalf("next batch of producer 9: %v", err)
	}
	if res, err := e.append(pidBatch(2, 2, 9, 0, 2).encode(), false); err != nil || res.BaseOffset != 5 {
		t.Fatalf("repeated batch: %+v %v, want the duplicate at 5", res, err)
	}
}
