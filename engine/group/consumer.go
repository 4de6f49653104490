package group

// The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat,
// ConsumerGroupDescribe): members send their subscriptions and the
// partitions they own in periodic heartbeats; the coordinator computes a
// target assignment with a server-side assignor ("uniform" or "range") and
// walks each member toward it without a partition ever having two owners:
// a member first gives up what it must (UNREVOKED_PARTITIONS, same epoch),
// then takes what is free, and gets the rest once other members have
// released it (UNRELEASED_PARTITIONS).
//
// The group epoch, the target assignment and each member's subscription
// and current assignment are written to __consumer_offsets as Kafka 4's
// records (logformat848.go) and replayed at load: a member that keeps
// heartbeating across a broker restart carries on with its epoch and
// partitions (its session starts again at load). Committed offsets are
// durable as for classic groups.

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicMeta is what the coordinator needs to know of a topic.
type TopicMeta struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// groupType tells classic groups from KIP-848 consumer groups.
type groupType int8

const (
	typeClassic groupType = iota
	typeConsumer
)

// Reconciliation states of a consumer group member.
const (
	memberStable       = "stable"
	memberUnrevoked    = "unrevoked_partitions"
	memberUnreleased   = "unreleased_partitions"
	memberLeftStatic   = "left_static"
	maxConsumerMembers = 1 << 16
)

// assignment maps topic ids to sorted partitions.
type assignment map[[16]byte][]int32

func (a assignment) clone() assignment {
	out := make(assignment, len(a))
	for id, ps := range a {
		out[id] = slices.Clone(ps)
	}
	return out
}

func (a assignment) equal(b assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for id, ps := range a {
		if !slices.Equal(ps, b[id]) {
			return false
		}
	}
	return true
}

func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) add(id [16]byte, p int32) {
	ps := a[id]
	i, found := slices.BinarySearch(ps, p)
	if !found {
		a[id] = slices.Insert(ps, i, p)
	}
}

func (a assignment) has(id [16]byte, p int32) bool {
	_, found := slices.BinarySearch(a[id], p)
	return found
}

type tp struct {
	id [16]byte
	p  int32
}

// cmember is a member of a consumer group.
type cmember struct {
	id, instanceID, rackID string
	clientID, clientHost   string
	epoch, prevEpoch       int32
	state                  string
	rebalance              time.Duration
	topics                 []string // subscribed topic names, sorted
	regex                  string
	re                     *regexp.Regexp
	assignor               string
	assigned               assignment // what the member owns now
	revoking               assignment // what it must give up first
	sentAssigned           assignment // the assignment last sent
	deadline               time.Time  // session expiry
	revokeBy               time.Time  // rebalance timeout for a revocation
	timer                  *time.Timer
}

// consumerState is the KIP-848 part of a Group.
type consumerState struct {
	members     map[string]*cmember
	static      map[string]string // instance id → member id
	epoch       int32             // group epoch
	targetEpoch int32             // epoch of the target assignment
	target      map[string]assignment
	owners      map[tp]string // partition → member that owns or is revoking it
	metaSig     string        // subscribed topics' metadata the target was computed for
	assignor    string
	written     map[string][]byte // record key → value last written (logformat848.go)
	// regexPending holds the regexes a member has just subscribed with
	// that no member of the group had: as Kafka 4, which resolves a new
	// regex in the background, they count only from the next heartbeat,
	// so the literal topics of a subscription are assigned first.
	regexPending map[string]bool
}

func (g *Group) consumer() *consumerState {
	if g.cs == nil {
		g.cs = &consumerState{members: map[string]*cmember{}, static: map[string]string{}, target: map[string]assignment{}, owners: map[tp]string{}}
	}
	return g.cs
}

// memberIDs lists the members' ids, sorted.
func (cs *consumerState) memberIDs() []string {
	ids := make([]string, 0, len(cs.members))
	for id := range cs.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// consumerGroupState is the state ConsumerGroupDescribe and ListGroups
// report for a consumer group.
func (g *Group) consumerGroupState() string {
	cs := g.cs
	if cs == nil || len(cs.members) == 0 {
		return "Empty"
	}
	if cs.targetEpoch != cs.epoch {
		return "Assigning"
	}
	for _, m := range cs.members {
		if m.state != memberStable && m.state != memberLeftStatic || m.epoch != cs.targetEpoch {
			return "Reconciling"
		}
	}
	return "Stable"
}

var serverAssignors = map[string]func(members []*cmember, topics map[string]TopicMeta, current map[string]assignment) map[string]assignment{
	"uniform": assignUniform,
	"range":   assignRange,
}

// ConsumerGroupHeartbeat (key 68) joins, heartbeats, reconciles and
// leaves a member of a KIP-848 consumer group.
func (c *Coordinator) ConsumerGroupHeartbeat(r *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string, respond Respond) {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = r.Version
	resp.MemberEpoch = r.MemberEpoch
	resp.MemberID = nullable(r.MemberID)
	fail := func(e *kerr.Error, msg string) {
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		respond(resp)
	}
	switch {
	case c.isClosed():
		fail(kerr.CoordinatorNotAvailable, "")
		return
	case !c.loaded.Load():
		fail(kerr.ErrorForCode(c.loadErr()).(*kerr.Error), "")
		return
	case r.Group == "":
		fail(kerr.InvalidRequest, "group id must not be empty")
		return
	case r.Version >= 1 && r.MemberID == "" || len(r.MemberID) > 255:
		fail(kerr.InvalidRequest, "member id must be set by the client (v1+) and at most 255 characters")
		return
	case r.MemberEpoch < -2:
		fail(kerr.InvalidRequest, "member epoch must be >= -2")
		return
	case r.InstanceID != nil && *r.InstanceID == "":
		fail(kerr.InvalidRequest, "InstanceId can't be empty.")
		return
	case r.RackID != nil && *r.RackID == "":
		fail(kerr.InvalidRequest, "RackId can't be empty.")
		return
	case r.MemberEpoch == -2 && r.InstanceID == nil:
		// As Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid: only a
		// static member leaves for a restart; a dynamic one leaves with -1.
		fail(kerr.InvalidRequest, "InstanceId can't be null.")
		return
	case r.MemberEpoch == 0 && r.RebalanceTimeoutMillis <= 0:
		fail(kerr.InvalidRequest, "rebalance timeout must be set when joining")
		return
	case r.MemberEpoch == 0 && r.SubscribedTopicNames == nil && r.SubscribedTopicRegex == nil:
		fail(kerr.InvalidRequest, "subscribed topic names or regex must be set when joining")
		return
	case r.MemberEpoch == 0 && len(r.Topics) > 0:
		fail(kerr.InvalidRequest, "a joining member owns no partitions")
		return
	case r.ServerAssignor != nil && *r.ServerAssignor != "" && serverAssignors[*r.ServerAssignor] == nil:
		fail(kerr.UnsupportedAssignor, "server assignor "+*r.ServerAssignor+" is not supported; use uniform or range")
		return
	}
	var re *regexp.Regexp
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + *r.SubscribedTopicRegex + ")$"); err != nil {
			fail(kerr.InvalidRegularExpression, err.Error())
			return
		}
	}
	var g *Group
	bump := false // the group epoch moves, once, in this heartbeat
	if r.MemberEpoch == 0 {
		g = c.groupOrCreate(r.Group)
	} else if g = c.group(r.Group); g == nil {
		fail(kerr.UnknownMemberID, "")
		return
	}
	g.lock()
	defer g.unlock()
	if g.state == Dead {
		fail(kerr.CoordinatorNotAvailable, "")
		return
	}
	if g.typ == typeClassic && (len(g.members) > 0 || len(g.pending) > 0) {
		fail(kerr.GroupIDNotFound, "group "+g.id+" is a classic group with members")
		return
	}
	if g.typ == typeClassic {
		g.typ = typeConsumer
		g.protocolType = "consumer"
	}
	cs := g.consumer()
	now := c.now()
	m := cs.members[r.MemberID]
	memberID := r.MemberID
	if memberID == "" {
		memberID = newMemberID("")[1:]
	}

	switch {
	case r.MemberEpoch == -1 || r.MemberEpoch == -2:
		if r.InstanceID != nil {
			// A static member is found by its instance id, and one
			// replaced since (a zombie) is fenced, as Kafka's
			// consumerGroupLeave (throwIfInstanceIdIsFenced).
			id, ok := cs.static[*r.InstanceID]
			if !ok {
				fail(kerr.UnknownMemberID, "")
				return
			}
			if id != r.MemberID {
				fail(kerr.FencedInstanceID, "")
				return
			}
		}
		if m == nil {
			fail(kerr.UnknownMemberID, "")
			return
		}
		if r.MemberEpoch == -2 && m.instanceID != "" {
			// A static member leaving for a restart keeps its partitions
			// until its session runs out or it comes back.
			m.state = memberLeftStatic
			m.epoch = -2
			// What it was giving up is free at once, as Kafka's
			// consumerGroupStaticMemberGroupLeave: kept, nothing would
			// free it, and the members it went to waited for good.
			g.releaseRevoking(m)
			g.consumerHeartbeat(m, now, g.consumerSessionTimeout())
		} else {
			g.removeConsumerMember(m, "member "+m.id+" left")
		}
		resp.MemberEpoch = r.MemberEpoch
		g.persistConsumer(func(error) { respond(resp) })
		return
	case r.MemberEpoch == 0 && m != nil && m.instanceID == "" && r.InstanceID == nil:
		// A join retried with the id it was given (the answer lost), or a
		// member fenced on its side rejoining: the member goes on with its
		// epoch and partitions, as Kafka's since KAFKA-19233 (epoch 0 is
		// always accepted). Started over, its group's epoch moved twice and
		// every member rebalanced.
	case r.MemberEpoch == 0 && m != nil && m.state == memberLeftStatic && r.InstanceID != nil && *r.InstanceID == m.instanceID:
		// A static member back under the id it left with (the Java
		// consumer keeps one id for life): it takes its partitions back
		// from epoch 0 with no new group epoch, as Kafka's
		// getOrMaybeSubscribeStaticConsumerGroupMember does for a
		// restarted one.
		m.state, m.epoch = memberStable, 0
	case r.MemberEpoch == 0:
		if m != nil {
			// A static member's rejoin with the same id starts over.
			g.removeConsumerMember(m, "member "+m.id+" rejoined")
		}
		if len(cs.members) >= min(c.cfg.MaxGroupSize, maxConsumerMembers) {
			fail(kerr.GroupMaxSizeReached, "")
			return
		}
		m = &cmember{id: memberID, clientID: clientID, clientHost: clientHost, assigned: assignment{}, revoking: assignment{}, state: memberStable}
		replaced := false
		if r.InstanceID != nil && *r.InstanceID != "" {
			inst := *r.InstanceID
			if oldID, ok := cs.static[inst]; ok {
				old := cs.members[oldID]
				if old != nil && old.state != memberLeftStatic {
					fail(kerr.UnreleasedInstanceID, "instance id "+inst+" is held by member "+oldID)
					return
				}
				if old != nil {
					// The restarted static member takes its predecessor's
					// place, subscription and partitions, as Kafka's
					// getOrMaybeSubscribeStaticConsumerGroupMember: the
					// group epoch stays, and the member gets its
					// partitions back at once from epoch 0.
					m.assigned, m.revoking = old.assigned, old.revoking
					m.topics, m.regex, m.re, m.assignor = old.topics, old.regex, old.re, old.assignor
					m.rackID, m.rebalance = old.rackID, old.rebalance
					replaced = true
					if old.timer != nil {
						old.timer.Stop()
					}
					delete(cs.members, oldID)
					for k, owner := range cs.owners {
						if owner == oldID {
							cs.owners[k] = m.id
						}
					}
					if t, ok := cs.target[oldID]; ok {
						cs.target[m.id] = t
						delete(cs.target, oldID)
					}
				}
			}
			m.instanceID = inst
			cs.static[inst] = m.id
		}
		cs.members[m.id] = m
		m.epoch = 0
		if !replaced {
			bump = true
		}
	default:
		if m == nil {
			// A replaced static member (a zombie) is fenced, as Kafka's
			// throwIfInstanceIdIsFenced; anyone else is unknown.
			if r.InstanceID != nil && *r.InstanceID != "" {
				if id, ok := cs.static[*r.InstanceID]; ok && id != r.MemberID {
					fail(kerr.FencedInstanceID, "")
					return
				}
			}
			fail(kerr.UnknownMemberID, "")
			return
		}
		if r.InstanceID != nil && *r.InstanceID != m.instanceID {
			fail(kerr.FencedInstanceID, "")
			return
		}
		if r.MemberEpoch > m.epoch || (r.MemberEpoch < m.epoch && (r.MemberEpoch != m.prevEpoch || r.Topics == nil || !m.ownsAll(r.Topics))) {
			fail(kerr.FencedMemberEpoch, "")
			return
		}
	}
	g.consumerHeartbeat(m, now, g.consumerSessionTimeout())

	// Subscription changes bump the group epoch.
	if r.RebalanceTimeoutMillis > 0 {
		m.rebalance = time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	}
	if r.RackID != nil {
		m.rackID = *r.RackID
	}
	if r.SubscribedTopicNames != nil {
		topics := slices.Clone(r.SubscribedTopicNames)
		sort.Strings(topics)
		topics = slices.Compact(topics)
		if !slices.Equal(topics, m.topics) || m.regex != "" && r.SubscribedTopicRegex == nil {
			m.topics = topics
			if r.SubscribedTopicRegex == nil {
				m.regex, m.re = "", nil
			}
			bump = true
		}
	}
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != m.regex {
		m.regex, m.re = *r.SubscribedTopicRegex, re
		bump = true
		if re != nil {
			g.resolveRegexLater(m.regex)
		}
	}
	if r.ServerAssignor != nil && *r.ServerAssignor != m.assignor {
		m.assignor = *r.ServerAssignor
		bump = true
	}
	// Topic metadata changes (topics created, deleted, grown) do too.
	topics := g.subscribedMeta()
	if sig := metaSignature(topics); sig != cs.metaSig {
		cs.metaSig = sig
		bump = true
	}
	if bump {
		// Once per heartbeat whatever the reasons, as Kafka's
		// consumerGroupHeartbeat: a new group's first member gets epoch 1.
		cs.epoch++
	}
	if cs.targetEpoch != cs.epoch {
		g.computeTarget(topics)
	}
	g.reconcile(m, r.Topics, now)

	full := r.RebalanceTimeoutMillis != -1 && (r.SubscribedTopicNames != nil || r.SubscribedTopicRegex != nil) && r.Topics != nil
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.consumerHeartbeatInterval().Milliseconds())
	if full || r.MemberEpoch == 0 || !m.assigned.equal(m.sentAssigned) {
		a := &kmsg.ConsumerGroupHeartbeatResponseAssignment{Topics: []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}}
		for _, id := range sortedIDs(m.assigned) {
			a.Topics = append(a.Topics, kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{TopicID: id, Partitions: slices.Clone(m.assigned[id])})
		}
		resp.Assignment = a
		m.sentAssigned = m.assigned.clone()
	}
	// As Kafka: the member hears of its new epoch and assignment only
	// once they are durable.
	g.persistConsumer(func(err error) {
		if err != nil {
			resp.ErrorCode, resp.Assignment = kerr.NotCoordinator.Code, nil
		}
		respond(resp)
	})
}

func sortedIDs(a assignment) [][16]byte {
	ids := make([][16]byte, 0, len(a))
	for id, ps := range a {
		if len(ps) > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// ownsAll reports whether the partitions a member says it owns are all
// in its assignment (a retry of a heartbeat whose answer was lost).
func (m *cmember) ownsAll(owned []kmsg.ConsumerGroupHeartbeatRequestTopic) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !m.assigned.has(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

// consumerHeartbeat restarts m's session.
func (g *Group) consumerHeartbeat(m *cmember, now time.Time, session time.Duration) {
	m.deadline = now.Add(session)
	if m.timer == nil {
		m.timer = time.AfterFunc(session, func() { g.consumerSessionCheck(m) })
	}
}

func (g *Group) consumerSessionCheck(m *cmember) {
	g.lock()
	defer g.unlock()
	if g.cs == nil || g.cs.members[m.id] != m || g.c.isClosed() {
		return
	}
	now := g.c.now()
	next := m.deadline
	if m.state == memberUnrevoked && m.revokeBy.Before(next) {
		next = m.revokeBy
	}
	if now.Before(next) {
		m.timer.Reset(next.Sub(now))
		return
	}
	reason := "session timeout"
	if m.state == memberUnrevoked && !now.Before(m.revokeBy) {
		reason = "did not revoke partitions within its rebalance timeout"
	}
	g.c.logger.Info("consumer group member removed", "group", g.id, "member", m.id, "reason", reason)
	g.removeConsumerMember(m, reason)
	g.persistConsumer(nil)
}

func (g *Group) removeConsumerMember(m *cmember, reason string) {
	cs := g.cs
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	delete(cs.members, m.id)
	delete(cs.target, m.id)
	if m.instanceID != "" && cs.static[m.instanceID] == m.id {
		delete(cs.static, m.instanceID)
	}
	for k, owner := range cs.owners {
		if owner == m.id {
			delete(cs.owners, k)
		}
	}
	cs.epoch++
	g.c.logger.Info("consumer group membership changed", "group", g.id, "epoch", cs.epoch, "members", len(cs.members), "reason", reason)
	if len(cs.members) == 0 {
		g.stateSince = g.c.now()
	}
}

// resolveRegexLater marks regex pending unless another member of the
// group subscribes with it already, and resolves it once the heartbeat
// that brought it has been answered: the group's next heartbeat takes its
// topics in (the subscribed topics' signature changes). g is locked.
func (g *Group) resolveRegexLater(regex string) {
	cs := g.cs
	if cs.regexPending[regex] {
		return
	}
	n := 0
	for _, m := range cs.members {
		if m.regex == regex {
			n++
		}
	}
	if n > 1 {
		return // resolved for the member that brought it first
	}
	if cs.regexPending == nil {
		cs.regexPending = map[string]bool{}
	}
	cs.regexPending[regex] = true
	time.AfterFunc(0, func() {
		g.lock()
		defer g.unlock()
		delete(cs.regexPending, regex)
	})
}

// subscribedMeta resolves every member's subscription to topics.
func (g *Group) subscribedMeta() map[string]TopicMeta {
	out := map[string]TopicMeta{}
	var all []string
	for _, m := range g.cs.members {
		for _, t := range m.topics {
			if _, ok := out[t]; ok {
				continue
			}
			if meta, ok := g.c.be.Topic(t); ok {
				out[t] = meta
			}
		}
		if m.re != nil && !g.cs.regexPending[m.regex] {
			if all == nil {
				all = g.c.be.TopicNames()
			}
			for _, t := range all {
				// As Kafka 4: internal topics too, when the regex names them.
				if _, ok := out[t]; !ok && m.re.MatchString(t) {
					if meta, ok := g.c.be.Topic(t); ok {
						out[t] = meta
					}
				}
			}
		}
	}
	return out
}

func metaSignature(topics map[string]TopicMeta) string {
	names := make([]string, 0, len(topics))
	for n := range topics {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		t := topics[n]
		b.WriteString(n)
		b.Write(t.ID[:])
		b.WriteByte(byte(t.Partitions))
		b.WriteByte(byte(t.Partitions >> 8))
		b.WriteByte(byte(t.Partitions >> 16))
	}
	return b.String()
}

func (m *cmember) subscribes(topic string) bool {
	if _, found := slices.BinarySearch(m.topics, topic); found {
		return true
	}
	return m.re != nil && m.re.MatchString(topic)
}

// computeTarget runs the group's assignor over the current members.
func (g *Group) computeTarget(topics map[string]TopicMeta) {
	cs := g.cs
	assignor := "uniform"
	votes := map[string]int{}
	for _, m := range cs.members {
		if m.assignor != "" {
			votes[m.assignor]++
			if votes[m.assignor] > votes[assignor] || votes[assignor] == 0 {
				assignor = m.assignor
			}
		}
	}
	cs.assignor = assignor
	members := make([]*cmember, 0, len(cs.members))
	for _, m := range cs.members {
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].id < members[j].id })
	cs.target = serverAssignors[assignor](members, topics, cs.target)
	cs.targetEpoch = cs.epoch
	g.c.logger.Info("consumer group target assignment", "group", g.id, "epoch", cs.epoch, "members", len(members), "assignor", assignor)
}

// releaseRevoking frees the partitions m is giving up for the members
// they go to. g is locked.
func (g *Group) releaseRevoking(m *cmember) {
	for id, ps := range m.revoking {
		for _, p := range ps {
			if g.cs.owners[tp{id, p}] == m.id {
				delete(g.cs.owners, tp{id, p})
			}
		}
	}
	m.revoking = assignment{}
}

// reconcile moves m toward its target assignment (Kafka's
// CurrentAssignmentBuilder). owned is what the member reported owning
// (nil: unchanged since its last heartbeat).
func (g *Group) reconcile(m *cmember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic, now time.Time) {
	cs := g.cs
	if m.state == memberLeftStatic {
		return
	}
	if m.state == memberUnrevoked {
		if owned == nil || !ownsAny(owned, m.revoking) {
			if owned == nil {
				return // no news: keep waiting for the revocation
			}
			// The member gave the partitions up: free them.
			g.releaseRevoking(m)
			m.state = memberStable
		} else {
			return
		}
	}
	if m.state == memberStable && m.epoch == cs.targetEpoch {
		return
	}
	target := cs.target[m.id]
	keep, revoke, next := assignment{}, assignment{}, assignment{}
	unreleased := false
	for id, ps := range m.assigned {
		for _, p := range ps {
			if target.has(id, p) {
				keep.add(id, p)
				next.add(id, p)
			} else {
				revoke.add(id, p)
			}
		}
	}
	for id, ps := range target {
		for _, p := range ps {
			if keep.has(id, p) {
				continue
			}
			if owner, ok := cs.owners[tp{id, p}]; ok && owner != m.id {
				unreleased = true
				continue
			}
			next.add(id, p)
		}
	}
	if revoke.count() > 0 {
		m.state = memberUnrevoked
		m.assigned = keep
		m.revoking = revoke
		m.revokeBy = now.Add(m.rebalance)
		if m.timer != nil && m.revokeBy.Before(m.deadline) {
			m.timer.Reset(m.rebalance)
		}
		return
	}
	for id, ps := range next {
		for _, p := range ps {
			cs.owners[tp{id, p}] = m.id
		}
	}
	m.assigned = next
	m.prevEpoch, m.epoch = m.epoch, cs.targetEpoch
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleased
	}
}

func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a assignment) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if a.has(t.TopicID, p) {
				return true
			}
		}
	}
	return false
}

// assignUniform spreads every subscribed partition over the members
// subscribed to its topic, as evenly as it can, keeping partitions where
// they are when that stays balanced.
func assignUniform(members []*cmember, topics map[string]TopicMeta, current map[string]assignment) map[string]assignment {
	out := make(map[string]assignment, len(members))
	if len(members) == 0 {
		return out
	}
	names := make([]string, 0, len(topics))
	for n := range topics {
		names = append(names, n)
	}
	sort.Strings(names)
	// Each partition goes to one of its topic's subscribers; quotas are
	// computed over all partitions and members (exact when every member
	// subscribes to the same topics, the common case).
	total := 0
	for _, n := range names {
		total += int(topics[n].Partitions)
	}
	quota := func(i int) int {
		q := total / len(members)
		if i < total%len(members) {
			q++
		}
		return q
	}
	counts := map[string]int{}
	for _, m := range members {
		out[m.id] = assignment{}
	}
	// Members that keep the most go first in the quota order, so a
	// stable group keeps its assignment.
	order := slices.Clone(members)
	sort.SliceStable(order, func(i, j int) bool { return current[order[i].id].count() > current[order[j].id].count() })
	quotas := map[string]int{}
	for i, m := range order {
		quotas[m.id] = quota(i)
	}
	taken := map[tp]bool{}
	for _, m := range order {
		for _, n := range names {
			t := topics[n]
			if !m.subscribes(n) {
				continue
			}
			for _, p := range current[m.id][t.ID] {
				k := tp{t.ID, p}
				if p < t.Partitions && !taken[k] && counts[m.id] < quotas[m.id] {
					out[m.id].add(t.ID, p)
					taken[k] = true
					counts[m.id]++
				}
			}
		}
	}
	for _, n := range names {
		t := topics[n]
		for p := int32(0); p < t.Partitions; p++ {
			k := tp{t.ID, p}
			if taken[k] {
				continue
			}
			var best *cmember
			for _, m := range members {
				if !m.subscribes(n) {
					continue
				}
				if best == nil || room(counts, quotas, m) > room(counts, quotas, best) ||
					room(counts, quotas, m) == room(counts, quotas, best) && counts[m.id] < counts[best.id] {
					best = m
				}
			}
			if best == nil {
				continue
			}
			out[best.id].add(t.ID, p)
			taken[k] = true
			counts[best.id]++
		}
	}
	return out
}

func room(counts, quotas map[string]int, m *cmember) int { return quotas[m.id] - counts[m.id] }

// assignRange gives each topic's subscribers contiguous ranges of its
// partitions, in member id order, as Kafka's RangeAssignor does.
func assignRange(members []*cmember, topics map[string]TopicMeta, _ map[string]assignment) map[string]assignment {
	out := make(map[string]assignment, len(members))
	for _, m := range members {
		out[m.id] = assignment{}
	}
	for n, t := range topics {
		var subs []*cmember
		for _, m := range members {
			if m.subscribes(n) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		per, extra := int(t.Partitions)/len(subs), int(t.Partitions)%len(subs)
		p := int32(0)
		for i, m := range subs {
			n := per
			if i < extra {
				n++
			}
			for j := 0; j < n; j++ {
				out[m.id].add(t.ID, p)
				p++
			}
		}
	}
	return out
}

// ConsumerGroupDescribe (key 69) describes KIP-848 consumer groups.
func (c *Coordinator) ConsumerGroupDescribe(r *kmsg.ConsumerGroupDescribeRequest, respond Respond) {
	resp := kmsg.NewPtrConsumerGroupDescribeResponse()
	resp.Version = r.Version
	for _, id := range r.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648
		if r.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupOperations
		}
		fail := func(e *kerr.Error, msg string) {
			dg.ErrorCode = e.Code
			dg.ErrorMessage = &msg
			dg.State = Dead.String()
		}
		g := c.group(id)
		switch {
		case !c.loaded.Load():
			fail(kerr.ErrorForCode(c.loadErr()).(*kerr.Error), "groups are not served here")
		case id == "":
			fail(kerr.InvalidGroupID, "group id must not be empty")
		case g == nil:
			fail(kerr.GroupIDNotFound, "group "+id+" not found")
		default:
			g.lock()
			if g.state == Dead || g.typ != typeConsumer {
				fail(kerr.GroupIDNotFound, "group "+id+" is not a consumer group")
				g.unlock()
				break
			}
			cs := g.consumer()
			dg.State = g.consumerGroupState()
			dg.Epoch, dg.AssignmentEpoch, dg.AssignorName = cs.epoch, cs.targetEpoch, cs.assignor
			if dg.AssignorName == "" {
				dg.AssignorName = "uniform"
			}
			for _, mid := range cs.memberIDs() {
				m := cs.members[mid]
				dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				dm.MemberID, dm.MemberEpoch, dm.ClientID, dm.ClientHost = m.id, m.epoch, m.clientID, m.clientHost
				dm.InstanceID, dm.RackID = nullable(m.instanceID), nullable(m.rackID)
				dm.SubscribedTopics = slices.Clone(m.topics)
				if dm.SubscribedTopics == nil {
					dm.SubscribedTopics = []string{}
				}
				dm.SubscribedTopicRegex = nullable(m.regex)
				dm.Assignment = c.describeAssignment(m.assigned)
				dm.TargetAssignment = c.describeAssignment(cs.target[m.id])
				dm.MemberType = 1 // consumer protocol
				dg.Members = append(dg.Members, dm)
			}
			g.unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	respond(resp)
}

func (c *Coordinator) describeAssignment(a assignment) kmsg.Assignment {
	out := kmsg.Assignment{TopicPartitions: []kmsg.AssignmentTopicPartition{}}
	for _, id := range sortedIDs(a) {
		tp := kmsg.AssignmentTopicPartition{TopicID: id, Partitions: slices.Clone(a[id])}
		if meta, ok := c.be.TopicByID(id); ok {
			tp.Topic = meta.Name
		}
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}
