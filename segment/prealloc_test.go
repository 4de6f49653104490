package segment

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// allocated is the disk space a file holds, and its size.
func allocated(t *testing.T, path string) (blocks, size int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512, st.Size()
}

// TestPreallocation: the active segment has blocks allocated ahead of its
// writes without its size changing (the file holds batches only); the
// blocks past the end are given back when it is sealed, closed cleanly, or
// opened after a crash.
func TestPreallocation(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 64 << 10
	e := newTestEnv(t, cfg)
	var written int64
	first := segmentPath(e.dir, 0) + ".log"
	b := plainBatch(10, 100, 0).encode()
	for written < 32<<10 {
		e.mustAppend(b)
		written += int64(len(b))
	}
	if noPrealloc.Load() {
		t.Skip("the filesystem has no fallocate")
	}
	blocks, size := allocated(t, first)
	if size != written {
		t.Fatalf("active segment is %d bytes, %d written", size, written)
	}
	// A small segment gets as much ahead as it holds, from 64 KiB.
	if blocks < size+minPrealloc/2 || blocks > size+2*minPrealloc {
		t.Fatalf("active segment holds %d bytes of blocks for %d bytes: not preallocated", blocks, size)
	}
	// Roll: the first segment is sealed and trimmed.
	for len(segmentFiles(t, e.dir)) < 2 || e.log.EndOffset() < 200 {
		e.mustAppend(b)
	}
	trimmed := func(path, when string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			blocks, size := allocated(t, path)
			if blocks <= (size+4095)/4096*4096+minPrealloc {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s holds %d bytes of blocks for %d bytes", when, filepath.Base(path), blocks, size)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	trimmed(first, "after sealing")
	checkLog(t, e.log)

	active := func() string {
		files := segmentFiles(t, e.dir)
		var last string
		for _, f := range files {
			if filepath.Ext(f) == ".log" {
				last = f
			}
		}
		return last
	}
	e.mustAppend(b)
	e.reopen(true)
	trimmed(active(), "after a clean close")
	e.mustAppend(b)
	e.reopen(false) // as after a crash
	trimmed(active(), "after a crash")
	checkLog(t, e.log)
}
