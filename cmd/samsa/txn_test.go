package main

// Transactions with real clients against the binary: franz-go's
// transactional producer (commit, abort, zombie fencing, a timed-out
// transaction), read_committed consumers (franz-go, kcat), and the
// restart of a broker with transactions half-way.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnProducer is a franz-go transactional producer of b.
func (b *broker) txnProducer(id string, opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	return b.client(append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"),
		kgo.TransactionTimeout(10 * time.Second)}, opts...)...)
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
	_ = kerr.InvalidTxnState
	_ = fmt.Sprint
}
