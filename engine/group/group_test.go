package group

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeBackend keeps appended records in memory. With hold set, appends
// complete only when the test calls their done (held, in append order).
type fakeBackend struct {
	mu     sync.Mutex
	recs   [][]Record
	topics map[string]TopicMeta
	hold   bool
	held   []func(error)
}

func (f *fakeBackend) Append(p int32, recs []Record, strict bool, done func(error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = append(f.recs, recs)
	if f.hold {
		f.held = append(f.held, done)
		return
	}
	go done(nil)
}
func (f *fakeBackend) AppendTxn(p int32, pid int64, epoch int16, recs []Record, done func(error)) {
	f.Append(p, recs, true, done)
}
func (f *fakeBackend) PartitionExists(topic string, p int32) bool {
	t, ok := f.topics[topic]
	return ok && p >= 0 && p < t.Partitions
}
func (f *fakeBackend) Topic(name string) (TopicMeta, bool) { t, ok := f.topics[name]; return t, ok }
func (f *fakeBackend) TopicByID(id [16]byte) (TopicMeta, bool) {
	for _, t := range f.topics {
		if t.ID == id {
			return t, true
		}
	}
	return TopicMeta{}, false
}
func (f *fakeBackend) TopicNames() []string {
	var out []string
	for n := range f.topics {
		out = append(out, n)
	}
	return out
}
func (f *fakeBackend) AppendErrorCode(error) int16 { return kerr.NotCoordinator.Code }

func newTestCoordinator(t *testing.T, topics ...TopicMeta) (*Coordinator, *fakeBackend) {
	be := &fakeBackend{topics: map[string]TopicMeta{}}
	for _, tm := range topics {
		be.topics[tm.Name] = tm
	}
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	cfg.MinSessionTimeout = 100 * time.Millisecond
	c := New(cfg, be, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.Loaded()
	t.Cleanup(c.Close)
	return c, be
}

func call[R kmsg.Response](f func(Respond)) R {
	ch := make(chan kmsg.Response, 1)
	f(func(r kmsg.Response) { ch <- r })
	select {
	case r := <-ch:
		return r.(R)
	case <-time.After(5 * time.Second):
		panic("no response")
	}
}

func TestPartitionForMatchesKafka(t *testing.T) {
	// Java's String.hashCode: "polygenelubricants" hashes to
	// Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0; "Aa" and
	// "BB" collide (2112).
	cases := map[string]int32{"": 0, "polygenelubricants": 0, "Aa": 2112 % 50, "BB": 2112 % 50, "a": 97 % 50}
	for g, want := range cases {
		if got := PartitionFor(g, 50); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", g, got, want)
		}
	}
	for i := 0; i < 1000; i++ {
		if p := PartitionFor(fmt.Sprintf("group-%d-é", i), 7); p < 0 || p >= 7 {
			t.Fatalf("partition %d out of range", p)
		}
	}
}

// A random walk of KIP-848 members joining, heartbeating (reporting
// exactly what they were told they own), leaving and being replaced never
// has two members owning a partition, and converges to every partition
// owned, balanced, once members keep heartbeating.
func TestConsumerReconciliationNeverDoubleAssigns(t *testing.T) {
	for _, assignor := range []string{"uniform", "range"} {
		t.Run(assignor, func(t *testing.T) {
			ta := TopicMeta{Name: "a", ID: [16]byte{1}, Partitions: 7}
			tb := TopicMeta{Name: "b", ID: [16]byte{2}, Partitions: 5}
			c, _ := newTestCoordinator(t, ta, tb)
			type client struct {
				id    string
				epoch int32
				owned map[[16]byte][]int32
			}
			rng := rand.New(rand.NewPCG(9, 10))
			var clients []*client
			next := 0
			hb := func(cl *client) {
				r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				r.Version = 1
				r.Group, r.MemberID, r.MemberEpoch = "g", cl.id, cl.epoch
				r.RebalanceTimeoutMillis = 60000
				r.SubscribedTopicNames = []string{"a", "b"}
				r.ServerAssignor = &assignor
				r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
				for id, ps := range cl.owned {
					r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: ps})
				}
				resp := call[*kmsg.ConsumerGroupHeartbeatResponse](func(rf Respond) { c.ConsumerGroupHeartbeat(r, "c", "/h", rf) })
				if resp.ErrorCode != 0 {
					t.Fatalf("heartbeat of %s at epoch %d: %v", cl.id, cl.epoch, kerr.ErrorForCode(resp.ErrorCode))
				}
				cl.epoch = resp.MemberEpoch
				if resp.Assignment != nil {
					cl.owned = map[[16]byte][]int32{}
					for _, at := range resp.Assignment.Topics {
						cl.owned[at.TopicID] = at.Partitions
					}
				}
			}
			checkExclusive := func() {
				seen := map[tp]string{}
				for _, cl := range clients {
					for id, ps := range cl.owned {
						for _, p := range ps {
							if other, dup := seen[tp{id, p}]; dup {
								t.Fatalf("partition %v/%d owned by %s and %s", id[0], p, other, cl.id)
							}
							seen[tp{id, p}] = cl.id
						}
					}
				}
			}
			for step := 0; step < 400; step++ {
				switch x := rng.IntN(10); {
				case x < 2 && len(clients) < 6:
					cl := &client{id: fmt.Sprintf("m%d", next)}
					next++
					clients = append(clients, cl)
					hb(cl)
				case x < 3 && len(clients) > 1:
					i := rng.IntN(len(clients))
					cl := clients[i]
					r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
					r.Version = 1
					r.Group, r.MemberID, r.MemberEpoch = "g", cl.id, -1
					call[*kmsg.ConsumerGroupHeartbeatResponse](func(rf Respond) { c.ConsumerGroupHeartbeat(r, "c", "/h", rf) })
					clients = append(clients[:i], clients[i+1:]...)
				default:
					if len(clients) > 0 {
						hb(clients[rng.IntN(len(clients))])
					}
				}
				checkExclusive()
			}
			for round := 0; round < 10; round++ {
				for _, cl := range clients {
					hb(cl)
				}
				checkExclusive()
			}
			total, lo, hi := 0, 1<<30, 0
			for _, cl := range clients {
				n := 0
				for _, ps := range cl.owned {
					n += len(ps)
				}
				total += n
				lo, hi = min(lo, n), max(hi, n)
			}
			if total != 12 {
				t.Fatalf("%d of 12 partitions owned after converging", total)
			}
			if assignor == "uniform" && hi-lo > 1 {
				t.Fatalf("uniform assignment unbalanced: %d to %d partitions per member", lo, hi)
			}
		})
	}
}

// The uniform assignor keeps partitions where they are when membership
// changes only by one member.
func TestUniformAssignorIsSticky(t *testing.T) {
	ta := TopicMeta{Name: "a", ID: [16]byte{1}, Partitions: 12}
	mk := func(ids ...string) []*cmember {
		var ms []*cmember
		for _, id := range ids {
			ms = append(ms, &cmember{id: id, topics: []string{"a"}})
		}
		return ms
	}
	topics := map[string]TopicMeta{"a": ta}
	first := assignUniform(mk("x", "y", "z"), topics, nil)
	second := assignUniform(mk("x", "y", "z", "w"), topics, first)
	moved := 0
	for _, id := range []string{"x", "y", "z"} {
		for _, p := range first[id][ta.ID] {
			if !second[id].has(ta.ID, p) {
				moved++
			}
		}
	}
	if moved != 3 || len(second["w"][ta.ID]) != 3 {
		t.Fatalf("adding a fourth member moved %d partitions (want 3), gave it %v", moved, second["w"][ta.ID])
	}
}

// Records replay into the same groups and offsets.
func TestReplayRoundTrip(t *testing.T) {
	c, be := newTestCoordinator(t, TopicMeta{Name: "t", ID: [16]byte{3}, Partitions: 3})
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 8
	commit.Group, commit.Generation = "g", -1
	meta := "m"
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: 10, LeaderEpoch: 2, Metadata: &meta}, {Partition: 2, Offset: 30, LeaderEpoch: -1}}}}
	if r := call[*kmsg.OffsetCommitResponse](func(rf Respond) { c.OffsetCommit(commit, rf) }); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	c2 := New(c.cfg, be, 4, c.logger)
	for _, recs := range be.recs {
		for _, r := range recs {
			if err := c2.Replay(r.Key, r.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	c2.Loaded()
	defer c2.Close()
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 7
	fetch.Group = "g"
	r := call[*kmsg.OffsetFetchResponse](func(rf Respond) { c2.OffsetFetch(fetch, rf) })
	got := map[int32]kmsg.OffsetFetchResponseTopicPartition{}
	for _, tt := range r.Topics {
		for _, p := range tt.Partitions {
			got[p.Partition] = p
		}
	}
	if p := got[0]; p.Offset != 10 || p.LeaderEpoch != 2 || *p.Metadata != "m" {
		t.Fatalf("partition 0 after replay: %+v", p)
	}
	if p := got[2]; p.Offset != 30 || len(got) != 2 {
		t.Fatalf("after replay: %+v", got)
	}
}

func newJoin(v int16, group, member string, sessionMs int32) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = v
	r.Group, r.MemberID, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = group, member, sessionMs, 2000
	r.ProtocolType = "consumer"
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
	return r
}

// Until loaded, group requests say so (in the way each API's clients
// expect); afterwards they are served.
func TestCoordinatorLoadInProgress(t *testing.T) {
	be := &fakeBackend{topics: map[string]TopicMeta{}}
	c := New(DefaultConfig(), be, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer c.Close()
	if r := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g", "", 10000), "c", "/h", rf) }); r.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("join while loading: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 5
	f.Group = "g"
	if r := call[*kmsg.OffsetFetchResponse](func(rf Respond) { c.OffsetFetch(f, rf) }); r.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("offset fetch while loading: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.MemberID = "g", "m"
	if r := call[*kmsg.SyncGroupResponse](func(rf Respond) { c.SyncGroup(s, rf) }); r.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Errorf("sync while loading: %v, want REBALANCE_IN_PROGRESS as Kafka", kerr.ErrorForCode(r.ErrorCode))
	}
	c.Loaded()
	if r := call[*kmsg.OffsetFetchResponse](func(rf Respond) { c.OffsetFetch(f, rf) }); r.ErrorCode != 0 {
		t.Errorf("offset fetch once loaded: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// A member that stops heartbeating is removed after its session timeout
// and the group becomes empty; offsets of a group empty for longer than
// offsets.retention.minutes expire, and the group with them.
func TestSessionExpiryAndOffsetRetention(t *testing.T) {
	c, be := newTestCoordinator(t, TopicMeta{Name: "t", ID: [16]byte{5}, Partitions: 1})
	first := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g", "", 200), "c", "/h", rf) })
	jr := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g", first.MemberID, 200), "c", "/h", rf) })
	if jr.ErrorCode != 0 || jr.Generation != 1 {
		t.Fatalf("join: %+v", jr)
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 8
	commit.Group, commit.MemberID, commit.Generation = "g", jr.MemberID, 1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}}}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID, sync.Generation = "g", jr.MemberID, 1
	call[*kmsg.SyncGroupResponse](func(rf Respond) { c.SyncGroup(sync, rf) })
	if r := call[*kmsg.OffsetCommitResponse](func(rf Respond) { c.OffsetCommit(commit, rf) }); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := c.group("g")
		g.lock()
		st := g.state
		g.unlock()
		if st == Empty {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member not expired: group %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Not yet past retention: offsets stay.
	c.ExpireOffsets()
	if g := c.group("g"); g == nil || len(g.offsets) != 1 {
		t.Fatal("offsets expired early")
	}
	c.now = func() time.Time { return time.Now().Add(c.cfg.OffsetsRetention + time.Minute) }
	before := len(be.recs)
	c.ExpireOffsets()
	time.Sleep(50 * time.Millisecond)
	if c.group("g") != nil {
		t.Fatal("an empty group past retention kept its offsets")
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.recs) == before {
		t.Fatal("no tombstones written for expired offsets")
	}
	var tombstones int
	for _, r := range be.recs[len(be.recs)-1] {
		if r.Value == nil {
			tombstones++
		}
	}
	if tombstones != 2 {
		t.Fatalf("%d tombstones, want the offset's and the group's", tombstones)
	}
}

// OffsetFetch v8 answers several groups; ListGroups filters by state and
// type.
func TestMultiGroupFetchAndListFilters(t *testing.T) {
	c, _ := newTestCoordinator(t, TopicMeta{Name: "t", ID: [16]byte{6}, Partitions: 2})
	for i, g := range []string{"a", "b"} {
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Version = 8
		commit.Group, commit.Generation = g, -1
		commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: int64(10 + i)}}}}
		call[*kmsg.OffsetCommitResponse](func(rf Respond) { c.OffsetCommit(commit, rf) })
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 8
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "a"}, {Group: "b", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0, 1}}}}, {Group: "none"}}
	r := call[*kmsg.OffsetFetchResponse](func(rf Respond) { c.OffsetFetch(f, rf) })
	if len(r.Groups) != 3 || r.Groups[0].Topics[0].Partitions[0].Offset != 10 {
		t.Fatalf("group a: %+v", r.Groups)
	}
	if ps := r.Groups[1].Topics[0].Partitions; len(ps) != 2 || ps[0].Offset != -1 || ps[1].Offset != 11 {
		t.Fatalf("group b: %+v", ps)
	}
	if len(r.Groups[2].Topics) != 0 || r.Groups[2].ErrorCode != 0 {
		t.Fatalf("unknown group: %+v", r.Groups[2])
	}
	list := func(states, types []string) int {
		l := kmsg.NewPtrListGroupsRequest()
		l.Version = 5
		l.StatesFilter, l.TypesFilter = states, types
		return len(call[*kmsg.ListGroupsResponse](func(rf Respond) { c.ListGroups(l, rf) }).Groups)
	}
	if n := list(nil, nil); n != 2 {
		t.Errorf("list: %d groups", n)
	}
	if n := list([]string{"empty"}, []string{"Classic"}); n != 2 {
		t.Errorf("list Empty classic: %d groups", n)
	}
	if n := list([]string{"Stable"}, nil); n != 0 {
		t.Errorf("list Stable: %d groups", n)
	}
	if n := list(nil, []string{"consumer"}); n != 0 {
		t.Errorf("list consumer: %d groups", n)
	}
}

// Replay of any bytes as a __consumer_offsets record returns an error or
// applies it; it never panics, and a loaded coordinator still serves.
func FuzzReplay(f *testing.F) {
	g := "g"
	m := "m"
	o := offset{offset: 5, leaderEpoch: 1, metadata: "x", committed: 7}
	f.Add(offsetKey(g, topicPartition{"t", 1}), offsetRecord(g, topicPartition{"t", 1}, &o).Value)
	f.Add(consumerKey(recConsumerMemberMetadata, g, &m), memberMetadataValue(&cmember{id: m, topics: []string{"a", "b"}, regex: "x.*", rebalance: time.Second, assignor: "range"}))
	f.Add(consumerKey(recConsumerCurrentAssigned, g, &m), currentAssignmentValue(&cmember{epoch: 3, assigned: assignment{{1}: {0, 2}}, revoking: assignment{}}))
	f.Add(consumerKey(recConsumerGroupMetadata, g, nil), epochValue(4))
	f.Add(groupKey(g), []byte{0, 3})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		c := New(DefaultConfig(), &fakeBackend{topics: map[string]TopicMeta{}}, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
		defer c.Close()
		_ = c.Replay(key, value)
		_ = c.Replay(key, nil)
		_ = c.Replay(key, value)
		c.Loaded()
		l := kmsg.NewPtrListGroupsRequest()
		call[*kmsg.ListGroupsResponse](func(rf Respond) { c.ListGroups(l, rf) })
		d := kmsg.NewPtrConsumerGroupDescribeRequest()
		d.Groups = []string{"g"}
		call[*kmsg.ConsumerGroupDescribeResponse](func(rf Respond) { c.ConsumerGroupDescribe(d, rf) })
	})
}

// Metrics (Stats) and a topic's deletion (TopicDeleted) may come while the
// coordinator replays its log, which writes groups under Coordinator.mu
// alone: they must not race with it (run with -race).
func TestStatsAndTopicDeletedDuringReplay(t *testing.T) {
	be := &fakeBackend{topics: map[string]TopicMeta{}}
	c := New(DefaultConfig(), be, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer c.Close()
	var recs []Record
	for i := range 500 {
		recs = append(recs, commitRecord(t, "g", "t", int32(i%8), int64(i)))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, r := range recs {
			if err := c.Replay(r.Key, r.Value); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for replaying := true; replaying; {
		select {
		case <-done:
			replaying = false
		default:
			c.Stats()
			c.TopicDeleted("other")
		}
	}
	c.Loaded()
	stats := c.Stats()
	if len(stats) != 1 || len(stats[0].Committed["t"]) != 8 {
		t.Fatalf("stats after replay: %+v", stats)
	}
	c.TopicDeleted("t")
	if stats := c.Stats(); len(stats[0].Committed["t"]) != 0 {
		t.Fatalf("offsets of the deleted topic still there: %+v", stats)
	}
}

// A topic deleted while the coordinator replays loses the offsets replayed
// after the deletion too, once loading is done.
func TestTopicDeletedDuringReplayCoversTheRest(t *testing.T) {
	be := &fakeBackend{topics: map[string]TopicMeta{}}
	c := New(DefaultConfig(), be, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer c.Close()
	replay := func(group string, p int32) {
		r := commitRecord(t, group, "t", p, 5)
		if err := c.Replay(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	replay("g1", 0)
	c.TopicDeleted("t") // half-way through the log
	replay("g1", 1)
	replay("g2", 0)
	c.Loaded()
	for _, gs := range c.Stats() {
		if len(gs.Committed["t"]) != 0 {
			t.Errorf("group %s still has offsets of the deleted topic: %v", gs.Group, gs.Committed)
		}
	}
}

// commitRecord is the __consumer_offsets record of a committed offset.
func commitRecord(t *testing.T, group, topic string, p int32, offset int64) Record {
	t.Helper()
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = 1, group, topic, p
	v := kmsg.NewOffsetCommitValue()
	v.Version, v.Offset, v.LeaderEpoch, v.CommitTimestamp = 3, offset, -1, time.Now().UnixMilli()
	return Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

// TestNewRegexAssignedAtNextHeartbeat: as Kafka 4, which resolves a new
// subscription regex in the background, the heartbeat that brings it is
// assigned the subscription's literal topics only, and the next one the
// regex's topics too (librdkafka's 0045 KIP-848 regex case).
func TestNewRegexAssignedAtNextHeartbeat(t *testing.T) {
	lit := TopicMeta{Name: "lit", ID: [16]byte{1}, Partitions: 2}
	m1 := TopicMeta{Name: "re-1", ID: [16]byte{2}, Partitions: 4}
	m2 := TopicMeta{Name: "re-2", ID: [16]byte{3}, Partitions: 4}
	c, _ := newTestCoordinator(t, lit, m1, m2)
	assigned := func(member string, epoch int32) (int32, int) {
		t.Helper()
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g", member, epoch, 60000
		re := "re-.*"
		r.SubscribedTopicNames, r.SubscribedTopicRegex, r.Topics = []string{"lit"}, &re, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp := call[*kmsg.ConsumerGroupHeartbeatResponse](func(rf Respond) { c.ConsumerGroupHeartbeat(r, "c", "/h", rf) })
		if resp.ErrorCode != 0 || resp.Assignment == nil {
			t.Fatalf("heartbeat of %s: %v %+v", member, kerr.ErrorForCode(resp.ErrorCode), resp)
		}
		n := 0
		for _, at := range resp.Assignment.Topics {
			n += len(at.Partitions)
		}
		return resp.MemberEpoch, n
	}
	epoch, n := assigned("a", 0)
	if n != 2 {
		t.Fatalf("the heartbeat that brought the regex was assigned %d partitions, want lit's 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n != 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		epoch, n = assigned("a", epoch)
	}
	if n != 10 {
		t.Fatalf("later heartbeats were assigned %d partitions, want 10 (lit and the regex's)", n)
	}
}

// TestOffsetCommitErrorOrder: ClassicGroup.validateOffsetCommit's order.
// While the group completes a rebalance, an unknown member hears
// UNKNOWN_MEMBER_ID and a stale generation ILLEGAL_GENERATION (they
// would otherwise retry after the rebalance instead of rejoining); only
// a current member hears REBALANCE_IN_PROGRESS. v9 to a group that does
// not exist: GROUP_ID_NOT_FOUND.
func TestOffsetCommitErrorOrder(t *testing.T) {
	c, _ := newTestCoordinator(t, TopicMeta{Name: "t", ID: [16]byte{5}, Partitions: 1})
	first := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g", "", 10000), "c", "/h", rf) })
	jr := call[*kmsg.JoinGroupResponse](func(rf Respond) { c.JoinGroup(newJoin(5, "g", first.MemberID, 10000), "c", "/h", rf) })
	if jr.ErrorCode != 0 {
		t.Fatalf("join: %+v", jr)
	}
	// No SyncGroup yet: the group is completing its rebalance.
	var instance *string
	commit := func(v int16, group, member string, gen int32) int16 {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Version = v
		r.Group, r.MemberID, r.Generation, r.InstanceID = group, member, gen, instance
		r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}}}
		return call[*kmsg.OffsetCommitResponse](func(rf Respond) { c.OffsetCommit(r, rf) }).Topics[0].Partitions[0].ErrorCode
	}
	for _, tc := range []struct {
		name   string
		member string
		gen    int32
		want   int16
	}{
		{"unknown member", "gone", jr.Generation, kerr.UnknownMemberID.Code},
		{"stale generation", jr.MemberID, jr.Generation - 1, kerr.IllegalGeneration.Code},
		{"no member, group not empty", "", -1, kerr.UnknownMemberID.Code},
		{"current member", jr.MemberID, jr.Generation, kerr.RebalanceInProgress.Code},
	} {
		if got := commit(8, "g", tc.member, tc.gen); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}
	// A member naming a static instance the group does not have:
	// UNKNOWN_MEMBER_ID (Kafka's validateMember), before the rebalance.
	instance = kmsg.StringPtr("no-such-instance")
	if got := commit(8, "g", jr.MemberID, jr.Generation); got != kerr.UnknownMemberID.Code {
		t.Errorf("unknown instance id: %v", kerr.ErrorForCode(got))
	}
	instance = nil
	if got := commit(9, "nope", "m", 3); got != kerr.GroupIDNotFound.Code {
		t.Errorf("v9 to a missing group: %v", kerr.ErrorForCode(got))
	}
	if got := commit(8, "nope", "m", 3); got != kerr.IllegalGeneration.Code {
		t.Errorf("v8 to a missing group: %v", kerr.ErrorForCode(got))
	}
}

// TestStaticConsumerMemberRestart: a KIP-848 static member that leaves
// for a restart (epoch -2) and comes back under a new member id takes
// its predecessor's subscription and partitions, with no new group
// epoch (Kafka's getOrMaybeSubscribeStaticConsumerGroupMember); the old
// member id, still heartbeating, is fenced (FENCED_INSTANCE_ID).
func TestStaticConsumerMemberRestart(t *testing.T) {
	c, _ := newTestCoordinator(t, TopicMeta{Name: "t", ID: [16]byte{9}, Partitions: 4})
	hb := func(member, inst string, epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g", member, epoch, 60000
		r.InstanceID = &inst
		assignor := "range"
		r.ServerAssignor = &assignor
		r.SubscribedTopicNames, r.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return call[*kmsg.ConsumerGroupHeartbeatResponse](func(rf Respond) { c.ConsumerGroupHeartbeat(r, "c", "/h", rf) })
	}
	parts := func(r *kmsg.ConsumerGroupHeartbeatResponse) []int32 {
		var out []int32
		if r.Assignment != nil {
			for _, at := range r.Assignment.Topics {
				out = append(out, at.Partitions...)
			}
		}
		slices.Sort(out)
		return out
	}
	groupEpoch := func() int32 {
		g := c.group("g")
		g.lock()
		defer g.unlock()
		return g.consumer().epoch
	}
	// Two static members settle on two partitions each. The group epoch
	// moves once per heartbeat, whatever the reasons (a new member, its
	// subscription, the topics' metadata), as Kafka's: the first member
	// of a new group gets epoch 1, the second 2.
	a := hb("", "inst-a", 0)
	if a.MemberEpoch != 1 || groupEpoch() != 1 {
		t.Fatalf("first member's epoch %d, group epoch %d, want 1 and 1", a.MemberEpoch, groupEpoch())
	}
	b := hb("", "inst-b", 0)
	if groupEpoch() != 2 {
		t.Fatalf("group epoch %d after the second member joined, want 2", groupEpoch())
	}
	aID, bID := *a.MemberID, *b.MemberID
	aEpoch, bEpoch := a.MemberEpoch, b.MemberEpoch
	var aParts []int32
	for range 20 {
		ra, rb := hb(aID, "inst-a", aEpoch), hb(bID, "inst-b", bEpoch)
		aEpoch, bEpoch = ra.MemberEpoch, rb.MemberEpoch
		if ra.Assignment != nil {
			aParts = parts(ra)
		}
		if len(aParts) == 2 && rb.ErrorCode == 0 && aEpoch == bEpoch {
			break
		}
	}
	if len(aParts) != 2 {
		t.Fatalf("member a owns %v, want 2 partitions", aParts)
	}
	before := groupEpoch()
	if r := hb(aID, "inst-a", -2); r.ErrorCode != 0 {
		t.Fatalf("static leave: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	back := hb("", "inst-a", 0)
	if back.ErrorCode != 0 || !slices.Equal(parts(back), aParts) {
		t.Fatalf("restarted member: %v, partitions %v, want %v", kerr.ErrorForCode(back.ErrorCode), parts(back), aParts)
	}
	if after := groupEpoch(); after != before {
		t.Fatalf("group epoch %d after a static restart, was %d", after, before)
	}
	if r := hb(aID, "inst-a", aEpoch); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("the replaced member's heartbeat: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestConsumerRejoinWithSameIDKeepsEpoch: a member whose joining
// heartbeat (epoch 0) was answered but the answer lost sends it again
// with the same member id; a member fenced on its side rejoins with 0
// too. Kafka (since KAFKA-19233) keeps the member, its epoch and its
// partitions, and the group epoch moves only for a real change. samsa
// removed the member and added it again: two epoch bumps and a rebalance
// of every member (found by review).
func TestConsumerRejoinWithSameIDKeepsEpoch(t *testing.T) {
	c, _ := newTestCoordinator(t, TopicMeta{Name: "t", ID: [16]byte{9}, Partitions: 4})
	hb := func(member string) *kmsg.ConsumerGroupHeartbeatResponse {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version = 1
		r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g", member, 0, 60000
		r.SubscribedTopicNames, r.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return call[*kmsg.ConsumerGroupHeartbeatResponse](func(rf Respond) { c.ConsumerGroupHeartbeat(r, "c", "/h", rf) })
	}
	groupEpoch := func() int32 {
		g := c.group("g")
		g.lock()
		defer g.unlock()
		return g.consumer().epoch
	}
	partitions := func(r *kmsg.ConsumerGroupHeartbeatResponse) int {
		n := 0
		if r.Assignment != nil {
			for _, tp := range r.Assignment.Topics {
				n += len(tp.Partitions)
			}
		}
		return n
	}
	first := hb("member-a")
	if first.ErrorCode != 0 || first.MemberEpoch != 1 || groupEpoch() != 1 {
		t.Fatalf("join: %v epoch %d group epoch %d", kerr.ErrorForCode(first.ErrorCode), first.MemberEpoch, groupEpoch())
	}
	again := hb("member-a")
	if again.ErrorCode != 0 || again.MemberEpoch != 1 || groupEpoch() != 1 || partitions(again) != partitions(first) {
		t.Fatalf("retried join: %v member epoch %d, group epoch %d, %d partitions (first %d); want no error, 1, 1 and the same partitions",
			kerr.ErrorForCode(again.ErrorCode), again.MemberEpoch, groupEpoch(), partitions(again), partitions(first))
	}
	if b := hb("member-b"); b.ErrorCode != 0 || groupEpoch() != 2 {
		t.Fatalf("second member: %v, group epoch %d; want 2", kerr.ErrorForCode(b.ErrorCode), groupEpoch())
	}
	if r := hb("member-a"); r.ErrorCode != 0 || groupEpoch() != 2 {
		t.Fatalf("rejoin with the same id beside another member: %v, group epoch %d; want no error and 2", kerr.ErrorForCode(r.ErrorCode), groupEpoch())
	}
}
