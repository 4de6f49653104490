package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteJSON writes the report, every sample and event included, as
// indented JSON.
func (r *SoakReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("cannot write JSON report: %w", err)
	}
	return nil
}

// WriteText writes the summary: the failovers, the writes, each node's
// trends, the loss checks and the verdict. (The samples and events were
// printed as they came.)
func (r *SoakReport) WriteText(w io.Writer) error {
	var b strings.Builder
	s := r.Spec
	m := r.Machine
	fmt.Fprintf(&b, "\nsamsa-bench soak: %s of load, a pair with auto_failover, a SIGKILL every %v (the primary, then the standby), samples every %v\n",
		fmtElapsed(r.ElapsedSec), s.KillEvery, s.SampleEvery)
	fmt.Fprintf(&b, "machine: %d CPUs, %s, Linux %s, %s; load average %s before, %s after; both nodes and the load on this machine\n",
		m.CPUs, orDash(m.CPUModel), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))
	fmt.Fprintf(&b, "load: %d records/s of %s to each of 3 topics (%d partitions; acks=all idempotent), group members on the plain topic joining and leaving every %v (%d started), one reading the retention topic\n",
		s.Rate, sizeName(s.Size), s.Partitions, s.ChurnEvery, r.MembersStarted)

	fo := "none"
	if len(r.FailoverMs) > 0 {
		fo = fmt.Sprintf("median %s ms, max %s ms", fmtFloat0(median(r.FailoverMs)), fmtFloat0(slices.Max(r.FailoverMs)))
	}
	fmt.Fprintf(&b, "\nkills: %d of the primary (automatic failover: %d, kill -> standby leads %s), %d of the standby; %d unexpected exits\n",
		r.Kills[0], len(r.FailoverMs), fo, r.Kills[1], r.Unexpected)
	b.WriteString("writes:\n")
	for i, t := range r.Topics {
		if t == nil {
			continue
		}
		fmt.Fprintf(&b, "  %-9s %s acked, %d failed, %d pending; longest ack wait %s ms, longest time without an ack %s ms\n",
			soakTopicKinds[i], fmtCount(float64(t.Acked)), t.Failed, t.Pending, fmtFloat0(t.MaxAckWaitMs), fmtFloat0(t.LongestStallMs))
		if t.FirstError != "" {
			fmt.Fprintf(&b, "            first record error: %s\n", t.FirstError)
		}
	}

	fmt.Fprintf(&b, "trends per hour (least squares over the samples after %v while the node was up; a restart resets RSS, so also over the longest stretch of one process):\n", s.TrendAfter)
	for i, t := range r.Trends {
		if t == nil || t.Samples < 2 {
			fmt.Fprintf(&b, "  node %d: too few samples\n", i+1)
			continue
		}
		var rs []string
		for _, x := range t.Restarts {
			rs = append(rs, fmtElapsed(x))
		}
		restarts := "no restarts"
		switch len(rs) {
		case 0:
		case 1:
			restarts = "1 restart (at " + rs[0] + ")"
		default:
			restarts = fmt.Sprintf("%d restarts (at %s)", len(rs), strings.Join(rs, ", "))
		}
		fmt.Fprintf(&b, "  node %d (%d samples; %s): RSS %s/h, fds %+.1f/h, goroutines %+.1f/h, disk %s/h (%s/h without the plain topic); last RSS %s, fds %d, goroutines %d, disk %s\n",
			i+1, t.Samples, restarts, fmtBytesSigned(t.RSSPerHour), t.FDsPerHour, t.GoroutinesPerHour,
			fmtBytesSigned(t.DiskPerHour), fmtBytesSigned(t.DiskOtherPerHour), fmtBytes(t.LastRSS), t.LastFDs, t.LastGorouts, fmtBytes(t.LastDisk))
		if t.StretchSamples >= 2 {
			fmt.Fprintf(&b, "          longest stretch of one process, %s (%d samples): RSS %s/h, fds %+.1f/h, goroutines %+.1f/h\n",
				fmtElapsed(t.StretchSec), t.StretchSamples, fmtBytesSigned(t.StretchRSSPerHour), t.StretchFDsPerHour, t.StretchGorPerHour)
		}
	}

	b.WriteString("checks:\n")
	if t := r.Topics[soakPlain]; t != nil {
		fmt.Fprintf(&b, "  plain:     %s acked; %d missing from the log, %d in it twice; the group read %s distinct (%d more than once)\n",
			fmtCount(float64(t.Acked)), r.PlainMissing, r.PlainLogDuplicates, fmtCount(float64(r.GroupRead)), r.GroupDuplicates)
	}
	if t := r.Topics[soakCompact]; t != nil {
		fmt.Fprintf(&b, "  compact:   %d keys, latest acked value missing for %d; %s records in the log of %s produced\n",
			r.CompactKeys, r.CompactKeysBad, fmtCount(float64(r.CompactRecordsInLog)), fmtCount(float64(t.Produced)))
	}
	fmt.Fprintf(&b, "  retention: %d of %d partitions trimmed by retention; the reader got %s records\n",
		r.RetentionTrimmed, s.Partitions, fmtCount(float64(r.RetentionRead)))
	if len(r.ClientErrors) > 0 {
		fmt.Fprintf(&b, "errors the clients' logs reported: %s\n", formatTally(r.ClientErrors))
	}
	if len(r.Errors) > 0 {
		b.WriteString("errors:\n")
		for _, e := range r.Errors {
			b.WriteString("  " + e + "\n")
		}
	}
	verdict := "PASS: nothing acknowledged was lost"
	switch {
	case r.Lost() > 0:
		verdict = fmt.Sprintf("FAIL: %d acknowledged records (plain) and %d keys' latest values (compact) lost", r.PlainMissing, r.CompactKeysBad)
	case len(r.Errors) > 0:
		verdict = "FAIL: nothing acknowledged was lost, but see the errors"
	}
	b.WriteString(verdict + "\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}

// fmtBytesSigned formats a byte rate with its sign, in MiB.
func fmtBytesSigned(v float64) string {
	return fmt.Sprintf("%+.1fMiB", v/(1<<20))
}
