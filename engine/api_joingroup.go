package engine

// JoinGroup (key 11), v0-v9: the classic group protocol.
//
// Creates __consumer_offsets on first use, as Kafka does. The answer comes
// when the group's rebalance completes (an empty group first waits
// group.initial.rebalance.delay.ms for more members), at once for errors
// and for a member rejoining unchanged. v4+ members without an id first get
// MEMBER_ID_REQUIRED with their id (KIP-394). Members with a
// group.instance.id are static (KIP-345): one that rejoins within its
// session keeps its assignment without a rebalance, and a returning leader
// of a stable group is told not to assign (v9+ SkipAssignment, KIP-814;
// before, the old leader id). Session timeouts outside
// group.min/max.session.timeout.ms get INVALID_SESSION_TIMEOUT, joins past
// group.max.size GROUP_MAX_SIZE_REACHED. An empty KIP-848 group becomes a
// classic one; one with members answers INCONSISTENT_GROUP_PROTOCOL: samsa
// does not migrate groups with members between the two protocols.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.JoinGroup.Int16(), 0, 9, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.ensureOffsetsTopic()
		b.groups.JoinGroup(kreq.(*kmsg.JoinGroupRequest), req.ClientID, clientHost(req), responder(req))
	})
}
