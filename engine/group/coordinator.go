// Package group owns Kafka's group coordinator: classic groups' membership
// and rebalances (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), KIP-848
// consumer groups (ConsumerGroupHeartbeat, ConsumerGroupDescribe),
// committed offsets, and the records of the internal __consumer_offsets
// log that make all of them durable. It knows nothing of sockets or
// segments: the engine hands it decoded requests and a Backend that
// appends records. Locks and goroutines: LOCKS.md.
package group

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config holds the coordinator's settings, with Kafka's names in comments.
type Config struct {
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms
	OffsetsRetention      time.Duration // offsets.retention.minutes
	RetentionCheck        time.Duration // offsets.retention.check.interval.ms
	MaxMetadataBytes      int           // offset.metadata.max.bytes
	MaxGroupSize          int           // group.max.size
	// KIP-848 consumer groups.
	ConsumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms
	ConsumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms
}

// DefaultConfig is Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		OffsetsRetention:      7 * 24 * time.Hour,
		RetentionCheck:        10 * time.Minute,
		MaxMetadataBytes:      4096,
		MaxGroupSize:          1000000,

		ConsumerSessionTimeout:    45 * time.Second,
		ConsumerHeartbeatInterval: 5 * time.Second,
	}
}

// Record is one record of __consumer_offsets; a nil Value is a tombstone.
type Record struct{ Key, Value []byte }

// Backend is what the coordinator needs of the broker.
type Backend interface {
	// Append writes recs to partition p of __consumer_offsets and calls
	// done once they are durable (or failed). Appends to one partition
	// complete in the order they were made. strict appends (offset
	// commits) must also meet the topic's min.insync.replicas, as acks=all
	// records do; the others (membership, tombstones) need only this node.
	// Append is called with a group's lock held and done may take it, so
	// done must run on another goroutine, never before Append returns.
	Append(p int32, recs []Record, strict bool, done func(error))
	// PartitionExists reports whether a topic partition exists, for
	// commits.
	PartitionExists(topic string, partition int32) bool
	// Topic and TopicByID describe a topic; TopicNames lists them all
	// (for regex subscriptions).
	Topic(name string) (TopicMeta, bool)
	TopicByID(id [16]byte) (TopicMeta, bool)
	TopicNames() []string
	// AppendTxn is Append (strict) of a transactional batch of producer
	// (pid, epoch), for TxnOffsetCommit: the records stay pending until
	// the transaction's marker (CompleteTxn). An epoch older than the
	// partition knows fails the append.
	AppendTxn(p int32, pid int64, epoch int16, recs []Record, done func(error))
	// AppendErrorCode is the Kafka error code a commit gets when Append
	// failed with err: INVALID_COMMIT_OFFSET_SIZE for a batch too large,
	// NOT_COORDINATOR for storage failures.
	AppendErrorCode(err error) int16
}

// Respond delivers a response; it may be called from any goroutine, and
// often is with a group's lock held.
type Respond func(kmsg.Response)

// Coordinator is the group coordinator of one node.
type Coordinator struct {
	cfg    Config
	be     Backend
	parts  int32 // partitions of __consumer_offsets
	logger *slog.Logger
	now    func() time.Time
	loaded atomic.Bool
	// notCoordinator is set on a standby: groups are served by the
	// primary, and every group request says so.
	notCoordinator atomic.Bool
	mu             sync.Mutex
	groups         map[string]*Group // (mu)
	closed         chan struct{}     // closed by Close
	closeOnce      sync.Once
	expireOnce     sync.Once // the expiry loop starts at the first Loaded
	// deletedWhileLoading names topics deleted during a replay: Loaded
	// deletes their offsets replayed after the deletion too. (No commit
	// can come for a topic created again meanwhile: groups are not served
	// until Loaded.)
	deletedWhileLoading []string // (mu)

	// Transactional offsets (txnoffsets.go): the groups holding pending
	// offsets of each producer; a leaf lock, taken under a Group.mu.
	txnMu     sync.Mutex
	txnGroups map[int64]map[string]bool // (txnMu)
	order     atomic.Uint64             // commit order, see offset.order

	// overrides are the group configs set for single groups (KIP-848's
	// consumer.session.timeout.ms and consumer.heartbeat.interval.ms),
	// by group id; SetOverrides replaces them whole.
	overrides atomic.Pointer[map[string]Overrides]
}

// Overrides is what a group config changes for one group; zero keeps the
// coordinator's setting.
type Overrides struct {
	ConsumerSessionTimeout    time.Duration
	ConsumerHeartbeatInterval time.Duration
}

// SetOverrides replaces every group's config overrides (the engine keeps
// them in the metadata log: IncrementalAlterConfigs on GROUP resources).
// Members take a new session timeout at their next heartbeat.
func (c *Coordinator) SetOverrides(o map[string]Overrides) { c.overrides.Store(&o) }

func (c *Coordinator) override(group string) Overrides {
	if p := c.overrides.Load(); p != nil {
		return (*p)[group]
	}
	return Overrides{}
}

// consumerSessionTimeout is the session timeout of g's KIP-848 members.
func (g *Group) consumerSessionTimeout() time.Duration {
	if d := g.c.override(g.id).ConsumerSessionTimeout; d > 0 {
		return d
	}
	return g.c.cfg.ConsumerSessionTimeout
}

// consumerHeartbeatInterval is the interval g's KIP-848 members are told.
func (g *Group) consumerHeartbeatInterval() time.Duration {
	if d := g.c.override(g.id).ConsumerHeartbeatInterval; d > 0 {
		return d
	}
	return g.c.cfg.ConsumerHeartbeatInterval
}

// New returns a coordinator whose groups live in partitions partitions of
// __consumer_offsets. It answers COORDINATOR_LOAD_IN_PROGRESS until Loaded.
func New(cfg Config, be Backend, partitions int32, logger *slog.Logger) *Coordinator {
	if logger == nil {
		logger = slog.Default()
	}
	return &Coordinator{
		cfg:    cfg,
		be:     be,
		parts:  partitions,
		logger: logger.With("subsystem", "groups"),
		now:    time.Now,
		groups: map[string]*Group{},
		closed: make(chan struct{}),
	}
}

// Partitions is the number of __consumer_offsets partitions.
func (c *Coordinator) Partitions() int32 { return c.parts }

// PartitionFor is the __consumer_offsets partition of a group, as Kafka
// computes it: abs(Java String.hashCode(group)) % partitions.
func PartitionFor(group string, partitions int32) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// Loaded marks the end of replay: groups are served from now on, loaded
// members' sessions start, and offsets expire from time to time.
func (c *Coordinator) Loaded() {
	c.notCoordinator.Store(false)
	now := c.now()
	c.mu.Lock()
	for _, g := range c.groups {
		g.mu.Lock()
		g.afterLoad(now)
		g.mu.Unlock()
	}
	deleted := c.deletedWhileLoading
	c.deletedWhileLoading = nil
	c.mu.Unlock()
	c.loaded.Store(true)
	for _, topic := range deleted {
		c.TopicDeleted(topic)
	}
	c.expireOnce.Do(func() { go c.expireLoop() })
}

// Unload stops serving groups (a primary that steps down): waiting joins
// and syncs get NOT_COORDINATOR, and the state is dropped; Loaded after a
// new replay serves them again.
func (c *Coordinator) Unload() {
	c.notCoordinator.Store(true)
	c.loaded.Store(false)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		g.mu.Lock()
		g.stopLocked(kerr.NotCoordinator.Code)
		g.state = Dead
		g.mu.Unlock()
	}
	c.groups = map[string]*Group{}
	c.txnMu.Lock()
	c.txnGroups = nil
	c.txnMu.Unlock()
}

func (c *Coordinator) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// SetNotCoordinator makes every group request answer NOT_COORDINATOR
// until Loaded: for a standby, whose primary coordinates the groups.
func (c *Coordinator) SetNotCoordinator() { c.notCoordinator.Store(true) }

// loadErr is the error for requests that come before Loaded.
func (c *Coordinator) loadErr() int16 {
	if c.notCoordinator.Load() {
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorLoadInProgress.Code
}

// IsLoaded reports whether the coordinator serves requests.
func (c *Coordinator) IsLoaded() bool { return c.loaded.Load() }

// Close stops the groups' session, rebalance and sync timers and the
// expiry loop. Pending joins and syncs are answered with
// COORDINATOR_NOT_AVAILABLE so clients look again.
func (c *Coordinator) Close() {
	c.closeOnce.Do(c.close)
}

func (c *Coordinator) close() {
	close(c.closed)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		g.mu.Lock()
		g.stopLocked(kerr.CoordinatorNotAvailable.Code)
		g.mu.Unlock()
	}
}

func (c *Coordinator) expireLoop() {
	if c.cfg.RetentionCheck <= 0 {
		return
	}
	t := time.NewTicker(c.cfg.RetentionCheck)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
			c.ExpireOffsets()
		}
	}
}

func (c *Coordinator) group(id string) *Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[id]
}

func (c *Coordinator) groupOrCreate(id string) *Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[id]
	if g == nil {
		g = newGroup(c, id)
		c.groups[id] = g
	}
	return g
}

// sortedGroups lists the groups in id order.
func (c *Coordinator) sortedGroups() []*Group {
	c.mu.Lock()
	out := make([]*Group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// removeGroup drops g from the map if it is still the registered group.
func (c *Coordinator) removeGroup(g *Group) {
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return clientID + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// nullable is s for a Kafka nullable string: nil when empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Generation is a group's current generation (for tests and tools:
// DescribeGroups does not report it).
func (c *Coordinator) Generation(group string) (int32, bool) {
	g := c.group(group)
	if g == nil {
		return 0, false
	}
	g.lock()
	defer g.unlock()
	return g.generation, true
}

// TopicDeleted removes every group's committed offsets of a deleted topic
// (tombstones in __consumer_offsets), so a topic created again under the
// same name starts without them, as in Kafka.
//
// While the coordinator loads, Loaded deletes again what the replay brought
// back after this call.
func (c *Coordinator) TopicDeleted(topic string) {
	if !c.loaded.Load() {
		c.mu.Lock()
		c.deletedWhileLoading = append(c.deletedWhileLoading, topic)
		c.mu.Unlock()
	}
	for _, g := range c.sortedGroups() {
		g.lock()
		var recs []Record
		for k := range g.offsets {
			if k.topic == topic {
				recs = append(recs, offsetTombstone(g.id, k))
				delete(g.offsets, k)
			}
		}
		if len(recs) > 0 {
			c.be.Append(PartitionFor(g.id, c.parts), recs, false, func(err error) {
				if err != nil {
					c.logger.Error("cannot delete offsets of a deleted topic", "group", g.id, "topic", topic, "err", err)
				}
			})
		}
		g.unlock()
	}
}

// GroupStats is what metrics report of one group.
type GroupStats struct {
	Group   string
	State   string
	Members int
	// Committed is each partition's committed offset.
	Committed map[string]map[int32]int64
}

// Stats lists every group with its state, member count and committed
// offsets, for metrics. Any goroutine.
func (c *Coordinator) Stats() []GroupStats {
	var out []GroupStats
	for _, g := range c.sortedGroups() {
		g.mu.Lock()
		gs := GroupStats{Group: g.id, State: g.state.String(), Members: len(g.members), Committed: map[string]map[int32]int64{}}
		if g.cs != nil {
			gs.Members += len(g.cs.members)
		}
		for tp, o := range g.offsets {
			if gs.Committed[tp.topic] == nil {
				gs.Committed[tp.topic] = map[int32]int64{}
			}
			gs.Committed[tp.topic][tp.partition] = o.offset
		}
		g.mu.Unlock()
		out = append(out, gs)
	}
	return out
}
