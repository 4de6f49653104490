package engine

// FindCoordinator (key 10), v0-v5.
//
// samsa is one node, so it coordinates every group and transactional id
// itself. A group key creates __consumer_offsets if it does not exist yet,
// as Kafka does, and a transactional id __transaction_state. v4+ answers batched
// keys one coordinator each. v6 (share groups, KIP-932) is not advertised.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func init() {
	regKey(kmsg.FindCoordinator.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleFindCoordinator(req, listenerOf(req), kreq.(*kmsg.FindCoordinatorRequest)))
	})
}

func (b *Broker) handleFindCoordinator(req *netio.Request, listener string, r *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	// DESCRIBE on the group or transactional id, as Kafka checks.
	find := func(keyType int8, key string) (int32, string, int32, int16, *string) {
		switch {
		case keyType == 0 && !b.allowed(req, acl.OpDescribe, acl.ResourceGroup, key):
			return -1, "", -1, kerr.GroupAuthorizationFailed.Code, nil
		case keyType == 1 && !b.allowed(req, acl.OpDescribe, acl.ResourceTransactionalID, key):
			return -1, "", -1, kerr.TransactionalIDAuthorizationFailed.Code, nil
		}
		return b.coordinatorFor(listener, keyType, key)
	}
	resp := kmsg.NewPtrFindCoordinatorResponse()
	resp.SetVersion(r.Version)
	if r.Version >= 4 {
		for _, key := range r.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage = find(r.CoordinatorType, key)
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = find(r.CoordinatorType, r.CoordinatorKey)
	if resp.ErrorCode == 0 && r.Version >= 1 {
		// Kafka's v1-3 answer carries Errors.NONE.message(): "NONE".
		resp.ErrorMessage = kmsg.StringPtr("NONE")
	}
	return resp
}

// coordinatorFor answers one key. Kafka returns node -1, an empty host and
// port -1 alongside an error.
func (b *Broker) coordinatorFor(listener string, keyType int8, key string) (node int32, host string, port int32, code int16, msg *string) {
	fail := func(e *kerr.Error, m string) (int32, string, int32, int16, *string) {
		return -1, "", -1, e.Code, &m
	}
	switch keyType {
	case coordinatorGroup:
		if b.pair.IsStandby() {
			break
		}
		if _, terr := b.ensureOffsetsTopic(); terr != nil {
			return fail(kerr.CoordinatorNotAvailable, "the group coordinator is not available: "+terr.msg)
		}
	case coordinatorTransaction:
		// An empty key is answered too, as Kafka (its partition is
		// that of ""); the transaction APIs refuse the empty id.
		if b.pair.IsStandby() {
			break
		}
		if _, terr := b.ensureTxnTopic(); terr != nil {
			return fail(kerr.CoordinatorNotAvailable, "the transaction coordinator is not available: "+terr.msg)
		}
	default:
		return fail(kerr.InvalidRequest, "unknown coordinator key type")
	}
	if b.pair.IsStandby() {
		host, port := b.peerFor(listener)
		return b.cfg.Replication.PeerID, host, port, 0, nil
	}
	adv := b.advFor(listener)
	return b.cfg.NodeID, adv.host, adv.port, 0, nil
}
