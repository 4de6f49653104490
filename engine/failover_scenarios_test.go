package engine

// Failover scenarios from a review of the replication code. Each test
// reproduced a bug, now fixed; its comment says what used to go wrong.

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/replica"
)

// Scenario 1 (from review): the metadata log's replicaState is never visited by checkISR, so an
// appendMeta whose waiter was queued while the standby was "in the ISR"
// never returns once the standby stops fetching; metaMu stays held.
func TestFailoverScenarioMetaWaiterHangs(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "a"); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(t)
	p.standby.stop() // the standby goes away for good
	done := make(chan error, 1)
	go func() {
		_, terr := p.primary.b.createTopic("b", 1, -1, nil, false)
		if terr != nil {
			done <- terr
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		t.Logf("createTopic returned: %v (no hang)", err)
	case <-time.After(10 * time.Second): // lag.time.max is 1.5s
		t.Fatalf("createTopic still blocked 10s after the standby left (lag_time_max 1.5s): metaMu held forever")
	}
}

func prodOne(t *testing.T, addr, topic string, acks int16, v string) int16 {
	rc := dialRaw(t, addr)
	pr := kmsg.NewPtrProduceRequest()
	pr.SetVersion(9)
	pr.Acks, pr.TimeoutMillis = acks, 5000
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: rawBatch(-1, -1, -1, v)}}}}
	return rc.request(pr).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

func electSelf(t *testing.T, addr string) {
	el := kmsg.NewPtrElectLeadersRequest()
	el.SetVersion(2)
	el.TimeoutMillis = 10000
	eresp := dialRaw(t, addr).request(el).(*kmsg.ElectLeadersResponse)
	for _, rt := range eresp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("elect %s-%d: %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
}

// Scenario 2 (from review): a second failover leaves a divergent tail on the returning node:
// the leader's epoch cache has no entry for the epoch it leads in until it
// appends, so OffsetForLeaderEpoch answers (-1,-1) and truncateToLeader
// skips the partition.
func TestFailoverScenarioSecondFailoverDiverges(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if c := prodOne(t, p.primaryAddr, "t", -1, "common"); c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
	}
	p.waitCaughtUp(t)
	nodeA, nodeB := p.primaryDir, p.standbyDir
	addrA, addrB := p.primaryAddr, p.standbyAddr
	// Failover 1: A stops, B is promoted (epoch 1).
	p.primary.stop()
	p.standby.stop()
	B := startBroker(t, nodeB, func(c *Config) { replicationConfig(replica.RoleStandby, 2, 1, addrA)(c); c.Listen = addrB })
	electSelf(t, addrB)
	// A comes back and follows B.
	A := startBroker(t, nodeA, func(c *Config) { replicationConfig(replica.RolePrimary, 1, 2, addrB)(c); c.Listen = addrA })
	if !A.b.pair.IsStandby() {
		t.Fatalf("A is %s", A.b.pair.Role())
	}
	q := &pair{primary: B, standby: A}
	q.waitCaughtUp(t)
	// A stops; B writes epoch-1 records to t-0 with acks=1 that A never gets.
	A.stop()
	for i := 0; i < 5; i++ {
		if c := prodOne(t, addrB, "t", 1, "B-only-epoch1"); c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
	}
	B.stop()
	// Failover 2: A comes back (B down), is promoted to epoch 2.
	A = startBroker(t, nodeA, func(c *Config) { replicationConfig(replica.RolePrimary, 1, 2, addrB)(c); c.Listen = addrA })
	t.Logf("A restarted as %s epoch %d", A.b.pair.Role(), A.b.pair.Epoch())
	if A.b.pair.IsStandby() {
		electSelf(t, addrA)
	}
	t.Logf("A now %s epoch %d; t-0 log epoch %d end %d", A.b.pair.Role(), A.b.pair.Epoch(), A.b.partition("t", 0).log.LeaderEpoch(), A.b.partition("t", 0).log.EndOffset())
	// B returns and must drop its epoch-1 tail.
	B = startBroker(t, nodeB, func(c *Config) { replicationConfig(replica.RoleStandby, 2, 1, addrA)(c); c.Listen = addrB })
	t.Logf("B restarted as %s; t-0 end %d", B.b.pair.Role(), B.b.partition("t", 0).log.EndOffset())
	time.Sleep(2 * time.Second)
	t.Logf("B t-0 end after following: %d (A's is %d)", B.b.partition("t", 0).log.EndOffset(), A.b.partition("t", 0).log.EndOffset())
	// A takes new writes at epoch 2 (acks=1: B not in ISR yet).
	for i := 0; i < 5; i++ {
		if c := prodOne(t, addrA, "t", 1, "A-epoch2"); c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
	}
	for i := 0; i < 5; i++ { // once B is in the ISR, acks=all works
		var c int16
		for try := 0; try < 50; try++ {
			if c = prodOne(t, addrA, "t", -1, "A-epoch2-all"); c == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if c != 0 {
			t.Fatalf("acks=all on A: %v", kerr.ErrorForCode(c))
		}
	}
	r := &pair{primary: A, standby: B}
	r.waitCaughtUp(t)
	a, b := readAll(t, A.b.partition("t", 0)), readAll(t, B.b.partition("t", 0))
	if !bytes.Equal(a, b) {
		t.Errorf("t-0 diverged: A and B hold different bytes at the same offsets (A has B-only records: %v, B has them: %v)",
			bytes.Contains(a, []byte("B-only-epoch1")), bytes.Contains(b, []byte("B-only-epoch1")))
	}
	_ = kgo.LeaderAck
}

// Scenario 3 (from review): a promoted node that restarts stamps its appends with the epoch of
// its last checkpoint (0), not the pair's epoch; the returning old primary
// then keeps part of its divergent epoch-0 tail.
func TestFailoverScenarioRestartedPrimaryLosesEpoch(t *testing.T) {
	p := startPairWith(t, 1)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if c := prodOne(t, p.primaryAddr, "t", -1, "common"); c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
	}
	p.waitCaughtUp(t)
	nodeA, nodeB := p.primaryDir, p.standbyDir
	addrA, addrB := p.primaryAddr, p.standbyAddr
	p.standby.stop()
	for i := 0; i < 5; i++ { // A-only, acks=1
		if c := prodOne(t, addrA, "t", 1, "A-only"); c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
	}
	p.primary.stop()
	B := startBroker(t, nodeB, func(c *Config) { lenient(replicationConfig(replica.RoleStandby, 2, 1, addrA))(c); c.Listen = addrB })
	electSelf(t, addrB)
	B.stop() // e.g. a routine restart of the new primary
	B = startBroker(t, nodeB, func(c *Config) { lenient(replicationConfig(replica.RoleStandby, 2, 1, addrA))(c); c.Listen = addrB })
	// The stale primary rule: with its peer away, B does not lead.
	if !B.b.pair.Waiting() {
		t.Fatalf("B restarted with A away as %s, not waiting for it", B.b.pair.Role())
	}
	if c := prodOne(t, addrB, "t", 1, "B-while-waiting"); c != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to a waiting node: %v", kerr.ErrorForCode(c))
	}
	// A returns: it follows B, which outranks it, and B leads again.
	A := startBroker(t, nodeA, func(c *Config) { lenient(replicationConfig(replica.RolePrimary, 1, 2, addrB))(c); c.Listen = addrA })
	if !A.b.pair.IsStandby() {
		t.Fatalf("A is %s", A.b.pair.Role())
	}
	for deadline := time.Now().Add(10 * time.Second); !B.b.pair.IsPrimary(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("B is %s 10 s after A returned", B.b.pair.Role())
		}
	}
	t.Logf("B leads again: pair epoch %d, t-0 log epoch %d", B.b.pair.Epoch(), B.b.partition("t", 0).log.LeaderEpoch())
	for i := 0; i < 3; i++ {
		if c := prodOne(t, addrB, "t", 1, "B-new"); c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
	}
	// a topic created after promotion
	if _, err := kadm.NewClient(B.client()).CreateTopic(testCtx(t), 1, 2, nil, "fresh"); err != nil {
		t.Fatal(err)
	}
	prodOne(t, addrB, "fresh", 1, "x")
	t.Logf("fresh-0 log epoch on the epoch-%d primary: %d", B.b.pair.Epoch(), B.b.partition("fresh", 0).log.LeaderEpoch())
	q := &pair{primary: B, standby: A}
	q.waitCaughtUp(t)
	a, b := readAll(t, A.b.partition("t", 0)), readAll(t, B.b.partition("t", 0))
	if !bytes.Equal(a, b) {
		t.Errorf("t-0 diverged after rejoin: A keeps A-only records: %v; B's B-new at the same offsets: %v",
			bytes.Contains(a, []byte("A-only")), bytes.Contains(b, []byte("B-new")))
	}
}

// Scenario 4 (from review): the old primary restarts while the promoted node is down; both then
// run as primary for good.
func TestFailoverScenarioTwoPrimaries(t *testing.T) {
	p := startPair(t)
	nodeA, nodeB := p.primaryDir, p.standbyDir
	addrA, addrB := p.primaryAddr, p.standbyAddr
	p.primary.stop()
	p.standby.stop()
	B := startBroker(t, nodeB, func(c *Config) { replicationConfig(replica.RoleStandby, 2, 1, addrA)(c); c.Listen = addrB })
	electSelf(t, addrB)
	B.stop()
	A := startBroker(t, nodeA, func(c *Config) { replicationConfig(replica.RolePrimary, 1, 2, addrB)(c); c.Listen = addrA })
	B = startBroker(t, nodeB, func(c *Config) { replicationConfig(replica.RoleStandby, 2, 1, addrA)(c); c.Listen = addrB })
	time.Sleep(3 * time.Second)
	t.Logf("A: %s epoch %d; B: %s epoch %d", A.b.pair.Role(), A.b.pair.Epoch(), B.b.pair.Role(), B.b.pair.Epoch())
	if A.b.pair.IsPrimary() && B.b.pair.IsPrimary() {
		for _, addr := range []string{addrA, addrB} {
			if c := prodOne(t, addr, "auto", 1, "w"); c != 0 {
				t.Logf("produce to %s: %v", addr, kerr.ErrorForCode(c))
			}
		}
		t.Errorf("two primaries")
	}
}

// Scenario 5 (from review): the old primary's metadata log is truncated on rejoin but its
// catalog is not reloaded: a topic from its divergent tail lives on, takes
// writes after a later promotion, and vanishes at the next restart.
func TestFailoverScenarioPhantomTopic(t *testing.T) {
	p := startPairWith(t, 1)
	nodeA, nodeB := p.primaryDir, p.standbyDir
	addrA, addrB := p.primaryAddr, p.standbyAddr
	p.waitCaughtUp(t)
	p.standby.stop()
	time.Sleep(2 * time.Second) // past lag_time_max, else R1 hangs the create
	if _, err := kadm.NewClient(p.primary.client()).CreateTopic(testCtx(t), 1, 1, map[string]*string{"min.insync.replicas": kadmStr("1")}, "x"); err != nil {
		t.Fatal(err)
	}
	p.primary.stop()
	B := startBroker(t, nodeB, func(c *Config) { lenient(replicationConfig(replica.RoleStandby, 2, 1, addrA))(c); c.Listen = addrB })
	electSelf(t, addrB)
	A := startBroker(t, nodeA, func(c *Config) { lenient(replicationConfig(replica.RolePrimary, 1, 2, addrB))(c); c.Listen = addrA })
	q := &pair{primary: B, standby: A}
	time.Sleep(500 * time.Millisecond)
	q.waitCaughtUp(t)
	t.Logf("after rejoin: A has topic x: %v, B has x: %v", A.b.topic("x") != nil, B.b.topic("x") != nil)
	B.stop()
	electSelf(t, addrA)
	acked := 0
	for i := 0; i < 5; i++ {
		if c := prodOne(t, addrA, "x", -1, "acked-on-x"); c == 0 {
			acked++
		} else {
			t.Logf("produce: %v", kerr.ErrorForCode(c))
		}
	}
	t.Logf("acks=all acknowledged on x: %d", acked)
	A.stop()
	A = startBroker(t, nodeA, func(c *Config) { lenient(replicationConfig(replica.RolePrimary, 1, 2, addrB))(c); c.Listen = addrA })
	if acked > 0 && A.b.topic("x") == nil {
		t.Errorf("topic x with %d acknowledged records is gone after A restarts", acked)
	}
}

func kadmStr(s string) *string { return &s }

// Scenario 6 (from review): caughtUp is only refreshed when a fetch offset reaches the log end
// *now*; under a steady write load it never does and the standby leaves
// the ISR although it is milliseconds behind.
func TestFailoverScenarioISRUnderLoad(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "load"); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(t)
	stop := make(chan struct{})
	for k := 0; k < 6; k++ {
		cl := p.primary.client(kgo.DefaultProduceTopic("load"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0))
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				cl.Produce(testCtx(t), &kgo.Record{Value: bytes.Repeat([]byte("x"), 100)}, nil)
			}
		}()
	}
	part := p.primary.b.partition("load", 0)
	out, maxLag := 0, int64(0)
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		if !part.replica.InSync() {
			out++
		}
		if l := part.log.EndOffset() - p.standby.b.partition("load", 0).log.EndOffset(); l > maxLag {
			maxLag = l
		}
	}
	close(stop)
	t.Logf("standby out of the ISR in %d of 100 samples over 5s (lag_time_max 1.5s); max lag seen %d records; end %d", out, maxLag, part.log.EndOffset())
	if out > 20 {
		t.Errorf("a standby that keeps up left the ISR under load")
	}
}

// Scenario 7 (from review): a consumer fetch between the high watermark and the log end gets
// OFFSET_OUT_OF_RANGE (Kafka answers empty), which triggers its reset policy.
func TestFailoverScenarioFetchAboveHWM(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "h"); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(t)
	time.Sleep(200 * time.Millisecond)
	p.standby.stop() // within lag_time_max it is still in the ISR
	if c := prodOne(t, p.primaryAddr, "h", 1, "one"); c != 0 {
		t.Fatal(kerr.ErrorForCode(c))
	}
	part := p.primary.b.partition("h", 0)
	t.Logf("hwm %d leo %d", part.replica.HighWatermark(), part.log.EndOffset())
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(11)
	f.ReplicaID = -1
	f.MaxBytes = 1 << 20
	f.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "h"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset = 1 // the offset after the record just produced
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	resp := dialRaw(t, p.primaryAddr).request(f).(*kmsg.FetchResponse)
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Errorf("fetch at offset 1 (hwm 0, leo 1): %v", kerr.ErrorForCode(c))
	}
}

// Scenario 8 (from review): a standby whose fetch offset fell below the primary's log start
// (retention ran while it was away) spins on OFFSET_OUT_OF_RANGE forever.
func TestFailoverScenarioStandbyBelowLogStart(t *testing.T) {
	p := startPair(t)
	adm := kadm.NewClient(p.primary.client())
	cfg := map[string]*string{"segment.bytes": kadmStr("2048"), "retention.bytes": kadmStr("4096")}
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, cfg, "r"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		prodOne(t, p.primaryAddr, "r", -1, "early")
	}
	p.waitCaughtUp(t)
	p.standby.stop()
	time.Sleep(2 * time.Second)
	for i := 0; i < 400; i++ {
		prodOne(t, p.primaryAddr, "r", 1, string(bytes.Repeat([]byte("y"), 50)))
	}
	p.primary.b.store.EnforceRetention()
	part := p.primary.b.partition("r", 0)
	t.Logf("primary log start %d end %d", part.log.StartOffset(), part.log.EndOffset())
	p.startStandby(t)
	time.Sleep(3 * time.Second)
	sp := p.standby.b.partition("r", 0)
	t.Logf("standby r-0 end %d; in ISR %v", sp.log.EndOffset(), part.replica.InSync())
	if sp.log.EndOffset() < part.log.StartOffset() {
		t.Errorf("standby stuck below the primary's log start")
	}
}
