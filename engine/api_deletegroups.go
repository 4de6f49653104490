package engine

// DeleteGroups (key 42), v0-v2.
//
// Deletes empty groups with their committed offsets: tombstones for the
// offsets and the group's metadata go to __consumer_offsets before the
// answer, and the group is forgotten only then, so the commits of a group
// created again under the same name cannot land before them in the log. A
// group with members gets NON_EMPTY_GROUP, an unknown one
// GROUP_ID_NOT_FOUND; a group named twice is answered once. v3 is not
// advertised.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.DeleteGroups.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r, respond := b.authzDeleteGroups(req, kreq.(*kmsg.DeleteGroupsRequest), responder(req))
		b.groups.DeleteGroups(r, respond)
	})
}
