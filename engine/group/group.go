package group

import (
	"bytes"
	"regexp"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as DescribeGroups and ListGroups
// report it.
type State int8

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string { return stateNames[s] }

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id, instanceID       string
	clientID, clientHost string
	session, rebalance   time.Duration
	protocols            []protocol
	assignment           []byte

	join      Respond // a JoinGroup waiting for the rebalance, or nil
	joinVer   int16
	sync      Respond // a SyncGroup waiting for the leader, or nil
	syncVer   int16
	deadline  time.Time // session expiry
	timer     *time.Timer
	joinOrder uint64 // when the member last joined: the leader is the earliest
	syncedGen int32  // the generation of the member's last SyncGroup
}

func (m *member) matches(ps []protocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].name != m.protocols[i].name || !bytes.Equal(ps[i].metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

type topicPartition struct {
	topic     string
	partition int32
}

type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	committed   int64 // commit timestamp, ms
	// order is the commit's place in the group's log (its append or
	// replay order): a commit completing after a later one of the same
	// partition does not replace it, nor do a transaction's offsets
	// committed later replace a plain commit that came after them.
	order uint64
}

// Group is one group: its members and rebalance state, and its committed
// offsets. Lock order: Coordinator.mu → Group.mu (LOCKS.md).
type Group struct {
	c  *Coordinator
	id string
	mu sync.Mutex

	state        State
	protocolType string // "" for groups that only commit offsets
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	pending      map[string]*time.Timer // member ids handed out with MEMBER_ID_REQUIRED
	static       map[string]string      // group.instance.id → member id
	offsets      map[topicPartition]offset
	pendingTxn   map[int64]map[topicPartition]offset // offsets of open transactions, by producer id (txnoffsets.go)
	stateSince   time.Time
	hasMetadata  bool // a group metadata record (KIP-848: the group's records) is in the log
	joins        uint64
	typ          groupType
	cs           *consumerState // KIP-848 members, when typ is typeConsumer

	rebalanceTimer *time.Timer
	syncTimer      *time.Timer // members that do not sync in time are removed
	delayUntil     time.Time   // initial rebalance delay
	delayMax       time.Time
}

func newGroup(c *Coordinator, id string) *Group {
	g := &Group{
		c:          c,
		id:         id,
		members:    map[string]*member{},
		pending:    map[string]*time.Timer{},
		static:     map[string]string{},
		offsets:    map[topicPartition]offset{},
		stateSince: c.now(),
	}
	return g
}

// isEmpty reports whether the group has no members of either protocol.
func (g *Group) isEmpty() bool {
	if g.typ == typeConsumer {
		return g.cs == nil || len(g.cs.members) == 0
	}
	return g.state == Empty
}

func (g *Group) lock()   { g.mu.Lock() }
func (g *Group) unlock() { g.mu.Unlock() }

func (g *Group) setState(s State) {
	g.state = s
	g.stateSince = g.c.now()
}

// afterLoad starts the sessions of members restored from the log: a
// consumer that kept heartbeating across a broker restart stays in.
func (g *Group) afterLoad(now time.Time) {
	for _, m := range g.members {
		g.heartbeat(m, now)
	}
	if g.cs == nil {
		return
	}
	cs := g.cs
	for _, m := range cs.members {
		if m.regex != "" {
			m.re, _ = regexp.Compile("^(?:" + m.regex + ")$")
		}
		for id, ps := range m.assigned {
			for _, p := range ps {
				cs.owners[tp{id, p}] = m.id
			}
		}
		for id, ps := range m.revoking {
			for _, p := range ps {
				cs.owners[tp{id, p}] = m.id
			}
		}
		m.sentAssigned = m.assigned.clone()
		if m.state == memberUnrevoked {
			m.revokeBy = now.Add(m.rebalance)
		}
		g.consumerHeartbeat(m, now, g.consumerSessionTimeout())
	}
	cs.metaSig = metaSignature(g.subscribedMeta())
}

// fenced reports whether instanceID belongs to another member id.
func (g *Group) fenced(instanceID *string, memberID string) bool {
	if instanceID == nil || *instanceID == "" {
		return false
	}
	id, ok := g.static[*instanceID]
	return ok && id != memberID
}

// unknownInstance reports whether instanceID names no static member of
// g: an offset commit naming it gets UNKNOWN_MEMBER_ID, as Kafka's
// ClassicGroup.validateMember.
func (g *Group) unknownInstance(instanceID *string) bool {
	if instanceID == nil || *instanceID == "" {
		return false
	}
	_, ok := g.static[*instanceID]
	return !ok
}

// heartbeat restarts m's session.
func (g *Group) heartbeat(m *member, now time.Time) {
	m.deadline = now.Add(m.session)
	if m.timer == nil {
		m.timer = time.AfterFunc(m.session, func() { g.sessionCheck(m) })
	}
}

// sessionCheck runs when m's timer fires: the member is removed if its
// session ran out, unless it is waiting in a rebalance (the rebalance
// timeout handles those).
func (g *Group) sessionCheck(m *member) {
	g.lock()
	defer g.unlock()
	if g.members[m.id] != m || g.c.isClosed() {
		return
	}
	now := g.c.now()
	if now.Before(m.deadline) || m.join != nil || m.sync != nil {
		wait := m.deadline.Sub(now)
		if wait <= 0 {
			wait = m.session
		}
		m.timer.Reset(wait)
		return
	}
	g.c.logger.Info("member session expired", "group", g.id, "member", m.id, "generation", g.generation)
	g.removeMember(m, "session timeout")
}

// supports reports whether a member with these protocols may join.
func (g *Group) supports(protocolType string, ps []protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.allSupport(p.name) {
			return true
		}
	}
	return false
}

func (g *Group) allSupport(name string) bool {
	for _, m := range g.members {
		if !hasProtocol(m.protocols, name) {
			return false
		}
	}
	return true
}

func hasProtocol(ps []protocol, name string) bool {
	for _, p := range ps {
		if p.name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks, among protocols every member supports, the one
// most members list first, as Kafka does.
func (g *Group) selectProtocol() string {
	votes := map[string]int{}
	var best string
	for _, m := range g.sortedMembers() {
		for _, p := range m.protocols {
			if g.allSupport(p.name) {
				votes[p.name]++
				if best == "" || votes[p.name] > votes[best] {
					best = p.name
				}
				break
			}
		}
	}
	return best
}

// sortedMembers lists members in join order (leader first when it joined
// first).
func (g *Group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].joinOrder < out[j-1].joinOrder; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (g *Group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// prepareRebalance moves the group to PreparingRebalance: members must
// rejoin within the rebalance timeout.
func (g *Group) prepareRebalance(reason string) {
	now := g.c.now()
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				g.answerSync(m, kerr.RebalanceInProgress.Code)
			}
		}
	}
	timeout := g.maxRebalanceTimeout()
	if g.state == Empty && g.c.cfg.InitialRebalanceDelay > 0 {
		g.delayUntil = now.Add(min(g.c.cfg.InitialRebalanceDelay, timeout))
		g.delayMax = now.Add(timeout)
	} else {
		g.delayUntil = time.Time{}
	}
	g.setState(PreparingRebalance)
	g.c.logger.Info("preparing rebalance", "group", g.id, "generation", g.generation, "members", len(g.members), "reason", reason)
	gen := g.generation
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	g.rebalanceTimer = time.AfterFunc(timeout, func() { g.rebalanceTimeout(gen) })
	if !g.delayUntil.IsZero() {
		g.scheduleDelayCheck(g.delayUntil.Sub(now))
	}
}

func (g *Group) scheduleDelayCheck(d time.Duration) {
	time.AfterFunc(d, func() {
		g.lock()
		defer g.unlock()
		g.tryCompleteJoin()
	})
}

// extendDelay pushes the initial delay on when a new member joins during
// it, up to the rebalance timeout.
func (g *Group) extendDelay() {
	if g.delayUntil.IsZero() {
		return
	}
	now := g.c.now()
	if !now.Before(g.delayUntil) {
		return
	}
	next := now.Add(g.c.cfg.InitialRebalanceDelay)
	if next.After(g.delayMax) {
		next = g.delayMax
	}
	if next.After(g.delayUntil) {
		g.delayUntil = next
		g.scheduleDelayCheck(next.Sub(now))
	}
}

// rebalanceTimeout completes a rebalance without the members that did not
// rejoin in time.
func (g *Group) rebalanceTimeout(gen int32) {
	g.lock()
	defer g.unlock()
	if g.state != PreparingRebalance || g.generation != gen || g.c.isClosed() {
		return
	}
	joined := 0
	for _, m := range g.members {
		switch {
		case m.join != nil:
			joined++
		case m.instanceID == "":
			// Static members stay until their session runs out (KIP-345):
			// a restarting one gets its partitions back.
			g.c.logger.Info("member did not rejoin in time", "group", g.id, "member", m.id)
			g.removeMemberQuiet(m)
		}
	}
	if joined == 0 && len(g.members) > 0 {
		// Only static members that have not rejoined: wait for them (or
		// their sessions) another rebalance timeout.
		g.rebalanceTimer = time.AfterFunc(g.maxRebalanceTimeout(), func() { g.rebalanceTimeout(gen) })
		return
	}
	g.completeJoin()
}

// tryCompleteJoin completes the rebalance once every member (and every
// member id handed out) has joined and the initial delay is over.
func (g *Group) tryCompleteJoin() {
	if g.state != PreparingRebalance {
		return
	}
	if !g.delayUntil.IsZero() && g.c.now().Before(g.delayUntil) {
		return
	}
	// Member ids handed out are waited for, except at the end of the
	// initial delay (as Kafka's InitialDelayedJoin).
	if len(g.pending) > 0 && g.delayUntil.IsZero() {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin starts the next generation and answers every waiting join;
// the leader's answer carries every member's metadata.
func (g *Group) completeJoin() {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
	g.delayUntil = time.Time{}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(Empty)
		g.c.logger.Info("group is empty", "group", g.id, "generation", g.generation)
		g.persist(nil)
		return
	}
	if g.members[g.leader] == nil || g.members[g.leader].join == nil {
		for _, m := range g.sortedMembers() {
			if m.join != nil {
				g.leader = m.id
				break
			}
		}
	}
	g.protocol = g.selectProtocol()
	g.setState(CompletingRebalance)
	g.c.logger.Info("rebalance: members joined", "group", g.id, "generation", g.generation, "members", len(g.members), "protocol", g.protocol, "leader", g.leader)
	now := g.c.now()
	for _, m := range g.members {
		if m.join == nil {
			continue
		}
		respond, ver := m.join, m.joinVer
		m.join = nil
		respond(g.joinResponse(m, ver, 0))
		g.heartbeat(m, now)
	}
	// Members that do not sync within the rebalance timeout are removed,
	// so a leader that never sends the assignment cannot stall the group.
	gen := g.generation
	if g.syncTimer != nil {
		g.syncTimer.Stop()
	}
	g.syncTimer = time.AfterFunc(g.maxRebalanceTimeout(), func() { g.syncTimeout(gen) })
}

// syncTimeout removes the members of generation gen that never sent
// SyncGroup, and rebalances the rest.
func (g *Group) syncTimeout(gen int32) {
	g.lock()
	defer g.unlock()
	if g.generation != gen || (g.state != CompletingRebalance && g.state != Stable) || g.c.isClosed() {
		return
	}
	removed := false
	for _, m := range g.members {
		if m.syncedGen != gen {
			g.c.logger.Info("member did not sync in time", "group", g.id, "member", m.id, "generation", gen)
			g.removeMemberQuiet(m)
			removed = true
		}
	}
	if removed {
		g.prepareRebalance("members did not sync in time")
		g.tryCompleteJoin()
	}
}

// joinResponse is the answer for m in the current generation.
func (g *Group) joinResponse(m *member, version int16, code int16) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Version = version
	r.ErrorCode = code
	r.Generation = g.generation
	pt := g.protocolType
	r.ProtocolType = &pt
	proto := g.protocol
	r.Protocol = &proto
	r.LeaderID = g.leader
	r.MemberID = m.id
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			jm.InstanceID = nullable(o.instanceID)
			jm.ProtocolMetadata = o.metadataFor(g.protocol)
			r.Members = append(r.Members, jm)
		}
	}
	return r
}

func (g *Group) answerSync(m *member, code int16) {
	r := kmsg.NewPtrSyncGroupResponse()
	r.Version = m.syncVer
	r.ErrorCode = code
	if code == 0 {
		pt, proto := g.protocolType, g.protocol
		r.ProtocolType, r.Protocol = &pt, &proto
		r.MemberAssignment = m.assignment
		if r.MemberAssignment == nil {
			r.MemberAssignment = []byte{}
		}
	}
	respond := m.sync
	m.sync = nil
	respond(r)
}

// failPending answers m's waiting join or sync with code.
func (g *Group) failPending(m *member, code int16) {
	if m.join != nil {
		r := kmsg.NewPtrJoinGroupResponse()
		r.Version = m.joinVer
		r.ErrorCode = code
		r.Generation = -1
		r.MemberID = m.id
		respond := m.join
		m.join = nil
		respond(r)
	}
	if m.sync != nil {
		g.answerSync(m, code)
	}
}

// removeMemberQuiet drops m without starting a rebalance.
func (g *Group) removeMemberQuiet(m *member) {
	if m.timer != nil {
		m.timer.Stop()
	}
	g.failPending(m, kerr.UnknownMemberID.Code)
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeMember drops m and rebalances the rest.
func (g *Group) removeMember(m *member, reason string) {
	g.removeMemberQuiet(m)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(reason)
		g.tryCompleteJoin()
	case PreparingRebalance:
		g.tryCompleteJoin()
	}
}

// persist writes the group's metadata record (and then calls done, under
// the group lock, with the result) to __consumer_offsets.
func (g *Group) persist(done func(error)) {
	rec := g.metadataRecord()
	g.hasMetadata = true
	g.c.be.Append(PartitionFor(g.id, g.c.parts), []Record{rec}, false, func(err error) {
		if err != nil {
			g.c.logger.Error("cannot write group metadata", "group", g.id, "err", err)
		}
		if done != nil {
			g.lock()
			defer g.unlock()
			done(err)
		}
	})
}

// stopLocked stops the group's session, rebalance and sync timers and
// answers its waiting joins and syncs with code: the coordinator is
// closing or handing groups over. g.mu is held.
func (g *Group) stopLocked(code int16) {
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
		g.failPending(m, code)
	}
	if g.cs != nil {
		for _, m := range g.cs.members {
			if m.timer != nil {
				m.timer.Stop()
			}
		}
	}
	for _, t := range []*time.Timer{g.rebalanceTimer, g.syncTimer} {
		if t != nil {
			t.Stop()
		}
	}
}
