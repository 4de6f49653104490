package engine

// CreateAcls (key 30), v0-3: ACL bindings written to the metadata log
// (authz.go); ALTER on the cluster.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.CreateACLs.Int16(), 0, 3, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleCreateACLs(req, kreq.(*kmsg.CreateACLsRequest)))
	})
}

// aclRequestError is the error every item of an ACL request gets, if any:
// no authorizer, not allowed, or not the primary.
func (b *Broker) aclRequestError(req *netio.Request, op acl.Operation) (*kerr.Error, string) {
	switch {
	case b.authz == nil:
		return kerr.SecurityDisabled, "no authorizer is configured ([acl] enabled = false)"
	case !b.allowedCluster(req, op):
		return kerr.ClusterAuthorizationFailed, "the principal may not " + opName(op) + " the cluster"
	case op != acl.OpDescribe && b.pair.IsStandby():
		return kerr.NotController, "this node is the standby; the primary changes ACLs"
	}
	return nil, ""
}

func opName(op acl.Operation) string {
	return kmsg.ACLOperation(op).String()
}

func (b *Broker) handleCreateACLs(req *netio.Request, r *kmsg.CreateACLsRequest) *kmsg.CreateACLsResponse {
	resp := kmsg.NewPtrCreateACLsResponse()
	kerrAll, msgAll := b.aclRequestError(req, acl.OpAlter)
	var unlock func()
	for _, c := range r.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		bd := acl.Binding{
			ResourceType: acl.ResourceType(c.ResourceType), ResourceName: c.ResourceName, Pattern: acl.PatternType(c.ResourcePatternType),
			Principal: c.Principal, Host: c.Host, Operation: acl.Operation(c.Operation), Permission: acl.Permission(c.PermissionType),
		}
		if r.Version == 0 {
			bd.Pattern = acl.PatternLiteral
		}
		switch err := bd.Validate(); {
		case kerrAll != nil:
			res.ErrorCode, res.ErrorMessage = kerrAll.Code, &msgAll
		case err != nil:
			msg := err.Error()
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, &msg
		default:
			if unlock == nil {
				unlock = b.lockMeta()
			}
			if err := b.commitMeta(recACL, bd); err != nil {
				msg := err.Error()
				res.ErrorCode, res.ErrorMessage = kerr.KafkaStorageError.Code, &msg
			}
		}
		resp.Results = append(resp.Results, res)
	}
	if unlock != nil {
		unlock()
	}
	return resp
}
