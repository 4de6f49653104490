package engine

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/segment"
)

// The catalog is durable as records in the internal log
// __cluster_metadata-0 (DESIGN.md: everything durable is a log). Each record
// has the record type as key and a JSON value; replaying the log from the
// start rebuilds the catalog. Records are appended with fsync before the
// change they describe becomes visible.
const metadataLogName = "__cluster_metadata-0"

const (
	recCluster     = "cluster"      // metaCluster
	recTopic       = "topic"        // metaTopic: create, or replace configs
	recDeleteTopic = "delete_topic" // metaTopic (name, id)
	recProducerIDs = "producer_ids" // metaProducerIDs
	recLeader      = "leader"       // metaLeader: a promotion
)

// metaLeader records which node leads the pair from which epoch on.
type metaLeader struct {
	Node  int32 `json:"node"`
	Epoch int32 `json:"epoch"`
}

type metaCluster struct {
	ClusterID string `json:"cluster_id"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
}

type metaProducerIDs struct {
	End int64 `json:"end"` // ids below End are handed out or reserved
}

// decodeMeta decodes a catalog record's JSON value.
func decodeMeta[T any](value []byte) (T, error) {
	var m T
	err := json.Unmarshal(value, &m)
	return m, err
}

// decodeTopic decodes a topic record and its topic id.
func decodeTopic(value []byte) (metaTopic, [16]byte, error) {
	m, err := decodeMeta[metaTopic](value)
	if err != nil {
		return m, [16]byte{}, err
	}
	id, err := parseTopicID(m.ID)
	return m, id, err
}

// producerIDBlock is how many producer ids one durable record reserves.
const producerIDBlock = 1000

// loadCatalog replays the metadata log and opens every partition log.
func (b *Broker) loadCatalog() error {
	meta, err := b.store.Open(metadataLogName, segment.DefaultConfig())
	if err != nil {
		return fmt.Errorf("cannot open metadata log: %w", err)
	}
	b.meta = meta
	b.metaPart = &partition{t: &topic{name: metadataLogTopic, internal: true}, log: meta}
	deleted := map[string]bool{}
	err = b.replayMeta(func(typ string, value []byte) error {
		switch typ {
		case recCluster:
			m, err := decodeMeta[metaCluster](value)
			if err != nil {
				return err
			}
			b.clusterID.Store(&m.ClusterID)
		case recTopic:
			m, id, err := decodeTopic(value)
			if err != nil {
				return err
			}
			if old := b.topics[m.Name]; old != nil && old.id == id {
				old.setConfigs(m.Configs)
				for i := int32(len(old.parts())); i < m.Partitions; i++ {
					old.addParts(&partition{t: old, idx: i})
				}
				return nil
			}
			t := &topic{name: m.Name, id: id, internal: isInternalTopic(m.Name)}
			t.setConfigs(m.Configs)
			for i := int32(0); i < m.Partitions; i++ {
				t.addParts(&partition{t: t, idx: i})
			}
			b.topics[m.Name] = t
			b.topicIDs[id] = t
			delete(deleted, m.Name)
		case recDeleteTopic:
			m, err := decodeMeta[metaTopic](value)
			if err != nil {
				return err
			}
			if t := b.topics[m.Name]; t != nil {
				delete(b.topics, m.Name)
				delete(b.topicIDs, t.id)
			}
			deleted[m.Name] = true
		case recProducerIDs:
			m, err := decodeMeta[metaProducerIDs](value)
			if err != nil {
				return err
			}
			b.pidEnd = max(b.pidEnd, m.End)
		case recLeader:
			m, err := decodeMeta[metaLeader](value)
			if err != nil {
				return err
			}
			b.applyLeader(m, false)
		case recBrokerConfigs:
			m, err := decodeMeta[metaBrokerConfigs](value)
			if err != nil {
				return err
			}
			b.setDynamicConfigs(m.Resource, m.Configs)
		default:
			b.logger.Warn("skipping unknown metadata record", "type", typ)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot replay metadata log: %w", err)
	}
	// Ids of the last block may have been handed out before a crash.
	b.pidNext = b.pidEnd
	if b.ClusterID() == "" && b.cfg.Replication.Role != RoleStandby {
		// A standby gets the cluster id, with everything else, from its
		// primary's metadata log.
		id := newClusterID()
		b.clusterID.Store(&id)
		if err := b.appendMeta(recCluster, metaCluster{ClusterID: id}); err != nil {
			return err
		}
	}
	for _, t := range b.topics {
		cfg := b.applyConfigs(t)
		for _, p := range t.parts() {
			if p.log, err = b.store.Open(partitionDir(t.name, p.idx), cfg); err != nil {
				return fmt.Errorf("cannot open partition %s-%d: %w", t.name, p.idx, err)
			}
		}
	}
	b.removeOrphans(deleted)
	b.logger.Info("catalog loaded", "cluster_id", b.ClusterID(), "topics", len(b.topics), "clean", b.store.WasClean())
	return nil
}

var partitionDirRe = regexp.MustCompile(`^(.+)-([0-9]+)$`)

// removeOrphans deletes the directories of topics the catalog records as
// deleted (a crash can come between the record and the removal). Other
// unknown directories are left alone and reported.
func (b *Broker) removeOrphans(deleted map[string]bool) {
	for _, name := range b.store.Names() {
		m := partitionDirRe.FindStringSubmatch(name)
		if m == nil || name == metadataLogName {
			continue
		}
		idx, _ := strconv.Atoi(m[2])
		t := b.topics[m[1]]
		switch {
		case t != nil && idx < len(t.parts()):
		case deleted[m[1]] && t == nil:
			b.logger.Info("removing directory of deleted topic", "dir", name)
			if err := os.RemoveAll(filepath.Join(b.store.Dir(), name)); err != nil {
				b.logger.Warn("cannot remove directory of deleted topic", "dir", name, "err", err)
			}
		default:
			b.logger.Warn("ignoring directory that belongs to no topic", "dir", name)
		}
	}
}

func partitionDir(topic string, idx int32) string {
	return topic + "-" + strconv.Itoa(int(idx))
}

func hexID(id [16]byte) string { return hex.EncodeToString(id[:]) }

func parseTopicID(s string) ([16]byte, error) {
	var id [16]byte
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 16 {
		return id, fmt.Errorf("invalid topic id %q", s)
	}
	copy(id[:], raw)
	return id, nil
}

// replayMeta calls fn for every record of the metadata log in order.
func (b *Broker) replayMeta(fn func(typ string, value []byte) error) error {
	return readLog(b.meta, func(key, value []byte) error { return fn(string(key), value) })
}

// appendMeta durably appends one catalog record. b.metaMu should be held
// (or the broker not yet serving).
func (b *Broker) appendMeta(typ string, v any) error {
	value, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode %s record: %w", typ, err)
	}
	batch := buildBatch(time.Now().UnixMilli(), [2][]byte{[]byte(typ), value})
	h, err := segment.ParseBatchHeader(batch)
	if err != nil {
		panic("BUG: internal batch does not parse: " + err.Error())
	}
	done := make(chan error, 1)
	if _, err := b.meta.Append(batch, &h, true, func(err error) { done <- err }); err != nil {
		return fmt.Errorf("cannot append %s record: %w", typ, err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("cannot write %s record: %w", typ, err)
	}
	return nil
}

// awaitMetaStandby waits until the standby holds the metadata log as it is
// now. Called after metaMu is released, so a standby that just died holds
// up only this caller, until it leaves the ISR.
func (b *Broker) awaitMetaStandby() { b.awaitStandby(b.metaPart, b.meta.EndOffset()) }

// awaitStandby waits, on a primary, until the standby holds offsets below
// end of p, while it is in the ISR: samsa's own records (catalog, group
// offsets) survive a failover as acks=all records do.
func (b *Broker) awaitStandby(p *partition, end int64) {
	if !b.isPrimary() || p == nil {
		return
	}
	ch := make(chan struct{})
	b.waitForStandby(p, end, 1, func(int16) { close(ch) })
	select {
	case <-ch:
	case <-b.quit:
	}
}

// metaInSync reports whether a catalog record may be written now: with a
// standby and min_insync_replicas 2, only while it is in sync, so that a
// primary cut off from its standby (which may have been promoted) cannot
// acknowledge catalog changes that a failover would lose.
func (b *Broker) metaInSync() bool {
	if !b.replicated() {
		return true
	}
	return b.isPrimary() && (b.cfg.Replication.MinInsyncReplicas <= 1 || b.standbyInSync(b.metaPart))
}

// allocProducerID hands out a new producer id, reserving a durable block
// when the current one is used up.
func (b *Broker) allocProducerID() (int64, error) {
	defer b.awaitMetaStandby() // after the unlock below
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	if b.pidNext >= b.pidEnd {
		end := b.pidEnd + producerIDBlock
		if !b.metaInSync() {
			return 0, errNotEnoughReplicas
		}
		if err := b.appendMeta(recProducerIDs, metaProducerIDs{End: end}); err != nil {
			return 0, err
		}
		b.pidNext, b.pidEnd = b.pidEnd, end
	}
	id := b.pidNext
	b.pidNext++
	return id, nil
}

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// validateTopicName applies Kafka's rules for topic names.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return errors.New(`topic name cannot be "." or ".."`)
	case len(name) > 249:
		return errors.New("topic name is longer than 249 characters")
	case !legalTopicName.MatchString(name):
		return fmt.Errorf("topic name %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", name)
	case name == "__cluster_metadata":
		return errors.New("topic name __cluster_metadata is reserved")
	}
	return nil
}

// isInternalTopic reports whether a topic is one the broker keeps for
// itself; clients may read it but not write or delete it.
func isInternalTopic(name string) bool { return name == offsetsTopic }

// topicError is a Kafka error code with a message for the client.
type topicError struct {
	code int16
	msg  string
}

func (e *topicError) Error() string { return e.msg }

func kafkaErr(err *kerr.Error, format string, args ...any) *topicError {
	return &topicError{code: err.Code, msg: fmt.Sprintf(format, args...)}
}

// createTopic validates and, unless validateOnly, creates a topic. It
// returns the topic (nil if validateOnly) or an error with a Kafka code.
func (b *Broker) createTopic(name string, partitions int32, replication int16, configs map[string]string, validateOnly bool) (*topic, *topicError) {
	if err := validateTopicName(name); err != nil {
		return nil, kafkaErr(kerr.InvalidTopicException, "%v", err)
	}
	if partitions == -1 {
		partitions = b.cfg.NumPartitions
	}
	if partitions < 1 || partitions > maxPartitions {
		return nil, kafkaErr(kerr.InvalidPartitions, "number of partitions must be between 1 and %d, got %d", maxPartitions, partitions)
	}
	brokers := int16(1)
	if b.replicated() {
		brokers = 2 // every log is replicated to the standby
	}
	if replication != -1 && (replication < 1 || replication > brokers) {
		return nil, kafkaErr(kerr.InvalidReplicationFactor, "replication factor %d: %d broker(s) available", replication, brokers)
	}
	configs = normalizeConfigs(configs, func(n string) *topicConfigDef { return topicConfigByName[n] })
	if err := validateTopicConfigs(configs); err != nil {
		return nil, kafkaErr(kerr.InvalidConfig, "%v", err)
	}
	defer b.awaitMetaStandby() // after the unlock below
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	b.mu.RLock()
	_, exists := b.topics[name]
	var collides string
	norm := strings.ReplaceAll(name, ".", "_")
	for other := range b.topics {
		if other != name && strings.ReplaceAll(other, ".", "_") == norm {
			collides = other
		}
	}
	b.mu.RUnlock()
	if exists {
		return nil, kafkaErr(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	if collides != "" {
		return nil, kafkaErr(kerr.InvalidTopicException, "topic %q collides with existing topic %q ('.' and '_' are treated alike)", name, collides)
	}
	if validateOnly {
		return nil, nil
	}
	if !b.metaInSync() {
		return nil, kafkaErr(kerr.NotEnoughReplicas, "the standby is not in sync: topic changes wait for it (min_insync_replicas)")
	}
	t := &topic{name: name, id: newTopicID(), internal: isInternalTopic(name)}
	t.setConfigs(configs)
	if err := b.appendMeta(recTopic, metaTopic{Name: name, ID: hexID(t.id), Partitions: partitions, Configs: configs}); err != nil {
		b.logger.Error("cannot record topic creation", "topic", name, "err", err)
		return nil, kafkaErr(kerr.KafkaStorageError, "cannot record topic: %v", err)
	}
	if terr := b.openPartitions(t, partitions); terr != nil {
		return nil, terr
	}
	b.mu.Lock()
	b.topics[name] = t
	b.topicIDs[t.id] = t
	b.mu.Unlock()
	b.logger.Info("created topic", "topic", name, "partitions", partitions, "configs", configs)
	return t, nil
}

// openPartitions creates the logs of t's partitions up to n (new topics,
// CreatePartitions), after the catalog record that adds them.
func (b *Broker) openPartitions(t *topic, n int32) *topicError {
	cfg := b.applyConfigs(t)
	for i := int32(len(t.parts())); i < n; i++ {
		p := &partition{t: t, idx: i}
		var err error
		if p.log, err = b.store.Open(partitionDir(t.name, i), cfg); err != nil {
			b.logger.Error("cannot create partition log", "topic", t.name, "partition", i, "err", err)
			return kafkaErr(kerr.KafkaStorageError, "cannot create partition %d: %v", i, err)
		}
		if b.isPrimary() {
			p.log.SetLeaderEpoch(b.epoch.Load())
			if b.standbyInSync(b.metaPart) {
				// As in Kafka, a new partition's ISR is its replicas: the
				// standby, following, fetches it within the lag time.
				p.replica.inISR, p.replica.caughtUp = true, time.Now()
			}
		}
		t.addParts(p)
	}
	return nil
}

// deleteTopic removes a topic and its data.
func (b *Broker) deleteTopic(t *topic) *topicError {
	defer b.awaitMetaStandby() // after the unlock below
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	b.mu.RLock()
	cur := b.topics[t.name]
	b.mu.RUnlock()
	if cur != t {
		return kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", t.name)
	}
	if !b.metaInSync() {
		return kafkaErr(kerr.NotEnoughReplicas, "the standby is not in sync: topic changes wait for it (min_insync_replicas)")
	}
	if err := b.appendMeta(recDeleteTopic, metaTopic{Name: t.name, ID: hexID(t.id)}); err != nil {
		return kafkaErr(kerr.KafkaStorageError, "cannot record topic deletion: %v", err)
	}
	b.mu.Lock()
	delete(b.topics, t.name)
	delete(b.topicIDs, t.id)
	b.mu.Unlock()
	for _, p := range t.parts() {
		if err := b.store.Remove(partitionDir(t.name, p.idx)); err != nil {
			b.logger.Warn("cannot remove partition directory", "topic", t.name, "partition", p.idx, "err", err)
		}
	}
	b.logger.Info("deleted topic", "topic", t.name)
	return nil
}

// topicNames lists user topics.
func (b *Broker) topicList() []*topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
