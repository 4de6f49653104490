package group

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type rv848 struct {
	t *testing.T
	c *Coordinator
}

type hbOpt struct {
	member, inst string
	epoch        int32
	owned        []int32 // nil: don't send owned
	topicID      [16]byte
	assignor     string
	topics       []string
}

func (h rv848) hb(o hbOpt) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g", o.member, o.epoch, 60000
	if o.inst != "" {
		r.InstanceID = &o.inst
	}
	if o.assignor != "" {
		r.ServerAssignor = &o.assignor
	}
	r.SubscribedTopicNames = o.topics
	if r.SubscribedTopicNames == nil {
		r.SubscribedTopicNames = []string{"t"}
	}
	if o.owned != nil {
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if len(o.owned) > 0 {
			r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: o.topicID, Partitions: o.owned})
		}
	}
	return call[*kmsg.ConsumerGroupHeartbeatResponse](func(rf Respond) { h.c.ConsumerGroupHeartbeat(r, "c", "/h", rf) })
}

// new848 is a coordinator with topic "t" of n partitions, a heartbeat
// helper for group "g", and the topic's id.
func new848(t *testing.T, n int32) (rv848, *Coordinator, [16]byte) {
	tid := [16]byte{9}
	c, _ := newTestCoordinator(t, TopicMeta{Name: "t", ID: tid, Partitions: n})
	return rv848{t, c}, c, tid
}

// hasMember reports whether group "g" has the member.
func (h rv848) hasMember(id string) bool {
	g := h.c.group("g")
	g.lock()
	defer g.unlock()
	_, ok := g.cs.members[id]
	return ok
}

func partsOf(r *kmsg.ConsumerGroupHeartbeatResponse, prev []int32) []int32 {
	if r.Assignment == nil {
		return prev
	}
	out := []int32{}
	for _, at := range r.Assignment.Topics {
		out = append(out, at.Partitions...)
	}
	slices.Sort(out)
	return out
}

// A static member that leaves for a restart (epoch -2) while it still has
// partitions pending revocation: Kafka's consumerGroupStaticMemberGroupLeave
// clears its partitions pending revocation, so the member they go to gets
// them. samsa kept them owned by the departed member and, once the
// member restarts under a new id, by the new member for good: the other
// member never gets them.
func TestConsumerStaticLeaveWhileRevokingFreesPartitions(t *testing.T) {
	h, c, tid := new848(t, 4)
	// A (static) joins alone and owns all 4.
	a := h.hb(hbOpt{member: "member-a", inst: "inst-a", owned: []int32{}, topicID: tid, assignor: "range"})
	aID, aEpoch, aParts := *a.MemberID, a.MemberEpoch, partsOf(a, nil)
	if len(aParts) != 4 {
		t.Fatalf("a owns %v", aParts)
	}
	// B joins: A must revoke two partitions.
	b := h.hb(hbOpt{member: "member-b", owned: []int32{}, topicID: tid, assignor: "range"})
	bEpoch, bParts := b.MemberEpoch, partsOf(b, nil)
	a = h.hb(hbOpt{member: aID, inst: "inst-a", epoch: aEpoch, owned: aParts, topicID: tid, assignor: "range"})
	aParts = partsOf(a, aParts)
	if len(aParts) != 2 {
		t.Fatalf("a should be asked to revoke two: %v", aParts)
	}
	// A leaves for a restart before acknowledging the revocation.
	if r := h.hb(hbOpt{member: aID, inst: "inst-a", epoch: -2, topicID: tid}); r.ErrorCode != 0 {
		t.Fatalf("static leave: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// A restarts with a new member id.
	a2 := h.hb(hbOpt{member: "member-a2", inst: "inst-a", owned: []int32{}, topicID: tid, assignor: "range"})
	if a2.ErrorCode != 0 {
		t.Fatalf("restart: %v", kerr.ErrorForCode(a2.ErrorCode))
	}
	a2ID, a2Epoch, a2Parts := *a2.MemberID, a2.MemberEpoch, partsOf(a2, nil)
	for range 10 {
		r := h.hb(hbOpt{member: "member-b", epoch: bEpoch, owned: bParts, topicID: tid, assignor: "range"})
		if r.ErrorCode != 0 {
			t.Fatalf("b: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		bEpoch, bParts = r.MemberEpoch, partsOf(r, bParts)
		r = h.hb(hbOpt{member: a2ID, inst: "inst-a", epoch: a2Epoch, owned: a2Parts, topicID: tid, assignor: "range"})
		if r.ErrorCode != 0 {
			t.Fatalf("a2: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		a2Epoch, a2Parts = r.MemberEpoch, partsOf(r, a2Parts)
	}
	if len(bParts) != 2 || len(a2Parts) != 2 {
		g := c.group("g")
		g.lock()
		st := g.cs.members["member-b"].state
		g.unlock()
		t.Fatalf("after 10 rounds: b owns %v (state %s), restarted a owns %v; want 2 each", bParts, st, a2Parts)
	}
}

// A consumer-protocol group that has become empty is taken over by a
// classic member (JoinGroup). Kafka's classicGroupJoinToClassicGroup
// calls maybeDeleteEmptyConsumerGroup, writing the consumer group's
// tombstones; samsa dropped its consumer state in memory only, so its
// group-epoch records stayed in __consumer_offsets. At the next load the
// group replayed as a consumer group with no members and the classic
// member's commits failed with UNKNOWN_MEMBER_ID.
func TestClassicTakeoverOfEmptyConsumerGroupSurvivesReload(t *testing.T) {
	tid := [16]byte{9}
	c, be := newTestCoordinator(t, TopicMeta{Name: "t", ID: tid, Partitions: 1})
	h := rv848{t, c}
	a := h.hb(hbOpt{member: "member-a", owned: []int32{}, topicID: tid})
	if a.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(a.ErrorCode))
	}
	if r := h.hb(hbOpt{member: "member-a", epoch: -1}); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	first := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g", "", 10000), "c", "/h", rf) })
	jr := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g", first.MemberID, 10000), "c", "/h", rf) })
	if jr.ErrorCode != 0 {
		t.Fatalf("classic join: %v", kerr.ErrorForCode(jr.ErrorCode))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID, sync.Generation = "g", jr.MemberID, jr.Generation
	if r := call[*kmsg.SyncGroupResponse](func(rf Respond) { c.SyncGroup(sync, rf) }); r.ErrorCode != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	time.Sleep(50 * time.Millisecond) // appends complete
	// Reload from the log (a broker restart).
	c2 := New(c.cfg, be, 4, c.logger)
	be.mu.Lock()
	for _, recs := range be.recs {
		for _, r := range recs {
			if err := c2.Replay(r.Key, r.Value); err != nil {
				be.mu.Unlock()
				t.Fatal(err)
			}
		}
	}
	be.mu.Unlock()
	c2.Loaded()
	defer c2.Close()
	g := c2.group("g")
	g.lock()
	typ := g.typ
	g.unlock()
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 8
	commit.Group, commit.MemberID, commit.Generation = "g", jr.MemberID, jr.Generation
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}}}
	r := call[*kmsg.OffsetCommitResponse](func(rf Respond) { c2.OffsetCommit(commit, rf) })
	if code := r.Topics[0].Partitions[0].ErrorCode; typ != typeClassic || code != 0 {
		t.Fatalf("after reload the group is type %d (classic is %d); the classic member's commit: %v", typ, typeClassic, kerr.ErrorForCode(code))
	}
}

// A static member leaves with epoch -2 and rejoins (epoch 0) with the
// same member id and instance id, as a Java consumer (which keeps its
// member id for its lifetime) does on unsubscribe/subscribe. Kafka's
// getOrMaybeSubscribeStaticConsumerGroupMember finds the instance id
// released (epoch -2), copies the member with epoch 0 and keeps its
// partitions, with no new group epoch. samsa removed the member and added
// it again: two group epochs, and a rebalance of every member.
func TestConsumerStaticRejoinSameIDAfterLeave(t *testing.T) {
	h, c, tid := new848(t, 4)
	a := h.hb(hbOpt{member: "member-a", inst: "inst-a", owned: []int32{}, topicID: tid, assignor: "range"})
	aEpoch, aParts := a.MemberEpoch, partsOf(a, nil)
	b := h.hb(hbOpt{member: "member-b", inst: "inst-b", owned: []int32{}, topicID: tid, assignor: "range"})
	bEpoch, bParts := b.MemberEpoch, partsOf(b, nil)
	for range 4 {
		r := h.hb(hbOpt{member: "member-a", inst: "inst-a", epoch: aEpoch, owned: aParts, topicID: tid})
		aEpoch, aParts = r.MemberEpoch, partsOf(r, aParts)
		r = h.hb(hbOpt{member: "member-b", inst: "inst-b", epoch: bEpoch, owned: bParts, topicID: tid})
		bEpoch, bParts = r.MemberEpoch, partsOf(r, bParts)
	}
	groupEpoch := func() int32 {
		g := c.group("g")
		g.lock()
		defer g.unlock()
		return g.cs.epoch
	}
	before := groupEpoch()
	if r := h.hb(hbOpt{member: "member-a", inst: "inst-a", epoch: -2}); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	back := h.hb(hbOpt{member: "member-a", inst: "inst-a", owned: []int32{}, topicID: tid, assignor: "range"})
	if back.ErrorCode != 0 || groupEpoch() != before || !slices.Equal(partsOf(back, nil), aParts) {
		t.Fatalf("rejoin after -2 with the same id: %v, group epoch %d (was %d), partitions %v (had %v)",
			kerr.ErrorForCode(back.ErrorCode), groupEpoch(), before, partsOf(back, nil), aParts)
	}
}

// TestConsumerHeartbeatRefusesWhatKafkaRefuses: an empty InstanceId or
// RackId, and a -2 leave with no InstanceId (only a static member leaves
// for a restart), are INVALID_REQUEST, as Kafka's
// throwIfConsumerGroupHeartbeatRequestIsInvalid; samsa took them (found by
// review).
func TestConsumerHeartbeatRefusesWhatKafkaRefuses(t *testing.T) {
	h, c, tid := new848(t, 4)
	if r := h.hb(hbOpt{member: "member-a", owned: []int32{}, topicID: tid}); r.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	empty := ""
	for name, mod := range map[string]func(*kmsg.ConsumerGroupHeartbeatRequest){
		"empty InstanceId":      func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = &empty },
		"empty RackId":          func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = &empty },
		"-2 with no InstanceId": func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 },
	} {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version = 1
		r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g", "member-a", 1, 60000
		mod(r)
		resp := call[*kmsg.ConsumerGroupHeartbeatResponse](func(rf Respond) { c.ConsumerGroupHeartbeat(r, "c", "/h", rf) })
		if resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("%s: %v, want INVALID_REQUEST", name, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	if !h.hasMember("member-a") {
		t.Fatal("a refused -2 removed the dynamic member")
	}
}

// TestConsumerZombieStaticLeaveFenced: a static member replaced by a
// restart (a new member id under its instance id) that then leaves gets
// FENCED_INSTANCE_ID, as Kafka's consumerGroupLeave, and the member now
// holding the instance id stays; it got UNKNOWN_MEMBER_ID (found by
// review).
func TestConsumerZombieStaticLeaveFenced(t *testing.T) {
	h, _, tid := new848(t, 4)
	if r := h.hb(hbOpt{member: "old", inst: "inst-a", owned: []int32{}, topicID: tid}); r.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := h.hb(hbOpt{member: "old", inst: "inst-a", epoch: -2, topicID: tid}); r.ErrorCode != 0 {
		t.Fatalf("leave for a restart: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := h.hb(hbOpt{member: "new", inst: "inst-a", owned: []int32{}, topicID: tid}); r.ErrorCode != 0 {
		t.Fatalf("restarted: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	for _, epoch := range []int32{-1, -2} {
		if r := h.hb(hbOpt{member: "old", inst: "inst-a", epoch: epoch, topicID: tid}); r.ErrorCode != kerr.FencedInstanceID.Code {
			t.Fatalf("the zombie leaves (epoch %d): %v, want FENCED_INSTANCE_ID", epoch, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if r := h.hb(hbOpt{member: "nobody", inst: "inst-z", epoch: -1, topicID: tid}); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("an unknown instance leaves: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(r.ErrorCode))
	}
	if !h.hasMember("new") {
		t.Fatal("the zombie's leave removed the member holding the instance id")
	}
}

// TestConsumerCommitAtPreviousEpochOnlyForOwnPartitions: a member's commit
// at its previous epoch (it may not have heard of the new one) is taken
// for a partition still its own, and answered STALE_MEMBER_EPOCH for one
// that moved to another member, as Kafka's per-partition assignment
// epochs (KIP-1251): a late commit must not set the new owner's offset
// back. samsa took both (found by review).
func TestConsumerCommitAtPreviousEpochOnlyForOwnPartitions(t *testing.T) {
	h, c, tid := new848(t, 2)
	a := h.hb(hbOpt{member: "member-a", owned: []int32{}, topicID: tid, assignor: "range"})
	aEpoch, aParts := a.MemberEpoch, partsOf(a, nil)
	b := h.hb(hbOpt{member: "member-b", owned: []int32{}, topicID: tid, assignor: "range"})
	bEpoch, bParts := b.MemberEpoch, partsOf(b, nil)
	for range 4 {
		r := h.hb(hbOpt{member: "member-a", epoch: aEpoch, owned: aParts, topicID: tid})
		aEpoch, aParts = r.MemberEpoch, partsOf(r, aParts)
		r = h.hb(hbOpt{member: "member-b", epoch: bEpoch, owned: bParts, topicID: tid})
		bEpoch, bParts = r.MemberEpoch, partsOf(r, bParts)
	}
	if len(aParts) != 1 || len(bParts) != 1 || aEpoch != 2 {
		t.Fatalf("a %v@%d b %v@%d", aParts, aEpoch, bParts, bEpoch)
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 9
	commit.Group, commit.MemberID, commit.Generation = "g", "member-a", 1 // a's epoch before the rebalance
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: aParts[0], Offset: 5}, {Partition: bParts[0], Offset: 3},
	}}}
	r := call[*kmsg.OffsetCommitResponse](func(rf Respond) { c.OffsetCommit(commit, rf) })
	if own, moved := r.Topics[0].Partitions[0].ErrorCode, r.Topics[0].Partitions[1].ErrorCode; own != 0 || moved != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit by a at its previous epoch 1 (now %d): its partition %d %v, partition %d that b owns %v; want NONE and STALE_MEMBER_EPOCH",
			aEpoch, aParts[0], kerr.ErrorForCode(own), bParts[0], kerr.ErrorForCode(moved))
	}
	commit.Generation = aEpoch // at its current epoch: every partition, as before
	r = call[*kmsg.OffsetCommitResponse](func(rf Respond) { c.OffsetCommit(commit, rf) })
	for _, p := range r.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("commit at the current epoch: partition %d %v", p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
	}
}
