package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// settle is the pause between runs, so a broker's background work after
// one run (deleting its topic, GC) is not charged to the next.
const settle = 500 * time.Millisecond

// Report is the outcome of a suite: every workload against every broker,
// round by round, with medians.
type Report struct {
	Machine   Machine         `json:"machine"`
	Rounds    int             `json:"rounds"`
	Brokers   []string        `json:"brokers"`
	Workloads []*WorkloadRuns `json:"workloads"`
	Errors    []string        `json:"errors,omitempty"` // about the brokers, not a single run
}

// WorkloadRuns is one workload against every broker.
type WorkloadRuns struct {
	Name    string               `json:"name"`
	Spec    Spec                 `json:"spec"`
	Rounds  map[string][]*Result `json:"rounds"`           // successful runs by broker
	Errors  map[string][]string  `json:"errors,omitempty"` // failed runs by broker
	Medians map[string]*Result   `json:"medians"`
	// Ratios are the first broker's medians over the second's (samsa/kfake
	// in compare), by figure.
	Ratios map[string]float64 `json:"ratios,omitempty"`
}

// Suite runs each spec against each target for rounds rounds: for each
// spec and round, the targets one after another (never two at once). alive,
// when not nil, is asked before each run whether the target's process is
// still there. A failed run is recorded and the suite goes on; the suite
// stops early only when ctx is done.
func Suite(ctx context.Context, targets []Target, specs []Spec, rounds int, progress io.Writer, alive func(Target) error) *Report {
	return suite(ctx, targets, specs, rounds, progress, func(t Target) (Target, func() error, error) {
		if alive != nil {
			if err := alive(t); err != nil {
				return t, nil, err
			}
		}
		return t, nil, nil
	})
}

// suite is Suite with a hook run before every run: prepare returns the
// target to run against (a fresh process, in compare) and, if not nil, a
// function that stops it after the run.
func suite(ctx context.Context, targets []Target, specs []Spec, rounds int, progress io.Writer, prepare func(Target) (Target, func() error, error)) *Report {
	rep := &Report{Machine: ThisMachine(), Rounds: rounds}
	for _, t := range targets {
		rep.Brokers = append(rep.Brokers, t.Name)
	}
	for _, s := range specs {
		w := &WorkloadRuns{
			Name:    s.Name(),
			Spec:    s,
			Rounds:  map[string][]*Result{},
			Errors:  map[string][]string{},
			Medians: map[string]*Result{},
		}
		rep.Workloads = append(rep.Workloads, w)
		for round := 1; round <= rounds && ctx.Err() == nil; round++ {
			for _, t := range targets {
				if ctx.Err() != nil {
					break
				}
				if progress != nil {
					fmt.Fprintf(progress, "%s: %s, round %d/%d\n", t.Name, s.Name(), round, rounds)
				}
				var res *Result
				run, stop, err := prepare(t)
				if err == nil {
					res, err = Run(ctx, run, s, progress)
				}
				if stop != nil {
					if serr := stop(); serr != nil && err == nil {
						err = serr
					}
				}
				if err != nil {
					w.Errors[t.Name] = append(w.Errors[t.Name], fmt.Sprintf("round %d: %v", round, err))
					if progress != nil {
						fmt.Fprintf(progress, "  %s: %s round %d failed: %v\n", t.Name, s.Name(), round, err)
					}
				} else {
					w.Rounds[t.Name] = append(w.Rounds[t.Name], res)
					if progress != nil {
						fmt.Fprintf(progress, "  %s\n", oneLine(res))
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(settle):
				}
			}
		}
		for _, t := range targets {
			if m := medianResult(w.Rounds[t.Name]); m != nil {
				w.Medians[t.Name] = m
			}
		}
		if len(targets) == 2 {
			w.Ratios = ratios(w.Medians[targets[0].Name], w.Medians[targets[1].Name])
		}
		if len(w.Errors) == 0 {
			w.Errors = nil
		}
	}
	rep.Machine.LoadEnd = loadAvg()
	return rep
}

// ratios returns a's figures over b's, for the figures both have.
func ratios(a, b *Result) map[string]float64 {
	if a == nil || b == nil {
		return nil
	}
	out := map[string]float64{}
	put := func(name string, x, y float64) {
		if y > 0 {
			out[name] = x / y
		}
	}
	if a.Produce != nil && b.Produce != nil {
		put("produce_records_per_sec", a.Produce.RecordsPerSec, b.Produce.RecordsPerSec)
	}
	if a.Consume != nil && b.Consume != nil {
		put("consume_records_per_sec", a.Consume.RecordsPerSec, b.Consume.RecordsPerSec)
	}
	if a.Latency != nil && b.Latency != nil {
		put("latency_p50", a.Latency.P50, b.Latency.P50)
		put("latency_p99", a.Latency.P99, b.Latency.P99)
		put("latency_p99_9", a.Latency.P999, b.Latency.P999)
		put("latency_max", a.Latency.Max, b.Latency.Max)
	}
	if a.Usage != nil && b.Usage != nil {
		put("cpu_sec_per_gib", a.Usage.CPUSecPerGiB, b.Usage.CPUSecPerGiB)
		put("peak_rss", float64(a.Usage.PeakRSS), float64(b.Usage.PeakRSS))
	}
	return out
}

// Failed reports whether any run failed outright or a broker misbehaved.
// Runs stopped by the time limit are not failures.
func (rep *Report) Failed() bool {
	if len(rep.Errors) > 0 {
		return true
	}
	for _, w := range rep.Workloads {
		if len(w.Errors) > 0 {
			return true
		}
		for _, rs := range w.Rounds {
			for _, r := range rs {
				if r.Failed > 0 || r.Error != "" {
					return true
				}
			}
		}
	}
	return false
}
