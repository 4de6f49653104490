package engine

// OffsetForLeaderEpoch (key 23), v0-v4.
//
// Consumers use it to validate their position after a leader change
// (KIP-320), and followers to find where their log diverges. samsa has had
// one leader epoch, 0, since the log began: for epoch 0 the end offset is
// the log end offset; for a later (unknown) epoch the answer is
// UNDEFINED (-1, -1), as Kafka answers for epochs it never saw; a
// current_leader_epoch newer than 0 gets UNKNOWN_LEADER_EPOCH.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.OffsetForLeaderEpoch.Int16(), 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleOffsetForLeaderEpoch(req, kreq.(*kmsg.OffsetForLeaderEpochRequest)))
	})
}

func (b *Broker) handleOffsetForLeaderEpoch(req *netio.Request, r *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := b.topic(rt.Topic)
		replica := r.Version >= 3 && r.ReplicaID >= 0 && r.ReplicaID == b.cfg.Replication.PeerID
		// CLUSTER_ACTION (a follower) or DESCRIBE on the topic (a
		// consumer checking for truncation, KIP-320), from anyone, as
		// Kafka's handleOffsetForLeaderEpochRequest.
		denied := !b.allowedCluster(req, acl.OpClusterAction) && !b.allowed(req, acl.OpDescribe, acl.ResourceTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			var p *partition
			if t != nil && rp.Partition >= 0 && int(rp.Partition) < len(t.parts()) {
				p = t.parts()[rp.Partition]
			} else if replica && rt.Topic == metadataLogTopic && rp.Partition == 0 {
				p = b.metaPart
			}
			switch {
			case denied:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case b.pair.IsStandby():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case r.Version >= 2 && b.pair.CheckEpoch(rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = b.pair.CheckEpoch(rp.CurrentLeaderEpoch)
			case rp.LeaderEpoch < 0:
				sp.LeaderEpoch, sp.EndOffset = 0, p.log.StartOffset()
			default:
				// Where that epoch (or the latest one before it) ended:
				// a follower or a consumer truncates there (KIP-101/320).
				sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
