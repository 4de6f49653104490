package engine

// AlterConfigs (key 33, v0-v2) and IncrementalAlterConfigs (key 44,
// v0-v1).
//
// Topic configs are replaced by a new catalog record, so they are durable
// and reach the standby like the topic itself. Dynamic broker configs are
// the log.* defaults of topic configs (log.retention.ms, log.segment.bytes,
// ...), for the cluster (resource name "") or one node (its id), kept as
// broker_configs records in the same log. A change applies at once to
// every topic that does not set the config itself. AlterConfigs replaces
// a resource's whole set, as in Kafka; IncrementalAlterConfigs sets,
// deletes, appends to or subtracts from single configs.

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/replica"
	"samsa/netio"
)

func init() {
	regKey(kmsg.AlterConfigs.Int16(), 0, 2, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleAlterConfigs(kreq.(*kmsg.AlterConfigsRequest), fromPeer(req)))
	})
	regKey(kmsg.IncrementalAlterConfigs.Int16(), 0, 1, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleIncrementalAlterConfigs(kreq.(*kmsg.IncrementalAlterConfigsRequest), fromPeer(req)))
	})
}

// forwardToPrimary sends an admin request that a standby received to the
// primary over the link, as Kafka's brokers forward to the controller:
// clients send config changes to any broker. ok is false when the primary
// does not answer.
func (b *Broker) forwardToPrimary(req kmsg.Request) (kmsg.Response, bool) {
	resp, err := b.pair.AskPeer(req, 30*time.Second)
	if err != nil {
		b.logger.Warn("cannot forward an admin request to the primary", "api", kmsg.NameForKey(req.Key()), "err", err)
		return nil, false
	}
	return resp, true
}

// fromPeer reports whether a request came from the other node of the pair
// (forwarded by it): it is never forwarded back.
func fromPeer(req *netio.Request) bool {
	return strings.HasPrefix(req.ClientID, replica.PeerClientIDPrefix)
}

// duplicateResource returns a resource that appears twice in a request.
func duplicateResource(n int, at func(i int) (int8, string)) (string, bool) {
	seen := map[[2]string]bool{}
	for i := range n {
		typ, name := at(i)
		k := [2]string{strconv.Itoa(int(typ)), name}
		if seen[k] {
			return name, true
		}
		seen[k] = true
	}
	return "", false
}

func (b *Broker) handleAlterConfigs(r *kmsg.AlterConfigsRequest, fromPeer bool) *kmsg.AlterConfigsResponse {
	if b.pair.IsStandby() && !fromPeer {
		if resp, ok := b.forwardToPrimary(r); ok {
			return resp.(*kmsg.AlterConfigsResponse)
		}
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

func (b *Broker) handleIncrementalAlterConfigs(r *kmsg.IncrementalAlterConfigsRequest, fromPeer bool) *kmsg.IncrementalAlterConfigsResponse {
	if b.pair.IsStandby() && !fromPeer {
		if resp, ok := b.forwardToPrimary(r); ok {
			return resp.(*kmsg.IncrementalAlterConfigsResponse)
		}
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

// alterConfigs changes one resource's explicit configs to what change
// makes of the current ones, after validating them; validateOnly stops
// before the change.
func (b *Broker) alterConfigs(typ kmsg.ConfigResourceType, name string, validateOnly bool, change func(cur map[string]string) (map[string]string, *topicError)) *topicError {
	switch typ {
	case kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker:
	case kmsg.ConfigResourceTypeBrokerLogger:
		return kafkaErr(kerr.InvalidRequest, "samsa has no per-logger levels: set log_level in config.toml and send the broker SIGHUP")
	default:
		return kafkaErr(kerr.InvalidRequest, "unsupported resource type %d", typ)
	}
	if b.pair.IsStandby() {
		return kafkaErr(kerr.NotController, "this node is the standby and cannot reach the primary, which changes configs")
	}
	unlock := b.lockMeta()
	defer unlock()
	if typ == kmsg.ConfigResourceTypeTopic {
		t := b.topic(name)
		if t == nil {
			return kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		next, terr := change(t.configs())
		if terr != nil {
			return terr
		}
		next = normalizeConfigs(next, func(n string) *topicConfigDef { return topicConfigByName[n] })
		if err := validateTopicConfigs(next); err != nil {
			return kafkaErr(kerr.InvalidConfig, "%v", err)
		}
		if validateOnly {
			return nil
		}
		if !b.metaInSync() {
			return kafkaErr(kerr.NotEnoughReplicas, "the standby is not in sync: config changes wait for it (min_insync_replicas)")
		}
		if len(next) == 0 {
			next = nil
		}
		if err := b.commitMeta(recTopic, metaTopic{Name: t.name, ID: hexID(t.id), Partitions: int32(len(t.parts())), Configs: next}); err != nil {
			return kafkaErr(kerr.KafkaStorageError, "cannot record the configs: %v", err)
		}
		return nil
	}
	if !b.knownBroker(name) {
		return kafkaErr(kerr.InvalidRequest, "unknown broker %q: configs apply to the cluster (\"\") or a node id", name)
	}
	old := b.dynamicConfigs()[name]
	next, terr := change(old)
	if terr != nil {
		return terr
	}
	next = normalizeConfigs(next, func(n string) *topicConfigDef { return topicConfigForBroker[n] })
	if terr := b.validateBrokerConfigs(next); terr != nil {
		return terr
	}
	if validateOnly {
		return nil
	}
	if !b.metaInSync() {
		return kafkaErr(kerr.NotEnoughReplicas, "the standby is not in sync: config changes wait for it (min_insync_replicas)")
	}
	if err := b.commitMeta(recBrokerConfigs, metaBrokerConfigs{Resource: name, Configs: next}); err != nil {
		return kafkaErr(kerr.KafkaStorageError, "cannot record the configs: %v", err)
	}
	scope := "cluster default"
	if name != "" {
		scope = "node " + name
	}
	b.logger.Info("altered dynamic broker configs", "scope", scope, "changes", configChanges(old, next))
	return nil
}

// configChanges describes a change of configs for the log: k=v for set or
// changed ones, -k for removed ones.
func configChanges(old, next map[string]string) string {
	var out []string
	for k, v := range next {
		if ov, ok := old[k]; !ok || ov != v {
			out = append(out, k+"="+v)
		}
	}
	for k := range old {
		if _, ok := next[k]; !ok {
			out = append(out, "-"+k)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}
