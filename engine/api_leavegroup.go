package engine

// LeaveGroup (key 13), v0-v5: the classic group protocol.
//
// Removes members and rebalances the rest. v3+ removes several at once, by
// member id or group.instance.id, with an error per member (a static
// member named with another member id gets FENCED_INSTANCE_ID); v0-v2
// remove the one member id and carry its error at the top. A member id
// handed out with MEMBER_ID_REQUIRED that never joined may leave too.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.LeaveGroup.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.groups.LeaveGroup(kreq.(*kmsg.LeaveGroupRequest), responder(req))
	})
}
