package engine

// SaslHandshake (key 17), v0-1: the mechanism of a SASL listener's
// connection (sasl.go). v0 means the tokens that follow come bare, v1 in
// SaslAuthenticate requests.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.SASLHandshake.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.handleSASLHandshake(req, kreq.(*kmsg.SASLHandshakeRequest))
	})
}
