package engine

// IncrementalAlterConfigs (key 44), v0-v1.
//
// Sets, deletes, appends to or subtracts from single configs of a topic or
// of the brokers (the cluster default "" or a node id), as
// configs_alter.go describes; BROKER_LOGGER is refused as in
// api_alterconfigs.go. APPEND and SUBTRACT apply to list
// configs only (INVALID_CONFIG for topics, INVALID_REQUEST for brokers, as
// Kafka answers) and start from the config's own default when it is not
// set, as Kafka does, not from a broker-level value. A config or resource
// named twice, a null value for SET, APPEND or SUBTRACT, or an unknown
// operation gets INVALID_REQUEST. A standby forwards the request to the
// primary and answers NOT_CONTROLLER when it cannot reach it.
// validate_only checks without changing anything.

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.IncrementalAlterConfigs.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleIncrementalAlterConfigs(req, kreq.(*kmsg.IncrementalAlterConfigsRequest), fromPeer(req)))
	})
}

func (b *Broker) handleIncrementalAlterConfigs(req *netio.Request, r *kmsg.IncrementalAlterConfigsRequest, fromPeer bool) *kmsg.IncrementalAlterConfigsResponse {
	if out, split := splitRun(r.Resources, func(rr kmsg.IncrementalAlterConfigsRequestResource) *topicError {
		return b.configAuthz(req, fromPeer, rr.ResourceType, rr.ResourceName, acl.OpAlterConfigs)
	}, func(items []kmsg.IncrementalAlterConfigsRequestResource) []kmsg.IncrementalAlterConfigsResponseResource {
		sub := *r
		sub.Resources = items
		return b.handleIncrementalAlterConfigs(req, &sub, fromPeer).Resources
	}, func(rr kmsg.IncrementalAlterConfigsRequestResource, terr *topicError) kmsg.IncrementalAlterConfigsResponseResource {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName, res.ErrorCode, res.ErrorMessage = rr.ResourceType, rr.ResourceName, terr.code, &terr.msg
		return res
	}); split {
		resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
		resp.Resources = out
		return resp
	}
	if resp, ok := forwardToPrimary[*kmsg.IncrementalAlterConfigsResponse](b, r, fromPeer); ok {
		return resp
	}
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	dup, hasDup := duplicateResource(len(r.Resources), func(i int) (int8, string) {
		return int8(r.Resources[i].ResourceType), r.Resources[i].ResourceName
	})
	for _, rr := range r.Resources {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		if hasDup {
			msg := "resource " + strconv.Quote(dup) + " appears more than once in the request"
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, &msg
			resp.Resources = append(resp.Resources, res)
			continue
		}
		terr := b.alterConfigs(rr.ResourceType, rr.ResourceName, r.ValidateOnly, func(cur map[string]string) (map[string]string, *topicError) {
			return b.incrementalChange(rr, cur)
		})
		if terr != nil {
			res.ErrorCode, res.ErrorMessage = terr.code, &terr.msg
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp
}

// incrementalChange applies one resource's IncrementalAlterConfigs
// operations to its current explicit configs.
func (b *Broker) incrementalChange(rr kmsg.IncrementalAlterConfigsRequestResource, cur map[string]string) (map[string]string, *topicError) {
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]string{}
	}
	seen := map[string]bool{}
	for _, c := range rr.Configs {
		if seen[c.Name] {
			return nil, kafkaErr(kerr.InvalidRequest, "config %s appears more than once", c.Name)
		}
		seen[c.Name] = true
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return nil, kafkaErr(kerr.InvalidRequest, "SET of %s has a null value", c.Name)
			}
			next[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			d := b.configDef(rr.ResourceType, c.Name)
			if d == nil || d.typ != typeList {
				code := kerr.InvalidConfig // as Kafka: topics INVALID_CONFIG, brokers INVALID_REQUEST
				if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
					code = kerr.InvalidRequest
				}
				return nil, kafkaErr(code, "Config value append is not allowed for config key: %s (APPEND and SUBTRACT apply to lists only)", c.Name)
			}
			if c.Value == nil {
				return nil, kafkaErr(kerr.InvalidRequest, "%s of %s has a null value", c.Op, c.Name)
			}
			v, ok := next[c.Name]
			if !ok {
				// As Kafka does: the list starts from the config's own
				// default, not from broker-level values.
				v = d.def
			}
			list := splitList(v)
			for _, item := range splitList(*c.Value) {
				i := slices.Index(list, item)
				switch {
				case c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0:
					list = append(list, item)
				case c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0:
					list = slices.Delete(list, i, i+1)
				}
			}
			next[c.Name] = strings.Join(list, ",")
		default:
			return nil, kafkaErr(kerr.InvalidRequest, "unknown operation %d on %s", c.Op, c.Name)
		}
	}
	return next, nil
}

// configDef finds the definition of a topic config, or of the topic config
// a dynamic broker config is the default of.
func (b *Broker) configDef(typ kmsg.ConfigResourceType, name string) *topicConfigDef {
	if typ == kmsg.ConfigResourceTypeTopic {
		return topicConfigByName[name]
	}
	return topicConfigForBroker[name]
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
