package engine

// DescribeConfigs (key 32), v0-v4.
//
// Topics (resource type 2) report every topic config Kafka defines that
// samsa knows, with the topic's own value or the default, its source
// (DYNAMIC_TOPIC_CONFIG / STATIC_BROKER_CONFIG / DEFAULT_CONFIG), synonyms
// (v1+, when asked) and type and documentation (v3+). The broker (type 4,
// name = node id or "" for cluster defaults) reports its static settings.
// A list of names restricts the answer to those configs.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(32, 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeConfigs(kreq.(*kmsg.DescribeConfigsRequest)))
	})
}

func (b *Broker) handleDescribeConfigs(r *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for _, rr := range r.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
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
				if d.brokerName != "" {
					if bv, ok := b.cfg.TopicDefaults[d.name]; ok {
						syn = append(syn, synonym(d.brokerName, bv, sourceStaticBroker))
					}
					syn = append(syn, synonym(d.brokerName, d.def, sourceDefault))
				}
				add(d.name, v, d.typ, src, false, d.doc, syn)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				res.ErrorCode = kerr.InvalidRequest.Code
				msg := "unknown broker " + rr.ResourceName
				res.ErrorMessage = &msg
				break
			}
			for _, e := range b.brokerConfigs() {
				add(e.name, e.value, e.typ, e.source, e.readOnly, "", []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{synonym(e.name, e.value, e.source)})
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

func synonym(name, value string, source int8) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	v := value
	s.Name, s.Value, s.Source = name, &v, kmsg.ConfigSource(source)
	return s
}
