package engine

// DeleteTopics (key 20), v0-v6.
//
// Deletion is durable (a catalog record, fsynced) before the partition
// directories are removed; a crash in between is finished on the next
// start. v6 may name topics by id.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.DeleteTopics.Int16(), 0, 6, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDeleteTopics(req, kreq.(*kmsg.DeleteTopicsRequest)))
	})
}

func (b *Broker) handleDeleteTopics(req *netio.Request, r *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	resp := kmsg.NewPtrDeleteTopicsResponse()
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	clusterDelete := b.allowedCluster(req, acl.OpDelete)
	if r.Version < 6 {
		for i := range r.TopicNames {
			targets = append(targets, target{name: &r.TopicNames[i]})
		}
	} else {
		for _, t := range r.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var t *topic
		switch {
		case tg.name != nil && *tg.name != "":
			t = b.topic(*tg.name)
			if t == nil {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
		case tg.id != [16]byte{}:
			t = b.topicByID(tg.id)
			if t == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
		default:
			st.ErrorCode = kerr.InvalidRequest.Code
		}
		name := ""
		if t != nil {
			name = t.name
		} else if tg.name != nil {
			name = *tg.name
		}
		// As Kafka (ControllerApis.deleteTopics): DELETE on the cluster
		// covers every topic; a topic the principal may not describe is
		// refused whether or not it exists; one it may describe but not
		// delete is refused once it is known to exist (a missing one is
		// unknown), and keeps its name when asked for by id.
		if name != "" && !clusterDelete {
			switch describable := b.allowed(req, acl.OpDescribe, acl.ResourceTopic, name); {
			case !describable:
				st.ErrorCode, st.ErrorMessage, t = kerr.TopicAuthorizationFailed.Code, nil, nil
				if tg.name == nil {
					st.Topic = nil
				}
			case t != nil && !b.allowed(req, acl.OpDelete, acl.ResourceTopic, name):
				st.ErrorCode, t = kerr.TopicAuthorizationFailed.Code, nil
				st.Topic = &name
			}
		}
		if t != nil && b.pair.IsStandby() {
			st.ErrorCode = kerr.NotController.Code
			msg := "this node is the standby; the primary deletes topics"
			st.ErrorMessage = &msg
		} else if t != nil && t.internal {
			name := t.name
			st.Topic, st.TopicID = &name, t.id
			st.ErrorCode = kerr.InvalidTopicException.Code
			msg := "internal topic " + name + " cannot be deleted"
			st.ErrorMessage = &msg
		} else if t != nil {
			name := t.name
			st.Topic, st.TopicID = &name, t.id
			if terr := b.deleteTopic(t); terr != nil {
				st.ErrorCode = terr.code
				st.ErrorMessage = &terr.msg
			} else {
				b.groups.TopicDeleted(t.name)
				b.txns.TopicDeleted(t.name)
			}
		}
		if st.ErrorCode != 0 && st.ErrorMessage == nil {
			msg := kerr.ErrorForCode(st.ErrorCode).Error()
			st.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
