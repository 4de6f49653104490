package engine

// Heartbeat (key 12), v0-v4: the classic group protocol.
//
// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
// A wrong generation gets ILLEGAL_GENERATION, an unknown member
// UNKNOWN_MEMBER_ID, a static member under another member id
// FENCED_INSTANCE_ID. While the coordinator loads __consumer_offsets the
// answer is no error, as Kafka's: the member cannot be checked yet; a
// standby answers NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.Heartbeat.Int16(), 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.groups.Heartbeat(kreq.(*kmsg.HeartbeatRequest), responder(req))
	})
}
