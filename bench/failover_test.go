package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// The samsa binary the pair tests start, built once (without -race: the
// broker's own races are cmd/samsa's tests' business, and a race build is
// several times slower on a 2-core machine).
var samsa struct {
	once sync.Once
	dir  string // removed by TestMain
	bin  string
	root string // the module root
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if samsa.dir != "" {
		os.RemoveAll(samsa.dir)
	}
	os.Exit(code)
}

// samsaBinary builds ./cmd/samsa of this module into a temp dir and
// returns it and the module root.
func samsaBinary(t *testing.T) (bin, root string) {
	t.Helper()
	samsa.once.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			samsa.err = err
			return
		}
		samsa.root = filepath.Dir(strings.TrimSpace(string(gomod)))
		if samsa.dir, samsa.err = os.MkdirTemp("", "samsa-bench-test-"); samsa.err != nil {
			return
		}
		samsa.bin = filepath.Join(samsa.dir, "samsa")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", samsa.bin, "./cmd/samsa")
		cmd.Dir = samsa.root
		if out, err := cmd.CombinedOutput(); err != nil {
			samsa.err = &buildError{err, out}
		}
	})
	if samsa.err != nil {
		t.Fatalf("cannot build samsa: %v", samsa.err)
	}
	return samsa.bin, samsa.root
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// pairDirs counts the pairs' temp directories: none may be left behind.
func pairDirs(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "samsa-bench-pair-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// testPairSet shortens the group's first rebalance, so the consumer starts
// reading within the short warm-up.
var testPairSet = map[string]any{"groups.initial_rebalance_delay_ms": int64(100)}

// TestFailover runs a short failover of each mode against a real pair:
// nothing acknowledged is lost, writes and reads resume, the killed node
// rejoins, and nothing is left behind.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a pair of brokers")
	}
	bin, root := samsaBinary(t)
	dirs := pairDirs(t)
	runs := map[string][]*FailoverResult{}
	for _, mode := range []string{PromoteManual, PromoteAuto} {
		t.Run(mode, func(t *testing.T) {
			s := DefaultFailoverSpec(mode)
			s.Rate, s.Size, s.Partitions = 500, 100, 2
			s.FailoverTimeout = 2 * time.Second
			s.Warmup, s.After, s.Drain, s.Timeout = 1500*time.Millisecond, time.Second, 20*time.Second, 60*time.Second
			var progress bytes.Buffer
			r, err := RunFailover(context.Background(), FailoverConfig{
				SamsaBin: bin, Config: filepath.Join(root, "config.toml"), Spec: s, Progress: &progress, Set: testPairSet,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(r.oneLine())
			if r.Error != "" {
				t.Errorf("run failed: %s\n%s", r.Error, progress.String())
			}
			if r.Lost != 0 || r.LogMissing != 0 {
				t.Errorf("%d acknowledged records not read, %d not in the log", r.Lost, r.LogMissing)
			}
			if r.LogDuplicates != 0 {
				t.Errorf("%d records in the log twice", r.LogDuplicates)
			}
			if r.Promoted < 0 || r.Rejoined < 0 || r.Writes < 0 || r.Reads < 0 || r.PostKillRead < 0 {
				t.Errorf("promoted %v, rejoined %v, writes %v, reads %v, post-kill read %v ms: want every one to happen",
					r.Promoted, r.Rejoined, r.Writes, r.Reads, r.PostKillRead)
			}
			if !(r.AckedBeforeKill > 0 && r.Acked > r.AckedBeforeKill) || r.Failed != 0 || r.Pending != 0 {
				t.Errorf("%d acked (%d before the kill), %d failed (%s), %d pending: want every record acked, some after the kill",
					r.Acked, r.AckedBeforeKill, r.Failed, r.FirstError, r.Pending)
			}
			if r.Consumed < r.Acked {
				t.Errorf("read %d of %d acked records", r.Consumed, r.Acked)
			}
			if !strings.Contains(progress.String(), "killed node 1") {
				t.Errorf("no progress on the kill:\n%s", progress.String())
			}
			runs[mode] = append(runs[mode], r)
		})
	}
	if n := pairDirs(t); n != dirs {
		t.Errorf("%d pair temp dirs before, %d after", dirs, n)
	}

	// The report of these runs.
	rep := &FailoverReport{Machine: ThisMachine(), Rounds: 1, Modes: []string{PromoteManual, PromoteAuto},
		Spec: DefaultFailoverSpec(PromoteManual), Runs: runs, Medians: map[string]*FailoverResult{}}
	for mode, rs := range runs {
		rep.Medians[mode] = medianFailover(rs)
	}
	if rep.Failed() || rep.Lost() != 0 {
		t.Errorf("report: failed %v, lost %d", rep.Failed(), rep.Lost())
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kill -> writes acked, ms", "acked records lost", "manual", "auto"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report has no %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back FailoverReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not decode: %v\n%s", err, js.String())
	}
}

func TestMedianFailover(t *testing.T) {
	rs := []*FailoverResult{
		{Writes: 100, Promoted: 10, Lost: 0, Duplicates: 3},
		{Writes: -1, Promoted: 30, Lost: 2},
		{Writes: 300, Promoted: 20},
	}
	m := medianFailover(rs)
	if m.Writes != 300 || m.Promoted != 20 {
		t.Errorf("writes %v, promoted %v: want 300 (never counts as the longest) and 20", m.Writes, m.Promoted)
	}
	if m.Lost != 2 || m.Duplicates != 3 {
		t.Errorf("lost %d, duplicates %d: want the largest, 2 and 3", m.Lost, m.Duplicates)
	}
	if m := medianFailover(rs[1:2]); m.Writes != -1 {
		t.Errorf("one run that never resumed: writes %v, want -1", m.Writes)
	}
}

// TestNodeConfig checks a pair node's generated config: the shipped
// config with the node's identity, its peer and the overrides.
func TestNodeConfig(t *testing.T) {
	base := []byte("node_id = 1\nlisten = \"x\"\n\n[broker]\nretention_check_interval_ms = 300000\n\n[replication]\nrole = \"\"\nauto_failover = false\nfailover_timeout_ms = 5000\n\n[admin]\nlisten = \"\"\n")
	cfg := PairConfig{AutoFailover: true, FailoverTimeout: 2 * time.Second, Set: map[string]any{"broker.retention_check_interval_ms": int64(5000)}}
	n := &PairNode{ID: 2, Link: "127.0.0.1:2", AdminAddr: "127.0.0.1:3"}
	text, err := nodeConfig(base, cfg, n, "127.0.0.1:1", "127.0.0.1:4", "127.0.0.1:5")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		NodeID      int64  `toml:"node_id"`
		Listen      string `toml:"listen"`
		Broker      map[string]any
		Replication map[string]any
		Admin       map[string]any
	}
	if _, err := toml.Decode(string(text), &got); err != nil {
		t.Fatalf("%v:\n%s", err, text)
	}
	want := map[string]any{"role": "standby", "listen": "127.0.0.1:2", "peer_id": int64(1), "peer_client": "127.0.0.1:4",
		"peer_link": "127.0.0.1:5", "auto_failover": true, "failover_timeout_ms": int64(2000)}
	for k, v := range want {
		if got.Replication[k] != v {
			t.Errorf("replication.%s = %v, want %v", k, got.Replication[k], v)
		}
	}
	if got.NodeID != 2 || got.Listen != "127.0.0.1:1" || got.Admin["listen"] != "127.0.0.1:3" || got.Broker["retention_check_interval_ms"] != int64(5000) {
		t.Errorf("config:\n%s", text)
	}
}
