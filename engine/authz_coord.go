package engine

// Authorization of the coordinator APIs that name several groups, topics
// or transactional ids: denied items are taken out of the request before
// the coordinator sees it (nothing happens to them) and put back in its
// answer with Kafka's code, or left out of lists the principal may not
// see, as Kafka's KafkaApis does.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

// then wraps a coordinator's respond with f, which edits the response.
func then[R kmsg.Response](respond func(kmsg.Response), f func(R)) func(kmsg.Response) {
	return func(r kmsg.Response) {
		if x, ok := r.(R); ok {
			f(x)
		}
		respond(r)
	}
}

func (b *Broker) mayGroup(req *netio.Request, op acl.Operation, g string) bool {
	return b.allowed(req, op, acl.ResourceGroup, g)
}

func (b *Broker) mayTopic(req *netio.Request, op acl.Operation, t string) bool {
	return b.allowed(req, op, acl.ResourceTopic, t)
}

// authzDescribeGroups: DESCRIBE on each group, and its authorized
// operations when asked (v3+).
func (b *Broker) authzDescribeGroups(req *netio.Request, r *kmsg.DescribeGroupsRequest, respond func(kmsg.Response)) func(kmsg.Response) {
	return then(respond, func(resp *kmsg.DescribeGroupsResponse) {
		for i := range resp.Groups {
			g := &resp.Groups[i]
			b.authzGroup(req, g.Group, r.IncludeAuthorizedOperations, &g.AuthorizedOperations, func() {
				*g = kmsg.NewDescribeGroupsResponseGroup()
			}, &g.Group, &g.ErrorCode)
		}
	})
}

// authzConsumerGroupDescribe: the same for KIP-848 groups.
func (b *Broker) authzConsumerGroupDescribe(req *netio.Request, r *kmsg.ConsumerGroupDescribeRequest, respond func(kmsg.Response)) func(kmsg.Response) {
	return then(respond, func(resp *kmsg.ConsumerGroupDescribeResponse) {
		for i := range resp.Groups {
			g := &resp.Groups[i]
			b.authzGroup(req, g.Group, r.IncludeAuthorizedOperations, &g.AuthorizedOperations, func() {
				*g = kmsg.NewConsumerGroupDescribeResponseGroup()
			}, &g.Group, &g.ErrorCode)
		}
	})
}

// authzGroup checks one described group: without DESCRIBE it is reset
// (clear) to its name and GROUP_AUTHORIZATION_FAILED; with it, its
// authorized operations are filled in when asked and the group has no
// error (as Kafka).
func (b *Broker) authzGroup(req *netio.Request, name string, withOps bool, ops *int32, clear func(), group *string, code *int16) {
	if !b.mayGroup(req, acl.OpDescribe, name) {
		clear()
		*group, *code = name, kerr.GroupAuthorizationFailed.Code
		return
	}
	if withOps && *code == 0 {
		*ops = b.authorizedOps(req, acl.ResourceGroup, name)
	}
}

// authzListGroups: every group with DESCRIBE on the cluster, otherwise
// those the principal may describe.
func (b *Broker) authzListGroups(req *netio.Request, respond func(kmsg.Response)) func(kmsg.Response) {
	if b.authz == nil || b.allowedCluster(req, acl.OpDescribe) {
		return respond
	}
	return then(respond, func(resp *kmsg.ListGroupsResponse) {
		kept := resp.Groups[:0]
		for _, g := range resp.Groups {
			if b.mayGroup(req, acl.OpDescribe, g.Group) {
				kept = append(kept, g)
			}
		}
		resp.Groups = kept
	})
}

// authzDeleteGroups takes the groups the principal may not DELETE out of
// the request and answers them GROUP_AUTHORIZATION_FAILED.
func (b *Broker) authzDeleteGroups(req *netio.Request, r *kmsg.DeleteGroupsRequest, respond func(kmsg.Response)) (*kmsg.DeleteGroupsRequest, func(kmsg.Response)) {
	if b.authz == nil {
		return r, respond
	}
	sub := *r
	var denied []string
	sub.Groups, denied = sift(r.Groups, func(g string) bool { return b.mayGroup(req, acl.OpDelete, g) })
	if len(denied) == 0 {
		return r, respond
	}
	return &sub, then(respond, func(resp *kmsg.DeleteGroupsResponse) {
		for _, g := range denied {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
		}
	})
}

// authzOffsetDelete takes topics without READ out (the group's DELETE is
// the gate's).
func (b *Broker) authzOffsetDelete(req *netio.Request, r *kmsg.OffsetDeleteRequest, respond func(kmsg.Response)) (*kmsg.OffsetDeleteRequest, func(kmsg.Response)) {
	if b.authz == nil {
		return r, respond
	}
	sub := *r
	var denied []kmsg.OffsetDeleteRequestTopic
	sub.Topics, denied = sift(r.Topics, func(t kmsg.OffsetDeleteRequestTopic) bool { return b.mayTopic(req, acl.OpRead, t.Topic) })
	if len(denied) == 0 {
		return r, respond
	}
	return &sub, then(respond, func(resp *kmsg.OffsetDeleteResponse) {
		for _, t := range denied {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	})
}

// authzOffsetCommit: READ on the group (else every partition is
// GROUP_AUTHORIZATION_FAILED) and on each topic. ok is false when the
// whole request was answered here.
func (b *Broker) authzOffsetCommit(req *netio.Request, r *kmsg.OffsetCommitRequest, respond func(kmsg.Response)) (*kmsg.OffsetCommitRequest, func(kmsg.Response), bool) {
	if b.authz == nil {
		return r, respond, true
	}
	errTopics := func(ts []kmsg.OffsetCommitRequestTopic, code int16) []kmsg.OffsetCommitResponseTopic {
		var out []kmsg.OffsetCommitResponseTopic
		for _, t := range ts {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			out = append(out, rt)
		}
		return out
	}
	if !b.mayGroup(req, acl.OpRead, r.Group) {
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = errTopics(r.Topics, kerr.GroupAuthorizationFailed.Code)
		respond(resp)
		return nil, nil, false
	}
	sub := *r
	var denied []kmsg.OffsetCommitRequestTopic
	sub.Topics, denied = sift(r.Topics, func(t kmsg.OffsetCommitRequestTopic) bool { return b.mayTopic(req, acl.OpRead, t.Topic) })
	if len(denied) == 0 {
		return r, respond, true
	}
	return &sub, then(respond, func(resp *kmsg.OffsetCommitResponse) {
		resp.Topics = append(resp.Topics, errTopics(denied, kerr.TopicAuthorizationFailed.Code)...)
	}), true
}

// authzOffsetFetch: DESCRIBE on each group and topic: a denied group gets
// GROUP_AUTHORIZATION_FAILED; named topics the principal may not describe
// get TOPIC_AUTHORIZATION_FAILED, and from "all topics" they are left out.
func (b *Broker) authzOffsetFetch(req *netio.Request, r *kmsg.OffsetFetchRequest, respond func(kmsg.Response)) func(kmsg.Response) {
	if b.authz == nil {
		return respond
	}
	return then(respond, func(resp *kmsg.OffsetFetchResponse) {
		fixTopics := func(group string, topics []kmsg.OffsetFetchResponseGroupTopic, named bool) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
			if !b.mayGroup(req, acl.OpDescribe, group) {
				return nil, kerr.GroupAuthorizationFailed.Code
			}
			kept := topics[:0]
			for _, t := range topics {
				if b.mayTopic(req, acl.OpDescribe, t.Topic) {
					kept = append(kept, t)
					continue
				}
				if named {
					for i := range t.Partitions {
						t.Partitions[i].Offset, t.Partitions[i].Metadata = -1, nil
						t.Partitions[i].ErrorCode = kerr.TopicAuthorizationFailed.Code
					}
					kept = append(kept, t)
				}
			}
			return kept, 0
		}
		if r.Version >= 8 {
			for i := range resp.Groups {
				g := &resp.Groups[i]
				named := i < len(r.Groups) && r.Groups[i].Topics != nil
				var code int16
				if g.Topics, code = fixTopics(g.Group, g.Topics, named); code != 0 {
					g.ErrorCode = code
				}
			}
			return
		}
		// v0-7: one group; convert the topic type through the v8 shape.
		var ts []kmsg.OffsetFetchResponseGroupTopic
		for _, t := range resp.Topics {
			gt := kmsg.NewOffsetFetchResponseGroupTopic()
			gt.Topic = t.Topic
			for _, p := range t.Partitions {
				gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				gt.Partitions = append(gt.Partitions, gp)
			}
			ts = append(ts, gt)
		}
		ts, code := fixTopics(r.Group, ts, r.Topics != nil)
		if code != 0 {
			// Nothing of the group's offsets, as Kafka's error response
			// (OffsetFetchRequest.getErrorResponse): v0-1 answer each
			// partition asked for with the error, v2+ the group alone.
			resp.ErrorCode = code
			resp.Topics = nil
			if r.Version < 2 {
				for _, rt := range r.Topics {
					t := kmsg.NewOffsetFetchResponseTopic()
					t.Topic = rt.Topic
					for _, part := range rt.Partitions {
						p := kmsg.NewOffsetFetchResponseTopicPartition()
						p.Partition, p.Offset, p.ErrorCode = part, -1, code
						t.Partitions = append(t.Partitions, p)
					}
					resp.Topics = append(resp.Topics, t)
				}
			}
			return
		}
		resp.Topics = resp.Topics[:0]
		for _, gt := range ts {
			t := kmsg.NewOffsetFetchResponseTopic()
			t.Topic = gt.Topic
			for _, gp := range gt.Partitions {
				p := kmsg.NewOffsetFetchResponseTopicPartition()
				p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
	})
}

// authzTxnOffsetCommit: WRITE on the transactional id, READ on the group
// and on each topic. ok is false when the whole request was answered.
func (b *Broker) authzTxnOffsetCommit(req *netio.Request, r *kmsg.TxnOffsetCommitRequest, respond func(kmsg.Response)) (*kmsg.TxnOffsetCommitRequest, func(kmsg.Response), bool) {
	if b.authz == nil {
		return r, respond, true
	}
	switch {
	case !b.allowed(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID):
		respond(txnOffsetCommitError(r, kerr.TransactionalIDAuthorizationFailed.Code))
		return nil, nil, false
	case !b.mayGroup(req, acl.OpRead, r.Group):
		respond(txnOffsetCommitError(r, kerr.GroupAuthorizationFailed.Code))
		return nil, nil, false
	}
	sub := *r
	var denied kmsg.TxnOffsetCommitRequest
	denied.Version = r.Version
	sub.Topics, denied.Topics = sift(r.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool { return b.mayTopic(req, acl.OpRead, t.Topic) })
	if len(denied.Topics) == 0 {
		return r, respond, true
	}
	extra := txnOffsetCommitError(&denied, kerr.TopicAuthorizationFailed.Code)
	return &sub, then(respond, func(resp *kmsg.TxnOffsetCommitResponse) {
		resp.Topics = append(resp.Topics, extra.Topics...)
	}), true
}

// authzAddPartitionsToTxn: v0-3 (clients) need WRITE on the
// transactional id and each topic; as in Kafka, a transaction with any
// topic denied adds nothing: the denied partitions get
// TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED. v4+
// needs CLUSTER_ACTION. ok is false when the whole request was answered.
func (b *Broker) authzAddPartitionsToTxn(req *netio.Request, r *kmsg.AddPartitionsToTxnRequest, respond func(kmsg.Response)) (*kmsg.AddPartitionsToTxnRequest, func(kmsg.Response), bool) {
	if b.authz == nil {
		return r, respond, true
	}
	type tp struct {
		topic string
		parts []int32
	}
	// check returns each topic's code for one transaction, or nil if all
	// are allowed.
	check := func(id string, topics []tp) map[string]int16 {
		if !b.allowed(req, acl.OpWrite, acl.ResourceTransactionalID, id) {
			out := map[string]int16{}
			for _, t := range topics {
				out[t.topic] = kerr.TransactionalIDAuthorizationFailed.Code
			}
			return out
		}
		var out map[string]int16
		for _, t := range topics {
			if !b.mayTopic(req, acl.OpWrite, t.topic) {
				if out == nil {
					out = map[string]int16{}
				}
				out[t.topic] = kerr.TopicAuthorizationFailed.Code
			}
		}
		if out != nil {
			for _, t := range topics {
				if _, ok := out[t.topic]; !ok {
					out[t.topic] = kerr.OperationNotAttempted.Code
				}
			}
		}
		return out
	}
	if r.Version <= 3 {
		var topics []tp
		for _, t := range r.Topics {
			topics = append(topics, tp{t.Topic, t.Partitions})
		}
		codes := check(r.TransactionalID, topics)
		if codes == nil {
			return r, respond, true
		}
		resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		for _, t := range topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.topic
			for _, p := range t.parts {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[t.topic]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
		return nil, nil, false
	}
	// v4+ is the brokers' batched form (KIP-890): Kafka asks for
	// CLUSTER_ACTION and then trusts each transaction in it.
	if !b.allowedCluster(req, acl.OpClusterAction) {
		resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return nil, nil, false
	}
	return r, respond, true
}

// authzDescribeTransactions: DESCRIBE on each id; topics of a transaction
// the principal may not describe are left out.
func (b *Broker) authzDescribeTransactions(req *netio.Request, respond func(kmsg.Response)) func(kmsg.Response) {
	if b.authz == nil {
		return respond
	}
	return then(respond, func(resp *kmsg.DescribeTransactionsResponse) {
		for i := range resp.TransactionStates {
			s := &resp.TransactionStates[i]
			if !b.allowed(req, acl.OpDescribe, acl.ResourceTransactionalID, s.TransactionalID) {
				id := s.TransactionalID
				*s = kmsg.NewDescribeTransactionsResponseTransactionState()
				s.TransactionalID, s.ErrorCode = id, kerr.TransactionalIDAuthorizationFailed.Code
				continue
			}
			kept := s.Topics[:0]
			for _, t := range s.Topics {
				if b.mayTopic(req, acl.OpDescribe, t.Topic) {
					kept = append(kept, t)
				}
			}
			s.Topics = kept
		}
	})
}

// authzListTransactions: the ids the principal may describe.
func (b *Broker) authzListTransactions(req *netio.Request, respond func(kmsg.Response)) func(kmsg.Response) {
	if b.authz == nil {
		return respond
	}
	return then(respond, func(resp *kmsg.ListTransactionsResponse) {
		kept := resp.TransactionStates[:0]
		for _, s := range resp.TransactionStates {
			if b.allowed(req, acl.OpDescribe, acl.ResourceTransactionalID, s.TransactionalID) {
				kept = append(kept, s)
			}
		}
		resp.TransactionStates = kept
	})
}
