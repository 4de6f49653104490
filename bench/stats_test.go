package bench

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPercentile(t *testing.T) {
	f := func(n int, q float64, want time.Duration) {
		t.Helper()
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i + 1) // 1..n
		}
		if got := percentile(s, q); got != want {
			t.Errorf("percentile(1..%d, %v) = %v, want %v", n, q, got, want)
		}
	}
	f(1, 0.5, 1)
	f(1, 0.999, 1)
	f(2, 0.5, 1)
	f(2, 0.99, 2)
	f(100, 0.5, 50)
	f(100, 0.99, 99)
	f(100, 0.999, 100)
	f(1000, 0.999, 999)
	f(1000, 1, 1000)
	f(10, 0, 1) // rank clamps to the first sample
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	if summarize(nil) != nil {
		t.Fatal("summarize(nil) is not nil")
	}
	s := make([]time.Duration, 10_000)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Microsecond
	}
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	l := summarize(s)
	want := Latency{Samples: 10_000, P50: 5, P99: 9.9, P999: 9.99, Max: 10}
	if *l != want {
		t.Fatalf("summarize = %+v, want %+v", *l, want)
	}
}

func TestMedian(t *testing.T) {
	f := func(xs []float64, want float64) {
		t.Helper()
		in := append([]float64(nil), xs...)
		if got := median(xs); got != want {
			t.Errorf("median(%v) = %v, want %v", xs, got, want)
		}
		for i := range xs {
			if xs[i] != in[i] {
				t.Fatalf("median modified its input: %v, was %v", xs, in)
			}
		}
	}
	f(nil, 0)
	f([]float64{3}, 3)
	f([]float64{3, 1}, 2)
	f([]float64{5, 1, 3}, 3)
	f([]float64{4, 1, 3, 2}, 2.5)
}

func TestMedianResult(t *testing.T) {
	if medianResult(nil) != nil {
		t.Fatal("medianResult(nil) is not nil")
	}
	mk := func(rps float64, p50 float64, cpu float64, peak int64) *Result {
		return &Result{
			Name:    "produce 1KiB acks=all",
			Broker:  "b",
			Produce: &Throughput{Records: 10, Bytes: 100, Seconds: 1, RecordsPerSec: rps, MiBPerSec: rps / 1000},
			Latency: &Latency{Samples: 10, P50: p50, P99: p50 * 2, P999: p50 * 3, Max: p50 * 4},
			Usage:   &BrokerUsage{CPUSeconds: cpu, CPUSecPerGiB: cpu * 10, PeakRSS: peak, RSS: peak / 2},
		}
	}
	m := medianResult([]*Result{mk(100, 1, 1, 10), mk(300, 3, 3, 50), mk(200, 2, 2, 20)})
	if m.Produce.RecordsPerSec != 200 || m.Latency.P50 != 2 || m.Latency.Max != 8 || m.Usage.CPUSecPerGiB != 20 {
		t.Errorf("medians = %+v %+v %+v, want rate 200, p50 2, max 8, CPU/GiB 20", *m.Produce, *m.Latency, *m.Usage)
	}
	if m.Usage.PeakRSS != 50 {
		t.Errorf("peak RSS = %d, want the largest, 50", m.Usage.PeakRSS)
	}
	if m.Consume != nil {
		t.Errorf("consume = %+v, want nil: no round consumed", m.Consume)
	}
	// A round without latency leaves the latency out rather than mixing.
	r := mk(1, 1, 1, 1)
	r.Latency = nil
	if m := medianResult([]*Result{mk(1, 1, 1, 1), r}); m.Latency != nil {
		t.Errorf("latency = %+v, want nil when a round has none", m.Latency)
	}
}

func TestRatios(t *testing.T) {
	a := &Result{Produce: &Throughput{RecordsPerSec: 300}, Usage: &BrokerUsage{CPUSecPerGiB: 1, PeakRSS: 10}}
	b := &Result{Produce: &Throughput{RecordsPerSec: 100}, Usage: &BrokerUsage{CPUSecPerGiB: 4, PeakRSS: 0}}
	r := ratios(a, b)
	if r["produce_records_per_sec"] != 3 || r["cpu_sec_per_gib"] != 0.25 {
		t.Errorf("ratios = %v", r)
	}
	if _, ok := r["peak_rss"]; ok {
		t.Errorf("ratios has peak_rss over a zero: %v", r)
	}
	if ratios(a, nil) != nil {
		t.Error("ratios with a missing side is not nil")
	}
}

func TestFmtCount(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		if got := fmtCount(v); got != want {
			t.Errorf("fmtCount(%v) = %q, want %q", v, got, want)
		}
	}
	f(0, "0")
	f(999, "999")
	f(1000, "1,000")
	f(123456.6, "123,457")
	f(1234567, "1,234,567")
}

func TestSpecValidate(t *testing.T) {
	ok := DefaultSpec(KindProduce)
	if err := ok.Validate(); err != nil {
		t.Fatalf("default produce spec: %v", err)
	}
	f := func(change func(*Spec)) {
		t.Helper()
		s := DefaultSpec(KindE2E)
		change(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("spec %+v validated", s)
		}
	}
	f(func(s *Spec) { s.Kind = "nope" })
	f(func(s *Spec) { s.Records = 0 })
	f(func(s *Spec) { s.Size = 8 }) // e2e needs room for the timestamp
	f(func(s *Spec) { s.Partitions = 0 })
	f(func(s *Spec) { s.Acks = "2" })
	f(func(s *Spec) { s.Compression = "brotli" })
	f(func(s *Spec) { s.Keys = "set:0" })
	f(func(s *Spec) { s.Bulk = -1 })
	f(func(s *Spec) { s.Kind, s.Bulk = KindProduce, 100 }) // a bulk load goes with e2e only
	f(func(s *Spec) { s.Bulk, s.BulkAcks = 100, "2" })
	f(func(s *Spec) { s.BulkAcks = "1" }) // without a bulk load
	f(func(s *Spec) { s.Keys = "sometimes" })
	f(func(s *Spec) { s.Rate = 0 })
	f(func(s *Spec) { s.Timeout = 0 })
	f(func(s *Spec) { s.Producers = 0 })
	f(func(s *Spec) { s.Cold = true }) // a dropped page cache goes with consume only

	// The bulk producer's own acks show in the name.
	s := DefaultSpec(KindE2E)
	s.Bulk, s.BulkAcks = 100, "1"
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Name(), "under 100 MiB/s acks=1"; !strings.Contains(got, want) {
		t.Errorf("name %q does not say %q", got, want)
	}
	if acks, _ := s.bulkSpec().acks(); acks != kgo.LeaderAck() {
		t.Errorf("bulk producer's acks %v, want 1", acks)
	}
	// A cold consume says so (its run drops the machine's page cache, so
	// make test does not run one: docs/BENCHMARKS.md has its figures).
	c := DefaultSpec(KindConsume)
	c.Cold = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.Name(); got != "consume 1KiB cold" {
		t.Errorf("cold consume's name %q", got)
	}
}
