package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error { return writeJSON(w, rep) }

// writeJSON writes a report as indented JSON: every report's WriteJSON.
func writeJSON(w io.Writer, rep any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("cannot write JSON report: %w", err)
	}
	return nil
}

// figure is one row of the human table.
type figure struct {
	label string
	get   func(*Result) (float64, bool)
	fmt   func(float64) string
}

func figuresFor(s Spec) []figure {
	prodRate := figure{"records/s", func(r *Result) (float64, bool) { return tp(r.Produce, true) }, fmtCount}
	prodMiB := figure{"MiB/s", func(r *Result) (float64, bool) { return tp(r.Produce, false) }, fmtMiB}
	consRate := figure{"records/s", func(r *Result) (float64, bool) { return tp(r.Consume, true) }, fmtCount}
	consMiB := figure{"MiB/s", func(r *Result) (float64, bool) { return tp(r.Consume, false) }, fmtMiB}
	lat := func(label string, f func(*Latency) float64) figure {
		return figure{label, func(r *Result) (float64, bool) {
			if r.Latency == nil {
				return 0, false
			}
			return f(r.Latency), true
		}, fmtMs}
	}
	cpu := figure{"broker CPU s/GiB", func(r *Result) (float64, bool) {
		if r.Usage == nil || r.Usage.CPUSecPerGiB == 0 {
			return 0, false
		}
		return r.Usage.CPUSecPerGiB, true
	}, fmtFloat2}
	peak := figure{"broker peak RSS MiB", func(r *Result) (float64, bool) {
		if r.Usage == nil {
			return 0, false
		}
		return float64(r.Usage.PeakRSS) / (1 << 20), true
	}, fmtFloat0}
	rss := figure{"broker RSS at end MiB", func(r *Result) (float64, bool) {
		if r.Usage == nil {
			return 0, false
		}
		return float64(r.Usage.RSS) / (1 << 20), true
	}, fmtFloat0}

	var fs []figure
	switch s.Kind {
	case KindProduce:
		fs = []figure{prodRate, prodMiB}
		if s.Acks != "0" {
			fs = append(fs,
				lat("ack p50 ms", func(l *Latency) float64 { return l.P50 }),
				lat("ack p99 ms", func(l *Latency) float64 { return l.P99 }))
		}
	case KindConsume:
		fs = []figure{consRate, consMiB}
	case KindE2E:
		fs = []figure{
			lat("e2e p50 ms", func(l *Latency) float64 { return l.P50 }),
			lat("e2e p99 ms", func(l *Latency) float64 { return l.P99 }),
			lat("e2e p99.9 ms", func(l *Latency) float64 { return l.P999 }),
			lat("e2e max ms", func(l *Latency) float64 { return l.Max }),
			{"records/s sent", prodRate.get, fmtCount},
		}
		if s.Bulk > 0 {
			fs = append(fs,
				figure{"bulk MiB/s acked", func(r *Result) (float64, bool) { return bulkFig(r, true) }, fmtMiB},
				figure{"bulk MiB/s read", func(r *Result) (float64, bool) { return bulkFig(r, false) }, fmtMiB})
		}
	case KindMixed:
		prodRate.label, prodMiB.label = "produce records/s", "produce MiB/s"
		consRate.label, consMiB.label = "consume records/s", "consume MiB/s"
		fs = []figure{prodRate, prodMiB, consRate, consMiB}
	}
	return append(fs, cpu, peak, rss)
}

func bulkFig(r *Result, produced bool) (float64, bool) {
	switch {
	case r.Bulk == nil:
		return 0, false
	case produced:
		return r.Bulk.Produced, true
	}
	return r.Bulk.Consumed, true
}

func tp(t *Throughput, records bool) (float64, bool) {
	if t == nil {
		return 0, false
	}
	if records {
		return t.RecordsPerSec, true
	}
	return t.MiBPerSec, true
}

// WriteText writes the report as a human table: one column per broker and,
// for two brokers, their ratio; then notes on failed, partial and timed-out
// runs.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "samsa-bench: %d round(s) per workload and broker; medians shown (peak RSS: the largest)\n", rep.Rounds)
	m := rep.Machine
	fmt.Fprintf(&b, "machine: %d CPUs, %s, Linux %s, %s; load average %s before, %s after\n",
		m.CPUs, orDash(m.CPUModel), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))
	if len(rep.Brokers) == 2 {
		fmt.Fprintf(&b, "ratio = %s/%s: above 1 is better for throughput, below 1 is better for latency, CPU and memory\n",
			rep.Brokers[0], rep.Brokers[1])
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "figure"}
	head = append(head, rep.Brokers...)
	if len(rep.Brokers) == 2 {
		head = append(head, rep.Brokers[0]+"/"+rep.Brokers[1])
	}
	writeRow(tw, head)
	for _, wr := range rep.Workloads {
		for i, f := range figuresFor(wr.Spec) {
			row := []string{"", f.label}
			if i == 0 {
				row[0] = wr.Name
			}
			var vals []float64
			var have []bool
			for _, name := range rep.Brokers {
				v, ok := 0.0, false
				if med := wr.Medians[name]; med != nil {
					v, ok = f.get(med)
				}
				vals, have = append(vals, v), append(have, ok)
				if ok {
					row = append(row, f.fmt(v))
				} else {
					row = append(row, "-")
				}
			}
			if len(rep.Brokers) == 2 {
				if have[0] && have[1] && vals[1] > 0 {
					row = append(row, fmt.Sprintf("%.2fx", vals[0]/vals[1]))
				} else {
					row = append(row, "-")
				}
			}
			writeRow(tw, row)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot format report: %w", err)
	}
	for _, wr := range rep.Workloads {
		for _, name := range rep.Brokers {
			if st := medianStages(wr.Rounds[name]); st != nil {
				fmt.Fprintf(&b, "\n%s, %s: ", wr.Name, name)
				writeStages(&b, "", st)
			}
		}
	}
	writeNotes(&b, rep.notes())
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}

// The workload and figure columns are left-aligned by padding, the numbers
// right-aligned by tabwriter.
func writeRow(tw io.Writer, cells []string) {
	cells[0] = fmt.Sprintf("%-28s", cells[0])
	cells[1] = fmt.Sprintf("%-22s", cells[1])
	fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
}

func (rep *Report) notes() []string {
	var out []string
	for _, wr := range rep.Workloads {
		for _, name := range rep.Brokers {
			for _, e := range wr.Errors[name] {
				out = append(out, fmt.Sprintf("%s, %s: FAILED %s", name, wr.Name, e))
			}
			for i, r := range wr.Rounds[name] {
				if r.TimedOut || r.Failed > 0 || r.Error != "" {
					out = append(out, fmt.Sprintf("%s, %s, run %d: %s", name, wr.Name, i+1, partial(r)))
				}
			}
		}
	}
	for _, e := range rep.Errors {
		out = append(out, e)
	}
	return out
}

func partial(r *Result) string {
	var parts []string
	if r.TimedOut {
		parts = append(parts, "stopped early (time limit or interrupt)")
	}
	if r.Produce != nil && r.Produce.Records < r.Spec.Records {
		parts = append(parts, fmt.Sprintf("%d of %d records acked", r.Produce.Records, r.Spec.Records))
	}
	if r.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d records failed", r.Failed))
	}
	if r.Error != "" {
		parts = append(parts, "error: "+r.Error)
	}
	return strings.Join(parts, "; ")
}

// oneLine is a run's result in one line, for progress output.
func oneLine(r *Result) string {
	var parts []string
	if r.Produce != nil {
		parts = append(parts, fmt.Sprintf("produce %s rec/s %s MiB/s", fmtCount(r.Produce.RecordsPerSec), fmtMiB(r.Produce.MiBPerSec)))
	}
	if r.Consume != nil {
		parts = append(parts, fmt.Sprintf("consume %s rec/s %s MiB/s", fmtCount(r.Consume.RecordsPerSec), fmtMiB(r.Consume.MiBPerSec)))
	}
	if r.Latency != nil {
		parts = append(parts, fmt.Sprintf("latency p50 %s p99 %s p99.9 %s max %s ms",
			fmtMs(r.Latency.P50), fmtMs(r.Latency.P99), fmtMs(r.Latency.P999), fmtMs(r.Latency.Max)))
	}
	if r.Usage != nil {
		parts = append(parts, fmt.Sprintf("broker %.2f CPU s (%s s/GiB), peak RSS %s MiB",
			r.Usage.CPUSeconds, fmtFloat2(r.Usage.CPUSecPerGiB), fmtFloat0(float64(r.Usage.PeakRSS)/(1<<20))))
	}
	if p := partial(r); p != "" {
		parts = append(parts, p)
	}
	return r.Broker + " " + r.Name + ": " + strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtCount formats a rate with thousands separators: 123,457.
func fmtCount(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtMiB(v float64) string    { return strconv.FormatFloat(v, 'f', 1, 64) }
func fmtFloat2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func fmtFloat0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// fmtMs formats milliseconds with three significant digits or more.
func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// writeNotes ends a text report with its notes, if any.
func writeNotes(b *strings.Builder, notes []string) {
	if len(notes) == 0 {
		return
	}
	b.WriteString("\nnotes:\n")
	for _, n := range notes {
		b.WriteString("  " + n + "\n")
	}
}
