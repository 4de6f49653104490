package engine

// Forwarding: the admin requests that change the catalog
// (CreatePartitions, AlterConfigs, IncrementalAlterConfigs) go from a
// standby to the primary, as Kafka's brokers forward them to the
// controller, since clients send them to any broker.

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/replica"
	"samsa/netio"
)

// forwardToPrimary sends an admin request that a standby received to the
// primary over the link. ok is false when the primary does not answer; the
// standby then answers itself (NOT_CONTROLLER).
func (b *Broker) forwardToPrimary(req kmsg.Request) (kmsg.Response, bool) {
	resp, err := b.pair.AskPeer(req, 30*time.Second)
	if err != nil {
		b.logger.Warn("cannot forward an admin request to the primary", "api", kmsg.NameForKey(req.Key()), "err", err)
		return nil, false
	}
	return resp, true
}

// fromPeer reports whether a request came from the other node of the pair
// (forwarded by it): it is never forwarded back.
func fromPeer(req *netio.Request) bool {
	return strings.HasPrefix(req.ClientID, replica.PeerClientIDPrefix)
}
