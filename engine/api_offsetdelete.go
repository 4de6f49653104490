package engine

// OffsetDelete (key 47), v0.
//
// Deletes a group's committed offsets (tombstones in __consumer_offsets)
// for partitions of topics no member is subscribed to; others get
// GROUP_SUBSCRIBED_TO_TOPIC, and a member whose subscription does not
// decode counts as subscribed to every topic. A group with members whose
// protocol type is not "consumer" gets NON_EMPTY_GROUP: only a consumer's
// subscription says which offsets are in use.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.OffsetDelete.Int16(), 0, 0, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r, respond := b.authzOffsetDelete(req, kreq.(*kmsg.OffsetDeleteRequest), responder(req))
		b.groups.OffsetDelete(r, respond)
	})
}
