package engine

// ConsumerGroupDescribe (key 69), v0-v1: KIP-848 consumer groups.
//
// Each group's state, group and assignment epochs, assignor ("uniform"
// unless a member asked for another), and every member's subscription,
// current and target assignment. A classic or unknown group gets
// GROUP_ID_NOT_FOUND. Authorized operations are READ, DELETE and DESCRIBE:
// there is no authorizer.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.ConsumerGroupDescribe.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r := kreq.(*kmsg.ConsumerGroupDescribeRequest)
		b.groups.ConsumerGroupDescribe(r, b.authzConsumerGroupDescribe(req, r, responder(req)))
	})
}
