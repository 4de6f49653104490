package main

// Transactions with real clients against the binary: franz-go's
// transactional producer (commit, abort, zombie fencing, a timed-out
// transaction), read_committed consumers (franz-go, kcat), and the
// restart of a broker with transactions half-way.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/tools/ctl"
)

// txnProducer is a franz-go transactional producer of b.
func (b *broker) txnProducer(id string, opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	return b.client(append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"),
		kgo.TransactionTimeout(10 * time.Second)}, opts...)...)
}

// fenceTransactionalID asks for a new epoch of transactional id as a
// restarted producer does, retrying while the coordinator aborts the
// transaction the id left open, so that on return that transaction's
// markers are written.
func (b *broker) fenceTransactionalID(id string) {
	b.t.Helper()
	c := b.client()
	defer c.Close()
	ctx := timeout(b.t, 20*time.Second)
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = 10000
		resp, err := req.RequestWith(ctx, c)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
			if err == nil {
				return
			}
		}
		if ctx.Err() != nil || !kerr.IsRetriable(err) && !errors.Is(err, kerr.ConcurrentTransactions) {
			b.t.Fatalf("InitProducerID for %s: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// txnRun produces values in one transaction and commits or aborts it.
func txnRun(t *testing.T, c *kgo.Client, commit bool, values ...string) error {
	t.Helper()
	ctx := timeout(t, 30*time.Second)
	if err := c.BeginTransaction(); err != nil {
		return err
	}
	for _, v := range values {
		if err := c.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			c.EndTransaction(ctx, kgo.TryAbort)
			return err
		}
	}
	return c.EndTransaction(ctx, kgo.TransactionEndTry(commit))
}

// readValues reads topic from the start with a new consumer until it has
// want records (failing after 20 s), then polls once more so that records
// beyond want show up too, and returns the values, sorted.
func (b *broker) readValues(topic string, committed bool, want int) []string {
	b.t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	c := b.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(100*time.Millisecond))
	defer c.Close()
	var out []string
	poll := func(ctx context.Context) {
		fs := c.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				b.t.Fatalf("fetch: %v", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	ctx := timeout(b.t, 20*time.Second)
	for len(out) < want {
		if ctx.Err() != nil {
			b.t.Fatalf("reading %s (read_committed=%v): %d records of %d: %v", topic, committed, len(out), want, out)
		}
		poll(ctx)
	}
	poll(timeout(b.t, 500*time.Millisecond))
	sort.Strings(out)
	return out
}

// readCommittedIncluding reads topic read_committed until every value in
// need has come (or 20 s), then until half a second brings nothing more,
// and returns all read.
// A count is not enough where transactions in flight at a kill may or may
// not have committed: their records would stand in for missing ones.
func (b *broker) readCommittedIncluding(topic string, need map[string]bool) []string {
	b.t.Helper()
	c := b.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	defer c.Close()
	var out []string
	seen := map[string]bool{}
	missing := len(need)
	poll := func(ctx context.Context) int {
		fs := c.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				b.t.Fatalf("fetch: %v", err)
			}
		})
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			v := string(r.Value)
			out = append(out, v)
			if need[v] && !seen[v] {
				seen[v] = true
				missing--
			}
		})
		return n
	}
	ctx := timeout(b.t, 20*time.Second)
	for missing > 0 && ctx.Err() == nil {
		poll(ctx)
	}
	for poll(timeout(b.t, 500*time.Millisecond)) > 0 {
	}
	sort.Strings(out)
	return out
}

func sorted(vs ...string) []string {
	vs = append([]string(nil), vs...)
	sort.Strings(vs)
	return vs
}

func TestTransactionsCommitAbort(t *testing.T) {
	b := startBroker(t)
	b.createTopic("tx", 3, nil)
	p := b.txnProducer("tx-basic")
	if err := txnRun(t, p, true, "c1", "c2", "c3"); err != nil {
		t.Fatalf("committed transaction: %v", err)
	}
	if err := txnRun(t, p, false, "a1", "a2"); err != nil {
		t.Fatalf("aborted transaction: %v", err)
	}
	if err := txnRun(t, p, true, "c4"); err != nil {
		t.Fatalf("second committed transaction: %v", err)
	}
	if got, want := b.readValues("tx", true, 4), sorted("c1", "c2", "c3", "c4"); !reflect.DeepEqual(got, want) {
		t.Fatalf("read_committed: %v, want %v", got, want)
	}
	if got, want := b.readValues("tx", false, 6), sorted("c1", "c2", "c3", "a1", "a2", "c4"); !reflect.DeepEqual(got, want) {
		t.Fatalf("read_uncommitted: %v, want %v", got, want)
	}
	// librdkafka reads committed records only too (kcat's default
	// isolation is read_committed; said explicitly here).
	out := runTool(t, "", "kcat", "-C", "-b", b.addr, "-t", "tx", "-o", "beginning", "-e", "-q", "-X", "isolation.level=read_committed", "-f", "%s\n")
	if got := sorted(strings.Fields(out)...); !reflect.DeepEqual(got, sorted("c1", "c2", "c3", "c4")) {
		t.Fatalf("kcat read_committed: %v", got)
	}
	out = runTool(t, "", "kcat", "-C", "-b", b.addr, "-t", "tx", "-o", "beginning", "-e", "-q", "-X", "isolation.level=read_uncommitted", "-f", "%s\n")
	if got := sorted(strings.Fields(out)...); len(got) != 6 {
		t.Fatalf("kcat read_uncommitted: %v", got)
	}
}

// TestTransactionZombieFenced: a second producer with the same
// transactional id fences the first; the first's open transaction is
// aborted, its late writes and its commit fail, and none of it is ever
// visible to read_committed.
func TestTransactionZombieFenced(t *testing.T) {
	b := startBroker(t)
	b.createTopic("tx", 2, nil)
	zombie := b.txnProducer("tx-z", kgo.RecordRetries(2))
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	ctx := timeout(t, 30*time.Second)
	if err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie-1")).FirstErr(); err != nil {
		t.Fatalf("zombie's first write: %v", err)
	}
	// The new incarnation starts: InitProducerId fences the zombie and
	// aborts its open transaction.
	fresh := b.txnProducer("tx-z")
	if err := txnRun(t, fresh, true, "fresh-1", "fresh-2"); err != nil {
		t.Fatalf("new producer: %v", err)
	}
	err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie-2")).FirstErr()
	if err == nil {
		t.Fatal("the fenced producer's late write was accepted")
	}
	if !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidTxnState) && !errors.Is(err, kerr.TransactionAbortable) {
		t.Fatalf("late write of the fenced producer: %v, want a fencing error", err)
	}
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced producer committed")
	}
	if got, want := b.readValues("tx", true, 2), sorted("fresh-1", "fresh-2"); !reflect.DeepEqual(got, want) {
		t.Fatalf("read_committed: %v, want %v", got, want)
	}
}

// TestTransactionTimeout: a transaction its producer abandons is aborted
// once transaction.timeout.ms passes, the producer is fenced, and the last
// stable offset moves on, so read_committed consumers see what follows.
func TestTransactionTimeout(t *testing.T) {
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	cfg := writeConfig(t, dir, "abort_check_interval_ms = 10000", "abort_check_interval_ms = 200",
		"[admin]\n# HTTP admin", "[admin]\nlisten = \""+httpAddr+"\"\n# HTTP admin", "\nlisten = \"\"\n\n[topic_defaults]", "\n\n[topic_defaults]")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	b.createTopic("tx", 1, nil)
	ctx := timeout(t, 30*time.Second)
	abandoned := b.txnProducer("tx-abandoned", kgo.TransactionTimeout(1500*time.Millisecond), kgo.RecordRetries(2))
	if err := abandoned.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := abandoned.ProduceSync(ctx, kgo.StringRecord("abandoned")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Committed data after the open transaction stays invisible...
	after := b.client(kgo.DefaultProduceTopic("tx"))
	produceSync(t, after, kgo.StringRecord("after"))
	lso := func() int64 {
		t.Helper()
		lo, err := b.admin().ListCommittedOffsets(timeout(t, 10*time.Second), "tx")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("tx", 0)
		return o.Offset
	}
	if got := lso(); got != 0 {
		t.Fatalf("read_committed end offset %d while a transaction is open at 0", got)
	}
	metric := func(name string, labels map[string]string) float64 {
		t.Helper()
		v, ok := metricValue(scrape(t, httpAddr), name, labels)
		if !ok {
			t.Fatalf("no metric %s %v", name, labels)
		}
		return v
	}
	part := map[string]string{"topic": "tx", "partition": "0"}
	if v := metric("samsa_partition_last_stable_lag_records", part); v != 2 {
		t.Fatalf("LSO lag %v while the transaction is open, want 2", v)
	}
	if v := metric("samsa_transactions", map[string]string{"state": "Ongoing"}); v != 1 {
		t.Fatalf("ongoing transactions: %v", v)
	}
	if v := metric("samsa_transaction_oldest_open_seconds", nil); v <= 0 {
		t.Fatalf("oldest open transaction: %v s", v)
	}
	// ...until the coordinator aborts the transaction.
	deadline := time.Now().Add(15 * time.Second)
	for lso() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned transaction was not aborted 15 s after its 1.5 s timeout:\n%s", b.log.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := b.readValues("tx", true, 1); !reflect.DeepEqual(got, []string{"after"}) {
		t.Fatalf("read_committed after the timeout: %v", got)
	}
	if v := metric("samsa_partition_last_stable_lag_records", part); v != 0 {
		t.Fatalf("LSO lag %v after the abort", v)
	}
	if v := metric("samsa_transactions_timed_out_total", nil); v != 1 {
		t.Fatalf("timed-out transactions: %v", v)
	}
	if v := metric("samsa_transaction_markers_total", nil); v < 1 {
		t.Fatalf("markers written: %v", v)
	}
	if err := abandoned.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the timed-out transaction committed")
	}
}

// TestTransactionSurvivesBrokerKill: the broker is SIGKILLed with one
// transaction committed and another open; after the restart the committed
// one is whole, the open one is aborted when its producer's id is
// initialized again, and a new transaction commits.
func TestTransactionSurvivesBrokerKill(t *testing.T) {
	b := startBroker(t)
	b.createTopic("tx", 3, nil)
	p := b.txnProducer("tx-kill")
	if err := txnRun(t, p, true, "k1", "k2", "k3"); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(timeout(t, 30*time.Second), kgo.StringRecord("open-1"), kgo.StringRecord("open-2")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	b.kill()
	b.restart()
	p2 := b.txnProducer("tx-kill")
	if err := txnRun(t, p2, true, "k4"); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if got, want := b.readValues("tx", true, 4), sorted("k1", "k2", "k3", "k4"); !reflect.DeepEqual(got, want) {
		t.Fatalf("read_committed after a SIGKILL: %v, want %v", got, want)
	}
	if got := b.readValues("tx", false, 6); len(got) != 6 {
		t.Fatalf("read_uncommitted after a SIGKILL: %v", got)
	}
}

// TestTransactionAcrossFailover: a transaction is open when the primary of
// a pair is SIGKILLed. After the standby's promotion the transaction is
// either committed or aborted as a whole, never half visible; what was
// committed before stays; the producer goes on with new transactions.
func TestTransactionAcrossFailover(t *testing.T) {
	p := startPair(t)
	seeds := kgo.SeedBrokers(p.primary.addr, p.standby.addr)
	r, err := p.primary.admin().CreateTopic(timeout(t, 10*time.Second), 3, 2, nil, "tx")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	prod := p.primary.txnProducer("tx-failover", seeds, kgo.RetryTimeout(60*time.Second))
	var before []string
	for i := range 20 {
		before = append(before, fmt.Sprintf("before-%d", i))
	}
	if err := txnRun(t, prod, true, before...); err != nil {
		t.Fatal(err)
	}
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var open []string
	for i := range 30 {
		v := fmt.Sprintf("open-%d", i)
		open = append(open, v)
		if err := prod.ProduceSync(timeout(t, 30*time.Second), kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.primary.kill()
	if err := ctl.Promote(timeout(t, 30*time.Second), p.standby.addr, io.Discard); err != nil {
		t.Fatalf("promote: %v", err)
	}
	p.primary.restart()
	// The producer tries to commit on the new primary: it succeeds (the
	// transaction was replicated whole) or fails and the transaction is
	// aborted; a fenced or failed producer starts again.
	ctx := timeout(t, 60*time.Second)
	commitErr := prod.EndTransaction(ctx, kgo.TryCommit)
	t.Logf("commit after the failover: %v", commitErr)
	if commitErr != nil {
		prod.Close()
		prod = p.standby.txnProducer("tx-failover", seeds, kgo.RetryTimeout(60*time.Second))
	}
	if err := txnRun(t, prod, true, "after"); err != nil {
		t.Fatalf("a transaction after the failover: %v", err)
	}
	want := append(append([]string{}, before...), "after")
	if commitErr == nil {
		want = append(want, open...)
	}
	reader := &broker{t: t, addr: p.standby.addr}
	if got := reader.readValues("tx", true, len(want)); !reflect.DeepEqual(got, sorted(want...)) {
		t.Fatalf("read_committed on the new primary (commit err %v):\n%v\nwant\n%v", commitErr, got, sorted(want...))
	}
}

// TestTransactionCompletedAfterKillInPrepare: the broker is SIGKILLed
// while a producer commits and aborts small transactions back to back,
// until one kill lands between a transaction's PrepareCommit (or
// PrepareAbort) and its completion; the restarted coordinator completes it
// (its log says so), and read_committed readers see every committed
// transaction whole and no aborted one.
func TestTransactionCompletedAfterKillInPrepare(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	b := startBroker(t)
	b.createTopic("tx", 4, nil)
	const prepared = "completing a transaction the log left prepared"
	committed := map[string]bool{} // values of transactions that committed or may have
	var mayHave []string           // values of the transaction under way at each kill
	rng := rand.New(rand.NewPCG(1, 2))
	hit := false
	for attempt := 0; attempt < 40 && !hit; attempt++ {
		p := b.txnProducer(fmt.Sprintf("tx-prep-%d", attempt), kgo.RetryTimeout(5*time.Second), kgo.RecordDeliveryTimeout(10*time.Second))
		stop := make(chan struct{})
		done := make(chan []string)
		running := make(chan struct{}) // closed once the first transaction committed
		go func() {
			defer func() {
				select {
				case <-running:
				default:
					close(running)
				}
			}()
			var inFlight []string
			defer func() { done <- inFlight }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				commit := i%3 != 2
				vals := []string{fmt.Sprintf("a%d-t%d-0", attempt, i), fmt.Sprintf("a%d-t%d-1", attempt, i)}
				if !commit {
					vals = []string{fmt.Sprintf("a%d-t%d-abort", attempt, i)}
				}
				inFlight = nil
				if commit {
					inFlight = vals
				}
				if err := txnRun(t, p, commit, vals...); err != nil {
					return // the broker is gone
				}
				if commit {
					for _, v := range vals {
						committed[v] = true
					}
				}
				inFlight = nil
				if i == 0 {
					close(running)
				}
			}
		}()
		<-running
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		before := strings.Count(b.log.String(), prepared)
		loads := strings.Count(b.log.String(), "transactions loaded")
		b.kill()
		close(stop)
		p.Close() // its call under way fails now
		mayHave = append(mayHave, <-done...)
		b.restart()
		// A completion is logged as the coordinator loads, before it
		// says it has loaded.
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(b.log.String(), "transactions loaded") == loads && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		hit = strings.Count(b.log.String(), prepared) > before
	}
	if !hit {
		t.Fatalf("40 kills never landed between a prepare and its completion:\n%s", b.log.tail())
	}
	t.Logf("%d kills until one landed between a prepare and its completion", b.runs-1)
	// An earlier attempt's producer may have died inside a transaction:
	// as in Kafka, that transaction holds the last stable offset of its
	// partitions (and so every later transaction's records there) until it
	// times out or a producer of its transactional id fences it, as a
	// restarted application does. Fence them all.
	for a := 0; a < b.runs-2; a++ {
		b.fenceTransactionalID(fmt.Sprintf("tx-prep-%d", a))
	}
	// The completion writes its markers after the load: until the last
	// is written, a reader may see one partition's half and not yet the
	// other's (as in Kafka, partitions' markers land one by one).
	id, adm := fmt.Sprintf("tx-prep-%d", b.runs-2), b.admin()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ds, err := adm.DescribeTransactions(context.Background(), id)
		if err == nil {
			if d, ok := ds[id]; ok && d.Err == nil && (d.State == "CompleteCommit" || d.State == "CompleteAbort" || d.State == "Empty") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction %s not completed after the restart: %v %+v", id, err, ds)
		}
	}
	got := b.readCommittedIncluding("tx", committed)
	seen := map[string]bool{}
	for _, v := range got {
		if strings.HasSuffix(v, "-abort") {
			t.Fatalf("read_committed returned a record of an aborted transaction: %s", v)
		}
		seen[v] = true
	}
	for v := range committed {
		if !seen[v] {
			t.Fatalf("committed record %s missing", v)
		}
	}
	// The transaction under way at a kill is whole: both records or none.
	for i := 0; i+1 < len(mayHave); i += 2 {
		if seen[mayHave[i]] != seen[mayHave[i+1]] {
			t.Fatalf("half a transaction visible: %s %v, %s %v", mayHave[i], seen[mayHave[i]], mayHave[i+1], seen[mayHave[i+1]])
		}
	}
}
