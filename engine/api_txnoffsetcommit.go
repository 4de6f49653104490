package engine

// TxnOffsetCommit (key 28), v0-v5.
//
// Offsets committed inside a transaction: the transaction coordinator
// first checks that the group's __consumer_offsets partition is in the
// transaction (KIP-890 part 1: INVALID_TXN_STATE before v4,
// TRANSACTION_ABORTABLE from v4; v5 adds it, part 2), then the group
// coordinator writes them as a transactional batch of the producer and
// keeps them pending, invisible to OffsetFetch, until the transaction's
// marker (engine/group/txnoffsets.go). A member id and generation (v3+,
// KIP-447) are checked when given; sarama gives none, which Kafka and
// samsa accept.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/group"
	"samsa/engine/txn"
	"samsa/netio"
)

func init() {
	regKey(kmsg.TxnOffsetCommit.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r, respond, ok := b.authzTxnOffsetCommit(req, kreq.(*kmsg.TxnOffsetCommitRequest), responder(req))
		if ok {
			b.handleTxnOffsetCommit(r, respond)
		}
	})
}

func txnResponder(req *netio.Request) txn.Respond {
	return func(r kmsg.Response) { respond(req, r) }
}

// handleTxnOffsetCommit checks with the transaction coordinator that the
// group's partition is in the transaction (v5: adds it), then commits.
func (b *Broker) handleTxnOffsetCommit(r *kmsg.TxnOffsetCommitRequest, respond group.Respond) {
	if r.Group == "" {
		// Before the transaction is asked, as Kafka's
		// commitTransactionalOffsets (a plain OffsetCommit still takes
		// the empty group, for old clients).
		respond(txnOffsetCommitError(r, kerr.InvalidGroupID.Code))
		return
	}
	if _, terr := b.ensureOffsetsTopic(); terr != nil {
		respond(txnOffsetCommitError(r, kerr.CoordinatorNotAvailable.Code))
		return
	}
	tp := txn.TopicPartition{Topic: offsetsTopic, Partition: group.PartitionFor(r.Group, b.groups.Partitions())}
	commit := func(code int16) {
		if code != 0 {
			respond(txnOffsetCommitError(r, verifyCode(code, r.Version, 4, 5, kerr.CoordinatorNotAvailable.Code)))
			return
		}
		b.groups.TxnOffsetCommit(r, respond)
	}
	if r.Version >= 5 {
		b.txns.AddImplicit(r.TransactionalID, r.ProducerID, r.ProducerEpoch, []txn.TopicPartition{tp}, commit)
		return
	}
	commit(b.txns.Verify(r.TransactionalID, r.ProducerID, r.ProducerEpoch, tp))
}

func txnOffsetCommitError(r *kmsg.TxnOffsetCommitRequest, code int16) *kmsg.TxnOffsetCommitResponse {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = r.Version
	for _, t := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// verifyCode maps what the transaction coordinator said of a partition
// not (yet) in the transaction to what a request of version v gets, as
// Kafka's AddPartitionsToTxnManager does (design notes §5.8): abortable
// from abortableFrom on, INVALID_TXN_STATE before; coordinator trouble is
// the retriable code given (Kafka's produce path says NOT_ENOUGH_REPLICAS);
// CONCURRENT_TRANSACTIONS passes through only for versions that add
// partitions (addFrom, TV2).
func verifyCode(code, v, abortableFrom, addFrom, retriable int16) int16 {
	switch code {
	case 0:
		return 0
	case kerr.TransactionAbortable.Code, kerr.InvalidTxnState.Code:
		if v >= abortableFrom {
			return kerr.TransactionAbortable.Code
		}
		return kerr.InvalidTxnState.Code
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code:
		return retriable
	case kerr.ConcurrentTransactions.Code:
		if v >= addFrom {
			return code
		}
		return retriable
	}
	return code
}
