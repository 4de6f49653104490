package engine

// Metadata (key 3), v0-v13.
//
// One node leads every partition. Alone, it is each partition's leader,
// sole replica and sole ISR member. With a hot standby both nodes are
// listed: the primary leads, both are replicas, and the standby is in a
// partition's ISR while it keeps up (replication.go).
// Unknown topics are created when auto.create.topics.enable is set and the
// request allows it (always for v0-v3, as in Kafka). v0 treats an empty
// topic list as "all topics"; v1+ uses null for that. Internal logs are not
// listed. Topic ids are returned from v10; lookups by id from v12.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.Metadata.Int16(), 0, 13, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleMetadata(req, kreq.(*kmsg.MetadataRequest)))
	})
}

func (b *Broker) handleMetadata(req *netio.Request, r *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(r.Version)
	resp.Brokers = b.metadataBrokers(listenerOf(req), false)
	cid := b.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = b.pair.LeaderID()
	if r.Version >= 8 && r.Version <= 10 && r.IncludeClusterAuthorizedOperations {
		// Kafka reports none to a principal that may not describe the
		// cluster.
		resp.AuthorizedOperations = 0
		if b.allowedCluster(req, acl.OpDescribe) {
			resp.AuthorizedOperations = b.authorizedOps(req, acl.ResourceCluster, acl.ClusterName)
		}
	}
	describable := func(name string) bool { return b.allowed(req, acl.OpDescribe, acl.ResourceTopic, name) }
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	if all {
		// Topics the principal may not describe are left out.
		for _, t := range b.topicList() {
			if describable(t.name) {
				resp.Topics = append(resp.Topics, b.metadataTopic(req, t, r))
			}
		}
		return resp
	}
	autoCreate := b.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	if autoCreate && b.pair.IsStandby() {
		// Only the primary creates topics; the client will ask it.
		autoCreate = false
		defer func() {
			for i := range resp.Topics {
				if resp.Topics[i].ErrorCode == kerr.UnknownTopicOrPartition.Code {
					resp.Topics[i].ErrorCode = kerr.LeaderNotAvailable.Code
				}
			}
		}()
	}
	for _, rt := range r.Topics {
		var t *topic
		var name string
		if rt.Topic != nil && *rt.Topic == metadataLogTopic && b.pair.Replicated() {
			// Asked by name only (the nodes of a pair ask each other who
			// leads at which epoch); never listed.
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.IsInternal = rt.Topic, true
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Leader, mp.LeaderEpoch = b.pair.Claim()
			mp.Replicas, mp.ISR = []int32{b.pair.LeaderID(), b.pair.StandbyID()}, []int32{b.pair.LeaderID()}
			if b.metaPart.replica.InSync() {
				mp.ISR = append(mp.ISR, b.pair.StandbyID())
			}
			mt.Partitions = []kmsg.MetadataResponseTopicPartition{mp}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if rt.Topic != nil {
			name = *rt.Topic
			t = b.topic(name)
		} else if rt.TopicID != ([16]byte{}) {
			t = b.topicByID(rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			name = t.name
		}
		if !describable(name) {
			// Whether or not it exists: Kafka tells nothing more.
			mt := kmsg.NewMetadataResponseTopic()
			if rt.Topic != nil {
				mt.Topic = &name
			} else {
				mt.TopicID = rt.TopicID
			}
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		// Auto-creation needs CREATE on the cluster or the topic; a topic
		// the request would create without it is refused, as in Kafka
		// (KafkaApis.handleTopicMetadataRequest): the client fails at once
		// instead of waiting for a topic nobody will create.
		if t == nil && autoCreate && !b.allowedCluster(req, acl.OpCreate) && !b.allowed(req, acl.OpCreate, acl.ResourceTopic, name) {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = &name
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if t == nil && autoCreate {
			var terr *topicError
			if name == offsetsTopic {
				t, terr = b.ensureOffsetsTopic()
			} else if name == txnStateTopic {
				t, terr = b.ensureTxnTopic()
			} else {
				t, terr = b.createTopic(name, -1, -1, nil, false)
			}
			if terr != nil && terr.code == kerr.TopicAlreadyExists.Code {
				t, terr = b.topic(name), nil
			}
			if terr != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = &name
				mt.ErrorCode = terr.code
				if terr.code == kerr.KafkaStorageError.Code || terr.code == kerr.NotEnoughReplicas.Code {
					mt.ErrorCode = kerr.LeaderNotAvailable.Code // retriable
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = &name
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if validateTopicName(name) != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.metadataTopic(req, t, r))
	}
	return resp
}

func (b *Broker) metadataTopic(req *netio.Request, t *topic, r *kmsg.MetadataRequest) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.IsInternal = t.internal
	if r.Version >= 8 && r.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = b.authorizedOps(req, acl.ResourceTopic, t.name)
	}
	leader, standby := b.pair.LeaderID(), b.pair.StandbyID()
	listed := b.peerListed()
	for _, p := range t.parts() {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.idx
		mp.Leader = leader
		mp.LeaderEpoch = b.pair.Epoch()
		mp.Replicas = []int32{leader}
		mp.ISR = []int32{leader}
		if standby >= 0 {
			mp.Replicas = append(mp.Replicas, standby)
			if !listed {
				mp.OfflineReplicas = []int32{standby}
			}
			if p.replica.InSync() || b.pair.IsStandby() && b.pair.Following() && p.log.EndOffset() >= p.replica.PrimaryHWM() {
				mp.ISR = append(mp.ISR, standby)
			}
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// peerListed reports whether clients are told of the peer: always on a
// standby (the peer leads), and on the primary while the standby follows
// (is in the metadata log's ISR). As Kafka leaves fenced brokers out, a
// primary whose standby is gone stops sending clients to it: they would
// look for the group coordinator there and lose their session.
func (b *Broker) peerListed() bool {
	return b.pair.Replicated() && (!b.pair.IsPrimary() || b.metaPart.replica.InSync())
}

// metadataBrokers lists this node and its peer: when listed (peerListed),
// or with all, whenever this node is one of a pair.
//
// The peer is listed at its endpoint for the client's listener
// (replication.peer_advertised_listeners), or else at its client address
// (replication.peer_client).
func (b *Broker) metadataBrokers(listener string, all bool) []kmsg.MetadataResponseBroker {
	adv := b.advFor(listener)
	out := []kmsg.MetadataResponseBroker{{NodeID: b.cfg.NodeID, Host: adv.host, Port: adv.port}}
	if b.peerListed() || all && b.pair.Replicated() {
		host, port := b.peerFor(listener)
		peer := kmsg.MetadataResponseBroker{NodeID: b.cfg.Replication.PeerID, Host: host, Port: port}
		if peer.NodeID < out[0].NodeID {
			out = append([]kmsg.MetadataResponseBroker{peer}, out...)
		} else {
			out = append(out, peer)
		}
	}
	return out
}
