package engine

// AlterClientQuotas (key 49), v0-1 (KIP-546): set or remove quotas of
// user and client-id entities, as metadata log records; ALTER_CONFIGS on
// the cluster.

import (
	"context"
	"math"
	"net"
	"net/netip"
	"time"

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
		// Kafka's checks, order and words (ClientQuotaControlManager).
		var e quotaEntity
		var bad string
		seen := map[string]bool{}
		for _, ie := range in.Entity {
			if bad != "" {
				break
			}
			if seen[ie.Type] {
				bad = "Invalid client quota entity, duplicate entity entry " + ie.Type
				break
			}
			seen[ie.Type] = true
			switch ie.Type {
			case entityUser:
				e.HasUser, e.UserDefault = true, ie.Name == nil
				if ie.Name != nil {
					e.User = *ie.Name
				}
			case entityClient:
				e.HasClient, e.ClientDefault = true, ie.Name == nil
				if ie.Name != nil {
					e.Client = *ie.Name
				}
			case entityIP:
				e.HasIP, e.IPDefault = true, ie.Name == nil
				if ie.Name != nil {
					e.IP = *ie.Name
				}
			default:
				bad = "Unhandled client quota entity type: " + ie.Type
			}
			if bad == "" && ie.Name != nil && *ie.Name == "" {
				bad = "Empty " + ie.Type + " not supported"
			}
		}
		switch {
		case !allowed:
			fail(kerr.ClusterAuthorizationFailed.Code, "the principal may not alter the cluster's configs")
		case bad != "":
			fail(kerr.InvalidRequest.Code, bad)
		case !e.HasUser && !e.HasClient && !e.HasIP:
			fail(kerr.InvalidRequest.Code, "Invalid empty client quota entity")
		case e.HasIP && (e.HasUser || e.HasClient):
			fail(kerr.InvalidRequest.Code, "Invalid quota entity combination, IP entity should not be combined with User or ClientId")
		case b.pair.IsStandby():
			fail(kerr.NotController.Code, "this node is the standby; the primary changes quotas")
		}
		if out.ErrorCode == 0 && e.HasIP && !e.IPDefault {
			// An address, or a host name resolved now, as Kafka's
			// InetAddress.getByName; kept in its canonical form, the
			// one a client's address takes.
			if ip, ok := resolveQuotaIP(e.IP); ok {
				e.IP = ip
			} else {
				fail(kerr.InvalidRequest.Code, e.IP+" is not a valid IP or resolvable host.")
			}
		}
		if out.ErrorCode == 0 {
			keys := map[string]bool{}
			for _, op := range in.Ops {
				if keys[op.Key] {
					fail(kerr.InvalidRequest.Code, "Duplicate quota key "+op.Key+" not updating quota for this entity")
					break
				}
				keys[op.Key] = true
				if op.Remove {
					continue // Kafka checks only the keys it sets
				}
				if msg := validateQuota(e.HasIP, op.Key, op.Value); msg != "" {
					fail(kerr.InvalidRequest.Code, msg)
					break
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

// quotaTypes is each quota key's type in Kafka (QuotaConfig):
// integral ("long", "int") or not ("double"); the ip keys apart.
var quotaTypes = map[string]string{
	quotaProduce: "long", quotaConsume: "long", quotaRequest: "double",
	"controller_mutation_rate": "double",
}

var ipQuotaTypes = map[string]string{quotaConnRate: "int"}

// validateQuota is Kafka's validateQuotaKeyValue: its message, or "".
func validateQuota(ip bool, key string, v float64) string {
	types := quotaTypes
	if ip {
		types = ipQuotaTypes
	}
	typ, ok := types[key]
	switch {
	case !ok:
		return "Invalid configuration key " + key
	case v <= 0:
		return "Quota " + key + " must be greater than 0"
	case typ == "int" && v > math.MaxInt32:
		return "Proposed value for " + key + " is too large for an INT."
	case typ == "long" && v > math.MaxInt64:
		return "Proposed value for " + key + " is too large for a LONG."
	case typ != "double" && math.Abs(math.Mod(v, 1)) > 1e-6:
		return key + " cannot be a fractional value."
	}
	return ""
}

// canonicalIP is an address in the form a client's takes (lower case,
// IPv6 compressed, IPv4-mapped unmapped); anything else as it is.
func canonicalIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return s
}

// resolveQuotaIP is the canonical address of an ip entity's name: an
// address, or a host name's first address.
func resolveQuotaIP(name string) (string, bool) {
	if _, err := netip.ParseAddr(name); err == nil {
		return canonicalIP(name), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	if err != nil || len(addrs) == 0 {
		return "", false
	}
	return addrs[0].Unmap().String(), true
}
