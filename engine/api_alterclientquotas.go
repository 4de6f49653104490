package engine

// AlterClientQuotas (key 49), v0-1 (KIP-546): set or remove quotas of
// user and client-id entities, as metadata log records; ALTER_CONFIGS on
// the cluster.

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.AlterClientQuotas.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleAlterClientQuotas(req, kreq.(*kmsg.AlterClientQuotasRequest)))
	})
}

func (b *Broker) handleAlterClientQuotas(req *netio.Request, r *kmsg.AlterClientQuotasRequest) *kmsg.AlterClientQuotasResponse {
	resp := kmsg.NewPtrAlterClientQuotasResponse()
	allowed := b.allowedCluster(req, acl.OpAlterConfigs)
	var unlock func()
	for _, in := range r.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		for _, ie := range in.Entity {
			oe := kmsg.NewAlterClientQuotasResponseEntryEntity()
			oe.Type, oe.Name = ie.Type, ie.Name
			out.Entity = append(out.Entity, oe)
		}
		fail := func(code int16, msg string) {
			out.ErrorCode, out.ErrorMessage = code, &msg
		}
		var e quotaEntity
		var bad string
		for _, ie := range in.Entity {
			switch ie.Type {
			case entityUser:
				if e.HasUser {
					bad = "the user appears twice"
				}
				e.HasUser, e.UserDefault = true, ie.Name == nil
				if ie.Name != nil {
					e.User = *ie.Name
				}
			case entityClient:
				if e.HasClient {
					bad = "the client id appears twice"
				}
				e.HasClient, e.ClientDefault = true, ie.Name == nil
				if ie.Name != nil {
					e.Client = *ie.Name
				}
			case entityIP:
				if e.HasIP {
					bad = "the ip appears twice"
				}
				e.HasIP, e.IPDefault = true, ie.Name == nil
				if ie.Name != nil {
					if net.ParseIP(*ie.Name) == nil {
						bad = "ip " + *ie.Name + " is not an IP address"
					}
					e.IP = *ie.Name
				}
			default:
				bad = "unknown entity type " + ie.Type
			}
		}
		switch {
		case !allowed:
			fail(kerr.ClusterAuthorizationFailed.Code, "the principal may not alter the cluster's configs")
		case bad != "":
			fail(kerr.InvalidRequest.Code, bad)
		case !e.HasUser && !e.HasClient && !e.HasIP:
			fail(kerr.InvalidRequest.Code, "no entity")
		case e.HasIP && (e.HasUser || e.HasClient):
			fail(kerr.InvalidRequest.Code, "an ip entity cannot be combined with a user or client id")
		case b.pair.IsStandby():
			fail(kerr.NotController.Code, "this node is the standby; the primary changes quotas")
		}
		if out.ErrorCode == 0 {
			for _, op := range in.Ops {
				switch {
				case e.HasIP && op.Key != quotaConnRate:
					fail(kerr.InvalidRequest.Code, "an ip entity takes only connection_creation_rate, not "+op.Key)
				case !e.HasIP && !quotaKeys[op.Key]:
					fail(kerr.InvalidRequest.Code, "unknown quota key "+op.Key+" (producer_byte_rate, consumer_byte_rate, request_percentage; connection_creation_rate for ip)")
				case !op.Remove && op.Value <= 0:
					fail(kerr.InvalidRequest.Code, "quota "+op.Key+" must be positive")
				}
			}
		}
		if out.ErrorCode == 0 && !r.ValidateOnly {
			if unlock == nil {
				unlock = b.lockMeta()
			}
			for _, op := range in.Ops {
				if err := b.commitMeta(recQuota, metaQuota{Entity: e, Key: op.Key, Value: op.Value, Remove: op.Remove}); err != nil {
					fail(kerr.KafkaStorageError.Code, err.Error())
					break
				}
			}
		}
		resp.Entries = append(resp.Entries, out)
	}
	if unlock != nil {
		unlock()
	}
	return resp
}
