package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// PartitionsReport is the outcome of PartitionsSuite: every run, and with
// more than one round each figure's median per partition count.
type PartitionsReport struct {
	Machine Machine             `json:"machine"`
	Spec    PartitionsSpec      `json:"spec"`
	Config  string              `json:"config,omitempty"`
	Runs    []*PartitionsResult `json:"runs"`
	Errors  []string            `json:"errors,omitempty"` // runs whose broker did not start
	// Medians holds, by partition count, each figure's median by key over
	// the rounds that have it.
	Medians map[int]map[string]float64 `json:"medians,omitempty"`
}

// partsFigure is one row of the table.
type partsFigure struct {
	key   string
	label string
	get   func(*PartitionsResult) (float64, bool)
	fmt   func(float64) string
}

// Seconds take fmtMs too: three significant digits.
func partsSec(key, label string, f func(*PartitionsResult) float64) partsFigure {
	return partsFigure{key, label, func(r *PartitionsResult) (float64, bool) { v := f(r); return v, v > 0 }, fmtMs}
}

func partsMiB(key, label string, f func(*PartitionsResult) int64) partsFigure {
	return partsFigure{key, label, func(r *PartitionsResult) (float64, bool) {
		v := f(r)
		return float64(v) / (1 << 20), v > 0
	}, fmtMiB}
}

func partsCount(key, label string, f func(*PartitionsResult) int) partsFigure {
	return partsFigure{key, label, func(r *PartitionsResult) (float64, bool) { v := f(r); return float64(v), v > 0 }, fmtFloat0}
}

func partsTp(key, label string, f func(*PartitionsResult) *Throughput, records bool) partsFigure {
	return partsFigure{key, label, func(r *PartitionsResult) (float64, bool) { return tp(f(r), records) },
		map[bool]func(float64) string{true: fmtCount, false: fmtMiB}[records]}
}

var partsFigures = []partsFigure{
	partsCount("partitions", "partitions", func(r *PartitionsResult) int { return r.Partitions }),
	partsCount("topics", "topics", func(r *PartitionsResult) int { return r.Topics }),
	partsSec("create_sec", "create s", func(r *PartitionsResult) float64 { return r.CreateSec }),
	partsMiB("rss_mib", "RSS MiB after writes", func(r *PartitionsResult) int64 { return r.RSS }),
	partsCount("fds", "fds", func(r *PartitionsResult) int { return r.FDs }),
	{"metadata_all_topics_ms", "Metadata all topics ms", func(r *PartitionsResult) (float64, bool) { return r.MetadataMs, r.MetadataMs > 0 }, fmtMs},
	partsTp("produce_records_per_sec", "produce records/s", func(r *PartitionsResult) *Throughput { return r.Produce }, true),
	partsTp("produce_mib_per_sec", "  MiB/s", func(r *PartitionsResult) *Throughput { return r.Produce }, false),
	partsTp("consume_mib_per_sec", "consume MiB/s", func(r *PartitionsResult) *Throughput { return r.Consume }, false),
	partsSec("clean_stop_sec", "clean stop s", func(r *PartitionsResult) float64 { return r.CleanStopSec }),
	partsSec("start_accept_sec", "start after clean stop: accept s", func(r *PartitionsResult) float64 { return r.StartAcceptSec }),
	partsSec("start_answer_sec", "  answer s", func(r *PartitionsResult) float64 { return r.StartAnswerSec }),
	partsMiB("idle_rss_mib", "idle RSS MiB", func(r *PartitionsResult) int64 { return r.IdleRSS }),
	partsCount("idle_fds", "idle fds", func(r *PartitionsResult) int { return r.IdleFDs }),
	partsSec("crash_start_accept_sec", "start after SIGKILL: accept s", func(r *PartitionsResult) float64 { return r.CrashAcceptSec }),
	partsSec("crash_start_answer_sec", "  answer s", func(r *PartitionsResult) float64 { return r.CrashAnswerSec }),
	partsSec("crash_start_clean_stop_sec", "clean stop after crash start s", func(r *PartitionsResult) float64 { return r.CrashStopSec }),
	{"lost_records", "records lost", func(r *PartitionsResult) (float64, bool) { return float64(r.Lost), r.Checked }, fmtFloat0},
}

// partitionsMedians returns, by partition count, every figure's median
// over the rounds that have it; nil for a single round.
func partitionsMedians(runs []*PartitionsResult) map[int]map[string]float64 {
	byCount := map[int][]*PartitionsResult{}
	for _, r := range runs {
		byCount[r.Partitions] = append(byCount[r.Partitions], r)
	}
	out := map[int]map[string]float64{}
	for n, rs := range byCount {
		if len(rs) < 2 {
			continue
		}
		out[n] = map[string]float64{}
		for _, f := range partsFigures {
			var xs []float64
			for _, r := range rs {
				if v, ok := f.get(r); ok {
					xs = append(xs, v)
				}
			}
			if len(xs) > 0 {
				out[n][f.key] = median(xs)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Failed reports whether a run failed or lost records.
func (rep *PartitionsReport) Failed() bool {
	if len(rep.Errors) > 0 {
		return true
	}
	for _, r := range rep.Runs {
		if r.Error != "" || r.Lost != 0 {
			return true
		}
	}
	return false
}

// WriteJSON writes the report as indented JSON.
func (rep *PartitionsReport) WriteJSON(w io.Writer) error { return writeJSON(w, rep) }

// WriteText writes the report as a table, a column per partition count
// (with more than one round: a column per round, then their median),
// then the notes.
func (rep *PartitionsReport) WriteText(w io.Writer) error {
	var b strings.Builder
	s := rep.Spec
	fmt.Fprintf(&b, "samsa-bench partitions: a fresh samsa per partition count and round, config %s; topics of %d partitions\n", orDash(rep.Config), partitionsPerTopic)
	fmt.Fprintf(&b, "load: a %d B record to every partition, then %s records of %s round robin over them (acks=all), read back by one consumer; Metadata: median of %d\n",
		smallRecord, fmtCount(float64(s.Records)), sizeName(s.Size), metadataRuns)
	m := rep.Machine
	fmt.Fprintf(&b, "machine: %d CPUs, %s, Linux %s, %s; load average %s before, %s after; broker and clients on this machine\n\n",
		m.CPUs, orDash(m.CPUModel), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))

	type column struct {
		head string
		cell func(partsFigure) string
	}
	var cols []column
	for _, n := range s.Counts {
		var runs []*PartitionsResult
		for _, r := range rep.Runs {
			if r.Partitions == n {
				runs = append(runs, r)
			}
		}
		for _, r := range runs {
			head := strconv.Itoa(n)
			if s.Rounds > 1 {
				head += " r" + strconv.Itoa(r.Round)
			}
			cols = append(cols, column{head, func(f partsFigure) string {
				if v, ok := f.get(r); ok {
					return f.fmt(v)
				}
				return "-"
			}})
		}
		if meds := rep.Medians[n]; meds != nil {
			cols = append(cols, column{strconv.Itoa(n) + " median", func(f partsFigure) string {
				if v, ok := meds[f.key]; ok {
					return f.fmt(v)
				}
				return "-"
			}})
		}
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := []string{fmt.Sprintf("%-32s", "")}
	for _, c := range cols {
		row = append(row, c.head)
	}
	fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	for _, f := range partsFigures {
		row = []string{fmt.Sprintf("%-32s", f.label)}
		for _, c := range cols {
			row = append(row, c.cell(f))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot format report: %w", err)
	}

	var notes []string
	for _, e := range rep.Errors {
		notes = append(notes, "FAILED "+e)
	}
	for _, r := range rep.Runs {
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("%d partitions, round %d: %s", r.Partitions, r.Round, r.Error))
		}
		if r.Checked && r.Lost != 0 {
			notes = append(notes, fmt.Sprintf("%d partitions, round %d: %d records acknowledged, %d found after SIGKILL", r.Partitions, r.Round, r.Expected, r.Found))
		}
	}
	writeNotes(&b, notes)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}
