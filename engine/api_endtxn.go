package engine

// EndTxn (key 26), v0-v5.
//
// Served by engine/txn: the transaction is prepared (PrepareCommit or
// PrepareAbort in __transaction_state), its markers are written to every
// partition in it, and it is complete. samsa answers once it is complete,
// at most 5 s after it is prepared (Kafka answers as soon as it is
// prepared), so the producer's next transaction starts without a
// CONCURRENT_TRANSACTIONS retry. v5 (KIP-890 part 2) bumps the producer's
// epoch at every end.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.EndTxn.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.txns.EndTxn(kreq.(*kmsg.EndTxnRequest), txnResponder(req))
	})
}
