package engine

// DescribeAcls (key 29), v0-3: the bindings a filter selects, by resource;
// DESCRIBE on the cluster.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeACLs.Int16(), 0, 3, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeACLs(req, kreq.(*kmsg.DescribeACLsRequest)))
	})
}

func (b *Broker) handleDescribeACLs(req *netio.Request, r *kmsg.DescribeACLsRequest) *kmsg.DescribeACLsResponse {
	resp := kmsg.NewPtrDescribeACLsResponse()
	if e, msg := b.aclRequestError(req, acl.OpDescribe); e != nil {
		resp.ErrorCode, resp.ErrorMessage = e.Code, &msg
		return resp
	}
	f := acl.Filter{
		ResourceType: acl.ResourceType(r.ResourceType), ResourceName: r.ResourceName, Pattern: acl.PatternType(r.ResourcePatternType),
		Principal: r.Principal, Host: r.Host, Operation: acl.Operation(r.Operation), Permission: acl.Permission(r.PermissionType),
	}
	if r.Version == 0 {
		f.Pattern = acl.PatternLiteral
	}
	if err := f.Validate(); err != nil {
		msg := err.Error()
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, &msg
		return resp
	}
	var last *kmsg.DescribeACLsResponseResource
	for _, bd := range b.authz.Bindings() { // sorted by resource
		if !f.Matches(bd) {
			continue
		}
		if last == nil || last.ResourceType != kmsg.ACLResourceType(bd.ResourceType) || last.ResourceName != bd.ResourceName ||
			last.ResourcePatternType != kmsg.ACLResourcePatternType(bd.Pattern) {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = kmsg.ACLResourceType(bd.ResourceType), bd.ResourceName, kmsg.ACLResourcePatternType(bd.Pattern)
			resp.Resources = append(resp.Resources, res)
			last = &resp.Resources[len(resp.Resources)-1]
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = bd.Principal, bd.Host, kmsg.ACLOperation(bd.Operation), kmsg.ACLPermissionType(bd.Permission)
		last.ACLs = append(last.ACLs, a)
	}
	return resp
}
