package engine

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/replica"
)

func reserveAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// pair is a primary and its standby, in process, each on its own port;
// the standby fetches from the primary's client listener.
type pair struct {
	primary, standby         *testBroker
	primaryAddr, standbyAddr string
	primaryDir, standbyDir   string
	minISR                   int
	metrics                  [2]*Metrics // primary's and standby's, when set before they start
}

func replicationConfig(role string, self, peer int32, peerAddr string) func(*Config) {
	return func(c *Config) {
		c.NodeID = self
		c.Replication = replica.Config{Role: role, PeerID: peer, PeerClient: peerAddr, PeerLink: peerAddr,
			LagTimeMaxMs: 1500, MinInsyncReplicas: 2}
		fastGroups(c)
	}
}

func startPair(t *testing.T) *pair { return startPairWith(t, 2) }

// startPairWith starts a pair whose min_insync_replicas is minISR (1: a
// lone primary may still change topics, as the epoch scenarios need).
func startPairWith(t *testing.T, minISR int) *pair {
	p := &pair{primaryAddr: reserveAddr(t), standbyAddr: reserveAddr(t), primaryDir: t.TempDir(), standbyDir: t.TempDir(), minISR: minISR}
	p.startPrimary(t)
	p.startStandby(t)
	return p
}

// lenient wraps a config change with min_insync_replicas 1.
func lenient(mod func(*Config)) func(*Config) {
	return func(c *Config) { mod(c); c.Replication.MinInsyncReplicas = 1 }
}

func (p *pair) startPrimary(t *testing.T) {
	mod := replicationConfig(replica.RolePrimary, 1, 2, p.standbyAddr)
	p.primary = startBroker(t, p.primaryDir, func(c *Config) {
		mod(c)
		c.Listen, c.Metrics = p.primaryAddr, p.metrics[0]
		if p.minISR > 0 {
			c.Replication.MinInsyncReplicas = p.minISR
		}
	})
}

func (p *pair) startStandby(t *testing.T) {
	mod := replicationConfig(replica.RoleStandby, 2, 1, p.primaryAddr)
	p.standby = startBroker(t, p.standbyDir, func(c *Config) {
		mod(c)
		c.Listen, c.Metrics = p.standbyAddr, p.metrics[1]
		if p.minISR > 0 {
			c.Replication.MinInsyncReplicas = p.minISR
		}
	})
	waitFor(t, "the standby to follow", 10*time.Second, p.standby.b.pair.Following)
}

// waitCaughtUp waits until every log of the standby ends where the
// primary's does.
func (p *pair) waitCaughtUp(t *testing.T) {
	t.Helper()
	waitFor(t, "the standby to catch up", 20*time.Second, func() bool {
		if p.standby.b.meta.EndOffset() != p.primary.b.meta.EndOffset() {
			return false
		}
		for _, tp := range p.primary.b.topicList() {
			for _, part := range tp.parts() {
				sp := p.standby.b.partition(tp.name, part.idx)
				if sp == nil || sp.log.EndOffset() != part.log.EndOffset() {
					return false
				}
			}
		}
		return true
	})
}

// sameLogs requires byte-identical batches in every log of both nodes.
func (p *pair) sameLogs(t *testing.T) {
	t.Helper()
	for _, tp := range p.primary.b.topicList() {
		for _, part := range tp.parts() {
			sp := p.standby.b.partition(tp.name, part.idx)
			want := readAll(t, part)
			got := readAll(t, sp)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s-%d: standby has %d bytes, primary %d, or they differ", tp.name, part.idx, len(got), len(want))
			}
		}
	}
}

func readAll(t *testing.T, p *partition) []byte {
	t.Helper()
	var out []byte
	for off := p.log.StartOffset(); off < p.log.EndOffset(); {
		sl, err := p.log.Read(off, p.log.EndOffset(), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if sl.Len == 0 {
			break
		}
		buf := make([]byte, sl.Len)
		sl.ReadAt(buf, 0)
		sl.Release()
		out = append(out, buf...)
		off = sl.NextOffset
	}
	return out
}

func TestStandbyFollowsEveryLog(t *testing.T) {
	p := startPair(t)
	cl := p.primary.client(kgo.SeedBrokers(p.primaryAddr, p.standbyAddr), kgo.DefaultProduceTopic("orders"))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(testCtx(t), 3, 2, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, cl, "orders", 0, 2000)
	// Group commits go to __consumer_offsets, which follows too.
	var offs kadm.Offsets
	offs.AddOffset("orders", 0, 42, -1)
	if err := adm.CommitAllOffsets(testCtx(t), "g", offs); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(t)
	p.sameLogs(t)
	if p.standby.b.topic(offsetsTopic) == nil || p.standby.b.ClusterID() != p.primary.b.ClusterID() {
		t.Fatalf("standby catalog: offsets topic %v, cluster %q vs %q", p.standby.b.topic(offsetsTopic) != nil, p.standby.b.ClusterID(), p.primary.b.ClusterID())
	}

	// Both nodes describe the pair the same way.
	for _, addr := range []string{p.primaryAddr, p.standbyAddr} {
		rc := dialRaw(t, addr)
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		topic := "orders"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
		resp := rc.request(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 2 || resp.ControllerID != 1 {
			t.Fatalf("%s: brokers %+v, controller %d", addr, resp.Brokers, resp.ControllerID)
		}
		for _, mp := range resp.Topics[0].Partitions {
			if mp.Leader != 1 || len(mp.Replicas) != 2 || len(mp.ISR) != 2 {
				t.Fatalf("%s: partition %d: leader %d replicas %v isr %v", addr, mp.Partition, mp.Leader, mp.Replicas, mp.ISR)
			}
		}
	}
	// The standby sends writers to the primary.
	rc := dialRaw(t, p.standbyAddr)
	pr := kmsg.NewPtrProduceRequest()
	pr.SetVersion(9)
	pr.Acks, pr.TimeoutMillis = -1, 5000
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "orders", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: rawBatch(-1, -1, -1, "x")}}}}
	if got := rc.request(pr).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; got != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to the standby: %v", kerr.ErrorForCode(got))
	}
}

func TestStandbyDownAndBack(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 2, 2, nil, "t"); err != nil {
		t.Fatal(err)
	}
	all := p.primary.client(kgo.DefaultProduceTopic("t"), kgo.RecordRetries(0), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	one := p.primary.client(kgo.DefaultProduceTopic("t"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceKeyed(t, all, "t", 0, 100)

	p.standby.stop()
	waitFor(t, "the standby to leave the ISR", 10*time.Second, func() bool {
		return !p.primary.b.partition("t", 0).replica.InSync()
	})
	res := all.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("needs two")})
	if err := res.FirstErr(); err == nil || !(errorsIs(err, kerr.NotEnoughReplicas) || errorsIs(err, kerr.NotEnoughReplicasAfterAppend)) {
		t.Fatalf("acks=all without the standby: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	produceKeyed(t, one, "t", 100, 100) // acks=1 goes on

	p.startStandby(t)
	p.waitCaughtUp(t)
	waitFor(t, "the standby back in the ISR", 10*time.Second, func() bool {
		return p.primary.b.partition("t", 0).replica.InSync() && p.primary.b.partition("t", 1).replica.InSync()
	})
	produceKeyed(t, all, "t", 200, 100)
	p.waitCaughtUp(t)
	p.sameLogs(t)
}

func errorsIs(err error, target *kerr.Error) bool { return errors.Is(err, target) }

// Failover: the primary goes with records the standby never got (written
// with acks=1 while the standby was away); the standby is promoted and
// takes new writes at epoch 1; the old primary comes back, finds a newer
// leader, drops its divergent tail and follows. Committed offsets and the
// acknowledged acks=all records survive on the new primary.
func TestFailoverAndRejoin(t *testing.T) {
	p := startPair(t)
	seeds := kgo.SeedBrokers(p.primaryAddr, p.standbyAddr)
	adm := kadm.NewClient(p.primary.client(seeds))
	if _, err := adm.CreateTopic(testCtx(t), 2, 2, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	all := p.primary.client(seeds, kgo.DefaultProduceTopic("ledger"))
	produceKeyed(t, all, "ledger", 0, 500) // acks=all: on both
	var offs kadm.Offsets
	offs.AddOffset("ledger", 0, 100, -1)
	if err := adm.CommitAllOffsets(testCtx(t), "readers", offs); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(t)
	acked := map[int32]int64{0: p.primary.b.partition("ledger", 0).log.EndOffset(), 1: p.primary.b.partition("ledger", 1).log.EndOffset()}

	// The standby goes away; the primary takes acks=1 writes alone.
	p.standby.stop()
	one := p.primary.client(kgo.SeedBrokers(p.primaryAddr), kgo.DefaultProduceTopic("ledger"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceKeyed(t, one, "ledger", 500, 50)
	divergent := p.primary.b.partition("ledger", 0).log.EndOffset()
	p.primary.stop()

	// The standby comes back alone and is promoted.
	p.standby = startBroker(t, p.standbyDir, func(c *Config) {
		replicationConfig(replica.RoleStandby, 2, 1, p.primaryAddr)(c)
		c.Listen = p.standbyAddr
	})
	// ElectLeaders goes to the standby itself (samsactl promote does this;
	// a client would route it to the dead controller).
	el := kmsg.NewPtrElectLeadersRequest()
	el.SetVersion(2)
	el.TimeoutMillis = 10000
	eresp := dialRaw(t, p.standbyAddr).request(el).(*kmsg.ElectLeadersResponse)
	for _, rt := range eresp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("elect %s-%d: %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
	if !p.standby.b.pair.IsPrimary() || p.standby.b.pair.Epoch() != 1 {
		t.Fatalf("after promotion: role %q epoch %d", p.standby.b.pair.Role(), p.standby.b.pair.Epoch())
	}
	for part, end := range acked {
		if got := p.standby.b.partition("ledger", part).log.EndOffset(); got != end {
			t.Fatalf("partition %d: the new primary ends at %d, %d were acknowledged with acks=all", part, got, end)
		}
	}
	waitFor(t, "groups loaded on the new primary", 10*time.Second, func() bool { return p.standby.b.groups.IsLoaded() })
	got, err := kadm.NewClient(p.standby.client()).FetchOffsets(testCtx(t), "readers")
	if o, ok := got.Lookup("ledger", 0); err != nil || !ok || o.At != 100 {
		t.Fatalf("committed offset on the new primary: %+v %v", o, err)
	}
	// New writes at epoch 1 (acks=1: the old primary is not back yet).
	one2 := p.standby.client(kgo.SeedBrokers(p.standbyAddr), kgo.DefaultProduceTopic("ledger"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceKeyed(t, one2, "ledger", 1000, 30)

	// The old primary returns: it follows the new one and drops its tail.
	p.primary = startBroker(t, p.primaryDir, func(c *Config) {
		replicationConfig(replica.RolePrimary, 1, 2, p.standbyAddr)(c)
		c.Listen = p.primaryAddr
	})
	if !p.primary.b.pair.IsStandby() {
		t.Fatalf("the old primary came back as %q", p.primary.b.pair.Role())
	}
	if divergent <= acked[0] {
		t.Fatalf("test setup: no divergent tail (%d vs %d)", divergent, acked[0])
	}
	newPrimary, newStandby := p.standby, p.primary
	waitFor(t, "the old primary to converge", 20*time.Second, func() bool {
		for _, part := range newPrimary.b.partition("ledger", 0).t.parts() {
			sp := newStandby.b.partition("ledger", part.idx)
			if sp == nil || sp.log.EndOffset() != part.log.EndOffset() {
				return false
			}
		}
		return true
	})
	q := &pair{primary: newPrimary, standby: newStandby}
	q.waitCaughtUp(t)
	q.sameLogs(t)
	// With the pair whole again, acks=all works on the new primary.
	all2 := newPrimary.client(kgo.SeedBrokers(p.primaryAddr, p.standbyAddr), kgo.DefaultProduceTopic("ledger"))
	waitFor(t, "the old primary in the ISR", 10*time.Second, func() bool {
		return newPrimary.b.partition("ledger", 0).replica.InSync()
	})
	produceKeyed(t, all2, "ledger", 2000, 100)
}

// With link_compression = "lz4" the standby follows through an lz4 relay
// and its logs are still byte-identical copies.
func TestStandbyOverCompressedLink(t *testing.T) {
	p := &pair{primaryAddr: reserveAddr(t), standbyAddr: reserveAddr(t), primaryDir: t.TempDir(), standbyDir: t.TempDir()}
	p.startPrimary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go replica.ServeCompressedLink(l, p.primaryAddr, testLogger())
	mod := replicationConfig(replica.RoleStandby, 2, 1, p.primaryAddr)
	p.standby = startBroker(t, p.standbyDir, func(c *Config) {
		mod(c)
		c.Listen = p.standbyAddr
		c.Replication.PeerLink = l.Addr().String()
		c.Replication.LinkCompression = replica.LinkLZ4
	})
	waitFor(t, "the standby to follow", 10*time.Second, p.standby.b.pair.Following)
	cl := p.primary.client(kgo.DefaultProduceTopic("zipped"))
	if _, err := kadm.NewClient(cl).CreateTopic(testCtx(t), 2, 2, nil, "zipped"); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, cl, "zipped", 0, 3000)
	p.waitCaughtUp(t)
	p.sameLogs(t)
}

// With min_insync_replicas 2, a primary without its standby acknowledges
// no catalog change and no offset commit: a primary cut off from a
// promoted standby must not acknowledge what the failover drops.
func TestLonePrimaryRefusesCatalogAndCommits(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "t"); err != nil {
		t.Fatal(err)
	}
	var offs kadm.Offsets
	offs.AddOffset("t", 0, 1, -1)
	if err := adm.CommitAllOffsets(testCtx(t), "g", offs); err != nil {
		t.Fatalf("commit with the standby: %v", err)
	}
	p.standby.stop()
	waitFor(t, "the standby to leave the ISR", 10*time.Second, func() bool { return !p.primary.b.metaPart.replica.InSync() })
	if _, terr := p.primary.b.createTopic("u", 1, -1, nil, false); terr == nil || terr.code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("create without the standby: %v", terr)
	}
	rc := dialRaw(t, p.primaryAddr)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.SetVersion(8)
	commit.Group, commit.Generation = "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 2}}}}
	if got := rc.request(commit).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; got != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit without the standby: %v", kerr.ErrorForCode(got))
	}
}

// A consumer whose last fetched batch is of an epoch that ended before its
// fetch offset (a failover cut the tail it read) gets DivergingEpoch and
// no records, so it truncates (KIP-320); one in step gets records.
func TestFetchDivergingEpoch(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	cl := tb.client(kgo.DefaultProduceTopic("div"))
	createTopic(t, cl, "div", 1, nil)
	for i := 0; i < 5; i++ {
		cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("e0")})
	}
	p := tb.b.partition("div", 0)
	p.log.SetLeaderEpoch(2)
	for i := 0; i < 5; i++ {
		cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("e2")})
	}
	fetch := func(lastEpoch int32, offset int64) kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 10, 1, 1<<20
		req.SessionEpoch = -1
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.LastFetchedEpoch, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, lastEpoch, 1<<20, -1
		req.Topics = []kmsg.FetchRequestTopic{{Topic: "div", Partitions: []kmsg.FetchRequestTopicPartition{rp}}}
		return dialRaw(t, tb.addr).request(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}
	got := fetch(1, 8)
	if got.DivergingEpoch.Epoch != 0 || got.DivergingEpoch.EndOffset != 5 || len(got.RecordBatches) != 0 {
		t.Fatalf("epoch 1 at offset 8: diverging %+v, %d record bytes; want epoch 0 ending at 5, none", got.DivergingEpoch, len(got.RecordBatches))
	}
	if got := fetch(2, 8); got.DivergingEpoch.Epoch != -1 || len(got.RecordBatches) == 0 || got.ErrorCode != 0 {
		t.Fatalf("epoch 2 at offset 8: diverging %+v, %d record bytes, %v", got.DivergingEpoch, len(got.RecordBatches), kerr.ErrorForCode(got.ErrorCode))
	}
	if got := fetch(0, 3); got.DivergingEpoch.Epoch != -1 || len(got.RecordBatches) == 0 {
		t.Fatalf("epoch 0 at offset 3: diverging %+v", got.DivergingEpoch)
	}
}

// With standby_fsync, an acks=all record is fsynced on the standby before
// the primary acknowledges it (the standby's next fetch acknowledges only
// what its disk holds). Neither node flushes in the background here, so
// only that fsync can make the standby's copy durable.
func TestStandbyFsync(t *testing.T) {
	for _, fsync := range []bool{true, false} {
		t.Run(fmt.Sprintf("standby_fsync=%v", fsync), func(t *testing.T) {
			pAddr, sAddr := reserveAddr(t), reserveAddr(t)
			mod := func(role string, self, peer int32, peerAddr, listen string) func(*Config) {
				return func(c *Config) {
					replicationConfig(role, self, peer, peerAddr)(c)
					c.Listen, c.FlushIntervalMs = listen, 0
					c.Replication.StandbyFsync = fsync
				}
			}
			p := &pair{primaryAddr: pAddr, standbyAddr: sAddr}
			p.primary = startBroker(t, t.TempDir(), mod(replica.RolePrimary, 1, 2, sAddr, pAddr))
			p.standby = startBroker(t, t.TempDir(), mod(replica.RoleStandby, 2, 1, pAddr, sAddr))
			waitFor(t, "the standby in sync", 10*time.Second, func() bool { return p.primary.b.metaPart.replica.InSync() })
			if _, err := kadm.NewClient(p.primary.client()).CreateTopic(testCtx(t), 1, 2, nil, "fs"); err != nil {
				t.Fatal(err)
			}
			cl := p.primary.client(kgo.DefaultProduceTopic("fs"), kgo.RequiredAcks(kgo.AllISRAcks()))
			waitFor(t, "fs in sync", 10*time.Second, func() bool {
				part := p.primary.b.partition("fs", 0)
				return part != nil && part.replica.InSync()
			})
			for i := range 20 {
				r := &kgo.Record{Value: []byte(fmt.Sprintf("v%d", i))}
				if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
				synced := p.standby.b.partition("fs", 0).log.SyncedOffset()
				if fsync && synced <= r.Offset {
					t.Fatalf("record %d acknowledged with the standby fsynced only below %d", r.Offset, synced)
				}
				if !fsync && i == 19 {
					t.Logf("without standby_fsync: record %d acknowledged, standby fsynced below %d", r.Offset, synced)
				}
			}
		})
	}
}

// TestPromotionFsyncsCopies: without standby_fsync (and with no background
// flush), the standby's copies of acks=all records are written but not
// fsynced, and its disk starts their writeback per write; promotion fsyncs
// every copy before the node leads, so what the pair acknowledged is on
// the new primary's disk, and stops treating its logs as copies.
func TestPromotionFsyncsCopies(t *testing.T) {
	pAddr, sAddr := reserveAddr(t), reserveAddr(t)
	mod := func(role string, self, peer int32, peerAddr, listen string) func(*Config) {
		return func(c *Config) {
			replicationConfig(role, self, peer, peerAddr)(c)
			c.Listen, c.FlushIntervalMs = listen, 0
		}
	}
	p := &pair{primaryAddr: pAddr, standbyAddr: sAddr}
	p.primary = startBroker(t, t.TempDir(), mod(replica.RolePrimary, 1, 2, sAddr, pAddr))
	p.standby = startBroker(t, t.TempDir(), mod(replica.RoleStandby, 2, 1, pAddr, sAddr))
	waitFor(t, "the standby in sync", 10*time.Second, func() bool { return p.primary.b.metaPart.replica.InSync() })
	if p.primary.b.store.Copying() || !p.standby.b.store.Copying() {
		t.Fatalf("copying: primary %v, standby %v; want false, true", p.primary.b.store.Copying(), p.standby.b.store.Copying())
	}
	if _, err := kadm.NewClient(p.primary.client()).CreateTopic(testCtx(t), 1, 2, nil, "pf"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pf in sync", 10*time.Second, func() bool {
		part := p.primary.b.partition("pf", 0)
		return part != nil && part.replica.InSync()
	})
	cl := p.primary.client(kgo.DefaultProduceTopic("pf"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 50 {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(fmt.Sprintf("v%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	copyLog := p.standby.b.partition("pf", 0).log
	end := p.primary.b.partition("pf", 0).log.EndOffset()
	if copyLog.EndOffset() != end {
		t.Fatalf("the standby holds up to %d, %d were acknowledged", copyLog.EndOffset(), end)
	}
	if copyLog.SyncedOffset() >= end {
		t.Fatalf("the copy is fsynced up to %d before promotion; the test needs it unsynced", copyLog.SyncedOffset())
	}
	p.primary.stop()
	if err := p.standby.b.pair.Promote("test"); err != nil {
		t.Fatal(err)
	}
	if got := copyLog.SyncedOffset(); got < end {
		t.Fatalf("promoted with the copy fsynced only below %d of %d", got, end)
	}
	if p.standby.b.store.Copying() {
		t.Fatal("the new primary still treats its logs as copies")
	}
}

// TestPrimaryListsStandbyOnlyInSync: clients are told of the standby while
// it follows; once it is gone (out of the ISR), Metadata lists the primary
// alone and the standby as an offline replica, as Kafka leaves fenced
// brokers out. DescribeCluster, the operator's view, lists both.
func TestPrimaryListsStandbyOnlyInSync(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "listed"); err != nil {
		t.Fatal(err)
	}
	brokers := func() (int, []int32) {
		md, err := adm.Metadata(testCtx(t), "listed")
		if err != nil {
			t.Fatal(err)
		}
		return len(md.Brokers), md.Topics["listed"].Partitions[0].OfflineReplicas
	}
	if n, off := brokers(); n != 2 || len(off) != 0 {
		t.Fatalf("with the standby in sync: %d brokers, offline replicas %v", n, off)
	}
	p.standby.stop()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n, off := brokers()
		if n == 1 && len(off) == 1 && off[0] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the standby left: %d brokers, offline replicas %v", n, off)
		}
	}
	cl, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(testCtx(t), p.primary.client())
	if err != nil || cl.ErrorCode != 0 {
		t.Fatal(err, cl.ErrorCode)
	}
	if len(cl.Brokers) != 2 {
		t.Fatalf("DescribeCluster lists %d brokers of the pair", len(cl.Brokers))
	}
}
