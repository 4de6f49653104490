package engine

// ConsumerGroupHeartbeat (key 68), v0-v1: KIP-848 consumer groups.
//
// Creates __consumer_offsets on first use, as Kafka does. One request
// joins (member epoch 0), heartbeats, reconciles or leaves (-1; -2 for a
// static member) a member. The coordinator computes the target assignment
// with a server-side assignor, "uniform" (the default) or "range"; any
// other gets UNSUPPORTED_ASSIGNOR. It walks each member toward its target
// without a partition ever having two owners. A subscription regex is
// anchored and compiled as Go's RE2 syntax, which Kafka's RE2/J shares. v1
// members choose their own member id. The group epoch, target assignment
// and members are written as Kafka 4's records, so members carry on across
// a restart. A classic group with members is not converted
// (GROUP_ID_NOT_FOUND).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.ConsumerGroupHeartbeat.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.ensureOffsetsTopic()
		b.groups.ConsumerGroupHeartbeat(kreq.(*kmsg.ConsumerGroupHeartbeatRequest), req.ClientID, clientHost(req), responder(req))
	})
}
