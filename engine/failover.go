package engine

// Failover of a hot standby pair (DESIGN.md "Hot standby").
//
// Which node leads, and from which leader epoch, is a "leader" record in
// the metadata log, replicated like everything else. Promotion (manual:
// ElectLeaders sent to the standby, which `samsactl promote` does; or
// automatic: auto_failover, once the primary has been unreachable on both
// its link and its client address for failover_timeout) stops the
// follower, bumps the epoch on every log, writes the record and starts
// serving: producers, the group coordinator (loaded from the replicated
// __consumer_offsets) and replica fetches. A node that starts as primary
// first asks its peer: if the peer leads with a higher epoch, this node
// becomes its standby. A standby, each time it connects, asks the primary
// where its last epoch ended on every log (OffsetForLeaderEpoch) and
// truncates what it has beyond: the divergent tail of an old primary.

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

var errNotStandby = errors.New("this node is not the standby")

func init() {
	regKey(kmsg.ElectLeaders.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleElectLeaders(kreq.(*kmsg.ElectLeadersRequest)))
	})
}

// ElectLeaders (key 43): sent to the standby, it promotes it; the primary
// answers ELECTION_NOT_NEEDED.
func (b *Broker) handleElectLeaders(r *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	resp := kmsg.NewPtrElectLeadersResponse()
	resp.Version = r.Version
	code := int16(0)
	var msg *string
	switch {
	case !b.replicated():
		code = kerr.ElectionNotNeeded.Code
	case b.isPrimary():
		code = kerr.ElectionNotNeeded.Code
	default:
		if err := b.Promote("ElectLeaders request"); err != nil {
			code = kerr.UnknownServerError.Code
			s := err.Error()
			msg = &s
		}
	}
	topics := r.Topics
	if topics == nil {
		for _, t := range b.topicList() {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = t.name
			for _, p := range t.parts() {
				rt.Partitions = append(rt.Partitions, p.idx)
			}
			topics = append(topics, rt)
		}
	}
	for _, rt := range topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition, sp.ErrorCode, sp.ErrorMessage = idx, code, msg
			if b.partition(rt.Topic, idx) == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// Promote makes the standby the primary, with the next leader epoch.
func (b *Broker) Promote(reason string) error {
	b.promoteMu.Lock()
	defer b.promoteMu.Unlock()
	if !b.isStandby() {
		return errNotStandby
	}
	if b.followStop != nil {
		close(b.followStop)
		<-b.followDone
		b.followStop = nil
	}
	epoch := b.epoch.Load() + 1
	logs := append([]*partition{b.metaPart}, b.allPartitions()...)
	for _, p := range logs {
		p.log.SetLeaderEpoch(epoch)
		rs := &p.replica
		rs.mu.Lock()
		rs.offset, rs.inISR, rs.caughtUp = 0, false, time.Time{}
		rs.hwm = p.log.EndOffset()
		rs.mu.Unlock()
	}
	b.metaMu.Lock()
	err := b.commitMeta(recLeader, metaLeader{Node: b.cfg.NodeID, Epoch: epoch})
	b.metaMu.Unlock()
	if err != nil {
		b.startFollower() // still the standby: keep following
		return err
	}
	b.epoch.Store(epoch)
	b.setRole(RolePrimary)
	b.logger.Warn("promoted to primary", "epoch", epoch, "reason", reason)
	b.loadGroups()
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.checkISR() }()
	go func() { defer b.wg.Done(); b.watchPeer() }()
	return nil
}

func (b *Broker) allPartitions() []*partition {
	var out []*partition
	for _, t := range b.topicList() {
		out = append(out, t.parts()...)
	}
	return out
}

// startFollower starts following the primary.
func (b *Broker) startFollower() {
	b.followStop, b.followDone = make(chan struct{}), make(chan struct{})
	stop, done := b.followStop, b.followDone
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(done)
		b.follow(stop)
	}()
	if b.cfg.Replication.AutoFailover {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.watchPrimary(stop) }()
	}
}

// watchPrimary promotes this standby once the primary has been unreachable
// on both its replication link and its client address for the failover
// timeout: a broken link alone never makes two primaries.
func (b *Broker) watchPrimary(stop chan struct{}) {
	timeout := time.Duration(b.cfg.Replication.FailoverTimeoutMs) * time.Millisecond
	t := time.NewTicker(max(timeout/10, 50*time.Millisecond))
	defer t.Stop()
	downSince := time.Time{}
	for {
		select {
		case <-b.quit:
			return
		case <-stop:
			return
		case <-t.C:
		}
		if b.following() {
			downSince = time.Time{}
			continue
		}
		if b.answers(b.cfg.Replication.PeerLink, true) || b.answers(b.cfg.Replication.PeerClient, false) {
			downSince = time.Time{}
			continue
		}
		if downSince.IsZero() {
			downSince = time.Now()
			b.logger.Warn("primary unreachable on its link and client address", "link", b.cfg.Replication.PeerLink, "client", b.cfg.Replication.PeerClient)
		}
		if time.Since(downSince) >= timeout {
			if behind := b.behindHighWatermark(); behind != "" {
				b.logger.Error("not promoting automatically: this standby lacks records the primary had committed; promote by hand to accept losing them",
					"partition", behind)
				downSince = time.Time{}
				continue
			}
			go func() {
				if err := b.Promote("primary unreachable for " + timeout.String()); err != nil && !errors.Is(err, errNotStandby) {
					b.logger.Error("automatic promotion failed", "err", err)
				}
			}()
			return
		}
	}
}

// answers reports whether the peer answers an ApiVersions request at addr
// within a second: a TCP handshake alone proves nothing (the kernel of a
// stopped or hung process still accepts connections).
func (b *Broker) answers(addr string, link bool) bool {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	_, err := b.ask(addr, link, req, 500*time.Millisecond, time.Second)
	return err == nil
}

// ask sends one request to addr on a connection of its own (through the
// link codec if link) and returns the response.
func (b *Broker) ask(addr string, link bool, req kmsg.Request, dial, timeout time.Duration) (kmsg.Response, error) {
	c, err := net.DialTimeout("tcp", addr, dial)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if link {
		c = b.linkConn(c)
	}
	return newReplicaConn(c, b.cfg.NodeID).request(req, timeout)
}

// probePeer asks the peer who leads and at which epoch (Metadata for the
// metadata log). ok is false when the peer cannot be reached.
func (b *Broker) probePeer() (leader, epoch int32, ok bool) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	name := metadataLogTopic
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	kresp, err := b.ask(b.cfg.Replication.PeerLink, true, req, 2*time.Second, 3*time.Second)
	if err != nil {
		return 0, 0, false
	}
	resp := kresp.(*kmsg.MetadataResponse)
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == metadataLogTopic && len(t.Partitions) == 1 {
			return t.Partitions[0].Leader, t.Partitions[0].LeaderEpoch, true
		}
	}
	return resp.ControllerID, -1, true
}

// truncateToLeader asks the primary where each log's latest epoch ended
// and drops anything beyond it here.
func (b *Broker) truncateToLeader(rc *replicaConn) error {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 3
	req.ReplicaID = b.cfg.NodeID
	logs := map[string][]*partition{metadataLogTopic: {b.metaPart}}
	names := []string{metadataLogTopic}
	for _, t := range b.topicList() {
		names = append(names, t.name)
		logs[t.name] = t.parts()
	}
	for _, name := range names {
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = name
		for i, p := range logs[name] {
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition = int32(i)
			rp.CurrentLeaderEpoch = -1
			rp.LeaderEpoch = p.log.LeaderEpoch()
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := rc.request(req, 10*time.Second)
	if err != nil {
		return err
	}
	metaTruncated := false
	for _, rt := range kresp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
		ps := logs[rt.Topic]
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 || int(rp.Partition) >= len(ps) {
				continue
			}
			l := ps[rp.Partition].log
			if rp.LeaderEpoch < 0 || rp.EndOffset < 0 {
				b.logger.Warn("the primary knows no epoch as old as this log's; not truncating", "topic", rt.Topic, "partition", rp.Partition,
					"epoch", l.LeaderEpoch())
				continue
			}
			// KIP-279: the primary answered the largest epoch it has not
			// above ours and where it ended; we keep no more than that,
			// and no more than our own records of that epoch.
			target := rp.EndOffset
			if _, own := l.EndOffsetForEpoch(rp.LeaderEpoch); own >= 0 && own < target {
				target = own
			}
			if target < l.EndOffset() {
				end, err := l.TruncateTo(target)
				if err != nil {
					return err
				}
				b.logger.Warn("dropped a divergent tail the primary does not have", "topic", rt.Topic, "partition", rp.Partition,
					"epoch", rp.LeaderEpoch, "end", end)
				metaTruncated = metaTruncated || rt.Topic == metadataLogTopic
			}
		}
	}
	if metaTruncated {
		return b.resyncCatalog()
	}
	return nil
}

// behindHighWatermark names a log whose end is below the high watermark
// the primary last reported for it, or returns "".
func (b *Broker) behindHighWatermark() string {
	for _, p := range append([]*partition{b.metaPart}, b.allPartitions()...) {
		p.replica.mu.Lock()
		hwm := p.replica.hwm
		p.replica.mu.Unlock()
		if p.log.EndOffset() < hwm {
			return p.t.name + "-" + strconv.Itoa(int(p.idx))
		}
	}
	return ""
}

// watchPeer runs on a primary: if the peer leads with a newer epoch (it
// was promoted while this node was away or cut off), this node steps
// down and follows it, so two primaries never stay.
func (b *Broker) watchPeer() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
		}
		if !b.isPrimary() {
			return
		}
		if leader, epoch, ok := b.probePeer(); ok && b.peerOutranks(leader, epoch) {
			b.stepDown(epoch)
			return
		}
	}
}

// peerOutranks reports whether a peer claiming leadership at epoch wins
// over this node: a newer epoch, or the same one and a lower node id (two
// nodes both configured as primary).
func (b *Broker) peerOutranks(leader, epoch int32) bool {
	if leader != b.cfg.Replication.PeerID {
		return false
	}
	mine := b.epoch.Load()
	return epoch > mine || epoch == mine && leader < b.cfg.NodeID
}

// stepDown turns a primary into the standby of a peer that leads at epoch.
func (b *Broker) stepDown(epoch int32) {
	b.promoteMu.Lock()
	defer b.promoteMu.Unlock()
	if !b.isPrimary() {
		return
	}
	b.logger.Warn("the peer leads with a newer epoch; stepping down to follow it", "peer_epoch", epoch, "epoch", b.epoch.Load())
	if epoch > b.epoch.Load() {
		b.epoch.Store(epoch)
	}
	b.setRole(RoleStandby)
	b.groups.Unload()
	b.startFollower()
}
