package engine

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

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
		if v, ok := dyn[b.nodeResource()][d.brokerName]; ok {
			return v, sourceDynamicBroker
		}
		if v, ok := dyn[""][d.brokerName]; ok {
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

// validateBrokerConfigs checks dynamic broker configs by their broker
// names. A known but static config gets INVALID_REQUEST, as in Kafka.
func (b *Broker) validateBrokerConfigs(cfgs map[string]string) *topicError {
	for k, v := range cfgs {
		d := topicConfigForBroker[k]
		if d == nil {
			if hasEntry(b.brokerConfigs(), k) {
				return kafkaErr(kerr.InvalidRequest, "cannot update %s dynamically: it is read-only (set it in config.toml and restart)", k)
			}
			return kafkaErr(kerr.InvalidConfig, "unknown or non-dynamic broker config %q (dynamic: the log.* defaults of topic configs, e.g. log.retention.ms)", k)
		}
		if err := d.validate(v); err != nil {
			return kafkaErr(kerr.InvalidConfig, "invalid value for %s: %v", k, err)
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

// setDynamicConfigs replaces one resource's dynamic broker configs.
func (b *Broker) setDynamicConfigs(resource string, cfgs map[string]string) {
	n := map[string]map[string]string{}
	for k, v := range b.dynamicConfigs() {
		n[k] = v
	}
	if len(cfgs) == 0 {
		delete(n, resource)
	} else {
		n[resource] = cfgs
	}
	b.dynCfg.Store(&n)
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
	t.policy.Store(pol)
	cfg := b.logConfig(t)
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
		{name: "advertised.listeners", value: "PLAINTEXT://" + c.advertised(), typ: typeString},
		{name: "listeners", value: "PLAINTEXT://" + c.Listen, typ: typeString},
		{name: "process.roles", value: "broker,controller", typ: typeList},
	}
	for i := range e {
		e[i].source = sourceStaticBroker
		e[i].readOnly = true
	}
	// Kafka reports the hour-based forms of the retention and roll
	// defaults; tools read them.
	hours := func(name, ms string) {
		if v, src := b.topicConfigValue(nil, ms); src == sourceDefault {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n%3600000 == 0 {
				e = append(e, brokerConfigEntry{name: name, value: strconv.FormatInt(n/3600000, 10), typ: typeInt, source: sourceDefault, readOnly: true})
			}
		}
	}
	hours("log.retention.hours", "retention.ms")
	hours("log.roll.hours", "segment.ms")
	for i := range topicConfigDefs {
		d := &topicConfigDefs[i]
		if d.brokerName == "" || d.brokerName == d.name && hasEntry(e, d.name) {
			continue
		}
		v, src := b.brokerDefault(d.name)
		e = append(e, brokerConfigEntry{name: d.brokerName, value: v, typ: d.typ, source: src, def: d})
	}
	sort.Slice(e, func(i, j int) bool { return e[i].name < e[j].name })
	return e
}

func hasEntry(e []brokerConfigEntry, name string) bool {
	for _, x := range e {
		if x.name == name {
			return true
		}
	}
	return false
}
