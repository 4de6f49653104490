package engine

// DescribeClientQuotas (key 48), v0-1 (KIP-546): the quotas of the
// entities the filter matches; DESCRIBE_CONFIGS on the cluster.

import (
	"fmt"

	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeClientQuotas.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeClientQuotas(req, kreq.(*kmsg.DescribeClientQuotasRequest)))
	})
}

const (
	entityUser   = "user"
	entityClient = "client-id"
	entityIP     = "ip"
)

func (b *Broker) handleDescribeClientQuotas(req *netio.Request, r *kmsg.DescribeClientQuotasRequest) *kmsg.DescribeClientQuotasResponse {
	resp := kmsg.NewPtrDescribeClientQuotasResponse()
	fail := func(code int16, msg string) *kmsg.DescribeClientQuotasResponse {
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		return resp
	}
	if !b.allowedCluster(req, acl.OpDescribeConfigs) {
		return fail(kerr.ClusterAuthorizationFailed.Code, "the principal may not describe the cluster's configs")
	}
	// Kafka's checks and words (ClientQuotasImage.describe).
	seen := map[string]bool{}
	for i := range r.Components {
		c := &r.Components[i]
		switch {
		case c.EntityType == "":
			return fail(kerr.InvalidRequest.Code, "Invalid empty entity type.")
		case seen[c.EntityType]:
			return fail(kerr.InvalidRequest.Code, "Entity type "+c.EntityType+" cannot appear more than once in the filter.")
		case c.EntityType != entityUser && c.EntityType != entityClient && c.EntityType != entityIP:
			return fail(kerr.UnsupportedVersion.Code, "Unsupported entity type "+c.EntityType)
		case c.MatchType == 0 && c.Match == nil:
			return fail(kerr.InvalidRequest.Code, "Request specified MATCH_TYPE_EXACT, but set match string to null.")
		case c.MatchType == 1 && c.Match != nil:
			return fail(kerr.InvalidRequest.Code, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
		case c.MatchType == 2 && c.Match != nil:
			return fail(kerr.InvalidRequest.Code, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
		case c.MatchType < 0 || c.MatchType > 2:
			return fail(kerr.InvalidRequest.Code, fmt.Sprintf("Unknown match type %d", c.MatchType))
		}
		if c.EntityType == entityIP && c.MatchType == 0 {
			ip := canonicalIP(*c.Match)
			c.Match = &ip
		}
		seen[c.EntityType] = true
	}
	if seen[entityIP] && (seen[entityUser] || seen[entityClient]) {
		return fail(kerr.InvalidRequest.Code, "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.")
	}
	var qs quotaSet
	if p := b.quotas.Load(); p != nil {
		qs = *p
	}
	matches := func(e quotaEntity) bool {
		for _, c := range r.Components {
			p, has := e.part(c.EntityType)
			switch {
			case !has:
				return false
			case c.MatchType == 0 && (p.def || p.name != *c.Match):
				return false
			case c.MatchType == 1 && !p.def:
				return false
			}
		}
		if r.Strict {
			// Only entities with exactly the components filtered.
			if e.HasUser != seen[entityUser] || e.HasClient != seen[entityClient] || e.HasIP != seen[entityIP] {
				return false
			}
		}
		return true
	}
	var entities []quotaEntity
	for e := range qs {
		if matches(e) {
			entities = append(entities, e)
		}
	}
	sort.Slice(entities, func(i, j int) bool { return entities[i].String() < entities[j].String() })
	for _, e := range entities {
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range e.parts() {
			ee := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ee.Type = p.typ
			if !p.def {
				name := p.name
				ee.Name = &name
			}
			entry.Entity = append(entry.Entity, ee)
		}
		keys := make([]string, 0, len(qs[e]))
		for k := range qs[e] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, qs[e][k]
			entry.Values = append(entry.Values, v)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	return resp
}
