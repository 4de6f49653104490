package engine

// Group configs (KIP-848): a config resource of type GROUP (32) per group
// id, set with IncrementalAlterConfigs or AlterConfigs and read with
// DescribeConfigs, as Kafka 4 serves them (kafka-configs.sh --entity-type
// groups). consumer.session.timeout.ms and consumer.heartbeat.interval.ms
// override the broker's for that group's consumer-protocol members; the
// share.* configs of share groups (KIP-932) are kept and described, and
// have no effect here, where no share group is served. A group need not
// exist to have configs. They are group_configs records of the metadata
// log (durable, and copied to the standby), and the coordinator takes
// them at each sync of the catalog.

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/engine/group"
)

// sourceGroup is Kafka's ConfigSource GROUP_CONFIG.
const sourceGroup int8 = 8

// groupConfigDef is one group config: its default (from the broker's
// settings) and its bounds, as Kafka's GroupConfig defines them.
type groupConfigDef struct {
	name   string
	typ    int8
	doc    string
	def    func(b *Broker) string
	lo, hi func(b *Broker) int64 // for ints
	enum   []string              // for strings
}

// Kafka's bounds of the consumer and share group settings
// (group.consumer.min/max.session.timeout.ms and so on), widened to take
// in what config.toml sets for the broker.
var groupConfigDefs = []groupConfigDef{
	{name: "consumer.heartbeat.interval.ms", typ: typeInt, doc: "the heartbeat interval given to the group's consumer-protocol members",
		def: func(b *Broker) string { return msString(b.cfg.Groups.ConsumerHeartbeatInterval) },
		lo:  func(b *Broker) int64 { return min(5000, b.cfg.Groups.ConsumerHeartbeatInterval.Milliseconds()) },
		hi:  func(b *Broker) int64 { return max(15000, b.cfg.Groups.ConsumerHeartbeatInterval.Milliseconds()) }},
	{name: "consumer.session.timeout.ms", typ: typeInt, doc: "how long the group's consumer-protocol members may go without a heartbeat",
		def: func(b *Broker) string { return msString(b.cfg.Groups.ConsumerSessionTimeout) },
		lo:  func(b *Broker) int64 { return min(45000, b.cfg.Groups.ConsumerSessionTimeout.Milliseconds()) },
		hi:  func(b *Broker) int64 { return max(60000, b.cfg.Groups.ConsumerSessionTimeout.Milliseconds()) }},
	{name: "share.auto.offset.reset", typ: typeString, doc: "share groups (not served here): where a share group starts",
		def: func(*Broker) string { return "latest" }, enum: []string{"latest", "earliest", "by_duration"}},
	{name: "share.heartbeat.interval.ms", typ: typeInt, doc: "share groups (not served here): heartbeat interval",
		def: func(*Broker) string { return "5000" }, lo: constMs(5000), hi: constMs(15000)},
	{name: "share.record.lock.duration.ms", typ: typeInt, doc: "share groups (not served here): record lock duration",
		def: func(*Broker) string { return "30000" }, lo: constMs(15000), hi: constMs(60000)},
	{name: "share.session.timeout.ms", typ: typeInt, doc: "share groups (not served here): session timeout",
		def: func(*Broker) string { return "45000" }, lo: constMs(45000), hi: constMs(60000)},
}

func msString(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func constMs(v int64) func(*Broker) int64 { return func(*Broker) int64 { return v } }

func groupConfigDefByName(name string) *groupConfigDef {
	for i := range groupConfigDefs {
		if groupConfigDefs[i].name == name {
			return &groupConfigDefs[i]
		}
	}
	return nil
}

// groupConfigs is every group's explicit configs, by group id. Neither
// level may be modified: changes store a new map.
func (b *Broker) groupConfigs() map[string]map[string]string {
	if p := b.groupCfg.Load(); p != nil {
		return *p
	}
	return nil
}

// groupConfigValue is a group config's value and source.
func (b *Broker) groupConfigValue(groupID string, d *groupConfigDef) (string, int8) {
	if v, ok := b.groupConfigs()[groupID][d.name]; ok {
		return v, sourceGroup
	}
	return d.def(b), sourceDefault
}

// validateGroupConfigs checks a group's explicit configs as Kafka's
// GroupConfig.validate does: known names, values in bounds, and a
// heartbeat interval below the session timeout.
func (b *Broker) validateGroupConfigs(groupID string, cfgs map[string]string) *topicError {
	if groupID == "" {
		return kafkaErr(kerr.InvalidRequest, "Group name must not be empty")
	}
	ints := map[string]int64{}
	for _, d := range groupConfigDefs {
		v, set := cfgs[d.name]
		if !set {
			v = d.def(b)
		}
		switch d.typ {
		case typeInt:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil {
				return kafkaErr(kerr.InvalidConfig, "Invalid value %s for configuration %s: Not a number of type INT", v, d.name)
			}
			if lo := d.lo(b); n < lo {
				return kafkaErr(kerr.InvalidConfig, "%s must be greater than or equal to %d", d.name, lo)
			}
			if hi := d.hi(b); n > hi {
				return kafkaErr(kerr.InvalidConfig, "%s must be less than or equal to %d", d.name, hi)
			}
			ints[d.name] = n
		default:
			if d.enum != nil && !validGroupEnum(&d, v) {
				return kafkaErr(kerr.InvalidConfig, "Invalid value %s for configuration %s: must be one of %s", v, d.name, strings.Join(d.enum, ", "))
			}
		}
	}
	for name := range cfgs {
		if groupConfigDefByName(name) == nil {
			return kafkaErr(kerr.InvalidConfig, "Unknown group config name: %s", name)
		}
	}
	for _, kind := range []string{"consumer", "share"} {
		if ints[kind+".heartbeat.interval.ms"] >= ints[kind+".session.timeout.ms"] {
			return kafkaErr(kerr.InvalidConfig, "%s.heartbeat.interval.ms must be less than %s.session.timeout.ms", kind, kind)
		}
	}
	return nil
}

// validGroupEnum: one of d's values; by_duration takes an ISO-8601
// duration after a colon (by_duration:PT1H), as Kafka's.
func validGroupEnum(d *groupConfigDef, v string) bool {
	for _, e := range d.enum {
		if v == e || (e == "by_duration" && strings.HasPrefix(v, "by_duration:P")) {
			return true
		}
	}
	return false
}

// groupOverrides is what the coordinator takes from the group configs.
func groupOverrides(cfgs map[string]map[string]string) map[string]group.Overrides {
	out := make(map[string]group.Overrides, len(cfgs))
	ms := func(v string) time.Duration {
		n, _ := strconv.ParseInt(v, 10, 64) // validated when set
		return time.Duration(n) * time.Millisecond
	}
	for id, c := range cfgs {
		o := group.Overrides{ConsumerSessionTimeout: ms(c["consumer.session.timeout.ms"]), ConsumerHeartbeatInterval: ms(c["consumer.heartbeat.interval.ms"])}
		if o != (group.Overrides{}) {
			out[id] = o
		}
	}
	return out
}

// setGroupConfigs publishes the group configs of a catalog sync and hands
// the coordinator its overrides; it reports whether they changed.
func (b *Broker) setGroupConfigs(cfgs map[string]map[string]string) bool {
	if maps.EqualFunc(cfgs, b.groupConfigs(), maps.Equal) {
		return false
	}
	b.groupCfg.Store(&cfgs)
	if b.groups != nil {
		b.groups.SetOverrides(groupOverrides(cfgs))
	}
	return true
}
