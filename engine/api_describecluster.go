package engine

// DescribeCluster (key 60), v0-v2.
//
// The cluster id, the brokers as Metadata lists them, and as controller the
// node that leads every partition (the primary; this node when alone).
// Only the broker endpoint is served: v1+ asking about controllers gets
// MISMATCHED_ENDPOINT_TYPE, as a Kafka broker answers, and an unknown
// endpoint type UNSUPPORTED_ENDPOINT_TYPE. It needs no ACL, as in Kafka;
// the cluster authorized operations, when asked for, are those the
// principal may do, and none without DESCRIBE on the cluster
// (AuthHelper.computeDescribeClusterResponse).

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeCluster.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeCluster(req, kreq.(*kmsg.DescribeClusterRequest)))
	})
}

// clusterOperations is every operation on the cluster resource (bits of
// ACL operation codes), which a broker without an authorizer allows.
const clusterOperations = 1<<kmsg.ACLOperationCreate | 1<<kmsg.ACLOperationAlter |
	1<<kmsg.ACLOperationDescribe | 1<<kmsg.ACLOperationClusterAction |
	1<<kmsg.ACLOperationDescribeConfigs | 1<<kmsg.ACLOperationAlterConfigs |
	1<<kmsg.ACLOperationIdempotentWrite

func (b *Broker) handleDescribeCluster(req *netio.Request, r *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	resp := kmsg.NewPtrDescribeClusterResponse()
	resp.ClusterID = b.ClusterID()
	resp.ControllerID = b.pair.LeaderID()
	resp.EndpointType = r.EndpointType
	switch r.EndpointType {
	case 1: // brokers
	case 2:
		// As a Kafka broker: controllers are asked on their own endpoint.
		resp.ErrorCode = kerr.MismatchedEndpointType.Code
		msg := "the broker endpoint was asked about controllers"
		resp.ErrorMessage = &msg
		return resp
	default:
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "unsupported endpoint type " + strconv.Itoa(int(r.EndpointType))
		resp.ErrorMessage = &msg
		return resp
	}
	// Both nodes of a pair, in sync or not: this is the operator's view
	// (samsactl cluster), where a missing standby should show.
	for _, mb := range b.metadataBrokers(listenerOf(req), true) {
		cb := kmsg.NewDescribeClusterResponseBroker()
		cb.NodeID, cb.Host, cb.Port = mb.NodeID, mb.Host, mb.Port
		resp.Brokers = append(resp.Brokers, cb)
	}
	resp.ClusterAuthorizedOperations = -2147483648
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = 0
		if b.allowedCluster(req, acl.OpDescribe) {
			resp.ClusterAuthorizedOperations = b.authorizedOps(req, acl.ResourceCluster, acl.ClusterName)
		}
	}
	return resp
}
