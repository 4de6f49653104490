package engine

// The request-level authorization of APIs that name one group, one
// transactional id or the cluster: Serve calls gate before the handler,
// and a denied request is answered here with Kafka's code. APIs that name
// many topics, groups or ids check each one in their own file and answer
// per resource (Produce, Fetch, Metadata, OffsetCommit, ...).

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

// gate reports whether a decoded request may go on to its handler; if
// not, it has answered it.
func (b *Broker) gate(req *netio.Request, kreq kmsg.Request) bool {
	if b.authz == nil {
		return true
	}
	group := func(op acl.Operation, name string) bool { return b.allowed(req, op, acl.ResourceGroup, name) }
	txnID := func(name string) bool { return b.allowed(req, acl.OpWrite, acl.ResourceTransactionalID, name) }
	cluster := func(op acl.Operation) bool { return b.allowedCluster(req, op) }
	var resp kmsg.Response
	switch r := kreq.(type) {
	case *kmsg.JoinGroupRequest:
		if !group(acl.OpRead, r.Group) {
			p := r.ResponseKind().(*kmsg.JoinGroupResponse)
			p.ErrorCode, p.MemberID = kerr.GroupAuthorizationFailed.Code, "" // as Kafka
			p.Protocol = nil
			resp = p
		}
	case *kmsg.SyncGroupRequest:
		if !group(acl.OpRead, r.Group) {
			p := r.ResponseKind().(*kmsg.SyncGroupResponse)
			p.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp = p
		}
	case *kmsg.HeartbeatRequest:
		if !group(acl.OpRead, r.Group) {
			p := r.ResponseKind().(*kmsg.HeartbeatResponse)
			p.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp = p
		}
	case *kmsg.LeaveGroupRequest:
		if !group(acl.OpRead, r.Group) {
			p := r.ResponseKind().(*kmsg.LeaveGroupResponse)
			p.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp = p
		}
	case *kmsg.ConsumerGroupHeartbeatRequest:
		var denied []string
		for _, t := range r.SubscribedTopicNames {
			if !b.allowed(req, acl.OpDescribe, acl.ResourceTopic, t) {
				denied = append(denied, t)
			}
		}
		switch {
		case !group(acl.OpRead, r.Group):
			p := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			p.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp = p
		case len(denied) > 0:
			// As Kafka: a subscription naming topics the member may not
			// describe is refused whole.
			p := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			msg := "topic authorization failed for topics " + strings.Join(denied, ", ")
			p.ErrorCode, p.ErrorMessage = kerr.TopicAuthorizationFailed.Code, &msg
			resp = p
		}
	case *kmsg.OffsetDeleteRequest:
		if !group(acl.OpDelete, r.Group) {
			p := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
			p.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp = p
		}
	case *kmsg.EndTxnRequest:
		if !txnID(r.TransactionalID) {
			p := r.ResponseKind().(*kmsg.EndTxnResponse)
			p.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp = p
		}
	case *kmsg.AddOffsetsToTxnRequest:
		code := int16(0)
		switch {
		case !txnID(r.TransactionalID):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		case !group(acl.OpRead, r.Group):
			code = kerr.GroupAuthorizationFailed.Code
		}
		if code != 0 {
			p := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
			p.ErrorCode = code
			resp = p
		}
	case *kmsg.InitProducerIDRequest:
		code := int16(0)
		switch {
		case r.TransactionalID != nil && !txnID(*r.TransactionalID):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		case r.TransactionalID == nil && !cluster(acl.OpIdempotentWrite) && !b.allowedAnyTopic(req, acl.OpWrite):
			code = kerr.ClusterAuthorizationFailed.Code
		}
		if code != 0 {
			p := r.ResponseKind().(*kmsg.InitProducerIDResponse)
			p.ErrorCode, p.ProducerID, p.ProducerEpoch = code, -1, -1
			resp = p
		}
	case *kmsg.WriteTxnMarkersRequest:
		// ALTER on the cluster, or CLUSTER_ACTION, as Kafka
		// (kafka-transactions.sh abort as an admin).
		if !cluster(acl.OpAlter) && !cluster(acl.OpClusterAction) {
			p := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
			for _, m := range r.Markers {
				rm := kmsg.NewWriteTxnMarkersResponseMarker()
				rm.ProducerID = m.ProducerID
				for _, t := range m.Topics {
					rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
					rt.Topic = t.Topic
					for _, part := range t.Partitions {
						rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
						rp.Partition, rp.ErrorCode = part, kerr.ClusterAuthorizationFailed.Code
						rt.Partitions = append(rt.Partitions, rp)
					}
					rm.Topics = append(rm.Topics, rt)
				}
				p.Markers = append(p.Markers, rm)
			}
			resp = p
		}
	case *kmsg.DescribeLogDirsRequest:
		if !cluster(acl.OpDescribe) {
			p := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
			p.ErrorCode = kerr.ClusterAuthorizationFailed.Code // v3+; older versions get no dirs, as from Kafka
			resp = p
		}
	case *kmsg.ElectLeadersRequest:
		if !cluster(acl.OpAlter) {
			p := r.ResponseKind().(*kmsg.ElectLeadersResponse)
			p.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			for _, t := range r.Topics {
				rt := kmsg.NewElectLeadersResponseTopic()
				rt.Topic = t.Topic
				for _, part := range t.Partitions {
					rp := kmsg.NewElectLeadersResponseTopicPartition()
					rp.Partition, rp.ErrorCode = part, kerr.ClusterAuthorizationFailed.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				p.Topics = append(p.Topics, rt)
			}
			resp = p
		}
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		if !cluster(acl.OpDescribe) {
			p := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
			p.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			resp = p
		}
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		if !cluster(acl.OpAlter) {
			p := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
			seen := map[string]bool{}
			add := func(user string) {
				if !seen[user] {
					seen[user] = true
					res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
					res.User, res.ErrorCode = user, kerr.ClusterAuthorizationFailed.Code
					p.Results = append(p.Results, res)
				}
			}
			for _, d := range r.Deletions {
				add(d.Name)
			}
			for _, u := range r.Upsertions {
				add(u.Name)
			}
			resp = p
		}
	}
	if resp == nil {
		return true
	}
	respond(req, resp)
	return false
}
