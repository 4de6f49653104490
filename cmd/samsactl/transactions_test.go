package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/tools/ctl"
)

// TestTransactions: a franz-go producer opens a transaction on tx-0 and
// tx-1 and leaves it open. list shows it Ongoing (and the filters keep or
// drop it), describe shows its partitions, find-hanging checks both open
// transactions with the coordinator and reports none (the coordinator
// knows them: not hanging, KIP-664), abort --start-offset writes an abort
// marker on tx-0 and a read_committed consumer then reads past it, and
// abort by producer id does the same on tx-1.
func TestTransactions(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx := testCtx(t)
	ok(t, b.addr, "topics", "create", "tx", "--partitions", "2")
	produce(t, b.addr, "tx", 1, 3, time.Now()) // tx-0 offsets 0..2, so the transaction starts at 3

	txp := client(t, b.addr, kgo.TransactionalID("ctl-tx"), kgo.TransactionTimeout(time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txp.ProduceSync(ctx,
		&kgo.Record{Topic: "tx", Partition: 0, Value: []byte("aborted-1")},
		&kgo.Record{Topic: "tx", Partition: 0, Value: []byte("aborted-2")},
		&kgo.Record{Topic: "tx", Partition: 1, Value: []byte("aborted-3")},
	).FirstErr(); err != nil {
		t.Fatalf("cannot produce in the transaction: %v", err)
	}
	time.Sleep(5 * time.Millisecond) // the transaction is older than 0 ms

	// list
	var list []ctl.TxnListing
	okJSON(t, b.addr, &list, "transactions", "list")
	if len(list) != 1 || list[0].TransactionalID != "ctl-tx" || list[0].State != "Ongoing" || list[0].Coordinator != b.nodeID {
		t.Fatalf("transactions list: %+v", list)
	}
	pid := list[0].ProducerID
	out := ok(t, b.addr, "transactions", "list")
	if want := [][]string{{"TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"}, {"ctl-tx", itoa(b.nodeID), strconv.FormatInt(pid, 10), "Ongoing"}}; !equalRows(fields(out), want) {
		t.Errorf("transactions list:\n%s", out)
	}
	listed := func(args ...string) bool {
		t.Helper()
		var l []ctl.TxnListing
		okJSON(t, b.addr, &l, append([]string{"transactions", "list"}, args...)...)
		return len(l) == 1 && l[0].TransactionalID == "ctl-tx"
	}
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--state", "ongoing"}, true},
		{[]string{"--state", "Empty,CompleteCommit"}, false},
		{[]string{"--state", "Empty", "--state", "Ongoing"}, true},
		{[]string{"--producer-id", strconv.FormatInt(pid, 10)}, true},
		{[]string{"--producer-id", strconv.FormatInt(pid+1, 10)}, false},
		{[]string{"--duration-ms", "0"}, true},
		{[]string{"--duration-ms", "3600000"}, false},
	} {
		if got := listed(c.args...); got != c.want {
			t.Errorf("transactions list %s: listed %v, want %v", strings.Join(c.args, " "), got, c.want)
		}
	}

	// describe
	var desc []ctl.TxnDescription
	okJSON(t, b.addr, &desc, "transactions", "describe", "ctl-tx")
	if len(desc) != 1 {
		t.Fatalf("transactions describe: %+v", desc)
	}
	d := desc[0]
	if d.TransactionalID != "ctl-tx" || d.State != "Ongoing" || d.ProducerID != pid || d.Coordinator != b.nodeID || d.TimeoutMs != 60000 ||
		d.StartTimeMs == nil || d.DurationMs == nil || *d.DurationMs < 0 || *d.DurationMs > 60000 ||
		len(d.Partitions) != 1 || d.Partitions[0].Topic != "tx" || len(d.Partitions[0].Partitions) != 2 {
		t.Errorf("transactions describe: %+v", d)
	}
	out = ok(t, b.addr, "transactions", "describe", "ctl-tx")
	if rows := fields(out); len(rows) != 2 || len(rows[1]) != 9 || rows[1][0] != "ctl-tx" || rows[1][4] != "Ongoing" || rows[1][5] != "1m0s" || rows[1][8] != "tx:0,1" {
		t.Errorf("transactions describe:\n%s", out)
	}
	fails(t, b.addr, 4, []string{"transactions", "describe", "nosuch"}, `transactional id "nosuch" does not exist`)

	// find-hanging: both open transactions are checked, neither hangs.
	var fh ctl.FindHangingResult
	okJSON(t, b.addr, &fh, "transactions", "find-hanging", "--max-transaction-timeout-ms", "0")
	if fh.OpenTransactions != 2 || len(fh.Hanging) != 0 || fh.PartitionsSearched < 2 {
		t.Errorf("find-hanging, every topic: %+v", fh)
	}
	okJSON(t, b.addr, &fh, "transactions", "find-hanging", "--topic", "tx", "--partition", "1", "--max-transaction-timeout-ms", "0")
	if fh.OpenTransactions != 1 || len(fh.Hanging) != 0 || fh.PartitionsSearched != 1 {
		t.Errorf("find-hanging --topic tx --partition 1: %+v", fh)
	}
	out = ok(t, b.addr, "transactions", "find-hanging", "--topic", "tx")
	if !strings.Contains(out, "0 hanging of 0 transactions open longer than 15m0s, in 2 partitions searched") {
		t.Errorf("find-hanging --topic tx (15 minutes):\n%s", out)
	}
	fails(t, b.addr, 4, []string{"transactions", "find-hanging", "--topic", "nosuch"}, `topic "nosuch" does not exist`)
	fails(t, b.addr, 4, []string{"transactions", "find-hanging", "--topic", "tx", "--partition", "7"}, "topic tx has no partition 7")

	// Before the abort, read_committed stops at the transaction's start.
	adm := kadm.NewClient(client(t, b.addr))
	if lso := lastStable(ctx, t, adm, 0); lso != 3 {
		t.Fatalf("last stable offset of tx-0 before the abort: %d, want 3", lso)
	}
	fails(t, b.addr, 4, []string{"transactions", "abort", "--topic", "tx", "--partition", "0", "--start-offset", "2"}, "no open transaction starts at offset 2 of tx-0")

	// abort --start-offset
	var ab ctl.TxnAbortResult
	okJSON(t, b.addr, &ab, "transactions", "abort", "--topic", "tx", "--partition", "0", "--start-offset", "3")
	if ab.ProducerID != pid || ab.StartOffset == nil || *ab.StartOffset != 3 || ab.Leader != b.nodeID || ab.Topic != "tx" || ab.Partition != 0 || ab.CoordinatorEpoch < 0 {
		t.Errorf("transactions abort --start-offset 3: %+v", ab)
	}
	if lso := lastStable(ctx, t, adm, 0); lso != 6 { // 3 records, 2 aborted, the marker
		t.Errorf("last stable offset of tx-0 after the abort: %d, want 6", lso)
	}
	produce(t, b.addr, "tx", 1, 1, time.Now()) // offset 6
	cons := client(t, b.addr, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"tx": {0: kgo.NewOffset().AtStart()}}))
	var got []int64
	for len(got) < 4 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read_committed consumer after the abort: %v (got offsets %v)", err, got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, r.Offset)
			if strings.HasPrefix(string(r.Value), "aborted") {
				t.Errorf("read_committed consumer read aborted record %d %q", r.Offset, r.Value)
			}
		})
	}
	if s := fmtInts(got); s != "[0 1 2 6]" {
		t.Errorf("read_committed consumer read offsets %s, want [0 1 2 6]", s)
	}
	fails(t, b.addr, 4, []string{"transactions", "abort", "--topic", "tx", "--partition", "0", "--start-offset", "3"}, "no open transaction starts at offset 3")

	// abort by producer id (tx-1), with coordinator epoch -1 counted as 0.
	out = ok(t, b.addr, "transactions", "abort", "--topic", "tx", "--partition", "1",
		"--producer-id", strconv.FormatInt(pid, 10), "--producer-epoch", strconv.Itoa(int(d.ProducerEpoch)), "--coordinator-epoch", "-1")
	if want := "aborted the transaction of producer " + strconv.FormatInt(pid, 10) + " (epoch " + strconv.Itoa(int(d.ProducerEpoch)) +
		", coordinator epoch 0) on tx-1: node " + itoa(b.nodeID) + " wrote the abort marker\n"; out != want {
		t.Errorf("transactions abort --producer-id:\n%q\nwant\n%q", out, want)
	}
	if lso := lastStable(ctx, t, adm, 1); lso != 2 {
		t.Errorf("last stable offset of tx-1 after the abort: %d, want 2", lso)
	}
	okJSON(t, b.addr, &fh, "transactions", "find-hanging", "--topic", "tx", "--max-transaction-timeout-ms", "0")
	if fh.OpenTransactions != 0 || len(fh.Hanging) != 0 {
		t.Errorf("find-hanging after both aborts: %+v", fh)
	}
	fails(t, b.addr, 4, []string{"transactions", "abort", "--topic", "nosuch", "--partition", "0", "--producer-id", "1", "--producer-epoch", "0", "--coordinator-epoch", "0"},
		`topic "nosuch" does not exist`)

	// The producer, unaware, writes to tx-0 again and commits: only that
	// record is committed. Then a second transaction: franz-go opts into
	// transaction.version 2 from its second transaction on (it learns the
	// feature after the first began), re-initialising its producer id,
	// which bumps the epoch.
	for i, v := range []string{"committed-1", "committed-2"} {
		if i > 0 {
			if err := txp.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txp.ProduceSync(ctx, &kgo.Record{Topic: "tx", Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("cannot produce %s: %v", v, err)
		}
		if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("cannot commit %s: %v", v, err)
		}
		for n := len(got); len(got) == n; {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("read_committed consumer after commit %d: %v (got offsets %v)", i+1, err, got)
			}
			fs.EachRecord(func(r *kgo.Record) {
				got = append(got, r.Offset)
				if string(r.Value) != v {
					t.Errorf("read_committed consumer read %d %q after commit %d", r.Offset, r.Value, i+1)
				}
			})
		}
	}
	// Kafka keeps the start of the last transaction in the complete states.
	okJSON(t, b.addr, &desc, "transactions", "describe", "ctl-tx")
	if d2 := desc[0]; d2.State != "CompleteCommit" || len(d2.Partitions) != 0 || d2.ProducerID != pid || d2.ProducerEpoch <= d.ProducerEpoch || d2.StartTimeMs == nil {
		t.Errorf("transactions describe after the commits: %+v (epoch before: %d)", d2, d.ProducerEpoch)
	}
	out = ok(t, b.addr, "transactions", "describe", "ctl-tx")
	if rows := fields(out); len(rows) != 2 || len(rows[1]) != 9 || rows[1][4] != "CompleteCommit" || rows[1][8] != "-" {
		t.Errorf("transactions describe after the commits:\n%s", out)
	}
	// A marker at an epoch older than the producer's is refused, and says so.
	fails(t, b.addr, 1, []string{"transactions", "abort", "--topic", "tx", "--partition", "0",
		"--producer-id", strconv.FormatInt(pid, 10), "--producer-epoch", strconv.Itoa(int(d.ProducerEpoch)), "--coordinator-epoch", "0"},
		"refused it: INVALID_PRODUCER_EPOCH", "the producer has a newer epoch")
}

// lastStable is the read_committed end of tx-P.
func lastStable(ctx context.Context, t *testing.T, adm *kadm.Client, p int32) int64 {
	t.Helper()
	return lastStableOf(ctx, t, adm, "tx", p)
}

// lastStableOf is a partition's read_committed end (ListOffsets, isolation 1).
func lastStableOf(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, p int32) int64 {
	t.Helper()
	l, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("cannot list read_committed offsets: %v", err)
	}
	o, ok := l.Lookup(topic, p)
	if !ok || o.Err != nil {
		t.Fatalf("no read_committed offset of %s-%d: %+v", topic, p, o)
	}
	return o.Offset
}

func fmtInts(s []int64) string {
	b := make([]string, len(s))
	for i, v := range s {
		b[i] = strconv.FormatInt(v, 10)
	}
	return "[" + strings.Join(b, " ") + "]"
}

// TestTransactionsUsage: argument mistakes exit 2 before any connection
// (the address is closed, which would exit 3); well-formed commands go on
// to connect and exit 3.
func TestTransactionsUsage(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"transactions"}, "transactions needs a subcommand: one of list, describe, find-hanging, abort"},
		{[]string{"transactions", "list", "--state", "Running"}, `"Running" is not a transaction state (one of Empty, Ongoing, PrepareCommit`},
		{[]string{"transactions", "list", "--state", "Ongoing,"}, "an empty item"},
		{[]string{"transactions", "list", "--producer-id", "1,x"}, `--producer-id: "x" is not a number`},
		{[]string{"transactions", "list", "--producer-id", "-3"}, "producer id -3"},
		{[]string{"transactions", "list", "--duration-ms", "soon"}, "invalid value"},
		{[]string{"transactions", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"transactions", "describe"}, "needs at least one TRANSACTIONAL-ID"},
		{[]string{"transactions", "describe", ""}, "an empty TRANSACTIONAL-ID"},
		{[]string{"transactions", "find-hanging", "--partition", "0"}, "--partition needs --topic"},
		{[]string{"transactions", "find-hanging", "--topic", "t", "--partition", "-1"}, "--partition -1 is not a partition number"},
		{[]string{"transactions", "find-hanging", "--topic", ""}, "an empty --topic"},
		{[]string{"transactions", "find-hanging", "--max-transaction-timeout-ms", "-5"}, "--max-transaction-timeout-ms must be at least 0"},
		{[]string{"transactions", "abort", "--partition", "0", "--start-offset", "3"}, "--topic TOPIC is required"},
		{[]string{"transactions", "abort", "--topic", "t", "--start-offset", "3"}, "--partition P is required"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0"}, "name the transaction with --start-offset OFFSET, or with --producer-id"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0", "--start-offset", "-2"}, "--start-offset must be at least 0"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0", "--start-offset", "3", "--producer-id", "1", "--producer-epoch", "0"}, "not both"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0", "--start-offset", "3", "--coordinator-epoch", "0"}, "not both"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0", "--producer-id", "1", "--producer-epoch", "0"}, "--producer-id needs --producer-epoch and --coordinator-epoch"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0", "--producer-id", "1", "--coordinator-epoch", "0"}, "--producer-id needs --producer-epoch"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0", "--producer-id", "1", "--producer-epoch", "40000", "--coordinator-epoch", "0"}, "--producer-epoch 40000 is not an epoch"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "0", "--producer-id", "1", "--producer-epoch", "0", "--coordinator-epoch", "-2"}, "--coordinator-epoch -2 is not an epoch"},
		{[]string{"transactions", "abort", "--topic", "t", "--partition", "4294967296", "--start-offset", "0"}, "is not a partition number"},
	} {
		r := fails(t, addr, 2, c.args, c.want)
		if len(c.args) > 1 && !strings.Contains(r.stderr, "(samsactl "+c.args[0]+" "+c.args[1]+" -h shows the usage)") {
			t.Errorf("samsactl %s: stderr does not point at the usage: %q", strings.Join(c.args, " "), r.stderr)
		}
	}
	for _, args := range [][]string{
		{"transactions", "list"},
		{"transactions", "list", "--state", "ongoing,Empty", "--producer-id", "1,2", "--producer-id", "3", "--duration-ms", "0"},
		{"transactions", "describe", "a", "b"},
		{"transactions", "find-hanging"},
		{"transactions", "find-hanging", "--topic", "t", "--partition", "0", "--max-transaction-timeout-ms", "0"},
		{"transactions", "abort", "--topic", "t", "--partition", "0", "--start-offset", "0"},
		{"transactions", "abort", "--topic", "t", "--partition", "0", "--producer-id", "7", "--producer-epoch", "0", "--coordinator-epoch", "-1"},
	} {
		fails(t, addr, 3, args, "cannot reach broker")
	}
	var o, e strings.Builder
	if code := run([]string{"transactions", "abort", "-h"}, &o, &e); code != 0 || !strings.Contains(o.String(), "-start-offset OFFSET") || !strings.Contains(o.String(), "-coordinator-epoch EPOCH") {
		t.Errorf("samsactl transactions abort -h: exit %d, stdout %q", code, o.String())
	}
}

// TestTransactionsOffsets: a transaction that also commits a group's
// offsets (AddOffsetsToTxn, TxnOffsetCommit) is open on __consumer_offsets
// too. describe lists that partition, find-hanging searches internal
// topics and finds both open transactions known, and an abort of the
// __consumer_offsets partition drops the pending offsets: the producer's
// later commit commits its records but no offsets, as in Kafka.
func TestTransactionsOffsets(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx := testCtx(t)
	ok(t, b.addr, "topics", "create", "in", "--partitions", "1")
	txp := client(t, b.addr, kgo.TransactionalID("off-tx"), kgo.TransactionTimeout(time.Minute), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txp.ProduceSync(ctx, &kgo.Record{Topic: "in", Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var list []ctl.TxnListing
	okJSON(t, b.addr, &list, "transactions", "list", "--state", "Ongoing")
	if len(list) != 1 {
		t.Fatalf("transactions list: %+v", list)
	}
	pid := list[0].ProducerID
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "off-tx", pid, 0, "g"
	if r, err := ao.RequestWith(ctx, txp); err != nil || r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v, code %d", err, r.ErrorCode)
	}
	tc := kmsg.NewPtrTxnOffsetCommitRequest()
	tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch, tc.Generation = "off-tx", "g", pid, 0, -1
	tt := kmsg.NewTxnOffsetCommitRequestTopic()
	tt.Topic = "in"
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset = 0, 1
	tt.Partitions = append(tt.Partitions, tp)
	tc.Topics = append(tc.Topics, tt)
	if r, err := tc.RequestWith(ctx, txp); err != nil || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("TxnOffsetCommit: %v, %+v", err, r)
	}
	time.Sleep(5 * time.Millisecond)

	out := ok(t, b.addr, "transactions", "describe", "off-tx")
	rows := fields(out)
	if len(rows) != 2 || len(rows[1]) != 10 || !strings.HasPrefix(rows[1][8], "__consumer_offsets:") || rows[1][9] != "in:0" {
		t.Fatalf("transactions describe:\n%s", out)
	}
	var fh ctl.FindHangingResult
	okJSON(t, b.addr, &fh, "transactions", "find-hanging", "--max-transaction-timeout-ms", "0")
	if fh.OpenTransactions != 2 || len(fh.Hanging) != 0 {
		t.Errorf("find-hanging: %+v", fh)
	}

	adm := kadm.NewClient(client(t, b.addr))
	s := kadm.TopicsSet{}
	s.Add("__consumer_offsets")
	dp, err := adm.DescribeProducers(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var open []kadm.DescribedProducer
	for _, p := range dp.SortedProducers() {
		if p.CurrentTxnStartOffset >= 0 {
			open = append(open, p)
		}
	}
	if len(open) != 1 || open[0].ProducerID != pid || rows[1][8] != "__consumer_offsets:"+itoa(open[0].Partition) {
		t.Fatalf("open transactions on __consumer_offsets: %+v (describe says %s)", open, rows[1][8])
	}
	ok(t, b.addr, "transactions", "abort", "--topic", "__consumer_offsets", "--partition", itoa(open[0].Partition),
		"--start-offset", strconv.FormatInt(open[0].CurrentTxnStartOffset, 10))
	okJSON(t, b.addr, &fh, "transactions", "find-hanging", "--max-transaction-timeout-ms", "0")
	if fh.OpenTransactions != 1 || len(fh.Hanging) != 0 {
		t.Errorf("find-hanging after the abort: %+v", fh)
	}
	if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("cannot commit: %v", err)
	}
	if lso := lastStableOf(ctx, t, adm, "in", 0); lso != 2 {
		t.Errorf("last stable offset of in-0 after the commit: %d, want 2", lso)
	}
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, found := offs.Lookup("in", 0); found && o.At >= 0 {
		t.Errorf("group g has offset %d for in-0: the aborted transactional commit was applied", o.At)
	}
}
