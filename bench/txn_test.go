package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTxn runs one short round of the txn workload against a fresh samsa
// (its group rebalance delay shortened) and checks the report is sane:
// every phase moved records, nothing failed or aborted, and the
// read_committed consumers read exactly the committed records. The 0.9x
// targets are not checked: a busy machine misses them.
func TestTxn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	bin, root := samsaBinary(t)
	base, err := os.ReadFile(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.Replace(string(base), "initial_rebalance_delay_ms = 3000", "initial_rebalance_delay_ms = 100", 1)
	if cfgText == string(base) {
		t.Fatal("config.toml has no initial_rebalance_delay_ms = 3000 to shorten")
	}
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}

	s := DefaultTxnSpec()
	s.Duration, s.Size, s.Partitions, s.Rate, s.Timeout = 500*time.Millisecond, 256, 2, 1000, 15*time.Second
	var progress syncBuffer
	start := time.Now()
	defer func() { t.Logf("%.1fs:\n%s", time.Since(start).Seconds(), progress.String()) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep := TxnSuite(ctx, TxnConfig{SamsaBin: bin, Config: cfg, Spec: s, Rounds: 1, Progress: tsWriter{&progress, start}})
	if len(rep.Runs) != 1 {
		t.Fatalf("%d rounds ran, errors %v\n%s", len(rep.Runs), rep.Errors, progress.String())
	}
	r := rep.Runs[0]
	t.Log(r.oneLine())
	if rep.Failed() {
		t.Errorf("round failed: %s, %d records failed\n%s", r.Error, r.Failed, progress.String())
	}
	for name, tp := range map[string]*Throughput{"idempotent": r.Idempotent, "transactional": r.Transactional,
		"read_uncommitted": r.ReadUncommitted, "read_committed": r.ReadCommitted, "ctp": r.CTP} {
		if tp == nil || tp.Records <= 0 || tp.RecordsPerSec <= 0 || tp.MiBPerSec <= 0 {
			t.Errorf("%s throughput %+v: want positive figures", name, tp)
		}
	}
	if r.Commits < 2 || r.Aborts != 0 || r.CTPCommits < 1 || r.CTPAborts != 0 {
		t.Errorf("%d commits, %d aborts; consume-transform-produce %d commits, %d aborts", r.Commits, r.Aborts, r.CTPCommits, r.CTPAborts)
	}
	if r.Transactional != nil && r.TxnAcked != r.Transactional.Records {
		t.Errorf("%d transactional records acked, %d committed: want all committed", r.TxnAcked, r.Transactional.Records)
	}
	if r.ReadCommitted != nil && r.Transactional != nil && r.ReadCommitted.Records != r.Transactional.Records {
		t.Errorf("read_committed read %d records, %d were committed", r.ReadCommitted.Records, r.Transactional.Records)
	}
	if r.ReadUncommitted != nil && r.ReadUncommitted.Records != r.TxnAcked {
		t.Errorf("read_uncommitted read %d records, %d were acked", r.ReadUncommitted.Records, r.TxnAcked)
	}
	if r.E2ESent != int64(s.Rate)/2 || r.E2EReceived != r.E2ESent || r.E2ECommits < 3 {
		t.Errorf("e2e: %d sent, %d read in %d transactions: want %d, all read, about 5 transactions", r.E2ESent, r.E2EReceived, r.E2ECommits, s.Rate/2)
	}
	checkLatency(t, r.E2E, int(r.E2ESent-min(int64(s.Rate)/2, r.E2ESent/10)))
	for _, l := range []*Latency{r.Commit, r.Flush, r.CTPCommit} {
		if l == nil || l.P50 <= 0 || l.P50 > l.Max {
			t.Errorf("commit latency %+v: want 0 < p50 <= max", l)
		}
	}
	for _, key := range []string{"txn_ratio", "read_ratio", "commit_p99_ms", "ctp_records_per_sec", "e2e_p99_ms"} {
		if st := rep.Medians[key]; st == nil || st.Median <= 0 || st.Min != st.Median || st.Max != st.Median {
			t.Errorf("median %s = %+v: want one positive round", key, st)
		}
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"transactional / idempotent", "read_committed / read_uncommitted", "EndTransaction p99", "e2e read_committed"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report has no %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back TxnReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not decode: %v\n%s", err, js.String())
	}
}

func TestTxnMedians(t *testing.T) {
	rs := []*TxnResult{{TxnRatio: 0.8}, {TxnRatio: 1.0}, {TxnRatio: 0.95}, {}}
	st := txnMedians(rs)["txn_ratio"]
	if st == nil || st.Median != 0.95 || st.Min != 0.8 || st.Max != 1.0 || len(st.Rounds) != 3 {
		t.Errorf("txn_ratio %+v: want median 0.95, min 0.8, max 1.0 over the 3 rounds that have it", st)
	}
	if txnMedians(nil)["txn_ratio"] != nil {
		t.Error("a figure with no rounds has a median")
	}
}

// tsWriter prefixes each progress line with the seconds since start.
type tsWriter struct {
	b     *syncBuffer
	start time.Time
}

func (w tsWriter) Write(p []byte) (int, error) {
	fmt.Fprintf(w.b, "%5.2f %s", time.Since(w.start).Seconds(), p)
	return len(p), nil
}

// TestSliceOrder: each producer gets the same number of turns, in pairs
// of alternating order, the transactional producer first when asked.
func TestSliceOrder(t *testing.T) {
	for _, first := range []bool{true, false} {
		got := sliceOrder(5, first)
		if len(got) != 10 {
			t.Fatalf("sliceOrder(5, %v) has %d turns, want 10", first, len(got))
		}
		txn := 0
		for i, isTxn := range got {
			if isTxn {
				txn++
			}
			// ABBA: turns 2k and 2k+1 differ; turn 2k+2 repeats 2k+1.
			if i%2 == 1 && got[i] == got[i-1] {
				t.Errorf("sliceOrder(5, %v): turns %d and %d are the same producer: %v", first, i-1, i, got)
			}
			if i%2 == 0 && i > 0 && got[i] != got[i-1] {
				t.Errorf("sliceOrder(5, %v): pair %d does not start with the producer that ended the last: %v", first, i/2, got)
			}
		}
		if txn != 5 || got[0] != first {
			t.Errorf("sliceOrder(5, %v) = %v: %d transactional turns, first %v", first, got, txn, got[0])
		}
	}
}
