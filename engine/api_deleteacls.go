package engine

// DeleteAcls (key 31), v0-3: every binding each filter selects is removed
// from the metadata log and listed in the answer; ALTER on the cluster.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.DeleteACLs.Int16(), 0, 3, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDeleteACLs(req, kreq.(*kmsg.DeleteACLsRequest)))
	})
}

func (b *Broker) handleDeleteACLs(req *netio.Request, r *kmsg.DeleteACLsRequest) *kmsg.DeleteACLsResponse {
	resp := kmsg.NewPtrDeleteACLsResponse()
	kerrAll, msgAll := b.aclRequestError(req, acl.OpAlter)
	var unlock func()
	deleted := map[acl.Binding]bool{}
	var before []acl.Binding // the bindings when the request began
	for _, kf := range r.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		f := acl.Filter{
			ResourceType: acl.ResourceType(kf.ResourceType), ResourceName: kf.ResourceName, Pattern: acl.PatternType(kf.ResourcePatternType),
			Principal: kf.Principal, Host: kf.Host, Operation: acl.Operation(kf.Operation), Permission: acl.Permission(kf.PermissionType),
		}
		if r.Version == 0 {
			f.Pattern = acl.PatternLiteral
		}
		if kerrAll != nil {
			res.ErrorCode, res.ErrorMessage = kerrAll.Code, &msgAll
			resp.Results = append(resp.Results, res)
			continue
		}
		if err := f.Validate(); err != nil {
			msg := err.Error()
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, &msg
			resp.Results = append(resp.Results, res)
			continue
		}
		if unlock == nil {
			unlock = b.lockMeta()
			before = b.authz.Bindings()
		}
		for _, bd := range before {
			// Every filter lists every binding it matches, one an
			// earlier filter of this request deleted too (as Kafka's
			// AclControlManager, which matches against the ACLs as they
			// were before the request).
			if !f.Matches(bd) {
				continue
			}
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(bd.ResourceType), bd.ResourceName, kmsg.ACLResourcePatternType(bd.Pattern)
			m.Principal, m.Host, m.Operation, m.PermissionType = bd.Principal, bd.Host, kmsg.ACLOperation(bd.Operation), kmsg.ACLPermissionType(bd.Permission)
			if !deleted[bd] { // an earlier filter's deletion stands
				if err := b.commitMeta(recDeleteACL, bd); err != nil {
					msg := err.Error()
					m.ErrorCode, m.ErrorMessage = kerr.KafkaStorageError.Code, &msg
				} else {
					deleted[bd] = true
				}
			}
			res.MatchingACLs = append(res.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, res)
	}
	if unlock != nil {
		unlock()
	}
	return resp
}
