package engine

// Changing configs, shared by AlterConfigs and IncrementalAlterConfigs
// (api_alterconfigs.go, api_incrementalalterconfigs.go), which differ
// in how they make the new set from the current one.
//
// Topic configs are replaced by a new catalog record, so they are durable
// and reach the standby like the topic itself. Dynamic broker configs are
// the log.* defaults of topic configs (log.retention.ms, log.segment.bytes,
// ...), for the cluster (resource name "") or one node (its id), kept as
// broker_configs records in the same log; group configs are group_configs
// records (group_configs.go). A change applies at once to
// every topic that does not set the config itself. configChanges words a
// change for the log, here and when a topic record is applied
// (metadata_log.go).

import (
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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

// alterConfigs changes one resource's explicit configs to what change
// makes of the current ones, after validating them; validateOnly stops
// before the change.
func (b *Broker) alterConfigs(typ kmsg.ConfigResourceType, name string, validateOnly bool, change func(cur map[string]string) (map[string]string, *topicError)) *topicError {
	switch typ {
	case kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeGroupConfig:
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
		if len(next) == 0 {
			next = nil
		}
		return b.commitConfigs(validateOnly, recTopic, metaTopic{Name: t.name, ID: hexID(t.id), Partitions: int32(len(t.parts())), Configs: next})
	}
	if typ == kmsg.ConfigResourceTypeGroupConfig {
		old := b.groupConfigs()[name]
		next, terr := change(old)
		if terr != nil {
			return terr
		}
		if terr := b.validateGroupConfigs(name, next); terr != nil {
			return terr
		}
		if terr := b.commitConfigs(validateOnly, recGroupConfigs, metaGroupConfigs{Group: name, Configs: next}); terr != nil || validateOnly {
			return terr
		}
		b.logger.Info("altered group configs", "group", name, "changes", configChanges(old, next))
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
	if terr := b.commitConfigs(validateOnly, recBrokerConfigs, metaBrokerConfigs{Resource: name, Configs: next}); terr != nil || validateOnly {
		return terr
	}
	scope := "cluster default"
	if name != "" {
		scope = "node " + name
	}
	b.logger.Info("altered dynamic broker configs", "scope", scope, "changes", configChanges(old, next))
	return nil
}

// commitConfigs records a config change in the metadata log, once the
// standby is in sync; validateOnly stops before. b.metaMu is held.
func (b *Broker) commitConfigs(validateOnly bool, typ string, value any) *topicError {
	if validateOnly {
		return nil
	}
	if !b.metaInSync() {
		return kafkaErr(kerr.NotEnoughReplicas, "the standby is not in sync: config changes wait for it (min_insync_replicas)")
	}
	if err := b.commitMeta(typ, value); err != nil {
		return kafkaErr(kerr.KafkaStorageError, "cannot record the configs: %v", err)
	}
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
