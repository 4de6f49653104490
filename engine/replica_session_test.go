package engine

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The standby's fetch session on the primary (KIP-227, as Kafka's
// followers keep one): a full fetch opens it; later fetches list only
// what moved and get only the partitions with something new; a wrong
// session id or epoch is refused; another replica id cannot replace it;
// forgotten partitions are no longer answered. The test speaks for the
// standby over a raw connection.
func TestReplicaFetchSession(t *testing.T) {
	p := &pair{primaryAddr: reserveAddr(t), standbyAddr: reserveAddr(t), primaryDir: t.TempDir(), standbyDir: t.TempDir(), minISR: 1}
	p.startPrimary(t)
	cl := p.primary.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(testCtx(t), 3, 2, nil, "s"); err != nil {
		t.Fatal(err)
	}
	id := p.primary.b.topic("s").id
	produceTo := func(part int32) {
		t.Helper()
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "s", Partition: part, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, p.primaryAddr)
	fetch := func(replica, sessID, epoch int32, parts map[int32]int64, forget ...int32) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(13)
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = replica, 50, 1, 1<<20
		req.SessionID, req.SessionEpoch = sessID, epoch
		if len(parts) > 0 {
			rt := kmsg.FetchRequestTopic{TopicID: id}
			for _, part := range slices.Sorted(maps.Keys(parts)) {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, parts[part], 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = []kmsg.FetchRequestTopic{rt}
		}
		if len(forget) > 0 {
			req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{TopicID: id, Partitions: forget}}
		}
		return rc.request(req).(*kmsg.FetchResponse)
	}
	// answered is each partition answered: whether it carried records,
	// and its error.
	type answer struct {
		records bool
		code    int16
	}
	answered := func(resp *kmsg.FetchResponse) map[int32]answer {
		got := map[int32]answer{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				got[rp.Partition] = answer{len(rp.RecordBatches) > 0, rp.ErrorCode}
			}
		}
		return got
	}

	resp := fetch(2, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0})
	sess := resp.SessionID
	if resp.ErrorCode != 0 || sess == 0 || len(answered(resp)) != 3 {
		t.Fatalf("full fetch: %v, session %d, answered %v; want a session and all 3 partitions", kerr.ErrorForCode(resp.ErrorCode), sess, answered(resp))
	}

	produceTo(1)
	resp = fetch(2, sess, 1, nil)
	if got := answered(resp); resp.ErrorCode != 0 || resp.SessionID != sess || len(got) != 1 || !got[1].records {
		t.Fatalf("incremental fetch listing nothing: %v, session %d, answered %v; want partition 1 alone, with its record",
			kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, got)
	}

	if resp = fetch(2, sess, 1, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("an epoch already used: %v, want INVALID_FETCH_SESSION_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp = fetch(2, sess+1, 2, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("an unknown session: %v, want FETCH_SESSION_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
	// Another replica id is refused partition by partition and does not
	// replace the standby's session.
	resp = fetch(3, 0, 0, map[int32]int64{0: 0})
	if got := answered(resp); resp.SessionID != 0 || got[0].code != kerr.UnknownServerError.Code {
		t.Fatalf("a fetch from replica 3: session %d, answered %v; want no session and UNKNOWN_SERVER_ERROR", resp.SessionID, got)
	}

	// Partition 1 acknowledged at its new end, partition 2 forgotten.
	resp = fetch(2, sess, 2, map[int32]int64{1: 1}, 2)
	if resp.ErrorCode != 0 {
		t.Fatalf("incremental fetch after replica 3's: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if hw := p.primary.b.partition("s", 1).replica.HighWatermark(); hw != 1 {
		t.Fatalf("partition 1's high watermark is %d after the standby's fetch at 1, want 1", hw)
	}
	produceTo(2)
	produceTo(0)
	resp = fetch(2, sess, 3, nil)
	if got := answered(resp); resp.ErrorCode != 0 || len(got) != 1 || !got[0].records {
		t.Fatalf("after records in partitions 0 and 2 (forgotten): %v, answered %v; want partition 0 alone", kerr.ErrorForCode(resp.ErrorCode), got)
	}
}

// A real pair keeps its copies byte for byte through what moves the
// standby's session: topics deleted (forgotten), created again under the
// same name (a new id), partitions added, and the primary restarted (the
// session lost with it, and a new one opened).
func TestStandbyFollowsThroughSessionChanges(t *testing.T) {
	p := startPair(t)
	cl := p.primary.client()
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := adm.CreateTopics(ctx, 2, 2, nil, "a", "b")
	must("create", err)
	produceKeyed(t, cl, "a", 0, 300)
	produceKeyed(t, cl, "b", 0, 300)
	p.waitCaughtUp(t)
	sessionEpoch := func() int32 {
		b := p.primary.b
		b.replicaSessMu.Lock()
		defer b.replicaSessMu.Unlock()
		if b.replicaSess == nil {
			return 0
		}
		b.replicaSess.mu.Lock()
		defer b.replicaSess.mu.Unlock()
		return b.replicaSess.epoch
	}
	if e := sessionEpoch(); e < 2 {
		t.Fatalf("the standby's session is at epoch %d after its catch-up: its fetches are not incremental", e)
	}

	_, err = adm.DeleteTopics(ctx, "a")
	must("delete", err)
	_, err = adm.CreateTopics(ctx, 3, 2, nil, "a") // the same name, a new id
	must("create again", err)
	_, err = adm.UpdatePartitions(ctx, 4, "b")
	must("add partitions", err)
	// franz-go fails a topic recreated under a client that produced to it
	// (it keeps the old id): a new client.
	cl = p.primary.client()
	produceKeyed(t, cl, "a", 300, 300)
	produceKeyed(t, cl, "b", 300, 300)
	p.waitCaughtUp(t)
	p.sameLogs(t)

	p.primary.stop()
	p.startPrimary(t)
	cl = p.primary.client()
	waitFor(t, "the standby to follow the restarted primary", 20*time.Second, func() bool { return sessionEpoch() >= 2 })
	produceKeyed(t, cl, "a", 600, 300)
	produceKeyed(t, cl, "b", 600, 300)
	p.waitCaughtUp(t)
	p.sameLogs(t)
}
