package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The txn workload: what transactions cost. Each round, on fresh topics
// of one broker:
//
//  1. idempotent: an acks=all idempotent producer at full speed (the
//     baseline);
//  2. transactional: the same producer and records with a transactional
//     id, a transaction committed every CommitInterval (Flush, then
//     EndTransaction): committed records/s and the commit latency.
//     1 and 2 take turns of txnSlice (ABBA, the transactional producer
//     first in even rounds) until each has run for Duration;
//  3. read_uncommitted and read_committed: one consumer each reading the
//     transactional topic from offset 0 (alternating which goes first);
//  4. consume-transform-produce: a GroupTransactSession reads the
//     idempotent topic (read_committed) and writes each record to a fresh
//     topic, committing output and input offsets every CommitInterval;
//  5. e2e read_committed: a transactional producer at Rate records/s
//     committing every CommitInterval, a read_committed consumer from the
//     start: receipt minus the produce call, which includes the wait for
//     the commit.

// TxnSpec is the txn workload's parameters.
type TxnSpec struct {
	Duration       time.Duration `json:"duration_ns"`        // each producer, in turns of txnSlice
	Size           int           `json:"size"`               // value bytes
	Partitions     int32         `json:"partitions"`         // of each fresh topic
	CommitInterval time.Duration `json:"commit_interval_ns"` // a transaction is committed this often
	Rate           int           `json:"rate"`               // e2e phase: records/s
	// Timeout bounds each reading phase (the consumers, the end of the
	// e2e phase); producing phases end after Duration plus flushGrace.
	Timeout time.Duration `json:"timeout_ns"`
}

// DefaultTxnSpec is 5 s per producer of 1 KiB records to 8 partitions, a
// commit every 100 ms, 1,000 records/s in the e2e phase: about 40 s a
// round on a 2-core machine.
func DefaultTxnSpec() TxnSpec {
	return TxnSpec{
		Duration:       5 * time.Second,
		Size:           1024,
		Partitions:     8,
		CommitInterval: 100 * time.Millisecond,
		Rate:           1000,
		Timeout:        60 * time.Second,
	}
}

// Validate reports the first thing wrong with s.
func (s TxnSpec) Validate() error {
	switch {
	case s.Duration <= 0:
		return fmt.Errorf("cannot run txn: duration must be positive, not %v", s.Duration)
	case s.Size < e2eHeader:
		return fmt.Errorf("cannot run txn: size must be at least %d bytes (the e2e send time), not %d", e2eHeader, s.Size)
	case s.Partitions <= 0:
		return fmt.Errorf("cannot run txn: partitions must be positive, not %d", s.Partitions)
	case s.CommitInterval <= 0 || s.CommitInterval > s.Duration:
		return fmt.Errorf("cannot run txn: commit interval must be positive and at most the duration %v, not %v", s.Duration, s.CommitInterval)
	case s.Rate <= 0 || s.Rate > 1_000_000:
		return fmt.Errorf("cannot run txn: rate must be between 1 and 1,000,000 records/s, not %d", s.Rate)
	case s.Timeout <= 0:
		return fmt.Errorf("cannot run txn: timeout must be positive, not %v", s.Timeout)
	}
	return nil
}

// TxnResult is one round of the txn workload.
type TxnResult struct {
	Broker string `json:"broker"`

	Idempotent *Throughput `json:"idempotent"`
	// Transactional counts the records of committed transactions, from
	// the first produce call to the end of the last commit.
	Transactional *Throughput `json:"transactional"`
	TxnRatio      float64     `json:"txn_ratio"` // Transactional over Idempotent records/s
	// TxnFirst: the transactional producer took the first turn this
	// round (even rounds).
	TxnFirst bool `json:"txn_first"`
	Commits  int  `json:"commits"`
	Aborts   int  `json:"aborts"`
	// Flush is each Flush before EndTransaction (the records of the
	// transaction still in flight); Commit is EndTransaction alone (the
	// EndTxn round trip).
	Flush  *Latency `json:"flush"`
	Commit *Latency `json:"commit"`
	// TxnAcked is every record of the transactional phase the broker
	// acknowledged, committed or not: what read_uncommitted must read.
	TxnAcked int64 `json:"txn_acked"`

	ReadUncommitted *Throughput `json:"read_uncommitted"`
	ReadCommitted   *Throughput `json:"read_committed"`
	ReadRatio       float64     `json:"read_ratio"` // read_committed over read_uncommitted MiB/s
	// CommittedFirst: read_committed ran before read_uncommitted this round.
	CommittedFirst bool `json:"read_committed_first"`

	// CTP counts the output records of committed transactions, from the
	// first input record polled to the end of the last commit; CTPCommit is
	// each GroupTransactSession.End (flush, offsets, EndTxn).
	CTP        *Throughput `json:"ctp"`
	CTPCommits int         `json:"ctp_commits"`
	CTPAborts  int         `json:"ctp_aborts"`
	CTPCommit  *Latency    `json:"ctp_commit"`

	// E2E is receipt by the read_committed consumer minus the produce
	// call, past the first half second.
	E2E        *Latency `json:"e2e"`
	E2ESent    int64    `json:"e2e_sent"`
	E2ECommits int      `json:"e2e_commits"`
	// E2ECommit is the e2e producer's EndTransaction: a slow one shows
	// in the e2e tail.
	E2ECommit   *Latency `json:"e2e_commit"`
	E2EFlush    *Latency `json:"e2e_flush"` // the Flush before each of them
	E2EReceived int64    `json:"e2e_received"`

	// Usage is the broker's CPU and memory in each phase, by name.
	Usage map[string]*BrokerUsage `json:"broker_usage,omitempty"`

	Failed int64  `json:"failed_records,omitempty"`
	Error  string `json:"error,omitempty"` // the first thing that went wrong
}

// fail records a round's first error.
func (r *TxnResult) fail(err error) {
	if err != nil && r.Error == "" {
		r.Error = err.Error()
	}
}

// Phase names, for Usage and progress.
const (
	txnPhaseIdempotent = "idempotent"
	txnPhaseTxn        = "transactional"
	txnPhaseUncommit   = "read_uncommitted"
	txnPhaseCommitted  = "read_committed"
	txnPhaseCTP        = "ctp"
	txnPhaseE2E        = "e2e"
)

// TxnConfig is what TxnSuite runs.
type TxnConfig struct {
	// SamsaBin and Config start a fresh samsa for each round; when Target
	// has an address, the rounds run against it instead.
	SamsaBin string
	Config   string
	Target   Target
	Spec     TxnSpec
	Rounds   int
	Progress io.Writer // nil for none
}

// txnRun is one round's state. One goroutine drives it; the phases own
// the goroutines they start.
type txnRun struct {
	t     Target
	s     TxnSpec
	adm   *kadm.Client
	res   *TxnResult
	round int
	out   io.Writer
	outMu sync.Mutex
}

func (r *txnRun) logf(format string, args ...any) {
	if r.out == nil {
		return
	}
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.out, "  txn round %d: "+format+"\n", append([]any{r.round}, args...)...)
}

// meter returns a meter of the broker for one phase.
func (r *txnRun) meter() *meter { return &meter{pid: r.t.PID, resetPeak: r.t.ResetPeak} }

// usage stops m and keeps the phase's usage.
func (r *txnRun) usage(phase string, m *meter, moved int64) {
	u, err := m.stop(moved)
	if err != nil {
		r.res.fail(err)
		return
	}
	if u != nil {
		if r.res.Usage == nil {
			r.res.Usage = map[string]*BrokerUsage{}
		}
		r.res.Usage[phase] = u
	}
}

// RunTxn runs one round of the txn workload against t, on topics it
// creates and deletes. A round that got as far as producing returns its
// result, with Error set if a phase failed; an error means nothing was
// measured.
func RunTxn(ctx context.Context, t Target, s TxnSpec, round int, progress io.Writer) (*TxnResult, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.Addr), kgo.RequestRetries(3))
	if err != nil {
		return nil, fmt.Errorf("cannot create admin client: %w", err)
	}
	defer cl.Close()
	r := &txnRun{t: t, s: s, adm: kadm.NewClient(cl), res: &TxnResult{Broker: t.Name}, round: round, out: progress}

	var topics []string
	topic := func(kind string) (string, error) {
		name := freshTopic(kind)
		if err := createTopic(ctx, r.adm, name, s.Partitions); err != nil {
			return "", err
		}
		topics = append(topics, name)
		return name, nil
	}
	defer func() {
		if len(topics) == 0 {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
		defer cancel()
		if _, err := r.adm.DeleteTopics(dctx, topics...); err != nil {
			r.logf("cannot delete topics %v: %v", topics, err)
		}
	}()
	idemTopic, err := topic("txn-idem")
	if err != nil {
		return nil, err
	}
	txnTopic, err := topic("txn-txn")
	if err != nil {
		return nil, err
	}
	ctpTopic, err := topic("txn-ctp")
	if err != nil {
		return nil, err
	}
	e2eTopic, err := topic("txn-e2e")
	if err != nil {
		return nil, err
	}
	warmTopic, err := topic("txn-warm")
	if err != nil {
		return nil, err
	}

	// The producing phase starts with the disk's writeback done
	// (settleDisk), and so does the reading one.
	settleDisk()
	idemAcked := r.produceBoth(ctx, idemTopic, txnTopic, warmTopic)
	settleDisk()
	if ctx.Err() == nil {
		r.readBoth(ctx, txnTopic)
	}
	if ctx.Err() == nil && idemAcked > 0 {
		r.consumeTransformProduce(ctx, idemTopic, ctpTopic, idemAcked)
	}
	if ctx.Err() == nil {
		r.endToEnd(ctx, e2eTopic)
	}
	if ctx.Err() != nil {
		r.res.fail(fmt.Errorf("stopped: %w", ctx.Err()))
	}
	res := r.res
	if res.Idempotent != nil && res.Transactional != nil && res.Idempotent.RecordsPerSec > 0 {
		res.TxnRatio = res.Transactional.RecordsPerSec / res.Idempotent.RecordsPerSec
	}
	if res.ReadUncommitted != nil && res.ReadCommitted != nil && res.ReadUncommitted.MiBPerSec > 0 {
		res.ReadRatio = res.ReadCommitted.MiBPerSec / res.ReadUncommitted.MiBPerSec
	}
	return res, nil
}

// TxnSuite runs cfg.Rounds rounds, each against a samsa started for it
// (stopped after it, also on errors and when ctx ends) or against
// cfg.Target. A failed round is recorded and the suite goes on; it stops
// early only when ctx ends.
func TxnSuite(ctx context.Context, cfg TxnConfig) *TxnReport {
	rep := &TxnReport{Machine: ThisMachine(), Spec: cfg.Spec, Rounds: cfg.Rounds, Config: cfg.Config}
	rep.Broker = cfg.Target.Addr
	if cfg.Target.Addr == "" {
		rep.Broker, rep.Started = "samsa", true
	}
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "txn, round %d/%d\n", round, cfg.Rounds)
		}
		res, err := txnRound(ctx, cfg, round)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("round %d: %v", round, err))
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "  txn round %d failed: %v\n", round, err)
			}
		} else {
			rep.Runs = append(rep.Runs, res)
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "  %s\n", res.oneLine())
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(settle):
		}
	}
	rep.Medians = txnMedians(rep.Runs)
	rep.Machine.LoadEnd = loadAvg()
	return rep
}

// txnRound runs one round, against a broker started for it unless
// cfg.Target is set.
func txnRound(ctx context.Context, cfg TxnConfig, round int) (res *TxnResult, err error) {
	t := cfg.Target
	if t.Addr == "" {
		p, err := StartSamsa(ctx, cfg.SamsaBin, cfg.Config)
		if err != nil {
			return nil, err
		}
		defer func() {
			aerr := p.Alive()
			serr := p.Stop()
			if aerr == nil {
				aerr = serr
			}
			if aerr != nil {
				if res != nil {
					res.fail(aerr)
				} else if err == nil {
					err = aerr
				}
			}
		}()
		t = p.Target()
	}
	return RunTxn(ctx, t, cfg.Spec, round, cfg.Progress)
}
