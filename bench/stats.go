package bench

import (
	"math"
	"slices"
	"time"
)

// Latency is a latency distribution: exact percentiles over every sample.
type Latency struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p99_9_ms"`
	Max     float64 `json:"max_ms"`
}

// summarize sorts samples in place and returns their percentiles, or nil
// when there are none.
func summarize(samples []time.Duration) *Latency {
	if len(samples) == 0 {
		return nil
	}
	slices.Sort(samples)
	return &Latency{
		Samples: len(samples),
		P50:     ms(percentile(samples, 0.50)),
		P99:     ms(percentile(samples, 0.99)),
		P999:    ms(percentile(samples, 0.999)),
		Max:     ms(samples[len(samples)-1]),
	}
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by the
// nearest-rank method: the smallest sample with at least q of all samples at
// or below it.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. It does not modify xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Throughput is what one side of a workload moved.
type Throughput struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"` // key + value bytes
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MiBPerSec     float64 `json:"mib_per_sec"`
}

func newThroughput(records, bytes int64, elapsed time.Duration) *Throughput {
	t := &Throughput{Records: records, Bytes: bytes, Seconds: elapsed.Seconds()}
	if t.Seconds > 0 {
		t.RecordsPerSec = float64(records) / t.Seconds
		t.MiBPerSec = float64(bytes) / (1 << 20) / t.Seconds
	}
	return t
}
