package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTxnOptionsValidate(t *testing.T) {
	l := TxnListOptions{States: []string{"ongoing", " PREPAREABORT ", "CompleteCommit"}}
	if err := l.Validate(); err != nil || strings.Join(l.States, ",") != "Ongoing,PrepareAbort,CompleteCommit" {
		t.Errorf("TxnListOptions.Validate: %v, states %v", err, l.States)
	}
	bad := func(err error, want string) {
		t.Helper()
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want a usage error saying %q", err, want)
		}
	}
	bad((&TxnListOptions{States: []string{"Running"}}).Validate(), `"Running" is not a transaction state (one of Empty, Ongoing,`)
	bad((&TxnListOptions{ProducerIDs: []int64{-2}}).Validate(), "producer id -2")

	if err := (FindHangingOptions{Partition: -1}).Validate(); err != nil {
		t.Errorf("find-hanging, no options: %v", err)
	}
	bad(FindHangingOptions{Partition: 0}.Validate(), "--partition needs --topic")
	bad(FindHangingOptions{Topic: "t", Partition: -1, MaxTxnTimeoutMs: -1}.Validate(), "at least 0")

	ab := func(start, pid int64, epoch int16) TxnAbortOptions {
		return TxnAbortOptions{Topic: "t", Partition: 0, StartOffset: start, ProducerID: pid, ProducerEpoch: epoch, CoordinatorEpoch: -1}
	}
	for _, o := range []TxnAbortOptions{ab(5, -1, -1), ab(-1, 7, 0), ab(0, -1, -1)} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad(TxnAbortOptions{Partition: 0, StartOffset: 1, ProducerID: -1, ProducerEpoch: -1}.Validate(), "--topic TOPIC is required")
	bad(TxnAbortOptions{Topic: "t", Partition: -1, StartOffset: 1, ProducerID: -1, ProducerEpoch: -1}.Validate(), "--partition P is required")
	bad(ab(5, 7, 0).Validate(), "not both")
	bad(ab(-1, -1, -1).Validate(), "name the transaction with --start-offset")
	bad(ab(-1, 7, -1).Validate(), "--producer-id needs --producer-epoch")

	if ids, err := ParseProducerIDs("1, 2,3"); err != nil || len(ids) != 3 || ids[2] != 3 {
		t.Errorf("ParseProducerIDs: %v %v", ids, err)
	}
	_, err := ParseProducerIDs("1,x")
	bad(err, `"x" is not a number`)
}

func producer(topic string, p int32, pid int64, start, lastTs int64) openTxn {
	return openTxn{kadm.DescribedProducer{Topic: topic, Partition: p, ProducerID: pid, ProducerEpoch: 3, CoordinatorEpoch: -1,
		LastSequence: 9, LastTimestamp: lastTs, CurrentTxnStartOffset: start}}
}

// KIP-664's test, case by case.
func TestHangingTxns(t *testing.T) {
	now := time.UnixMilli(10_000_000)
	old, recent := now.UnixMilli()-900_001, now.UnixMilli()-900_000
	open := []openTxn{
		producer("t", 0, 1, 5, old),     // no transactional id: hanging
		producer("t", 0, 2, -1, old),    // no transaction open
		producer("t", 1, 3, 7, recent),  // not older than the timeout
		producer("t", 1, 4, 8, old),     // the coordinator has t-1 in it: not hanging
		producer("t", 2, 4, 9, old),     // the coordinator's transaction lacks t-2: hanging
		producer("u", 0, 5, 0, old),     // the id is unknown to its coordinator: hanging
		producer("a", 3, 1, 100, old-1), // sorts first
	}
	cands := candidateTxns(open, now, 900_000)
	if len(cands) != 5 {
		t.Fatalf("candidates: %+v", cands)
	}
	if got := candidateTxns(open, now, 0); len(got) != 6 {
		t.Errorf("candidates with timeout 0: %d, want every open transaction (6)", len(got))
	}
	known := &kadm.DescribedTransaction{TxnID: "known", State: "Ongoing", ProducerID: 4}
	known.Topics.Add("t", 1)
	ids := map[int64]string{4: "known", 5: "gone"}
	descs := map[string]*kadm.DescribedTransaction{"known": known, "gone": nil}
	got := hangingTxns(cands, ids, descs, now)
	type row struct {
		tp     string
		pid    int64
		start  int64
		id     string
		reason string
	}
	want := []row{
		{"a-3", 1, 100, "", "no coordinator has a transactional id with this producer id"},
		{"t-0", 1, 5, "", "no coordinator has a transactional id with this producer id"},
		{"t-2", 4, 9, "known", `transactional id "known" (Ongoing, producer 4) does not include this partition`},
		{"u-0", 5, 0, "gone", `the coordinator does not know transactional id "gone"`},
	}
	if len(got) != len(want) {
		t.Fatalf("hanging: %+v", got)
	}
	for i, h := range got {
		id := ""
		if h.TransactionalID != nil {
			id = *h.TransactionalID
		}
		g := row{h.Topic + "-" + itoa32(h.Partition), h.ProducerID, h.StartOffset, id, h.Reason}
		if g != want[i] {
			t.Errorf("hanging[%d] = %+v, want %+v", i, g, want[i])
		}
		if h.DurationMs != now.UnixMilli()-h.LastTimestampMs || h.ProducerEpoch != 3 || h.CoordinatorEpoch != -1 {
			t.Errorf("hanging[%d] = %+v", i, h)
		}
	}
}

func itoa32(n int32) string { return joinInt32s([]int32{n}) }

func TestTxnPrint(t *testing.T) {
	f := func(what string, fn func(*bytes.Buffer) error, want string) {
		t.Helper()
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if b.String() != want {
			t.Errorf("%s:\n%s\nwant:\n%s", what, b.String(), want)
		}
	}
	list := []TxnListing{{"billing-tx", 1, 4000, "Ongoing"}, {"orders-processor-0", 2, 17, "CompleteCommit"}}
	f("list", func(b *bytes.Buffer) error { return printTxnList(b, list, false) }, `TRANSACTIONAL-ID    COORDINATOR  PRODUCER-ID  STATE
billing-tx          1            4000         Ongoing
orders-processor-0  2            17           CompleteCommit
`)
	f("empty list json", func(b *bytes.Buffer) error { return printTxnList(b, []TxnListing{}, true) }, "[]\n")

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := kadm.DescribedTransaction{Coordinator: 1, TxnID: "billing-tx", State: "Ongoing", TimeoutMillis: 60000,
		StartTimestamp: now.Add(-1500 * time.Millisecond).UnixMilli(), ProducerID: 4000, ProducerEpoch: 2}
	d.Topics.Add("orders", 2, 0)
	d.Topics.Add("audit", 5)
	idle := kadm.DescribedTransaction{Coordinator: 1, TxnID: "idle", State: "CompleteAbort", TimeoutMillis: 900000, StartTimestamp: -1, ProducerID: 3}
	descs := []TxnDescription{describedTxn(d, now), describedTxn(idle, now)}
	f("describe", func(b *bytes.Buffer) error { return printTxnDescriptions(b, descs, false) },
		`TRANSACTIONAL-ID  COORDINATOR  PRODUCER-ID  EPOCH  STATE          TIMEOUT  STARTED                   DURATION  PARTITIONS
billing-tx        1            4000         2      Ongoing        1m0s     2026-03-01T11:59:58.500Z  1.5s      audit:5 orders:0,2
idle              1            3            0      CompleteAbort  15m0s    -                         -         -
`)
	f("describe json", func(b *bytes.Buffer) error { return printTxnDescriptions(b, descs[1:], true) }, `[
  {
    "transactional_id": "idle",
    "coordinator": 1,
    "producer_id": 3,
    "producer_epoch": 0,
    "state": "CompleteAbort",
    "timeout_ms": 900000,
    "start_time_ms": null,
    "duration_ms": null,
    "partitions": []
  }
]
`)
	f("describe nothing", func(b *bytes.Buffer) error { return printTxnDescriptions(b, nil, false) }, "")

	id := "billing-tx"
	res := FindHangingResult{PartitionsSearched: 12, MaxTxnTimeoutMs: 900000, OpenTransactions: 3, Hanging: []HangingTxn{
		{Topic: "orders", Partition: 2, ProducerID: 4000, ProducerEpoch: 2, CoordinatorEpoch: 0, StartOffset: 1234,
			LastTimestampMs: now.Add(-20 * time.Minute).UnixMilli(), DurationMs: (20 * time.Minute).Milliseconds(), TransactionalID: &id,
			Reason: `transactional id "billing-tx" (CompleteCommit, producer 4000) does not include this partition`},
		{Topic: "orders", Partition: 3, ProducerID: 77, ProducerEpoch: 0, CoordinatorEpoch: -1, StartOffset: 9,
			LastTimestampMs: now.Add(-2 * time.Hour).UnixMilli(), DurationMs: (2 * time.Hour).Milliseconds(),
			Reason: "no coordinator has a transactional id with this producer id"},
	}}
	f("find-hanging", func(b *bytes.Buffer) error { return printHanging(b, res, false) },
		`TOPIC   PARTITION  PRODUCER-ID  EPOCH  COORDINATOR-EPOCH  START-OFFSET  LAST-WRITE                AGE     TRANSACTIONAL-ID  WHY
orders  2          4000         2      0                  1234          2026-03-01T11:40:00.000Z  20m0s   billing-tx        transactional id "billing-tx" (CompleteCommit, producer 4000) does not include this partition
orders  3          77           0      -1                 9             2026-03-01T10:00:00.000Z  2h0m0s  -                 no coordinator has a transactional id with this producer id
2 hanging of 3 transactions open longer than 15m0s, in 12 partitions searched
abort one with: samsactl transactions abort --topic orders --partition 2 --start-offset 1234
`)
	f("find-hanging none", func(b *bytes.Buffer) error {
		return printHanging(b, FindHangingResult{PartitionsSearched: 1, MaxTxnTimeoutMs: 60000, Hanging: []HangingTxn{}}, false)
	}, `TOPIC  PARTITION  PRODUCER-ID  EPOCH  COORDINATOR-EPOCH  START-OFFSET  LAST-WRITE  AGE  TRANSACTIONAL-ID  WHY
0 hanging of 0 transactions open longer than 1m0s, in 1 partition searched
`)
	var b bytes.Buffer
	if err := printHanging(&b, res, true); err != nil {
		t.Fatal(err)
	}
	var back FindHangingResult
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Hanging) != 2 || back.Hanging[1].TransactionalID != nil || *back.Hanging[0].TransactionalID != id {
		t.Errorf("find-hanging json: %v\n%s", err, b.String())
	}
	for _, k := range []string{`"partitions_searched": 12`, `"open_transactions": 3`, `"transactional_id": null`, `"start_offset": 9`, `"last_timestamp_ms": `, `"reason": `} {
		if !strings.Contains(b.String(), k) {
			t.Errorf("find-hanging json lacks %s:\n%s", k, b.String())
		}
	}
}

// fakeTxnCluster is kfake with topic h (3 partitions) whose
// DescribeProducers, ListTransactions and DescribeTransactions answers
// are made up: the hanging transactions the real broker cannot be made to
// have (its coordinator always knows the transactions it verified).
//
//	h-0: producer 100 open at 5 for 20 minutes, no transactional id   -> hanging
//	h-0: producer 101 open at 7, id "known" has h-0                   -> not hanging
//	h-1: producer 102 open at 3, id "other" has only h-0              -> hanging
//	h-1: producer 103 open at 4 for 1 minute                          -> too recent
//	h-2: producer 104 not in a transaction; producer 105 open at 0,
//	     id "gone" unknown to DescribeTransactions                    -> hanging
func fakeTxnCluster(t *testing.T, now time.Time) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "h"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	old, recent := now.Add(-20*time.Minute).UnixMilli(), now.Add(-time.Minute).UnixMilli()
	type prod struct {
		pid          int64
		start, lastT int64
	}
	producers := map[int32][]prod{
		0: {{100, 5, old}, {101, 7, old}},
		1: {{102, 3, old}, {103, 4, recent}},
		2: {{104, -1, old}, {105, 0, old}},
	}
	c.ControlKey(kmsg.DescribeProducers.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.DescribeProducersRequest)
		resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewDescribeProducersResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewDescribeProducersResponseTopicPartition()
				sp.Partition = p
				if rt.Topic != "h" {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
				for _, pr := range producers[p] {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pr.pid, 1, 0, pr.lastT, 2, pr.start
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	c.ControlKey(kmsg.ListTransactions.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ListTransactionsRequest)
		resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
		for _, s := range []struct {
			id  string
			pid int64
		}{{"known", 101}, {"other", 102}, {"gone", 105}, {"unrelated", 999}} {
			ts := kmsg.NewListTransactionsResponseTransactionState()
			ts.TransactionalID, ts.ProducerID, ts.TransactionState = s.id, s.pid, "Ongoing"
			resp.TransactionStates = append(resp.TransactionStates, ts) // as a broker that ignores the filter
		}
		return resp, nil, true
	})
	c.ControlKey(kmsg.DescribeTransactions.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.DescribeTransactionsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
		for _, id := range req.TransactionalIDs {
			s := kmsg.NewDescribeTransactionsResponseTransactionState()
			s.TransactionalID, s.State, s.TimeoutMillis, s.StartTimestamp = id, "Ongoing", 60000, old
			tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			tt.Topic, tt.Partitions = "h", []int32{0}
			switch id {
			case "known":
				s.ProducerID = 101
			case "other":
				s.ProducerID = 102
			default:
				s.ErrorCode = kerr.TransactionalIDNotFound.Code
			}
			if s.ErrorCode == 0 {
				s.Topics = append(s.Topics, tt)
			}
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := ConnectClient(ctx, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

func TestFindHangingFake(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, cl := fakeTxnCluster(t, now)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	find := func(opt FindHangingOptions) FindHangingResult {
		t.Helper()
		opt.JSON, opt.Now = true, now
		var b bytes.Buffer
		if err := TxnFindHanging(ctx, cl, opt, &b); err != nil {
			t.Fatalf("find-hanging %+v: %v", opt, err)
		}
		var res FindHangingResult
		if err := json.Unmarshal(b.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	summary := func(res FindHangingResult) string {
		var s []string
		for _, h := range res.Hanging {
			s = append(s, h.Topic+"-"+itoa32(h.Partition)+"/"+itoa32(int32(h.ProducerID))+"@"+itoa32(int32(h.StartOffset)))
		}
		return strings.Join(s, " ")
	}
	res := find(FindHangingOptions{Topic: "h", Partition: -1, MaxTxnTimeoutMs: DefaultMaxTxnTimeoutMs})
	if got, want := summary(res), "h-0/100@5 h-1/102@3 h-2/105@0"; got != want || res.PartitionsSearched != 3 || res.OpenTransactions != 4 {
		t.Errorf("find-hanging --topic h: %s (searched %d, open %d), want %s, 3 searched, 4 open", got, res.PartitionsSearched, res.OpenTransactions, want)
	}
	if h := res.Hanging[2]; h.TransactionalID == nil || *h.TransactionalID != "gone" || h.CoordinatorEpoch != 2 || h.ProducerEpoch != 1 || h.LastTimestampMs != now.Add(-20*time.Minute).UnixMilli() {
		t.Errorf("h-2: %+v", h)
	}
	// A timeout of 0 adds producer 103 (h-1), whose id no coordinator has.
	res = find(FindHangingOptions{Topic: "h", Partition: 1, MaxTxnTimeoutMs: 0})
	if got, want := summary(res), "h-1/102@3 h-1/103@4"; got != want || res.PartitionsSearched != 1 {
		t.Errorf("find-hanging --topic h --partition 1 --max 0: %s (searched %d), want %s", got, res.PartitionsSearched, want)
	}
	res = find(FindHangingOptions{Partition: -1, MaxTxnTimeoutMs: DefaultMaxTxnTimeoutMs})
	if got := summary(res); !strings.HasPrefix(got, "h-0/100@5 h-1/102@3 h-2/105@0") {
		t.Errorf("find-hanging, every topic: %s", got)
	}

	var b bytes.Buffer
	if err := TxnFindHanging(ctx, cl, FindHangingOptions{Topic: "nosuch", Partition: -1}, &b); !errors.Is(err, ErrNotFound) {
		t.Errorf("find-hanging --topic nosuch: %v", err)
	}
	if err := TxnFindHanging(ctx, cl, FindHangingOptions{Topic: "h", Partition: 3}, &b); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "topic h has no partition 3 (it has 3 partitions)") {
		t.Errorf("find-hanging --topic h --partition 3: %v", err)
	}
}

// TestAbortFake checks the WriteTxnMarkers request abort sends and how it
// reports the partition's error; a NOT_LEADER answer is retried.
func TestAbortFake(t *testing.T) {
	t.Parallel()
	c, cl := fakeTxnCluster(t, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var mu sync.Mutex
	var sent []kmsg.WriteTxnMarkersRequestMarker
	answers := []int16{kerr.NotLeaderForPartition.Code, 0}
	c.ControlKey(kmsg.WriteTxnMarkers.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		req := kr.(*kmsg.WriteTxnMarkersRequest)
		resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
		code := int16(0)
		if len(answers) > 0 {
			code, answers = answers[0], answers[1:]
		}
		for _, m := range req.Markers {
			sent = append(sent, m)
			rm := kmsg.NewWriteTxnMarkersResponseMarker()
			rm.ProducerID = m.ProducerID
			for _, mt := range m.Topics {
				rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				rt.Topic = mt.Topic
				for _, p := range mt.Partitions {
					rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					rp.Partition, rp.ErrorCode = p, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				rm.Topics = append(rm.Topics, rt)
			}
			resp.Markers = append(resp.Markers, rm)
		}
		return resp, nil, true
	})
	markers := func() []kmsg.WriteTxnMarkersRequestMarker {
		mu.Lock()
		defer mu.Unlock()
		s := sent
		sent = nil
		return s
	}

	// By start offset: producer 102 on h-1 (epoch 1, coordinator epoch 2).
	var b bytes.Buffer
	err := TxnAbort(ctx, cl, TxnAbortOptions{Topic: "h", Partition: 1, StartOffset: 3, ProducerID: -1, ProducerEpoch: -1, CoordinatorEpoch: -1}, &b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "aborted the transaction of producer 102 (epoch 1, coordinator epoch 2) on h-1: node 0 wrote the abort marker\n"; b.String() != want {
		t.Errorf("abort --start-offset 3:\n%q\nwant\n%q", b.String(), want)
	}
	ms := markers()
	if len(ms) != 2 { // NOT_LEADER_OR_FOLLOWER, then done
		t.Fatalf("abort sent %d markers, want 2 (one retry)", len(ms))
	}
	for _, m := range ms {
		if m.ProducerID != 102 || m.ProducerEpoch != 1 || m.CoordinatorEpoch != 2 || m.Committed || len(m.Topics) != 1 || m.Topics[0].Topic != "h" || len(m.Topics[0].Partitions) != 1 || m.Topics[0].Partitions[0] != 1 {
			t.Errorf("marker sent: %+v", m)
		}
	}

	// By producer id, coordinator epoch -1 sent as 0; the broker refuses it.
	mu.Lock()
	answers = []int16{kerr.InvalidProducerEpoch.Code}
	mu.Unlock()
	b.Reset()
	err = TxnAbort(ctx, cl, TxnAbortOptions{Topic: "h", Partition: 2, StartOffset: -1, ProducerID: 105, ProducerEpoch: 0, CoordinatorEpoch: -1, JSON: true}, &b)
	if err == nil || errors.Is(err, ErrUsage) || errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), "cannot abort the transaction of producer 105 (epoch 0, coordinator epoch 0) on h-2: node 0 refused it: INVALID_PRODUCER_EPOCH") ||
		!strings.Contains(err.Error(), "the producer has a newer epoch") || b.Len() != 0 {
		t.Errorf("abort refused: %v, printed %q", err, b.String())
	}
	if ms := markers(); len(ms) != 1 || ms[0].CoordinatorEpoch != 0 || ms[0].ProducerID != 105 || ms[0].ProducerEpoch != 0 {
		t.Errorf("markers sent: %+v", ms)
	}

	// No transaction starts there: nothing is sent.
	err = TxnAbort(ctx, cl, TxnAbortOptions{Topic: "h", Partition: 2, StartOffset: 1, ProducerID: -1, ProducerEpoch: -1, CoordinatorEpoch: -1}, &b)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no open transaction starts at offset 1 of h-2") {
		t.Errorf("abort --start-offset 1: %v", err)
	}
	if ms := markers(); len(ms) != 0 {
		t.Errorf("markers sent for a missing transaction: %+v", ms)
	}
}
