package engine

// SaslAuthenticate (key 36), v0-2: a SASL token and the reply (sasl.go);
// v1+ answers the session lifetime (KIP-368).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.SASLAuthenticate.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.handleSASLAuthenticate(req, kreq.(*kmsg.SASLAuthenticateRequest))
	})
}
