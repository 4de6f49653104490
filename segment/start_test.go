package segment

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDeleteBefore: DeleteRecords moves the log start into a segment,
// deletes the segments wholly below it, survives a reopen, and retention
// never moves it back.
func TestDeleteBefore(t *testing.T) {
	cfg := testConfig()
	batchSize := int64(len(plainBatch(1, 100, 0).encode()))
	cfg.SegmentBytes = 2 * batchSize
	e := newTestEnv(t, cfg)
	for range 9 { // segments [0 1] [2 3] [4 5] [6 7] [8]
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	if _, err := e.log.DeleteBefore(10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete beyond the end: %v", err)
	}
	start, err := e.log.DeleteBefore(5)
	if err != nil || start != 5 || e.log.StartOffset() != 5 {
		t.Fatalf("delete before 5: %d %v (start %d)", start, err, e.log.StartOffset())
	}
	if got := segmentBases(t, e.dir); !reflect2(got, []int64{4, 6, 8}) {
		t.Fatalf("segments %v", got)
	}
	if _, err := e.log.Read(4, e.log.EndOffset(), 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	if sl, err := e.log.Read(5, e.log.EndOffset(), 1<<20); err != nil || sl.Len == 0 {
		t.Fatalf("read at the start: %v", err)
	} else {
		sl.Release()
	}
	if start, err := e.log.DeleteBefore(3); err != nil || start != 5 {
		t.Fatalf("delete before 3 after 5: %d %v", start, err)
	}
	// Retention goes on from there.
	cfg.RetentionBytes = 0
	e.log.SetConfig(cfg)
	e.log.enforceRetention(time.Now())
	cfg.RetentionBytes = -1
	e.log.SetConfig(cfg)
	if s := e.log.StartOffset(); s != 8 {
		t.Fatalf("retention to the active segment [8]: start %d", s)
	}
	e.reopen(true)
	if e.log.StartOffset() != 8 {
		t.Fatalf("start after reopen: %d", e.log.StartOffset())
	}
	// Everything: the active segment rolls and goes too; appends go on.
	if start, err := e.log.DeleteBefore(9); err != nil || start != 9 {
		t.Fatalf("delete everything: %d %v", start, err)
	}
	if got := segmentBases(t, e.dir); !reflect2(got, []int64{9}) {
		t.Fatalf("segments after deleting everything: %v", got)
	}
	e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	if e.log.EndOffset() != 10 || e.log.StartOffset() != 9 {
		t.Fatalf("after an append: start %d end %d", e.log.StartOffset(), e.log.EndOffset())
	}
	// A reset (a follower below its leader's start) drops the checkpoint.
	if err := e.log.ResetTo(20); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, startCheckpoint)); !os.IsNotExist(err) {
		t.Fatalf("checkpoint after ResetTo: %v", err)
	}
}
