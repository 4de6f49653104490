package engine

// ListGroups (key 16), v0-v5.
//
// Every group that is not dead, in id order, filtered by state (v4+,
// ignoring case) and by type (v5+: "classic", or "consumer" for KIP-848
// groups). A KIP-848 group reports its consumer group state (Empty,
// Assigning, Reconciling, Stable). One node coordinates every group, so
// this is the cluster's list.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.ListGroups.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.groups.ListGroups(kreq.(*kmsg.ListGroupsRequest), b.authzListGroups(req, responder(req)))
	})
}
