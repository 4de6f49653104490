package engine

// CreatePartitions (key 37), v0-v3.
//
// Grows topics; partitions are never removed (INVALID_PARTITIONS for a
// count not above the current one, or above maxPartitions). A standby
// forwards the request to the primary, as Kafka's brokers forward to the
// controller, and answers NOT_CONTROLLER when it cannot reach it. The new
// count is a catalog record, durable and replicated like the topic itself;
// with a standby and min_insync_replicas 2 it is refused with
// NOT_ENOUGH_REPLICAS while the standby is out of sync. A manual assignment
// must name exactly this node, and its standby when paired, for every new
// partition (INVALID_REPLICA_ASSIGNMENT). A topic named twice gets
// INVALID_REQUEST; so does an internal topic, whose partitions groups are
// mapped onto. validate_only checks without changing anything.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.CreatePartitions.Int16(), 0, 3, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleCreatePartitions(req, kreq.(*kmsg.CreatePartitionsRequest), fromPeer(req)))
	})
}

// maxPartitions bounds a topic's partition count (CreateTopics too).
const maxPartitions = 100000

func (b *Broker) handleCreatePartitions(req *netio.Request, r *kmsg.CreatePartitionsRequest, fromPeer bool) *kmsg.CreatePartitionsResponse {
	if out, split := splitRun(r.Topics, func(rt kmsg.CreatePartitionsRequestTopic) *topicError {
		return b.configAuthz(req, fromPeer, kmsg.ConfigResourceTypeTopic, rt.Topic, acl.OpAlter)
	}, func(items []kmsg.CreatePartitionsRequestTopic) []kmsg.CreatePartitionsResponseTopic {
		sub := *r
		sub.Topics = items
		return b.handleCreatePartitions(req, &sub, fromPeer).Topics
	}, func(rt kmsg.CreatePartitionsRequestTopic, terr *topicError) kmsg.CreatePartitionsResponseTopic {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic, st.ErrorCode, st.ErrorMessage = rt.Topic, terr.code, &terr.msg
		return st
	}); split {
		resp := kmsg.NewPtrCreatePartitionsResponse()
		resp.Topics = out
		return resp
	}
	if resp, ok := forwardToPrimary[*kmsg.CreatePartitionsResponse](b, r, fromPeer); ok {
		return resp
	}
	resp := kmsg.NewPtrCreatePartitionsResponse()
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var terr *topicError
		if seen[rt.Topic] > 1 {
			terr = kafkaErr(kerr.InvalidRequest, "topic %s appears more than once in the request", rt.Topic)
		} else {
			terr = b.createPartitions(rt, r.ValidateOnly)
		}
		if terr != nil {
			st.ErrorCode, st.ErrorMessage = terr.code, &terr.msg
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// createPartitions grows one topic to rt.Count partitions.
func (b *Broker) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) *topicError {
	if b.pair.IsStandby() {
		return kafkaErr(kerr.NotController, "this node is the standby; the primary adds partitions")
	}
	t := b.topic(rt.Topic)
	switch {
	case t == nil:
		return kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	case t.internal:
		return kafkaErr(kerr.InvalidRequest, "the partitions of internal topic %s cannot change: groups are mapped onto them", rt.Topic)
	case rt.Count > maxPartitions:
		return kafkaErr(kerr.InvalidPartitions, "number of partitions must be at most %d, got %d", maxPartitions, rt.Count)
	}
	// Assignments name the replicas of each new partition: every log here
	// has this node and, when paired, its standby.
	replicas := []int32{b.cfg.NodeID}
	if b.pair.Replicated() {
		replicas = append(replicas, b.cfg.Replication.PeerID)
	}
	for _, a := range rt.Assignment {
		ok := len(a.Replicas) == len(replicas)
		for _, id := range a.Replicas {
			ok = ok && slices.Contains(replicas, id)
		}
		if !ok || len(a.Replicas) == 2 && a.Replicas[0] == a.Replicas[1] {
			return kafkaErr(kerr.InvalidReplicaAssignment, "replica assignment %v: every partition has replicas %v", a.Replicas, replicas)
		}
	}
	unlock := b.lockMeta()
	defer unlock()
	if b.topic(rt.Topic) != t {
		return kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	}
	cur := int32(len(t.parts()))
	switch {
	case rt.Count == cur:
		return kafkaErr(kerr.InvalidPartitions, "topic %s already has %d partitions", rt.Topic, cur)
	case rt.Count < cur:
		return kafkaErr(kerr.InvalidPartitions, "topic %s has %d partitions, more than the requested %d: partitions cannot be removed", rt.Topic, cur, rt.Count)
	case rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-cur):
		return kafkaErr(kerr.InvalidReplicaAssignment, "%d assignments for %d new partitions", len(rt.Assignment), rt.Count-cur)
	}
	if validateOnly {
		return nil
	}
	if !b.metaInSync() {
		return kafkaErr(kerr.NotEnoughReplicas, "the standby is not in sync: topic changes wait for it (min_insync_replicas)")
	}
	if err := b.commitMeta(recTopic, metaTopic{Name: t.name, ID: hexID(t.id), Partitions: rt.Count, Configs: t.configs()}); err != nil {
		return kafkaErr(kerr.KafkaStorageError, "cannot add partitions: %v", err)
	}
	return nil
}
