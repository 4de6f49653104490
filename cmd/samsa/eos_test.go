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
)

const eosProcessorEnv = "SAMSA_TEST_EOS_PROCESSOR"

// eosProcessorMain runs one processor until SIGTERM (or 3 minutes): its
// broker address and transactional id come from the environment.
func eosProcessorMain() int {
	addr, id := os.Getenv("SAMSA_TEST_BROKER"), os.Getenv(eosProcessorEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		cancel()
	}()
	for ctx.Err() == nil {
		if err := eosProcess(ctx, addr, id); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "processor %s: %v; starting a new session\n", id, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	return 0
}

func eosProcess(ctx context.Context, addr, id string) error {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addr),
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
		kgo.WithLogger(debugLogger()),
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

func TestExactlyOnceGroupTransactSession(t *testing.T) {
	b := startBroker(t)
	b.createTopic("eos-in", 4, nil)
	b.createTopic("eos-out", 4, nil)
	const n = 4000
	prod := b.client(kgo.DefaultProduceTopic("eos-in"))
	produceRange := func(from, to int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < to; i++ {
			v := []byte(strconv.Itoa(i))
			rs = append(rs, &kgo.Record{Key: v, Value: v})
		}
		if err := prod.ProduceSync(timeout(t, 60*time.Second), rs...).FirstErr(); err != nil {
			t.Fatalf("producing input: %v", err)
		}
	}
	produceRange(0, n/2)

	var mu sync.Mutex
	procs := map[string]*eosProcessor{}
	for i := range 3 {
		id := fmt.Sprintf("eos-p%d", i)
		procs[id] = startEOSProcessor(t, b.addr, id)
	}
	// The output as a read_committed reader sees it, live.
	seen := map[string]int{}
	where := map[string][]string{}
	reader := b.client(kgo.ConsumeTopics("eos-out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	read := func(ctx context.Context) int {
		fs := reader.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			mu.Lock()
			seen[string(r.Value)]++
			where[string(r.Value)] = append(where[string(r.Value)], fmt.Sprintf("p%d@%d", r.Partition, r.Offset))
			mu.Unlock()
		})
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	waitFor := func(what string, count int, d time.Duration) {
		t.Helper()
		ctx := timeout(t, d)
		for read(ctx) < count {
			if ctx.Err() != nil {
				var logs []string
				for id, p := range procs {
					logs = append(logs, id+":\n"+p.out.tail())
				}
				t.Fatalf("%s: %d distinct outputs of %d\n%s", what, len(seen), count, strings.Join(logs, "\n"))
			}
		}
	}
	waitFor("before any crash", n/8, 60*time.Second)

	// The broker dies mid-stream; the processors ride it out.
	b.kill()
	b.restart()
	produceRange(n/2, 3*n/4)
	waitFor("after the broker's SIGKILL", n/2, 90*time.Second)

	// A processor dies mid-transaction: its replacement (same
	// transactional id) fences what it left and the group reassigns.
	procs["eos-p1"].stop(syscall.SIGKILL)
	procs["eos-p1"] = startEOSProcessor(t, b.addr, "eos-p1")
	produceRange(3*n/4, n)
	waitFor("after a processor's SIGKILL", n, 120*time.Second)

	// Nothing more comes, and nothing came twice.
	read(timeout(t, 2*time.Second))
	for _, p := range procs {
		p.stop(syscall.SIGTERM)
	}
	read(timeout(t, 1*time.Second))
	var dups []string
	for v, c := range seen {
		if c != 1 {
			dups = append(dups, fmt.Sprintf("%s×%d%v", v, c, where[v]))
		}
	}
	if len(dups) > 0 || len(seen) != n {
		t.Fatalf("read_committed output: %d distinct of %d, duplicates %v", len(seen), n, dups)
	}
	for i := range n {
		if seen[strconv.Itoa(i)] != 1 {
			t.Fatalf("input %d appears %d times in the output", i, seen[strconv.Itoa(i)])
		}
	}
}

func debugLogger() kgo.Logger {
	if os.Getenv("KGO_DEBUG") == "" {
		return nil
	}
	return kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)
}
