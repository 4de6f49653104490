package engine

// Forwarding: the admin requests that change the catalog
// (CreatePartitions, AlterConfigs, IncrementalAlterConfigs) go from a
// standby to the primary, as Kafka's brokers forward them to the
// controller, since clients send them to any broker; so does an
// idempotent producer's InitProducerId (the primary allocates ids).

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/replica"
	"samsa/netio"
)

// forwardToPrimary returns the primary's answer to req when this node is a
// standby and req came from a client, not forwarded by the primary itself.
// ok is false otherwise, and when the primary does not answer: the node
// then serves req itself (a standby answers NOT_CONTROLLER).
func forwardToPrimary[R kmsg.Response](b *Broker, req kmsg.Request, fromPeer bool) (resp R, ok bool) {
	if !b.pair.IsStandby() || fromPeer {
		return resp, false
	}
	kresp, err := b.pair.AskPeer(req, 30*time.Second)
	if err != nil {
		b.logger.Warn("cannot forward a request to the primary", "api", kmsg.NameForKey(req.Key()), "err", err)
		return resp, false
	}
	return kresp.(R), true
}

// fromPeer reports whether a request came from the other node of the pair
// (forwarded by it): it is never forwarded back.
func fromPeer(req *netio.Request) bool {
	return strings.HasPrefix(req.ClientID, replica.PeerClientIDPrefix)
}
