package engine

// ListTransactions (key 66), v0-v2.
//
// Transactional ids the coordinator knows, filtered by state, producer id
// and (v1+) duration, and (v2+) an id pattern. Served by engine/txn.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.ListTransactions.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.txns.ListTransactions(kreq.(*kmsg.ListTransactionsRequest), b.authzListTransactions(req, txnResponder(req)))
	})
}
