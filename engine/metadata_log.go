package engine

// The metadata log: the catalog (topics, their configs and partitions,
// dynamic broker configs, producer id blocks, the cluster id and which node
// of a pair leads) is durable as records of the internal log
// __cluster_metadata-0 (docs/ARCHITECTURE.md, "The durable logs"). Each
// record has its type as key and a JSON value. This file is the one place
// that knows the record types:
//
//   - catalogImage.apply decodes a record into an image of the catalog;
//   - syncCatalogLocked makes the live catalog match an image.
//
// Every way a record reaches the catalog goes through those two: the
// primary's own changes (commitMeta: append with fsync, then apply and
// sync), start-up (replay the whole log into an empty image, then sync), a
// running standby (apply what its follower appended, from where the image
// stopped, then sync), and a standby
// whose log tail was truncated (replay the rest into a new image, then
// sync). The image is kept current on every node, so a standby promoted to
// primary, or a primary stepping down, carries on from it. The image
// knows how far into the log it has applied (next), so a standby that
// appended records and failed before applying them catches up on the next
// call.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"samsa/engine/acl"
	"samsa/engine/replica"
	"samsa/segment"
)

const (
	// metadataLogName is the metadata log's directory in the store.
	metadataLogName = "__cluster_metadata-0"
	// metadataLogTopic is the name replica requests give the metadata
	// log, and metadataLogID its topic id (Kafka's for its own metadata
	// topic).
	metadataLogTopic = replica.MetadataTopic
)

var metadataLogID = replica.MetadataID

// The record types (the records' keys) and their JSON values.
const (
	recCluster       = "cluster"        // metaCluster: the cluster id, once
	recTopic         = "topic"          // metaTopic: a topic created, grown, or its configs replaced
	recDeleteTopic   = "delete_topic"   // metaTopic (name, id): a topic deleted
	recProducerIDs   = "producer_ids"   // metaProducerIDs: a block of producer ids reserved
	recLeader        = "leader"         // metaLeader: a promotion
	recBrokerConfigs = "broker_configs" // metaBrokerConfigs: one resource's dynamic broker configs, whole
	recScram         = "scram"          // metaScram: a user's SCRAM credential for a mechanism, set
	recDeleteScram   = "delete_scram"   // metaScram (user, mechanism): a credential removed
	recACL           = "acl"            // acl.Binding: an ACL created
	recDeleteACL     = "delete_acl"     // acl.Binding: an ACL deleted
	recQuota         = "quota"          // metaQuota: a client quota set or removed
	recGroupConfigs  = "group_configs"  // metaGroupConfigs: one group's configs, whole
)

type metaCluster struct {
	ClusterID string `json:"cluster_id"`
}

// metaTopic is a topic as it is after the record: its partition count
// and explicit configs (the whole set).
type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
}

type metaProducerIDs struct {
	End int64 `json:"end"` // ids below End are handed out or reserved
}

// metaLeader records which node leads the pair from which epoch on.
type metaLeader struct {
	Node  int32 `json:"node"`
	Epoch int32 `json:"epoch"`
}

type metaBrokerConfigs struct {
	Resource string            `json:"resource"` // "" (cluster default) or a node id
	Configs  map[string]string `json:"configs,omitempty"`
}

type metaGroupConfigs struct {
	Group   string            `json:"group"`
	Configs map[string]string `json:"configs,omitempty"`
}

// catalogImage is the catalog as the metadata log describes it, record by
// record. It holds no open logs: syncCatalogLocked makes the live catalog
// match it.
type catalogImage struct {
	clusterID string
	topics    map[string]imageTopic // live topics by name
	deleted   map[string]bool       // names deleted and not created again since
	pidEnd    int64                 // ids below are handed out or reserved
	leader    *metaLeader           // the latest leader record, if any
	epoch     int32                 // the highest epoch any leader record named
	dyn       map[string]map[string]string
	groupCfg  map[string]map[string]string // group configs by group id
	// scram is every SCRAM credential; scramChanged: a record changed it
	// since the last sync, which publishes a copy (Broker.scram).
	scram        scramCreds
	scramChanged bool
	// acls is every ACL binding; aclsChanged as scramChanged.
	acls        map[acl.Binding]struct{}
	aclsChanged bool
	// quotas is every client quota; quotasChanged as scramChanged.
	quotas        quotaSet
	quotasChanged bool
	// next is the offset of the metadata log up to which records are
	// applied.
	next int64
	// changed names the topics whose records were applied since the last
	// sync, so that a sync costs what changed, not the catalog's size;
	// all is set instead for an image rebuilt from the whole log. retry
	// names topics whose logs did not all open (a failing disk): every
	// sync tries them again.
	changed map[string]bool
	all     bool
	retry   map[string]bool
}

// imageTopic is a topic's latest record and its parsed id.
type imageTopic struct {
	metaTopic
	id [16]byte
}

func newCatalogImage() *catalogImage {
	return &catalogImage{topics: map[string]imageTopic{}, deleted: map[string]bool{}, all: true}
}

// touch notes that a topic's records changed.
func (img *catalogImage) touch(name string) {
	if img.changed == nil {
		img.changed = map[string]bool{}
	}
	img.changed[name] = true
}

// failed notes that a topic's logs did not all open.
func (img *catalogImage) failed(name string) {
	if img.retry == nil {
		img.retry = map[string]bool{}
	}
	img.retry[name] = true
}

// errUnknownRecord is returned by apply for a record type this version
// does not know (written by a newer samsa); the caller logs and skips it.
var errUnknownRecord = errors.New("unknown metadata record type")

// apply applies one record to the image.
func (img *catalogImage) apply(typ string, value []byte) error {
	switch typ {
	case recCluster:
		m, err := decodeMeta[metaCluster](value)
		if err != nil {
			return err
		}
		img.clusterID = m.ClusterID
	case recTopic:
		m, err := decodeMeta[metaTopic](value)
		if err != nil {
			return err
		}
		id, err := parseTopicID(m.ID)
		if err != nil {
			return err
		}
		if old, ok := img.topics[m.Name]; ok && old.ID == m.ID {
			// Partitions only grow; a record never shrinks a topic.
			m.Partitions = max(m.Partitions, old.Partitions)
		}
		img.topics[m.Name] = imageTopic{metaTopic: m, id: id}
		delete(img.deleted, m.Name)
		img.touch(m.Name)
	case recDeleteTopic:
		m, err := decodeMeta[metaTopic](value)
		if err != nil {
			return err
		}
		delete(img.topics, m.Name)
		img.deleted[m.Name] = true
		img.touch(m.Name)
	case recProducerIDs:
		m, err := decodeMeta[metaProducerIDs](value)
		if err != nil {
			return err
		}
		img.pidEnd = max(img.pidEnd, m.End)
	case recLeader:
		m, err := decodeMeta[metaLeader](value)
		if err != nil {
			return err
		}
		img.leader = &m
		img.epoch = max(img.epoch, m.Epoch)
	case recBrokerConfigs:
		m, err := decodeMeta[metaBrokerConfigs](value)
		if err != nil {
			return err
		}
		img.dyn = withResource(img.dyn, m.Resource, m.Configs)
	case recGroupConfigs:
		m, err := decodeMeta[metaGroupConfigs](value)
		if err != nil {
			return err
		}
		img.groupCfg = withResource(img.groupCfg, m.Group, m.Configs)
	case recScram, recDeleteScram:
		m, err := decodeMeta[metaScram](value)
		if err != nil {
			return err
		}
		if img.scram == nil {
			img.scram = scramCreds{}
		}
		img.scram.apply(m, typ == recDeleteScram)
		img.scramChanged = true
	case recACL, recDeleteACL:
		m, err := decodeMeta[acl.Binding](value)
		if err != nil {
			return err
		}
		if img.acls == nil {
			img.acls = map[acl.Binding]struct{}{}
		}
		if typ == recACL {
			img.acls[m] = struct{}{}
		} else {
			delete(img.acls, m)
		}
		img.aclsChanged = true
	case recQuota:
		m, err := decodeMeta[metaQuota](value)
		if err != nil {
			return err
		}
		if img.quotas == nil {
			img.quotas = quotaSet{}
		}
		img.quotas.apply(m)
		img.quotasChanged = true
	default:
		return fmt.Errorf("%w %q", errUnknownRecord, typ)
	}
	return nil
}

// decodeMeta decodes a record's JSON value.
func decodeMeta[T any](value []byte) (T, error) {
	var m T
	err := json.Unmarshal(value, &m)
	return m, err
}

func (b *Broker) applyRecord(img *catalogImage, typ string, value []byte) error {
	err := img.apply(typ, value)
	if errors.Is(err, errUnknownRecord) {
		b.logger.Warn("skipping unknown metadata record", "type", typ)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot apply %s record: %w", typ, err)
	}
	return nil
}

// replayMetaLog reads the whole metadata log into a new image. Nothing
// may append to the log meanwhile (b.metaMu, or not yet serving).
func (b *Broker) replayMetaLog() (*catalogImage, error) {
	img := newCatalogImage()
	err := readLog(b.meta, func(key, value []byte) error { return b.applyRecord(img, string(key), value) })
	if err != nil {
		return nil, fmt.Errorf("cannot replay the metadata log: %w", err)
	}
	img.next = b.meta.EndOffset()
	return img, nil
}

// commitMeta durably appends one record (fsync) and applies it to the
// catalog. b.metaMu must be held (lockMeta), or the broker not yet serving.
func (b *Broker) commitMeta(typ string, v any) error {
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
	if err := b.applyRecord(b.image, typ, value); err != nil {
		return err
	}
	b.image.next = b.meta.EndOffset()
	return b.syncCatalogLocked()
}

// lockMeta takes b.metaMu for a change of the catalog. The returned unlock
// releases it and then, on a primary, waits until the standby holds the
// metadata log as it is then, even when this caller appended nothing: what
// it read (a producer id of a block another caller just reserved, a topic
// that exists) must survive a failover as acks=all records do. Waiting
// after the unlock means a standby that just died holds up only this
// caller, until it leaves the ISR; a standby that holds it already costs a
// lock.
//
//	unlock := b.lockMeta()
//	defer unlock()
func (b *Broker) lockMeta() (unlock func()) {
	b.metaMu.Lock()
	return func() {
		end := b.meta.EndOffset()
		b.metaMu.Unlock()
		b.metaPart.replica.AwaitStandby(end)
	}
}

// applyMetaLog applies, on a running standby, every record the follower
// appended to the metadata log and the catalog has not applied yet.
func (b *Broker) applyMetaLog() error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	img := b.image
	end := b.meta.EndOffset()
	if img.next >= end {
		return nil
	}
	err := readLogFrom(b.meta, img.next, func(key, value []byte) error { return b.applyRecord(img, string(key), value) })
	if err != nil {
		return fmt.Errorf("cannot apply the metadata log from offset %d: %w", img.next, err)
	}
	img.next = end
	return b.syncCatalogLocked()
}

// resyncCatalog makes the catalog match the metadata log again after its
// tail was truncated: topics it no longer records (or records with another
// id) go, with their data; topics it records are opened.
func (b *Broker) resyncCatalog() error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	img, err := b.replayMetaLog()
	if err != nil {
		return err
	}
	b.image = img
	return b.syncCatalogLocked()
}

// syncCatalogLocked makes the live catalog match b.image, visiting the
// topics whose records changed since the last sync (every topic after a
// replay): topics the image does not hold (or holds with another id) are
// dropped with their data;
// topics it holds are created, or grown to its partition count, and take
// its configs; producer ids, dynamic broker configs, the cluster id and the
// leader epoch follow it. Opening a log can fail (a bad disk): the rest is
// still synced and the next sync tries again. b.metaMu must be held (or
// the broker not yet serving).
func (b *Broker) syncCatalogLocked() error {
	img := b.image
	if img.scramChanged || img.all {
		creds := img.scram.clone()
		b.scram.Store(&creds)
		img.scramChanged = false
	}
	if img.quotasChanged || img.all {
		qs := img.quotas.clone()
		b.quotas.Store(&qs)
		img.quotasChanged = false
		b.applyIPQuotas()
	}
	if (img.aclsChanged || img.all) && b.authz != nil {
		bindings := make([]acl.Binding, 0, len(img.acls))
		for bd := range img.acls {
			bindings = append(bindings, bd)
		}
		b.authz.Set(bindings)
		img.aclsChanged = false
	}
	if img.clusterID != "" && img.clusterID != b.ClusterID() {
		id := img.clusterID
		b.clusterID.Store(&id)
	}
	if img.pidEnd != b.pidEnd {
		// Ids of the last block may have been handed out before: the next
		// id is past it. (The primary's allocProducerID moves pidNext
		// itself, inside the block it has just reserved.)
		b.pidEnd, b.pidNext = img.pidEnd, img.pidEnd
	}
	reapply := false
	if !maps.EqualFunc(img.dyn, b.dynamicConfigs(), maps.Equal) {
		dyn := img.dyn
		b.dynCfg.Store(&dyn)
		reapply = true
	}
	b.setGroupConfigs(img.groupCfg)
	b.pair.ObserveEpoch(img.epoch)
	// Errors are returned for the topics this sync is about (changed by
	// the records just applied, or every topic after a replay); topics
	// only retried from an earlier failure are logged, so that one bad
	// directory does not fail every later change of the catalog.
	names := map[string]bool{}
	for name := range img.changed {
		names[name] = true
	}
	if img.all {
		for _, t := range b.topicList() {
			names[t.name] = true
		}
		for name := range img.topics {
			names[name] = true
		}
	}
	for name := range img.retry {
		if !names[name] {
			names[name] = false // a retry: logged, not returned
		}
	}
	if img.all {
		b.openAllLogs(img)
	}
	img.changed, img.all, img.retry = nil, false, nil
	var errs []error
	fail := func(name string, err error) {
		img.failed(name)
		if names[name] {
			errs = append(errs, err)
		} else {
			b.logger.Warn("still cannot open the logs of a topic", "topic", name, "err", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		m, ok := img.topics[name]
		t := b.topic(name)
		if t != nil && (!ok || m.id != t.id) {
			b.dropTopic(t)
			t = nil
		}
		if !ok {
			continue
		}
		if t == nil {
			// A new topic is listed once all its logs are open; until then
			// every sync tries again (the logs already open stay open in
			// the store, which hands them back).
			t = &topic{name: name, id: m.id, internal: isInternalTopic(name)}
			t.setConfigs(m.Configs)
			if err := b.openPartitions(t, m.Partitions); err != nil {
				fail(name, err)
				continue
			}
			b.mu.Lock()
			b.topics[name] = t
			b.topicIDs[t.id] = t
			b.mu.Unlock()
			if b.serving.Load() {
				b.logger.Info("created topic", "topic", name, "partitions", m.Partitions, "configs", m.Configs)
			}
			continue
		}
		if !maps.Equal(t.configs(), m.Configs) {
			old := t.configs()
			t.setConfigs(m.Configs)
			if !reapply {
				b.applyConfigs(t)
			}
			if b.serving.Load() {
				b.logger.Info("altered topic configs", "topic", name, "changes", configChanges(old, m.Configs))
			}
		}
		if n := len(t.parts()); int32(n) < m.Partitions {
			if err := b.openPartitions(t, m.Partitions); err != nil {
				fail(name, err)
			}
			if b.serving.Load() && len(t.parts()) > n {
				b.logger.Info("added partitions", "topic", name, "from", n, "to", len(t.parts()))
			}
		}
	}
	if reapply {
		b.reapplyConfigs()
	}
	return errors.Join(errs...)
}

// dropTopic removes a topic the image no longer holds, with its data.
func (b *Broker) dropTopic(t *topic) {
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
}
