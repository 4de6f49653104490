package group

// Offsets committed inside a transaction (KIP-98, KIP-447): TxnOffsetCommit
// writes them to __consumer_offsets as a transactional batch of the
// producer, and they stay pending, invisible to OffsetFetch, until the
// transaction's marker reaches the group's partition: a commit makes them
// the group's committed offsets (unless a later plain commit of the same
// partition came after them in the log), an abort drops them. OffsetFetch
// with RequireStable answers UNSTABLE_OFFSET_COMMIT for a partition with a
// pending offset, so a consumer taking over never starts from an offset a
// transaction may still overturn.
//
// The transaction coordinator checks that the group's partition is in the
// transaction before the engine calls TxnOffsetCommit (KIP-890); the
// engine calls CompleteTxn once a marker for the producer is durable in a
// __consumer_offsets partition, and, while loading, ReplayTxn and
// ReplayMarker for what the log holds.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetCommit (key 28) stores a transaction's offsets as pending once
// they are durable. A member id or generation (v3+) is checked as Kafka
// does for transactional commits: none given (sarama, older clients) is
// accepted whatever the group's state; an unknown group is created unless
// a generation is given.
func (c *Coordinator) TxnOffsetCommit(r *kmsg.TxnOffsetCommitRequest, respond Respond) {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = r.Version
	var parts []commitPart
	for _, t := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rt.Partitions[j] = kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rt.Partitions[j].Partition = p.Partition
			epoch := p.LeaderEpoch
			if r.Version < 2 {
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
		code := c.loadErr()
		if code == kerr.CoordinatorLoadInProgress.Code && r.Version < 2 {
			code = kerr.CoordinatorNotAvailable.Code // as Kafka, for old clients
		}
		all(code)
		return
	}
	g := c.group(r.Group)
	if g == nil {
		if r.Generation >= 0 {
			all(kerr.IllegalGeneration.Code)
			return
		}
		g = c.groupOrCreate(r.Group)
	}
	g.lock()
	defer g.unlock()
	if code := g.checkTxnCommitter(r); code != 0 {
		all(code)
		return
	}
	if g.typ == typeConsumer && r.MemberID != "" {
		parts = g.ownedAtOlderEpoch(r.MemberID, r.Generation, parts, kerr.IllegalGeneration.Code)
	}
	pid, epoch := r.ProducerID, r.ProducerEpoch
	c.commit(g, parts, func(p int32, recs []Record, done func(error)) { c.be.AppendTxn(p, pid, epoch, recs, done) },
		func(k topicPartition, o offset) { g.addPendingLocked(pid, k, o) }, func() { respond(resp) })
}

// checkTxnCommitter validates the member of a transactional commit
// (KIP-447). g is locked.
func (g *Group) checkTxnCommitter(r *kmsg.TxnOffsetCommitRequest) int16 {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if r.Generation < 0 && r.MemberID == "" && r.InstanceID == nil {
		return 0 // no member given: accepted in any state, as Kafka does
	}
	if g.typ == typeConsumer {
		if code := g.checkConsumerMember(r.MemberID, r.Generation); code != 0 {
			if code == kerr.StaleMemberEpoch.Code {
				code = kerr.IllegalGeneration.Code // as Kafka translates it here
			}
			return code
		}
		return 0
	}
	m := g.members[r.MemberID]
	switch {
	case g.fenced(r.InstanceID, r.MemberID):
		return kerr.FencedInstanceID.Code
	case r.Generation < 0 && g.state == Empty:
		return 0
	case m == nil, g.unknownInstance(r.InstanceID):
		return kerr.UnknownMemberID.Code
	case r.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	g.heartbeat(m, g.c.now())
	return 0
}

// addPendingLocked records a transactional offset of producer pid. g is
// locked.
func (g *Group) addPendingLocked(pid int64, k topicPartition, o offset) {
	if g.pendingTxn == nil {
		g.pendingTxn = map[int64]map[topicPartition]offset{}
	}
	ps := g.pendingTxn[pid]
	if ps == nil {
		ps = map[topicPartition]offset{}
		g.pendingTxn[pid] = ps
	}
	if cur, ok := ps[k]; !ok || cur.order < o.order {
		ps[k] = o
	}
	g.c.txnMu.Lock()
	if g.c.txnGroups == nil {
		g.c.txnGroups = map[int64]map[string]bool{}
	}
	if g.c.txnGroups[pid] == nil {
		g.c.txnGroups[pid] = map[string]bool{}
	}
	g.c.txnGroups[pid][g.id] = true
	g.c.txnMu.Unlock()
}

// completeLocked settles producer pid's pending offsets: committed ones
// replace the group's unless a later commit of the partition came after
// them. g is locked.
func (g *Group) completeLocked(pid int64, commit bool) {
	ps := g.pendingTxn[pid]
	if ps == nil {
		return
	}
	delete(g.pendingTxn, pid)
	if !commit || g.state == Dead {
		return
	}
	for k, o := range ps {
		if cur, ok := g.offsets[k]; !ok || cur.order < o.order {
			g.offsets[k] = o
		}
	}
}

// hasPendingLocked reports whether a transaction holds an offset of k
// pending. g is locked.
func (g *Group) hasPendingLocked(k topicPartition) bool {
	for _, ps := range g.pendingTxn {
		if _, ok := ps[k]; ok {
			return true
		}
	}
	return false
}

// CompleteTxn settles the offsets producer pid committed in a transaction
// to groups of __consumer_offsets partition p, once the transaction's
// marker is durable there.
func (c *Coordinator) CompleteTxn(p int32, pid int64, commit bool) {
	c.txnMu.Lock()
	ids := c.txnGroups[pid]
	var mine []string
	for id := range ids {
		if PartitionFor(id, c.parts) == p {
			mine = append(mine, id)
			delete(ids, id)
		}
	}
	if len(ids) == 0 {
		delete(c.txnGroups, pid)
	}
	c.txnMu.Unlock()
	for _, id := range mine {
		if g := c.group(id); g != nil {
			g.lock()
			g.completeLocked(pid, commit)
			g.unlock()
		}
	}
}

// ReplayTxn replays an offset commit record of producer pid's transaction
// (a transactional batch of __consumer_offsets): it stays pending until
// ReplayMarker settles it.
func (c *Coordinator) ReplayTxn(key, value []byte, pid int64) error {
	k, tp, ok, err := decodeOffsetKey(key)
	if err != nil || !ok {
		return err
	}
	if value == nil {
		return c.Replay(key, value)
	}
	o, err := decodeOffsetValue(k, value)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.replayGroup(k)
	g.lock()
	o.order = c.order.Add(1)
	g.addPendingLocked(pid, tp, o)
	g.unlock()
	return nil
}

// ReplayMarker replays a transaction marker of producer pid found in
// __consumer_offsets partition p.
func (c *Coordinator) ReplayMarker(p int32, pid int64, commit bool) {
	c.CompleteTxn(p, pid, commit)
}
