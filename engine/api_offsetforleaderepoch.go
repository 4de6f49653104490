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

	"samsa/netio"
)

func init() {
	regKey(23, 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleOffsetForLeaderEpoch(kreq.(*kmsg.OffsetForLeaderEpochRequest)))
	})
}

func (b *Broker) handleOffsetForLeaderEpoch(r *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := b.topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			switch {
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case b.isStandby():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case r.Version >= 2 && rp.CurrentLeaderEpoch > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case rp.LeaderEpoch == 0:
				sp.LeaderEpoch, sp.EndOffset = 0, t.parts[rp.Partition].log.EndOffset()
			case rp.LeaderEpoch < 0:
				sp.LeaderEpoch, sp.EndOffset = 0, t.parts[rp.Partition].log.StartOffset()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
