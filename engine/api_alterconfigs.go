package engine

// AlterConfigs (key 33), v0-v2.
//
// Replaces a resource's whole set of explicit configs, as in Kafka: a config
// left out returns to its default. Topics and brokers (the cluster default
// "" or a node id, log.* defaults of topic configs) are supported, as
// configs_alter.go describes; BROKER_LOGGER is refused with INVALID_REQUEST:
// samsa has one log level, log_level in config.toml, reloaded on SIGHUP. A
// null value, or a config or resource named twice, gets INVALID_REQUEST;
// values are validated (INVALID_CONFIG for topics). A standby forwards the request to the
// primary and answers NOT_CONTROLLER when it cannot reach it. validate_only
// checks without changing anything.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.AlterConfigs.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleAlterConfigs(req, kreq.(*kmsg.AlterConfigsRequest), fromPeer(req)))
	})
}

func (b *Broker) handleAlterConfigs(req *netio.Request, r *kmsg.AlterConfigsRequest, fromPeer bool) *kmsg.AlterConfigsResponse {
	if out, split := splitRun(r.Resources, func(rr kmsg.AlterConfigsRequestResource) *topicError {
		return b.configAuthz(req, fromPeer, rr.ResourceType, rr.ResourceName, acl.OpAlterConfigs)
	}, func(items []kmsg.AlterConfigsRequestResource) []kmsg.AlterConfigsResponseResource {
		sub := *r
		sub.Resources = items
		return b.handleAlterConfigs(req, &sub, fromPeer).Resources
	}, func(rr kmsg.AlterConfigsRequestResource, terr *topicError) kmsg.AlterConfigsResponseResource {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName, res.ErrorCode, res.ErrorMessage = rr.ResourceType, rr.ResourceName, terr.code, &terr.msg
		return res
	}); split {
		resp := kmsg.NewPtrAlterConfigsResponse()
		resp.Resources = out
		return resp
	}
	if resp, ok := forwardToPrimary[*kmsg.AlterConfigsResponse](b, r, fromPeer); ok {
		return resp
	}
	resp := kmsg.NewPtrAlterConfigsResponse()
	dup, hasDup := duplicateResource(len(r.Resources), func(i int) (int8, string) {
		return int8(r.Resources[i].ResourceType), r.Resources[i].ResourceName
	})
	for _, rr := range r.Resources {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		next := map[string]string{}
		var terr *topicError
		if hasDup {
			terr = kafkaErr(kerr.InvalidRequest, "resource %q appears more than once in the request", dup)
		}
		for _, c := range rr.Configs {
			if terr != nil {
				break
			}
			if _, dup := next[c.Name]; dup {
				terr = kafkaErr(kerr.InvalidRequest, "config %s appears more than once", c.Name)
				break
			}
			if c.Value == nil {
				terr = kafkaErr(kerr.InvalidRequest, "Null value not supported for : %s", c.Name)
				break
			}
			next[c.Name] = *c.Value
		}
		if terr == nil {
			terr = b.alterConfigs(rr.ResourceType, rr.ResourceName, r.ValidateOnly, func(map[string]string) (map[string]string, *topicError) {
				return next, nil
			})
		}
		if terr != nil {
			res.ErrorCode, res.ErrorMessage = terr.code, &terr.msg
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp
}
