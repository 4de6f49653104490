package group

// KIP-848 consumer groups are durable as Kafka 4's records in
// __consumer_offsets: the key is the record type (int16) and its fields,
// not flexible; the value a version (int16, 0) and flexible fields.
//
//	3 ConsumerGroupMetadata             {group}         -> {epoch}
//	5 ConsumerGroupMemberMetadata       {group, member} -> {instance, rack, client id, client host, topics, regex, rebalance timeout, assignor}
//	6 ConsumerGroupTargetAssignmentMetadata {group}     -> {assignment epoch}
//	7 ConsumerGroupTargetAssignmentMember   {group, member} -> {partitions by topic id}
//	8 ConsumerGroupCurrentMemberAssignment  {group, member} -> {epoch, previous epoch, state, assigned, pending revocation}
//
// The coordinator keeps the value it last wrote for each key and, after a
// change, writes what differs (tombstones for members that left).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

const (
	recConsumerGroupMetadata   = 3
	recConsumerMemberMetadata  = 5
	recConsumerTargetMetadata  = 6
	recConsumerTargetMember    = 7
	recConsumerCurrentAssigned = 8
)

// Kafka's MemberState values.
var memberStateCodes = map[string]int8{memberStable: 0, memberUnrevoked: 1, memberUnreleased: 2, memberLeftStatic: 0}

func appendKeyString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func consumerKey(typ int16, group string, member *string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(typ))
	b = appendKeyString(b, group)
	if member != nil {
		b = appendKeyString(b, *member)
	}
	return b
}

func appendCompactString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

func appendCompactNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, 0)
	}
	return appendCompactString(b, s)
}

func appendTopicPartitions(b []byte, a assignment) []byte {
	ids := sortedIDs(a)
	b = binary.AppendUvarint(b, uint64(len(ids))+1)
	for _, id := range ids {
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, uint64(len(a[id]))+1)
		for _, p := range a[id] {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
		b = append(b, 0) // tagged fields
	}
	return b
}

func valueHeader() []byte { return []byte{0, 0} } // version 0

func memberMetadataValue(m *cmember) []byte {
	b := valueHeader()
	b = appendCompactNullable(b, m.instanceID)
	b = appendCompactNullable(b, m.rackID)
	b = appendCompactString(b, m.clientID)
	b = appendCompactString(b, m.clientHost)
	b = binary.AppendUvarint(b, uint64(len(m.topics))+1)
	for _, t := range m.topics {
		b = appendCompactString(b, t)
	}
	b = appendCompactNullable(b, m.regex)
	rebalance := int32(-1)
	if m.rebalance > 0 {
		rebalance = int32(m.rebalance.Milliseconds())
	}
	b = binary.BigEndian.AppendUint32(b, uint32(rebalance))
	b = appendCompactNullable(b, m.assignor)
	return append(b, 0)
}

func currentAssignmentValue(m *cmember) []byte {
	b := valueHeader()
	b = binary.BigEndian.AppendUint32(b, uint32(m.epoch))
	b = binary.BigEndian.AppendUint32(b, uint32(m.prevEpoch))
	b = append(b, byte(memberStateCodes[m.state]))
	b = appendTopicPartitions(b, m.assigned)
	b = appendTopicPartitions(b, m.revoking)
	return append(b, 0)
}

func epochValue(epoch int32) []byte {
	b := binary.BigEndian.AppendUint32(valueHeader(), uint32(epoch))
	return append(b, 0)
}

func targetMemberValue(a assignment) []byte {
	return append(appendTopicPartitions(valueHeader(), a), 0)
}

// consumerRecords is the group's state as records, by key.
func (g *Group) consumerRecords() map[string][]byte {
	cs := g.cs
	out := map[string][]byte{
		string(consumerKey(recConsumerGroupMetadata, g.id, nil)):  epochValue(cs.epoch),
		string(consumerKey(recConsumerTargetMetadata, g.id, nil)): epochValue(cs.targetEpoch),
	}
	for id, m := range cs.members {
		out[string(consumerKey(recConsumerMemberMetadata, g.id, &id))] = memberMetadataValue(m)
		out[string(consumerKey(recConsumerCurrentAssigned, g.id, &id))] = currentAssignmentValue(m)
		if t, ok := cs.target[id]; ok {
			out[string(consumerKey(recConsumerTargetMember, g.id, &id))] = targetMemberValue(t)
		}
	}
	return out
}

// persistConsumer writes what changed in the group since its last write
// and calls done once that is durable: at once, with the group lock held,
// when nothing changed; otherwise from the Backend's goroutine, without
// it. done may be nil.
func (g *Group) persistConsumer(done func(error)) {
	cs := g.cs
	if cs.written == nil {
		cs.written = map[string][]byte{}
	}
	want := g.consumerRecords()
	if len(cs.members) == 0 && cs.epoch == 0 {
		want = map[string][]byte{}
	}
	var recs []Record
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys) // member metadata (5) before target (6, 7) and assignment (8)
	for _, k := range keys {
		if v := want[k]; !slices.Equal(cs.written[k], v) {
			recs = append(recs, Record{Key: []byte(k), Value: v})
			cs.written[k] = v
		}
	}
	for k := range cs.written {
		if _, ok := want[k]; !ok {
			recs = append(recs, Record{Key: []byte(k)})
			delete(cs.written, k)
		}
	}
	if len(recs) == 0 {
		if done != nil {
			done(nil)
		}
		return
	}
	g.hasMetadata = true
	g.c.be.Append(PartitionFor(g.id, g.c.parts), recs, false, func(err error) {
		if err != nil {
			g.c.logger.Error("cannot write consumer group state", "group", g.id, "err", err)
			g.lock()
			if g.cs != nil {
				g.cs.written = nil // rewrite everything next time
			}
			g.unlock()
		}
		if done != nil {
			done(err)
		}
	})
}

// consumerTombstones deletes every record of a consumer group.
func (g *Group) consumerTombstones() []Record {
	var recs []Record
	if g.cs != nil {
		keys := make([]string, 0, len(g.cs.written))
		for k := range g.cs.written {
			keys = append(keys, k)
		}
		// The group's own record (type 3) goes last.
		sort.Sort(sort.Reverse(sort.StringSlice(keys)))
		for _, k := range keys {
			recs = append(recs, Record{Key: []byte(k)})
		}
		g.cs.written = nil
	}
	return recs
}

// reader decodes Kafka's encodings with bounds checks.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("record truncated")

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *reader) int16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}
func (r *reader) int32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}
func (r *reader) int8() int8 {
	if b := r.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}
func (r *reader) keyString() string { return string(r.take(int(uint16(r.int16())))) }
func (r *reader) uvarint() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<24 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}
func (r *reader) compactString() string {
	n := r.uvarint()
	if n == 0 {
		return ""
	}
	return string(r.take(n - 1))
}
func (r *reader) skipTags() {
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		r.uvarint()
		r.take(r.uvarint())
	}
}
func (r *reader) topicPartitions() assignment {
	a := assignment{}
	n := r.uvarint() - 1
	for i := 0; i < n && r.err == nil; i++ {
		var id [16]byte
		copy(id[:], r.take(16))
		np := r.uvarint() - 1
		for j := 0; j < np && r.err == nil; j++ {
			a.add(id, r.int32())
		}
		r.skipTags()
	}
	return a
}

// replayConsumer applies one KIP-848 record (key type typ; rest is the
// key after its type). c.mu is held.
func (c *Coordinator) replayConsumer(typ int16, rest, value []byte) error {
	kr := &reader{b: rest}
	groupID := kr.keyString()
	var memberID string
	if typ == recConsumerMemberMetadata || typ == recConsumerTargetMember || typ == recConsumerCurrentAssigned {
		memberID = kr.keyString()
	}
	if kr.err != nil {
		return fmt.Errorf("consumer group record key (type %d): %w", typ, kr.err)
	}
	g := c.groups[groupID]
	if value == nil && (g == nil || g.cs == nil) {
		return nil
	}
	if g == nil {
		g = c.replayGroup(groupID)
	}
	g.lock()
	defer g.unlock()
	if value == nil && typ == recConsumerGroupMetadata {
		// The group was deleted (its members' records went first).
		g.cs, g.typ, g.protocolType, g.hasMetadata = nil, typeClassic, "", false
		if len(g.offsets) == 0 {
			delete(c.groups, groupID)
		}
		return nil
	}
	g.typ, g.protocolType, g.hasMetadata = typeConsumer, "consumer", true
	cs := g.consumer()
	if cs.written == nil {
		cs.written = map[string][]byte{}
	}
	key := string(append(binary.BigEndian.AppendUint16(nil, uint16(typ)), rest...))
	if value == nil {
		delete(cs.written, key)
	} else {
		cs.written[key] = slices.Clone(value)
	}
	member := func() *cmember {
		m := cs.members[memberID]
		if m == nil {
			m = &cmember{id: memberID, assigned: assignment{}, revoking: assignment{}, state: memberStable}
			cs.members[memberID] = m
		}
		return m
	}
	if value == nil {
		switch typ {
		case recConsumerMemberMetadata, recConsumerCurrentAssigned:
			if m := cs.members[memberID]; m != nil {
				if m.instanceID != "" && cs.static[m.instanceID] == memberID {
					delete(cs.static, m.instanceID)
				}
				delete(cs.members, memberID)
			}
		case recConsumerTargetMember:
			delete(cs.target, memberID)
		}
		return nil
	}
	r := &reader{b: value}
	if v := r.int16(); v != 0 && r.err == nil {
		return nil // a future version: skip rather than misread
	}
	switch typ {
	case recConsumerGroupMetadata:
		cs.epoch = r.int32()
	case recConsumerTargetMetadata:
		cs.targetEpoch = r.int32()
	case recConsumerMemberMetadata:
		m := member()
		m.instanceID, m.rackID = r.compactString(), r.compactString()
		m.clientID, m.clientHost = r.compactString(), r.compactString()
		m.topics = nil
		for n := r.uvarint() - 1; n > 0 && r.err == nil; n-- {
			m.topics = append(m.topics, r.compactString())
		}
		m.regex = r.compactString()
		if rt := r.int32(); rt > 0 {
			m.rebalance = time.Duration(rt) * time.Millisecond
		}
		m.assignor = r.compactString()
		if m.instanceID != "" {
			cs.static[m.instanceID] = m.id
		}
	case recConsumerTargetMember:
		cs.target[memberID] = r.topicPartitions()
	case recConsumerCurrentAssigned:
		m := member()
		m.epoch, m.prevEpoch = r.int32(), r.int32()
		switch r.int8() {
		case 1:
			m.state = memberUnrevoked
		case 2:
			m.state = memberUnreleased
		default:
			m.state = memberStable
		}
		if m.epoch == -2 {
			m.state = memberLeftStatic
		}
		m.assigned, m.revoking = r.topicPartitions(), r.topicPartitions()
	}
	if r.err != nil {
		return fmt.Errorf("consumer group record (type %d) of group %q: %w", typ, groupID, r.err)
	}
	return nil
}
