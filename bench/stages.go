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

// stageSeriesDef is a histogram (with label=value, if label is not "",
// and lane=lane, if lane is not ""; the sum of the series that match)
// and the name a report gives it.
type stageSeriesDef struct {
	family, label, value, name string
	lane                       string
}

// stageSeries are the histograms read, in the order of an acks=all
// record's path, with the name a report gives each.
var stageSeries = []stageSeriesDef{
	{family: "samsa_request_queue_seconds", label: "api", value: "Produce", name: "produce queue"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "write_wait", name: "write wait"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "write", name: "write"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "sync_wait", name: "fsync wait"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "fsync", name: "fsync"},
	// The appends of the disk's small lane apart, when its bulk lane
	// wrote some too (stagesOf leaves out a lane's row that has all of its
	// stage's observations): under a bulk load, the latency-sensitive ones.
	{family: "samsa_produce_stage_seconds", label: "stage", value: "write_wait", lane: "small", name: "small write wait"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "write", lane: "small", name: "small write"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "sync_wait", lane: "small", name: "small fsync wait"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "fsync", lane: "small", name: "small fsync"},
	{family: "samsa_produce_stage_seconds", label: "stage", value: "standby", name: "standby"},
	{family: "samsa_request_duration_seconds", label: "api", value: "Produce", name: "produce request"},
	{family: "samsa_fetch_wake_seconds", name: "fetch wake"},
	{family: "samsa_request_queue_seconds", label: "api", value: "Fetch", name: "fetch queue"},
}

// standbyStageSeries are a standby's histograms read with the primary's
// (Target.StandbyMetrics): its side of the round trip that acknowledges
// an acks=all record.
var standbyStageSeries = []stageSeriesDef{
	{family: "samsa_replica_fetch_seconds", label: "phase", value: "wait", name: "standby fetch"},
	{family: "samsa_replica_fetch_seconds", label: "phase", value: "apply", name: "standby apply"},
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

// histogram is the sum of a family's histograms with label=value (any, if
// label is "") and lane=lane (any, if lane is ""); nil if none matches.
func (s metricsSnapshot) histogram(family, label, value, lane string) *dto.Histogram {
	f := s[family]
	if f == nil {
		return nil
	}
	var sum *dto.Histogram
	for _, m := range f.Metric {
		if m.Histogram == nil || (label != "" && labelOf(m, label) != value) || (lane != "" && labelOf(m, "lane") != lane) {
			continue
		}
		if sum == nil {
			sum = &dto.Histogram{SampleCount: new(uint64)}
			for _, b := range m.Histogram.Bucket {
				sum.Bucket = append(sum.Bucket, &dto.Bucket{UpperBound: b.UpperBound, CumulativeCount: new(uint64)})
			}
		}
		*sum.SampleCount += m.Histogram.GetSampleCount()
		for i, b := range m.Histogram.Bucket { // one family: the same buckets
			if i < len(sum.Bucket) {
				*sum.Bucket[i].CumulativeCount += b.GetCumulativeCount()
			}
		}
	}
	return sum
}

// labelOf is m's value of the label name ("" if it has none).
func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
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
		h1 := after.histogram(ser.family, ser.label, ser.value, ser.lane)
		if h1 == nil {
			continue
		}
		fig := histogramDelta(before.histogram(ser.family, ser.label, ser.value, ser.lane), h1)
		if fig.Count == 0 {
			continue
		}
		if ser.lane != "" {
			all := histogramDelta(before.histogram(ser.family, ser.label, ser.value, ""), after.histogram(ser.family, ser.label, ser.value, ""))
			if all.Count == fig.Count {
				continue // the stage's row already is this lane's
			}
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
