package engine

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchSessions walks a session through KIP-227's cases for every
// Fetch version that has sessions.
func TestFetchSessions(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.FetchSessionSlots = 2 })
	prod := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("fs"))
	createTopic(t, prod, "fs", 3, nil)
	id := tb.b.topic("fs").id
	rc := dialRaw(t, tb.addr)
	produce := func(p int32) {
		t.Helper()
		if err := prod.ProduceSync(testCtx(t), &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for v := int16(7); v <= 18; v++ {
		end := func(p int32) int64 { return tb.b.partition("fs", p).log.EndOffset() }
		fetch := func(sid, epoch int32, parts map[int32]int64, forget []int32) *kmsg.FetchResponse {
			t.Helper()
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(v)
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
			req.SessionID, req.SessionEpoch = sid, epoch
			if len(parts) > 0 {
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic, rt.TopicID = "fs", id
				for p := int32(0); p < 3; p++ {
					if off, ok := parts[p]; ok {
						rp := kmsg.NewFetchRequestTopicPartition()
						rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
						rt.Partitions = append(rt.Partitions, rp)
					}
				}
				req.Topics = append(req.Topics, rt)
			}
			if len(forget) > 0 {
				req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "fs", TopicID: id, Partitions: forget}}
			}
			return rc.request(req).(*kmsg.FetchResponse)
		}
		// got lists partition -> number of record bytes in the response.
		got := func(resp *kmsg.FetchResponse) map[int32]int {
			t.Helper()
			if resp.ErrorCode != 0 {
				t.Fatalf("v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
			}
			m := map[int32]int{}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode != 0 {
						t.Fatalf("v%d partition %d: %v", v, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
					}
					m[rp.Partition] = len(rp.RecordBatches)
				}
			}
			return m
		}
		want := func(step string, m map[int32]int, parts ...int32) {
			t.Helper()
			if len(m) != len(parts) {
				t.Fatalf("v%d %s: partitions %v, want %v", v, step, m, parts)
			}
			for _, p := range parts {
				if _, ok := m[p]; !ok {
					t.Fatalf("v%d %s: partitions %v, want %v", v, step, m, parts)
				}
			}
		}
		produce(0)
		all := map[int32]int64{0: end(0) - 1, 1: end(1), 2: end(2)}
		// A full fetch opening a session answers every partition.
		resp := fetch(0, 0, all, nil)
		sid := resp.SessionID
		if sid == 0 {
			t.Fatalf("v%d: no session created", v)
		}
		m := got(resp)
		want("full", m, 0, 1, 2)
		if m[0] == 0 {
			t.Fatalf("v%d: full fetch without partition 0's record", v)
		}
		// Nothing new: an empty incremental response.
		want("idle", got(fetch(sid, 1, map[int32]int64{0: end(0)}, nil)))
		// A new record on partition 1: only it comes back.
		produce(1)
		m = got(fetch(sid, 2, nil, nil))
		want("news on 1", m, 1)
		if m[1] == 0 {
			t.Fatalf("v%d: partition 1 without records", v)
		}
		// The client moved on: no news.
		want("moved on", got(fetch(sid, 3, map[int32]int64{1: end(1)}, nil)))
		// Forgotten partitions are not reported, even with news.
		want("forget", got(fetch(sid, 4, nil, []int32{2})))
		produce(2)
		want("forgotten news", got(fetch(sid, 5, nil, nil)))
		// Adding it back reports it.
		m = got(fetch(sid, 6, map[int32]int64{2: end(2) - 1}, nil))
		want("added back", m, 2)
		// Wrong epoch, unknown session.
		if resp := fetch(sid, 9, nil, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
			t.Fatalf("v%d: wrong epoch: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp := fetch(sid^0x5a5a, 1, nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("v%d: unknown session: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		// The session survived the bad requests: epoch 7 is next. The
		// client has not moved past partition 2's record, so it comes
		// again until it does.
		want("after errors", got(fetch(sid, 7, nil, nil)), 2)
		want("caught up", got(fetch(sid, 8, map[int32]int64{2: end(2)}, nil)))
		// Closing (epoch -1) is a sessionless full fetch.
		resp = fetch(sid, -1, all, nil)
		want("close", got(resp), 0, 1, 2)
		if resp.SessionID != 0 {
			t.Fatalf("v%d: close answered session %d", v, resp.SessionID)
		}
		if resp := fetch(sid, 9, nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("v%d: closed session: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	// The cache holds two sessions; a third is refused (id 0) while both
	// are fresh, and the client goes on with full fetches.
	for i := range 3 {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(18)
		req.MaxBytes, req.SessionEpoch = 1<<20, 0
		resp := rc.request(req).(*kmsg.FetchResponse)
		if (resp.SessionID != 0) != (i < 2) {
			t.Fatalf("session %d: id %d", i, resp.SessionID)
		}
	}
}

// TestFetchSessionsWithKgo: franz-go uses sessions by default; a consumer
// of 8 partitions reads everything through incremental fetches.
func TestFetchSessionsWithKgo(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	p := tb.client(kgo.DefaultProduceTopic("fsk"))
	createTopic(t, p, "fsk", 8, nil)
	const n = 3000
	for round := range 3 {
		var rs []*kgo.Record
		for i := range n / 3 {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(i % 50)), Value: []byte(fmt.Sprint(round, "-", i))})
		}
		if err := p.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := consumeAll(t, tb, "fsk", n)
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("record %s consumed twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
	tb.b.sessions.mu.Lock()
	sessions := len(tb.b.sessions.byID)
	tb.b.sessions.mu.Unlock()
	if sessions == 0 {
		t.Fatal("franz-go consumed without a fetch session")
	}
}

// TestFetchSessionEdges: epochs below -1, a session used across the v12/v13
// boundary (topic names vs ids), and a session forgotten down to nothing
// get Kafka's answers.
func TestFetchSessionEdges(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	createTopic(t, tb.client(), "fe", 1, nil)
	id := tb.b.topic("fe").id
	rc := dialRaw(t, tb.addr)
	fetch := func(v int16, sid, epoch int32, add, forget bool) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(v)
		req.MaxBytes, req.MinBytes = 1<<20, 1
		req.SessionID, req.SessionEpoch = sid, epoch
		if add {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "fe", id
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		if forget {
			req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "fe", TopicID: id, Partitions: []int32{0}}}
		}
		return rc.request(req).(*kmsg.FetchResponse)
	}
	if resp := fetch(12, 0, -2, true, false); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("epoch -2: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	sid := fetch(12, 0, 0, true, false).SessionID
	if sid == 0 {
		t.Fatal("no session")
	}
	if resp := fetch(13, sid, 1, false, false); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("v12 session used at v13: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// The mismatch did not advance the epoch: 1 is still next.
	resp := fetch(12, sid, 1, false, true)
	if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 0 {
		t.Fatalf("forgotten down to nothing: %v, session %d, %d topics", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, len(resp.Topics))
	}
	if resp := fetch(12, sid, 2, false, false); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("emptied session still there: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}
