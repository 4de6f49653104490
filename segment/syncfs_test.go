package segment

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A group commit of many dirty files is one syncfs: every acks=all append
// spread over many logs completes, durable (its synced offset moves).
// With the fault tests inject per file, it falls back to an fdatasync
// each, which fails the appends as before.
func TestManyDirtyFilesSyncedAtOnce(t *testing.T) {
	// Its 256 files open at once: under a small bound (SAMSA_SEGMENT_FILES)
	// the writer would wake the syncer for every few, and no group commit
	// would reach syncfs.
	withOpenFileLimit(t, 0)
	dir := t.TempDir()
	disk := NewDisk(dir, 0, nil, testLogger)
	defer disk.Close()
	logs := make([]*Log, 4*syncFSFiles)
	for i := range logs {
		l, err := OpenLog(filepath.Join(dir, fmt.Sprint("p-", i)), disk, testConfig(), false, testLogger)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close(false)
		logs[i] = l
	}
	// Appends issued back to back (syncAppends): while the first group
	// commit runs, the rest pile up as the next one's dirty files.
	before := syncFSCount.Load()
	for i, err := range syncAppends(t, logs) {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if logs[i].SyncedOffset() != 1 {
			t.Fatalf("log %d synced to %d", i, logs[i].SyncedOffset())
		}
	}
	if syncFSCount.Load() == before {
		t.Fatalf("%d appends to %d logs made no group commit by syncfs", len(logs), len(logs))
	}
	eio := error(unix.EIO)
	syncFault.Store(&eio)
	defer syncFault.Store(nil)
	failed := 0
	for _, err := range syncAppends(t, logs) {
		if errors.Is(err, ErrStorage) {
			failed++
		}
	}
	if failed != len(logs) {
		t.Fatalf("%d of %d appends failed with failing fsyncs, want all", failed, len(logs))
	}
}
