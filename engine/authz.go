package engine

// Authorization: the engine asks the authorizer (engine/acl) where Kafka
// does, through allowed, which caches each connection's decisions until
// the ACLs change. ACL bindings are metadata log records (recACL,
// recDeleteACL), replicated and replayed like topics.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

// ACLConfig turns the authorizer on (authorizer.class.name in Kafka).
type ACLConfig struct {
	Enabled bool
	// SuperUsers may do anything (super.users): principals such as
	// User:admin.
	SuperUsers []string
	// AllowEveryoneIfNoACL (allow.everyone.if.no.acl.found) lets anyone
	// use a resource no ACL names.
	AllowEveryoneIfNoACL bool
}

// connState is what the engine keeps per connection (netio.Conn.State):
// SASL authentication and the cache of authorization decisions.
type connState struct {
	sasl saslState

	mu     sync.Mutex
	aclVer uint64
	cache  map[aclKey]bool
	// holdUntil: muted by a quota, the connection's next request waits
	// until then (quotas.go); dropping: it closed while muted, and what
	// it had queued is dropped.
	holdUntil time.Time
	dropping  bool
	// serving is the request Serve is in while quotas are on, and
	// quotaBroker the broker that charges it to request_percentage
	// (chargeRequest).
	serving     atomic.Pointer[servingReq]
	quotaBroker atomic.Pointer[Broker]
}

type aclKey struct {
	op   acl.Operation
	rt   acl.ResourceType
	name string
}

// maxCachedDecisions bounds a connection's cache (a client naming many
// topics): past it decisions are made each time.
const maxCachedDecisions = 4096

func stateOf(c *netio.Conn) *connState {
	st, _ := c.State.(*connState)
	if st == nil {
		st = &connState{}
		c.State = st
	}
	return st
}

// LinkListener names the replication listener's connections.
const LinkListener = "REPLICATION"

// authzOn reports whether an authorizer is configured.
func (b *Broker) authzOn() bool { return b.authz != nil }

// allowed reports whether the request's principal may do op on the
// resource. Without an authorizer everything is allowed.
func (b *Broker) allowed(req *netio.Request, op acl.Operation, rt acl.ResourceType, name string) bool {
	a := b.authz
	if a == nil {
		return true
	}
	if req == nil || req.Conn == nil {
		return true // the engine's own requests
	}
	if b.cfg.LinkTrusted && req.Conn.Listener() == LinkListener {
		return true
	}
	st := stateOf(req.Conn)
	k := aclKey{op, rt, name}
	v := a.Version()
	st.mu.Lock()
	if st.aclVer != v || st.cache == nil {
		st.cache, st.aclVer = map[aclKey]bool{}, v
	}
	d, ok := st.cache[k]
	st.mu.Unlock()
	if ok {
		return d
	}
	d = a.Authorize(req.Conn.Principal(), req.Conn.RemoteIP(), op, rt, name)
	st.mu.Lock()
	if st.aclVer == v && len(st.cache) < maxCachedDecisions {
		st.cache[k] = d
	}
	st.mu.Unlock()
	return d
}

// allowedCluster is allowed on the cluster resource.
func (b *Broker) allowedCluster(req *netio.Request, op acl.Operation) bool {
	return b.allowed(req, op, acl.ResourceCluster, acl.ClusterName)
}

// allowedAnyTopic reports whether the principal may do op on some topic
// (Kafka's IdempotentWrite fallback: Write on any topic).
func (b *Broker) allowedAnyTopic(req *netio.Request, op acl.Operation) bool {
	if b.authz == nil || req == nil || req.Conn == nil {
		return true
	}
	return b.authz.AuthorizeAny(req.Conn.Principal(), req.Conn.RemoteIP(), op, acl.ResourceTopic)
}

// aclOps lists every operation a resource type has in Kafka, for the
// authorized-operations bit sets of Metadata and DescribeGroups.
func aclOps(rt acl.ResourceType) []acl.Operation {
	switch rt {
	case acl.ResourceTopic:
		return []acl.Operation{acl.OpRead, acl.OpWrite, acl.OpCreate, acl.OpDelete, acl.OpAlter, acl.OpDescribe, acl.OpDescribeConfigs, acl.OpAlterConfigs}
	case acl.ResourceGroup:
		return []acl.Operation{acl.OpRead, acl.OpDelete, acl.OpDescribe, acl.OpDescribeConfigs, acl.OpAlterConfigs}
	case acl.ResourceCluster:
		return []acl.Operation{acl.OpCreate, acl.OpAlter, acl.OpDescribe, acl.OpClusterAction, acl.OpDescribeConfigs, acl.OpAlterConfigs, acl.OpIdempotentWrite}
	case acl.ResourceTransactionalID:
		return []acl.Operation{acl.OpWrite, acl.OpDescribe}
	}
	return nil
}

// authorizedOps is the bit set of the operations the principal may do on
// the resource (Kafka's authorized operations fields).
func (b *Broker) authorizedOps(req *netio.Request, rt acl.ResourceType, name string) int32 {
	var bits int32
	for _, op := range aclOps(rt) {
		if b.allowed(req, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// configAuthz is the error a config resource gets when the principal may
// not do op on it (TOPIC_ or CLUSTER_AUTHORIZATION_FAILED), or nil. A
// request the standby forwarded (fromPeer) was checked there against the
// client's principal; here the peer needs CLUSTER_ACTION.
func (b *Broker) configAuthz(req *netio.Request, fromPeer bool, rt kmsg.ConfigResourceType, name string, op acl.Operation) *topicError {
	switch {
	case b.authz == nil:
		return nil
	case fromPeer:
		if !b.allowedCluster(req, acl.OpClusterAction) {
			return kafkaErr(kerr.ClusterAuthorizationFailed, "only the peer of a pair may forward requests")
		}
		return nil
	case rt == kmsg.ConfigResourceTypeTopic:
		if !b.allowed(req, op, acl.ResourceTopic, name) {
			return kafkaErr(kerr.TopicAuthorizationFailed, "the principal may not %s topic %s", opName(op), name)
		}
	case rt == kmsg.ConfigResourceTypeGroupConfig:
		if !b.allowed(req, op, acl.ResourceGroup, name) {
			return kafkaErr(kerr.GroupAuthorizationFailed, "the principal may not %s group %s", opName(op), name)
		}
	default:
		if !b.allowedCluster(req, op) {
			return kafkaErr(kerr.ClusterAuthorizationFailed, "the principal may not %s the cluster", opName(op))
		}
	}
	return nil
}

// sift splits items into those ok allows and those it refuses, each in
// order.
func sift[T any](items []T, ok func(T) bool) (kept, refused []T) {
	for _, it := range items {
		if ok(it) {
			kept = append(kept, it)
		} else {
			refused = append(refused, it)
		}
	}
	return kept, refused
}

// splitRun answers a request whose items the principal may be refused
// (denied returns their error, or nil). With none refused it returns
// false: the caller goes on as usual. Otherwise run handles a request of
// the allowed items alone (if any) and the answers come back in the
// request's order, deny's for the refused.
func splitRun[Item, Res any](items []Item, denied func(Item) *topicError, run func([]Item) []Res, deny func(Item, *topicError) Res) ([]Res, bool) {
	var refused map[int]*topicError
	var allowed []Item
	for i, it := range items {
		if terr := denied(it); terr != nil {
			if refused == nil {
				refused = map[int]*topicError{}
			}
			refused[i] = terr
		} else {
			allowed = append(allowed, it)
		}
	}
	if refused == nil {
		return nil, false
	}
	var ran []Res
	if len(allowed) > 0 {
		ran = run(allowed)
	}
	out := make([]Res, 0, len(items))
	for i, it := range items {
		if terr := refused[i]; terr != nil {
			out = append(out, deny(it, terr))
		} else if len(ran) > 0 {
			out = append(out, ran[0])
			ran = ran[1:]
		}
	}
	return out, true
}
