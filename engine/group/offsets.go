package group

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit (key 8) stores committed offsets once they are durable in
// __consumer_offsets. Members of a managed group must give their member
// id and generation (KIP-848: member epoch, checkConsumerMember);
// generation -1 with no member id commits for an empty group (standalone
// consumers, admin tools), creating it if needed.
func (c *Coordinator) OffsetCommit(r *kmsg.OffsetCommitRequest, respond Respond) {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = r.Version
	var parts []commitPart
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rt.Partitions[j] = kmsg.NewOffsetCommitResponseTopicPartition()
			rt.Partitions[j].Partition = p.Partition
			epoch := p.LeaderEpoch
			if r.Version < 6 {
				epoch = -1
			}
			parts = append(parts, commitPart{topicPartition{t.Topic, p.Partition}, p.Offset, epoch, p.Metadata, &rt.Partitions[j].ErrorCode})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	all := func(code int16) {
		setCodes(parts, code)
		respond(resp)
	}
	if !c.loaded.Load() {
		all(c.loadErr())
		return
	}
	// An empty group id is valid here, as in Kafka (old clients use it).
	g := c.group(r.Group)
	if g == nil {
		if r.Generation >= 0 {
			// As Kafka's validateOffsetCommit: v9 says the group is
			// gone, older versions keep ILLEGAL_GENERATION.
			if r.Version >= 9 {
				all(kerr.GroupIDNotFound.Code)
			} else {
				all(kerr.IllegalGeneration.Code)
			}
			return
		}
		g = c.groupOrCreate(r.Group)
	}
	g.lock()
	defer g.unlock()
	m := g.members[r.MemberID]
	if g.typ == typeConsumer && g.state != Dead {
		if code := g.checkConsumerMember(r.MemberID, r.Generation); code != 0 {
			all(code)
			return
		}
		parts = g.ownedAtOlderEpoch(r.MemberID, r.Generation, parts, kerr.StaleMemberEpoch.Code)
	} else {
		// ClassicGroup.validateOffsetCommit's order: the member and its
		// generation before the rebalance in progress, so a member that
		// was removed learns it (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION)
		// rather than to retry after the rebalance.
		withMember := r.Generation >= 0 || r.MemberID != "" || r.InstanceID != nil
		switch {
		case g.state == Dead:
			all(kerr.CoordinatorNotAvailable.Code)
			return
		case r.Generation < 0 && g.state == Empty:
		case !withMember:
			all(kerr.UnknownMemberID.Code) // no member: only an empty group
			return
		case g.fenced(r.InstanceID, r.MemberID):
			all(kerr.FencedInstanceID.Code)
			return
		case m == nil, g.unknownInstance(r.InstanceID):
			all(kerr.UnknownMemberID.Code)
			return
		case r.Generation != g.generation:
			all(kerr.IllegalGeneration.Code)
			return
		case g.state == CompletingRebalance:
			all(kerr.RebalanceInProgress.Code)
			return
		default:
			g.heartbeat(m, c.now())
		}
	}
	c.commit(g, parts, func(p int32, recs []Record, done func(error)) { c.be.Append(p, recs, true, done) },
		func(k topicPartition, o offset) {
			if cur, ok := g.offsets[k]; !ok || cur.order < o.order {
				g.offsets[k] = o
			}
		}, func() { respond(resp) })
}

// commitPart is one partition of an offset commit, plain or
// transactional: what was asked and where its answer goes.
type commitPart struct {
	k        topicPartition
	offset   int64
	epoch    int32 // -1 for versions without it
	metadata *string
	code     *int16 // the partition's error code in the response
}

func setCodes(parts []commitPart, code int16) {
	for _, p := range parts {
		*p.code = code
	}
}

// commit checks each partition (metadata size, existence), appends the
// records of the valid ones with appendFn and, once they are durable,
// applies each (g locked, unless the group died meanwhile) or sets its
// error code, then answers. g is locked, so each offset's order is its
// place in the log: appends complete on goroutines of their own, in any
// order, and apply keeps a later commit of a partition over an earlier one
// that completes after it (as Kafka's onOffsetCommitAppend compares log
// offsets). Without that, a client's pipelined commits of 49 and then 50
// could leave 49 committed (librdkafka's 0030 test).
func (c *Coordinator) commit(g *Group, parts []commitPart, appendFn func(p int32, recs []Record, done func(error)), apply func(topicPartition, offset), answer func()) {
	now := c.now().UnixMilli()
	var recs []Record
	var valid []commitPart
	var offs []offset
	for _, p := range parts {
		switch {
		case p.metadata != nil && len(*p.metadata) > c.cfg.MaxMetadataBytes:
			*p.code = kerr.OffsetMetadataTooLarge.Code
			continue
		case !c.be.PartitionExists(p.k.topic, p.k.partition):
			*p.code = kerr.UnknownTopicOrPartition.Code
			continue
		}
		o := offset{offset: p.offset, leaderEpoch: p.epoch, committed: now, order: c.order.Add(1)}
		if p.metadata != nil {
			o.metadata = *p.metadata
		}
		recs = append(recs, offsetRecord(g.id, p.k, &o))
		valid = append(valid, p)
		offs = append(offs, o)
	}
	if len(recs) == 0 {
		answer()
		return
	}
	appendFn(PartitionFor(g.id, c.parts), recs, func(err error) {
		g.lock()
		defer g.unlock()
		for i, p := range valid {
			if err != nil {
				*p.code = c.be.AppendErrorCode(err)
				continue
			}
			if g.state != Dead {
				apply(p.k, offs[i])
			}
		}
		answer()
	})
}

// checkConsumerMember validates a commit or fetch of a KIP-848 group
// member: an admin (no member id, epoch -1) may commit for an empty group
// only; a member must be known and give its current epoch, or the one
// before it (the member may not have seen its new epoch yet).
func (g *Group) checkConsumerMember(memberID string, epoch int32) int16 {
	cs := g.consumer()
	if memberID == "" && epoch < 0 {
		if len(cs.members) == 0 {
			return 0
		}
		return kerr.UnknownMemberID.Code
	}
	m := cs.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case epoch != m.epoch && epoch != m.prevEpoch:
		return kerr.StaleMemberEpoch.Code
	}
	g.consumerHeartbeat(m, g.c.now(), g.consumerSessionTimeout())
	return 0
}

// ownedAtOlderEpoch keeps the parts of a commit by a KIP-848 member at its
// previous epoch (accepted: it may not have heard of the new one yet) that
// are still its own, assigned or being given up; the others get code. As
// Kafka's per-partition assignment epochs (KIP-1251): a late commit for a
// partition that moved to another member must not set that member's
// offset back. A commit at the current epoch keeps every part. g is
// locked.
func (g *Group) ownedAtOlderEpoch(memberID string, epoch int32, parts []commitPart, code int16) []commitPart {
	m := g.consumer().members[memberID]
	if m == nil || epoch == m.epoch {
		return parts
	}
	var kept []commitPart
	for _, p := range parts {
		if meta, ok := g.c.be.Topic(p.k.topic); ok && (m.assigned.has(meta.ID, p.k.partition) || m.revoking.has(meta.ID, p.k.partition)) {
			kept = append(kept, p)
			continue
		}
		*p.code = code
	}
	return kept
}

// OffsetFetch (key 9) returns committed offsets: -1 where there is none.
// v8+ asks for several groups at once.
func (c *Coordinator) OffsetFetch(r *kmsg.OffsetFetchRequest, respond Respond) {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = r.Version
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			code, ts := c.fetchOffsets(rg.Group, topics, rg.Topics == nil, r.Version, r.RequireStable)
			if code == 0 && rg.MemberID != nil && *rg.MemberID != "" {
				if g := c.group(rg.Group); g != nil {
					g.lock()
					if g.typ == typeConsumer {
						code = g.checkConsumerMember(*rg.MemberID, rg.MemberEpoch)
					}
					g.unlock()
				}
				if code != 0 {
					ts = nil
				}
			}
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = rg.Group, code
			for _, t := range ts {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.Topic
				for _, p := range t.Partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		respond(resp)
		return
	}
	code, ts := c.fetchOffsets(r.Group, r.Topics, r.Topics == nil && r.Version >= 2, r.Version, r.Version >= 7 && r.RequireStable)
	resp.Topics = ts
	if r.Version >= 2 {
		resp.ErrorCode = code
	} else if code != 0 {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	}
	respond(resp)
}

// fetchOffsets answers for one group. requireStable (KIP-447): a partition
// with an offset pending in an open transaction gets
// UNSTABLE_OFFSET_COMMIT, which clients retry until the transaction ends.
func (c *Coordinator) fetchOffsets(group string, topics []kmsg.OffsetFetchRequestTopic, all bool, version int16, requireStable bool) (int16, []kmsg.OffsetFetchResponseTopic) {
	var code int16
	if !c.loaded.Load() {
		code = c.loadErr()
	}
	var out []kmsg.OffsetFetchResponseTopic
	part := func(t string, p int32, o offset, ok bool) kmsg.OffsetFetchResponseTopicPartition {
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch = -1, -1
		meta := ""
		rp.Metadata = &meta
		if ok {
			rp.Offset, rp.LeaderEpoch = o.offset, o.leaderEpoch
			*rp.Metadata = o.metadata
		}
		return rp
	}
	if code != 0 {
		if version >= 2 {
			return code, nil
		}
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, part(t.Topic, p, offset{}, false))
			}
			out = append(out, rt)
		}
		return code, out
	}
	g := c.group(group)
	if g != nil {
		g.lock()
		defer g.unlock()
	}
	get := func(k topicPartition) (offset, bool) {
		if g == nil {
			return offset{}, false
		}
		o, ok := g.offsets[k]
		return o, ok
	}
	if all {
		if g == nil {
			return 0, []kmsg.OffsetFetchResponseTopic{}
		}
		byTopic := map[string][]int32{}
		for k := range g.offsets {
			byTopic[k.topic] = append(byTopic[k.topic], k.partition)
		}
		names := make([]string, 0, len(byTopic))
		for t := range byTopic {
			names = append(names, t)
		}
		sort.Strings(names)
		out = []kmsg.OffsetFetchResponseTopic{}
		for _, t := range names {
			ps := byTopic[t]
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t, Partitions: ps})
		}
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			k := topicPartition{t.Topic, p}
			if requireStable && g != nil && g.hasPendingLocked(k) {
				rp := part(t.Topic, p, offset{}, false)
				rp.ErrorCode = kerr.UnstableOffsetCommit.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			o, ok := get(k)
			rt.Partitions = append(rt.Partitions, part(t.Topic, p, o, ok))
		}
		out = append(out, rt)
	}
	return 0, out
}

// OffsetDelete (key 47) deletes a group's offsets for partitions of topics
// no active member is subscribed to.
func (c *Coordinator) OffsetDelete(r *kmsg.OffsetDeleteRequest, respond Respond) {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = r.Version
	switch {
	case !c.loaded.Load():
		resp.ErrorCode = c.loadErr()
	case r.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	}
	if resp.ErrorCode != 0 {
		respond(resp)
		return
	}
	g := c.group(r.Group)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		respond(resp)
		return
	}
	g.lock()
	defer g.unlock()
	if g.state == Dead {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		respond(resp)
		return
	}
	if !g.isEmpty() && g.protocolType != "consumer" {
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		respond(resp)
		return
	}
	subscribed := g.subscribedTopics()
	var recs []Record
	var keys []topicPartition
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			k := topicPartition{t.Topic, p.Partition}
			switch {
			case subscribed == nil || subscribed[t.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case !c.be.PartitionExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				if _, ok := g.offsets[k]; ok {
					recs = append(recs, offsetTombstone(g.id, k))
					keys = append(keys, k)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		respond(resp)
		return
	}
	// The tombstones' place in the log: a commit appended after them
	// stays, whichever completes first.
	order := c.order.Add(1)
	c.be.Append(PartitionFor(g.id, c.parts), recs, false, func(err error) {
		g.lock()
		defer g.unlock()
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Topics = nil
		} else {
			for _, k := range keys {
				if o, ok := g.offsets[k]; ok && o.order < order {
					delete(g.offsets, k)
				}
			}
		}
		respond(resp)
	})
}

// subscribedTopics is the union of the consumer members' subscriptions.
// A member whose metadata does not decode makes it nil: every topic counts
// as subscribed.
func (g *Group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	if g.typ == typeConsumer {
		for t := range g.subscribedMeta() {
			out[t] = true
		}
		return out
	}
	if g.protocolType != "consumer" {
		return out
	}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if md.ReadFrom(m.metadataFor(g.protocol)) != nil {
			return nil // unknown: treat every topic as subscribed
		}
		for _, t := range md.Topics {
			out[t] = true
		}
	}
	return out
}

// ExpireOffsets deletes offsets past offsets.retention.minutes: for an
// empty consumer group, all of them once it has been empty that long; for
// a group that only commits, each one that long after its commit. An empty
// group left without offsets is deleted.
func (c *Coordinator) ExpireOffsets() {
	if !c.loaded.Load() {
		return // a group's state is partial until loaded: judge it after
	}
	now := c.now()
	for _, g := range c.sortedGroups() {
		g.lock()
		if !g.isEmpty() || g.state != Empty || len(g.pending) > 0 || len(g.pendingTxn) > 0 {
			g.unlock()
			continue
		}
		var recs []Record
		var keys []topicPartition
		for k, o := range g.offsets {
			base := g.stateSince.UnixMilli()
			if g.protocolType == "" {
				base = o.committed
			}
			if now.UnixMilli()-base >= c.cfg.OffsetsRetention.Milliseconds() {
				recs = append(recs, offsetTombstone(g.id, k))
				keys = append(keys, k)
			}
		}
		drop := len(keys) == len(g.offsets)
		if drop && g.typ == typeConsumer {
			recs = append(recs, g.consumerTombstones()...)
		} else if drop && g.hasMetadata {
			recs = append(recs, groupTombstone(g.id))
		}
		if len(recs) == 0 {
			if drop {
				g.setState(Dead)
			}
			g.unlock()
			if drop {
				c.removeGroup(g)
			}
			continue
		}
		c.logger.Info("expiring offsets", "group", g.id, "offsets", len(keys))
		for _, k := range keys {
			delete(g.offsets, k)
		}
		if drop {
			g.setState(Dead)
		}
		g.unlock()
		c.be.Append(PartitionFor(g.id, c.parts), recs, false, func(err error) {
			if err != nil {
				c.logger.Error("cannot write expired offsets", "group", g.id, "err", err)
			}
			if drop {
				c.removeGroup(g)
			}
		})
	}
}
