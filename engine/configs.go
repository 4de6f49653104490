package engine

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/segment"
	"samsa/segment/compress"
)

// Config types as DescribeConfigs v3+ reports them.
const (
	typeBoolean int8 = 1
	typeString  int8 = 2
	typeInt     int8 = 3
	typeLong    int8 = 5
	typeDouble  int8 = 6
	typeList    int8 = 7
)

// Config sources as DescribeConfigs reports them.
const (
	sourceDynamicTopic         int8 = 1
	sourceDynamicBroker        int8 = 2
	sourceDynamicDefaultBroker int8 = 3
	sourceStaticBroker         int8 = 4
	sourceDefault              int8 = 5
)

// topicConfigDef describes one topic-level config: its Kafka name, the
// broker-level synonym that supplies its default, its type and validation.
type topicConfigDef struct {
	name       string
	brokerName string // log.* synonym; "" if none
	typ        int8
	def        string
	doc        string
	validate   func(string) error
}

func validLong(lo int64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		if v < lo {
			return fmt.Errorf("%d is below the minimum %d", v, lo)
		}
		return nil
	}
}

func validInt(lo int64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return fmt.Errorf("not a 32-bit number: %q", s)
		}
		if v < lo {
			return fmt.Errorf("%d is below the minimum %d", v, lo)
		}
		return nil
	}
}

func validOneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(vals, ", "))
	}
}

func validIntRange(lo, hi int64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil || v < lo || v > hi {
			return fmt.Errorf("%q is not a number in [%d, %d]", s, lo, hi)
		}
		return nil
	}
}

func validGzipLevel(s string) error {
	if s == "-1" {
		return nil
	}
	return validIntRange(1, 9)(s)
}

// validThrottledReplicas accepts "", "*" or partition:broker pairs.
func validThrottledReplicas(s string) error {
	if s == "" || s == "*" {
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(p), ":")
		_, err1 := strconv.Atoi(a)
		_, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("%q is not *, or a list of partition:broker", s)
		}
	}
	return nil
}

func validAny(string) error { return nil }

func validBool(s string) error {
	if s != "true" && s != "false" {
		return fmt.Errorf("%q is not true or false", s)
	}
	return nil
}

func validRatio(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1 {
		return fmt.Errorf("%q is not a number in [0, 1]", s)
	}
	return nil
}

func validCleanupPolicy(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil // an empty list: neither deleted nor compacted, as Kafka allows
	}
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p != "delete" && p != "compact" {
			return fmt.Errorf("%q is not a list of delete and compact", s)
		}
		seen[p] = true
	}
	return nil
}

const maxLongStr = "9223372036854775807"

var topicConfigDefs = []topicConfigDef{
	{name: "cleanup.policy", brokerName: "log.cleanup.policy", typ: typeList, def: "delete", doc: "delete and/or compact old segments", validate: validCleanupPolicy},
	{name: "compression.type", brokerName: "compression.type", typ: typeString, def: "producer", doc: "final compression type of the topic", validate: validOneOf("producer", "uncompressed", "none", "gzip", "snappy", "lz4", "zstd")},
	{name: "delete.retention.ms", brokerName: "log.cleaner.delete.retention.ms", typ: typeLong, def: "86400000", doc: "how long tombstones are kept on compacted topics", validate: validLong(0)},
	{name: "file.delete.delay.ms", brokerName: "log.segment.delete.delay.ms", typ: typeLong, def: "60000", doc: "delay before deleting a file", validate: validLong(0)},
	{name: "flush.messages", brokerName: "log.flush.interval.messages", typ: typeLong, def: maxLongStr, doc: "fsync after this many messages (samsa fsyncs per its durability policy)", validate: validLong(1)},
	{name: "flush.ms", brokerName: "log.flush.interval.ms", typ: typeLong, def: maxLongStr, doc: "fsync after this long (samsa fsyncs per its durability policy)", validate: validLong(0)},
	{name: "index.interval.bytes", brokerName: "log.index.interval.bytes", typ: typeInt, def: "4096", doc: "bytes between offset index entries", validate: validInt(0)},
	{name: "max.compaction.lag.ms", brokerName: "log.cleaner.max.compaction.lag.ms", typ: typeLong, def: maxLongStr, doc: "maximum time a message stays uncompacted", validate: validLong(1)},
	{name: "max.message.bytes", brokerName: "message.max.bytes", typ: typeInt, def: "1048588", doc: "largest record batch size allowed", validate: validInt(0)},
	{name: "message.timestamp.after.max.ms", brokerName: "log.message.timestamp.after.max.ms", typ: typeLong, def: "3600000", doc: "how far in the future a CreateTime timestamp may be", validate: validLong(0)},
	{name: "message.timestamp.before.max.ms", brokerName: "log.message.timestamp.before.max.ms", typ: typeLong, def: maxLongStr, doc: "how far in the past a CreateTime timestamp may be", validate: validLong(0)},
	{name: "message.timestamp.type", brokerName: "log.message.timestamp.type", typ: typeString, def: "CreateTime", doc: "CreateTime or LogAppendTime", validate: validOneOf("CreateTime", "LogAppendTime")},
	{name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", typ: typeDouble, def: "0.5", doc: "dirty ratio that triggers compaction", validate: validRatio},
	{name: "min.compaction.lag.ms", brokerName: "log.cleaner.min.compaction.lag.ms", typ: typeLong, def: "0", doc: "minimum time a message stays uncompacted", validate: validLong(0)},
	{name: "min.insync.replicas", brokerName: "min.insync.replicas", typ: typeInt, def: "1", doc: "replicas that must hold an acks=all write", validate: validInt(1)},
	{name: "preallocate", brokerName: "log.preallocate", typ: typeBoolean, def: "false", doc: "preallocate segment files", validate: validBool},
	{name: "retention.bytes", brokerName: "log.retention.bytes", typ: typeLong, def: "-1", doc: "maximum partition size before old segments are deleted", validate: validLong(-1)},
	{name: "retention.ms", brokerName: "log.retention.ms", typ: typeLong, def: "604800000", doc: "maximum age of a segment before deletion", validate: validLong(-1)},
	{name: "segment.bytes", brokerName: "log.segment.bytes", typ: typeInt, def: "1073741824", doc: "segment file size", validate: validInt(14)},
	{name: "segment.index.bytes", brokerName: "log.index.size.max.bytes", typ: typeInt, def: "10485760", doc: "offset index size", validate: validInt(4)},
	{name: "segment.jitter.ms", brokerName: "log.roll.jitter.ms", typ: typeLong, def: "0", doc: "random jitter subtracted from segment.ms", validate: validLong(0)},
	{name: "segment.ms", brokerName: "log.roll.ms", typ: typeLong, def: "604800000", doc: "time after which a segment rolls", validate: validLong(1)},
	{name: "unclean.leader.election.enable", brokerName: "unclean.leader.election.enable", typ: typeBoolean, def: "false", doc: "allow out-of-sync replicas to lead", validate: validBool},
	{name: "local.retention.ms", brokerName: "log.local.retention.ms", typ: typeLong, def: "-2", doc: "tiered storage: local retention (not used by samsa)", validate: validLong(-2)},
	{name: "local.retention.bytes", brokerName: "log.local.retention.bytes", typ: typeLong, def: "-2", doc: "tiered storage: local retention (not used by samsa)", validate: validLong(-2)},
	{name: "remote.storage.enable", brokerName: "", typ: typeBoolean, def: "false", doc: "tiered storage (not supported by samsa)", validate: validOneOf("false")},
	// Accepted as Kafka does; samsa does not act on them.
	{name: "compression.gzip.level", brokerName: "compression.gzip.level", typ: typeInt, def: "-1", doc: "gzip level when the topic recompresses (accepted; samsa uses its default level)", validate: validGzipLevel},
	{name: "compression.lz4.level", brokerName: "compression.lz4.level", typ: typeInt, def: "9", doc: "lz4 level when the topic recompresses (accepted; samsa uses its default level)", validate: validIntRange(1, 17)},
	{name: "compression.zstd.level", brokerName: "compression.zstd.level", typ: typeInt, def: "3", doc: "zstd level when the topic recompresses (accepted; samsa uses its default level)", validate: validIntRange(-131072, 22)},
	{name: "leader.replication.throttled.replicas", typ: typeList, def: "", doc: "replicas throttled on the leader (accepted; samsa does not throttle replication)", validate: validThrottledReplicas},
	{name: "follower.replication.throttled.replicas", typ: typeList, def: "", doc: "replicas throttled on the follower (accepted; samsa does not throttle replication)", validate: validThrottledReplicas},
	{name: "message.downconversion.enable", brokerName: "log.message.downconversion.enable", typ: typeBoolean, def: "true", doc: "down-conversion for old consumers (samsa serves magic 2 only)", validate: validBool},
	{name: "message.format.version", brokerName: "log.message.format.version", typ: typeString, def: "3.0-IV1", doc: "deprecated: the message format is always v2", validate: validAny},
	{name: "message.timestamp.difference.max.ms", brokerName: "log.message.timestamp.difference.max.ms", typ: typeLong, def: maxLongStr, doc: "deprecated: see message.timestamp.before.max.ms and after.max.ms", validate: validLong(0)},
}

// normalizeConfigs trims values and lowercases booleans, as Kafka's
// ConfigDef parses them. Unknown names are left to validation.
func normalizeConfigs(cfgs map[string]string, def func(name string) *topicConfigDef) map[string]string {
	if cfgs == nil {
		return nil
	}
	out := make(map[string]string, len(cfgs))
	for k, v := range cfgs {
		v = strings.TrimSpace(v)
		if d := def(k); d != nil && d.typ == typeBoolean {
			v = strings.ToLower(v)
		}
		out[k] = v
	}
	return out
}

var topicConfigByName = func() map[string]*topicConfigDef {
	m := map[string]*topicConfigDef{}
	for i := range topicConfigDefs {
		m[topicConfigDefs[i].name] = &topicConfigDefs[i]
	}
	return m
}()

// validateTopicConfigs checks names and values as CreateTopics and
// AlterConfigs must; a non-nil error names the offending config.
func validateTopicConfigs(cfgs map[string]string) error {
	for k, v := range cfgs {
		d := topicConfigByName[k]
		if d == nil {
			return fmt.Errorf("unknown topic config %q", k)
		}
		if err := d.validate(v); err != nil {
			return fmt.Errorf("invalid value for %s: %w", k, err)
		}
	}
	return nil
}

// topicConfigValue resolves a topic config: the topic's own value, then the
// dynamic broker configs (this node's, then the cluster default) under the
// config's broker synonym, then config.toml's topic_defaults, then Kafka's
// default.
func (b *Broker) topicConfigValue(t *topic, name string) (string, int8) {
	if t != nil {
		if v, ok := t.configs()[name]; ok {
			return v, sourceDynamicTopic
		}
	}
	return b.brokerDefault(name)
}

// brokerDefault resolves the default of a topic config, as topics without
// their own value see it.
func (b *Broker) brokerDefault(name string) (string, int8) {
	d := topicConfigByName[name]
	if d.brokerName != "" {
		dyn := b.dynamicConfigs()
		if _, v, ok := dynValue(dyn[b.nodeResource()], d); ok {
			return v, sourceDynamicBroker
		}
		if _, v, ok := dynValue(dyn[""], d); ok {
			return v, sourceDynamicDefaultBroker
		}
		if v, ok := b.staticDefaults()[name]; ok {
			return v, sourceStaticBroker
		}
	}
	return d.def, sourceDefault
}

// topicConfigForBroker maps the dynamic broker configs samsa accepts (the
// log.* synonyms of topic configs, as Kafka's DynamicLogConfig does) to
// their topic configs.
var topicConfigForBroker = func() map[string]*topicConfigDef {
	m := map[string]*topicConfigDef{}
	for i := range topicConfigDefs {
		if d := &topicConfigDefs[i]; d.brokerName != "" {
			m[d.brokerName] = d
		}
	}
	return m
}()

// brokerAlternates are the other broker names of a topic config's default
// after its own, in Kafka's order (log.retention.ms, then .minutes, then
// .hours), with their unit in milliseconds.
var brokerAlternates = map[string][]struct {
	name string
	unit int64
}{
	"retention.ms": {{"log.retention.minutes", 60000}, {"log.retention.hours", 3600000}},
	"segment.ms":   {{"log.roll.hours", 3600000}},
}

// alternateFor reports whether name is one of brokerAlternates.
func alternateFor(name string) bool {
	for _, alts := range brokerAlternates {
		for _, a := range alts {
			if a.name == name {
				return true
			}
		}
	}
	return false
}

// dynValue finds the default of topic config d in one level of dynamic
// broker configs: under its broker name or an alternate, converted to
// milliseconds. key is the broker config it came from.
func dynValue(m map[string]string, d *topicConfigDef) (key, value string, ok bool) {
	if v, ok := m[d.brokerName]; ok {
		return d.brokerName, v, true
	}
	for _, a := range brokerAlternates[d.name] {
		if v, ok := m[a.name]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			if n < 0 {
				return a.name, "-1", true
			}
			return a.name, strconv.FormatInt(n*a.unit, 10), true
		}
	}
	return "", "", false
}

// validateBrokerConfigs checks dynamic broker configs by their broker
// names, with Kafka's codes: a bad value or a read-only config gets
// INVALID_REQUEST. Configs samsa does not know are kept (Kafka keeps
// custom broker configs) and change nothing.
func (b *Broker) validateBrokerConfigs(cfgs map[string]string) *topicError {
	var static []brokerConfigEntry
	for k, v := range cfgs {
		if d := topicConfigForBroker[k]; d != nil {
			if err := d.validate(v); err != nil {
				return kafkaErr(kerr.InvalidRequest, "invalid value for %s: %v", k, err)
			}
			continue
		}
		if alternateFor(k) {
			if err := validIntRange(-1, math.MaxInt32)(v); err != nil {
				return kafkaErr(kerr.InvalidRequest, "invalid value for %s: %v", k, err)
			}
			continue
		}
		if static == nil {
			static = b.brokerConfigs()
		}
		for _, e := range static {
			if e.name == k && e.readOnly {
				return kafkaErr(kerr.InvalidRequest, "cannot update %s dynamically: it is read-only (set it in config.toml and restart)", k)
			}
		}
	}
	return nil
}

// dynamicConfigs is the dynamic broker configs by resource name ("" is the
// cluster default, otherwise a node id), by broker config name. Neither
// level may be modified: changes store a new map.
func (b *Broker) dynamicConfigs() map[string]map[string]string {
	if p := b.dynCfg.Load(); p != nil {
		return *p
	}
	return nil
}

// withResource is a copy of dyn with resource's configs replaced (removed
// when empty), as a broker_configs record says.
func withResource(dyn map[string]map[string]string, resource string, cfgs map[string]string) map[string]map[string]string {
	n := make(map[string]map[string]string, len(dyn)+1)
	for k, v := range dyn {
		n[k] = v
	}
	if len(cfgs) == 0 {
		delete(n, resource)
	} else {
		n[resource] = cfgs
	}
	return n
}

func (b *Broker) nodeResource() string { return strconv.Itoa(int(b.cfg.NodeID)) }

// staticDefaults is config.toml's topic_defaults (by topic config name),
// as last loaded or reloaded. The map must not be modified.
func (b *Broker) staticDefaults() map[string]string {
	if p := b.staticDef.Load(); p != nil {
		return *p
	}
	return nil
}

// reapplyConfigs re-resolves every topic's configs after a broker-level
// default changed.
func (b *Broker) reapplyConfigs() {
	for _, t := range b.topicList() {
		b.applyConfigs(t)
	}
}

func parseLong(s string, def int64) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return def
	}
	return v
}

// logConfig derives the segment configuration of a topic.
func (b *Broker) logConfig(t *topic) segment.Config {
	get := func(name string) string { v, _ := b.topicConfigValue(t, name); return v }
	c := segment.DefaultConfig()
	c.Internal = t.internal
	c.SegmentBytes = parseLong(get("segment.bytes"), c.SegmentBytes)
	c.SegmentMs = parseLong(get("segment.ms"), c.SegmentMs)
	c.RetentionMs = parseLong(get("retention.ms"), c.RetentionMs)
	c.RetentionBytes = parseLong(get("retention.bytes"), c.RetentionBytes)
	c.IndexIntervalBytes = parseLong(get("index.interval.bytes"), c.IndexIntervalBytes)
	c.MaxMessageBytes = parseLong(get("max.message.bytes"), c.MaxMessageBytes)
	c.LogAppendTime = get("message.timestamp.type") == "LogAppendTime"
	c.TimestampBeforeMaxMs = parseLong(get("message.timestamp.before.max.ms"), math.MaxInt64)
	c.TimestampAfterMaxMs = parseLong(get("message.timestamp.after.max.ms"), math.MaxInt64)
	if b.cfg.ProducerIDExpirationMs > 0 {
		c.ProducerExpirationMs = b.cfg.ProducerIDExpirationMs
	}
	c.Delete, c.Compact = false, false
	for _, p := range strings.Split(get("cleanup.policy"), ",") {
		switch strings.TrimSpace(p) {
		case "delete":
			c.Delete = true
		case "compact":
			c.Compact = true
		}
	}
	c.DeleteRetentionMs = parseLong(get("delete.retention.ms"), c.DeleteRetentionMs)
	c.MinCompactionLagMs = parseLong(get("min.compaction.lag.ms"), c.MinCompactionLagMs)
	if r, err := strconv.ParseFloat(get("min.cleanable.dirty.ratio"), 64); err == nil {
		c.MinCleanableRatio = r
	}
	return c
}

// applyConfigs resolves t's configs for its logs and the produce path.
// Called when the topic is created or loaded, and when its configs change.
func (b *Broker) applyConfigs(t *topic) segment.Config {
	get := func(name string) string { v, _ := b.topicConfigValue(t, name); return v }
	pol := &topicPolicy{codec: -1, minISR: 1}
	if v := get("compression.type"); v != "producer" {
		pol.codec, _ = compress.ParseCodec(v)
	}
	for _, p := range strings.Split(get("cleanup.policy"), ",") {
		pol.compacted = pol.compacted || strings.TrimSpace(p) == "compact"
	}
	pol.minISR = int(parseLong(get("min.insync.replicas"), 1))
	cfg := b.logConfig(t)
	pol.logAppendTime, pol.tsBefore, pol.tsAfter = cfg.LogAppendTime, cfg.TimestampBeforeMaxMs, cfg.TimestampAfterMaxMs
	t.policy.Store(pol)
	for _, p := range t.parts() {
		if p.log != nil {
			p.log.SetConfig(cfg)
		}
	}
	return cfg
}

// brokerConfigEntry is one broker config reported by DescribeConfigs.
type brokerConfigEntry struct {
	name, value string
	typ         int8
	source      int8
	readOnly    bool
	def         *topicConfigDef // the topic config it is the default of, if dynamic
}

// brokerConfigs lists the broker configs samsa reports, sorted by name.
func (b *Broker) brokerConfigs() []brokerConfigEntry {
	c := b.cfg
	e := []brokerConfigEntry{
		{name: "node.id", value: strconv.Itoa(int(c.NodeID)), typ: typeInt},
		{name: "broker.id", value: strconv.Itoa(int(c.NodeID)), typ: typeInt},
		{name: "log.dirs", value: c.DataDir, typ: typeString},
		{name: "log.dir", value: c.DataDir, typ: typeString},
		{name: "num.partitions", value: strconv.Itoa(int(c.NumPartitions)), typ: typeInt},
		{name: "default.replication.factor", value: "1", typ: typeInt},
		{name: "auto.create.topics.enable", value: strconv.FormatBool(c.AutoCreateTopics), typ: typeBoolean},
		{name: "socket.request.max.bytes", value: strconv.Itoa(int(c.MaxRequestBytes)), typ: typeInt},
		{name: "max.connections", value: strconv.Itoa(c.MaxConnections), typ: typeInt},
		{name: "connections.max.idle.ms", value: strconv.FormatInt(c.IdleTimeoutMs, 10), typ: typeLong},
		{name: "producer.id.expiration.ms", value: strconv.FormatInt(c.ProducerIDExpirationMs, 10), typ: typeInt},
		{name: "log.retention.check.interval.ms", value: strconv.FormatInt(c.RetentionCheckIntervalMs, 10), typ: typeLong},
		{name: "samsa.durability", value: c.Durability, typ: typeString},
		{name: "samsa.version", value: c.Version, typ: typeString},
		{name: "advertised.listeners", value: b.listenersConfig(true), typ: typeString},
		{name: "listeners", value: b.listenersConfig(false), typ: typeString},
		{name: "listener.security.protocol.map", value: b.protocolMapConfig(), typ: typeString},
		{name: "process.roles", value: "broker,controller", typ: typeList},
		// Security (tools and clients read these: librdkafka's tests
		// check connections.max.reauth.ms before re-authenticating).
		{name: "connections.max.reauth.ms", value: strconv.FormatInt(c.SASL.MaxReauth.Milliseconds(), 10), typ: typeLong},
		{name: "sasl.enabled.mechanisms", value: strings.Join(c.SASL.mechanisms(), ","), typ: typeList},
		{name: "authorizer.class.name", value: authorizerClass(c.ACL.Enabled), typ: typeString},
		{name: "super.users", value: strings.Join(c.ACL.SuperUsers, ";"), typ: typeString},
		{name: "allow.everyone.if.no.acl.found", value: strconv.FormatBool(c.ACL.AllowEveryoneIfNoACL), typ: typeBoolean},
		// Groups and transactions.
		{name: "group.min.session.timeout.ms", value: msString(c.Groups.MinSessionTimeout), typ: typeInt},
		{name: "group.max.session.timeout.ms", value: msString(c.Groups.MaxSessionTimeout), typ: typeInt},
		{name: "group.initial.rebalance.delay.ms", value: msString(c.Groups.InitialRebalanceDelay), typ: typeInt},
		{name: "group.max.size", value: strconv.Itoa(c.Groups.MaxGroupSize), typ: typeInt},
		{name: "group.consumer.session.timeout.ms", value: msString(c.Groups.ConsumerSessionTimeout), typ: typeInt},
		{name: "group.consumer.heartbeat.interval.ms", value: msString(c.Groups.ConsumerHeartbeatInterval), typ: typeInt},
		{name: "offsets.retention.minutes", value: strconv.FormatInt(int64(c.Groups.OffsetsRetention/time.Minute), 10), typ: typeInt},
		{name: "offset.metadata.max.bytes", value: strconv.Itoa(c.Groups.MaxMetadataBytes), typ: typeInt},
		{name: "offsets.topic.num.partitions", value: strconv.Itoa(int(c.OffsetsPartitions)), typ: typeInt},
		{name: "transaction.max.timeout.ms", value: msString(c.Txn.MaxTimeout), typ: typeInt},
		{name: "transactional.id.expiration.ms", value: msString(c.Txn.IDExpiration), typ: typeInt},
		{name: "transaction.state.log.num.partitions", value: strconv.Itoa(int(c.TxnStatePartitions)), typ: typeInt},
		{name: "max.incremental.fetch.session.cache.slots", value: strconv.Itoa(c.FetchSessionSlots), typ: typeInt},
	}
	for i := range e {
		e[i].source = sourceStaticBroker
		e[i].readOnly = true
	}
	// Kafka lists the hour-based forms of the retention and roll defaults
	// (tools read them), and they may be set dynamically.
	dyn := b.dynamicConfigs()
	for _, name := range []string{"log.retention.hours", "log.roll.hours", "log.retention.minutes"} {
		entry := brokerConfigEntry{name: name, value: "168", typ: typeInt, source: sourceDefault}
		if v, ok := dyn[b.nodeResource()][name]; ok {
			entry.value, entry.source = v, sourceDynamicBroker
		} else if v, ok := dyn[""][name]; ok {
			entry.value, entry.source = v, sourceDynamicDefaultBroker
		} else if name == "log.retention.minutes" {
			continue // Kafka's default is null
		}
		e = append(e, entry)
	}
	for i := range topicConfigDefs {
		d := &topicConfigDefs[i]
		if d.brokerName == "" || d.brokerName == d.name && hasEntry(e, d.name) {
			continue
		}
		v, src := b.brokerDefault(d.name)
		e = append(e, brokerConfigEntry{name: d.brokerName, value: v, typ: d.typ, source: src, def: d})
	}
	// Custom configs stored dynamically.
	for _, level := range []struct {
		res string
		src int8
	}{{b.nodeResource(), sourceDynamicBroker}, {"", sourceDynamicDefaultBroker}} {
		for k, v := range dyn[level.res] {
			if !hasEntry(e, k) {
				e = append(e, brokerConfigEntry{name: k, value: v, typ: typeString, source: level.src})
			}
		}
	}
	sort.Slice(e, func(i, j int) bool { return e[i].name < e[j].name })
	return e
}

// authorizerClass is Kafka's authorizer.class.name for an authorizer on
// or off.
func authorizerClass(on bool) string {
	if on {
		return "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	}
	return ""
}

func hasEntry(e []brokerConfigEntry, name string) bool {
	for _, x := range e {
		if x.name == name {
			return true
		}
	}
	return false
}
