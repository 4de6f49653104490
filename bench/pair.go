package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataLog is the name under which a samsa node reports its metadata
// log (and its ISR) in Metadata, when asked for it by name.
const metadataLog = "__cluster_metadata"

// PairConfig is a hot standby pair for StartPair to start.
type PairConfig struct {
	SamsaBin string // the samsa binary
	Config   string // the config file both nodes' configs are made from (config.toml)
	// AutoFailover turns auto_failover on for both nodes (the standby
	// promotes itself; a node that rejoins as standby does too).
	AutoFailover bool
	// FailoverTimeout sets failover_timeout_ms; 0 keeps the config's.
	FailoverTimeout time.Duration
	// Admin gives each node an [admin] HTTP listener on a free port
	// (/metrics).
	Admin bool
	// Set overrides keys of the config: "section.key" (or "key" for the
	// top level) to a TOML value (string, int64, bool). The broker rejects
	// keys it does not know.
	Set map[string]any
}

// Pair is a hot standby pair of samsa processes the benchmark started on
// loopback: node 1 configured as the primary, node 2 as the standby,
// each with its own temp directory (config, data, log). One goroutine
// drives the pair's processes (Kill, Restart, Stop); the request methods
// (Leader, Promote, InSync, ...) may be called from any goroutine.
type Pair struct {
	Nodes [2]*PairNode
	dir   string
}

// PairNode is one node of a Pair.
type PairNode struct {
	*Process
	ID        int32
	Link      string // its replication listener
	AdminAddr string // its [admin] listener, "" without one
	cl        *kgo.Client
}

// Node returns the node with the given id (1 or 2).
func (p *Pair) Node(id int32) *PairNode { return p.Nodes[id-1] }

// Peer returns the other node.
func (p *Pair) Peer(n *PairNode) *PairNode { return p.Nodes[2-n.ID] }

// Addrs are both nodes' client addresses, node 1's first.
func (p *Pair) Addrs() []string { return []string{p.Nodes[0].Addr, p.Nodes[1].Addr} }

// StartPair writes both nodes' configs from cfg.Config, starts node 1
// (primary) and node 2 (standby) on free loopback ports, and waits until
// both answer and the standby is in sync (in the ISR of the metadata
// log). On error nothing is left running.
func StartPair(ctx context.Context, cfg PairConfig) (_ *Pair, err error) {
	if _, err := os.Stat(cfg.SamsaBin); err != nil {
		return nil, fmt.Errorf("cannot find the samsa binary (build it with make build): %w", err)
	}
	base, err := os.ReadFile(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("cannot read the samsa config: %w", err)
	}
	dir, err := os.MkdirTemp("", "samsa-bench-pair-")
	if err != nil {
		return nil, fmt.Errorf("cannot create temp dir for the pair: %w", err)
	}
	p := &Pair{dir: dir}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	var addrs []string // client 1, client 2, link 1, link 2, admin 1, admin 2
	for range 6 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	for i := range 2 {
		id := int32(i + 1)
		ndir := filepath.Join(dir, "node"+strconv.Itoa(i+1))
		if err := os.Mkdir(ndir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create temp dir for node %d: %w", id, err)
		}
		n := &PairNode{ID: id, Link: addrs[2+i]}
		if cfg.Admin {
			n.AdminAddr = addrs[4+i]
		}
		text, err := nodeConfig(base, cfg, n, addrs[i], addrs[1-i], addrs[3-i])
		if err != nil {
			return nil, err
		}
		confPath := filepath.Join(ndir, "samsa.toml")
		if err := os.WriteFile(confPath, text, 0o644); err != nil {
			return nil, fmt.Errorf("cannot write node %d's config: %w", id, err)
		}
		addr, data := addrs[i], filepath.Join(ndir, "data")
		n.Process = newProcess("node"+strconv.Itoa(i+1), addr, ndir, func() *exec.Cmd {
			return exec.Command(cfg.SamsaBin, "-config", confPath, "-listen", addr, "-data-dir", data)
		})
		if n.cl, err = kgo.NewClient(kgo.SeedBrokers(addr)); err != nil {
			return nil, fmt.Errorf("cannot create a client for node %d: %w", id, err)
		}
		p.Nodes[i] = n
	}
	for _, n := range p.Nodes {
		if err := n.start(ctx); err != nil {
			return nil, err
		}
	}
	if err := p.WaitInSync(ctx, p.Nodes[0]); err != nil {
		return nil, err
	}
	return p, nil
}

// nodeConfig returns node n's config: base with its node id, the
// [replication] section of a pair member (peer at peerClient/peerLink),
// its [admin] listener and cfg's overrides.
func nodeConfig(base []byte, cfg PairConfig, n *PairNode, client, peerClient, peerLink string) ([]byte, error) {
	var m map[string]any
	if _, err := toml.Decode(string(base), &m); err != nil {
		return nil, fmt.Errorf("cannot parse the samsa config %s: %w", cfg.Config, err)
	}
	role := "primary"
	if n.ID == 2 {
		role = "standby"
	}
	set := map[string]any{
		"node_id":                 int64(n.ID),
		"listen":                  client,
		"replication.role":        role,
		"replication.listen":      n.Link,
		"replication.peer_id":     int64(3 - n.ID),
		"replication.peer_client": peerClient,
		"replication.peer_link":   peerLink,
	}
	if cfg.AutoFailover {
		set["replication.auto_failover"] = true
	}
	if cfg.FailoverTimeout > 0 {
		set["replication.failover_timeout_ms"] = cfg.FailoverTimeout.Milliseconds()
	}
	if n.AdminAddr != "" {
		set["admin.listen"] = n.AdminAddr
	}
	for k, v := range cfg.Set {
		set[k] = v
	}
	for k, v := range set {
		section, key, ok := strings.Cut(k, ".")
		if !ok {
			m[k] = v
			continue
		}
		sm, ok := m[section].(map[string]any)
		if !ok {
			sm = map[string]any{}
			m[section] = sm
		}
		sm[key] = v
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(m); err != nil {
		return nil, fmt.Errorf("cannot write node %d's config: %w", n.ID, err)
	}
	return b.Bytes(), nil
}

// Stop stops both nodes (SIGTERM, then SIGKILL) and removes the pair's
// temp directory. It reports a node that had died unless it was killed
// on purpose.
func (p *Pair) Stop() error {
	var errs []error
	for _, n := range p.Nodes {
		if n == nil {
			continue
		}
		if n.cl != nil {
			n.cl.Close()
		}
		if n.Process != nil {
			errs = append(errs, n.Process.Stop())
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		errs = append(errs, fmt.Errorf("cannot remove the pair's temp dir: %w", err))
	}
	return errors.Join(errs...)
}

// CopyLogs copies both nodes' logs into dir, as node1.log and node2.log.
func (p *Pair) CopyLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot keep the brokers' logs: %w", err)
	}
	for _, n := range p.Nodes {
		b, err := os.ReadFile(n.LogPath())
		if err != nil {
			return fmt.Errorf("cannot keep the brokers' logs: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o644); err != nil {
			return fmt.Errorf("cannot keep the brokers' logs: %w", err)
		}
	}
	return nil
}

// DataDir is the node's data directory.
func (n *PairNode) DataDir() string { return filepath.Join(n.Dir(), "data") }

// request sends req to this node itself (not to whichever broker a client
// would pick), bounded by a few seconds. It tries twice: the first request
// after a restart meets the connection to the old process.
func (n *PairNode) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	seeds := n.cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("cannot reach node %d: no seed broker", n.ID)
	}
	resp, err := seeds[0].Request(rctx, req)
	if err != nil && rctx.Err() == nil {
		resp, err = seeds[0].Request(rctx, req)
	}
	return resp, err
}

// metadata asks the node for the given topics' metadata.
func (n *PairNode) metadata(ctx context.Context, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := n.request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("cannot ask node %d for metadata: %w", n.ID, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// Leader is the node that n says leads the pair (Metadata's controller).
func (n *PairNode) Leader(ctx context.Context) (int32, error) {
	md, err := n.metadata(ctx)
	if err != nil {
		return -1, err
	}
	return md.ControllerID, nil
}

// InSync reports whether n, as the primary, has the standby in the ISR
// of its metadata log and of every partition of the given topics.
func (n *PairNode) InSync(ctx context.Context, topics ...string) (bool, error) {
	topics = append([]string{metadataLog}, topics...)
	md, err := n.metadata(ctx, topics...)
	if err != nil {
		return false, err
	}
	if md.ControllerID != n.ID || len(md.Topics) != len(topics) {
		return false, nil
	}
	for _, t := range md.Topics {
		if t.ErrorCode != 0 || len(t.Partitions) == 0 {
			return false, nil
		}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.Leader != n.ID || len(p.ISR) != 2 {
				return false, nil
			}
		}
	}
	return true, nil
}

// WaitInSync waits, bounded by setupTimeout, until leader has the standby
// in sync (see InSync).
func (p *Pair) WaitInSync(ctx context.Context, leader *PairNode, topics ...string) error {
	return poll(ctx, setupTimeout, 50*time.Millisecond, func() (bool, error) {
		ok, _ := leader.InSync(ctx, topics...)
		return ok, leader.Alive()
	}, func() error {
		return fmt.Errorf("the standby of node %d never got in sync on its metadata log and %v: %s", leader.ID, topics, p.Peer(leader).logTail())
	})
}

// Promote asks node n, the standby, to become the primary, as `samsactl
// promote` does: ElectLeaders for every partition, sent to the standby
// itself.
func (n *PairNode) Promote(ctx context.Context) error {
	req := kmsg.NewPtrElectLeadersRequest()
	req.TimeoutMillis = 30000
	kresp, err := n.request(ctx, req)
	if err != nil {
		return fmt.Errorf("cannot ask node %d to promote itself: %w", n.ID, err)
	}
	resp := kresp.(*kmsg.ElectLeadersResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("cannot promote node %d: %w", n.ID, err)
	}
	for _, t := range resp.Topics {
		for _, pt := range t.Partitions {
			if err := kerr.ErrorForCode(pt.ErrorCode); err != nil {
				msg := ""
				if pt.ErrorMessage != nil {
					msg = ": " + *pt.ErrorMessage
				}
				return fmt.Errorf("cannot promote node %d: %s-%d: %w%s", n.ID, t.Topic, pt.Partition, err, msg)
			}
		}
	}
	return nil
}

// poll calls check every interval until it reports done, returns an
// error, ctx ends or within has passed; then timedOut's error.
func poll(ctx context.Context, within, interval time.Duration, check func() (bool, error), timedOut func() error) error {
	deadline := time.Now().Add(within)
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return timedOut()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
