package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// TxnReport is the outcome of TxnSuite: every round, and each figure's
// median and spread over the rounds.
type TxnReport struct {
	Machine Machine      `json:"machine"`
	Spec    TxnSpec      `json:"spec"`
	Config  string       `json:"config,omitempty"`
	Broker  string       `json:"broker"`  // "samsa" when started per round, else the -target address
	Started bool         `json:"started"` // a fresh samsa per round
	Rounds  int          `json:"rounds"`
	Runs    []*TxnResult `json:"runs"`
	Errors  []string     `json:"errors,omitempty"` // rounds that measured nothing
	// Medians holds each figure of txnFigures, by key, over the rounds
	// that have it.
	Medians map[string]*TxnStat `json:"medians"`
}

// TxnStat is one figure over the rounds.
type TxnStat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Rounds []float64 `json:"rounds"`
}

// txnFigure is one row of the table.
type txnFigure struct {
	key   string
	label string
	get   func(*TxnResult) (float64, bool)
	fmt   func(float64) string
}

func tpFig(key, label string, f func(*TxnResult) *Throughput, records bool) txnFigure {
	return txnFigure{key, label, func(r *TxnResult) (float64, bool) { return tp(f(r), records) }, map[bool]func(float64) string{true: fmtCount, false: fmtMiB}[records]}
}

func latFig(key, label string, f func(*TxnResult) *Latency, q func(*Latency) float64) txnFigure {
	return txnFigure{key, label, func(r *TxnResult) (float64, bool) {
		l := f(r)
		if l == nil {
			return 0, false
		}
		return q(l), true
	}, fmtMs}
}

func ratioFig(key, label string, f func(*TxnResult) float64) txnFigure {
	return txnFigure{key, label, func(r *TxnResult) (float64, bool) {
		v := f(r)
		return v, v > 0
	}, fmtRatio}
}

func cpuFig(phase string) txnFigure {
	return txnFigure{"cpu_sec_per_gib_" + phase, "  broker CPU s/GiB, " + phase, func(r *TxnResult) (float64, bool) {
		u := r.Usage[phase]
		if u == nil || u.CPUSecPerGiB == 0 {
			return 0, false
		}
		return u.CPUSecPerGiB, true
	}, fmtFloat2}
}

func fmtRatio(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "x" }

var (
	p50  = func(l *Latency) float64 { return l.P50 }
	p99  = func(l *Latency) float64 { return l.P99 }
	p999 = func(l *Latency) float64 { return l.P999 }
	pmax = func(l *Latency) float64 { return l.Max }
)

var txnFigures = []txnFigure{
	tpFig("idempotent_records_per_sec", "idempotent producer records/s", func(r *TxnResult) *Throughput { return r.Idempotent }, true),
	tpFig("idempotent_mib_per_sec", "  MiB/s", func(r *TxnResult) *Throughput { return r.Idempotent }, false),
	cpuFig(txnPhaseIdempotent),
	tpFig("transactional_records_per_sec", "transactional producer records/s", func(r *TxnResult) *Throughput { return r.Transactional }, true),
	tpFig("transactional_mib_per_sec", "  MiB/s", func(r *TxnResult) *Throughput { return r.Transactional }, false),
	ratioFig("txn_ratio", "  transactional / idempotent", func(r *TxnResult) float64 { return r.TxnRatio }),
	{"commits", "  transactions committed", func(r *TxnResult) (float64, bool) { return float64(r.Commits), r.Transactional != nil }, fmtCount},
	latFig("commit_p50_ms", "  EndTransaction p50 ms", func(r *TxnResult) *Latency { return r.Commit }, p50),
	latFig("commit_p99_ms", "  EndTransaction p99 ms", func(r *TxnResult) *Latency { return r.Commit }, p99),
	latFig("commit_max_ms", "  EndTransaction max ms", func(r *TxnResult) *Latency { return r.Commit }, pmax),
	latFig("flush_p50_ms", "  Flush before it p50 ms", func(r *TxnResult) *Latency { return r.Flush }, p50),
	latFig("flush_p99_ms", "  Flush before it p99 ms", func(r *TxnResult) *Latency { return r.Flush }, p99),
	cpuFig(txnPhaseTxn),
	tpFig("read_uncommitted_mib_per_sec", "read_uncommitted MiB/s", func(r *TxnResult) *Throughput { return r.ReadUncommitted }, false),
	tpFig("read_committed_mib_per_sec", "read_committed MiB/s", func(r *TxnResult) *Throughput { return r.ReadCommitted }, false),
	ratioFig("read_ratio", "  committed / uncommitted", func(r *TxnResult) float64 { return r.ReadRatio }),
	cpuFig(txnPhaseUncommit),
	cpuFig(txnPhaseCommitted),
	tpFig("ctp_records_per_sec", "consume-transform-produce rec/s", func(r *TxnResult) *Throughput { return r.CTP }, true),
	latFig("ctp_commit_p50_ms", "  End p50 ms", func(r *TxnResult) *Latency { return r.CTPCommit }, p50),
	latFig("ctp_commit_p99_ms", "  End p99 ms", func(r *TxnResult) *Latency { return r.CTPCommit }, p99),
	latFig("e2e_p50_ms", "e2e read_committed p50 ms", func(r *TxnResult) *Latency { return r.E2E }, p50),
	latFig("e2e_p99_ms", "  p99 ms", func(r *TxnResult) *Latency { return r.E2E }, p99),
	latFig("e2e_p99_9_ms", "  p99.9 ms", func(r *TxnResult) *Latency { return r.E2E }, p999),
	latFig("e2e_max_ms", "  max ms", func(r *TxnResult) *Latency { return r.E2E }, pmax),
	latFig("e2e_commit_p99_ms", "  its EndTransaction p99 ms", func(r *TxnResult) *Latency { return r.E2ECommit }, p99),
	latFig("e2e_commit_max_ms", "  its EndTransaction max ms", func(r *TxnResult) *Latency { return r.E2ECommit }, pmax),
	latFig("e2e_flush_max_ms", "  its Flush before it max ms", func(r *TxnResult) *Latency { return r.E2EFlush }, pmax),
}

// txnMedians returns every figure's median, min, max and per-round
// values over the rounds that have it. Ratios are the median of each
// round's ratio, not the ratio of the medians.
func txnMedians(runs []*TxnResult) map[string]*TxnStat {
	out := map[string]*TxnStat{}
	for _, f := range txnFigures {
		var xs []float64
		for _, r := range runs {
			if v, ok := f.get(r); ok {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			continue
		}
		out[f.key] = &TxnStat{Median: median(xs), Min: slices.Min(xs), Max: slices.Max(xs), Rounds: xs}
	}
	return out
}

// Failed reports whether a round measured nothing, or a record failed,
// or a check (read_committed reading exactly the committed records) did
// not hold.
func (rep *TxnReport) Failed() bool {
	if len(rep.Errors) > 0 {
		return true
	}
	for _, r := range rep.Runs {
		if r.Failed > 0 || r.Error != "" {
			return true
		}
	}
	return false
}

// WriteJSON writes the report as indented JSON.
func (rep *TxnReport) WriteJSON(w io.Writer) error { return writeJSON(w, rep) }

// WriteText writes the report as a table: each figure's median, min and
// max over the rounds, then every round's value; then the issue's
// targets and notes.
func (rep *TxnReport) WriteText(w io.Writer) error {
	var b strings.Builder
	s := rep.Spec
	where := "a fresh samsa per round"
	if !rep.Started {
		where = rep.Broker
	}
	fmt.Fprintf(&b, "samsa-bench txn: %d round(s) against %s; medians, min and max over the rounds\n", rep.Rounds, where)
	m := rep.Machine
	fmt.Fprintf(&b, "machine: %d CPUs, %s, Linux %s, %s; load average %s before, %s after; broker and clients on this machine\n",
		m.CPUs, orDash(m.CPUModel), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))
	fmt.Fprintf(&b, "load: %s records, acks=all, %d partitions, %v per producer in turns of %v, a commit every %v; e2e at %s records/s\n\n",
		sizeName(s.Size), s.Partitions, s.Duration, min(txnSlice, s.Duration), s.CommitInterval, fmtCount(float64(s.Rate)))

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{fmt.Sprintf("%-34s", "figure"), "median", "min", "max"}
	for i := range rep.Runs {
		head = append(head, "r"+strconv.Itoa(i+1))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, f := range txnFigures {
		row := []string{fmt.Sprintf("%-34s", f.label)}
		st := rep.Medians[f.key]
		if st == nil {
			row = append(row, "-", "-", "-")
		} else {
			row = append(row, f.fmt(st.Median), f.fmt(st.Min), f.fmt(st.Max))
		}
		for _, r := range rep.Runs {
			if v, ok := f.get(r); ok {
				row = append(row, f.fmt(v))
			} else {
				row = append(row, "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot format report: %w", err)
	}

	b.WriteString("\ntargets (medians; printed, not enforced):\n")
	target := func(label, key string, want float64) {
		st := rep.Medians[key]
		if st == nil {
			fmt.Fprintf(&b, "  %s: no figure\n", label)
			return
		}
		verdict := "meets"
		if st.Median < want {
			verdict = "BELOW"
		}
		fmt.Fprintf(&b, "  %s: %s (min %s), %s >= %.1fx\n", label, fmtRatio(st.Median), fmtRatio(st.Min), verdict, want)
	}
	target("transactional / idempotent producer records/s", "txn_ratio", 0.9)
	target("read_committed / read_uncommitted MiB/s", "read_ratio", 0.9)
	if st := rep.Medians["commit_p99_ms"]; st != nil {
		fmt.Fprintf(&b, "  EndTransaction p99: %s ms (rounds %s to %s)\n", fmtMs(st.Median), fmtMs(st.Min), fmtMs(st.Max))
	}
	b.WriteString("e2e read_committed is receipt minus the produce call: it includes waiting for the transaction's commit (up to the commit interval) by design.\n")

	b.WriteString("\nrounds:\n")
	for i, r := range rep.Runs {
		fmt.Fprintf(&b, "  %d: %s\n", i+1, r.oneLine())
	}
	var notes []string
	for _, e := range rep.Errors {
		notes = append(notes, "FAILED "+e)
	}
	for i, r := range rep.Runs {
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("round %d: %s", i+1, r.Error))
		}
		if r.Failed > 0 {
			notes = append(notes, fmt.Sprintf("round %d: %d records failed", i+1, r.Failed))
		}
		if r.Aborts > 0 || r.CTPAborts > 0 {
			notes = append(notes, fmt.Sprintf("round %d: %d producer and %d consume-transform-produce transactions aborted", i+1, r.Aborts, r.CTPAborts))
		}
	}
	writeNotes(&b, notes)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}

// oneLine is a round's result in one line: its record counts, which
// check the figures.
func (r *TxnResult) oneLine() string {
	rec := func(t *Throughput) int64 {
		if t == nil {
			return 0
		}
		return t.Records
	}
	line := fmt.Sprintf("idempotent %d acked; transactional %d acked, %d committed in %d transactions (%d aborted; %s producer's turn first); read_uncommitted %d, read_committed %d (%s first); ctp %d in %d transactions; e2e %d sent, %d read in %d transactions",
		rec(r.Idempotent), r.TxnAcked, rec(r.Transactional), r.Commits, r.Aborts, map[bool]string{true: "transactional", false: "idempotent"}[r.TxnFirst],
		rec(r.ReadUncommitted), rec(r.ReadCommitted), map[bool]string{true: "committed", false: "uncommitted"}[r.CommittedFirst],
		rec(r.CTP), r.CTPCommits, r.E2ESent, r.E2EReceived, r.E2ECommits)
	if r.Error != "" {
		line += "; error: " + r.Error
	}
	return line
}
