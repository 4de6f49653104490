package engine

// DescribeProducers (key 61), v0.
//
// The producers a partition tracks (idempotent and transactional), with
// their epoch, last sequence, last write time (the broker's clock, which
// samsa's producer expiry also counts from), the coordinator epoch of
// their last marker, and the first offset of their open transaction (-1
// when none): what kafka-transactions.sh find-hanging and abort read.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeProducers.Int16(), 0, 0, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeProducers(req, kreq.(*kmsg.DescribeProducersRequest)))
	})
}

func (b *Broker) handleDescribeProducers(req *netio.Request, r *kmsg.DescribeProducersRequest) *kmsg.DescribeProducersResponse {
	resp := kmsg.NewPtrDescribeProducersResponse()
	resp.Version = r.Version
	for _, t := range r.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		// As Kafka: the name is checked before the ACL, for everyone.
		invalid := legalTopic(t.Topic)
		denied := invalid == nil && !b.allowed(req, acl.OpRead, acl.ResourceTopic, t.Topic)
		for _, idx := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = idx
			p := b.partition(t.Topic, idx)
			switch {
			case invalid != nil:
				rp.ErrorCode = kerr.InvalidTopicException.Code
				rp.ErrorMessage = kmsg.StringPtr(invalid.Error())
			case denied:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case b.pair.IsStandby():
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				ps := p.log.Producers()
				sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
				rp.ActiveProducers = make([]kmsg.DescribeProducersResponseTopicPartitionActiveProducer, 0, len(ps))
				for _, pi := range ps {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pi.ID, int32(pi.Epoch), pi.LastSequence
					ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.LastTimestamp, pi.CoordinatorEpoch, pi.TxnStartOffset
					rp.ActiveProducers = append(rp.ActiveProducers, ap)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
