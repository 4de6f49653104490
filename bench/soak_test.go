package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the soak's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSoak runs a 20-second soak with a kill every 8 s (the primary, then
// the standby): nothing acknowledged is lost, samples are printed, the
// failover happens and nothing is left behind.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a pair of brokers")
	}
	bin, root := samsaBinary(t)
	dirs := pairDirs(t)
	s := DefaultSoakSpec()
	s.Duration, s.KillEvery, s.SampleEvery, s.ChurnEvery = 20*time.Second, 8*time.Second, 2*time.Second, 5*time.Second
	s.TrendAfter, s.RestartDelay, s.FailoverTimeout = 0, 500*time.Millisecond, 2*time.Second
	s.Rate, s.Size, s.Partitions, s.Keys = 200, 128, 2, 20
	var lines syncBuffer
	rep, err := RunSoak(context.Background(), SoakConfig{
		SamsaBin: bin, Config: filepath.Join(root, "config.toml"), Spec: s, Lines: &lines, Set: testPairSet,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Log(text.String())
	if rep.Failed() {
		t.Errorf("soak failed: lost %d, errors %v\n%s", rep.Lost(), rep.Errors, lines.String())
	}
	if n := strings.Count(lines.String(), "node1 "); n < 5 || len(rep.Samples) < 5 {
		t.Errorf("%d sample lines, %d samples: want at least 5 of each\n%s", n, len(rep.Samples), lines.String())
	}
	if rep.Kills != [2]int{1, 1} || len(rep.FailoverMs) != 1 {
		t.Errorf("kills %v (primary, standby), %d failovers: want one of each", rep.Kills, len(rep.FailoverMs))
	}
	for i, tp := range rep.Topics {
		if tp == nil || tp.Acked == 0 || tp.Failed != 0 || tp.Pending != 0 {
			t.Errorf("topic %d: %+v: want records acked, none failed or pending", i, tp)
		}
	}
	if rep.PlainInLog < rep.Topics[soakPlain].Acked || rep.CompactKeys != s.Keys {
		t.Errorf("plain: %d in the log of %d acked; compact: %d keys of %d", rep.PlainInLog, rep.Topics[soakPlain].Acked, rep.CompactKeys, s.Keys)
	}
	for i, tr := range rep.Trends {
		if tr == nil || tr.Samples < 2 || math.IsNaN(tr.RSSPerHour) {
			t.Errorf("node %d trend %+v: want one over the samples", i+1, tr)
		}
	}
	for _, want := range []string{"SIGKILL node 1 (the primary)", "node 2 leads", "(the standby)", "in sync again"} {
		if !strings.Contains(lines.String(), want) {
			t.Errorf("no event %q:\n%s", want, lines.String())
		}
	}
	if !strings.Contains(text.String(), "PASS") {
		t.Errorf("summary has no verdict:\n%s", text.String())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back SoakReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Samples) != len(rep.Samples) {
		t.Errorf("JSON report does not decode (%v) or lost samples", err)
	}
	if n := pairDirs(t); n != dirs {
		t.Errorf("%d pair temp dirs before, %d after", dirs, n)
	}
}

func TestSlope(t *testing.T) {
	f := func(xs, ys []float64, want float64) {
		t.Helper()
		if got := slope(xs, ys); math.Abs(got-want) > 1e-9 {
			t.Errorf("slope(%v, %v) = %v, want %v", xs, ys, got, want)
		}
	}
	f([]float64{0, 1, 2}, []float64{1, 3, 5}, 2)
	f([]float64{0, 1, 2, 3}, []float64{5, 5, 5, 5}, 0)
	f([]float64{1}, []float64{7}, 0)
	f([]float64{2, 2}, []float64{1, 9}, 0)
	f([]float64{0, 1, 2, 3}, []float64{0, 2, 2, 4}, 1.2)
}

func TestSoakTrendStretch(t *testing.T) {
	smp := func(sec float64, pid int, rss int64) SoakSample {
		var s SoakSample
		s.Elapsed = sec
		s.Nodes[0] = NodeSample{Up: pid != 0, PID: pid, RSS: rss}
		return s
	}
	// A process growing 1 MiB per sample, restarted (RSS back down), then
	// a longer flat one.
	samples := []SoakSample{smp(0, 1, 100<<20), smp(1800, 1, 101<<20), smp(3600, 0, 0),
		smp(5400, 2, 50<<20), smp(7200, 2, 50<<20), smp(9000, 2, 50<<20)}
	tr := soakTrend(samples, 0, 0, []float64{4000})
	if tr.Samples != 5 || tr.StretchSamples != 3 || tr.StretchRSSPerHour != 0 || tr.StretchSec != 3600 {
		t.Errorf("trend %+v: want 5 samples, a stretch of 3 over an hour with a flat RSS", tr)
	}
	if tr := soakTrend(samples, 0, 2000, nil); tr.Samples != 3 {
		t.Errorf("samples after 2000 s: %d, want 3", tr.Samples)
	}
}
