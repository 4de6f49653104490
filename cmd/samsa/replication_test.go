package main

// A hot standby pair of broker processes on loopback: the standby follows
// every log, acks=all waits for it, and with it gone acks=all fails while
// acks=1 goes on; back, it catches up. Both logs end byte-identical.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/tools/ctl"
)

// pairConfig writes a config file for one node of a pair: the shipped
// config with the node id and a [replication] section.
func pairConfig(t *testing.T, nodeID, peerID int32, role, link, peerClient, peerLink string, extra ...string) string {
	t.Helper()
	base, err := os.ReadFile(repoConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(base), "node_id = 1\n", fmt.Sprintf("node_id = %d\n", nodeID), 1)
	i := strings.Index(cfg, "\n[replication]\n")
	j := strings.Index(cfg[i+1:], "\n[") + i + 2 // the next section
	if i < 0 || j <= i+1 {
		t.Fatal("config.toml has no [replication] section followed by another")
	}
	lag := "replica_lag_time_max_ms = 1500\n" // unless extra sets it
	if strings.Contains(strings.Join(extra, "\n"), "replica_lag_time_max_ms") {
		lag = ""
	}
	cfg = cfg[:i+1] + fmt.Sprintf(`[replication]
role = %q
listen = %q
peer_id = %d
peer_client = %q
peer_link = %q
%s%s

`, role, link, peerID, peerClient, peerLink, lag, strings.Join(extra, "\n")) + cfg[j:]
	cfg = strings.Replace(cfg, "initial_rebalance_delay_ms = 3000", "initial_rebalance_delay_ms = 100", 1)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("node%d.toml", nodeID))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type brokerPair struct{ primary, standby *broker }

func startPair(t *testing.T) *brokerPair {
	t.Helper()
	pAddr, sAddr, pLink, sLink := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	pp := &broker{t: t, addr: pAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: pairConfig(t, 1, 2, "primary", pLink, sAddr, sLink)}
	ss := &broker{t: t, addr: sAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: pairConfig(t, 2, 1, "standby", sLink, pAddr, pLink)}
	t.Cleanup(pp.cleanup)
	t.Cleanup(ss.cleanup)
	pp.start()
	ss.start()
	waitInSync(t, pp.addr)
	return &brokerPair{pp, ss}
}

// waitInSync waits until the primary at addr has its standby in sync (the
// metadata log's ISR, which Metadata reports when asked for it by name):
// until then, topic changes are refused (min_insync_replicas 2).
func waitInSync(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw := dialRaw(t, addr)
		req := kmsg.NewPtrMetadataRequest()
		name := "__cluster_metadata"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
		resp := raw.roundTrip(req, 12).(*kmsg.MetadataResponse)
		raw.Close()
		if len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 && len(resp.Topics[0].Partitions[0].ISR) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby never got in sync with %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logFiles maps each log's segment files (partitions and the metadata
// log) to their bytes.
func logFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "*.log"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, m)
		out[rel] = b
	}
	return out
}

func TestStandbyPairProcesses(t *testing.T) {
	p := startPair(t)
	seeds := kgo.SeedBrokers(p.primary.addr, p.standby.addr)
	cl := p.primary.client(seeds, kgo.DefaultProduceTopic("paired"))
	r, err := p.primary.admin().CreateTopic(timeout(t, 10*time.Second), 3, 2, nil, "paired")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	send := func(c *kgo.Client, from, n int) error {
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d", i))})
		}
		return c.ProduceSync(timeout(t, 30*time.Second), rs...).FirstErr()
	}
	if err := send(cl, 0, 3000); err != nil {
		t.Fatalf("acks=all with the standby in sync: %v", err)
	}

	// Standby gone: acks=all fails (min.insync.replicas=2), acks=1 goes on.
	p.standby.kill()
	time.Sleep(2 * time.Second) // past replica_lag_time_max_ms
	strict := p.primary.client(seeds, kgo.DefaultProduceTopic("paired"), kgo.RecordRetries(0), kgo.DisableIdempotentWrite())
	err = send(strict, 3000, 10)
	if !errors.Is(err, kerr.NotEnoughReplicas) && !errors.Is(err, kerr.NotEnoughReplicasAfterAppend) {
		t.Fatalf("acks=all without the standby: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	leaderOnly := p.primary.client(seeds, kgo.DefaultProduceTopic("paired"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := send(leaderOnly, 3010, 500); err != nil {
		t.Fatalf("acks=1 without the standby: %v", err)
	}

	// Back: it catches up and acks=all works again.
	p.standby.restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := send(strict, 3510, 10); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("acks=all after the standby came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := send(cl, 3520, 1000); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the standby's last fetch
	p.standby.stop()
	p.primary.stop()
	want, got := logFiles(t, p.primary.dataDir), logFiles(t, p.standby.dataDir)
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("no segment files")
	}
	for _, n := range names {
		if !bytes.Equal(want[n], got[n]) {
			t.Fatalf("%s: primary has %d bytes, standby %d, or they differ", n, len(want[n]), len(got[n]))
		}
	}
}

// SIGKILL the primary during an acks=all load (min.insync.replicas=2),
// promote the standby: every acknowledged record is on it, once and in
// order; the idempotent producer and a group consumer given both
// addresses carry on. The old primary comes back as the standby, drops
// what the new primary does not have, and converges to identical logs.
func TestFailoverAfterKill(t *testing.T) {
	p := startPair(t)
	seeds := kgo.SeedBrokers(p.primary.addr, p.standby.addr)
	r, err := p.primary.admin().CreateTopic(timeout(t, 10*time.Second), 3, 2, nil, "orders")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	prod := p.primary.client(seeds, kgo.DefaultProduceTopic("orders"), kgo.RetryTimeout(90*time.Second))
	type ack struct {
		partition int32
		offset    int64
	}
	var mu sync.Mutex
	acked := map[int]ack{}
	var produceErr error
	var wg sync.WaitGroup
	const total = 6000
	stopAt := make(chan struct{})
	go func() {
		defer close(stopAt)
		for i := 0; i < total; i++ {
			wg.Add(1)
			i := i
			prod.Produce(context.Background(), &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))}, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					produceErr = err
					return
				}
				acked[i] = ack{r.Partition, r.Offset}
			})
			if i%500 == 499 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	// A group consumer on both addresses, committing as it goes.
	consumed := map[string]bool{}
	var cmu sync.Mutex
	cons := p.primary.client(seeds, kgo.ConsumerGroup("order-readers"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(200*time.Millisecond))
	consDone := make(chan struct{})
	stopCons := make(chan struct{})
	go func() {
		defer close(consDone)
		for {
			select {
			case <-stopCons:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			fs := cons.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				cmu.Lock()
				consumed[string(r.Key)] = true
				cmu.Unlock()
			})
		}
	}()

	// Kill the primary once some records are acknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 1500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records acknowledged before the kill", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.primary.kill()
	mu.Lock()
	ackedAtKill := map[int]ack{}
	for k, v := range acked {
		ackedAtKill[k] = v
	}
	mu.Unlock()
	t.Logf("killed the primary with %d of %d records acknowledged", len(ackedAtKill), total)
	if err := ctl.Promote(timeout(t, 30*time.Second), p.standby.addr, io.Discard); err != nil {
		t.Fatalf("promote: %v", err)
	}
	// The old primary returns as the standby, so acks=all can go on.
	p.primary.restart()
	<-stopAt
	waitDone := make(chan struct{})
	go func() { wg.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(90 * time.Second):
		t.Fatal("produce never completed after the failover")
	}
	mu.Lock()
	if produceErr != nil {
		t.Fatalf("produce after the failover: %v", produceErr)
	}
	if len(acked) != total {
		t.Fatalf("%d of %d records acknowledged", len(acked), total)
	}
	mu.Unlock()

	// Everything acknowledged is on the new primary, once, where the
	// acknowledgement said (records acknowledged before the kill too).
	newPrimary := p.standby
	got := newPrimary.consumeAll("orders")
	where := map[string]ack{}
	for part, rs := range got {
		for _, r := range rs {
			if prev, dup := where[string(r.Key)]; dup {
				t.Fatalf("record %s twice: %v and %d/%d", r.Key, prev, part, r.Offset)
			}
			where[string(r.Key)] = ack{part, r.Offset}
		}
	}
	for i, a := range acked {
		if w, ok := where[fmt.Sprint(i)]; !ok || w != a {
			_, before := ackedAtKill[i]
			t.Fatalf("record %d acknowledged at %v (before the kill: %v), on the new primary at %v (found %v)", i, a, before, w, ok)
		}
	}
	// The group consumer went on and saw everything.
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("the group consumer to read every record", func() bool {
		cmu.Lock()
		defer cmu.Unlock()
		return len(consumed) == total
	})
	close(stopCons)
	<-consDone

	// The old primary converges on the new one.
	waitFor("the logs to converge", func() bool {
		a, b := logFiles(t, newPrimary.dataDir), logFiles(t, p.primary.dataDir)
		for n, data := range a {
			if !strings.HasPrefix(n, "orders-") {
				continue
			}
			if !bytes.Equal(b[n], data) {
				return false
			}
		}
		return true
	})
}

// linkProxy forwards a replication link so a test can cut it while both
// nodes stay up.
type linkProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startLinkProxy(t *testing.T, addr, target string) *linkProxy {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	lp := &linkProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			lp.mu.Lock()
			lp.conns = append(lp.conns, c, u)
			lp.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(lp.cut)
	return lp
}

// cut closes the listener and every forwarded connection.
func (lp *linkProxy) cut() {
	lp.l.Close()
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for _, c := range lp.conns {
		c.Close()
	}
	lp.conns = nil
}

// controllerOf asks addr which node leads.
func controllerOf(t *testing.T, addr string) int32 {
	t.Helper()
	raw := dialRaw(t, addr)
	defer raw.Close()
	return raw.roundTrip(kmsg.NewPtrMetadataRequest(), 12).(*kmsg.MetadataResponse).ControllerID
}

// With auto_failover, a cut link alone never promotes the standby (the
// primary still answers on its client address); a dead primary does.
func TestAutoFailoverOnlyWhenThePrimaryIsGone(t *testing.T) {
	pAddr, sAddr, pLink, sLink, proxy := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	pp := &broker{t: t, addr: pAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: pairConfig(t, 1, 2, "primary", pLink, sAddr, sLink)}
	scfg := pairConfig(t, 2, 1, "standby", sLink, pAddr, proxy, "auto_failover = true", "failover_timeout_ms = 1000")
	ss := &broker{t: t, addr: sAddr, dataDir: t.TempDir(), log: &logBuffer{}, config: scfg}
	t.Cleanup(pp.cleanup)
	t.Cleanup(ss.cleanup)
	lp := startLinkProxy(t, proxy, pLink)
	pp.start()
	ss.start()
	waitInSync(t, pAddr)
	r, err := pp.admin().CreateTopic(timeout(t, 10*time.Second), 1, 2, nil, "t")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	produceSync(t, pp.client(kgo.DefaultProduceTopic("t")), &kgo.Record{Value: []byte("x")})

	lp.cut()
	time.Sleep(4 * time.Second) // four failover timeouts
	if c := controllerOf(t, sAddr); c != 1 {
		t.Fatalf("the standby promoted itself over a cut link: controller %d", c)
	}
	if !strings.Contains(ss.log.String(), "replication from the primary interrupted") {
		t.Fatal("the link was not cut")
	}

	pp.kill()
	deadline := time.Now().Add(15 * time.Second)
	for controllerOf(t, sAddr) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not take over from a dead primary:\n%s", ss.log.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// It serves writes (acks=1: the old primary is gone).
	produceSync(t, ss.client(kgo.DefaultProduceTopic("t"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()),
		&kgo.Record{Value: []byte("after failover")})
}

// autoFailoverPair starts a pair with auto_failover after failover and a
// lag time of a minute, the primary in namespace ns if one is given, and
// writes a record to a topic "t" replicated to both.
func autoFailoverPair(t *testing.T, failover time.Duration, ns *netns) (primary, standby *broker) {
	t.Helper()
	pAddr, sAddr, pLink, sLink := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	if ns != nil {
		pAddr, pLink, sAddr, sLink = ns.nsAddr(), ns.nsAddr(), ns.hostAddr(), ns.hostAddr()
	}
	extra := []string{"replica_lag_time_max_ms = 60000", "auto_failover = true", fmt.Sprintf("failover_timeout_ms = %d", failover.Milliseconds())}
	primary = &broker{t: t, addr: pAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: pairConfig(t, 1, 2, "primary", pLink, sAddr, sLink, extra...)}
	if ns != nil {
		primary.netns = ns.name
	}
	standby = &broker{t: t, addr: sAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: pairConfig(t, 2, 1, "standby", sLink, pAddr, pLink, extra...)}
	t.Cleanup(primary.cleanup)
	t.Cleanup(standby.cleanup)
	primary.start()
	standby.start()
	waitInSync(t, pAddr)
	r, err := primary.admin().CreateTopic(timeout(t, 10*time.Second), 1, 2, nil, "t")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	produceSync(t, primary.client(kgo.DefaultProduceTopic("t")), &kgo.Record{Value: []byte("before")})
	return primary, standby
}

// waitController waits until the broker at addr names want as controller
// (the node that leads), at most within after since, and returns how long
// it took since.
func waitController(t *testing.T, addr string, want int32, since time.Time, within time.Duration, log *logBuffer) time.Duration {
	t.Helper()
	for controllerOf(t, addr) != want {
		if time.Since(since) > within {
			t.Fatalf("%s does not name node %d as leader %v on:\n%s", addr, want, time.Since(since), log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(since)
}

// promotedWithin checks that the standby took over from a primary that
// died at died within the failover timeout (plus slack for a loaded test
// machine, far below the minute of lag time that bounded it before), and
// serves writes.
func promotedWithin(t *testing.T, standby *broker, died time.Time, failover time.Duration, how string) {
	t.Helper()
	took := waitController(t, standby.addr, 2, died, failover+6*time.Second, standby.log)
	t.Logf("promoted %v after the primary was %s (failover_timeout_ms %v, replica_lag_time_max_ms 60s)", took.Round(time.Millisecond), how, failover)
	if took < failover {
		t.Errorf("promoted after %v, before the failover timeout %v", took, failover)
	}
	produceSync(t, standby.client(kgo.DefaultProduceTopic("t"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()),
		&kgo.Record{Value: []byte("after failover")})
}

// With auto_failover the standby promotes itself within the failover
// timeout of the primary's death (plus under a second), whatever
// replica_lag_time_max_ms is (here a minute): a primary killed, and a
// primary hung (SIGSTOP, so its kernel still accepts connections). A hung
// primary that comes back steps down to follow the new one.
func TestAutoFailoverWithinTimeout(t *testing.T) {
	const failover = 2 * time.Second
	t.Run("killed", func(t *testing.T) {
		pp, ss := autoFailoverPair(t, failover, nil)
		died := time.Now()
		pp.kill()
		promotedWithin(t, ss, died, failover, "killed")
	})
	t.Run("hung", func(t *testing.T) {
		pp, ss := autoFailoverPair(t, failover, nil)
		t.Cleanup(func() { pp.cmd.Process.Signal(syscall.SIGCONT) }) // before the broker's own cleanup
		died := time.Now()
		if err := pp.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		promotedWithin(t, ss, died, failover, "hung")
		// The old primary wakes up, sees the newer epoch and follows.
		if err := pp.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		waitController(t, pp.addr, 2, time.Now(), 20*time.Second, pp.log)
	})
}

// A primary cut off the network (every packet to and from it dropped: its
// connections hang instead of being refused) is replaced within the
// failover timeout too; once the network heals it sees the newer epoch
// and follows.
func TestAutoFailoverWhenThePrimaryIsCutOff(t *testing.T) {
	const failover = 2 * time.Second
	ns := newNetns(t)
	pp, ss := autoFailoverPair(t, failover, ns)
	cut := time.Now()
	ns.blackhole()
	promotedWithin(t, ss, cut, failover, "cut off")
	ns.heal()
	waitController(t, pp.addr, 2, time.Now(), 20*time.Second, pp.log)
}
