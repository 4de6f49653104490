package engine

// WriteTxnMarkers (key 27), v0-v1.
//
// Kafka's transaction coordinators send it to partition leaders; samsa's
// coordinator writes its markers in-process (txns.go), so here it serves
// what kafka-transactions.sh abort sends: an abort (or commit) marker for
// a producer whose transaction hangs a partition. Each marker is appended
// with the given producer epoch and coordinator epoch, checked as Kafka
// checks them (INVALID_PRODUCER_EPOCH for an older epoch,
// TRANSACTION_COORDINATOR_FENCED for an older coordinator), fsynced, and
// on the standby while one is in sync. A standby answers
// NOT_LEADER_OR_FOLLOWER. v2 (the transaction version field) is not
// advertised.

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.WriteTxnMarkers.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.handleWriteTxnMarkers(kreq.(*kmsg.WriteTxnMarkersRequest), func(r kmsg.Response) { respond(req, r) })
	})
}

func (b *Broker) handleWriteTxnMarkers(r *kmsg.WriteTxnMarkersRequest, respond func(kmsg.Response)) {
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	resp.Version = r.Version
	var wg sync.WaitGroup
	for _, m := range r.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for i, idx := range t.Partitions {
				rp := &rt.Partitions[i]
				*rp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = idx
				p := b.partition(t.Topic, idx)
				if p == nil {
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					continue
				}
				wg.Add(1)
				b.writeMarker(p, m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.Committed, func(code int16) {
					rp.ErrorCode = code
					wg.Done()
				})
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	go func() {
		wg.Wait()
		respond(resp)
	}()
}
