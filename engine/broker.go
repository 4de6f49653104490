// Package engine owns samsa's Kafka semantics: the API dispatch table, the
// topic catalog (kept in the internal __cluster_metadata log), produce and
// fetch over segment logs, producer ids, configs and limits.
package engine

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"samsa/engine/acl"
	"samsa/engine/group"
	"samsa/engine/replica"
	"samsa/engine/txn"
	"samsa/netio"
	"samsa/netio/kclient"
	"samsa/segment"
	"samsa/segment/compress"
)

// Durability policies: when a produce is acknowledged relative to fsync.
const (
	// DurabilityAcksAll fsyncs (group commit) before answering acks=all;
	// acks=1 is answered once the write reaches the page cache.
	DurabilityAcksAll = "acks-all"
	// DurabilityAlways fsyncs before answering acks=1 too.
	DurabilityAlways = "always"
	// DurabilityNever never waits for fsync (the background flush and the
	// OS write the data out); a crash may lose acknowledged records.
	DurabilityNever = "never"
)

// Config is the broker's typed configuration. cmd/samsa fills it from
// config.toml and flags.
type Config struct {
	NodeID     int32
	Listen     string // host:port of the client listener
	Advertised string // host:port told to clients; "" = the bound address
	// ListenerName and ListenerProtocol name the listener of Listen
	// (PLAINTEXT and PLAINTEXT when empty); others are SetListener's.
	ListenerName, ListenerProtocol string
	// SASL configures the SASL_PLAINTEXT and SASL_SSL listeners.
	SASL SASLConfig
	// ScramUsers are written at start (samsa -add-scram): the first
	// admin user on a fresh box.
	ScramUsers []ScramUser
	// ACL configures the authorizer.
	ACL ACLConfig
	// LinkTrusted: the replication listener admits only the peer (mutual
	// TLS and its principal, checked by netio), so its connections may do
	// anything, as Kafka's inter-broker principal usually may.
	LinkTrusted              bool
	DataDir                  string
	AutoCreateTopics         bool
	NumPartitions            int32
	Durability               string
	FlushIntervalMs          int64 // background fsync of data not yet fsynced; 0 = none
	RetentionCheckIntervalMs int64
	CleanerBackoffMs         int64 // log.cleaner.backoff.ms: how often compacted logs are checked
	ProducerIDExpirationMs   int64
	// MinFreeBytes is the data directory's free-space reserve: below it
	// produce is refused with KAFKA_STORAGE_ERROR while internal logs
	// (offsets, the metadata log) write on. -1: min(256 MiB, 5% of the
	// filesystem); 0: none.
	MinFreeBytes int64
	// RecoveryThreads is how many partition logs are opened (verified,
	// after a crash) and closed at once (num.recovery.threads.per.data.dir);
	// 0: twice the CPUs, at least 4, at most 32.
	RecoveryThreads int
	// OpenSegmentFiles bounds the segment files held open: past it, idle
	// ones are closed and reopened when used, so the partition count is
	// not bound by the open files limit. 0: three quarters of that limit.
	OpenSegmentFiles    int
	MaxRequestBytes     int32
	MaxConnections      int
	MaxInflight         int
	MaxQueuedBytes      int64 // request bytes held across connections (queued.max.request.bytes)
	IdleTimeoutMs       int64
	NumLoops            int
	Sendfile            bool  // fetched records go from page cache to socket by sendfile
	FetchSessionSlots   int   // max.incremental.fetch.session.cache.slots
	OffsetsPartitions   int32 // offsets.topic.num.partitions, when __consumer_offsets is created
	OffsetsSegmentBytes int64 // offsets.topic.segment.bytes
	Groups              group.Config
	// Transactions: __transaction_state's partitions and segment size
	// (transaction.state.log.num.partitions, .segment.bytes) and the
	// coordinator's timeouts.
	TxnStatePartitions   int32
	TxnStateSegmentBytes int64
	Txn                  txn.Config
	// TransactionVersion is the finalized transaction.version feature
	// ApiVersions advertises: 2 lets clients use KIP-890 part 2, 0 or 1
	// keeps every client on the original protocol.
	TransactionVersion int16
	Replication        replica.Config
	// PeerAdvertised is the peer's endpoint (host:port) per listener name,
	// for Metadata and FindCoordinator answers to clients of that
	// listener; a listener not in it gets Replication.PeerClient.
	PeerAdvertised map[string]string
	// PinDiskThread, if set, runs first on each disk goroutine: it locks
	// the goroutine to its OS thread and pins it to CPUs.
	PinDiskThread func()
	// TopicDefaults overrides Kafka's defaults of topic configs, by topic
	// config name (retention.ms, segment.bytes, ...).
	TopicDefaults map[string]string
	// Metrics, if set, get the broker's Prometheus metrics (metrics.go).
	Metrics *Metrics
	// Version is the broker's software version (DescribeConfigs reports
	// it as samsa.version; Kafka's protocol has no other place for it).
	Version string
}

// DefaultConfig is the embedded default: Kafka's defaults on one node.
func DefaultConfig() Config {
	return Config{
		NodeID:                   1,
		Listen:                   "127.0.0.1:9092",
		DataDir:                  "./data",
		AutoCreateTopics:         true,
		NumPartitions:            1,
		Durability:               DurabilityAcksAll,
		FlushIntervalMs:          1000,
		RetentionCheckIntervalMs: 300000,
		CleanerBackoffMs:         15000,
		ProducerIDExpirationMs:   86400000,
		MinFreeBytes:             -1,
		MaxRequestBytes:          104857600,
		MaxConnections:           10000,
		MaxInflight:              64,
		MaxQueuedBytes:           128 << 20,
		IdleTimeoutMs:            600000,
		Sendfile:                 true,
		FetchSessionSlots:        1000,
		OffsetsPartitions:        50,
		OffsetsSegmentBytes:      100 << 20,
		Groups:                   group.DefaultConfig(),
		TxnStatePartitions:       50,
		TxnStateSegmentBytes:     100 << 20,
		Txn:                      txn.DefaultConfig(),
		TransactionVersion:       2,
		Replication:              replica.Config{LagTimeMaxMs: 30000, MinInsyncReplicas: 2, FailoverTimeoutMs: 5000},
	}
}

// Validate checks a configuration for values that cannot work.
func (c *Config) Validate() error {
	switch c.Durability {
	case DurabilityAcksAll, DurabilityAlways, DurabilityNever:
	default:
		return fmt.Errorf("durability must be %q, %q or %q, not %q", DurabilityAcksAll, DurabilityAlways, DurabilityNever, c.Durability)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("invalid listen address %q: %w", c.Listen, err)
	}
	if c.Advertised != "" {
		if _, _, err := net.SplitHostPort(c.Advertised); err != nil {
			return fmt.Errorf("invalid advertised address %q: %w", c.Advertised, err)
		}
	}
	if c.NodeID < 0 {
		return fmt.Errorf("node_id must be >= 0")
	}
	if err := c.Replication.Validate(c.NodeID); err != nil {
		return err
	}
	if c.OffsetsSegmentBytes < 1024 {
		return fmt.Errorf("offsets_topic_segment_bytes must be >= 1024")
	}
	if c.CleanerBackoffMs < 0 {
		return fmt.Errorf("log_cleaner_backoff_ms must be >= 0")
	}
	if c.RecoveryThreads < 0 || c.RecoveryThreads > 1024 {
		return fmt.Errorf("recovery_threads must be between 0 (automatic) and 1024")
	}
	if c.OpenSegmentFiles != 0 && c.OpenSegmentFiles < 16 {
		return fmt.Errorf("open_segment_files must be 0 (automatic) or at least 16")
	}
	if c.OffsetsPartitions < 1 || c.OffsetsPartitions > 1000 {
		return fmt.Errorf("offsets_topic_partitions must be between 1 and 1000")
	}
	if c.TxnStatePartitions < 1 || c.TxnStatePartitions > 1000 {
		return fmt.Errorf("transactions: state_log_partitions must be between 1 and 1000")
	}
	if c.TransactionVersion < 0 || c.TransactionVersion > 2 {
		return fmt.Errorf("transactions: version must be 0, 1 or 2")
	}
	if c.TxnStateSegmentBytes < 1024 {
		return fmt.Errorf("transactions: state_log_segment_bytes must be >= 1024")
	}
	if c.Txn.MaxTimeout <= 0 || c.Txn.IDExpiration <= 0 || c.Txn.AbortInterval <= 0 || c.Txn.ExpireInterval <= 0 {
		return fmt.Errorf("transactions: max_timeout_ms, id_expiration_ms and the cleanup intervals must be > 0")
	}
	switch g := c.Groups; {
	case g.MinSessionTimeout <= 0 || g.MaxSessionTimeout < g.MinSessionTimeout:
		return fmt.Errorf("groups: need 0 < min_session_timeout_ms <= max_session_timeout_ms")
	case g.InitialRebalanceDelay < 0:
		return fmt.Errorf("groups: initial_rebalance_delay_ms must be >= 0")
	case g.MaxGroupSize < 1:
		return fmt.Errorf("groups: max_size must be >= 1")
	case g.OffsetsRetention <= 0:
		return fmt.Errorf("groups: offsets_retention_minutes must be >= 1")
	case g.MaxMetadataBytes < 0:
		return fmt.Errorf("groups: offset_metadata_max_bytes must be >= 0")
	case g.ConsumerSessionTimeout <= 0 || g.ConsumerHeartbeatInterval <= 0 || g.ConsumerHeartbeatInterval >= g.ConsumerSessionTimeout:
		return fmt.Errorf("groups: need 0 < consumer_heartbeat_interval_ms < consumer_session_timeout_ms")
	}
	if c.NumPartitions < 1 {
		return fmt.Errorf("num_partitions must be >= 1")
	}
	if c.MaxRequestBytes < 1024 {
		return fmt.Errorf("max_request_bytes must be >= 1024")
	}
	if c.DataDir == "" {
		return fmt.Errorf("data_dir must be set")
	}
	if err := validateTopicConfigs(c.TopicDefaults); err != nil {
		return fmt.Errorf("topic_defaults: %w", err)
	}
	return nil
}

// withPairDefaults adds what a pair implies to config.toml's topic
// defaults: with a standby, acks=all means both nodes unless a topic says
// otherwise.
func (c *Config) withPairDefaults(defaults map[string]string) map[string]string {
	if c.Replication.Role == replica.RoleStandalone {
		return defaults
	}
	if _, ok := defaults["min.insync.replicas"]; ok {
		return defaults
	}
	out := map[string]string{"min.insync.replicas": strconv.Itoa(c.Replication.MinInsyncReplicas)}
	for k, v := range defaults {
		out[k] = v
	}
	return out
}

// SetTopicDefaults replaces config.toml's topic defaults (a reload): every
// topic without its own value of a config follows the new default at once.
func (b *Broker) SetTopicDefaults(defaults map[string]string) error {
	if err := validateTopicConfigs(defaults); err != nil {
		return fmt.Errorf("topic_defaults: %w", err)
	}
	defaults = b.cfg.withPairDefaults(defaults)
	b.metaMu.Lock() // serializes with config changes and topic creation
	defer b.metaMu.Unlock()
	b.staticDef.Store(&defaults)
	b.reapplyConfigs()
	return nil
}

// SelfCheck asks this broker, over c (a connection to its own client
// listener, netio.Server.DialSelf), for its API versions: it fails if the
// event loops or request handling are stuck.
func (b *Broker) SelfCheck(c net.Conn, timeout time.Duration) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	_, err := kclient.New(c, "samsa-self-check").Request(req, timeout)
	return err
}

func (c *Config) advertised() string {
	if c.Advertised != "" {
		return c.Advertised
	}
	return c.Listen
}

// Broker is the Kafka engine of one node. It implements netio.Handler.
// Its locks, their order and its goroutines are in engine/LOCKS.md.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	store  *segment.Store

	adv   atomic.Pointer[hostPort] // what Metadata tells clients; set by SetAddr
	bound atomic.Pointer[string]   // the client listener's address, once bound
	// lst is every listener but the first (whose endpoint is adv and
	// bound), by name: Metadata answers a client with the endpoint of the
	// listener it came in on. Set by SetListener; copy on write.
	lst atomic.Pointer[[]listenerEndpoint]
	// scram is the SCRAM credentials as of the last sync of the catalog
	// (metadata_log.go), read by SASL authentication.
	scram atomic.Pointer[scramCreds]
	// authz decides what principals may do (authz.go); nil when no
	// authorizer is configured. Its bindings follow the metadata log.
	authz *acl.Authorizer
	// quotas is the client quotas as of the last sync of the catalog;
	// quotaUse counts bytes against them (quotas.go).
	quotas   atomic.Pointer[quotaSet]
	quotaUse quotaTracker
	// ipHook applies the ip quotas to the listeners (SetIPQuotaHook).
	ipHook atomic.Pointer[func(map[string]float64, float64, bool)]
	// authFailures counts refused SASL authentications (/metrics).
	authFailures atomic.Int64

	metaMu    sync.Mutex             // serializes catalog changes and their records
	meta      *segment.Log           // (metaMu for appends) __cluster_metadata-0
	image     *catalogImage          // (metaMu) the catalog as the metadata log says (metadata_log.go)
	serving   atomic.Bool            // set by New once the catalog is loaded and the role settled
	restarted bool                   // set by loadCatalog: the data directory had a catalog
	metaPart  *partition             // meta as a partition, for the standby's fetches
	clusterID atomic.Pointer[string] // set once; on a standby, when replicated
	pidNext   int64                  // (metaMu) next producer id to hand out
	pidEnd    int64                  // (metaMu) end of the durable block

	dynCfg    atomic.Pointer[map[string]map[string]string] // dynamic broker configs (configs.go)
	groupCfg  atomic.Pointer[map[string]map[string]string] // group configs by group id (group_configs.go)
	staticDef atomic.Pointer[map[string]string]            // config.toml topic_defaults

	mu       sync.RWMutex
	topics   map[string]*topic   // (mu)
	topicIDs map[[16]byte]*topic // (mu)

	sessions *sessionCache // fetch sessions (KIP-227)
	// replicaSess is the standby's fetch session, kept apart from the
	// consumers' cache so that a full cache never costs the standby its
	// incremental fetches.
	replicaSessMu sync.Mutex
	replicaSess   *fetchSession // (replicaSessMu)
	// afterTxnVerify, set by tests, runs between a transactional batch's
	// verification and its append.
	afterTxnVerify atomic.Pointer[func(p *partition, pid int64, epoch int16)]
	pair           *replica.Pair // this node's side of the pair (engine/replica); role and epoch
	groups         *group.Coordinator
	txns           *txn.Coordinator

	badLog  netio.LogLimiter // misbehaving clients
	authLog netio.LogLimiter // failed authentication
	ioLog   netio.LogLimiter // read and write failures

	wg       sync.WaitGroup // the group loader and parked fetches (LOCKS.md)
	quit     chan struct{}  // closed by StopWaiting: parked fetches answer, loops stop
	quitOnce sync.Once
}

type topic struct {
	name     string
	id       [16]byte
	configsV atomic.Pointer[map[string]string] // explicit topic configs; replaced whole, never mutated
	partsV   atomic.Pointer[[]*partition]      // replaced whole (CreatePartitions), never mutated
	internal bool
	policy   atomic.Pointer[topicPolicy] // produce-time configs, resolved once
	stats    topicStats                  // traffic counters (metrics.go)
}

// topicPolicy is what the produce path needs of a topic's configs, resolved
// from configs and broker defaults whenever they change.
type topicPolicy struct {
	codec     compress.Codec // compression.type; -1 keeps the producer's codec
	compacted bool           // cleanup.policy includes compact: keys required
	minISR    int            // min.insync.replicas
	// message.timestamp.type LogAppendTime, and CreateTime's bounds
	// (message.timestamp.before.max.ms and after.max.ms; MaxInt64: none).
	logAppendTime     bool
	tsBefore, tsAfter int64
}

// parts lists the topic's partitions. The slice is never modified: adding
// partitions stores a new one.
func (t *topic) parts() []*partition {
	if p := t.partsV.Load(); p != nil {
		return *p
	}
	return nil
}

// addParts appends partitions (copy on write). Callers serialize changes
// (metaMu, or the follower's single goroutine).
func (t *topic) addParts(ps ...*partition) {
	n := append(append(make([]*partition, 0, len(t.parts())+len(ps)), t.parts()...), ps...)
	t.partsV.Store(&n)
}

// configs is the topic's explicit configs; the map must not be modified.
func (t *topic) configs() map[string]string {
	if p := t.configsV.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *topic) setConfigs(m map[string]string) { t.configsV.Store(&m) }

type partition struct {
	t       *topic
	idx     int32
	log     *segment.Log
	replica replica.Log // the pair's view of this log (engine/replica): ISR, high watermark, acks=all waiters
}

// New opens the data directory, recovers every log and the catalog.
func New(cfg Config, logger *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.TopicDefaults = cfg.withPairDefaults(cfg.TopicDefaults)
	if logger == nil {
		logger = slog.Default()
	}
	segment.SetOpenFileLimit(cmp.Or(cfg.OpenSegmentFiles, segment.DefaultOpenFileLimit()))
	store, err := segment.OpenStore(segment.StoreOptions{
		Dir:                    cfg.DataDir,
		FlushInterval:          time.Duration(cfg.FlushIntervalMs) * time.Millisecond,
		RetentionCheckInterval: time.Duration(cfg.RetentionCheckIntervalMs) * time.Millisecond,
		CleanerInterval:        time.Duration(cfg.CleanerBackoffMs) * time.Millisecond,
		Logger:                 logger,
		PinThread:              cfg.PinDiskThread,
		MinFreeBytes:           cfg.MinFreeBytes,
		RecoveryThreads:        cfg.RecoveryThreads,
		OnSync: func() func(time.Duration) {
			if cfg.Metrics == nil {
				return nil
			}
			return cfg.Metrics.observeSync
		}(),
		OnStages: func() func(segment.Stages) {
			if cfg.Metrics == nil {
				return nil
			}
			return cfg.Metrics.observeStages
		}(),
	})
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		logger:   logger.With("subsystem", "engine"),
		store:    store,
		topics:   map[string]*topic{},
		topicIDs: map[[16]byte]*topic{},
		sessions: newSessionCache(cfg.FetchSessionSlots),
		quit:     make(chan struct{}),
	}
	b.staticDef.Store(&cfg.TopicDefaults)
	if cfg.ACL.Enabled {
		b.authz = acl.New(cfg.ACL.SuperUsers, cfg.ACL.AllowEveryoneIfNoACL)
	}
	b.SetAddr(cfg.advertised())
	repl := cfg.Replication
	if cfg.Metrics != nil && repl.ObserveFetch == nil {
		repl.ObserveFetch = cfg.Metrics.ObserveReplicaFetch
	}
	b.pair = replica.NewPair(repl, cfg.NodeID, pairCatalog{b}, logger)
	if err := b.loadCatalog(); err != nil {
		store.Close()
		return nil, err
	}
	if err := store.MarkOpen(); err != nil {
		store.Close()
		return nil, err
	}
	b.checkFileLimit()
	b.pair.Settle(b.restarted)
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Registry.Register(collector{b, cfg.Metrics}); err != nil {
			b.Close()
			return nil, fmt.Errorf("cannot register metrics: %w", err)
		}
	}
	if err := b.addScramUsers(); err != nil {
		b.Close()
		return nil, err
	}
	b.serving.Store(true)
	b.startGroups()
	b.startTxns()
	b.pair.Start()
	return b, nil
}

// SetAddr sets the address Metadata advertises, e.g. once a listener on
// port 0 is bound. An explicit advertised address in the config wins.
func (b *Broker) SetAddr(addr string) {
	b.bound.Store(&addr)
	if b.cfg.Advertised != "" {
		addr = b.cfg.Advertised
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	p, _ := strconv.Atoi(port)
	b.adv.Store(&hostPort{host, int32(p)})
}

type hostPort struct {
	host string
	port int32
}

// listenerEndpoint is a listener's name, protocol, bound and advertised
// addresses.
type listenerEndpoint struct {
	name, protocol, bound string
	adv                   hostPort
}

// SetListener records a listener besides the first (SetAddr): its name,
// security protocol, bound address and the address Metadata tells the
// clients that connect to it ("" = the bound one).
func (b *Broker) SetListener(name, protocol, bound, advertised string) {
	addr := bound
	if advertised != "" {
		addr = advertised
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	p, _ := strconv.Atoi(port)
	var next []listenerEndpoint
	if cur := b.lst.Load(); cur != nil {
		for _, l := range *cur {
			if l.name != name {
				next = append(next, l)
			}
		}
	}
	next = append(next, listenerEndpoint{name: name, protocol: protocol, bound: bound, adv: hostPort{host, int32(p)}})
	b.lst.Store(&next)
}

// advFor is the endpoint Metadata and FindCoordinator give a client that
// came in on the named listener: the first listener's unless it is
// another one.
func (b *Broker) advFor(listener string) *hostPort {
	if cur := b.lst.Load(); cur != nil && listener != "" {
		for i := range *cur {
			if (*cur)[i].name == listener {
				return &(*cur)[i].adv
			}
		}
	}
	return b.adv.Load()
}

// peerFor is the peer's endpoint for a client that came in on the named
// listener.
func (b *Broker) peerFor(listener string) (string, int32) {
	if a, ok := b.cfg.PeerAdvertised[listener]; ok {
		return splitHostPort(a)
	}
	return splitHostPort(b.cfg.Replication.PeerClient)
}

// listenerOf is the listener a request came in on ("" for the first).
func listenerOf(req *netio.Request) string {
	if req == nil || req.Conn == nil {
		return ""
	}
	return req.Conn.Listener()
}

// splitHostPort splits a configured host:port (port -1 if it has none).
func splitHostPort(addr string) (string, int32) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, -1
	}
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

// StopWaiting answers every parked fetch now and stops parking new ones,
// so a shutdown drains quickly.
func (b *Broker) StopWaiting() {
	b.quitOnce.Do(func() { close(b.quit) })
	b.pair.Stop()
	if b.groups != nil {
		b.groups.Close()
	}
	if b.txns != nil {
		b.txns.Close()
	}
}

// Close flushes and closes every log. Requests must already be drained.
func (b *Broker) Close() error {
	b.StopWaiting()
	b.pair.Wait() // first: a promotion under way may still start the group loader
	b.wg.Wait()
	return b.store.Close()
}

// checkFileLimit warns when the segments' files and max_connections come
// near the open files limit (LimitNOFILE): past it, rolling a segment or
// accepting a client fails with EMFILE. Each segment holds a descriptor,
// as Kafka's do; samsa's systemd unit sets LimitNOFILE=1048576.
func (b *Broker) checkFileLimit() {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return
	}
	segs, st := b.store.Segments(), segment.OpenFileStats()
	if st.Limit > 0 && int64(segs) > st.Limit {
		b.logger.Info("more segments than open_segment_files: idle segment files are closed and reopened when used; raise LimitNOFILE (ulimit -n) to keep them all open",
			"segments", segs, "open_segment_files", st.Limit, "limit", lim.Cur)
	}
	held := int64(segs)
	if st.Limit > 0 {
		held = min(held, st.Limit)
	}
	if need := uint64(held + int64(b.cfg.MaxConnections) + 1024); need > lim.Cur {
		b.logger.Warn("the open files limit is low for the segment files and max_connections: connections may be refused; raise LimitNOFILE (ulimit -n)",
			"segment_files", held, "max_connections", b.cfg.MaxConnections, "limit", lim.Cur)
	}
}

// ClusterID is the durable cluster id, generated on first start.
func (b *Broker) ClusterID() string {
	if p := b.clusterID.Load(); p != nil {
		return *p
	}
	return ""
}

func (b *Broker) topic(name string) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topics[name]
}

func (b *Broker) topicByID(id [16]byte) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topicIDs[id]
}

func (b *Broker) partition(name string, idx int32) *partition {
	t := b.topic(name)
	if t == nil || idx < 0 || int(idx) >= len(t.parts()) {
		return nil
	}
	return t.parts()[idx]
}

func newTopicID() [16]byte {
	var id [16]byte
	for id == ([16]byte{}) {
		rand.Read(id[:])
	}
	return id
}

func newClusterID() string {
	id := newTopicID()
	return base64.RawURLEncoding.EncodeToString(id[:])
}

var errShuttingDown = errors.New("broker is shutting down")

// sync reports whether an append with the given acks waits for fsync.
func (b *Broker) syncFor(acks int16) bool {
	switch b.cfg.Durability {
	case DurabilityAlways:
		return acks != 0
	case DurabilityNever:
		return false
	}
	return acks == -1
}

// Status is this node's role ("alone", "primary" or "standby"), the pair's
// leader epoch and the number of topics (internal ones included).
// Storage reports the data directory's free space against its reserve and
// how many logs a storage failure (a full disk, a failed write or fsync)
// has taken offline.
func (b *Broker) Storage() (space segment.DiskSpace, offline int) {
	if b.meta.Err() != nil {
		offline++
	}
	for _, t := range b.topicList() {
		for _, p := range t.parts() {
			if p.log.Err() != nil {
				offline++
			}
		}
	}
	return b.store.Space(), offline
}

func (b *Broker) Status() (role string, epoch int32, topics int) {
	role = b.pair.Role()
	switch {
	case role == replica.RoleStandalone:
		role = "alone"
	case b.pair.Waiting():
		role = "waiting" // for its peer before leading (replica.Pair.Settle)
	}
	b.mu.RLock()
	topics = len(b.topics)
	b.mu.RUnlock()
	return role, b.pair.Epoch(), topics
}

// listenersConfig is the listeners (or advertised.listeners) broker config
// in Kafka's form: NAME://host:port,...
func (b *Broker) listenersConfig(advertised bool) string {
	first, firstAddr := b.firstListener(), *b.bound.Load()
	if advertised {
		a := b.adv.Load()
		firstAddr = net.JoinHostPort(a.host, strconv.Itoa(int(a.port)))
	}
	out := first.name + "://" + firstAddr
	if cur := b.lst.Load(); cur != nil {
		for _, l := range *cur {
			addr := l.bound
			if advertised {
				addr = net.JoinHostPort(l.adv.host, strconv.Itoa(int(l.adv.port)))
			}
			out += "," + l.name + "://" + addr
		}
	}
	return out
}

// protocolMapConfig is listener.security.protocol.map: NAME:PROTOCOL,...
func (b *Broker) protocolMapConfig() string {
	first := b.firstListener()
	out := first.name + ":" + first.protocol
	if cur := b.lst.Load(); cur != nil {
		for _, l := range *cur {
			out += "," + l.name + ":" + l.protocol
		}
	}
	return out
}

// firstListener names the listener of SetAddr (Config.ListenerName and
// ListenerProtocol, PLAINTEXT by default).
func (b *Broker) firstListener() listenerEndpoint {
	return listenerEndpoint{name: cmp.Or(b.cfg.ListenerName, "PLAINTEXT"), protocol: cmp.Or(b.cfg.ListenerProtocol, "PLAINTEXT")}
}
