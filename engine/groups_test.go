package engine

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fastGroups shortens the group timers so tests do not wait on Kafka's
// production defaults (3 s initial delay, 6 s minimum session).
func fastGroups(c *Config) {
	c.Groups.InitialRebalanceDelay = 100 * time.Millisecond
	c.Groups.MinSessionTimeout = 500 * time.Millisecond
}

func produceKeyed(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	rs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		k := strconv.Itoa(i)
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("v" + k)})
	}
	if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// groupMember is a franz-go group consumer that processes each record
// once: it marks records after processing and commits the marks before
// giving partitions up, the at-least-once pattern that becomes exactly
// once when nothing crashes.
type groupMember struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
}

type tally struct {
	mu   sync.Mutex
	seen map[string]int
	by   map[string]string // record key -> member that processed it
}

func (ty *tally) add(member string, r *kgo.Record) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	k := string(r.Key)
	ty.seen[k]++
	ty.by[k] = member
}

func (ty *tally) count() (distinct, total int) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	for _, n := range ty.seen {
		distinct++
		total += n
	}
	return
}

func startMember(t *testing.T, tb *testBroker, name, group, topic string, ty *tally, opts ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{stop: make(chan struct{}), done: make(chan struct{})}
	var cl *kgo.Client
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(tb.addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				t.Logf("%s: commit on revoke: %v", name, err)
			}
		}),
		kgo.ClientID(name),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollRecords(ctx, 100)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				ty.add(name, r)
				cl.MarkCommitRecords(r)
			})
			cl.AllowRebalance()
		}
	}()
	return m
}

// leave stops polling, commits what was processed and leaves the group.
func (m *groupMember) leave(t *testing.T) {
	close(m.stop)
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.cl.CommitMarkedOffsets(ctx); err != nil {
		t.Errorf("final commit: %v", err)
	}
	m.cl.Close()
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeGroup(t *testing.T, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ds, err := adm.DescribeGroups(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	return ds[group]
}

// Three members share six partitions; every record is processed exactly
// once across them, also while one member leaves and another joins
// mid-stream, for both eager (range) and cooperative-sticky assignment.
func TestGroupConsumersShareWorkExactlyOnce(t *testing.T) {
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{{"range", kgo.RangeBalancer()}, {"cooperative-sticky", kgo.CooperativeStickyBalancer()}} {
		t.Run(bal.name, func(t *testing.T) {
			tb := startBroker(t, t.TempDir(), fastGroups)
			adm := kadm.NewClient(tb.client())
			topic, group := "orders", "billing"
			if _, err := adm.CreateTopic(testCtx(t), 6, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			prod := tb.client(kgo.DefaultProduceTopic(topic))
			ty := &tally{seen: map[string]int{}, by: map[string]string{}}
			produceKeyed(t, prod, topic, 0, 3000)

			var members []*groupMember
			for i := 0; i < 3; i++ {
				members = append(members, startMember(t, tb, fmt.Sprintf("m%d", i), group, topic, ty, kgo.Balancers(bal.b)))
			}
			waitFor(t, "3000 records", 30*time.Second, func() bool { d, _ := ty.count(); return d >= 3000 })
			waitFor(t, "3 members stable", 20*time.Second, func() bool {
				g := describeGroup(t, adm, group)
				return g.State == "Stable" && len(g.Members) == 3
			})
			g := describeGroup(t, adm, group)
			owned := map[int32]string{}
			for _, m := range g.Members {
				ca, ok := m.Assigned.AsConsumer()
				if !ok {
					t.Fatalf("member %s: assignment does not decode", m.MemberID)
				}
				for _, at := range ca.Topics {
					for _, p := range at.Partitions {
						if prev, dup := owned[p]; dup {
							t.Fatalf("partition %d assigned to %s and %s", p, prev, m.MemberID)
						}
						owned[p] = m.MemberID
					}
				}
			}
			if len(owned) != 6 {
				t.Fatalf("assigned partitions %v, want all 6", owned)
			}

			// Churn: one member leaves, a new one joins, while records flow.
			produceKeyed(t, prod, topic, 3000, 1000)
			members[0].leave(t)
			members = append(members[1:], startMember(t, tb, "m3", group, topic, ty, kgo.Balancers(bal.b)))
			produceKeyed(t, prod, topic, 4000, 2000)
			waitFor(t, "6000 records", 45*time.Second, func() bool { d, _ := ty.count(); return d >= 6000 })
			for _, m := range members {
				m.leave(t)
			}
			distinct, total := ty.count()
			if distinct != 6000 || total != 6000 {
				ty.mu.Lock()
				var dups []string
				for k, n := range ty.seen {
					if n > 1 && len(dups) < 10 {
						dups = append(dups, k)
					}
				}
				ty.mu.Unlock()
				t.Fatalf("processed %d distinct records %d times, want 6000 once each (duplicates e.g. %v)", distinct, total, dups)
			}
			byMember := map[string]int{}
			for _, m := range ty.by {
				byMember[m]++
			}
			if len(byMember) < 3 {
				t.Fatalf("work was not shared: %v", byMember)
			}

			// Every member has left: the group is empty and its offsets
			// cover every record.
			waitFor(t, "empty group", 10*time.Second, func() bool { return describeGroup(t, adm, group).State == "Empty" })
			offs, err := adm.FetchOffsets(testCtx(t), group)
			if err != nil {
				t.Fatal(err)
			}
			ends, err := adm.ListEndOffsets(testCtx(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			ends.Each(func(lo kadm.ListedOffset) {
				o, ok := offs.Lookup(topic, lo.Partition)
				if !ok || o.At != lo.Offset {
					t.Errorf("partition %d: committed %+v, end %d", lo.Partition, o, lo.Offset)
				}
			})
		})
	}
}

// A static member (group.instance.id) that restarts within its session
// timeout gets its partitions back without a rebalance.
func TestGroupStaticMemberRestart(t *testing.T) {
	tb := startBroker(t, t.TempDir(), fastGroups)
	adm := kadm.NewClient(tb.client())
	topic, group := "static-t", "static-g"
	if _, err := adm.CreateTopic(testCtx(t), 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, tb.client(kgo.DefaultProduceTopic(topic)), topic, 0, 400)
	ty := &tally{seen: map[string]int{}, by: map[string]string{}}
	opts := func(inst string) []kgo.Opt {
		return []kgo.Opt{kgo.InstanceID(inst), kgo.SessionTimeout(20 * time.Second)}
	}
	a := startMember(t, tb, "a", group, topic, ty, opts("inst-a")...)
	b := startMember(t, tb, "b", group, topic, ty, opts("inst-b")...)
	waitFor(t, "400 records", 30*time.Second, func() bool { d, _ := ty.count(); return d >= 400 })
	waitFor(t, "stable with 2 members", 20*time.Second, func() bool {
		g := describeGroup(t, adm, group)
		return g.State == "Stable" && len(g.Members) == 2
	})
	assignmentOf := func(inst string) []int32 {
		for _, m := range describeGroup(t, adm, group).Members {
			if m.InstanceID != nil && *m.InstanceID == inst {
				ca, _ := m.Assigned.AsConsumer()
				var ps []int32
				for _, at := range ca.Topics {
					ps = append(ps, at.Partitions...)
				}
				return ps
			}
		}
		return nil
	}
	// Cooperative rebalances take two rounds when partitions move: wait
	// until both members hold partitions and the generation settles.
	var before []int32
	var gen int32
	waitFor(t, "a settled assignment", 20*time.Second, func() bool {
		gen = generationOf(t, tb, group)
		before = assignmentOf("inst-a")
		if len(before) == 0 || len(assignmentOf("inst-b")) == 0 {
			return false
		}
		time.Sleep(300 * time.Millisecond)
		return generationOf(t, tb, group) == gen && describeGroup(t, adm, group).State == "Stable"
	})
	a.leave(t) // static members do not send LeaveGroup on close
	if g := describeGroup(t, adm, group); len(g.Members) != 2 {
		t.Fatalf("static member left the group on close: %d members", len(g.Members))
	}
	a = startMember(t, tb, "a2", group, topic, ty, opts("inst-a")...)
	produceKeyed(t, tb.client(kgo.DefaultProduceTopic(topic)), topic, 400, 400)
	waitFor(t, "800 records", 30*time.Second, func() bool { d, _ := ty.count(); return d >= 800 })
	if g2 := generationOf(t, tb, group); g2 != gen {
		t.Fatalf("generation went from %d to %d: the restart rebalanced", gen, g2)
	}
	if after := assignmentOf("inst-a"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("assignment changed from %v to %v", before, after)
	}
	a.leave(t)
	b.leave(t)
	if distinct, total := ty.count(); distinct != 800 || total != 800 {
		t.Fatalf("processed %d distinct records %d times, want 800 once each", distinct, total)
	}
}

func generationOf(t *testing.T, tb *testBroker, group string) int32 {
	t.Helper()
	gen, ok := tb.b.groups.Generation(group)
	if !ok {
		t.Fatalf("group %s does not exist", group)
	}
	return gen
}

// Committed offsets and group metadata survive a broker restart: a
// consumer resumes from its commit.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, fastGroups)
	adm := kadm.NewClient(tb.client())
	topic, group := "resume", "resumers"
	if _, err := adm.CreateTopic(testCtx(t), 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, tb.client(kgo.DefaultProduceTopic(topic)), topic, 0, 300)
	ty := &tally{seen: map[string]int{}, by: map[string]string{}}
	m := startMember(t, tb, "c1", group, topic, ty)
	waitFor(t, "300 records", 30*time.Second, func() bool { d, _ := ty.count(); return d >= 300 })
	m.leave(t)
	want, err := adm.FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	tb.stop()

	tb = startBroker(t, dir, fastGroups)
	adm = kadm.NewClient(tb.client())
	var got kadm.OffsetResponses
	waitFor(t, "groups loaded", 10*time.Second, func() bool {
		got, err = adm.FetchOffsets(testCtx(t), group)
		return err == nil
	})
	for _, p := range []int32{0, 1, 2} {
		w, _ := want.Lookup(topic, p)
		g, ok := got.Lookup(topic, p)
		if !ok || g.At != w.At || w.At <= 0 {
			t.Fatalf("partition %d: after restart %+v, before %+v", p, g, w)
		}
	}
	if d := describeGroup(t, adm, group); d.State != "Empty" || d.ProtocolType != "consumer" {
		t.Fatalf("after restart: %+v", d)
	}
	produceKeyed(t, tb.client(kgo.DefaultProduceTopic(topic)), topic, 300, 100)
	m = startMember(t, tb, "c2", group, topic, ty)
	waitFor(t, "400 records", 30*time.Second, func() bool { d, _ := ty.count(); return d >= 400 })
	m.leave(t)
	if distinct, total := ty.count(); distinct != 400 || total != 400 {
		t.Fatalf("processed %d distinct records %d times, want 400 once each: the consumer did not resume at its commit", distinct, total)
	}
}

// Bad group requests get Kafka's error codes.
func TestGroupErrors(t *testing.T) {
	tb := startBroker(t, t.TempDir(), fastGroups)
	adm := kadm.NewClient(tb.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, tb.addr)
	commit := func(v int16, group, member string, gen int32, meta string, topic string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(v)
		req.Group, req.MemberID, req.Generation = group, member, gen
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 5
		rp.Metadata = &meta
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return rc.request(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	join := func(v int16, group, member string, session int32) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(v)
		req.Group, req.MemberID = group, member
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = session, 5000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, p)
		return rc.request(req).(*kmsg.JoinGroupResponse)
	}
	heartbeat := func(group, member string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.SetVersion(4)
		req.Group, req.MemberID, req.Generation = group, member, gen
		return rc.request(req).(*kmsg.HeartbeatResponse).ErrorCode
	}
	codes := []struct {
		name string
		got  int16
		want *kerr.Error
	}{
		{"commit, unknown group, generation 3", commit(8, "nobody", "m", 3, "", "t"), kerr.IllegalGeneration},
		{"commit, empty group id (valid, as in Kafka)", commit(8, "", "", -1, "", "t"), nil},
		{"commit, metadata over 4096 bytes", commit(8, "simple", "", -1, string(make([]byte, 5000)), "t"), kerr.OffsetMetadataTooLarge},
		{"commit, unknown topic", commit(8, "simple", "", -1, "", "no-such-topic"), kerr.UnknownTopicOrPartition},
		{"commit, standalone", commit(2, "simple", "", -1, "meta", "t"), nil},
		{"join, session 1 ms", join(5, "g", "", 1).ErrorCode, kerr.InvalidSessionTimeout},
		{"join, session 23 days", join(5, "g", "", 2000000000).ErrorCode, kerr.InvalidSessionTimeout},
		{"join, unknown member id", join(5, "g", "who", 10000).ErrorCode, kerr.UnknownMemberID},
		{"heartbeat, unknown group", heartbeat("nobody", "m", 1), kerr.UnknownMemberID},
	}
	for _, c := range codes {
		want := int16(0)
		if c.want != nil {
			want = c.want.Code
		}
		if c.got != want {
			t.Errorf("%s: error %v, want %v", c.name, kerr.ErrorForCode(c.got), c.want)
		}
	}

	// The KIP-394 handshake, then a member in generation 1.
	first := join(5, "g", "", 10000)
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("first join: %+v", first)
	}
	jr := join(5, "g", first.MemberID, 10000)
	if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != first.MemberID || len(jr.Members) != 1 {
		t.Fatalf("second join: %+v", jr)
	}
	if c := heartbeat("g", first.MemberID, 7); c != kerr.IllegalGeneration.Code {
		t.Errorf("heartbeat, wrong generation: %v", kerr.ErrorForCode(c))
	}
	if c := heartbeat("g", "someone-else", 1); c != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat, unknown member: %v", kerr.ErrorForCode(c))
	}
	if c := commit(8, "g", first.MemberID, 1, "", "t"); c != kerr.RebalanceInProgress.Code {
		t.Errorf("commit before SyncGroup: %v", kerr.ErrorForCode(c))
	}
	// As Kafka's ClassicGroup.validateOffsetCommit: without a member, a
	// commit is only for an empty group.
	if c := commit(8, "g", "", -1, "", "t"); c != kerr.UnknownMemberID.Code {
		t.Errorf("standalone commit into a rebalancing group: %v", kerr.ErrorForCode(c))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.SetVersion(5)
	sync.Group, sync.MemberID, sync.Generation = "g", first.MemberID, 1
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = first.MemberID, []byte("mine")
	sync.GroupAssignment = append(sync.GroupAssignment, a)
	sr := rc.request(sync).(*kmsg.SyncGroupResponse)
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "mine" {
		t.Fatalf("sync: %+v", sr)
	}
	if c := commit(8, "g", first.MemberID, 1, "", "t"); c != 0 {
		t.Errorf("member commit: %v", kerr.ErrorForCode(c))
	}
	if c := commit(8, "g", "", -1, "", "t"); c != kerr.UnknownMemberID.Code {
		t.Errorf("standalone commit into an active group: %v", kerr.ErrorForCode(c))
	}
	if c := commit(8, "g", first.MemberID, 0, "", "t"); c != kerr.IllegalGeneration.Code {
		t.Errorf("commit, old generation: %v", kerr.ErrorForCode(c))
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.SetVersion(2)
	del.Groups = []string{"g", "nobody", "simple"}
	dr := rc.request(del).(*kmsg.DeleteGroupsResponse)
	want := []*kerr.Error{kerr.NonEmptyGroup, kerr.GroupIDNotFound, nil}
	for i, g := range dr.Groups {
		if w := want[i]; (w == nil && g.ErrorCode != 0) || (w != nil && g.ErrorCode != w.Code) {
			t.Errorf("delete %s: %v, want %v", g.Group, kerr.ErrorForCode(g.ErrorCode), w)
		}
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.SetVersion(5)
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: first.MemberID}, {MemberID: "ghost"}}
	lr := rc.request(leave).(*kmsg.LeaveGroupResponse)
	if lr.ErrorCode != 0 || len(lr.Members) != 2 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr)
	}
	waitFor(t, "empty group", 5*time.Second, func() bool { return describeGroup(t, adm, "g").State == "Empty" })

	// Clients may not write or delete the offsets topic.
	res, err := adm.DeleteTopics(testCtx(t), offsetsTopic)
	if err != nil || res[offsetsTopic].Err == nil {
		t.Errorf("deleting %s: %v %+v", offsetsTopic, err, res)
	}
	pr := tb.client().ProduceSync(testCtx(t), &kgo.Record{Topic: offsetsTopic, Value: []byte("x")})
	if err := pr.FirstErr(); err == nil {
		t.Errorf("producing to %s succeeded", offsetsTopic)
	}
}

// KIP-848: franz-go members with server-side assignment ("uniform" and
// "range") share a topic, every record processed exactly once while a
// member leaves and another joins; ConsumerGroupDescribe reports them.
func TestConsumerGroupProtocol(t *testing.T) {
	for _, bal := range []struct {
		name, assignor string
		b              kgo.GroupBalancer
	}{{"uniform", "uniform", kgo.StickyBalancer()}, {"range", "range", kgo.RangeBalancer()}} {
		t.Run(bal.name, func(t *testing.T) {
			tb := startBroker(t, t.TempDir(), func(c *Config) {
				fastGroups(c)
				c.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
				c.Groups.ConsumerSessionTimeout = 5 * time.Second
			})
			adm := kadm.NewClient(tb.client())
			topic, group := "kip848", "next-gen-"+bal.name
			if _, err := adm.CreateTopic(testCtx(t), 6, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			prod := tb.client(kgo.DefaultProduceTopic(topic))
			produceKeyed(t, prod, topic, 0, 3000)
			ty := &tally{seen: map[string]int{}, by: map[string]string{}}
			opts := []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(bal.b)}
			var members []*groupMember
			for i := 0; i < 3; i++ {
				members = append(members, startMember(t, tb, fmt.Sprintf("n%d", i), group, topic, ty, opts...))
			}
			waitFor(t, "3000 records", 30*time.Second, func() bool { d, _ := ty.count(); return d >= 3000 })

			var dg kadm.DescribedConsumerGroup
			waitFor(t, "a stable consumer group of 3", 20*time.Second, func() bool {
				ds, err := adm.DescribeConsumerGroups(testCtx(t), group)
				if err != nil {
					t.Fatal(err)
				}
				dg = ds[group]
				return dg.Err == nil && dg.State == "Stable" && len(dg.Members) == 3
			})
			if dg.AssignorName != bal.assignor {
				t.Fatalf("assignor %q, want %q", dg.AssignorName, bal.assignor)
			}
			owned := map[int32]string{}
			for _, m := range dg.Members {
				if m.MemberEpoch != dg.Epoch {
					t.Fatalf("member %s at epoch %d, group at %d", m.MemberID, m.MemberEpoch, dg.Epoch)
				}
				n := 0
				for _, ps := range m.Assignment {
					for p := range ps {
						if prev, dup := owned[p]; dup {
							t.Fatalf("partition %d owned by %s and %s", p, prev, m.MemberID)
						}
						owned[p] = m.MemberID
						n++
					}
				}
				if n != 2 {
					t.Fatalf("member %s owns %d partitions, want 2 of 6", m.MemberID, n)
				}
			}
			if ls, err := adm.ListGroupsByType(testCtx(t), []string{"consumer"}); err != nil || len(ls) != 1 || ls[group].State != "Stable" {
				t.Fatalf("list consumer groups: %+v %v", ls, err)
			}

			produceKeyed(t, prod, topic, 3000, 1000)
			members[0].leave(t)
			members = append(members[1:], startMember(t, tb, "n3", group, topic, ty, opts...))
			produceKeyed(t, prod, topic, 4000, 2000)
			waitFor(t, "6000 records", 45*time.Second, func() bool { d, _ := ty.count(); return d >= 6000 })
			for _, m := range members {
				m.leave(t)
			}
			if distinct, total := ty.count(); distinct != 6000 || total != 6000 {
				t.Fatalf("processed %d distinct records %d times, want 6000 once each", distinct, total)
			}
			waitFor(t, "an empty group", 10*time.Second, func() bool {
				ds, _ := adm.DescribeConsumerGroups(testCtx(t), group)
				return ds[group].State == "Empty"
			})
			offs, err := adm.FetchOffsets(testCtx(t), group)
			if err != nil {
				t.Fatal(err)
			}
			ends, _ := adm.ListEndOffsets(testCtx(t), topic)
			ends.Each(func(lo kadm.ListedOffset) {
				if o, ok := offs.Lookup(topic, lo.Partition); !ok || o.At != lo.Offset {
					t.Errorf("partition %d: committed %+v, end %d", lo.Partition, o, lo.Offset)
				}
			})
		})
	}
}

// KIP-848 requests with bad input get Kafka's errors.
func TestConsumerGroupHeartbeatErrors(t *testing.T) {
	tb := startBroker(t, t.TempDir(), fastGroups)
	adm := kadm.NewClient(tb.client())
	if _, err := adm.CreateTopic(testCtx(t), 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, tb.addr)
	hb := func(mod func(r *kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatResponse {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.SetVersion(1)
		r.Group, r.MemberID, r.MemberEpoch = "g848", "member-1", 0
		r.RebalanceTimeoutMillis = 10000
		r.SubscribedTopicNames = []string{"t"}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		mod(r)
		return rc.request(r).(*kmsg.ConsumerGroupHeartbeatResponse)
	}
	cases := []struct {
		name string
		mod  func(r *kmsg.ConsumerGroupHeartbeatRequest)
		want *kerr.Error
	}{
		{"no member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		{"no rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest},
		{"no subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { a := "magic"; r.ServerAssignor = &a }, kerr.UnsupportedAssignor},
		{"bad regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) { re := "("; r.SubscribedTopicRegex = &re }, kerr.InvalidRegularExpression},
		{"unknown member", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "ghost", 3 }, kerr.UnknownMemberID},
		{"epoch -3", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest},
	}
	for _, c := range cases {
		if got := hb(c.mod); got.ErrorCode != c.want.Code {
			t.Errorf("%s: %v, want %v", c.name, kerr.ErrorForCode(got.ErrorCode), c.want)
		}
	}
	joined := hb(func(*kmsg.ConsumerGroupHeartbeatRequest) {})
	if joined.ErrorCode != 0 || joined.MemberEpoch < 1 || joined.Assignment == nil || len(joined.Assignment.Topics) != 1 || len(joined.Assignment.Topics[0].Partitions) != 2 {
		t.Fatalf("join: %+v", joined)
	}
	if got := hb(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = joined.MemberEpoch + 5 }); got.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Errorf("future epoch: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	// A classic member cannot join a consumer group with members.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.SetVersion(5)
	jg.Group, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = "g848", 10000, 10000, "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
	if got := rc.request(jg).(*kmsg.JoinGroupResponse); got.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("classic join into a consumer group: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	// A commit with a stale epoch is refused; leaving empties the group.
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.SetVersion(9)
	commit.Group, commit.MemberID, commit.Generation = "g848", "member-1", joined.MemberEpoch+7
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	if got := rc.request(commit).(*kmsg.OffsetCommitResponse); got.Topics[0].Partitions[0].ErrorCode != kerr.StaleMemberEpoch.Code {
		t.Errorf("stale commit: %v", kerr.ErrorForCode(got.Topics[0].Partitions[0].ErrorCode))
	}
	commit.Generation = joined.MemberEpoch
	if got := rc.request(commit).(*kmsg.OffsetCommitResponse); got.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Errorf("member commit: %v", kerr.ErrorForCode(got.Topics[0].Partitions[0].ErrorCode))
	}
	left := hb(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -1 })
	if left.ErrorCode != 0 || left.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", left)
	}
	ds, err := adm.DescribeConsumerGroups(testCtx(t), "g848")
	if err != nil || ds["g848"].State != "Empty" {
		t.Fatalf("after leave: %+v %v", ds, err)
	}
}

// The coordinator keeps its own copies of member metadata and assignments:
// request buffers are reused once a request is answered.
func TestGroupKeepsMemberBytes(t *testing.T) {
	tb := startBroker(t, t.TempDir(), fastGroups)
	rc := dialRaw(t, tb.addr)
	meta := bytes.Repeat([]byte("M"), 64)
	jr := kmsg.NewPtrJoinGroupRequest()
	jr.SetVersion(3) // before KIP-394: no second join
	jr.Group, jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis, jr.ProtocolType = "bytes", 10000, 10000, "custom"
	jr.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "p", Metadata: meta}}
	join := rc.request(jr).(*kmsg.JoinGroupResponse)
	if join.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(join.ErrorCode))
	}
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.SetVersion(3)
	sr.Group, sr.MemberID, sr.Generation = "bytes", join.MemberID, join.Generation
	assigned := bytes.Repeat([]byte("A"), 64)
	sr.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: join.MemberID, MemberAssignment: assigned}}
	if resp := rc.request(sr).(*kmsg.SyncGroupResponse); resp.ErrorCode != 0 || !bytes.Equal(resp.MemberAssignment, assigned) {
		t.Fatalf("sync: %+v", resp)
	}
	// Other requests of the same size recycle the buffers.
	for i := 0; i < 200; i++ {
		d := kmsg.NewPtrDescribeGroupsRequest()
		d.Groups = []string{strings.Repeat("Z", 20+i)}
		rc.request(d)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"bytes"}
	dg := rc.request(d).(*kmsg.DescribeGroupsResponse).Groups[0]
	if len(dg.Members) != 1 || !bytes.Equal(dg.Members[0].ProtocolMetadata, meta) || !bytes.Equal(dg.Members[0].MemberAssignment, assigned) {
		t.Fatalf("described member %+v: metadata or assignment changed", dg.Members)
	}
}

// Deleting a topic deletes the offsets committed for it: a topic created
// again under the name starts without them.
func TestGroupOffsetsGoWithTheirTopic(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, fastGroups)
	adm := kadm.NewClient(tb.client())
	if _, err := adm.CreateTopic(testCtx(t), 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.AddOffset("t", 0, 5000, -1)
	os.AddOffset("t", 1, 7, -1)
	if err := adm.CommitAllOffsets(testCtx(t), "g", os); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopic(testCtx(t), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(testCtx(t), 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		got, err := adm.FetchOffsets(testCtx(t), "g")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := got.Lookup("t", 0); ok && o.At >= 0 {
			t.Fatalf("%s: offset %d of the deleted topic is still committed", when, o.At)
		}
	}
	check("after delete")
	tb.stop()
	tb = startBroker(t, dir, fastGroups)
	adm = kadm.NewClient(tb.client())
	waitFor(t, "groups loaded", 10*time.Second, func() bool { return tb.b.groups.IsLoaded() })
	check("after a restart")
}

// A static member that does not rejoin within the rebalance timeout stays
// in the group until its session runs out (KIP-345).
func TestGroupStaticMemberOutlivesRebalanceTimeout(t *testing.T) {
	tb := startBroker(t, t.TempDir(), fastGroups)
	rc := dialRaw(t, tb.addr)
	join := func(member, inst string, rebalanceMs int32) *kmsg.JoinGroupResponse {
		jr := kmsg.NewPtrJoinGroupRequest()
		jr.SetVersion(5)
		jr.Group, jr.MemberID, jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis, jr.ProtocolType = "st", member, 30000, rebalanceMs, "consumer"
		if inst != "" {
			jr.InstanceID = &inst
		}
		jr.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
		return rc.request(jr).(*kmsg.JoinGroupResponse)
	}
	a := join("", "static-a", 300)
	if a.ErrorCode != 0 {
		t.Fatalf("static join: %v", kerr.ErrorForCode(a.ErrorCode))
	}
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.SetVersion(3)
	sr.Group, sr.MemberID, sr.Generation = "st", a.MemberID, a.Generation
	rc.request(sr)
	// A dynamic member joins; the static one does not rejoin in time.
	rc2 := dialRaw(t, tb.addr)
	jr := kmsg.NewPtrJoinGroupRequest()
	jr.SetVersion(3)
	jr.Group, jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis, jr.ProtocolType = "st", 30000, 300, "consumer"
	jr.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
	b := rc2.request(jr).(*kmsg.JoinGroupResponse)
	if b.ErrorCode != 0 || b.Generation != a.Generation+1 {
		t.Fatalf("dynamic join: %+v", b)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"st"}
	if dg := rc.request(d).(*kmsg.DescribeGroupsResponse).Groups[0]; len(dg.Members) != 2 {
		t.Fatalf("static member evicted at the rebalance timeout: %+v", dg.Members)
	}
}

// KIP-848 groups survive a broker restart: a member carries on with its
// epoch and partitions, without rejoining.
func TestConsumerGroupSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, fastGroups)
	adm := kadm.NewClient(tb.client())
	if _, err := adm.CreateTopic(testCtx(t), 4, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	hb := func(rc *rawConn, member string, epoch int32, owned *kmsg.ConsumerGroupHeartbeatResponseAssignment) *kmsg.ConsumerGroupHeartbeatResponse {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.SetVersion(1)
		r.Group, r.MemberID, r.MemberEpoch = "durable-848", member, epoch
		r.RebalanceTimeoutMillis = 10000
		r.SubscribedTopicNames = []string{"t"}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if owned != nil {
			for _, at := range owned.Topics {
				r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: at.TopicID, Partitions: at.Partitions})
			}
		}
		return rc.request(r).(*kmsg.ConsumerGroupHeartbeatResponse)
	}
	rc := dialRaw(t, tb.addr)
	a := hb(rc, "member-a", 0, nil)
	b := hb(rc, "member-b", 0, nil)
	// A few rounds: a gives up what b gets, b takes it once released.
	for i := 0; i < 3; i++ {
		for _, x := range []**kmsg.ConsumerGroupHeartbeatResponse{&a, &b} {
			next := hb(rc, *(*x).MemberID, (*x).MemberEpoch, (*x).Assignment)
			if next.Assignment == nil {
				next.Assignment = (*x).Assignment
			}
			*x = next
		}
	}
	if a.ErrorCode != 0 || b.ErrorCode != 0 {
		t.Fatalf("heartbeats: %v %v", kerr.ErrorForCode(a.ErrorCode), kerr.ErrorForCode(b.ErrorCode))
	}
	count := func(x *kmsg.ConsumerGroupHeartbeatResponseAssignment) int {
		n := 0
		for _, at := range x.Topics {
			n += len(at.Partitions)
		}
		return n
	}
	if count(a.Assignment)+count(b.Assignment) != 4 {
		t.Fatalf("assignments %+v and %+v do not cover 4 partitions", a.Assignment, b.Assignment)
	}
	tb.stop()

	tb = startBroker(t, dir, fastGroups)
	waitFor(t, "groups loaded", 10*time.Second, func() bool { return tb.b.groups.IsLoaded() })
	rc = dialRaw(t, tb.addr)
	a3 := hb(rc, "member-a", a.MemberEpoch, a.Assignment)
	if a3.ErrorCode != 0 || a3.MemberEpoch != a.MemberEpoch {
		t.Fatalf("after restart: %v at epoch %d, want epoch %d", kerr.ErrorForCode(a3.ErrorCode), a3.MemberEpoch, a.MemberEpoch)
	}
	if a3.Assignment != nil && count(a3.Assignment) != count(a.Assignment) {
		t.Fatalf("assignment changed across the restart: %+v -> %+v", a.Assignment, a3.Assignment)
	}
	ds, err := kadm.NewClient(tb.client()).DescribeConsumerGroups(testCtx(t), "durable-848")
	if err != nil || len(ds["durable-848"].Members) != 2 {
		t.Fatalf("described after restart: %+v %v", ds, err)
	}
}

// A KIP-848 regex subscription is matched against every topic, internal
// ones too, as Kafka 4 does (franz-go's Test848RegexBrokerResolves expects
// a regex naming __consumer_offsets to be assigned it).
func TestConsumerGroupRegexMatchesInternalTopics(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		fastGroups(c)
		c.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
	})
	adm := kadm.NewClient(tb.client())
	if _, err := adm.CreateTopics(testCtx(t), 1, 1, nil, "rx-orders", "rx-orders-v2", "rx-other"); err != nil {
		t.Fatal(err)
	}
	cl := tb.client(kgo.ConsumerGroup("rx"), kgo.ServerSideBalancer(), kgo.ConsumeRegex(),
		kgo.ConsumeTopics("rx-orders", regexp.QuoteMeta("__consumer_offsets")), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	go func() {
		for {
			if fs := cl.PollFetches(testCtx(t)); fs.IsClientClosed() || testCtx(t).Err() != nil {
				return
			}
		}
	}()
	want := []string{"__consumer_offsets", "rx-orders", "rx-orders-v2"}
	var got []string
	waitFor(t, "the regex's topics assigned", 20*time.Second, func() bool {
		ds, err := adm.DescribeConsumerGroups(testCtx(t), "rx")
		if err != nil || ds["rx"].Err != nil || len(ds["rx"].Members) != 1 {
			return false
		}
		got = got[:0]
		for topic := range ds["rx"].Members[0].Assignment {
			got = append(got, topic)
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}
