package engine

// The group coordinator's wiring. engine/group holds the semantics of the
// group APIs, which register themselves one file each (api_joingroup.go,
// api_offsetcommit.go, ...); this file gives the coordinator its log, the
// internal topic __consumer_offsets, which makes groups and offsets
// durable. The topic is created on first use, as Kafka does
// (FindCoordinator, Metadata asking for it, JoinGroup, OffsetCommit,
// ConsumerGroupHeartbeat), and replayed on start; a standby coordinates
// nothing until it is promoted.

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/group"
	"samsa/netio"
	"samsa/segment"
)

const offsetsTopic = "__consumer_offsets"

// clientHost is the client's address as Kafka reports it: "/1.2.3.4".
func clientHost(req *netio.Request) string {
	host := req.Conn.RemoteAddr()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return "/" + host
}

// responder answers req with a response the coordinator built.
func responder(req *netio.Request) group.Respond {
	return func(r kmsg.Response) { respond(req, r) }
}

// ensureOffsetsTopic creates __consumer_offsets if it does not exist yet.
func (b *Broker) ensureOffsetsTopic() (*topic, *topicError) {
	return b.ensureInternalTopic(offsetsTopic, b.groups.Partitions(), b.cfg.OffsetsSegmentBytes, "the primary coordinates groups")
}

// ensureInternalTopic creates a coordinator's internal topic, compacted
// as Kafka creates it, if it does not exist yet. A standby creates
// nothing: notCoordinator says who does.
func (b *Broker) ensureInternalTopic(name string, partitions int32, segmentBytes int64, notCoordinator string) (*topic, *topicError) {
	if t := b.topic(name); t != nil {
		return t, nil
	}
	if b.pair.IsStandby() {
		return nil, kafkaErr(kerr.NotCoordinator, "%s", notCoordinator)
	}
	configs := map[string]string{
		"cleanup.policy":   "compact",
		"segment.bytes":    strconv.FormatInt(segmentBytes, 10),
		"compression.type": "producer",
	}
	t, terr := b.createTopic(name, partitions, 1, configs, false)
	if terr != nil && terr.code == kerr.TopicAlreadyExists.Code {
		return b.topic(name), nil
	}
	if terr != nil {
		b.logger.Error("cannot create "+name, "err", terr.msg)
	}
	return t, terr
}

// groupBackend gives the coordinator its log.
type groupBackend struct{ b *Broker }

func (gb groupBackend) PartitionExists(topic string, partition int32) bool {
	return gb.b.partition(topic, partition) != nil
}

func (gb groupBackend) Topic(name string) (group.TopicMeta, bool) {
	t := gb.b.topic(name)
	if t == nil {
		return group.TopicMeta{}, false
	}
	return group.TopicMeta{Name: t.name, ID: t.id, Partitions: int32(len(t.parts()))}, true
}

func (gb groupBackend) TopicByID(id [16]byte) (group.TopicMeta, bool) {
	t := gb.b.topicByID(id)
	if t == nil {
		return group.TopicMeta{}, false
	}
	return group.TopicMeta{Name: t.name, ID: t.id, Partitions: int32(len(t.parts()))}, true
}

// TopicNames lists every topic for regex subscriptions, internal ones too:
// Kafka 4 matches a KIP-848 regex against every topic name, and clients
// (franz-go) adopt an internal topic the broker assigns.
func (gb groupBackend) TopicNames() []string {
	ts := gb.b.topicList()
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.name)
	}
	return out
}

func (gb groupBackend) AppendErrorCode(err error) int16 {
	switch {
	case errors.Is(err, segment.ErrBatchTooLarge):
		return kerr.InvalidCommitOffsetSize.Code
	case errors.Is(err, errNotEnoughReplicas):
		return kerr.CoordinatorNotAvailable.Code // as Kafka maps NOT_ENOUGH_REPLICAS for commits
	case errors.Is(err, segment.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code // a transactional commit of a fenced producer
	}
	return kerr.NotCoordinator.Code
}

var errNotEnoughReplicas = errors.New("the standby is not in sync (min.insync.replicas)")

// Append appends recs as one batch. done runs on its own goroutine: it
// takes group locks, and the disk goroutines must never wait on those.
func (gb groupBackend) Append(p int32, recs []group.Record, strict bool, done func(error)) {
	gb.append(p, recs, strict, -1, -1, done)
}

// AppendTxn appends recs as a transactional batch of (pid, epoch).
func (gb groupBackend) AppendTxn(p int32, pid int64, epoch int16, recs []group.Record, done func(error)) {
	gb.append(p, recs, true, pid, epoch, done)
}

func (gb groupBackend) append(p int32, recs []group.Record, strict bool, pid int64, epoch int16, done func(error)) {
	kvs := make([][2][]byte, len(recs))
	for i, r := range recs {
		kvs[i] = [2][]byte{r.Key, r.Value}
	}
	gb.b.appendInternal(offsetsTopic, gb.b.ensureOffsetsTopic, p, kvs, strict, pid, epoch, done)
}

// appendInternal appends kvs as one batch to partition p of an internal
// topic, created by ensure on first use; a transactional batch of (pid,
// epoch) when pid >= 0. The batch is acknowledged as acks=all records are
// (Kafka's offsets.commit.required.acks=-1): fsynced per the durability
// policy and, while a standby follows, on the standby; strict appends also
// fail when fewer replicas than min.insync.replicas are in sync. done runs
// on its own goroutine: the coordinators' callbacks take their locks, and
// the disk goroutines must never wait on those.
func (b *Broker) appendInternal(name string, ensure func() (*topic, *topicError), p int32, kvs [][2][]byte, strict bool, pid int64, epoch int16, done func(error)) {
	fail := func(err error) { go done(err) }
	part := b.partition(name, p)
	if part == nil {
		if _, terr := ensure(); terr != nil {
			fail(terr)
			return
		}
		if part = b.partition(name, p); part == nil {
			fail(fmt.Errorf("%s has no partition %d", name, p))
			return
		}
	}
	minISR := 1
	if strict {
		minISR = part.t.policy.Load().minISR
		if b.pair.Replicated() && (!b.pair.IsPrimary() || minISR > b.inSyncReplicas(part)) {
			fail(errNotEnoughReplicas)
			return
		}
	}
	batch := buildBatch(time.Now().UnixMilli(), kvs...)
	appendFn := part.log.Append
	if pid >= 0 {
		setTxnProducer(batch, pid, epoch)
		appendFn = part.log.AppendCoordinator
	}
	h, err := segment.ParseBatchHeader(batch)
	if err != nil {
		panic("BUG: internal batch does not parse: " + err.Error())
	}
	if _, err := appendFn(batch, &h, b.syncFor(-1), func(err error) {
		if err != nil || !b.pair.Replicated() {
			go done(err)
			return
		}
		part.replica.WaitForStandby(h.LastOffset()+1, minISR, func(code int16) {
			if code != 0 {
				go done(errNotEnoughReplicas)
				return
			}
			go done(nil)
		})
	}); err != nil {
		fail(err)
	}
}

// startGroups creates the coordinator and, if __consumer_offsets exists,
// loads it in the background; group requests get
// COORDINATOR_LOAD_IN_PROGRESS until it is done.
func (b *Broker) startGroups() {
	parts := b.cfg.OffsetsPartitions
	t := b.topic(offsetsTopic)
	if t != nil {
		parts = int32(len(t.parts()))
	}
	b.groups = group.New(b.cfg.Groups, groupBackend{b}, parts, b.logger)
	b.groups.SetOverrides(groupOverrides(b.groupConfigs()))
	if b.pair.IsStandby() {
		b.groups.SetNotCoordinator() // until promoted
		return
	}
	b.loadGroups()
}

// loadGroups replays __consumer_offsets into the coordinator in the
// background, then serves groups.
func (b *Broker) loadGroups() {
	t := b.topic(offsetsTopic)
	if t == nil {
		b.groups.Loaded()
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		start := time.Now()
		n := 0
		for _, p := range t.parts() {
			idx := p.idx
			err := readLogTxn(p.log, 0, func(key, value []byte, h *segment.BatchHeader) error {
				select {
				case <-b.quit:
					return errShuttingDown
				default:
				}
				n++
				if h.IsTransactional() {
					return b.groups.ReplayTxn(key, value, h.ProducerID)
				}
				return b.groups.Replay(key, value)
			}, func(h *segment.BatchHeader, commit bool) {
				b.groups.ReplayMarker(idx, h.ProducerID, commit)
			})
			if errors.Is(err, errShuttingDown) {
				return
			}
			if err != nil {
				b.logger.Error("cannot load groups; skipping the rest of the partition", "partition", p.idx, "err", err)
			}
		}
		b.groups.Loaded()
		b.logger.Info("groups loaded", "records", n, "took", time.Since(start).Round(time.Millisecond))
	}()
}
