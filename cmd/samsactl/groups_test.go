package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/tools/ctl"
)

// TestGroups: a franz-go group consumer reads a topic and commits chosen
// offsets; groups list and describe show it with the right lag; after it
// leaves, reset-offsets moves the offsets (dry run first) in each mode.
func TestGroups(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	const perPart = 10
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	ok(t, b.addr, "topics", "create", "orders", "--partitions", "3")
	produce(t, b.addr, "orders", 3, perPart, base)

	ctx := testCtx(t)
	cons := client(t, b.addr, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(),
		kgo.ClientID("lagtest"), kgo.FetchMaxWait(100*time.Millisecond))
	for n := 0; n < 3*perPart; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("cannot consume: %v", err)
		}
		n += fs.NumRecords()
	}
	commit := map[int32]int64{0: 4, 1: 7, 2: 10}
	uncommitted := map[string]map[int32]kgo.EpochOffset{"orders": {}}
	for p, o := range commit {
		uncommitted["orders"][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var commitErr error
	cons.CommitOffsetsSync(ctx, uncommitted, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if err == nil {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode != 0 {
						t.Errorf("commit %s-%d: error %d", rt.Topic, rp.Partition, rp.ErrorCode)
					}
				}
			}
		}
	})
	if commitErr != nil {
		t.Fatalf("cannot commit: %v", commitErr)
	}

	// The consumer is a member: list and describe show it.
	var list []ctl.GroupSummary
	okJSON(t, b.addr, &list, "groups", "list")
	if len(list) != 1 || list[0].Group != "g1" || list[0].State != "Stable" || list[0].ProtocolType != "consumer" || list[0].Members != 1 || list[0].Coordinator != b.nodeID {
		t.Errorf("groups list: %+v", list)
	}
	out := ok(t, b.addr, "groups", "list")
	if !containsRow(fields(out), []string{"g1", "Stable", "consumer", "1", itoa(b.nodeID)}) {
		t.Errorf("groups list:\n%s", out)
	}
	g := describeGroup(t, b.addr, "g1")
	if g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol == "" || g.Coordinator.NodeID != b.nodeID || g.Coordinator.Port == 0 {
		t.Errorf("groups describe: %+v", g)
	}
	if len(g.Members) != 1 || g.Members[0].ClientID != "lagtest" || g.Members[0].ClientHost == "" ||
		len(g.Members[0].Assigned) != 1 || g.Members[0].Assigned[0].Topic != "orders" || fmt.Sprint(g.Members[0].Assigned[0].Partitions) != "[0 1 2]" {
		t.Errorf("groups describe members: %+v", g.Members)
	}
	wantLag(t, g, map[int32]int64{0: 4, 1: 7, 2: 10}, perPart)
	if g.Offsets[0].MemberID == nil || *g.Offsets[0].MemberID != g.Members[0].MemberID {
		t.Errorf("partition 0 is not shown as consumed by the member: %+v", g.Offsets[0])
	}
	out = ok(t, b.addr, "groups", "describe", "g1")
	for _, w := range []string{"Group: g1  State: Stable  Protocol: consumer/", "Members: 1", "lagtest", "orders:0,1,2", "Total lag: 9"} {
		if !strings.Contains(out, w) {
			t.Errorf("groups describe does not show %q:\n%s", w, out)
		}
	}
	if !containsRow(fields(out), []string{"orders", "1", "7", "10", "3", g.Members[0].MemberID}) {
		t.Errorf("groups describe has no row for orders-1 at 7 with lag 3:\n%s", out)
	}

	// The commits created __consumer_offsets: internal, listed only on demand.
	if out := ok(t, b.addr, "topics", "list"); strings.Contains(out, "__consumer_offsets") {
		t.Errorf("topics list shows the internal topic:\n%s", out)
	}
	if out := ok(t, b.addr, "topics", "list", "--internal"); !containsRow(fields(out), []string{"__consumer_offsets", "4", "1", "true"}) {
		t.Errorf("topics list --internal:\n%s", out)
	}

	// Reset is refused while the consumer is a member, and so is delete.
	fails(t, b.addr, 1, []string{"groups", "reset-offsets", "g1", "--all-topics", "--to-earliest", "--execute"}, "active members", "stop its consumers")
	fails(t, b.addr, 1, []string{"groups", "delete", "g1"}, "active members")
	cons.Close()
	deadline := time.Now().Add(10 * time.Second)
	for describeGroup(t, b.addr, "g1").State != "Empty" {
		if time.Now().After(deadline) {
			t.Fatal("the group is not Empty 10s after its consumer closed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A dry run changes nothing.
	out = ok(t, b.addr, "groups", "reset-offsets", "g1", "--all-topics", "--to-earliest")
	if !containsRow(fields(out), []string{"orders", "1", "7", "→", "0", "0", "10"}) || !strings.Contains(out, "dry run: nothing changed") {
		t.Errorf("reset-offsets dry run:\n%s", out)
	}
	wantLag(t, describeGroup(t, b.addr, "g1"), commit, perPart)

	var res ctl.ResetOffsetsResult
	okJSON(t, b.addr, &res, "groups", "reset-offsets", "g1", "--all-topics", "--to-earliest", "--execute")
	if !res.Executed || res.Group != "g1" || len(res.Partitions) != 3 || *res.Partitions[1].OldOffset != 7 || res.Partitions[1].NewOffset != 0 || res.Partitions[1].Clamped {
		t.Errorf("reset-offsets --to-earliest --execute: %+v", res)
	}
	wantLag(t, describeGroup(t, b.addr, "g1"), map[int32]int64{0: 0, 1: 0, 2: 0}, perPart)

	out = ok(t, b.addr, "groups", "reset-offsets", "g1", "--topic", "orders:1", "--to-offset", "5", "--execute")
	if !strings.Contains(out, "committed the new offsets of group g1") {
		t.Errorf("reset-offsets --execute:\n%s", out)
	}
	wantLag(t, describeGroup(t, b.addr, "g1"), map[int32]int64{0: 0, 1: 5, 2: 0}, perPart)

	ok(t, b.addr, "groups", "reset-offsets", "g1", "--topic", "orders", "--shift-by", "3", "--execute")
	wantLag(t, describeGroup(t, b.addr, "g1"), map[int32]int64{0: 3, 1: 8, 2: 3}, perPart)
	okJSON(t, b.addr, &res, "groups", "reset-offsets", "g1", "--topic", "orders:0,2", "--shift-by", "-100", "--execute")
	if len(res.Partitions) != 2 || res.Partitions[1].Partition != 2 || res.Partitions[1].NewOffset != 0 || !res.Partitions[1].Clamped {
		t.Errorf("reset-offsets --shift-by -100: %+v", res)
	}
	wantLag(t, describeGroup(t, b.addr, "g1"), map[int32]int64{0: 0, 1: 8, 2: 0}, perPart)

	// The record at offset i has timestamp base+i s.
	at := base.Add(4 * time.Second).UTC().Format(time.RFC3339)
	ok(t, b.addr, "groups", "reset-offsets", "g1", "--all-topics", "--to-datetime", at, "--execute")
	wantLag(t, describeGroup(t, b.addr, "g1"), map[int32]int64{0: 4, 1: 4, 2: 4}, perPart)
	ok(t, b.addr, "groups", "reset-offsets", "g1", "--all-topics", "--to-datetime", base.Add(-time.Hour).Format(time.RFC3339), "--execute")
	wantLag(t, describeGroup(t, b.addr, "g1"), map[int32]int64{0: 0, 1: 0, 2: 0}, perPart)
	ok(t, b.addr, "groups", "reset-offsets", "g1", "--all-topics", "--to-latest", "--execute")
	wantLag(t, describeGroup(t, b.addr, "g1"), map[int32]int64{0: 10, 1: 10, 2: 10}, perPart)
	okJSON(t, b.addr, &res, "groups", "reset-offsets", "g1", "--topic", "orders:0", "--to-offset", "999")
	if res.Executed || res.Partitions[0].NewOffset != perPart || !res.Partitions[0].Clamped {
		t.Errorf("reset-offsets --to-offset 999: %+v", res)
	}

	fails(t, b.addr, 4, []string{"groups", "reset-offsets", "g1", "--topic", "orders:7", "--to-earliest"}, "no partition 7")
	fails(t, b.addr, 4, []string{"groups", "reset-offsets", "g1", "--topic", "nosuch", "--to-earliest"}, `topic "nosuch" does not exist`)
	fails(t, b.addr, 4, []string{"groups", "reset-offsets", "nosuch", "--all-topics", "--to-earliest"}, `group "nosuch" does not exist`)
	fails(t, b.addr, 4, []string{"groups", "describe", "nosuch"}, `group "nosuch" does not exist`, "samsactl groups list")
	fails(t, b.addr, 4, []string{"groups", "delete", "nosuch"}, `group "nosuch" does not exist`)

	// As with kafka-consumer-groups, a reset may start a group's offsets.
	ok(t, b.addr, "groups", "reset-offsets", "fresh", "--topic", "orders:0,1", "--to-offset", "2", "--execute")
	if g := describeGroup(t, b.addr, "fresh"); len(g.Offsets) != 2 || *g.Offsets[1].CommittedOffset != 2 || g.TotalLag != 16 {
		t.Errorf("a group started by reset-offsets: %+v", g)
	}
	ok(t, b.addr, "groups", "delete", "fresh")

	out = ok(t, b.addr, "groups", "delete", "g1")
	if out != "deleted group g1\n" {
		t.Errorf("groups delete printed %q", out)
	}
	fails(t, b.addr, 4, []string{"groups", "describe", "g1"}, `group "g1" does not exist`)
	if out := ok(t, b.addr, "groups", "list"); len(fields(out)) != 1 {
		t.Errorf("groups left after delete:\n%s", out)
	}
}

func describeGroup(t *testing.T, addr, group string) ctl.GroupDescription {
	t.Helper()
	var gs []ctl.GroupDescription
	okJSON(t, addr, &gs, "groups", "describe", group)
	if len(gs) != 1 || gs[0].Group != group {
		t.Fatalf("groups describe %s: %+v", group, gs)
	}
	return gs[0]
}

// wantLag checks the committed offsets of every partition of "orders" and
// that lag = end - committed.
func wantLag(t *testing.T, g ctl.GroupDescription, committed map[int32]int64, end int64) {
	t.Helper()
	if len(g.Offsets) != len(committed) {
		t.Fatalf("group %s shows %d partitions, want %d: %+v", g.Group, len(g.Offsets), len(committed), g.Offsets)
	}
	var total int64
	for _, o := range g.Offsets {
		want, known := committed[o.Partition]
		if o.Topic != "orders" || !known || o.CommittedOffset == nil || *o.CommittedOffset != want || o.LogEndOffset != end || o.Lag != end-want || o.Error != "" {
			t.Errorf("group %s partition %d: %+v (committed %v), want committed %d lag %d", g.Group, o.Partition, o, deref(o.CommittedOffset), want, end-want)
		}
		total += end - want
	}
	if g.TotalLag != total {
		t.Errorf("group %s total lag %d, want %d", g.Group, g.TotalLag, total)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
