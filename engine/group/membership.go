package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup (key 11) joins a member to a group, answering once the
// group's rebalance completes (or at once for errors and for members
// rejoining unchanged). v4+ members without an id first get
// MEMBER_ID_REQUIRED and their id (KIP-394); members with a
// group.instance.id are static (KIP-345) and keep their assignment
// across restarts within the session timeout.
func (c *Coordinator) JoinGroup(r *kmsg.JoinGroupRequest, clientID, clientHost string, respond Respond) {
	fail := func(code int16, memberID string) {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Version = r.Version
		resp.ErrorCode = code
		resp.Generation = -1
		resp.MemberID = memberID
		respond(resp)
	}
	switch {
	case c.isClosed():
		fail(kerr.CoordinatorNotAvailable.Code, r.MemberID)
		return
	case !c.loaded.Load():
		fail(c.loadErr(), r.MemberID)
		return
	case r.Group == "":
		fail(kerr.InvalidGroupID.Code, r.MemberID)
		return
	}
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout.Code, r.MemberID)
		return
	}
	rebalance := session
	if r.Version >= 1 {
		rebalance = time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	}
	if rebalance <= 0 {
		rebalance = session
	}
	ps := make([]protocol, 0, len(r.Protocols))
	for _, p := range r.Protocols {
		// Request bytes go back to a pool once answered: keep copies.
		ps = append(ps, protocol{p.Name, bytes.Clone(p.Metadata)})
	}
	if r.ProtocolType == "" || len(ps) == 0 {
		fail(kerr.InconsistentGroupProtocol.Code, r.MemberID)
		return
	}
	var g *Group
	if r.MemberID == "" {
		g = c.groupOrCreate(r.Group)
	} else if g = c.group(r.Group); g == nil {
		fail(kerr.UnknownMemberID.Code, r.MemberID)
		return
	}
	g.lock()
	defer g.unlock()
	if g.state == Dead {
		fail(kerr.CoordinatorNotAvailable.Code, r.MemberID)
		return
	}
	if g.typ == typeConsumer {
		if !g.isEmpty() {
			fail(kerr.InconsistentGroupProtocol.Code, r.MemberID)
			return
		}
		// The consumer group's records go too, as Kafka's
		// maybeDeleteEmptyConsumerGroup: left, at the next load they made
		// the group a consumer group again, and the classic members'
		// commits failed with UNKNOWN_MEMBER_ID.
		if recs := g.consumerTombstones(); len(recs) > 0 {
			g.c.be.Append(PartitionFor(g.id, g.c.parts), recs, false, func(err error) {
				if err != nil {
					g.c.logger.Error("cannot delete the records of an empty consumer group taken over by the classic protocol", "group", g.id, "err", err)
				}
			})
		}
		g.typ, g.cs = typeClassic, nil
	}
	if !g.supports(r.ProtocolType, ps) {
		fail(kerr.InconsistentGroupProtocol.Code, r.MemberID)
		return
	}
	inst := ""
	if r.InstanceID != nil {
		inst = *r.InstanceID
	}
	j := joinReq{version: r.Version, respond: respond, clientID: clientID, clientHost: clientHost,
		session: session, rebalance: rebalance, protocolType: r.ProtocolType, protocols: ps, instanceID: inst}
	if r.MemberID == "" {
		g.joinNew(j, fail)
		return
	}
	g.joinKnown(r.MemberID, j, fail)
}

type joinReq struct {
	version              int16
	respond              Respond
	clientID, clientHost string
	session, rebalance   time.Duration
	protocolType         string
	protocols            []protocol
	instanceID           string
}

func (g *Group) joinNew(j joinReq, fail func(int16, string)) {
	id := newMemberID(j.clientID)
	if j.instanceID != "" {
		if old, ok := g.static[j.instanceID]; ok && g.members[old] != nil {
			g.replaceStatic(g.members[old], id, j)
			return
		}
	} else if j.version >= 4 {
		if len(g.members)+len(g.pending) >= g.c.cfg.MaxGroupSize {
			fail(kerr.GroupMaxSizeReached.Code, "")
			return
		}
		g.pending[id] = time.AfterFunc(j.session, func() {
			g.lock()
			defer g.unlock()
			if _, ok := g.pending[id]; ok {
				delete(g.pending, id)
				g.tryCompleteJoin()
			}
		})
		fail(kerr.MemberIDRequired.Code, id)
		return
	}
	if len(g.members)+len(g.pending) >= g.c.cfg.MaxGroupSize {
		fail(kerr.GroupMaxSizeReached.Code, "")
		return
	}
	g.addMember(id, j)
}

func (g *Group) addMember(id string, j joinReq) {
	g.joins++
	m := &member{id: id, instanceID: j.instanceID, clientID: j.clientID, clientHost: j.clientHost, joinOrder: g.joins}
	m.update(j)
	if len(g.members) == 0 {
		g.protocolType = j.protocolType
	}
	g.members[id] = m
	if j.instanceID != "" {
		g.static[j.instanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	g.heartbeat(m, g.c.now())
	switch g.state {
	case PreparingRebalance:
		g.extendDelay()
	default:
		g.prepareRebalance("member " + id + " joined")
	}
	g.tryCompleteJoin()
}

func (m *member) update(j joinReq) {
	m.session, m.rebalance = j.session, j.rebalance
	m.protocols = j.protocols
	m.join, m.joinVer = j.respond, j.version
}

// replaceStatic gives a restarted static member a new id in place of its
// old one. A stable group whose protocol would not change does not
// rebalance: the member gets its old assignment back on SyncGroup. As in
// Kafka, a returning leader is told the old leader id, so it does not
// compute an assignment the stable group would never hand out.
func (g *Group) replaceStatic(old *member, id string, j joinReq) {
	g.failPending(old, kerr.FencedInstanceID.Code)
	delete(g.members, old.id)
	if old.timer != nil {
		old.timer.Stop()
		old.timer = nil
	}
	oldID := old.id
	m := old
	m.id = id
	m.clientID, m.clientHost = j.clientID, j.clientHost
	m.session, m.rebalance, m.protocols = j.session, j.rebalance, j.protocols
	g.members[id] = m
	g.static[j.instanceID] = id
	if g.leader == oldID {
		g.leader = id
	}
	g.heartbeat(m, g.c.now())
	g.c.logger.Info("static member rejoined", "group", g.id, "instance", j.instanceID, "old_member", oldID, "member", id)
	switch {
	case g.state == Stable && g.selectProtocol() == g.protocol:
		resp := g.joinResponse(m, j.version, 0)
		if g.leader == id {
			if j.version >= 9 {
				// KIP-814: the leader learns the members but must not
				// compute an assignment the stable group would ignore.
				resp.SkipAssignment = true
			} else {
				resp.LeaderID, resp.Members = oldID, nil
			}
		}
		j.respond(resp)
		g.persist(nil)
	case g.state == PreparingRebalance:
		m.update(j)
		g.tryCompleteJoin()
	default:
		m.update(j)
		g.prepareRebalance("static member " + j.instanceID + " rejoined")
		g.tryCompleteJoin()
	}
}

func (g *Group) joinKnown(id string, j joinReq, fail func(int16, string)) {
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		g.addMember(id, j)
		return
	}
	var inst *string
	if j.instanceID != "" {
		inst = &j.instanceID
	}
	if g.fenced(inst, id) {
		fail(kerr.FencedInstanceID.Code, id)
		return
	}
	m := g.members[id]
	if m == nil {
		fail(kerr.UnknownMemberID.Code, id)
		return
	}
	switch g.state {
	case PreparingRebalance:
		if m.join != nil {
			g.failPending(m, kerr.RebalanceInProgress.Code)
		}
		m.update(j)
		g.heartbeat(m, g.c.now())
		g.tryCompleteJoin()
	case CompletingRebalance, Stable:
		if m.matches(j.protocols) && (g.state == CompletingRebalance || m.id != g.leader) {
			// A retry of a join whose answer was lost, or a follower
			// rejoining unchanged: the current generation stands.
			g.heartbeat(m, g.c.now())
			j.respond(g.joinResponse(m, j.version, 0))
			return
		}
		m.update(j)
		g.heartbeat(m, g.c.now())
		g.prepareRebalance("member " + id + " rejoined")
		g.tryCompleteJoin()
	default:
		fail(kerr.UnknownMemberID.Code, id)
	}
}

// SyncGroup (key 14): the leader sends the assignment; every member gets
// its own once the group metadata is durable.
func (c *Coordinator) SyncGroup(r *kmsg.SyncGroupRequest, respond Respond) {
	fail := func(code int16) {
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.Version = r.Version
		resp.ErrorCode = code
		resp.MemberAssignment = []byte{}
		respond(resp)
	}
	if c.isClosed() {
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	}
	if !c.loaded.Load() {
		// As Kafka: older clients do not expect COORDINATOR_LOAD_IN_PROGRESS
		// here (the Java consumer fails on it); they rejoin on this.
		code := kerr.RebalanceInProgress.Code
		if c.notCoordinator.Load() {
			code = kerr.NotCoordinator.Code
		}
		fail(code)
		return
	}
	if r.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	g := c.group(r.Group)
	if g == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	g.lock()
	defer g.unlock()
	m := g.members[r.MemberID]
	switch {
	case g.state == Dead:
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	case g.fenced(r.InstanceID, r.MemberID):
		fail(kerr.FencedInstanceID.Code)
		return
	case m == nil:
		fail(kerr.UnknownMemberID.Code)
		return
	case r.Generation != g.generation:
		fail(kerr.IllegalGeneration.Code)
		return
	case r.ProtocolType != nil && *r.ProtocolType != g.protocolType,
		r.Protocol != nil && *r.Protocol != g.protocol:
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	switch g.state {
	case PreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
	case Stable:
		g.heartbeat(m, g.c.now())
		m.syncedGen = g.generation
		m.sync, m.syncVer = respond, r.Version
		g.answerSync(m, 0)
	case CompletingRebalance:
		g.heartbeat(m, g.c.now())
		if m.sync != nil {
			g.answerSync(m, kerr.RebalanceInProgress.Code)
		}
		m.sync, m.syncVer = respond, r.Version
		m.syncedGen = g.generation
		if m.id != g.leader {
			return
		}
		assigned := map[string][]byte{}
		for _, a := range r.GroupAssignment {
			assigned[a.MemberID] = bytes.Clone(a.MemberAssignment)
		}
		for _, o := range g.members {
			o.assignment = assigned[o.id]
			if o.assignment == nil {
				o.assignment = []byte{}
			}
		}
		gen := g.generation
		g.persist(func(err error) {
			if g.generation != gen || g.state != CompletingRebalance {
				return
			}
			if err != nil {
				for _, o := range g.members {
					o.assignment = nil
					if o.sync != nil {
						g.answerSync(o, kerr.CoordinatorNotAvailable.Code)
					}
				}
				g.prepareRebalance("cannot write group metadata")
				return
			}
			g.setState(Stable)
			g.c.logger.Info("group stable", "group", g.id, "generation", g.generation, "members", len(g.members))
			for _, o := range g.members {
				if o.sync != nil {
					g.answerSync(o, 0)
				}
			}
		})
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

// Heartbeat (key 12) keeps a member's session alive and tells it when to
// rejoin (REBALANCE_IN_PROGRESS).
func (c *Coordinator) Heartbeat(r *kmsg.HeartbeatRequest, respond Respond) {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = r.Version
	resp.ErrorCode = c.heartbeat(r)
	respond(resp)
}

func (c *Coordinator) heartbeat(r *kmsg.HeartbeatRequest) int16 {
	if !c.loaded.Load() {
		if c.notCoordinator.Load() {
			return kerr.NotCoordinator.Code
		}
		return 0 // as Kafka: the member cannot be checked yet, answer blindly
	}
	if r.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.group(r.Group)
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	g.lock()
	defer g.unlock()
	m := g.members[r.MemberID]
	switch {
	case g.state == Dead:
		return kerr.CoordinatorNotAvailable.Code
	case g.fenced(r.InstanceID, r.MemberID):
		return kerr.FencedInstanceID.Code
	case m == nil:
		return kerr.UnknownMemberID.Code
	case r.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	g.heartbeat(m, g.c.now())
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveGroup (key 13) removes members (v3+: several, by member id or
// group.instance.id) and rebalances the rest.
func (c *Coordinator) LeaveGroup(r *kmsg.LeaveGroupRequest, respond Respond) {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = r.Version
	defer respond(resp)
	if r.Version < 3 {
		r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: r.MemberID}}
	}
	answer := func(code int16, per func(kmsg.LeaveGroupRequestMember) int16) {
		if r.Version < 3 {
			if code == 0 {
				code = per(r.Members[0])
			}
			resp.ErrorCode = code
			return
		}
		resp.ErrorCode = code
		if code != 0 {
			return
		}
		for _, lm := range r.Members {
			m := kmsg.NewLeaveGroupResponseMember()
			m.MemberID, m.InstanceID = lm.MemberID, lm.InstanceID
			m.ErrorCode = per(lm)
			resp.Members = append(resp.Members, m)
		}
	}
	switch {
	case !c.loaded.Load():
		answer(c.loadErr(), nil)
		return
	case r.Group == "":
		answer(kerr.InvalidGroupID.Code, nil)
		return
	}
	g := c.group(r.Group)
	if g == nil {
		answer(0, func(kmsg.LeaveGroupRequestMember) int16 { return kerr.UnknownMemberID.Code })
		return
	}
	g.lock()
	defer g.unlock()
	if g.state == Dead {
		answer(kerr.CoordinatorNotAvailable.Code, nil)
		return
	}
	answer(0, func(lm kmsg.LeaveGroupRequestMember) int16 {
		id := lm.MemberID
		if lm.InstanceID != nil && *lm.InstanceID != "" {
			cur, ok := g.static[*lm.InstanceID]
			switch {
			case !ok:
				return kerr.UnknownMemberID.Code
			case id != "" && id != cur:
				return kerr.FencedInstanceID.Code
			}
			id = cur
		}
		if t, ok := g.pending[id]; ok {
			t.Stop()
			delete(g.pending, id)
			g.tryCompleteJoin()
			return 0
		}
		m := g.members[id]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		g.c.logger.Info("member left", "group", g.id, "member", id)
		g.removeMember(m, "member "+id+" left")
		return 0
	})
}
