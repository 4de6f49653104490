package engine

// AddOffsetsToTxn (key 25), v0-v4.
//
// Adds the group's __consumer_offsets partition to the transaction, so
// the TxnOffsetCommit that follows is checked against it and the
// transaction's marker settles the offsets. Served by engine/txn.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.AddOffsetsToTxn.Int16(), 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.ensureOffsetsTopic()
		b.txns.AddOffsetsToTxn(kreq.(*kmsg.AddOffsetsToTxnRequest), txnResponder(req))
	})
}
