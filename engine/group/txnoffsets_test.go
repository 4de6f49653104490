package group

import (
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func txnCommit(c *Coordinator, group string, pid int64, gen int32, member string, offs map[int32]int64) *kmsg.TxnOffsetCommitResponse {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = 3
	r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch = "tx", group, pid, 0
	r.Generation, r.MemberID = gen, member
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p, o := range offs {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return call[*kmsg.TxnOffsetCommitResponse](func(f Respond) { c.TxnOffsetCommit(r, f) })
}

func fetchStable(c *Coordinator, group string, stable bool, p int32) kmsg.OffsetFetchResponseTopicPartition {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version, r.Group, r.RequireStable = 7, group, stable
	r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{p}}}
	resp := call[*kmsg.OffsetFetchResponse](func(f Respond) { c.OffsetFetch(r, f) })
	return resp.Topics[0].Partitions[0]
}

func plainCommit(c *Coordinator, group string, p int32, o int64) {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version, r.Group, r.Generation = 7, group, -1
	r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: p, Offset: o, LeaderEpoch: -1}}}}
	call[*kmsg.OffsetCommitResponse](func(f Respond) { c.OffsetCommit(r, f) })
}

// TestTxnOffsets: a transaction's offsets are invisible until its commit
// marker, UNSTABLE_OFFSET_COMMIT meanwhile for RequireStable, dropped by
// an abort, and never replace a plain commit made after them.
func TestTxnOffsets(t *testing.T) {
	c, _ := newTestCoordinator(t, TopicMeta{Name: "t", Partitions: 3})
	part := PartitionFor("g", c.Partitions())
	want := func(p int32, stable bool, off int64, code int16) {
		t.Helper()
		got := fetchStable(c, "g", stable, p)
		if got.Offset != off || got.ErrorCode != code {
			t.Fatalf("partition %d stable=%v: offset %d %v, want %d %v", p, stable, got.Offset, kerr.ErrorForCode(got.ErrorCode), off, kerr.ErrorForCode(code))
		}
	}
	plainCommit(c, "g", 0, 5)
	resp := txnCommit(c, "g", 7, -1, "", map[int32]int64{0: 10, 1: 20})
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(p.ErrorCode))
		}
	}
	want(0, false, 5, 0)
	want(0, true, -1, kerr.UnstableOffsetCommit.Code)
	want(1, true, -1, kerr.UnstableOffsetCommit.Code)
	want(2, true, -1, 0)
	c.CompleteTxn(part+1, 7, true) // another partition's marker: nothing
	want(0, true, -1, kerr.UnstableOffsetCommit.Code)
	c.CompleteTxn(part, 7, true)
	want(0, true, 10, 0)
	want(1, true, 20, 0)

	// Aborted: dropped.
	txnCommit(c, "g", 8, -1, "", map[int32]int64{0: 30})
	c.CompleteTxn(part, 8, false)
	want(0, true, 10, 0)

	// A plain commit after the transactional one wins at commit time.
	txnCommit(c, "g", 9, -1, "", map[int32]int64{1: 40})
	plainCommit(c, "g", 1, 41)
	c.CompleteTxn(part, 9, true)
	want(1, true, 41, 0)

	// A member and generation given must match (KIP-447); none is accepted.
	if r := txnCommit(c, "g", 9, 3, "nobody", map[int32]int64{0: 1}); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	if r := txnCommit(c, "new", 9, 3, "", map[int32]int64{0: 1}); r.Topics[0].Partitions[0].ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("unknown group with a generation: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	// A member of the group naming a static instance the group does not
	// have: UNKNOWN_MEMBER_ID, as Kafka's validateMember.
	j := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g2", "", 10000), "c", "/h", rf) })
	j = call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g2", j.MemberID, 10000), "c", "/h", rf) })
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = 3
	r.TransactionalID, r.Group, r.ProducerID, r.Generation, r.MemberID = "tx", "g2", 9, j.Generation, j.MemberID
	r.InstanceID = kmsg.StringPtr("no-such-instance")
	r.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	if code := call[*kmsg.TxnOffsetCommitResponse](func(f Respond) { c.TxnOffsetCommit(r, f) }).Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown instance id: %v", kerr.ErrorForCode(code))
	}
	r.InstanceID = nil
	if code := call[*kmsg.TxnOffsetCommitResponse](func(f Respond) { c.TxnOffsetCommit(r, f) }).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("the member without an instance id: %v", kerr.ErrorForCode(code))
	}
}

// TestTxnOffsetsReplay: pending offsets come back from the log and the
// markers found there settle them; a transaction without a marker stays
// pending.
func TestTxnOffsetsReplay(t *testing.T) {
	c := New(DefaultConfig(), &fakeBackend{topics: map[string]TopicMeta{"t": {Name: "t", Partitions: 2}}}, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer c.Close()
	part := PartitionFor("g", 4)
	rec := func(p int32, off int64) Record { return commitRecord(t, "g", "t", p, off) }
	replay := func(r Record, pid int64) {
		t.Helper()
		var err error
		if pid < 0 {
			err = c.Replay(r.Key, r.Value)
		} else {
			err = c.ReplayTxn(r.Key, r.Value, pid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	replay(rec(0, 1), -1)
	replay(rec(0, 2), 5) // committed below
	replay(rec(1, 3), 6) // aborted below
	replay(rec(1, 4), 7) // never settled
	c.ReplayMarker(part, 5, true)
	c.ReplayMarker(part, 6, false)
	c.Loaded()
	if got := fetchStable(c, "g", true, 0); got.Offset != 2 || got.ErrorCode != 0 {
		t.Fatalf("partition 0: %+v", got)
	}
	if got := fetchStable(c, "g", true, 1); got.ErrorCode != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("partition 1 with an open transaction: %+v", got)
	}
	c.CompleteTxn(part, 7, true)
	if got := fetchStable(c, "g", true, 1); got.Offset != 4 || got.ErrorCode != 0 {
		t.Fatalf("partition 1 after the commit: %+v", got)
	}
	if err := c.ReplayTxn([]byte{0, 1, 0xff}, []byte{1}, 5); err == nil {
		t.Fatal("a broken key replayed")
	}
}

// TestCommitsCompleteOutOfOrder: appends complete on goroutines of their
// own, so a client's pipelined commits of one partition (librdkafka's
// async commits, its 0030 test) may complete in either order; the later
// commit stays, plain or transactional, as Kafka keeps the one further in
// its log.
func TestCommitsCompleteOutOfOrder(t *testing.T) {
	c, be := newTestCoordinator(t, TopicMeta{Name: "t", Partitions: 1})
	be.hold = true
	answered := make(chan struct{}, 4)
	commit := func(o int64) {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Version, r.Group, r.Generation = 7, "g", -1
		r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: o, LeaderEpoch: -1}}}}
		c.OffsetCommit(r, func(kmsg.Response) { answered <- struct{}{} })
	}
	release := func(order ...int) {
		t.Helper()
		be.mu.Lock()
		held := be.held
		be.held = nil
		be.mu.Unlock()
		if len(held) != len(order) {
			t.Fatalf("%d appends held, want %d", len(held), len(order))
		}
		for _, i := range order {
			held[i](nil) // in turn: the later append completes first
			<-answered
		}
	}
	commit(49)
	commit(50)
	release(1, 0)
	if got := fetchStable(c, "g", false, 0); got.Offset != 50 {
		t.Fatalf("committed 49 then 50, completed in reverse: fetch gives %d", got.Offset)
	}
	// In a transaction: its pending offsets keep the later commit too.
	txn := func(o int64) {
		r := kmsg.NewPtrTxnOffsetCommitRequest()
		r.Version = 3
		r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch, r.Generation = "tx", "g", 7, 0, -1
		r.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: o, LeaderEpoch: -1}}}}
		c.TxnOffsetCommit(r, func(kmsg.Response) { answered <- struct{}{} })
	}
	txn(60)
	txn(61)
	release(1, 0)
	c.CompleteTxn(PartitionFor("g", c.Partitions()), 7, true)
	if got := fetchStable(c, "g", false, 0); got.Offset != 61 {
		t.Fatalf("transactional 60 then 61, completed in reverse, committed: fetch gives %d", got.Offset)
	}
}

// TestOffsetDeleteKeepsLaterCommit: an OffsetDelete whose tombstone
// completes after a commit appended behind it leaves that commit.
func TestOffsetDeleteKeepsLaterCommit(t *testing.T) {
	c, be := newTestCoordinator(t, TopicMeta{Name: "t", Partitions: 1})
	plainCommit(c, "g", 0, 5)
	be.hold = true
	answered := make(chan struct{}, 2)
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	c.OffsetDelete(del, func(kmsg.Response) { answered <- struct{}{} })
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version, r.Group, r.Generation = 7, "g", -1
	r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9, LeaderEpoch: -1}}}}
	c.OffsetCommit(r, func(kmsg.Response) { answered <- struct{}{} })
	be.mu.Lock()
	held := be.held
	be.mu.Unlock()
	if len(held) != 2 {
		t.Fatalf("%d appends held, want the tombstone and the commit", len(held))
	}
	held[1](nil) // the commit first
	<-answered
	held[0](nil)
	<-answered
	if got := fetchStable(c, "g", false, 0); got.Offset != 9 {
		t.Fatalf("a commit appended after the delete's tombstone: fetch gives %d, want 9", got.Offset)
	}
}
