package engine

// DeleteRecords (key 21), v0-v2.
//
// Moves each partition's log start offset up to the given offset (-1: the
// high watermark), durably; segments wholly below it are deleted. An offset
// above the high watermark gets OFFSET_OUT_OF_RANGE, an internal topic
// INVALID_TOPIC_EXCEPTION and a topic without cleanup.policy=delete
// POLICY_VIOLATION, as in Kafka; a standby answers NOT_LEADER_OR_FOLLOWER.
// As Kafka's DelayedDeleteRecords, the primary answers once the standby's
// log start has moved too (while it is in sync), or with REQUEST_TIMED_OUT
// at the request's timeout, so a failover cannot bring the deleted records
// back.

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
	"samsa/segment"
)

func init() {
	regKey(kmsg.DeleteRecords.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDeleteRecords(req, kreq.(*kmsg.DeleteRecordsRequest)))
	})
}

func (b *Broker) handleDeleteRecords(req *netio.Request, r *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	resp := kmsg.NewPtrDeleteRecordsResponse()
	type wait struct {
		p  *partition
		sp *kmsg.DeleteRecordsResponseTopicPartition
	}
	var waits []wait
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t := b.topic(rt.Topic)
		denied := !b.allowed(req, acl.OpDelete, acl.ResourceTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.ErrorCode = b.deleteRecords(t, rp.Partition, rp.Offset, &sp.LowWatermark)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// As Kafka's DelayedDeleteRecords: answer once the standby's log
	// start has moved too (while it is in sync), so a failover cannot
	// bring the deleted records back.
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			sp := &resp.Topics[i].Partitions[j]
			if sp.ErrorCode == 0 && b.pair.IsPrimary() {
				p := b.partition(resp.Topics[i].Topic, sp.Partition)
				if p == nil {
					continue // deleted meanwhile
				}
				p.log.Notify() // the standby's parked fetch learns the new start
				waits = append(waits, wait{p, sp})
			}
		}
	}
	deadline := time.Now().Add(time.Duration(max(r.TimeoutMillis, 0)) * time.Millisecond)
	for _, w := range waits {
		w.sp.ErrorCode = w.p.replica.AwaitStandbyStart(w.sp.LowWatermark, deadline)
	}
	return resp
}

// deleteRecords advances one partition's log start offset to offset (-1:
// the high watermark), setting *low to the new one.
func (b *Broker) deleteRecords(t *topic, idx int32, offset int64, low *int64) int16 {
	if t == nil || idx < 0 || int(idx) >= len(t.parts()) {
		return kerr.UnknownTopicOrPartition.Code
	}
	if b.pair.IsStandby() {
		return kerr.NotLeaderForPartition.Code
	}
	if t.internal {
		// As Kafka: "Cannot delete records of internal topic".
		return kerr.InvalidTopicException.Code
	}
	p := t.parts()[idx]
	if !p.log.Config().Delete {
		// As Kafka: records of a compact-only topic go by compaction.
		return kerr.PolicyViolation.Code
	}
	hw := p.replica.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return kerr.OffsetOutOfRange.Code
	}
	start, err := p.log.DeleteBefore(offset)
	switch {
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case err != nil:
		b.logger.Warn("cannot delete records", "topic", t.name, "partition", idx, "offset", offset, "err", err)
		return kerr.KafkaStorageError.Code
	}
	*low = start
	return 0
}
