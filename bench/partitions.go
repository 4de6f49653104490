package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The partitions workload: what many partitions cost a broker. For each
// partition count N, on a fresh samsa of its own:
//
//  1. N partitions as topics of partitionsPerTopic, created
//     topicsPerCreate topics to a CreateTopics request;
//  2. one small record written to every partition;
//  3. the broker's RSS and open fds, and a Metadata request for all
//     topics (the median of metadataRuns);
//  4. Records records round robin over every partition (acks=all), then
//     one consumer reading every partition from offset 0;
//  5. a clean stop (SIGTERM until the process is reaped), a start on the
//     same data: exec until it accepts a TCP connection and until it
//     answers ApiVersions; its RSS and fds idle after idleWait;
//  6. SIGKILL and a start again, timed the same way; every record still
//     there (the end offsets add up); a clean stop after that start.

const (
	partitionsPerTopic = 100
	topicsPerCreate    = 10
	metadataRuns       = 5
	smallRecord        = 100 // bytes of the record written to every partition
	idleWait           = 2 * time.Second
	startPoll          = 5 * time.Millisecond // between connection attempts to a starting broker
)

// PartitionsSpec is the partitions workload's parameters.
type PartitionsSpec struct {
	Counts  []int `json:"counts"`  // partition counts, a fresh broker each
	Records int64 `json:"records"` // produced round robin over every partition
	Size    int   `json:"size"`    // their value bytes
	Rounds  int   `json:"rounds"`
	// Timeout bounds each step: creating the topics, each produce and the
	// consume, each start.
	Timeout time.Duration `json:"timeout_ns"`
}

// DefaultPartitionsSpec is 1,000 and 10,000 partitions, 200,000 records
// of 1 KiB: about a minute on a 2-core machine.
func DefaultPartitionsSpec() PartitionsSpec {
	return PartitionsSpec{Counts: []int{1000, 10000}, Records: 200_000, Size: 1024, Rounds: 1, Timeout: 2 * time.Minute}
}

// Validate reports the first thing wrong with s.
func (s PartitionsSpec) Validate() error {
	switch {
	case len(s.Counts) == 0:
		return fmt.Errorf("cannot run partitions: no partition count")
	case s.Records <= 0 || s.Size <= 0 || s.Rounds <= 0 || s.Timeout <= 0:
		return fmt.Errorf("cannot run partitions: records, size, rounds and timeout must be positive")
	}
	for i, n := range s.Counts {
		if n <= 0 || n > 1_000_000 {
			return fmt.Errorf("cannot run partitions: partition count %d is not between 1 and 1,000,000", n)
		}
		if slices.Contains(s.Counts[:i], n) {
			return fmt.Errorf("cannot run partitions: partition count %d given twice", n)
		}
	}
	return nil
}

// ParseCounts parses a comma-separated list of partition counts.
func ParseCounts(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cannot parse partition count %q: %w", f, err)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// PartitionsConfig is what PartitionsSuite runs.
type PartitionsConfig struct {
	SamsaBin string
	Config   string
	Spec     PartitionsSpec
	Progress io.Writer // nil for none
}

// PartitionsResult is one partition count in one round. Figures of steps
// the run did not reach are zero (Checked false for Lost).
type PartitionsResult struct {
	Partitions int `json:"partitions"`
	Topics     int `json:"topics"`
	Round      int `json:"round"`

	CreateSec  float64     `json:"create_sec"` // CreateTopics until Metadata shows every partition led
	RSS        int64       `json:"rss_bytes"`  // after a record to every partition
	FDs        int         `json:"fds"`
	MetadataMs float64     `json:"metadata_all_topics_ms"`
	Produce    *Throughput `json:"produce,omitempty"`
	Consume    *Throughput `json:"consume,omitempty"` // every record, the small ones included

	CleanStopSec   float64 `json:"clean_stop_sec"` // SIGTERM until reaped
	StartAcceptSec float64 `json:"start_accept_sec"`
	StartAnswerSec float64 `json:"start_answer_sec"`
	IdleRSS        int64   `json:"idle_rss_bytes"`
	IdleFDs        int     `json:"idle_fds"`
	CrashAcceptSec float64 `json:"crash_start_accept_sec"` // the start after SIGKILL
	CrashAnswerSec float64 `json:"crash_start_answer_sec"`
	CrashStopSec   float64 `json:"crash_start_clean_stop_sec"`

	// Expected is the records acknowledged; Found what the end offsets
	// add up to after the start that followed SIGKILL.
	Checked  bool   `json:"checked"`
	Expected int64  `json:"expected_records"`
	Found    int64  `json:"found_records"`
	Lost     int64  `json:"lost_records"` // Expected - Found: must be 0
	Error    string `json:"error,omitempty"`
}

func (r *PartitionsResult) fail(err error) {
	if err != nil && r.Error == "" {
		r.Error = err.Error()
	}
}

// PartitionsSuite runs every count of cfg.Spec in each round, each on a
// fresh samsa. A failed run is recorded and the suite goes on; it stops
// early only when ctx ends.
func PartitionsSuite(ctx context.Context, cfg PartitionsConfig) *PartitionsReport {
	s := cfg.Spec
	rep := &PartitionsReport{Machine: ThisMachine(), Spec: s, Config: cfg.Config}
	for round := 1; round <= s.Rounds; round++ {
		for _, n := range s.Counts {
			if ctx.Err() != nil {
				break
			}
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "partitions %d, round %d/%d\n", n, round, s.Rounds)
			}
			res, err := runPartitions(ctx, cfg, n, round)
			if err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("%d partitions, round %d: %v", n, round, err))
				continue
			}
			rep.Runs = append(rep.Runs, res)
		}
	}
	rep.Medians = partitionsMedians(rep.Runs)
	rep.Machine.LoadEnd = loadAvg()
	return rep
}

// partsRun is one run's state; one goroutine drives it.
type partsRun struct {
	s      PartitionsSpec
	p      *Process
	topics []string
	sizes  []int32
	res    *PartitionsResult
	out    io.Writer
}

func (r *partsRun) logf(format string, args ...any) {
	if r.out != nil {
		fmt.Fprintf(r.out, "  partitions %d round %d: "+format+"\n", append([]any{r.res.Partitions, r.res.Round}, args...)...)
	}
}

// runPartitions runs one count on a samsa it starts and stops. An error
// means the broker did not start; a run that stopped part way returns
// what it measured with Error set.
func runPartitions(ctx context.Context, cfg PartitionsConfig, n, round int) (*PartitionsResult, error) {
	p, err := StartSamsa(ctx, cfg.SamsaBin, cfg.Config)
	if err != nil {
		return nil, err
	}
	r := &partsRun{s: cfg.Spec, p: p, sizes: topicSizes(n), out: cfg.Progress}
	r.res = &PartitionsResult{Partitions: n, Topics: len(r.sizes), Round: round}
	for range r.sizes {
		r.topics = append(r.topics, freshTopic("parts"))
	}
	r.res.fail(r.run(ctx))
	r.res.fail(p.Stop())
	if ctx.Err() != nil {
		r.res.fail(fmt.Errorf("stopped: %w", ctx.Err()))
	}
	return r.res, nil
}

func (r *partsRun) run(ctx context.Context) error {
	res := r.res
	if err := r.create(ctx); err != nil {
		return err
	}
	small, err := r.produce(ctx, int64(res.Partitions), smallRecord, "a record to each partition")
	if err != nil {
		return err
	}
	res.RSS, res.FDs = procFigures(r.p.PID())
	if res.MetadataMs, err = r.metadataAll(ctx); err != nil {
		return err
	}
	r.logf("created in %.2f s; RSS %s MiB, %d fds; Metadata of all topics %s ms", res.CreateSec, fmtMiB(float64(res.RSS)/(1<<20)), res.FDs, fmtMs(res.MetadataMs))
	if res.Produce, err = r.produce(ctx, r.s.Records, r.s.Size, "produce"); err != nil {
		return err
	}
	res.Expected = small.Records + res.Produce.Records
	if err := r.consume(ctx, res.Expected); err != nil {
		return err
	}

	t0 := time.Now()
	err = r.p.Terminate()
	res.CleanStopSec = time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	accept, answer, err := r.timedStart(ctx)
	if err != nil {
		return fmt.Errorf("start after a clean stop: %w", err)
	}
	res.StartAcceptSec, res.StartAnswerSec = accept.Seconds(), answer.Seconds()
	wait(ctx, idleWait)
	res.IdleRSS, res.IdleFDs = procFigures(r.p.PID())
	r.logf("clean stop %.3f s; start: accepts after %.3f s, answers after %.3f s; idle RSS %s MiB, %d fds",
		res.CleanStopSec, res.StartAcceptSec, res.StartAnswerSec, fmtMiB(float64(res.IdleRSS)/(1<<20)), res.IdleFDs)

	r.p.Kill()
	accept, answer, err = r.timedStart(ctx)
	if err != nil {
		return fmt.Errorf("start after SIGKILL: %w", err)
	}
	res.CrashAcceptSec, res.CrashAnswerSec = accept.Seconds(), answer.Seconds()
	if res.Found, err = r.endOffsets(ctx); err != nil {
		return err
	}
	res.Checked, res.Lost = true, res.Expected-res.Found
	t0 = time.Now()
	err = r.p.Terminate()
	res.CrashStopSec = time.Since(t0).Seconds()
	r.logf("after SIGKILL: accepts after %.3f s, answers after %.3f s; %d of %d records found; clean stop %.3f s",
		res.CrashAcceptSec, res.CrashAnswerSec, res.Found, res.Expected, res.CrashStopSec)
	return err
}

// topicSizes returns the partitions of each topic holding n partitions:
// topics of partitionsPerTopic, the last one holding the rest.
func topicSizes(n int) []int32 {
	var sizes []int32
	for ; n > 0; n -= partitionsPerTopic {
		sizes = append(sizes, int32(min(n, partitionsPerTopic)))
	}
	return sizes
}

// partitionOf returns the topic (its index) and partition of the i-th
// partition of the run, counting topic by topic.
func partitionOf(i int) (topic int, partition int32) {
	return i / partitionsPerTopic, int32(i % partitionsPerTopic)
}

func newAdmin(addr string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(3))
	if err != nil {
		return nil, fmt.Errorf("cannot create admin client: %w", err)
	}
	return kadm.NewClient(cl), nil
}

// admin returns an admin client of the run's broker and ctx bounded by
// the run's timeout; done releases both.
func (r *partsRun) admin(ctx context.Context) (adm *kadm.Client, tctx context.Context, done func(), err error) {
	if adm, err = newAdmin(r.p.Addr); err != nil {
		return nil, nil, nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, r.s.Timeout)
	return adm, tctx, func() { cancel(); adm.Close() }, nil
}

// create creates the run's topics, topicsPerCreate to a request, and
// waits until Metadata shows every partition with a leader.
func (r *partsRun) create(ctx context.Context) error {
	adm, ctx, done, err := r.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	t0 := time.Now()
	for i := 0; i < len(r.topics); i += topicsPerCreate {
		names, sizes := r.topics[i:min(i+topicsPerCreate, len(r.topics))], r.sizes[i:min(i+topicsPerCreate, len(r.sizes))]
		// One request per partition count: only the last topic's differs.
		for len(names) > 0 {
			k := 1
			for k < len(names) && sizes[k] == sizes[0] {
				k++
			}
			resp, err := adm.CreateTopics(ctx, sizes[0], 1, nil, names[:k]...)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				return fmt.Errorf("cannot create topics: %w", err)
			}
			names, sizes = names[k:], sizes[k:]
		}
	}
	err = poll(ctx, r.s.Timeout, 50*time.Millisecond, func() (bool, error) {
		md, err := adm.Metadata(ctx, r.topics...)
		if err != nil {
			return false, nil
		}
		for i, t := range r.topics {
			td, ok := md.Topics[t]
			if !ok || td.Err != nil || len(td.Partitions) != int(r.sizes[i]) || !leadersKnown(td) {
				return false, nil
			}
		}
		return true, nil
	}, func() error { return fmt.Errorf("cannot create topics: partitions not led after %v", r.s.Timeout) })
	r.res.CreateSec = time.Since(t0).Seconds()
	return err
}

// produce writes count records of size bytes (acks=all), the i-th to the
// run's partition i mod N, and returns what was acknowledged; an error
// when a record failed.
func (r *partsRun) produce(ctx context.Context, count int64, size int, label string) (*Throughput, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.p.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(r.s.Timeout))
	if err != nil {
		return nil, fmt.Errorf("cannot create producer: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, r.s.Timeout)
	defer cancel()
	prog := startProgress(r.out, fmt.Sprintf("partitions %d round %d: %s", r.res.Partitions, r.res.Round, label), count)
	defer prog.stop()
	var (
		mu       sync.Mutex
		failed   int64
		firstErr error
	)
	value := payload(size)
	t0 := time.Now()
	for i := int64(0); i < count && ctx.Err() == nil; i++ {
		t, p := partitionOf(int(i % int64(r.res.Partitions)))
		cl.Produce(ctx, &kgo.Record{Topic: r.topics[t], Partition: p, Value: value}, func(_ *kgo.Record, err error) {
			if err == nil {
				prog.done.Add(1)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if failed++; firstErr == nil {
				firstErr = err
			}
		})
	}
	ferr := cl.Flush(ctx)
	acked := prog.done.Load()
	tp := newThroughput(acked, acked*int64(size), time.Since(t0))
	mu.Lock()
	defer mu.Unlock()
	if acked != count {
		return tp, fmt.Errorf("cannot %s: %d of %d records acknowledged, %d failed (first error: %v, flush: %v)", label, acked, count, failed, firstErr, ferr)
	}
	return tp, nil
}

// metadataAll returns the median of metadataRuns Metadata requests for
// all topics, in ms.
func (r *partsRun) metadataAll(ctx context.Context) (float64, error) {
	adm, ctx, done, err := r.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	if _, err := adm.BrokerMetadata(ctx); err != nil { // the connection, outside the timing
		return 0, fmt.Errorf("cannot request metadata: %w", err)
	}
	var took []float64
	for range metadataRuns {
		t0 := time.Now()
		md, err := adm.Metadata(ctx)
		if err != nil {
			return 0, fmt.Errorf("cannot request metadata of all topics: %w", err)
		}
		took = append(took, ms(time.Since(t0)))
		if len(md.Topics) < len(r.topics) {
			return 0, fmt.Errorf("metadata of all topics lists %d topics, want at least %d", len(md.Topics), len(r.topics))
		}
	}
	return median(took), nil
}

// consume reads want records from offset 0 of every partition with one
// consumer.
func (r *partsRun) consume(ctx context.Context, want int64) error {
	offsets := make(map[string]map[int32]kgo.Offset, len(r.topics))
	for i, t := range r.topics {
		offsets[t] = fromStart(r.sizes[i])
	}
	ctx, cancel := context.WithTimeout(ctx, r.s.Timeout)
	defer cancel()
	prog := startProgress(r.out, fmt.Sprintf("partitions %d round %d: consume", r.res.Partitions, r.res.Round), want)
	defer prog.stop()
	t0 := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.p.Addr), kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return fmt.Errorf("cannot create consumer: %w", err)
	}
	defer cl.Close()
	c := consumeN(ctx, cl, want, nil, prog)
	r.res.Consume = newThroughput(c.records, c.bytes, c.last.Sub(t0))
	if c.records != want {
		return fmt.Errorf("cannot consume: read %d of %d records within %v (first error: %v)", c.records, want, r.s.Timeout, c.firstErr)
	}
	return nil
}

// timedStart starts the stopped broker again on its data and returns the
// time from exec until it accepts a TCP connection and until it answers
// ApiVersions, each polled every startPoll.
func (r *partsRun) timedStart(ctx context.Context) (accept, answer time.Duration, err error) {
	t0 := time.Now()
	if err := r.p.Relaunch(); err != nil {
		return 0, 0, err
	}
	until := func(what string, ok func() bool) (time.Duration, error) {
		err := poll(ctx, r.s.Timeout, startPoll, func() (bool, error) {
			if err := r.p.Alive(); err != nil {
				return false, err
			}
			return ok(), nil
		}, func() error { return fmt.Errorf("cannot start: no %s after %v", what, r.s.Timeout) })
		return time.Since(t0), err
	}
	accept, err = until("connection accepted", func() bool {
		c, err := net.DialTimeout("tcp", r.p.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if err != nil {
		return 0, 0, err
	}
	answer, err = until("ApiVersions answered", func() bool { return apiVersions(ctx, r.p.Addr, time.Second) == nil })
	return accept, answer, err
}

// endOffsets returns the end offsets of every partition of the run added
// up; an error when a partition is missing or has an error.
func (r *partsRun) endOffsets(ctx context.Context) (int64, error) {
	adm, ctx, done, err := r.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	offs, err := adm.ListEndOffsets(ctx, r.topics...)
	if err != nil {
		return 0, fmt.Errorf("cannot list end offsets: %w", err)
	}
	var sum int64
	for i, t := range r.topics {
		for p := range r.sizes[i] {
			o, ok := offs.Lookup(t, p)
			if !ok || o.Err != nil {
				return 0, fmt.Errorf("cannot list the end offset of %s/%d: listed %v (%v)", t, p, ok, o.Err)
			}
			sum += o.Offset
		}
	}
	return sum, nil
}

// procFigures returns the RSS and open fds of pid, zero for those it
// cannot read.
func procFigures(pid int) (rss int64, fds int) {
	if m, err := readMem(pid); err == nil {
		rss = m.RSS
	}
	if n, err := openFDs(pid); err == nil {
		fds = n
	}
	return rss, fds
}
