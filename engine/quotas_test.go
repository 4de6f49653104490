package engine

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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
	if d := tr.record(s, 1000, 1000, now); d != 0 {
		t.Fatalf("the first second's worth was delayed %v", d)
	}
	if d := tr.record(s, 1000, 500, now); d != 500*time.Millisecond {
		t.Fatalf("500 bytes over a 1000 B/s quota: %v, want 500ms", d)
	}
	if d := tr.record(s, 1000, 0, now.Add(time.Second)); d != 0 {
		t.Fatalf("after the debt drained: %v", d)
	}
	if d := tr.record(s, 1, 1e9, now.Add(2*time.Second)); d != maxThrottle {
		t.Fatalf("a huge debt: %v, want the cap %v", d, maxThrottle)
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
		entry([]ent{{Type: "ip", Name: str("not-an-ip")}}, set("connection_creation_rate", 5)),
		entry([]ent{{Type: "ip", Name: str("10.0.0.1")}}, set("producer_byte_rate", 5)),
		entry([]ent{user("a"), {Type: "ip", Name: str("10.0.0.1")}}, set("connection_creation_rate", 5)),
		entry([]ent{{Type: "no-such-entity", Name: str("x")}}, set("producer_byte_rate", 5)),
		entry(nil, set("producer_byte_rate", 5)),
	}
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Entries = append(bad, entry([]ent{user("good")}, set("producer_byte_rate", 1024)))
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
	if len(dresp.Entries) != 1 || len(dresp.Entries[0].Entity) != 1 || *dresp.Entries[0].Entity[0].Name != "good" {
		t.Fatalf("quotas after the refusals: %+v, want only user good's", dresp.Entries)
	}
}
