package logtool

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"samsa/segment"
)

// TestTxnIndexVerifyAndDump: a log with an aborted transaction verifies
// clean, dumps its .txnindex and snapshot with the transaction fields, and
// a damaged .txnindex is reported.
func TestTxnIndexVerifyAndDump(t *testing.T) {
	dataDir := t.TempDir()
	st, err := segment.OpenStore(segment.StoreOptions{Dir: dataDir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 300
	cfg.RetentionMs = -1
	l, err := st.Open("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(f func(done func(error)) error) {
		t.Helper()
		done := make(chan error, 1)
		if err := f(func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	tb := plain(time.Now().UnixMilli(), testRecord{key: []byte("k"), value: []byte("v")})
	tb.pid, tb.epoch, tb.seq, tb.attrs = 7, 0, 0, segment.AttrTransactional
	data := tb.encode()
	h, err := segment.ValidateBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	wait(func(done func(error)) error { _, err := l.Append(data, &h, true, done); return err })
	wait(func(done func(error)) error { _, err := l.AppendMarker(7, 0, 3, false, true, done); return err })
	for range 4 { // seal the marker's segment
		p := plain(time.Now().UnixMilli(), testRecord{key: []byte("x"), value: make([]byte, 100)})
		d := p.encode()
		h, _ := segment.ValidateBatch(d)
		wait(func(done func(error)) error { _, err := l.Append(d, &h, true, done); return err })
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	idx, _ := filepath.Glob(filepath.Join(dataDir, "t-0", "*.txnindex"))
	if len(idx) != 1 {
		t.Fatalf(".txnindex files %v", idx)
	}
	if rep, out := verify(t, dataDir); len(rep.Problems) != 0 {
		t.Fatalf("a clean log with an aborted transaction: %v\n%s", rep.Problems, out)
	}
	var sb strings.Builder
	if err := Dump(&sb, idx[0], DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "producerId: 7 firstOffset: 0 lastOffset: 1 lastStableOffset: 2") {
		t.Fatalf("dump of the .txnindex:\n%s", sb.String())
	}
	if err := os.WriteFile(idx[0], []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _ := verify(t, dataDir)
	if p := onlyProblem(t, rep); p.Kind != "txnindex" || !p.Damage {
		t.Fatalf("damaged .txnindex: %+v", p)
	}
}
