package engine

// DescribeConfigs (key 32), v0-v4.
//
// Topics (resource type 2) report every topic config Kafka defines that
// samsa knows, with the topic's own value or the default, its source
// (DYNAMIC_TOPIC_CONFIG / STATIC_BROKER_CONFIG / DEFAULT_CONFIG), synonyms
// (v1+, when asked) and type and documentation (v3+). The broker (type 4,
// name = node id or "" for cluster defaults) reports its static settings.
// A group (type 32, KIP-848) reports its configs (group_configs.go), set
// (GROUP_CONFIG) or the broker's default. A list of names restricts the
// answer to those configs.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeConfigs.Int16(), 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeConfigs(req, kreq.(*kmsg.DescribeConfigsRequest)))
	})
}

func (b *Broker) handleDescribeConfigs(req *netio.Request, r *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for _, rr := range r.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool {
			if len(rr.ConfigNames) == 0 {
				return true // null or empty: all, as Kafka's ConfigHelper
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		add := func(name, value string, typ, source int8, readOnly bool, doc string, synonyms []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym) {
			if !want(name) {
				return
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			v := value
			c.Name, c.Value, c.ReadOnly = name, &v, readOnly
			c.Source = kmsg.ConfigSource(source)
			c.IsDefault = source == sourceDefault
			c.ConfigType = kmsg.ConfigType(typ)
			if r.IncludeSynonyms {
				c.ConfigSynonyms = synonyms
			}
			if r.IncludeDocumentation && doc != "" {
				d := doc
				c.Documentation = &d
			}
			res.Configs = append(res.Configs, c)
		}
		if terr := b.configAuthz(req, false, rr.ResourceType, rr.ResourceName, acl.OpDescribeConfigs); terr != nil {
			res.ErrorCode, res.ErrorMessage = terr.code, &terr.msg
			resp.Resources = append(resp.Resources, res)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.topic(rr.ResourceName)
			if t == nil {
				res.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := "topic " + rr.ResourceName + " does not exist"
				res.ErrorMessage = &msg
				break
			}
			for _, d := range topicConfigDefs {
				v, src := b.topicConfigValue(t, d.name)
				var syn []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
				if src == sourceDynamicTopic {
					syn = append(syn, synonym(d.name, v, sourceDynamicTopic))
				}
				syn = append(syn, b.brokerSynonyms(d)...)
				add(d.name, v, d.typ, src, false, d.doc, syn)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != b.nodeResource() {
				// As Kafka: a broker describes itself only.
				res.ErrorCode = kerr.InvalidRequest.Code
				msg := "unknown broker " + rr.ResourceName
				res.ErrorMessage = &msg
				break
			}
			if rr.ResourceName == "" {
				// The cluster-wide defaults: only the dynamic ones, as
				// Kafka answers for the default resource.
				for _, e := range b.brokerConfigs() {
					if v, ok := b.dynamicConfigs()[""][e.name]; ok {
						add(e.name, v, e.typ, sourceDynamicDefaultBroker, false, "", []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{synonym(e.name, v, sourceDynamicDefaultBroker)})
					}
				}
				break
			}
			for _, e := range b.brokerConfigs() {
				syn := []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{synonym(e.name, e.value, e.source)}
				doc := ""
				if e.def != nil {
					syn, doc = b.brokerSynonyms(*e.def), e.def.doc
				}
				add(e.name, e.value, e.typ, e.source, e.readOnly, doc, syn)
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			if rr.ResourceName == "" {
				res.ErrorCode = kerr.InvalidRequest.Code
				msg := "Group name must not be empty"
				res.ErrorMessage = &msg
				break
			}
			for i := range groupConfigDefs {
				d := &groupConfigDefs[i]
				v, src := b.groupConfigValue(rr.ResourceName, d)
				var syn []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
				if src == sourceGroup {
					syn = append(syn, synonym(d.name, v, sourceGroup))
				}
				add(d.name, v, d.typ, src, false, d.doc, syn)
			}
		case kmsg.ConfigResourceTypeBrokerLogger:
			// No dynamic loggers: an empty list, as a broker with none.
		default:
			res.ErrorCode = kerr.InvalidRequest.Code
			msg := "unsupported resource type " + strconv.Itoa(int(rr.ResourceType))
			res.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp
}

// knownBroker reports whether name is a broker config resource here: ""
// (the cluster default), this node's id, or its standby peer's.
func (b *Broker) knownBroker(name string) bool {
	return name == "" || name == b.nodeResource() ||
		b.pair.Replicated() && name == strconv.Itoa(int(b.cfg.Replication.PeerID))
}

// brokerSynonyms lists the broker-level values of a topic config, most
// specific first, as Kafka reports synonyms.
func (b *Broker) brokerSynonyms(d topicConfigDef) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	if d.brokerName == "" {
		return nil
	}
	var syn []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	dyn := b.dynamicConfigs()
	if key, _, ok := dynValue(dyn[b.nodeResource()], &d); ok {
		syn = append(syn, synonym(key, dyn[b.nodeResource()][key], sourceDynamicBroker))
	}
	if key, _, ok := dynValue(dyn[""], &d); ok {
		syn = append(syn, synonym(key, dyn[""][key], sourceDynamicDefaultBroker))
	}
	if v, ok := b.staticDefaults()[d.name]; ok {
		syn = append(syn, synonym(d.brokerName, v, sourceStaticBroker))
	}
	// Kafka names the default of the 7-day settings by their hours.
	switch d.name {
	case "retention.ms":
		return append(syn, synonym("log.retention.hours", "168", sourceDefault))
	case "segment.ms":
		return append(syn, synonym("log.roll.hours", "168", sourceDefault))
	}
	return append(syn, synonym(d.brokerName, d.def, sourceDefault))
}

func synonym(name, value string, source int8) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	v := value
	s.Name, s.Value, s.Source = name, &v, kmsg.ConfigSource(source)
	return s
}
