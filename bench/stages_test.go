package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func parseMetrics(t *testing.T, text string) metricsSnapshot {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// The figures of a workload are those of the observations between two
// reads, each percentile the upper bound of the bucket it falls in.
func TestStagesBetween(t *testing.T) {
	before := parseMetrics(t, `# TYPE samsa_produce_stage_seconds histogram
samsa_produce_stage_seconds_bucket{stage="fsync",le="0.001"} 100
samsa_produce_stage_seconds_bucket{stage="fsync",le="0.002"} 100
samsa_produce_stage_seconds_bucket{stage="fsync",le="0.004"} 100
samsa_produce_stage_seconds_bucket{stage="fsync",le="+Inf"} 100
samsa_produce_stage_seconds_sum{stage="fsync"} 0.05
samsa_produce_stage_seconds_count{stage="fsync"} 100
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds_sum 0.01
go_gc_duration_seconds_count 5
`)
	// 1,000 more: 980 under 1 ms, 15 under 2 ms, 4 under 4 ms, 1 above.
	after := parseMetrics(t, `# TYPE samsa_produce_stage_seconds histogram
samsa_produce_stage_seconds_bucket{stage="fsync",le="0.001"} 1080
samsa_produce_stage_seconds_bucket{stage="fsync",le="0.002"} 1095
samsa_produce_stage_seconds_bucket{stage="fsync",le="0.004"} 1099
samsa_produce_stage_seconds_bucket{stage="fsync",le="+Inf"} 1100
samsa_produce_stage_seconds_sum{stage="fsync"} 0.9
samsa_produce_stage_seconds_count{stage="fsync"} 1100
samsa_produce_stage_seconds_bucket{stage="write",le="0.001"} 0
samsa_produce_stage_seconds_bucket{stage="write",le="+Inf"} 0
samsa_produce_stage_seconds_sum{stage="write"} 0
samsa_produce_stage_seconds_count{stage="write"} 0
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds_sum 0.03
go_gc_duration_seconds_count 9
`)
	st := stagesBetween(before, after)
	if len(st.Stages) != 1 {
		t.Fatalf("stages %+v: want fsync only (write saw nothing)", st.Stages)
	}
	f := st.Stages[0]
	want := StageFigure{Name: "fsync", Count: 1000, P50: time.Millisecond, P99: 2 * time.Millisecond, P999: 4 * time.Millisecond, Max: -1}
	if f != want {
		t.Fatalf("fsync %+v, want %+v", f, want)
	}
	if st.GCCycles != 4 || st.GCPause != 20*time.Millisecond {
		t.Fatalf("GC %d cycles %v, want 4 and 20ms", st.GCCycles, st.GCPause)
	}
	var b strings.Builder
	writeStages(&b, "", st)
	if !strings.Contains(b.String(), "fsync") || !strings.Contains(b.String(), "> max") {
		t.Fatalf("report:\n%s", b.String())
	}

	// Medians over rounds, figure by figure.
	r := func(p99 time.Duration) *Result {
		return &Result{Stages: &BrokerStages{Stages: []StageFigure{{Name: "fsync", Count: 10, P99: p99}}}}
	}
	m := medianStages([]*Result{r(time.Millisecond), r(3 * time.Millisecond), r(2 * time.Millisecond), {}})
	if m == nil || len(m.Stages) != 1 || m.Stages[0].P99 != 2*time.Millisecond {
		t.Fatalf("median stages %+v", m)
	}
	if medianStages([]*Result{{}}) != nil {
		t.Fatal("stages from rounds without any")
	}
}

// A primary's standby adds its replica fetches after the primary's stages
// (Target.StandbyMetrics), named apart from them.
func TestStandbyStages(t *testing.T) {
	before := parseMetrics(t, "") // a standby that had timed none yet
	after := parseMetrics(t, `# TYPE samsa_replica_fetch_seconds histogram
samsa_replica_fetch_seconds_bucket{phase="wait",le="0.001"} 6
samsa_replica_fetch_seconds_bucket{phase="wait",le="+Inf"} 10
samsa_replica_fetch_seconds_sum{phase="wait"} 0.1
samsa_replica_fetch_seconds_count{phase="wait"} 10
samsa_replica_fetch_seconds_bucket{phase="apply",le="0.001"} 10
samsa_replica_fetch_seconds_bucket{phase="apply",le="+Inf"} 10
samsa_replica_fetch_seconds_sum{phase="apply"} 0.001
samsa_replica_fetch_seconds_count{phase="apply"} 10
`)
	primary := &BrokerStages{Stages: []StageFigure{{Name: "fsync", Count: 3}}}
	st := primary.withStandby(stagesOf(standbyStageSeries, before, after))
	if len(st.Stages) != 3 || st.Stages[0].Name != "fsync" {
		t.Fatalf("stages %+v: want fsync, then the standby's two", st.Stages)
	}
	wait, apply := st.Stages[1], st.Stages[2]
	if wait.Name != "standby fetch" || wait.Count != 10 || wait.P50 != time.Millisecond || wait.P99 != -1 {
		t.Fatalf("standby fetch %+v", wait)
	}
	if apply.Name != "standby apply" || apply.Count != 10 || apply.P99 != time.Millisecond {
		t.Fatalf("standby apply %+v", apply)
	}
	if only := (*BrokerStages)(nil).withStandby(st.Stages[1:]); len(only.Stages) != 2 {
		t.Fatalf("the standby's stages alone: %+v", only)
	}
}

// Under a bulk load the disk's two writer lanes are summed in each stage's
// row, and the small lane's appends get rows of their own; a stage whose
// observations are all one lane's has no extra row.
func TestStagesByLane(t *testing.T) {
	before := parseMetrics(t, "")
	after := parseMetrics(t, `# TYPE samsa_produce_stage_seconds histogram
samsa_produce_stage_seconds_bucket{stage="write_wait",lane="small",le="0.001"} 90
samsa_produce_stage_seconds_bucket{stage="write_wait",lane="small",le="0.064"} 90
samsa_produce_stage_seconds_bucket{stage="write_wait",lane="small",le="+Inf"} 90
samsa_produce_stage_seconds_sum{stage="write_wait",lane="small"} 0.01
samsa_produce_stage_seconds_count{stage="write_wait",lane="small"} 90
samsa_produce_stage_seconds_bucket{stage="write_wait",lane="bulk",le="0.001"} 0
samsa_produce_stage_seconds_bucket{stage="write_wait",lane="bulk",le="0.064"} 10
samsa_produce_stage_seconds_bucket{stage="write_wait",lane="bulk",le="+Inf"} 10
samsa_produce_stage_seconds_sum{stage="write_wait",lane="bulk"} 0.5
samsa_produce_stage_seconds_count{stage="write_wait",lane="bulk"} 10
samsa_produce_stage_seconds_bucket{stage="fsync",lane="small",le="0.001"} 50
samsa_produce_stage_seconds_bucket{stage="fsync",lane="small",le="0.064"} 50
samsa_produce_stage_seconds_bucket{stage="fsync",lane="small",le="+Inf"} 50
samsa_produce_stage_seconds_sum{stage="fsync",lane="small"} 0.01
samsa_produce_stage_seconds_count{stage="fsync",lane="small"} 50
samsa_produce_stage_seconds_bucket{stage="fsync",lane="bulk",le="0.001"} 0
samsa_produce_stage_seconds_bucket{stage="fsync",lane="bulk",le="0.064"} 0
samsa_produce_stage_seconds_bucket{stage="fsync",lane="bulk",le="+Inf"} 0
samsa_produce_stage_seconds_sum{stage="fsync",lane="bulk"} 0
samsa_produce_stage_seconds_count{stage="fsync",lane="bulk"} 0
`)
	st := stagesBetween(before, after)
	got := map[string]StageFigure{}
	var names []string
	for _, f := range st.Stages {
		got[f.Name] = f
		names = append(names, f.Name)
	}
	want := []StageFigure{
		{Name: "write wait", Count: 100, P50: time.Millisecond, P99: 64 * time.Millisecond, P999: 64 * time.Millisecond, Max: 64 * time.Millisecond},
		{Name: "fsync", Count: 50, P50: time.Millisecond, P99: time.Millisecond, P999: time.Millisecond, Max: time.Millisecond},
		{Name: "small write wait", Count: 90, P50: time.Millisecond, P99: time.Millisecond, P999: time.Millisecond, Max: time.Millisecond},
	}
	if strings.Join(names, ",") != "write wait,fsync,small write wait" {
		t.Fatalf("rows %q, want write wait, fsync and small write wait", names)
	}
	for _, w := range want {
		if got[w.Name] != w {
			t.Errorf("%s: %+v, want %+v", w.Name, got[w.Name], w)
		}
	}
}
