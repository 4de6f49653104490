package main

// A hot standby pair of broker processes on loopback: the standby follows
// every log, acks=all waits for it, and with it gone acks=all fails while
// acks=1 goes on; back, it catches up. Both logs end byte-identical.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pairConfig writes a config file for one node of a pair: the shipped
// config with the node id and a [replication] section.
func pairConfig(t *testing.T, nodeID, peerID int32, role, link, peerClient, peerLink string) string {
	t.Helper()
	base, err := os.ReadFile(repoConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(base), "node_id = 1\n", fmt.Sprintf("node_id = %d\n", nodeID), 1)
	i := strings.Index(cfg, "[replication]")
	j := strings.Index(cfg, "[topic_defaults]")
	if i < 0 || j < i {
		t.Fatal("config.toml has no [replication] section before [topic_defaults]")
	}
	cfg = cfg[:i] + fmt.Sprintf(`[replication]
role = %q
listen = %q
peer_id = %d
peer_client = %q
peer_link = %q
replica_lag_time_max_ms = 1500

`, role, link, peerID, peerClient, peerLink) + cfg[j:]
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
	return &brokerPair{pp, ss}
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
