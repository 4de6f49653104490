package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as indented JSON.
func (rep *HostileReport) WriteJSON(w io.Writer) error { return writeJSON(w, rep) }

// hostileFigure is one row of the text report.
type hostileFigure struct {
	label string
	get   func(r *HostileResult) string
}

func latCell(l *Latency, f func(*Latency) float64) string {
	if l == nil {
		return "-"
	}
	return fmtMs(f(l))
}

func mibCell(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64)
}

// sizeCell formats a byte count in B, KiB or MiB.
func sizeCell(n int64) string {
	switch {
	case n == 0:
		return "-"
	case n < 10<<10:
		return fmt.Sprintf("%d B", n)
	case n < 10<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func fdCell(n int) string {
	if n <= 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func countCell(n int64) string { return strconv.FormatInt(n, 10) }

var hostileFigures = []hostileFigure{
	{"produce ack p50 ms", func(r *HostileResult) string { return latCell(r.Produce, func(l *Latency) float64 { return l.P50 }) }},
	{"produce ack p99 ms", func(r *HostileResult) string { return latCell(r.Produce, func(l *Latency) float64 { return l.P99 }) }},
	{"produce ack max ms", func(r *HostileResult) string { return latCell(r.Produce, func(l *Latency) float64 { return l.Max }) }},
	{"produce->read p99 ms", func(r *HostileResult) string { return latCell(r.Consume, func(l *Latency) float64 { return l.P99 }) }},
	{"produce->read max ms", func(r *HostileResult) string { return latCell(r.Consume, func(l *Latency) float64 { return l.Max }) }},
	{"ApiVersions max ms", func(r *HostileResult) string {
		if r.APIVersionsSent == 0 {
			return "-"
		}
		s := fmtMs(r.APIVersionsMax)
		if r.APIVersionsFailed > 0 {
			s = ">" + s
		}
		return s
	}},
	{"ApiVersions failed", func(r *HostileResult) string { return fmt.Sprintf("%d/%d", r.APIVersionsFailed, r.APIVersionsSent) }},
	{"records acked/sent", func(r *HostileResult) string { return fmt.Sprintf("%d/%d", r.Acked, r.Sent) }},
	{"records stalled", func(r *HostileResult) string { return countCell(r.Stalled) }},
	{"records unread", func(r *HostileResult) string { return countCell(r.Unread) }},
	{"errors", func(r *HostileResult) string { return countCell(r.Errors) }},
	{"broker RSS before MiB", func(r *HostileResult) string { return mibCell(r.RSSBefore) }},
	{"broker RSS peak MiB", func(r *HostileResult) string { return mibCell(r.RSSPeak) }},
	{"broker RSS after MiB", func(r *HostileResult) string { return mibCell(r.RSSAfter) }},
	{"broker fds before", func(r *HostileResult) string { return fdCell(r.FDsBefore) }},
	{"broker fds peak", func(r *HostileResult) string { return fdCell(r.FDsPeak) }},
	{"broker fds after", func(r *HostileResult) string { return fdCell(r.FDsAfter) }},
	{"attack conns", func(r *HostileResult) string { return countCell(r.Conns.Connected) }},
	{"refused", func(r *HostileResult) string { return countCell(r.Conns.Refused) }},
	{"closed by broker", func(r *HostileResult) string { return countCell(r.Conns.ClosedByBroker) }},
	{"open at the end", func(r *HostileResult) string { return countCell(r.Conns.OpenAtEnd) }},
	{"attack bytes sent", func(r *HostileResult) string { return sizeCell(r.Conns.BytesSent) }},
	{"legit clients", func(r *HostileResult) string {
		if r.Attack == "baseline" {
			return "-"
		}
		if len(r.Problems()) > 0 {
			return "FAIL"
		}
		return "PASS"
	}},
}

// WriteText writes the report as a table, a column per attack (the
// warm-up first), then the problems and notes.
func (rep *HostileReport) WriteText(w io.Writer) error {
	var b strings.Builder
	s := rep.Settings
	who := rep.Broker
	if rep.PID != 0 {
		who += fmt.Sprintf(" (pid %d", rep.PID)
		if rep.Started {
			who += ", started by the run"
		}
		who += ")"
	}
	fmt.Fprintf(&b, "samsa-bench hostile: broker %s; attacks from %s, %v each; \"after\" %v after each, \"peak\" of 1 s samples until then\n",
		who, s.AttackFrom, s.Duration, s.Settle)
	fmt.Fprintf(&b, "legit: a record every %v (acks=all, idempotent, no linger), a consumer from the start, ApiVersions on a fresh connection every %v; stalled = slower than %v\n",
		s.Interval, s.ProbeEvery, s.StallBound)
	m := rep.Machine
	fmt.Fprintf(&b, "machine: %d CPUs, %s, Linux %s, %s; load average %s before, %s after\n\n",
		m.CPUs, orDash(m.CPUModel), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))
	cols := rep.Attacks
	if rep.Baseline != nil {
		cols = append([]*HostileResult{rep.Baseline}, cols...)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{fmt.Sprintf("%-22s", "")}
	for _, r := range cols {
		head = append(head, r.Attack)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, f := range hostileFigures {
		row := []string{fmt.Sprintf("%-22s", f.label)}
		for _, r := range cols {
			row = append(row, f.get(r))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot format report: %w", err)
	}
	var notes []string
	for _, r := range cols {
		for _, p := range r.Problems() {
			if r.Attack != "baseline" {
				notes = append(notes, r.Attack+": "+p)
			}
		}
		if r.Attack == AttackDribble {
			if r.Conns.DribbleClosedAfter < 0 {
				notes = append(notes, fmt.Sprintf("dribble: the broker kept the connection open for the whole attack (%s sent, a byte a second)", plural(r.Conns.BytesSent, "byte")))
			} else {
				notes = append(notes, fmt.Sprintf("dribble: the broker closed the connection after %.0f s", r.Conns.DribbleClosedAfter))
			}
		}
		if r.Conns.Frames > 0 && r.Attack == AttackMixed {
			notes = append(notes, fmt.Sprintf("mixed: %d complete garbage frames sent, %d responses read", r.Conns.Frames, r.Conns.Responses))
		}
		if len(r.ClientErrors) > 0 {
			notes = append(notes, fmt.Sprintf("%s: client errors: %s", r.Attack, formatTally(r.ClientErrors)))
		}
	}
	if rep.DupReads > 0 {
		notes = append(notes, fmt.Sprintf("the consumer read %s twice", plural(rep.DupReads, "record")))
	}
	if rep.Error != "" {
		notes = append(notes, "run: "+rep.Error)
	}
	writeNotes(&b, notes)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
