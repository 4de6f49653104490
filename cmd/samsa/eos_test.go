package main

// Exactly-once consume-transform-produce with franz-go's
// GroupTransactSession: processors (this test binary run as a child, see
// eosProcessorMain) read eos-in in a group, write each record to eos-out
// and commit their input offsets in the same transaction. The broker is
// SIGKILLed mid-stream and a processor too; a read_committed reader of
// eos-out must find every input record exactly once.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/tools/ctl"
)

const eosProcessorEnv = "SAMSA_TEST_EOS_PROCESSOR"

// eosProcessorMain runs one processor until SIGTERM (or 3 minutes): its
// broker address and transactional id come from the environment.
func eosProcessorMain() int {
	addrs, id := strings.Split(os.Getenv("SAMSA_TEST_BROKER"), ","), os.Getenv(eosProcessorEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		cancel()
	}()
	for ctx.Err() == nil {
		if err := eosProcess(ctx, addrs, id); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "processor %s: %v; starting a new session\n", id, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	return 0
}

func eosProcess(ctx context.Context, addrs []string, id string) error {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addrs...),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(10*time.Second),
		kgo.DefaultProduceTopic("eos-out"),
		kgo.ConsumerGroup("eos-g"),
		kgo.ConsumeTopics("eos-in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(6*time.Second),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.RetryTimeout(20*time.Second),
	)
	if err != nil {
		return err
	}
	defer sess.Close()
	for ctx.Err() == nil {
		fs := sess.PollFetches(ctx)
		if fs.IsClientClosed() {
			return fmt.Errorf("client closed")
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		e := kgo.AbortingFirstErrPromise(sess.Client())
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Key: r.Value, Value: r.Value}, e.Promise())
		})
		if _, err := sess.End(ctx, kgo.TransactionEndTry(e.Err() == nil)); err != nil {
			return fmt.Errorf("end: %w", err)
		}
	}
	return nil
}

// eosProcessor is one processor process.
type eosProcessor struct {
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
}

func startEOSProcessor(t *testing.T, addr, id string) *eosProcessor {
	t.Helper()
	p := &eosProcessor{out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), eosProcessorEnv+"="+id, "SAMSA_TEST_BROKER="+addr)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

func (p *eosProcessor) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// eosRun is one exactly-once scenario: input records 0..n-1 in eos-in,
// processors writing eos-out, and a read_committed reader of eos-out
// counting what it sees.
type eosRun struct {
	t      *testing.T
	addrs  string // comma-separated seed brokers for the processors
	n      int
	prod   *kgo.Client
	reader *kgo.Client
	procs  map[string]*eosProcessor
	mu     sync.Mutex
	seen   map[string]int
	where  map[string][]string
}

// newEOSRun creates the topics (through b) and clients; seeds are every
// broker address the clients may use.
func newEOSRun(t *testing.T, b *broker, n int, replicas int16, seeds ...string) *eosRun {
	t.Helper()
	for _, topic := range []string{"eos-in", "eos-out"} {
		r, err := b.admin().CreateTopic(timeout(t, 10*time.Second), 4, replicas, nil, topic)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	e := &eosRun{t: t, addrs: strings.Join(seeds, ","), n: n, procs: map[string]*eosProcessor{},
		seen: map[string]int{}, where: map[string][]string{}}
	e.prod = b.client(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("eos-in"), kgo.RetryTimeout(60*time.Second))
	e.reader = b.client(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("eos-out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	return e
}

func (e *eosRun) produceRange(from, to int) {
	e.t.Helper()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		v := []byte(strconv.Itoa(i))
		rs = append(rs, &kgo.Record{Key: v, Value: v})
	}
	if err := e.prod.ProduceSync(timeout(e.t, 90*time.Second), rs...).FirstErr(); err != nil {
		e.t.Fatalf("producing input: %v", err)
	}
}

func (e *eosRun) start(id string) { e.procs[id] = startEOSProcessor(e.t, e.addrs, id) }

// read polls the reader once and returns how many distinct outputs it saw.
func (e *eosRun) read(ctx context.Context) int {
	fs := e.reader.PollFetches(ctx)
	fs.EachRecord(func(r *kgo.Record) {
		e.mu.Lock()
		e.seen[string(r.Value)]++
		e.where[string(r.Value)] = append(e.where[string(r.Value)], fmt.Sprintf("p%d@%d", r.Partition, r.Offset))
		e.mu.Unlock()
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

func (e *eosRun) waitFor(what string, count int, d time.Duration) {
	e.t.Helper()
	ctx := timeout(e.t, d)
	for e.read(ctx) < count {
		if ctx.Err() != nil {
			var logs []string
			for id, p := range e.procs {
				logs = append(logs, id+":\n"+p.out.tail())
			}
			e.t.Fatalf("%s: %d distinct outputs of %d\n%s", what, len(e.seen), count, strings.Join(logs, "\n"))
		}
	}
}

// check stops the processors and requires every input exactly once in
// the read_committed output.
func (e *eosRun) check() {
	e.t.Helper()
	e.read(timeout(e.t, 2*time.Second))
	for _, p := range e.procs {
		p.stop(syscall.SIGTERM)
	}
	e.read(timeout(e.t, 1*time.Second))
	var dups []string
	for v, c := range e.seen {
		if c != 1 {
			dups = append(dups, fmt.Sprintf("%s×%d%v", v, c, e.where[v]))
		}
	}
	if len(dups) > 0 || len(e.seen) != e.n {
		e.t.Fatalf("read_committed output: %d distinct of %d, duplicates %v", len(e.seen), e.n, dups)
	}
	for i := range e.n {
		if e.seen[strconv.Itoa(i)] != 1 {
			e.t.Fatalf("input %d appears %d times in the output", i, e.seen[strconv.Itoa(i)])
		}
	}
}

func TestExactlyOnceGroupTransactSession(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	b := startQuickGroupsBroker(t)
	const n = 4000
	e := newEOSRun(t, b, n, 1, b.addr)
	e.produceRange(0, n/2)
	for i := range 3 {
		e.start(fmt.Sprintf("eos-p%d", i))
	}
	e.waitFor("before any crash", n/8, 60*time.Second)

	// The broker dies mid-stream; the processors ride it out.
	b.kill()
	b.restart()
	e.produceRange(n/2, 3*n/4)
	e.waitFor("after the broker's SIGKILL", n/2, 90*time.Second)

	// A processor dies mid-transaction: its replacement (same
	// transactional id) fences what it left and the group reassigns.
	e.procs["eos-p1"].stop(syscall.SIGKILL)
	e.start("eos-p1")
	e.produceRange(3*n/4, n)
	e.waitFor("after a processor's SIGKILL", n, 120*time.Second)
	e.check()
}

// TestExactlyOnceAcrossFailover: the same processors against a pair
// whose primary is SIGKILLed mid-stream and whose standby is promoted:
// transactions, their group offsets and the output all come through the
// failover, every input exactly once.
func TestExactlyOnceAcrossFailover(t *testing.T) {
	p := startPair(t)
	const n = 3000
	e := newEOSRun(t, p.primary, n, 2, p.primary.addr, p.standby.addr)
	e.produceRange(0, n/2)
	for i := range 2 {
		e.start(fmt.Sprintf("eos-f%d", i))
	}
	e.waitFor("before the failover", n/4, 60*time.Second)
	p.primary.kill()
	if err := ctl.Promote(timeout(t, 30*time.Second), p.standby.addr, io.Discard); err != nil {
		t.Fatalf("promote: %v", err)
	}
	p.primary.restart() // comes back as the standby
	e.produceRange(n/2, n)
	e.waitFor("after the failover", n, 150*time.Second)
	e.check()
}
