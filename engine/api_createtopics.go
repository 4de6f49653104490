package engine

// CreateTopics (key 19), v0-v7.
//
// Partitions -1 means num.partitions; replication factor must be 1 or -1
// (one node; with a standby this becomes 2). Manual replica assignments are
// accepted only when they name this node alone. Configs use Kafka's topic
// config names and are validated; validate_only checks without creating.
// v5+ responses carry the topic id, partition count, replication factor and
// the topic's resolved configs.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.CreateTopics.Int16(), 0, 7, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleCreateTopics(req, kreq.(*kmsg.CreateTopicsRequest)))
	})
}

func (b *Broker) handleCreateTopics(req *netio.Request, r *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := kmsg.NewPtrCreateTopicsResponse()
	// CREATE on the cluster, or on each topic.
	clusterCreate := b.allowedCluster(req, acl.OpCreate)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = &msg
			st.NumPartitions, st.ReplicationFactor = -1, -1
			resp.Topics = append(resp.Topics, st)
		}
		if !clusterCreate && !b.allowed(req, acl.OpCreate, acl.ResourceTopic, rt.Topic) {
			fail(kerr.TopicAuthorizationFailed.Code, "the principal may not create topic "+rt.Topic)
			continue
		}
		if b.pair.IsStandby() {
			fail(kerr.NotController.Code, "this node is the standby; the primary creates topics")
			continue
		}
		if seen[rt.Topic] > 1 {
			fail(kerr.InvalidRequest.Code, "topic "+rt.Topic+" appears more than once in the request")
			continue
		}
		// An existing topic is reported before anything else about the
		// request is checked, as Kafka's ReplicationControlManager: the
		// "create, and ignore TOPIC_ALREADY_EXISTS" idiom works whatever
		// partitions, replication factor or configs it asks for.
		if validateTopicName(rt.Topic) == nil && b.topic(rt.Topic) != nil {
			fail(kerr.TopicAlreadyExists.Code, "Topic '"+rt.Topic+"' already exists.")
			continue
		}
		partitions, replication := rt.NumPartitions, rt.ReplicationFactor
		if len(rt.ReplicaAssignment) > 0 {
			if partitions != -1 || replication != -1 {
				fail(kerr.InvalidRequest.Code, "both replica assignment and partitions/replication factor were set")
				continue
			}
			ok := true
			for i, a := range rt.ReplicaAssignment {
				if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
					ok = false
				}
			}
			if !ok {
				fail(kerr.InvalidReplicaAssignment.Code, "replica assignment must list partitions 0..n-1, each on this node alone")
				continue
			}
			partitions, replication = int32(len(rt.ReplicaAssignment)), 1
		}
		configs := map[string]string{}
		bad := ""
		for _, c := range rt.Configs {
			if c.Value == nil {
				bad = "config " + c.Name + " has a null value"
				break
			}
			configs[c.Name] = *c.Value
		}
		if bad != "" {
			fail(kerr.InvalidConfig.Code, bad)
			continue
		}
		if len(configs) == 0 {
			configs = nil
		}
		if isInternalTopic(rt.Topic) {
			if b.topic(rt.Topic) != nil {
				fail(kerr.TopicAlreadyExists.Code, "topic "+rt.Topic+" already exists")
			} else {
				fail(kerr.InvalidRequest.Code, "internal topic "+rt.Topic+" is created by the broker when first needed")
			}
			continue
		}
		t, terr := b.createTopic(rt.Topic, partitions, replication, configs, r.ValidateOnly)
		if terr != nil {
			fail(terr.code, terr.msg)
			continue
		}
		if partitions == -1 {
			partitions = b.cfg.NumPartitions
		}
		st.NumPartitions, st.ReplicationFactor = partitions, 1
		if b.pair.Replicated() {
			st.ReplicationFactor = 2
		}
		if t != nil {
			st.TopicID = t.id
		}
		if !b.allowed(req, acl.OpDescribeConfigs, acl.ResourceTopic, rt.Topic) {
			// Created, but its configs are not the principal's to see.
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		tmp := &topic{}
		tmp.setConfigs(configs)
		for _, d := range topicConfigDefs {
			v, src := b.topicConfigValue(tmp, d.name)
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value, c.Source = d.name, &v, src
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
