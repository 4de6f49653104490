package engine

// AddPartitionsToTxn (key 24), v0-v5.
//
// KIP-890's batched form (v4+) carries VerifyOnly, for what brokers ask
// each other; samsa's own produce path asks the coordinator in-process
// (api_produce.go). Served by engine/txn (txns.go), which answers
// UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist and
// OPERATION_NOT_ATTEMPTED for the others of that request, and
// CONCURRENT_TRANSACTIONS while the transaction's state is being written.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.AddPartitionsToTxn.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r, respond, ok := b.authzAddPartitionsToTxn(req, kreq.(*kmsg.AddPartitionsToTxnRequest), txnResponder(req))
		if ok {
			b.txns.AddPartitionsToTxn(r, respond)
		}
	})
}
