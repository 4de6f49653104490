package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// setupTimeout bounds each step around a workload that is not the workload
// itself: creating and deleting its topic, waiting for a broker to start.
const setupTimeout = 30 * time.Second

// Target is a broker to run workloads against.
type Target struct {
	Name string // for reports: "samsa", "kfake" or the address
	Addr string // host:port of the broker
	// PID is the broker's process id for CPU and memory figures; 0 leaves
	// them out.
	PID int
	// ResetPeak resets the process's peak RSS before each workload, so the
	// peak is that workload's. Only for brokers this tool started.
	ResetPeak bool
	// Metrics is the host:port of the broker's /metrics (samsa's [admin]
	// listener): each result then tells where the broker's time went
	// (Result.Stages). "" leaves that out.
	Metrics string
	// StandbyMetrics is the host:port of its standby's /metrics, when the
	// broker is a pair's primary: the stages then include the standby's
	// replica fetches (standbyStageSeries). "" leaves them out.
	StandbyMetrics string
}

// Result is one run of one workload against one broker.
type Result struct {
	Spec    Spec        `json:"spec"`
	Name    string      `json:"name"`
	Broker  string      `json:"broker"`
	Topic   string      `json:"topic,omitempty"`
	Produce *Throughput `json:"produce,omitempty"`
	Consume *Throughput `json:"consume,omitempty"`
	// Latency is the per-record ack latency for produce (acks 1 and all),
	// and the time from the produce call to receipt by the consumer for e2e.
	Latency  *Latency     `json:"latency,omitempty"`
	Usage    *BrokerUsage `json:"broker_usage,omitempty"`
	TimedOut bool         `json:"timed_out,omitempty"` // stopped by the time limit before the record count
	Failed   int64        `json:"failed_records,omitempty"`
	// Bulk is, for e2e under a bulk load (Spec.Bulk), what the load moved
	// in MiB/s: acknowledged and read.
	Bulk *BulkFigures `json:"bulk,omitempty"`
	// Stages is where the broker's time went, from its metrics
	// (Target.Metrics).
	Stages *BrokerStages `json:"broker_stages,omitempty"`
	Error  string        `json:"error,omitempty"` // the first record error, or why the run failed
}

// moved is the payload bytes the workload moved through the broker: bytes
// in plus bytes out.
func (r *Result) moved() int64 {
	var n int64
	if r.Bulk != nil {
		n += r.Bulk.Bytes
	}
	if r.Produce != nil {
		n += r.Produce.Bytes
	}
	if r.Consume != nil {
		n += r.Consume.Bytes
	}
	return n
}

// topicSeq keeps topic names unique within a process; the time keeps them
// unique across runs against the same broker.
var topicSeq atomic.Int64

func freshTopic(kind string) string {
	return fmt.Sprintf("bench-%s-%d-%d", kind, time.Now().UnixNano(), topicSeq.Add(1))
}

// Run runs one workload against t on a fresh topic, which it creates before
// and deletes after. Progress, when not nil, receives a line at most once a
// second. The workload stops by itself after spec.Timeout; a run stopped by
// the time limit or by record errors still returns what it measured, with
// TimedOut, Failed and Error set. An error means nothing was measured.
func Run(ctx context.Context, t Target, spec Spec, progressTo io.Writer) (*Result, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.Addr), kgo.RequestRetries(3)}, spec.Conn...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	topic := freshTopic(spec.Kind)
	if err := createTopic(ctx, adm, topic, spec.Partitions); err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
		defer cancel()
		resp, err := adm.DeleteTopic(dctx, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			slog.Warn("cannot delete benchmark topic", "subsystem", "bench", "topic", topic, "err", err)
		}
	}()

	e := &env{
		addr:  t.Addr,
		topic: topic,
		spec:  spec,
		adm:   adm,
		meter: &meter{pid: t.PID, resetPeak: t.ResetPeak},
		res:   &Result{Spec: spec, Name: spec.Name(), Broker: t.Name, Topic: topic},
		label: t.Name + " " + spec.Name(),
		out:   progressTo,
	}
	var before, standbyBefore metricsSnapshot
	if t.Metrics != "" {
		if before, err = scrapeMetrics(ctx, t.Metrics); err != nil {
			return nil, err
		}
	}
	if t.StandbyMetrics != "" {
		if standbyBefore, err = scrapeMetrics(ctx, t.StandbyMetrics); err != nil {
			return nil, fmt.Errorf("the standby: %w", err)
		}
	}
	switch spec.Kind {
	case KindProduce:
		err = runProduce(ctx, e)
	case KindConsume:
		err = runConsume(ctx, e)
	case KindE2E:
		err = runE2E(ctx, e)
	case KindMixed:
		err = runMixed(ctx, e)
	}
	if err != nil {
		return nil, err
	}
	if e.res.Usage, err = e.meter.stop(e.res.moved()); err != nil {
		return nil, err
	}
	if before != nil {
		after, err := scrapeMetrics(ctx, t.Metrics)
		if err != nil {
			return nil, err
		}
		e.res.Stages = stagesBetween(before, after)
	}
	if standbyBefore != nil {
		after, err := scrapeMetrics(ctx, t.StandbyMetrics)
		if err != nil {
			return nil, fmt.Errorf("the standby: %w", err)
		}
		e.res.Stages = e.res.Stages.withStandby(stagesOf(standbyStageSeries, standbyBefore, after))
	}
	return e.res, nil
}

// env is what a workload runs with. The workload calls meter.start right
// before its timed part; Run stops the meter once it returns.
type env struct {
	addr  string
	topic string
	spec  Spec
	adm   *kadm.Client
	meter *meter
	res   *Result
	label string
	out   io.Writer
}

func (e *env) progress(total int64) *progress { return startProgress(e.out, e.label, total) }

// fail records a run's first error.
func (e *env) fail(err error) {
	if err != nil && e.res.Error == "" {
		e.res.Error = err.Error()
	}
}

func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(cctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("cannot create topic %s: %w", topic, err)
	}
	// Wait until metadata shows every partition with a leader, so the
	// workload's clients do not start on a topic still being created.
	for i := 0; i < 100; i++ {
		md, err := adm.Metadata(cctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			if ok && td.Err == nil && int32(len(td.Partitions)) == partitions && leadersKnown(td) {
				return nil
			}
		}
		select {
		case <-cctx.Done():
			return fmt.Errorf("cannot create topic %s: partitions not ready: %w", topic, cctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("cannot create topic %s: partitions not ready after 100 metadata requests", topic)
}

func leadersKnown(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// isStop reports whether err only says the workload was stopped.
func isStop(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)
}
