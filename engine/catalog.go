package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/segment"
)

// producerIDBlock is how many producer ids one durable record reserves.
const producerIDBlock = 1000

// loadCatalog replays the metadata log and opens every partition log.
func (b *Broker) loadCatalog() error {
	metaCfg := segment.DefaultConfig()
	metaCfg.Internal = true
	meta, err := b.store.Open(metadataLogName, metaCfg)
	if err != nil {
		return fmt.Errorf("cannot open metadata log: %w", err)
	}
	b.meta = meta
	b.metaPart = &partition{t: &topic{name: metadataLogTopic, id: metadataLogID, internal: true}, log: meta}
	b.metaPart.replica.Init(b.pair, metadataLogTopic, metadataLogID, 0, meta)
	if b.image, err = b.replayMetaLog(); err != nil {
		return err
	}
	if err := b.syncCatalogLocked(); err != nil {
		return err
	}
	if l := b.image.leader; l != nil {
		// The latest leader record says which node leads: a promotion
		// outlives a restart.
		b.pair.SetRole(l.Node)
	}
	b.restarted = b.ClusterID() != ""
	if b.ClusterID() == "" && !b.pair.IsStandby() {
		// A standby gets the cluster id, with everything else, from its
		// primary's metadata log.
		if err := b.commitMeta(recCluster, metaCluster{ClusterID: newClusterID()}); err != nil {
			return err
		}
	}
	b.removeOrphans(b.image.deleted)
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

// metaInSync reports whether a catalog record may be written now: with a
// standby and min_insync_replicas 2, only while it is in sync, so that a
// primary cut off from its standby (which may have been promoted) cannot
// acknowledge catalog changes that a failover would lose.
func (b *Broker) metaInSync() bool {
	if !b.pair.Replicated() {
		return true
	}
	return b.pair.IsPrimary() && (b.cfg.Replication.MinInsyncReplicas <= 1 || b.metaPart.replica.InSync())
}

// allocProducerID hands out a new producer id, reserving a durable block
// when the current one is used up.
func (b *Broker) allocProducerID() (int64, error) {
	unlock := b.lockMeta()
	defer unlock()
	if b.pidNext >= b.pidEnd {
		if !b.metaInSync() {
			return 0, errNotEnoughReplicas
		}
		next := b.pidEnd
		if err := b.commitMeta(recProducerIDs, metaProducerIDs{End: b.pidEnd + producerIDBlock}); err != nil {
			return 0, err
		}
		b.pidNext = next // the block just reserved starts here
	}
	id := b.pidNext
	b.pidNext++
	return id, nil
}

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// validateTopicName applies Kafka's rules for the name of a topic to
// create.
func validateTopicName(name string) error {
	if err := legalTopic(name); err != nil {
		return err
	}
	if name == "__cluster_metadata" {
		return errors.New("topic name __cluster_metadata is reserved")
	}
	return nil
}

// legalTopic is Kafka's Topic.validate: what any request naming a topic
// checks first (INVALID_TOPIC_EXCEPTION).
func legalTopic(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return errors.New(`topic name cannot be "." or ".."`)
	case len(name) > 249:
		return errors.New("topic name is longer than 249 characters")
	case !legalTopicName.MatchString(name):
		return fmt.Errorf("topic name %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", name)
	}
	return nil
}

// isInternalTopic reports whether a topic is one the broker keeps for
// itself; clients may read it but not write or delete it.
func isInternalTopic(name string) bool { return name == offsetsTopic || name == txnStateTopic }

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
	if b.pair.Replicated() {
		brokers = 2 // every log is replicated to the standby
	}
	if replication != -1 && (replication < 1 || replication > brokers) {
		return nil, kafkaErr(kerr.InvalidReplicationFactor, "replication factor %d: %d broker(s) available", replication, brokers)
	}
	configs = normalizeConfigs(configs, func(n string) *topicConfigDef { return topicConfigByName[n] })
	if err := validateTopicConfigs(configs); err != nil {
		return nil, kafkaErr(kerr.InvalidConfig, "%v", err)
	}
	unlock := b.lockMeta()
	defer unlock()
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
	if err := b.commitMeta(recTopic, metaTopic{Name: name, ID: hexID(newTopicID()), Partitions: partitions, Configs: configs}); err != nil {
		b.logger.Error("cannot create topic", "topic", name, "err", err)
		return nil, kafkaErr(kerr.KafkaStorageError, "cannot create topic: %v", err)
	}
	return b.topic(name), nil
}

// openAllLogs opens, in parallel, the logs of every partition the image
// holds that is not open yet (a replay at start-up, or after a standby
// copied its primary's catalog), so that openPartitions finds them open.
// What cannot be opened is left for openPartitions to report.
func (b *Broker) openAllLogs(img *catalogImage) {
	var specs []segment.LogSpec
	for _, name := range slices.Sorted(maps.Keys(img.topics)) {
		m := img.topics[name]
		t := b.topic(name)
		if t != nil && t.id != m.id {
			continue // replaced: the loop drops it first
		}
		have := int32(0)
		if t != nil {
			have = int32(len(t.parts()))
		}
		if have >= m.Partitions {
			continue
		}
		probe := &topic{name: name, id: m.id, internal: isInternalTopic(name)}
		probe.setConfigs(m.Configs)
		cfg := b.logConfig(probe)
		for i := have; i < m.Partitions; i++ {
			specs = append(specs, segment.LogSpec{Name: partitionDir(name, i), Config: cfg})
		}
	}
	if len(specs) == 0 {
		return
	}
	start := time.Now()
	b.store.OpenAll(specs, nil)
	b.logger.Info("partition logs opened", "logs", len(specs), "elapsed", time.Since(start).Round(time.Millisecond))
}

// openPartitions opens (creating them if new) the logs of t's partitions
// up to n, once the metadata log holds the record that adds them.
func (b *Broker) openPartitions(t *topic, n int32) error {
	cfg := b.applyConfigs(t)
	for i := int32(len(t.parts())); i < n; i++ {
		p := &partition{t: t, idx: i}
		var err error
		if p.log, err = b.store.Open(partitionDir(t.name, i), cfg); err != nil {
			b.logger.Error("cannot open partition log", "topic", t.name, "partition", i, "err", err)
			return fmt.Errorf("cannot open partition %s-%d: %w", t.name, i, err)
		}
		p.replica.Init(b.pair, t.name, t.id, i, p.log)
		if b.serving.Load() && b.pair.IsPrimary() {
			// A partition created while serving leads at the pair's
			// epoch (at start-up New sets every log's epoch once the
			// role is settled).
			p.log.SetLeaderEpoch(b.pair.Epoch())
			if b.metaPart.replica.InSync() {
				p.replica.JoinISR()
			}
		}
		t.addParts(p)
	}
	return nil
}

// deleteTopic removes a topic and its data.
func (b *Broker) deleteTopic(t *topic) *topicError {
	unlock := b.lockMeta()
	defer unlock()
	if b.topic(t.name) != t {
		return kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", t.name)
	}
	if !b.metaInSync() {
		return kafkaErr(kerr.NotEnoughReplicas, "the standby is not in sync: topic changes wait for it (min_insync_replicas)")
	}
	if err := b.commitMeta(recDeleteTopic, metaTopic{Name: t.name, ID: hexID(t.id)}); err != nil {
		return kafkaErr(kerr.KafkaStorageError, "cannot delete topic: %v", err)
	}
	return nil
}

// topicList lists every topic (internal ones too), by name.
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
