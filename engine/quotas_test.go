package engine

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestQuotaResolve: Kafka's order of precedence, and the entity the rate
// is counted for (defaults become the actual names).
func TestQuotaResolve(t *testing.T) {
	q := quotaSet{}
	set := func(e quotaEntity, v float64) { q.apply(metaQuota{Entity: e, Key: quotaProduce, Value: v}) }
	set(quotaEntity{HasClient: true, ClientDefault: true}, 8)
	set(quotaEntity{HasClient: true, Client: "c1"}, 7)
	set(quotaEntity{HasUser: true, UserDefault: true}, 6)
	set(quotaEntity{HasUser: true, UserDefault: true, HasClient: true, ClientDefault: true}, 5)
	set(quotaEntity{HasUser: true, UserDefault: true, HasClient: true, Client: "c1"}, 4)
	set(quotaEntity{HasUser: true, User: "alice"}, 3)
	set(quotaEntity{HasUser: true, User: "alice", HasClient: true, ClientDefault: true}, 2)
	set(quotaEntity{HasUser: true, User: "alice", HasClient: true, Client: "c1"}, 1)
	for _, c := range []struct {
		user, client string
		want         float64
		sensor       quotaEntity
	}{
		{"alice", "c1", 1, quotaEntity{HasUser: true, User: "alice", HasClient: true, Client: "c1"}},
		{"alice", "c2", 2, quotaEntity{HasUser: true, User: "alice", HasClient: true, Client: "c2"}},
		{"bob", "c1", 4, quotaEntity{HasUser: true, User: "bob", HasClient: true, Client: "c1"}},
		{"bob", "c2", 5, quotaEntity{HasUser: true, User: "bob", HasClient: true, Client: "c2"}},
	} {
		v, s, ok := q.resolve(c.user, c.client, quotaProduce)
		if !ok || v != c.want || s != c.sensor {
			t.Errorf("%s/%s: %v %+v %v, want %v %+v", c.user, c.client, v, s, ok, c.want, c.sensor)
		}
	}
	// Without the user+client entries, the user's own quota, then the
	// default user's, then the client's.
	q.apply(metaQuota{Entity: quotaEntity{HasUser: true, User: "alice", HasClient: true, Client: "c1"}, Key: quotaProduce, Remove: true})
	q.apply(metaQuota{Entity: quotaEntity{HasUser: true, User: "alice", HasClient: true, ClientDefault: true}, Key: quotaProduce, Remove: true})
	if v, s, _ := q.resolve("alice", "c1", quotaProduce); v != 3 || s != (quotaEntity{HasUser: true, User: "alice"}) {
		t.Errorf("alice/c1 after removals: %v %+v, want 3 counted for the user", v, s)
	}
	if _, _, ok := q.resolve("alice", "c1", quotaConsume); ok {
		t.Error("a key nobody set resolved")
	}
}

// TestQuotaBucket: a second's worth passes, then the debt is the delay.
func TestQuotaBucket(t *testing.T) {
	var tr quotaTracker
	s := quotaSensor{key: quotaProduce}
	now := time.Unix(1000, 0)
	if d := tr.record(s, 1000, 1000, now, 0); d != 0 {
		t.Fatalf("the first second's worth was delayed %v", d)
	}
	if d := tr.record(s, 1000, 500, now, 0); d != 500*time.Millisecond {
		t.Fatalf("500 bytes over a 1000 B/s quota: %v, want 500ms", d)
	}
	if d := tr.record(s, 1000, 0, now.Add(time.Second), 0); d != 0 {
		t.Fatalf("after the debt drained: %v", d)
	}
	// A byte rate's throttle is the whole debt (Kafka caps only the
	// request quota's, at its window).
	if d := tr.record(s, 1000, 100_000, now.Add(2*time.Second), 0); d != 99*time.Second {
		t.Fatalf("100 KB at 1000 B/s: %v, want 99s", d)
	}
	r := quotaSensor{key: quotaRequest}
	if d := tr.record(r, 1000, 100_000, now, requestQuotaBound); d != requestQuotaBound {
		t.Fatalf("request quota: %v, want the bound %v", d, requestQuotaBound)
	}
	// unrecord gives bytes back, up to a full bucket.
	c := quotaSensor{key: quotaConsume}
	tr.record(c, 1000, 1000, now, 0)
	tr.unrecord(c, 1000, 600)
	if d := tr.record(c, 1000, 600, now, 0); d != 0 {
		t.Fatalf("after giving 600 back: %v", d)
	}
	tr.unrecord(c, 1000, 1e6)
	if d := tr.record(c, 1000, 1001, now, 0); d != time.Millisecond {
		t.Fatalf("a refund beyond the bucket: %v, want 1ms", d)
	}
}

// Bad AlterClientQuotas entries get INVALID_REQUEST with a message, each
// on its own, and change nothing; a good entry in the same request goes
// through.
func TestAlterClientQuotasRefusals(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	ctx := testCtx(t)
	str := func(s string) *string { return &s }
	type ent = kmsg.AlterClientQuotasRequestEntryEntity
	type op = kmsg.AlterClientQuotasRequestEntryOp
	entry := func(ents []ent, ops ...op) kmsg.AlterClientQuotasRequestEntry {
		return kmsg.AlterClientQuotasRequestEntry{Entity: ents, Ops: ops}
	}
	user := func(n string) ent { return ent{Type: "user", Name: str(n)} }
	set := func(k string, v float64) op { return op{Key: k, Value: v} }
	bad := []kmsg.AlterClientQuotasRequestEntry{
		entry([]ent{user("a")}, set("no_such_quota", 10)),
		entry([]ent{user("a")}, set("producer_byte_rate", 0)),
		entry([]ent{user("a")}, set("producer_byte_rate", -5)),
		entry([]ent{{Type: "ip", Name: str("not an ip!")}}, set("connection_creation_rate", 5)),
		entry([]ent{user("a")}, set("producer_byte_rate", 1.5)),                                 // LONG: integral
		entry([]ent{{Type: "ip", Name: str("10.0.0.2")}}, set("connection_creation_rate", 3e9)), // INT
		entry([]ent{user("a")}, set("consumer_byte_rate", 5), set("consumer_byte_rate", 6)),
		entry([]ent{user("")}, set("producer_byte_rate", 5)),
		entry([]ent{{Type: "ip", Name: str("10.0.0.1")}}, set("producer_byte_rate", 5)),
		entry([]ent{user("a"), {Type: "ip", Name: str("10.0.0.1")}}, set("connection_creation_rate", 5)),
		entry([]ent{{Type: "no-such-entity", Name: str("x")}}, set("producer_byte_rate", 5)),
		entry(nil, set("producer_byte_rate", 5)),
	}
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Entries = append(bad, entry([]ent{user("good")}, set("producer_byte_rate", 1024),
		set("controller_mutation_rate", 0.5), set("request_percentage", 12.5), op{Key: "never_set", Remove: true}))
	kresp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(kresp.Entries) != len(req.Entries) {
		t.Fatalf("%d answers for %d entries", len(kresp.Entries), len(req.Entries))
	}
	for i, e := range kresp.Entries[:len(bad)] {
		if e.ErrorCode != kerr.InvalidRequest.Code || e.ErrorMessage == nil || *e.ErrorMessage == "" {
			t.Errorf("entry %d %+v: code %d message %v, want INVALID_REQUEST with a message", i, req.Entries[i], e.ErrorCode, e.ErrorMessage)
		}
	}
	if e := kresp.Entries[len(bad)]; e.ErrorCode != 0 {
		t.Fatalf("the good entry: code %d", e.ErrorCode)
	}
	dreq := kmsg.NewPtrDescribeClientQuotasRequest()
	dresp, err := dreq.RequestWith(ctx, c)
	if err != nil || dresp.ErrorCode != 0 {
		t.Fatalf("describe: %v %+v", err, dresp)
	}
	if len(dresp.Entries) != 1 || len(dresp.Entries[0].Entity) != 1 || *dresp.Entries[0].Entity[0].Name != "good" || len(dresp.Entries[0].Values) != 3 {
		t.Fatalf("quotas after the refusals: %+v, want only user good's three", dresp.Entries)
	}
	// An IPv6 address is kept in the form a client's address takes.
	req.Entries = []kmsg.AlterClientQuotasRequestEntry{entry([]ent{{Type: "ip", Name: str("2001:DB8:0::1")}}, set("connection_creation_rate", 5))}
	if kresp, err := req.RequestWith(ctx, c); err != nil || kresp.Entries[0].ErrorCode != 0 {
		t.Fatalf("ip quota: %v %+v", err, kresp)
	}
	dreq.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "ip", MatchType: 0, Match: str("2001:db8::1")}}
	if dresp, err := dreq.RequestWith(ctx, c); err != nil || len(dresp.Entries) != 1 || *dresp.Entries[0].Entity[0].Name != "2001:db8::1" {
		t.Fatalf("describe the ip quota: %v %+v", err, dresp)
	}
	// Describe filters Kafka refuses.
	for _, comps := range [][]kmsg.DescribeClientQuotasRequestComponent{
		{{EntityType: "user", MatchType: 1, Match: str("x")}},
		{{EntityType: "user", MatchType: 2, Match: str("x")}},
		{{EntityType: "user", MatchType: -1}},
		{{EntityType: "ip", MatchType: 2}, {EntityType: "user", MatchType: 2}},
	} {
		dreq.Components = comps
		if dresp, err := dreq.RequestWith(ctx, c); err != nil || dresp.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("describe %+v: %v %+v, want INVALID_REQUEST", comps, err, dresp)
		}
	}
	dreq.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "topic", MatchType: 2}}
	if dresp, err := dreq.RequestWith(ctx, c); err != nil || dresp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("describe an unknown entity type: %v %+v, want UNSUPPORTED_VERSION", err, dresp)
	}
}

// TestThrottledFetchIsEmpty: as Kafka, a fetch over consumer_byte_rate
// is answered with throttle_time_ms and no records (its bytes go back on
// the quota), and a fetch reads at most what the quota holds, so a
// consumer moves at its rate rather than a whole fetch per throttle.
func TestThrottledFetchIsEmpty(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	if _, err := tb.b.createTopic("q", 1, -1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := tb.client(kgo.DefaultProduceTopic("q"))
	ctx := testCtx(t)
	for i := range 50 {
		if err := c.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 1000), Key: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	const rate = 5000
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	aq.Entries = []kmsg.AlterClientQuotasRequestEntry{{
		Entity: []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: kmsg.StringPtr("test")}},
		Ops:    []kmsg.AlterClientQuotasRequestEntryOp{{Key: quotaConsume, Value: rate}},
	}}
	if r, err := aq.RequestWith(ctx, c); err != nil || r.Entries[0].ErrorCode != 0 {
		t.Fatalf("AlterClientQuotas: %v %+v", err, r)
	}
	rc := dialRaw(t, tb.addr) // client id "test"
	fetch := func(offset int64) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "q"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = offset, 1<<20, -1
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		return rc.request(req).(*kmsg.FetchResponse)
	}
	first := fetch(0)
	n := len(first.Topics[0].Partitions[0].RecordBatches)
	if first.ThrottleMillis != 0 || n == 0 || n > rate+1100 {
		t.Fatalf("first fetch: throttle %d ms, %d bytes (want unthrottled, at most about %d)", first.ThrottleMillis, n, rate)
	}
	second := fetch(0)
	if second.ThrottleMillis <= 0 || len(second.Topics) != 0 {
		t.Fatalf("second fetch at once: throttle %d ms, %d topics; want throttled and empty", second.ThrottleMillis, len(second.Topics))
	}
	// Muted for the throttle, then served again: the bytes given back
	// leave a full quota.
	third := fetch(0)
	if got := len(third.Topics); got != 1 || len(third.Topics[0].Partitions[0].RecordBatches) != n {
		t.Fatalf("after the throttle: %d topics, want the same %d bytes again (throttle %d)", got, n, third.ThrottleMillis)
	}
}
