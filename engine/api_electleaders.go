package engine

// ElectLeaders (key 43, v0-v2). samsa has one leader for every partition,
// so the only election is a promotion: sent to the standby of a pair (as
// `samsactl promote` does), it promotes it (replica.Pair.Promote: the next
// leader epoch on every log, a leader record in the metadata log, the
// group coordinator loaded); the primary, or a broker alone, answers
// ELECTION_NOT_NEEDED. Each listed partition gets the same error code, or
// UNKNOWN_TOPIC_OR_PARTITION; a null topic list means every partition.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.ElectLeaders.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleElectLeaders(kreq.(*kmsg.ElectLeadersRequest)))
	})
}

func (b *Broker) handleElectLeaders(r *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	resp := kmsg.NewPtrElectLeadersResponse()
	resp.Version = r.Version
	code := int16(0)
	var msg *string
	switch {
	case !b.pair.Replicated():
		code = kerr.ElectionNotNeeded.Code
	case b.pair.IsPrimary():
		code = kerr.ElectionNotNeeded.Code
	default:
		if err := b.pair.Promote("ElectLeaders request"); err != nil {
			code = kerr.UnknownServerError.Code
			s := err.Error()
			msg = &s
		}
	}
	topics := r.Topics
	if topics == nil && code == kerr.ElectionNotNeeded.Code {
		// Asked for every partition, Kafka leaves out those that need no
		// election: all of them here.
		return resp
	}
	if topics == nil {
		for _, t := range b.topicList() {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = t.name
			for _, p := range t.parts() {
				rt.Partitions = append(rt.Partitions, p.idx)
			}
			topics = append(topics, rt)
		}
	}
	for _, rt := range topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition, sp.ErrorCode, sp.ErrorMessage = idx, code, msg
			if b.partition(rt.Topic, idx) == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
