package bench

import (
	"slices"
	"strings"
	"testing"
)

func TestPartitionsTopicSizes(t *testing.T) {
	f := func(n int, want []int32) {
		t.Helper()
		if got := topicSizes(n); !slices.Equal(got, want) {
			t.Errorf("topicSizes(%d) = %v, want %v", n, got, want)
		}
	}
	f(1, []int32{1})
	f(100, []int32{100})
	f(250, []int32{100, 100, 50})
	f(1000, slices.Repeat([]int32{100}, 10))

	for _, i := range []int{0, 99, 100, 9999} {
		topic, p := partitionOf(i)
		if topic*partitionsPerTopic+int(p) != i || p >= partitionsPerTopic {
			t.Errorf("partitionOf(%d) = %d, %d", i, topic, p)
		}
	}
}

func TestPartitionsParseCounts(t *testing.T) {
	f := func(in string, want []int, valid bool) {
		t.Helper()
		got, err := ParseCounts(in)
		if err == nil {
			s := DefaultPartitionsSpec()
			s.Counts = got
			err = s.Validate()
		}
		if (err == nil) != valid || (valid && !slices.Equal(got, want)) {
			t.Errorf("ParseCounts(%q) = %v, %v; want %v, valid %v", in, got, err, want, valid)
		}
	}
	f("1000,10000", []int{1000, 10000}, true)
	f(" 5 , 7,", []int{5, 7}, true)
	f("", nil, false)
	f("1000,x", nil, false)
	f("0", nil, false)
	f("10,10", nil, false)
}

func TestPartitionsReport(t *testing.T) {
	run := func(n, round int, create float64, lost int64) *PartitionsResult {
		return &PartitionsResult{Partitions: n, Topics: len(topicSizes(n)), Round: round, CreateSec: create,
			RSS: 64 << 20, FDs: 40, MetadataMs: 2.5, Produce: newThroughput(1000, 1000<<10, 1e9),
			Checked: true, Expected: 1000 + int64(n), Found: 1000 + int64(n) - lost, Lost: lost}
	}
	spec := DefaultPartitionsSpec()
	spec.Counts, spec.Rounds = []int{1000, 10000}, 3
	rep := &PartitionsReport{Spec: spec, Runs: []*PartitionsResult{
		run(1000, 1, 0.3, 0), run(10000, 1, 4, 0), run(1000, 2, 0.1, 0), run(10000, 2, 2, 0), run(1000, 3, 0.2, 0),
	}}
	rep.Medians = partitionsMedians(rep.Runs)
	if got := rep.Medians[1000]["create_sec"]; got != 0.2 {
		t.Errorf("median create of 1000 = %v, want 0.2", got)
	}
	if got := rep.Medians[10000]["create_sec"]; got != 3 {
		t.Errorf("median create of 10000 = %v, want 3 (of two rounds)", got)
	}
	if _, ok := rep.Medians[1000]["clean_stop_sec"]; ok {
		t.Error("a median of a figure no round has")
	}
	if rep.Failed() {
		t.Error("failed without an error or a loss")
	}

	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	head := func(prefix string) []string {
		for _, l := range lines {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
				return strings.Fields(strings.TrimPrefix(l, prefix))
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, out)
		return nil
	}
	want := "1000 r1 1000 r2 1000 r3 1000 median 10000 r1 10000 r2 10000 median"
	if got := strings.Join(head("1000 r1"), " "); "1000 r1 "+got != want {
		t.Errorf("head 1000 r1 %s, want %s", got, want)
	}
	if got, want := head("create s"), []string{"0.300", "0.100", "0.200", "0.200", "4.00", "2.00", "3.00"}; !slices.Equal(got, want) {
		t.Errorf("create row %v, want %v", got, want)
	}
	if got := head("topics"); got[0] != "10" || got[4] != "100" {
		t.Errorf("topics row %v", got)
	}
	if got := head("clean stop s"); !slices.Equal(got, slices.Repeat([]string{"-"}, 7)) {
		t.Errorf("unmeasured row %v, want dashes", got)
	}

	rep.Runs[1].Found, rep.Runs[1].Lost = 10997, 3
	b.Reset()
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !rep.Failed() || !strings.Contains(b.String(), "10000 partitions, round 1: 11000 records acknowledged, 10997 found") {
		t.Errorf("a loss not reported:\n%s", b.String())
	}
}
