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

	"github.com/twmb/franz-go/pkg/kfake"
)

// startKfake starts an in-process kfake and returns it as a target whose
// process metrics are this test process's own.
func startKfake(t *testing.T) Target {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return Target{Name: "kfake", Addr: c.ListenAddrs()[0], PID: os.Getpid()}
}

func small(kind string) Spec {
	s := QuickSpec(kind)
	s.Records = 2_000
	s.Partitions = 4
	s.Timeout = 15 * time.Second
	if kind == KindE2E {
		s.Rate = 4_000
		s.Records = 2_000
	}
	return s
}

func checkLatency(t *testing.T, l *Latency, samples int) {
	t.Helper()
	if l == nil {
		t.Fatal("no latency")
	}
	if l.Samples != samples {
		t.Errorf("latency samples = %d, want %d", l.Samples, samples)
	}
	if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency %+v: want 0 < p50 <= p99 <= p99.9 <= max", *l)
	}
}

func checkThroughput(t *testing.T, what string, tp *Throughput, records int64, size int) {
	t.Helper()
	if tp == nil {
		t.Fatalf("no %s throughput", what)
	}
	if tp.Records != records {
		t.Errorf("%s records = %d, want %d", what, tp.Records, records)
	}
	if size > 0 && tp.Bytes != records*int64(size) {
		t.Errorf("%s bytes = %d, want %d", what, tp.Bytes, records*int64(size))
	}
	if !(tp.Seconds > 0 && tp.RecordsPerSec > 0 && tp.MiBPerSec > 0) {
		t.Errorf("%s throughput %+v: want positive figures", what, *tp)
	}
}

func checkClean(t *testing.T, r *Result) {
	t.Helper()
	if r.TimedOut || r.Failed != 0 || r.Error != "" {
		t.Errorf("%s: timed out %v, %d failed, error %q", r.Name, r.TimedOut, r.Failed, r.Error)
	}
	if r.Usage == nil || r.Usage.CPUSeconds < 0 || r.Usage.PeakRSS <= 0 || r.Usage.RSS <= 0 {
		t.Errorf("%s: broker usage %+v: want CPU >= 0 and positive memory", r.Name, r.Usage)
	}
}

// TestWorkloads runs every workload, quick-sized, against an in-process
// kfake and checks the counts and that the figures agree with each other.
func TestWorkloads(t *testing.T) {
	target := startKfake(t)
	ctx := context.Background()
	run := func(s Spec) *Result {
		t.Helper()
		r, err := Run(ctx, target, s, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.Name(), err)
		}
		checkClean(t, r)
		return r
	}

	t.Run("produce", func(t *testing.T) {
		s := small(KindProduce)
		r := run(s)
		checkThroughput(t, "produce", r.Produce, s.Records, s.Size)
		checkLatency(t, r.Latency, int(s.Records))
		if r.Consume != nil {
			t.Errorf("produce has consume figures: %+v", r.Consume)
		}
	})
	t.Run("produce keyed lz4 acks=1 two producers", func(t *testing.T) {
		s := small(KindProduce)
		s.Size, s.Keys, s.Compression, s.Acks, s.Producers = 100, "set:10", "lz4", "1", 2
		s.Records = 2_001 // not a multiple of the producers
		r := run(s)
		checkThroughput(t, "produce", r.Produce, s.Records, 0)
		if min := s.Records * int64(s.Size+len("key-0")); r.Produce.Bytes < min {
			t.Errorf("bytes = %d, want at least %d with keys", r.Produce.Bytes, min)
		}
		checkLatency(t, r.Latency, int(s.Records))
	})
	t.Run("produce random keys zstd acks=0", func(t *testing.T) {
		s := small(KindProduce)
		s.Keys, s.Compression, s.Acks = "random", "zstd", "0"
		r := run(s)
		checkThroughput(t, "produce", r.Produce, s.Records, 0)
		if r.Latency != nil {
			t.Errorf("acks=0 has latency %+v", *r.Latency)
		}
	})
	t.Run("consume", func(t *testing.T) {
		s := small(KindConsume)
		r := run(s)
		checkThroughput(t, "consume", r.Consume, s.Records, s.Size)
		if r.Produce != nil {
			t.Errorf("consume has (untimed) produce figures: %+v", r.Produce)
		}
	})
	t.Run("e2e", func(t *testing.T) {
		s := small(KindE2E)
		start := time.Now()
		r := run(s)
		checkThroughput(t, "produce", r.Produce, s.Records, s.Size)
		checkThroughput(t, "consume", r.Consume, s.Records, s.Size)
		warm := min(int64(s.Rate)/2, s.Records/10)
		checkLatency(t, r.Latency, int(s.Records-warm))
		// Paced: 2,000 records at 4,000/s take about half a second.
		if el := time.Since(start); el < 400*time.Millisecond {
			t.Errorf("e2e took %v: not paced at %d records/s", el, s.Rate)
		}
		if r.Produce.RecordsPerSec > 1.2*float64(s.Rate) {
			t.Errorf("e2e sent %.0f records/s, above the rate %d", r.Produce.RecordsPerSec, s.Rate)
		}
	})
	t.Run("e2e under a bulk load", func(t *testing.T) {
		s := small(KindE2E)
		s.Bulk = 4 // MiB/s
		r := run(s)
		checkThroughput(t, "produce", r.Produce, s.Records, s.Size)
		if r.Bulk == nil || r.Bulk.Produced < 3.6 || r.Bulk.Produced > 6 || r.Bulk.Consumed <= 0 || r.Bulk.Bytes <= 0 {
			t.Fatalf("bulk figures %+v, want about 4 MiB/s acknowledged and some read", r.Bulk)
		}
		if !strings.Contains(r.Name, "under 4 MiB/s") {
			t.Errorf("name %q does not say the bulk load", r.Name)
		}
	})
	t.Run("e2e under a bulk load in a process of its own", func(t *testing.T) {
		s := small(KindE2E)
		s.Bulk = 4 // MiB/s
		s.BulkProcess = []string{os.Args[0], "-test.run=^TestBulkChild$"}
		mark := filepath.Join(t.TempDir(), "pid")
		t.Setenv("SAMSA_BENCH_TEST_MARK", mark)
		r := run(s)
		checkThroughput(t, "produce", r.Produce, s.Records, s.Size)
		if r.Bulk == nil || r.Bulk.Produced < 3.6 || r.Bulk.Produced > 6 || r.Bulk.Consumed <= 0 || r.Bulk.Bytes <= 0 {
			t.Fatalf("bulk figures %+v, want about 4 MiB/s acknowledged and some read", r.Bulk)
		}
		pid, err := os.ReadFile(mark)
		if err != nil || string(pid) == fmt.Sprint(os.Getpid()) {
			t.Fatalf("the bulk load did not run in a process of its own: %q, %v", pid, err)
		}
	})
	t.Run("mixed", func(t *testing.T) {
		s := small(KindMixed)
		r := run(s)
		checkThroughput(t, "produce", r.Produce, s.Records, s.Size)
		checkThroughput(t, "consume", r.Consume, s.Records*int64(s.Consumers), s.Size)
	})
	t.Run("e2e time limit", func(t *testing.T) {
		s := small(KindE2E)
		// Well past the half-second warm-up, so that records are measured
		// even when a loaded machine delays the consumer.
		s.Records, s.Timeout = 1_000_000_000, 2*time.Second
		start := time.Now()
		r, err := Run(ctx, target, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > s.Timeout+flushGrace {
			t.Errorf("took %v with a %v time limit", el, s.Timeout)
		}
		if !r.TimedOut || r.Produce.Records <= 0 || r.Consume.Records > r.Produce.Records || r.Latency == nil {
			t.Errorf("timed out %v, %d records sent, %d read, latency %v: want stopped by the limit after some records",
				r.TimedOut, r.Produce.Records, r.Consume.Records, r.Latency)
		}
	})
	t.Run("time limit", func(t *testing.T) {
		s := small(KindProduce)
		s.Records, s.Timeout = 1_000_000_000, 300*time.Millisecond
		start := time.Now()
		r, err := Run(ctx, target, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > s.Timeout+flushGrace {
			t.Errorf("took %v with a %v time limit", el, s.Timeout)
		}
		if !r.TimedOut || r.Produce.Records <= 0 || r.Produce.Records >= s.Records {
			t.Errorf("timed out %v with %d records (%d failed, error %q): want stopped by the limit after some records", r.TimedOut, r.Produce.Records, r.Failed, r.Error)
		}
	})
}

// TestSuiteReport runs a tiny suite against the same kfake under two names
// and checks the medians, the ratios and both reports.
func TestSuiteReport(t *testing.T) {
	a := startKfake(t)
	b := a
	a.Name, b.Name = "one", "two"
	s := small(KindProduce)
	s.Records = 500
	var progress bytes.Buffer
	rep := Suite(context.Background(), []Target{a, b}, []Spec{s}, 2, &progress, nil)
	if rep.Failed() {
		t.Fatalf("suite failed: %+v", rep.Workloads[0].Errors)
	}
	w := rep.Workloads[0]
	if len(w.Rounds["one"]) != 2 || len(w.Rounds["two"]) != 2 {
		t.Fatalf("rounds = %d and %d, want 2 each", len(w.Rounds["one"]), len(w.Rounds["two"]))
	}
	if w.Medians["one"].Produce.Records != s.Records {
		t.Errorf("median records = %d, want %d", w.Medians["one"].Produce.Records, s.Records)
	}
	if w.Ratios["produce_records_per_sec"] <= 0 {
		t.Errorf("ratios = %v, want a positive throughput ratio", w.Ratios)
	}
	if !strings.Contains(progress.String(), "one: produce 1KiB acks=all, round 2/2") {
		t.Errorf("progress does not name the rounds:\n%s", progress.String())
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"produce 1KiB acks=all", "records/s", "ack p99 ms", "one/two", "x"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report has no %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not decode: %v", err)
	}
	if len(back.Workloads) != 1 || back.Workloads[0].Medians["two"] == nil {
		t.Errorf("JSON report lost the workload: %s", js.String())
	}
}

func TestPlanSpecs(t *testing.T) {
	for _, quick := range []bool{false, true} {
		specs := PlanSpecs(quick)
		var names []string
		for _, s := range specs {
			if err := s.Validate(); err != nil {
				t.Errorf("quick=%v: %v", quick, err)
			}
			names = append(names, s.Name())
		}
		want := "produce 1KiB acks=all|produce 100B acks=all|produce 1KiB acks=1|consume 1KiB|e2e 1KiB acks=all 10k/s|mixed 1KiB acks=all"
		if got := strings.Join(names, "|"); got != want {
			t.Errorf("quick=%v: workloads %s, want %s", quick, got, want)
		}
	}
}

// TestBulkChild is the bulk load process of the subtest "e2e under a bulk
// load in a process of its own" (Spec.BulkProcess runs this test binary):
// it writes its pid where SAMSA_BENCH_TEST_MARK says, then runs the load.
func TestBulkChild(t *testing.T) {
	addr := os.Getenv(BulkChildEnv)
	if addr == "" {
		t.Skip("the bulk load process of another test")
	}
	if err := os.WriteFile(os.Getenv("SAMSA_BENCH_TEST_MARK"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := small(KindE2E)
	s.Bulk = 4
	if err := RunBulkChild(context.Background(), addr, s, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
