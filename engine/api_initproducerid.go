package engine

// InitProducerId (key 22), v0-v5.
//
// Idempotent producers (no transactional id) get a fresh producer id with
// epoch 0, from blocks reserved durably in the metadata log, so ids are
// never reused across restarts. Kafka also hands out a new id when an
// idempotent producer asks to bump its epoch (KIP-360), and so does samsa.
// A transactional id goes to the transaction coordinator (engine/txn,
// txns.go): it allocates or bumps the id's epoch, fencing the previous
// producer and aborting its open transaction first. A standby forwards an
// idempotent producer's request to the primary (forward.go); a
// transactional one gets NOT_COORDINATOR (clients find the coordinator
// first, and FindCoordinator names the primary).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.InitProducerID.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r := kreq.(*kmsg.InitProducerIDRequest)
		if r.TransactionalID != nil && !b.pair.IsStandby() {
			b.ensureTxnTopic()
			b.txns.InitProducerID(r, txnResponder(req))
			return
		}
		if r.TransactionalID == nil && b.pair.IsStandby() && !fromPeer(req) {
			// Every Kafka broker hands out idempotent producer ids; the
			// primary owns samsa's allocator, so a standby asks it.
			// NOT_COORDINATOR stalled librdkafka's idempotent producer,
			// which asks again on the one broker it reached first.
			go func() {
				if resp, ok := forwardToPrimary[*kmsg.InitProducerIDResponse](b, r, false); ok {
					respond(req, resp)
					return
				}
				respond(req, b.handleInitProducerID(r))
			}()
			return
		}
		respond(req, b.handleInitProducerID(r))
	})
}

func (b *Broker) handleInitProducerID(r *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if b.pair.IsStandby() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}

	id, err := b.allocProducerID()
	if err != nil {
		b.logger.Error("cannot allocate producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
