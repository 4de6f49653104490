package group

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// __consumer_offsets records use Kafka's own schemas, so tools that read
// that topic (lag monitors, kafka-console-consumer's offsets formatter)
// understand it: offset commits are key v1 {group, topic, partition} with
// value v3 {offset, leader epoch, metadata, commit timestamp}; group
// metadata is key v2 {group} with value v3. A null value deletes the key.
// KIP-848 consumer groups have records of their own (logformat848.go).

func offsetKey(group string, k topicPartition) []byte {
	key := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: k.topic, Partition: k.partition}
	return key.AppendTo(nil)
}

func offsetRecord(group string, k topicPartition, o *offset) Record {
	v := kmsg.OffsetCommitValue{Version: 3, Offset: o.offset, LeaderEpoch: o.leaderEpoch, Metadata: o.metadata, CommitTimestamp: o.committed}
	return Record{Key: offsetKey(group, k), Value: v.AppendTo(nil)}
}

func offsetTombstone(group string, k topicPartition) Record {
	return Record{Key: offsetKey(group, k)}
}

func groupKey(group string) []byte {
	key := kmsg.GroupMetadataKey{Version: 2, Group: group}
	return key.AppendTo(nil)
}

func groupTombstone(group string) Record { return Record{Key: groupKey(group)} }

// metadataRecord is the group's membership as of now.
func (g *Group) metadataRecord() Record {
	v := kmsg.GroupMetadataValue{Version: 3, ProtocolType: g.protocolType, Generation: g.generation, CurrentStateTimestamp: g.stateSince.UnixMilli()}
	v.Protocol, v.Leader = nullable(g.protocol), nullable(g.leader)
	if g.state != Empty {
		for _, m := range g.sortedMembers() {
			vm := kmsg.NewGroupMetadataValueMember()
			vm.MemberID, vm.ClientID, vm.ClientHost = m.id, m.clientID, m.clientHost
			vm.InstanceID = nullable(m.instanceID)
			vm.RebalanceTimeoutMillis = int32(m.rebalance.Milliseconds())
			vm.SessionTimeoutMillis = int32(m.session.Milliseconds())
			vm.Subscription = m.metadataFor(g.protocol)
			vm.Assignment = m.assignment
			v.Members = append(v.Members, vm)
		}
	}
	return Record{Key: groupKey(g.id), Value: v.AppendTo(nil)}
}

// Replay applies one record of __consumer_offsets while loading. Records
// must come in log order per partition. It holds c.mu and the lock of the
// group it changes, so what reads groups meanwhile (metrics, a topic's
// deletion) sees each record whole. Records of other types than
// offset commits, group metadata and KIP-848's (logformat848.go) are
// skipped.
func (c *Coordinator) Replay(key, value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(key) < 2 {
		return fmt.Errorf("record key of %d bytes", len(key))
	}
	switch typ := int16(binary.BigEndian.Uint16(key)); typ {
	case recConsumerGroupMetadata, recConsumerMemberMetadata, recConsumerTargetMetadata, recConsumerTargetMember, recConsumerCurrentAssigned:
		return c.replayConsumer(typ, key[2:], value)
	case 0, 1:
		id, tp, _, err := decodeOffsetKey(key)
		if err != nil {
			return err
		}
		if value == nil {
			if g := c.groups[id]; g != nil {
				g.lock()
				delete(g.offsets, tp)
				for _, ps := range g.pendingTxn {
					delete(ps, tp)
				}
				g.unlock()
			}
			return nil
		}
		o, err := decodeOffsetValue(id, value)
		if err != nil {
			return err
		}
		g := c.replayGroup(id)
		g.lock()
		o.order = c.order.Add(1)
		g.offsets[tp] = o
		g.unlock()
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group metadata key: %w", err)
		}
		if value == nil {
			// The group's metadata is gone; offsets committed after it
			// was deleted (a group recreated) have their own records.
			if g := c.groups[k.Group]; g != nil {
				g.lock()
				if len(g.offsets) == 0 {
					delete(c.groups, k.Group)
				} else {
					g.members, g.static, g.state = map[string]*member{}, map[string]string{}, Empty
					g.hasMetadata, g.protocolType, g.protocol, g.leader = false, "", "", ""
				}
				g.unlock()
			}
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("group metadata value of group %q: %w", k.Group, err)
		}
		g := c.replayGroup(k.Group)
		g.lock()
		defer g.unlock()
		g.hasMetadata = true
		g.protocolType, g.generation = v.ProtocolType, v.Generation
		g.protocol, g.leader = "", ""
		if v.Protocol != nil {
			g.protocol = *v.Protocol
		}
		if v.Leader != nil {
			g.leader = *v.Leader
		}
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
		g.members, g.static = map[string]*member{}, map[string]string{}
		g.state = Empty
		for _, vm := range v.Members {
			g.joins++
			m := &member{id: vm.MemberID, clientID: vm.ClientID, clientHost: vm.ClientHost,
				session:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
				rebalance: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
				protocols: []protocol{{g.protocol, vm.Subscription}}, assignment: vm.Assignment, joinOrder: g.joins}
			if m.rebalance <= 0 {
				m.rebalance = m.session
			}
			if m.session <= 0 {
				m.session = c.cfg.MinSessionTimeout
			}
			if vm.InstanceID != nil && *vm.InstanceID != "" {
				m.instanceID = *vm.InstanceID
				g.static[m.instanceID] = m.id
			}
			g.members[m.id] = m
			g.state = Stable
		}
	}
	return nil
}

// decodeOffsetKey reads an offset commit key (ok is false for records of
// other types).
func decodeOffsetKey(key []byte) (group string, tp topicPartition, ok bool, err error) {
	if len(key) < 2 || binary.BigEndian.Uint16(key) > 1 {
		return "", tp, false, nil
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return "", tp, false, fmt.Errorf("offset commit key: %w", err)
	}
	return k.Group, topicPartition{k.Topic, k.Partition}, true, nil
}

func decodeOffsetValue(group string, value []byte) (offset, error) {
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return offset{}, fmt.Errorf("offset commit value of group %q: %w", group, err)
	}
	epoch := v.LeaderEpoch
	if v.Version < 3 {
		epoch = -1
	}
	return offset{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, committed: v.CommitTimestamp}, nil
}

func (c *Coordinator) replayGroup(id string) *Group {
	g := c.groups[id]
	if g == nil {
		g = newGroup(c, id)
		c.groups[id] = g
	}
	return g
}
