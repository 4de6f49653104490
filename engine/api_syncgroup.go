package engine

// SyncGroup (key 14), v0-v5: the classic group protocol.
//
// The leader sends every member's assignment; the group's metadata with the
// assignments is written to __consumer_offsets before any member gets its
// own, so they survive a restart of the coordinator. If the write
// fails, waiting members get COORDINATOR_NOT_AVAILABLE and the group
// rebalances. A member of a stable group gets its assignment at once. v5
// protocol type and name must match the group's
// (INCONSISTENT_GROUP_PROTOCOL). While the coordinator loads, the answer is
// REBALANCE_IN_PROGRESS rather than COORDINATOR_LOAD_IN_PROGRESS, as
// Kafka's: older clients fail on the latter here and rejoin on the former;
// a standby answers NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.SyncGroup.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.groups.SyncGroup(kreq.(*kmsg.SyncGroupRequest), responder(req))
	})
}
