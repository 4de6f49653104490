package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// FailoverSuiteConfig is what FailoverSuite runs: each mode of Modes,
// Rounds times, each run on a fresh pair.
type FailoverSuiteConfig struct {
	SamsaBin string
	Config   string
	Spec     FailoverSpec // Promote is set per mode
	Modes    []string     // PromoteManual, PromoteAuto
	Rounds   int
	Progress io.Writer
	KeepLogs string // when not "", each run's broker logs go to KeepLogs/MODE-ROUND/
}

// FailoverReport is the outcome of FailoverSuite: every run of every
// mode, and the medians.
type FailoverReport struct {
	Machine Machine                      `json:"machine"`
	Config  string                       `json:"config"`
	Spec    FailoverSpec                 `json:"spec"`
	Rounds  int                          `json:"rounds"`
	Modes   []string                     `json:"modes"`
	Runs    map[string][]*FailoverResult `json:"runs"`             // by mode, in round order
	Errors  map[string][]string          `json:"errors,omitempty"` // runs that measured nothing, by mode
	Medians map[string]*FailoverResult   `json:"medians"`
}

// FailoverSuite runs cfg.Rounds rounds of each mode, one run at a time,
// each on a pair started for it. A failed run is recorded and the suite
// goes on; it stops early only when ctx ends.
func FailoverSuite(ctx context.Context, cfg FailoverSuiteConfig) *FailoverReport {
	rep := &FailoverReport{
		Machine: ThisMachine(), Config: cfg.Config, Spec: cfg.Spec, Rounds: cfg.Rounds, Modes: cfg.Modes,
		Runs: map[string][]*FailoverResult{}, Errors: map[string][]string{}, Medians: map[string]*FailoverResult{},
	}
	rep.Spec.Promote = strings.Join(cfg.Modes, ",")
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		for _, mode := range cfg.Modes {
			if ctx.Err() != nil {
				break
			}
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "failover %s, round %d/%d\n", mode, round, cfg.Rounds)
			}
			s := cfg.Spec
			s.Promote = mode
			fc := FailoverConfig{SamsaBin: cfg.SamsaBin, Config: cfg.Config, Spec: s, Progress: cfg.Progress}
			if cfg.KeepLogs != "" {
				fc.KeepLogs = fmt.Sprintf("%s/%s-%d", cfg.KeepLogs, mode, round)
			}
			r, err := RunFailover(ctx, fc)
			if err != nil {
				rep.Errors[mode] = append(rep.Errors[mode], fmt.Sprintf("round %d: %v", round, err))
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "  failover %s round %d failed: %v\n", mode, round, err)
				}
			} else {
				rep.Runs[mode] = append(rep.Runs[mode], r)
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "  %s\n", r.oneLine())
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(settle):
			}
		}
	}
	for _, mode := range cfg.Modes {
		if m := medianFailover(rep.Runs[mode]); m != nil {
			rep.Medians[mode] = m
		}
	}
	if len(rep.Errors) == 0 {
		rep.Errors = nil
	}
	rep.Machine.LoadEnd = loadAvg()
	return rep
}

// Failed reports whether a run lost an acknowledged record, could not
// finish its checks, or measured nothing.
func (rep *FailoverReport) Failed() bool {
	if len(rep.Errors) > 0 {
		return true
	}
	for _, rs := range rep.Runs {
		for _, r := range rs {
			if r.Bad() {
				return true
			}
		}
	}
	return false
}

// Lost is the acknowledged records lost over every run.
func (rep *FailoverReport) Lost() int64 {
	var n int64
	for _, rs := range rep.Runs {
		for _, r := range rs {
			n += max(r.Lost, r.LogMissing)
		}
	}
	return n
}

// failoverFigure is one row of the table.
type failoverFigure struct {
	label string
	get   func(*FailoverResult) float64
	ms    bool // a time from the kill: -1 is "never"
}

var failoverFigures = []failoverFigure{
	{"kill -> standby leads, ms", func(r *FailoverResult) float64 { return r.Promoted }, true},
	{"kill -> old primary in sync, ms", func(r *FailoverResult) float64 { return r.Rejoined }, true},
	{"kill -> writes acked, ms", func(r *FailoverResult) float64 { return r.Writes }, true},
	{"kill -> consumer reads, ms", func(r *FailoverResult) float64 { return r.Reads }, true},
	{"kill -> post-kill record read, ms", func(r *FailoverResult) float64 { return r.PostKillRead }, true},
	{"longest ack wait, ms", func(r *FailoverResult) float64 { return r.MaxAckWait }, false},
	{"records acked", func(r *FailoverResult) float64 { return float64(r.Acked) }, false},
	{"  of which before the kill", func(r *FailoverResult) float64 { return float64(r.AckedBeforeKill) }, false},
	{"records failed (not acked)", func(r *FailoverResult) float64 { return float64(r.Failed + r.Pending) }, false},
	{"acked records lost", func(r *FailoverResult) float64 { return float64(max(r.Lost, r.LogMissing)) }, false},
	{"duplicates read by the group", func(r *FailoverResult) float64 { return float64(r.Duplicates) }, false},
	{"duplicates in the log", func(r *FailoverResult) float64 { return float64(r.LogDuplicates) }, false},
}

// medianFailover folds runs into one: the median of each figure; a time
// that never came counts as longer than any. Counts of lost and duplicate
// records are the largest instead, so that one bad run shows.
func medianFailover(runs []*FailoverResult) *FailoverResult {
	if len(runs) == 0 {
		return nil
	}
	pick := func(f func(*FailoverResult) float64, isMs bool) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
			if isMs && xs[i] < 0 {
				xs[i] = math.Inf(1)
			}
		}
		m := median(xs)
		if math.IsInf(m, 1) {
			return -1
		}
		return m
	}
	largest := func(f func(*FailoverResult) int64) int64 {
		var n int64
		for _, r := range runs {
			n = max(n, f(r))
		}
		return n
	}
	m := &FailoverResult{Spec: runs[0].Spec}
	m.Promoted = pick(func(r *FailoverResult) float64 { return r.Promoted }, true)
	m.Rejoined = pick(func(r *FailoverResult) float64 { return r.Rejoined }, true)
	m.Writes = pick(func(r *FailoverResult) float64 { return r.Writes }, true)
	m.Reads = pick(func(r *FailoverResult) float64 { return r.Reads }, true)
	m.PostKillRead = pick(func(r *FailoverResult) float64 { return r.PostKillRead }, true)
	m.MaxAckWait = pick(func(r *FailoverResult) float64 { return r.MaxAckWait }, false)
	count := func(f func(*FailoverResult) int64) int64 {
		return int64(pick(func(r *FailoverResult) float64 { return float64(f(r)) }, false))
	}
	m.Produced = count(func(r *FailoverResult) int64 { return r.Produced })
	m.Acked = count(func(r *FailoverResult) int64 { return r.Acked })
	m.AckedBeforeKill = count(func(r *FailoverResult) int64 { return r.AckedBeforeKill })
	m.Consumed = count(func(r *FailoverResult) int64 { return r.Consumed })
	m.Failed = largest(func(r *FailoverResult) int64 { return r.Failed })
	m.Pending = largest(func(r *FailoverResult) int64 { return r.Pending })
	m.Lost = largest(func(r *FailoverResult) int64 { return r.Lost })
	m.LogMissing = largest(func(r *FailoverResult) int64 { return r.LogMissing })
	m.Duplicates = largest(func(r *FailoverResult) int64 { return r.Duplicates })
	m.LogDuplicates = largest(func(r *FailoverResult) int64 { return r.LogDuplicates })
	m.ClientErrors = map[string]int{}
	for _, r := range runs {
		for k, n := range r.ClientErrors {
			m.ClientErrors[k] += n
		}
		if m.Error == "" {
			m.Error = r.Error
		}
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
	}
	return m
}

func fmtFailover(v float64, isMs bool) string {
	switch {
	case isMs && v < 0:
		return "never"
	case isMs:
		return fmtFloat0(v)
	}
	return fmtCount(v)
}

// WriteJSON writes the report as indented JSON.
func (rep *FailoverReport) WriteJSON(w io.Writer) error { return writeJSON(w, rep) }

// WriteText writes the report as a human table: one column per mode
// (medians; lost and duplicate counts the largest of any round), the
// rounds behind them, the errors clients met, and notes.
func (rep *FailoverReport) WriteText(w io.Writer) error {
	var b strings.Builder
	s := rep.Spec
	fmt.Fprintf(&b, "samsa-bench failover: %d round(s) per mode, each on a fresh pair; medians shown (lost and duplicates: the most in any round)\n", rep.Rounds)
	m := rep.Machine
	fmt.Fprintf(&b, "machine: %d CPUs, %s, Linux %s, %s; load average %s before, %s after; both nodes and the load on this machine\n",
		m.CPUs, orDash(m.CPUModel), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))
	minISR := "the pair's default"
	if s.MinInsync > 0 {
		minISR = fmt.Sprint(s.MinInsync)
	}
	ft := "the config's"
	if s.FailoverTimeout > 0 {
		ft = fmt.Sprint(s.FailoverTimeout.Milliseconds())
	}
	rejoin := "restarted once the standby leads (it rejoins as the standby)"
	if !s.Rejoin {
		rejoin = "not restarted"
	}
	fmt.Fprintf(&b, "load: %d records/s of %s, acks=all idempotent, to %d partitions (min.insync.replicas %s); a group consumer; clients' metadata min age %v\n",
		s.Rate, sizeName(s.Size), s.Partitions, minISR, s.MetadataMinAge)
	fmt.Fprintf(&b, "failover: SIGKILL of the primary after %v; failover_timeout_ms %s; the killed node %s\n\n", s.Warmup, ft, rejoin)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{fmt.Sprintf("%-36s", "figure")}
	for _, mode := range rep.Modes {
		head = append(head, mode)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, f := range failoverFigures {
		row := []string{fmt.Sprintf("%-36s", f.label)}
		for _, mode := range rep.Modes {
			med := rep.Medians[mode]
			if med == nil {
				row = append(row, "-")
				continue
			}
			row = append(row, fmtFailover(f.get(med), f.ms))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot format report: %w", err)
	}

	b.WriteString("\nrounds:\n")
	for _, mode := range rep.Modes {
		for i, r := range rep.Runs[mode] {
			fmt.Fprintf(&b, "  %s %d: %s\n", mode, i+1, r.oneLine())
		}
	}
	b.WriteString("\nerrors the clients' logs reported (all rounds):\n")
	for _, mode := range rep.Modes {
		if med := rep.Medians[mode]; med != nil {
			t := formatTally(med.ClientErrors)
			if t == "" {
				t = "none"
			}
			fmt.Fprintf(&b, "  %s: %s\n", mode, t)
		}
	}
	var notes []string
	for _, mode := range rep.Modes {
		for _, e := range rep.Errors[mode] {
			notes = append(notes, fmt.Sprintf("%s: FAILED %s", mode, e))
		}
		for i, r := range rep.Runs[mode] {
			if r.Error != "" {
				notes = append(notes, fmt.Sprintf("%s round %d: %s", mode, i+1, r.Error))
			}
			if r.Lost > 0 || r.LogMissing > 0 {
				notes = append(notes, fmt.Sprintf("%s round %d: LOST %d acknowledged records (%d not read by the group consumer, %d not in the log)",
					mode, i+1, max(r.Lost, r.LogMissing), r.Lost, r.LogMissing))
			}
			if r.LogDuplicates > 0 {
				notes = append(notes, fmt.Sprintf("%s round %d: %d records in the log twice: the idempotent producer's retries were written again", mode, i+1, r.LogDuplicates))
			}
			if r.FirstError != "" {
				notes = append(notes, fmt.Sprintf("%s round %d: %d records failed; first: %s", mode, i+1, r.Failed, r.FirstError))
			}
		}
	}
	writeNotes(&b, notes)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}

// oneLine is a run's result in one line.
func (r *FailoverResult) oneLine() string {
	t := func(v float64) string {
		if v < 0 {
			return "never"
		}
		return fmtFloat0(v) + " ms"
	}
	line := fmt.Sprintf("%s: leads %s, rejoined %s, writes %s, reads %s, post-kill read %s; %d acked (%d before the kill), %d failed, %d pending, %d lost, %d read twice, %d twice in the log",
		r.Spec.Promote, t(r.Promoted), t(r.Rejoined), t(r.Writes), t(r.Reads), t(r.PostKillRead),
		r.Acked, r.AckedBeforeKill, r.Failed, r.Pending, max(r.Lost, r.LogMissing), r.Duplicates, r.LogDuplicates)
	if r.Error != "" {
		line += "; error: " + r.Error
	}
	return line
}
