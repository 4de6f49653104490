package engine

// DescribeTransactions (key 65), v0.
//
// The coordinator's view of transactional ids: state, producer id and
// epoch, timeout, start time and partitions (kafka-transactions.sh
// describe). Served by engine/txn.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeTransactions.Int16(), 0, 0, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.txns.DescribeTransactions(kreq.(*kmsg.DescribeTransactionsRequest), b.authzDescribeTransactions(req, txnResponder(req)))
	})
}
