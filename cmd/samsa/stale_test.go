package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio/kclient"
	"samsa/tools/ctl"
)

// epochClaim is a node saying, in a Metadata answer, that it leads a
// partition at an epoch.
type epochClaim struct {
	at    time.Time
	node  int32
	epoch int32
}

// watchLeaderClaims asks each address for topic's metadata every 100 ms
// until stop, and records every answer in which the node answering says
// it leads partition 0.
func watchLeaderClaims(topic string, addrs map[int32]string, stop chan struct{}) (claims func() []epochClaim, done func()) {
	var mu sync.Mutex
	var out []epochClaim
	var wg sync.WaitGroup
	for node, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
				if err != nil {
					continue
				}
				req := kmsg.NewPtrMetadataRequest()
				req.Version = 12
				req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
				resp, err := kclient.New(c, "epoch-watch").Request(req, time.Second)
				c.Close()
				if err != nil {
					continue
				}
				for _, rt := range resp.(*kmsg.MetadataResponse).Topics {
					for _, rp := range rt.Partitions {
						if rt.ErrorCode == 0 && rp.ErrorCode == 0 && rp.Partition == 0 && rp.Leader == node {
							mu.Lock()
							out = append(out, epochClaim{time.Now(), node, rp.LeaderEpoch})
							mu.Unlock()
						}
					}
				}
			}
		}()
	}
	return func() []epochClaim {
		mu.Lock()
		defer mu.Unlock()
		return append([]epochClaim(nil), out...)
	}, wg.Wait
}

// TestStalePrimary is the double failure: the primary A dies, B is
// promoted and takes writes that consumers read and commit, B dies, and A
// restarts alone, with an older copy. A must not lead: no client may see
// a leader epoch go back, and no group consumer (franz-go's or
// librdkafka's) may skip an acknowledged record. When B returns, B leads,
// A follows it, and the consumers carry on from their commits.
func TestStalePrimary(t *testing.T) {
	kcat := needKcat(t)
	// min_insync_replicas = 1: the promoted node acknowledges writes and
	// commits alone (availability first), which is what makes a stale
	// copy dangerous.
	aAddr, bAddr, aLink, bLink := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	A := &broker{t: t, addr: aAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: pairConfig(t, 1, 2, "primary", aLink, bAddr, bLink, "min_insync_replicas = 1")}
	B := &broker{t: t, addr: bAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: pairConfig(t, 2, 1, "standby", bLink, aAddr, aLink, "min_insync_replicas = 1")}
	t.Cleanup(A.cleanup)
	t.Cleanup(B.cleanup)
	A.start()
	B.start()
	waitInSync(t, A.addr)
	const topic = "stale"
	A.createTopic(topic, 1, nil)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// acks=all waits for B once it is in the partition's ISR.
		td, err := A.admin().ListTopics(timeout(t, 5*time.Second), topic)
		if err == nil && len(td[topic].Partitions[0].ISR) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never joined the ISR of the new topic")
		}
	}
	seeds := kgo.SeedBrokers(A.addr, B.addr)

	stop := make(chan struct{})
	claims, watchDone := watchLeaderClaims(topic, map[int32]string{1: A.addr, 2: B.addr}, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		watchDone()
	}()

	// A franz-go group consumer runs through everything, committing as
	// it goes.
	var seenMu sync.Mutex
	seen := map[string]int{}
	cons := A.client(seeds, kgo.ConsumerGroup("stale-franz"), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				seenMu.Lock()
				seen[string(r.Key)]++
				seenMu.Unlock()
			})
			if fs.NumRecords() > 0 {
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				cons.CommitUncommittedOffsets(cctx)
				ccancel()
			}
		}
	}()
	defer func() { cancel(); <-consDone; cons.Close() }()
	waitSeen := func(keys []string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			seenMu.Lock()
			missing := 0
			for _, k := range keys {
				if seen[k] == 0 {
					missing++
				}
			}
			seenMu.Unlock()
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the franz-go group consumer lacks %d of %d acknowledged records", missing, len(keys))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// librdkafka's group consumer reads to the end and commits each time.
	var kcatErr strings.Builder // what the last run said on stderr
	kcatRead := func(bound time.Duration) []string {
		t.Helper()
		for try := 1; ; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			cmd := exec.CommandContext(ctx, kcat, "-b", A.addr+","+B.addr, "-G", "stale-rdkafka", "-X", "auto.offset.reset=earliest",
				"-e", "-q", "-f", "%k\n", topic)
			kcatErr.Reset()
			cmd.Stderr = &kcatErr
			out, _ := cmd.Output()
			cancel()
			// kcat -e gives up on librdkafka's "all broker connections
			// are down", which librdkafka may raise when its connection
			// to the dead bootstrap address fails before it has counted
			// the live one ("1/1 brokers are down"): the client's race,
			// not the broker's, so try again.
			if try < 3 && strings.Contains(kcatErr.String(), "All broker connections are down") {
				t.Logf("kcat gave up (try %d): %s", try, strings.TrimSpace(kcatErr.String()))
				continue
			}
			return strings.Fields(string(out))
		}
	}
	produce := func(b *broker, phase string, n int) []string {
		t.Helper()
		cl := b.client(seeds, kgo.DefaultProduceTopic(topic))
		defer cl.Close()
		var keys []string
		var rs []*kgo.Record
		for i := range n {
			k := fmt.Sprintf("%s-%d", phase, i)
			keys = append(keys, k)
			rs = append(rs, &kgo.Record{Key: []byte(k), Value: []byte(k)})
		}
		produceSync(t, cl, rs...)
		return keys
	}
	var acked []string

	p1 := produce(A, "p1", 100)
	acked = append(acked, p1...)
	waitSeen(p1)
	if got := kcatRead(60 * time.Second); !sameSet(got, p1) {
		t.Fatalf("librdkafka read %d records before the failover, want the %d of phase 1; kcat said:\n%s", len(got), len(p1), kcatErr.String())
	}

	// A dies; B is promoted and takes writes that both consumers read
	// and commit.
	A.kill()
	if err := ctl.Promote(timeout(t, 30*time.Second), B.addr, io.Discard); err != nil {
		t.Fatalf("promote: %v", err)
	}
	p2 := produce(B, "p2", 100)
	acked = append(acked, p2...)
	waitSeen(p2)
	if got := kcatRead(60 * time.Second); !sameSet(got, p2) {
		t.Fatalf("librdkafka read %d records after the failover, want the %d of phase 2; kcat said:\n%s", len(got), len(p2), kcatErr.String())
	}

	// B dies; A restarts alone with its older copy. It must not lead.
	B.kill()
	A.restart()
	aloneFrom := time.Now()
	if !A.logged("not leading until the peer answers") {
		t.Fatalf("A restarted alone does not say it waits for its peer:\n%s", A.log.tail())
	}
	probe := A.client(kgo.SeedBrokers(A.addr), kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(3*time.Second))
	if err := probe.ProduceSync(timeout(t, 10*time.Second), &kgo.Record{Key: []byte("stale-write")}).FirstErr(); err == nil {
		t.Fatal("A, restarted alone with an older copy, acknowledged a write")
	}
	probe.Close()
	if got := kcatRead(5 * time.Second); len(got) > 0 {
		t.Fatalf("librdkafka read %d records from A alone (%v): the stale copy was served", len(got), head(got))
	}
	aloneTo := time.Now()

	// B returns: it leads (the newer epoch), A follows it.
	B.restart()
	waitInSync(t, B.addr)
	p3 := produce(B, "p3", 100)
	acked = append(acked, p3...)
	waitSeen(acked)
	if got := kcatRead(60 * time.Second); !sameSet(got, p3) {
		t.Fatalf("librdkafka read %d records after B returned, want the %d of phase 3 (none skipped, none twice); kcat said:\n%s", len(got), len(p3), kcatErr.String())
	}

	close(stop)
	watchDone()
	var last epochClaim
	for _, c := range claims() {
		if c.epoch < last.epoch {
			t.Fatalf("leader epoch went back: node %d claimed epoch %d at %s after node %d claimed %d at %s",
				c.node, c.epoch, c.at.Format(time.TimeOnly), last.node, last.epoch, last.at.Format(time.TimeOnly))
		}
		if c.node == 1 && c.at.After(aloneFrom) && c.at.Before(aloneTo) {
			t.Fatalf("A claimed to lead at epoch %d while B, which leads at a newer one, was away", c.epoch)
		}
		last = c
	}
	if last.node != 2 || last.epoch < 1 {
		t.Fatalf("last leader claim: node %d epoch %d, want B at epoch >= 1", last.node, last.epoch)
	}
}

// sameSet reports whether got holds exactly the keys of want, once each.
func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	m := map[string]bool{}
	for _, k := range want {
		m[k] = true
	}
	for _, k := range got {
		if !m[k] {
			return false
		}
		delete(m, k)
	}
	return len(m) == 0
}
