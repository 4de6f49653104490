package engine

// Hot standby replication, the primary's side (DESIGN.md "Hot standby").
//
// A standby follows the primary as a Kafka follower does: it sends Fetch
// requests with its replica id for every log (user partitions, internal
// topics, and the metadata log as "__cluster_metadata" partition 0), and
// the fetch offset of each is its acknowledgement of everything below.
// Per partition the primary tracks that offset and when the standby last
// caught up with the log end; the standby is in the ISR while it caught up
// within replica.lag.time.max.ms. The high watermark, the end of what
// consumers may read, is the log end while the standby is out of the ISR
// and the lesser of the log end and the standby's offset while it is in;
// it never goes back. acks=all produces wait, after their fsync, for the
// standby's offset to pass them while it is in the ISR; when it drops out
// they complete with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the topic's
// min.insync.replicas is then unmet.

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Replication roles.
const (
	RoleStandalone = ""
	RolePrimary    = "primary"
	RoleStandby    = "standby"
)

// ReplicationConfig describes the hot standby pair, from this node's side.
type ReplicationConfig struct {
	Role       string // RoleStandalone, RolePrimary or RoleStandby
	Listen     string // this node's replication listener, host:port
	BindDevice string // optional NIC for the link (SO_BINDTODEVICE)
	PeerID     int32  // the other node's id
	PeerClient string // the other node's client address, host:port
	PeerLink   string // the other node's replication address, host:port
	// LagTimeMaxMs is replica.lag.time.max.ms: a standby that has not
	// caught up for this long leaves the ISR.
	LagTimeMaxMs int64
	// MinInsyncReplicas is the default min.insync.replicas of topics when
	// a standby is configured.
	MinInsyncReplicas int
	// AutoFailover promotes the standby once the primary has been
	// unreachable on both its link and its client address for
	// FailoverTimeoutMs.
	AutoFailover      bool
	FailoverTimeoutMs int64
	// LinkCompression is "" or "lz4": the link's bytes, both ways, as an
	// lz4 stream (both nodes must agree).
	LinkCompression string
}

func (c *ReplicationConfig) validate(nodeID int32) error {
	switch c.Role {
	case RoleStandalone:
		return nil
	case RolePrimary, RoleStandby:
	default:
		return fmt.Errorf("replication role must be %q, %q or empty, not %q", RolePrimary, RoleStandby, c.Role)
	}
	if c.PeerID < 0 || c.PeerID == nodeID {
		return fmt.Errorf("replication peer_id must be set and differ from node_id")
	}
	for name, a := range map[string]string{"peer_client": c.PeerClient, "peer_link": c.PeerLink} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("replication %s %q: %w", name, a, err)
		}
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("replication listen %q: %w", c.Listen, err)
		}
	}
	if c.LagTimeMaxMs <= 0 {
		return fmt.Errorf("replication lag_time_max_ms must be > 0")
	}
	if c.LinkCompression != "" && c.LinkCompression != LinkLZ4 {
		return fmt.Errorf("replication link_compression must be \"\" or %q", LinkLZ4)
	}
	if c.AutoFailover && c.FailoverTimeoutMs <= 0 {
		return fmt.Errorf("replication failover_timeout_ms must be > 0 with auto_failover")
	}
	if c.MinInsyncReplicas < 1 || c.MinInsyncReplicas > 2 {
		return fmt.Errorf("replication min_insync_replicas must be 1 or 2")
	}
	return nil
}

// role is this node's current role: the configured one until a leader
// record in the metadata log (a promotion) says otherwise.
func (b *Broker) role() string {
	if r := b.roleV.Load(); r != nil {
		return *r
	}
	return b.cfg.Replication.Role
}

func (b *Broker) setRole(r string) { b.roleV.Store(&r) }

func (b *Broker) isPrimary() bool  { return b.role() == RolePrimary }
func (b *Broker) isStandby() bool  { return b.role() == RoleStandby }
func (b *Broker) replicated() bool { return b.cfg.Replication.Role != RoleStandalone }

// checkEpoch compares a client's current leader epoch with ours: newer is
// UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH (the client refreshes
// its metadata either way). -1 (not sent) always passes.
func (b *Broker) checkEpoch(clientEpoch int32) int16 {
	switch epoch := b.epoch.Load(); {
	case clientEpoch < 0 || clientEpoch == epoch:
		return 0
	case clientEpoch > epoch:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}

// leaderID is the node that leads every partition.
func (b *Broker) leaderID() int32 {
	if b.isStandby() {
		return b.cfg.Replication.PeerID
	}
	return b.cfg.NodeID
}

// standbyID is the standby's node id, or -1.
func (b *Broker) standbyID() int32 {
	switch b.role() {
	case RolePrimary:
		return b.cfg.Replication.PeerID
	case RoleStandby:
		return b.cfg.NodeID
	}
	return -1
}

// replicaState is what the primary knows of the standby's copy of one log.
type replicaState struct {
	mu       sync.Mutex
	offset   int64     // the standby's fetch offset: it holds everything below
	caughtUp time.Time // when its fetch offset last reached the log end of its previous fetch
	prevLEO  int64     // the log end when the standby last fetched
	inISR    bool
	hwm      int64
	logStart int64 // the standby's log start offset, as of its last fetch
	waiters  []ackWaiter
}

// ackWaiter is an acks=all produce waiting for the standby.
type ackWaiter struct {
	end    int64 // the standby must hold offsets below this
	minISR int
	done   func(code int16)
}

// highWatermark is the end of what consumers may read from p.
func (b *Broker) highWatermark(p *partition) int64 {
	leo := p.log.EndOffset()
	if !b.isPrimary() {
		return leo
	}
	rs := &p.replica
	rs.mu.Lock()
	defer rs.mu.Unlock()
	b.advanceLocked(p, rs, leo, time.Now())
	return rs.hwm
}

// advanceLocked recomputes the ISR membership and high watermark of p.
func (b *Broker) advanceLocked(p *partition, rs *replicaState, leo int64, now time.Time) {
	lag := time.Duration(b.cfg.Replication.LagTimeMaxMs) * time.Millisecond
	switch {
	case rs.inISR && now.Sub(rs.caughtUp) > lag:
		rs.inISR = false
		b.logger.Warn("standby left the ISR", "topic", p.t.name, "partition", p.idx, "standby_offset", rs.offset, "log_end", leo)
	case !rs.inISR && rs.offset >= rs.hwm && now.Sub(rs.caughtUp) <= lag && !rs.caughtUp.IsZero():
		rs.inISR = true
		b.logger.Info("standby joined the ISR", "topic", p.t.name, "partition", p.idx, "offset", rs.offset)
	}
	hwm := leo
	if rs.inISR {
		hwm = min(leo, rs.offset)
	}
	if hwm > rs.hwm {
		rs.hwm = hwm
	}
	// Produces waiting for the standby: done once it holds them, or once
	// it is out of the ISR (then min.insync.replicas decides).
	kept := rs.waiters[:0]
	for _, w := range rs.waiters {
		switch {
		case rs.offset >= w.end:
			w.done(0)
		case !rs.inISR:
			if w.minISR > 1 {
				w.done(kerr.NotEnoughReplicasAfterAppend.Code)
			} else {
				w.done(0)
			}
		default:
			kept = append(kept, w)
		}
	}
	clear(rs.waiters[len(kept):])
	rs.waiters = kept
}

// awaitStandbyStart waits until the standby's log start of p is at least
// start, while it is in the ISR, or until deadline (REQUEST_TIMED_OUT).
// The standby reports its log start in every fetch; polling it costs a
// lock per 10 ms for the rare DeleteRecords.
func (b *Broker) awaitStandbyStart(p *partition, start int64, deadline time.Time) int16 {
	for {
		p.replica.mu.Lock()
		held := p.replica.logStart >= start
		p.replica.mu.Unlock()
		switch {
		case held || !b.standbyInSync(p):
			return 0
		case time.Now().After(deadline):
			return kerr.RequestTimedOut.Code
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-b.quit:
			return kerr.RequestTimedOut.Code
		}
	}
}

// followerFetched records the standby's fetch offset and log start for p.
func (b *Broker) followerFetched(p *partition, offset, logStart int64) {
	rs := &p.replica
	rs.mu.Lock()
	before := rs.hwm
	rs.offset, rs.logStart = offset, logStart
	leo, now := p.log.EndOffset(), time.Now()
	if offset >= leo || offset >= rs.prevLEO {
		// Kafka's lastCaughtUpTime: set by fetches only (a standby that
		// stops fetching leaves the ISR even when nothing is written),
		// when the standby reached the log end as of its previous fetch,
		// so it stays in sync under a steady stream of writes.
		rs.caughtUp = now
	}
	rs.prevLEO = leo
	b.advanceLocked(p, rs, leo, now)
	moved := rs.hwm != before
	rs.mu.Unlock()
	if moved {
		p.log.Notify() // consumers parked at the old high watermark
	}
}

// waitForStandby calls done once the standby holds offsets below end, or
// at once when it is not in the ISR.
func (b *Broker) waitForStandby(p *partition, end int64, minISR int, done func(code int16)) {
	rs := &p.replica
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !b.isPrimary() {
		// Stepped down after the append: nobody will acknowledge it.
		done(kerr.NotEnoughReplicasAfterAppend.Code)
		return
	}
	b.advanceLocked(p, rs, p.log.EndOffset(), time.Now())
	if !rs.inISR || rs.offset >= end {
		code := int16(0)
		if !rs.inISR && minISR > 1 {
			code = kerr.NotEnoughReplicasAfterAppend.Code
		}
		done(code)
		return
	}
	rs.waiters = append(rs.waiters, ackWaiter{end: end, minISR: minISR, done: done})
}

// standbyInSync reports whether the standby is in p's ISR.
func (b *Broker) standbyInSync(p *partition) bool {
	if !b.isPrimary() {
		return false
	}
	rs := &p.replica
	rs.mu.Lock()
	defer rs.mu.Unlock()
	b.advanceLocked(p, rs, p.log.EndOffset(), time.Now())
	return rs.inISR
}

// checkISR runs periodically on the primary: a standby that stopped
// fetching leaves the ISR, which releases the produces waiting for it.
func (b *Broker) checkISR() {
	every := time.Duration(b.cfg.Replication.LagTimeMaxMs) * time.Millisecond / 4
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	release := func() {
		// Stopping or stepping down: nobody will acknowledge these now.
		for _, p := range append([]*partition{b.metaPart}, b.allPartitions()...) {
			rs := &p.replica
			rs.mu.Lock()
			for _, w := range rs.waiters {
				w.done(kerr.NotEnoughReplicasAfterAppend.Code)
			}
			rs.waiters = nil
			rs.mu.Unlock()
		}
	}
	for {
		select {
		case <-b.quit:
			release()
			return
		case <-t.C:
		}
		if !b.isPrimary() {
			release()
			return // stepped down
		}
		now := time.Now()
		for _, p := range append([]*partition{b.metaPart}, b.allPartitions()...) {
			rs := &p.replica
			rs.mu.Lock()
			before := rs.hwm
			b.advanceLocked(p, rs, p.log.EndOffset(), now)
			moved := rs.hwm != before
			rs.mu.Unlock()
			if moved {
				p.log.Notify()
			}
		}
	}
}

// lastPrimaryHWM is, on a standby, the high watermark the primary last
// reported for p.
func (b *Broker) lastPrimaryHWM(p *partition) int64 {
	p.replica.mu.Lock()
	defer p.replica.mu.Unlock()
	return p.replica.hwm
}
