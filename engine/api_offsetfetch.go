package engine

// OffsetFetch (key 9), v0-v9.
//
// Returns the committed offset, leader epoch and metadata of each asked
// partition: offset and epoch -1 with empty metadata where there is none. A
// null topic list (v2+) asks for every offset the group has committed. v8+
// asks for several groups at once; a KIP-848 member that names itself must
// give its current member epoch or the one before (STALE_MEMBER_EPOCH,
// UNKNOWN_MEMBER_ID). Until the coordinator has loaded, v0-v1 carry the
// error on every partition, v2+ once for the group. require_stable (v7+) is
// accepted and has nothing to wait for: without transactions no commit is
// pending. v10 (topic ids instead of names) is not advertised.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.OffsetFetch.Int16(), 0, 9, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r := kreq.(*kmsg.OffsetFetchRequest)
		b.groups.OffsetFetch(r, b.authzOffsetFetch(req, r, responder(req)))
	})
}
