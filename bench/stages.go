package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Broker stages: where a samsa broker's time went during a workload, from
// the histograms of its /metrics (the [admin] listener) read before and
// after it. Percentiles come from the buckets' differences, so each is the
// upper bound of the bucket it falls in (the buckets grow by half again:
// a figure is at most that much above the truth).

// StageFigure is one stage's distribution during a workload.
type StageFigure struct {
	Name  string        `json:"name"`
	Count uint64        `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"` // the upper bound of the highest bucket reached
}

// BrokerStages is the broker's stage figures for a workload, and its Go
// garbage collector meanwhile.
type BrokerStages struct {
	Stages   []StageFigure `json:"stages"`
	GCCycles uint64        `json:"gc_cycles"`
	GCPause  time.Duration `json:"gc_pause_total_ns"`
}

// stageSeriesDef is a histogram (with label=value, if label is not "")
// and the name a report gives it.
type stageSeriesDef struct {
	family, label, value, name string
}

// stageSeries are the histograms read, in the order of an acks=all
// record's path, with the name a report gives each.
var stageSeries = []stageSeriesDef{
	{"samsa_request_queue_seconds", "api", "Produce", "produce queue"},
	{"samsa_produce_stage_seconds", "stage", "write_wait", "write wait"},
	{"samsa_produce_stage_seconds", "stage", "write", "write"},
	{"samsa_produce_stage_seconds", "stage", "sync_wait", "fsync wait"},
	{"samsa_produce_stage_seconds", "stage", "fsync", "fsync"},
	{"samsa_produce_stage_seconds", "stage", "standby", "standby"},
	{"samsa_request_duration_seconds", "api", "Produce", "produce request"},
	{"samsa_fetch_wake_seconds", "", "", "fetch wake"},
	{"samsa_request_queue_seconds", "api", "Fetch", "fetch queue"},
}

// standbyStageSeries are a standby's histograms read with the primary's
// (Target.StandbyMetrics): its side of the round trip that acknowledges
// an acks=all record.
var standbyStageSeries = []stageSeriesDef{
	{"samsa_replica_fetch_seconds", "phase", "wait", "standby fetch"},
	{"samsa_replica_fetch_seconds", "phase", "apply", "standby apply"},
}

// metricsSnapshot is one read of /metrics.
type metricsSnapshot map[string]*dto.MetricFamily

// scrapeMetrics reads http://addr/metrics.
func scrapeMetrics(ctx context.Context, addr string) (metricsSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read the broker's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot read the broker's metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("the broker's metrics are not Prometheus text: %w", err)
	}
	return fams, nil
}

// histogram finds a family's histogram with label=value (any, if label is
// "").
func (s metricsSnapshot) histogram(family, label, value string) *dto.Histogram {
	f := s[family]
	if f == nil {
		return nil
	}
	for _, m := range f.Metric {
		if label == "" {
			return m.Histogram
		}
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				return m.Histogram
			}
		}
	}
	return nil
}

// summary finds a family's summary.
func (s metricsSnapshot) summary(family string) *dto.Summary {
	if f := s[family]; f != nil && len(f.Metric) > 0 {
		return f.Metric[0].Summary
	}
	return nil
}

// stagesBetween computes the figures of what happened between two reads.
func stagesBetween(before, after metricsSnapshot) *BrokerStages {
	out := &BrokerStages{Stages: stagesOf(stageSeries, before, after)}
	if s1 := after.summary("go_gc_duration_seconds"); s1 != nil {
		s0 := before.summary("go_gc_duration_seconds")
		out.GCCycles = s1.GetSampleCount() - s0.GetSampleCount()
		out.GCPause = time.Duration(math.Round((s1.GetSampleSum() - s0.GetSampleSum()) * float64(time.Second)))
	}
	return out
}

// withStandby adds a standby's stage figures after the broker's (s nil:
// only the standby's).
func (s *BrokerStages) withStandby(standby []StageFigure) *BrokerStages {
	if s == nil {
		s = &BrokerStages{}
	}
	s.Stages = append(s.Stages, standby...)
	return s
}

// stagesOf computes the figures of the series that saw observations
// between two reads.
func stagesOf(series []stageSeriesDef, before, after metricsSnapshot) []StageFigure {
	var out []StageFigure
	for _, ser := range series {
		h1 := after.histogram(ser.family, ser.label, ser.value)
		if h1 == nil {
			continue
		}
		fig := histogramDelta(before.histogram(ser.family, ser.label, ser.value), h1)
		if fig.Count == 0 {
			continue
		}
		fig.Name = ser.name
		out = append(out, fig)
	}
	return out
}

// histogramDelta is the distribution of the observations h1 has over h0
// (h0 nil: all of h1's).
func histogramDelta(h0, h1 *dto.Histogram) StageFigure {
	type bucket struct {
		upper float64
		n     uint64 // cumulative
	}
	var bs []bucket
	prev := map[float64]uint64{}
	if h0 != nil {
		for _, b := range h0.Bucket {
			prev[b.GetUpperBound()] = b.GetCumulativeCount()
		}
	}
	for _, b := range h1.Bucket {
		bs = append(bs, bucket{b.GetUpperBound(), b.GetCumulativeCount() - prev[b.GetUpperBound()]})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].upper < bs[j].upper })
	total := h1.GetSampleCount()
	if h0 != nil {
		total -= h0.GetSampleCount()
	}
	fig := StageFigure{Count: total}
	if total == 0 {
		return fig
	}
	at := func(q float64) time.Duration {
		want := uint64(math.Ceil(q * float64(total)))
		for _, b := range bs {
			if b.n >= want {
				return seconds(b.upper)
			}
		}
		return seconds(math.Inf(1))
	}
	fig.P50, fig.P99, fig.P999 = at(0.5), at(0.99), at(0.999)
	// The highest bucket that gained an observation.
	var last uint64
	for _, b := range bs {
		if b.n > last {
			fig.Max = seconds(b.upper)
			last = b.n
		}
	}
	if total > last {
		fig.Max = seconds(math.Inf(1)) // past the last bucket
	}
	return fig
}

// seconds converts a bucket bound; +Inf is reported as -1.
func seconds(s float64) time.Duration {
	if math.IsInf(s, 1) {
		return -1
	}
	return time.Duration(s * float64(time.Second))
}

// writeStages prints the stage figures under a workload's result.
func writeStages(w io.Writer, indent string, s *BrokerStages) {
	if s == nil || len(s.Stages) == 0 {
		return
	}
	fmt.Fprintf(w, "%sbroker stages (from its /metrics; each figure the upper bound of its bucket):\n", indent)
	fmt.Fprintf(w, "%s  %-16s %10s %9s %9s %9s %9s\n", indent, "stage", "count", "p50", "p99", "p99.9", "max")
	for _, f := range s.Stages {
		fmt.Fprintf(w, "%s  %-16s %10d %9s %9s %9s %9s\n", indent, f.Name, f.Count, fmtStage(f.P50), fmtStage(f.P99), fmtStage(f.P999), fmtStage(f.Max))
	}
	fmt.Fprintf(w, "%s  Go GC: %d cycles, %s of pauses in all\n", indent, s.GCCycles, fmtStage(s.GCPause))
}

// fmtStage formats a stage figure in milliseconds.
func fmtStage(d time.Duration) string {
	if d < 0 {
		return "> max"
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)), "0"), ".") + " ms"
}

// medianStages is, for each stage, the median over rounds of each figure
// (nil when no round has stages).
func medianStages(rounds []*Result) *BrokerStages {
	byName := map[string][]StageFigure{}
	var order []string
	var cycles []float64
	var pauses []float64
	for _, r := range rounds {
		if r == nil || r.Stages == nil {
			continue
		}
		for _, f := range r.Stages.Stages {
			if _, ok := byName[f.Name]; !ok {
				order = append(order, f.Name)
			}
			byName[f.Name] = append(byName[f.Name], f)
		}
		cycles = append(cycles, float64(r.Stages.GCCycles))
		pauses = append(pauses, float64(r.Stages.GCPause))
	}
	if len(order) == 0 {
		return nil
	}
	out := &BrokerStages{GCCycles: uint64(median(cycles)), GCPause: time.Duration(median(pauses))}
	for _, name := range order {
		fs := byName[name]
		pick := func(get func(StageFigure) time.Duration) time.Duration {
			v := make([]float64, len(fs))
			for i, f := range fs {
				v[i] = float64(get(f))
			}
			return time.Duration(median(v))
		}
		var counts []float64
		for _, f := range fs {
			counts = append(counts, float64(f.Count))
		}
		out.Stages = append(out.Stages, StageFigure{
			Name:  name,
			Count: uint64(median(counts)),
			P50:   pick(func(f StageFigure) time.Duration { return f.P50 }),
			P99:   pick(func(f StageFigure) time.Duration { return f.P99 }),
			P999:  pick(func(f StageFigure) time.Duration { return f.P999 }),
			Max:   pick(func(f StageFigure) time.Duration { return f.Max }),
		})
	}
	return out
}
