package engine

// Admin APIs: CreatePartitions (key 37, v0-v3), DeleteRecords (key 21,
// v0-v2), DescribeLogDirs (key 35, v0-v4), DescribeCluster (key 60,
// v0-v2).

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"samsa/netio"
	"samsa/segment"
)

func init() {
	regKey(kmsg.CreatePartitions.Int16(), 0, 3, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleCreatePartitions(kreq.(*kmsg.CreatePartitionsRequest), fromPeer(req)))
	})
	regKey(kmsg.DeleteRecords.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDeleteRecords(kreq.(*kmsg.DeleteRecordsRequest)))
	})
	regKey(kmsg.DescribeLogDirs.Int16(), 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeLogDirs(kreq.(*kmsg.DescribeLogDirsRequest)))
	})
	regKey(kmsg.DescribeCluster.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeCluster(kreq.(*kmsg.DescribeClusterRequest)))
	})
}

// maxPartitions bounds a topic's partition count (CreateTopics too).
const maxPartitions = 100000

func (b *Broker) handleCreatePartitions(r *kmsg.CreatePartitionsRequest, fromPeer bool) *kmsg.CreatePartitionsResponse {
	if b.pair.IsStandby() && !fromPeer {
		if resp, ok := b.forwardToPrimary(r); ok {
			return resp.(*kmsg.CreatePartitionsResponse)
		}
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

func (b *Broker) handleDeleteRecords(r *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
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
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
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

func (b *Broker) handleDescribeLogDirs(r *kmsg.DescribeLogDirsRequest) *kmsg.DescribeLogDirsResponse {
	resp := kmsg.NewPtrDescribeLogDirsResponse()
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.store.Dir()
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir.Dir, &st); err == nil {
		dir.TotalBytes = int64(st.Blocks) * st.Bsize
		dir.UsableBytes = int64(st.Bavail) * st.Bsize
	} else {
		dir.TotalBytes, dir.UsableBytes = -1, -1
	}
	add := func(t *topic, idxs []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = t.name
		parts := t.parts()
		for _, idx := range idxs {
			if idx < 0 || int(idx) >= len(parts) {
				continue // Kafka leaves out what it does not host
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = idx
			dp.Size = parts[idx].log.Size()
			if b.pair.IsStandby() {
				dp.OffsetLag = max(0, parts[idx].replica.PrimaryHWM()-parts[idx].log.EndOffset())
			}
			dt.Partitions = append(dt.Partitions, dp)
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	all := func(t *topic) []int32 {
		idxs := make([]int32, len(t.parts()))
		for i := range idxs {
			idxs[i] = int32(i)
		}
		return idxs
	}
	if r.Topics == nil {
		for _, t := range b.topicList() {
			add(t, all(t))
		}
	} else {
		for _, rt := range r.Topics {
			if t := b.topic(rt.Topic); t != nil {
				add(t, rt.Partitions)
			}
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}

// clusterOperations is every operation on the cluster resource (bits of
// ACL operation codes), which a broker without an authorizer allows.
const clusterOperations = 1<<kmsg.ACLOperationCreate | 1<<kmsg.ACLOperationAlter |
	1<<kmsg.ACLOperationDescribe | 1<<kmsg.ACLOperationClusterAction |
	1<<kmsg.ACLOperationDescribeConfigs | 1<<kmsg.ACLOperationAlterConfigs |
	1<<kmsg.ACLOperationIdempotentWrite

func (b *Broker) handleDescribeCluster(r *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
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
	for _, mb := range b.metadataBrokers() {
		cb := kmsg.NewDescribeClusterResponseBroker()
		cb.NodeID, cb.Host, cb.Port = mb.NodeID, mb.Host, mb.Port
		resp.Brokers = append(resp.Brokers, cb)
	}
	resp.ClusterAuthorizedOperations = -2147483648
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	return resp
}
