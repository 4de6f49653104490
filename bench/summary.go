package bench

import "slices"

// medianResult folds the successful rounds of one workload against one
// broker into one Result: the median of every figure across rounds, except
// the peak RSS, which is the largest. Counts are the medians too. It returns
// nil for no rounds.
func medianResult(rounds []*Result) *Result {
	if len(rounds) == 0 {
		return nil
	}
	first := rounds[0]
	m := &Result{Spec: first.Spec, Name: first.Name, Broker: first.Broker}
	pick := func(f func(*Result) float64) float64 {
		xs := make([]float64, len(rounds))
		for i, r := range rounds {
			xs[i] = f(r)
		}
		return median(xs)
	}
	m.Produce = medianThroughput(rounds, func(r *Result) *Throughput { return r.Produce })
	m.Consume = medianThroughput(rounds, func(r *Result) *Throughput { return r.Consume })
	if all(rounds, func(r *Result) bool { return r.Latency != nil }) {
		m.Latency = &Latency{
			Samples: int(pick(func(r *Result) float64 { return float64(r.Latency.Samples) })),
			P50:     pick(func(r *Result) float64 { return r.Latency.P50 }),
			P99:     pick(func(r *Result) float64 { return r.Latency.P99 }),
			P999:    pick(func(r *Result) float64 { return r.Latency.P999 }),
			Max:     pick(func(r *Result) float64 { return r.Latency.Max }),
		}
	}
	if all(rounds, func(r *Result) bool { return r.Usage != nil }) {
		u := &BrokerUsage{
			CPUSeconds:   pick(func(r *Result) float64 { return r.Usage.CPUSeconds }),
			CPUSecPerGiB: pick(func(r *Result) float64 { return r.Usage.CPUSecPerGiB }),
			RSS:          int64(pick(func(r *Result) float64 { return float64(r.Usage.RSS) })),
			PeakReset:    all(rounds, func(r *Result) bool { return r.Usage.PeakReset }),
		}
		for _, r := range rounds {
			u.PeakRSS = max(u.PeakRSS, r.Usage.PeakRSS)
		}
		m.Usage = u
	}
	if all(rounds, func(r *Result) bool { return r.Bulk != nil }) {
		m.Bulk = &BulkFigures{
			Produced: pick(func(r *Result) float64 { return r.Bulk.Produced }),
			Consumed: pick(func(r *Result) float64 { return r.Bulk.Consumed }),
		}
	}
	m.Stages = medianStages(rounds)
	for _, r := range rounds {
		m.TimedOut = m.TimedOut || r.TimedOut
		m.Failed += r.Failed
		if m.Error == "" {
			m.Error = r.Error
		}
	}
	return m
}

func medianThroughput(rounds []*Result, get func(*Result) *Throughput) *Throughput {
	if !all(rounds, func(r *Result) bool { return get(r) != nil }) {
		return nil
	}
	col := func(f func(*Throughput) float64) float64 {
		xs := make([]float64, len(rounds))
		for i, r := range rounds {
			xs[i] = f(get(r))
		}
		return median(xs)
	}
	return &Throughput{
		Records:       int64(col(func(t *Throughput) float64 { return float64(t.Records) })),
		Bytes:         int64(col(func(t *Throughput) float64 { return float64(t.Bytes) })),
		Seconds:       col(func(t *Throughput) float64 { return t.Seconds }),
		RecordsPerSec: col(func(t *Throughput) float64 { return t.RecordsPerSec }),
		MiBPerSec:     col(func(t *Throughput) float64 { return t.MiBPerSec }),
	}
}

func all(rounds []*Result, f func(*Result) bool) bool {
	return !slices.ContainsFunc(rounds, func(r *Result) bool { return !f(r) })
}
