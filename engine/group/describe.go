package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups (key 15) reports groups' state and members; member
// metadata and assignments only while the group is stable, as Kafka does.
// A group that does not exist is "Dead" (v6+: GROUP_ID_NOT_FOUND). A
// KIP-848 group is described as a classic one (describeConsumerAsClassic).
func (c *Coordinator) DescribeGroups(r *kmsg.DescribeGroupsRequest, respond Respond) {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = r.Version
	for _, id := range r.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.State = Dead.String()
		dg.AuthorizedOperations = -2147483648
		if r.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupOperations
		}
		switch {
		case !c.loaded.Load():
			dg.ErrorCode = c.loadErr()
			dg.State = ""
		default:
			g := c.group(id)
			if g == nil {
				if r.Version >= 6 {
					dg.ErrorCode = kerr.GroupIDNotFound.Code
					msg := "group " + id + " not found"
					dg.ErrorMessage = &msg
				}
				break
			}
			g.lock()
			if g.typ == typeConsumer {
				g.describeConsumerAsClassic(&dg)
				g.unlock()
				break
			}
			dg.State = g.state.String()
			dg.ProtocolType = g.protocolType
			if g.state == Stable {
				dg.Protocol = g.protocol
			}
			for _, m := range g.sortedMembers() {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
				dm.InstanceID = nullable(m.instanceID)
				dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
				if g.state == Stable {
					dm.ProtocolMetadata = m.metadataFor(g.protocol)
					dm.MemberAssignment = m.assignment
				}
				dg.Members = append(dg.Members, dm)
			}
			g.unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	respond(resp)
}

// groupOperations is the bit set of every ACL operation on a group, which
// a broker without an authorizer allows: READ, DELETE, DESCRIBE,
// DESCRIBE_CONFIGS and ALTER_CONFIGS (Kafka's AclEntry.supportedOperations).
const groupOperations = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11

// ListGroups (key 16) lists groups, filtered by state (v4+) and by type
// (v5+: "classic", or "consumer" for KIP-848 groups).
func (c *Coordinator) ListGroups(r *kmsg.ListGroupsRequest, respond Respond) {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = r.Version
	if !c.loaded.Load() {
		resp.ErrorCode = c.loadErr()
		respond(resp)
		return
	}
	want := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if equalFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, g := range c.sortedGroups() {
		g.lock()
		st, pt, typ := g.state.String(), g.protocolType, "classic"
		if g.typ == typeConsumer {
			st, typ = g.consumerGroupState(), "consumer"
		}
		g.unlock()
		if st == Dead.String() || !want(r.StatesFilter, st) || !want(r.TypesFilter, typ) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, pt, st, typ
		resp.Groups = append(resp.Groups, lg)
	}
	respond(resp)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// describeConsumerAsClassic answers DescribeGroups for a KIP-848 group as
// Kafka does: protocol type "consumer", the assignor as protocol, and each
// member's assignment in the classic consumer protocol's encoding.
func (g *Group) describeConsumerAsClassic(dg *kmsg.DescribeGroupsResponseGroup) {
	cs := g.consumer()
	dg.State = g.consumerGroupState()
	dg.ProtocolType = "consumer"
	dg.Protocol = cs.assignor
	for _, id := range cs.memberIDs() {
		m := cs.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
		dm.InstanceID = nullable(m.instanceID)
		md := kmsg.NewConsumerMemberMetadata()
		md.Version = 0
		md.Topics = m.topics
		dm.ProtocolMetadata = md.AppendTo(nil)
		var ca kmsg.ConsumerMemberAssignment
		for _, tid := range sortedIDs(m.assigned) {
			meta, ok := g.c.be.TopicByID(tid)
			if !ok {
				continue
			}
			ca.Topics = append(ca.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: meta.Name, Partitions: m.assigned[tid]})
		}
		dm.MemberAssignment = ca.AppendTo(nil)
		dg.Members = append(dg.Members, dm)
	}
}
