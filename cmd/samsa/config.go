package main

// config.toml: the file a user edits, decoded over the defaults in code,
// and its conversion to the engine's and netio's typed options.

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"samsa/engine"
	"samsa/engine/replica"
	"samsa/netio"
)

// fileConfig is config.toml. Every field has a default set in code
// (defaultFileConfig); unknown keys are an error.
type fileConfig struct {
	NodeID     int32  `toml:"node_id"`
	Listen     string `toml:"listen"`
	Advertised string `toml:"advertised"`
	// Kafka's listeners, advertised.listeners and
	// listener.security.protocol.map (listeners.go); when listeners is
	// set, listen and advertised are not used.
	Listeners                   string `toml:"listeners"`
	AdvertisedListeners         string `toml:"advertised_listeners"`
	ListenerSecurityProtocolMap string `toml:"listener_security_protocol_map"`
	// listenOverride is -listen: the first listener's address.
	listenOverride string
	// tls is [tls] loaded once (loadTLS), shared by the listeners, the
	// link, the standby's probe and the admin listener.
	tls       *tlsSource
	tlsErr    error
	DataDir   string `toml:"data_dir"`
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`

	Broker struct {
		AutoCreateTopics         bool   `toml:"auto_create_topics"`
		NumPartitions            int32  `toml:"num_partitions"`
		Durability               string `toml:"durability"`
		FlushIntervalMs          int64  `toml:"flush_interval_ms"`
		RetentionCheckIntervalMs int64  `toml:"retention_check_interval_ms"`
		CleanerBackoffMs         int64  `toml:"log_cleaner_backoff_ms"`
		ProducerIDExpirationMs   int64  `toml:"producer_id_expiration_ms"`
		FetchSessionSlots        int    `toml:"fetch_session_slots"`
		MinFreeBytes             int64  `toml:"min_free_bytes"`
		RecoveryThreads          int    `toml:"recovery_threads"`
		OpenSegmentFiles         int    `toml:"open_segment_files"`
	} `toml:"broker"`

	Net struct {
		Loops             int  `toml:"loops"`
		MaxInflight       int  `toml:"max_inflight"`
		MoveBufferedBytes int  `toml:"move_buffered_bytes"`
		Sendfile          bool `toml:"sendfile"`
		NetLimits
	} `toml:"net"`

	CPU struct {
		NetIO     string `toml:"netio"`
		Disks     string `toml:"disks"`
		ReusePort bool   `toml:"reuseport"`
	} `toml:"cpu"`

	Groups struct {
		InitialRebalanceDelayMs   int64 `toml:"initial_rebalance_delay_ms"`
		MinSessionTimeoutMs       int64 `toml:"min_session_timeout_ms"`
		MaxSessionTimeoutMs       int64 `toml:"max_session_timeout_ms"`
		MaxSize                   int   `toml:"max_size"`
		OffsetsRetentionMinutes   int64 `toml:"offsets_retention_minutes"`
		OffsetsRetentionCheckMs   int64 `toml:"offsets_retention_check_interval_ms"`
		OffsetMetadataMaxBytes    int   `toml:"offset_metadata_max_bytes"`
		OffsetsTopicNumPartitions int32 `toml:"offsets_topic_partitions"`
		OffsetsTopicSegmentBytes  int64 `toml:"offsets_topic_segment_bytes"`
		ConsumerSessionTimeoutMs  int64 `toml:"consumer_session_timeout_ms"`
		ConsumerHeartbeatMs       int64 `toml:"consumer_heartbeat_interval_ms"`
	} `toml:"groups"`

	Transactions struct {
		MaxTimeoutMs          int64 `toml:"max_timeout_ms"`
		IDExpirationMs        int64 `toml:"id_expiration_ms"`
		AbortCheckIntervalMs  int64 `toml:"abort_check_interval_ms"`
		ExpireCheckIntervalMs int64 `toml:"expire_check_interval_ms"`
		StateLogPartitions    int32 `toml:"state_log_partitions"`
		StateLogSegmentBytes  int64 `toml:"state_log_segment_bytes"`
		Version               int16 `toml:"version"`
	} `toml:"transactions"`

	Replication struct {
		Role              string `toml:"role"`
		Listen            string `toml:"listen"`
		BindDevice        string `toml:"bind_device"`
		PeerID            int32  `toml:"peer_id"`
		PeerClient        string `toml:"peer_client"`
		PeerLink          string `toml:"peer_link"`
		LagTimeMaxMs      int64  `toml:"replica_lag_time_max_ms"`
		MinInsyncReplicas int    `toml:"min_insync_replicas"`
		AutoFailover      bool   `toml:"auto_failover"`
		FailoverTimeoutMs int64  `toml:"failover_timeout_ms"`
		LinkCompression   string `toml:"link_compression"`
		StandbyFsync      bool   `toml:"standby_fsync"`
		// replica.fetch.max.bytes, replica.fetch.response.max.bytes
		FetchMaxBytes         int32 `toml:"replica_fetch_max_bytes"`
		FetchResponseMaxBytes int32 `toml:"replica_fetch_response_max_bytes"`
		// LinkTLS secures the link with mutual TLS ([tls] certificates);
		// PeerPrincipal, if set, is the only client certificate principal
		// the link accepts.
		LinkTLS       bool   `toml:"link_tls"`
		PeerPrincipal string `toml:"peer_principal"`
		// PeerAdvertisedListeners is the peer's advertised_listeners, in
		// the same form: what clients of each listener are told the
		// peer is at.
		PeerAdvertisedListeners string `toml:"peer_advertised_listeners"`
	} `toml:"replication"`

	TLS tlsConfig `toml:"tls"`

	SASL struct {
		EnabledMechanisms string `toml:"enabled_mechanisms"`
		MaxReauthMs       int64  `toml:"connections_max_reauth_ms"`
	} `toml:"sasl"`

	ACL struct {
		Enabled              bool   `toml:"enabled"`
		SuperUsers           string `toml:"super_users"`
		AllowEveryoneIfNoACL bool   `toml:"allow_everyone_if_no_acl_found"`
	} `toml:"acl"`

	// HTTP is the [admin] section (its name in the file, kept for users):
	// the ops HTTP listener, opsserver.go.

	HTTP struct {
		// Listen is the ops HTTP listener's address (/metrics, /healthz,
		// /readyz); "" = off.
		Listen string `toml:"listen"`
		// TLS serves HTTPS with the [tls] certificate.
		TLS bool `toml:"tls"`
		// TokenFile holds the bearer token /metrics requires (its first
		// line); "" = none.
		TokenFile string `toml:"token_file"`
	} `toml:"admin"`

	// TopicDefaults overrides Kafka's topic config defaults by their Kafka
	// names, e.g. "retention.ms" = 86400000.
	TopicDefaults map[string]any `toml:"topic_defaults"`
}

// NetLimits are the [net] keys a reload applies at once (netio.Limits).
type NetLimits struct {
	MaxRequestBytes        int32          `toml:"max_request_bytes"`
	MaxConnections         int            `toml:"max_connections"`
	MaxConnectionsPerIP    int            `toml:"max_connections_per_ip"`
	ConnectionsPerIP       map[string]int `toml:"max_connections_per_ip_overrides"`
	MaxConnectionRate      float64        `toml:"max_connection_rate"`
	MaxConnectionRatePerIP float64        `toml:"max_connection_rate_per_ip"`
	MaxQueuedBytes         int64          `toml:"max_queued_bytes"`
	MaxPreAuthRequestBytes int32          `toml:"max_preauth_request_bytes"`
	IdleTimeoutMs          int64          `toml:"idle_timeout_ms"`
	FrameStallTimeoutMs    int64          `toml:"frame_stall_timeout_ms"`
	FrameTimeoutMs         int64          `toml:"frame_timeout_ms"`
}

// limits converts them for netio.
func (n NetLimits) limits() netio.Limits {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	perIP := map[string]int{}
	for k, v := range n.ConnectionsPerIP {
		if a, err := netip.ParseAddr(k); err == nil {
			k = a.Unmap().String() // as netio writes a client's address
		}
		perIP[k] = v
	}
	return netio.Limits{
		MaxConnections: n.MaxConnections, MaxConnectionsPerIP: n.MaxConnectionsPerIP, ConnectionsPerIP: perIP,
		MaxConnectionRate: n.MaxConnectionRate, MaxConnectionRatePerIP: n.MaxConnectionRatePerIP,
		MaxRequestBytes: n.MaxRequestBytes, MaxPreAuthRequestBytes: n.MaxPreAuthRequestBytes,
		MaxQueuedBytes: n.MaxQueuedBytes, IdleTimeout: ms(n.IdleTimeoutMs),
		FrameStallTimeout: ms(n.FrameStallTimeoutMs), FrameTimeout: ms(n.FrameTimeoutMs),
	}
}

// validate refuses values that make no sense.
func (n NetLimits) validate() error {
	for k, v := range map[string]float64{"max_connections_per_ip": float64(n.MaxConnectionsPerIP), "frame_stall_timeout_ms": float64(n.FrameStallTimeoutMs),
		"frame_timeout_ms": float64(n.FrameTimeoutMs), "max_connection_rate": n.MaxConnectionRate, "max_connection_rate_per_ip": n.MaxConnectionRatePerIP} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("net.%s: %v is not a bound (0 turns it off)", k, v)
		}
	}
	for ip, v := range n.ConnectionsPerIP {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("net.max_connections_per_ip_overrides: %q is not an IP address", ip)
		}
		if v < 0 {
			return fmt.Errorf("net.max_connections_per_ip_overrides.%q: %d is negative (0: no bound)", ip, v)
		}
	}
	return nil
}

// defaultFileConfig is the configuration used for anything config.toml
// leaves out.
func defaultFileConfig() fileConfig {
	e := engine.DefaultConfig()
	var c fileConfig
	c.NodeID, c.Listen, c.DataDir = e.NodeID, e.Listen, e.DataDir
	c.LogLevel, c.LogFormat = "info", "text"
	c.TLS.ClientAuth, c.TLS.PrincipalMappingRules, c.TLS.MinVersion = "none", "DEFAULT", "1.2"
	c.TLS.HandshakeTimeoutMs = 10000
	c.SASL.EnabledMechanisms = "SCRAM-SHA-256,SCRAM-SHA-512"
	c.Broker.AutoCreateTopics = e.AutoCreateTopics
	c.Broker.NumPartitions = e.NumPartitions
	c.Broker.Durability = e.Durability
	c.Broker.FlushIntervalMs = e.FlushIntervalMs
	c.Broker.RetentionCheckIntervalMs = e.RetentionCheckIntervalMs
	c.Broker.CleanerBackoffMs = e.CleanerBackoffMs
	c.Broker.ProducerIDExpirationMs = e.ProducerIDExpirationMs
	c.Broker.FetchSessionSlots = e.FetchSessionSlots
	c.Broker.MinFreeBytes = e.MinFreeBytes
	c.Broker.RecoveryThreads = e.RecoveryThreads
	c.Broker.OpenSegmentFiles = e.OpenSegmentFiles
	g := e.Groups
	c.Groups.InitialRebalanceDelayMs = g.InitialRebalanceDelay.Milliseconds()
	c.Groups.MinSessionTimeoutMs = g.MinSessionTimeout.Milliseconds()
	c.Groups.MaxSessionTimeoutMs = g.MaxSessionTimeout.Milliseconds()
	c.Groups.MaxSize = g.MaxGroupSize
	c.Groups.OffsetsRetentionMinutes = int64(g.OffsetsRetention / time.Minute)
	c.Groups.OffsetsRetentionCheckMs = g.RetentionCheck.Milliseconds()
	c.Groups.OffsetMetadataMaxBytes = g.MaxMetadataBytes
	c.Groups.OffsetsTopicNumPartitions = e.OffsetsPartitions
	c.Groups.OffsetsTopicSegmentBytes = e.OffsetsSegmentBytes
	c.Groups.ConsumerSessionTimeoutMs = g.ConsumerSessionTimeout.Milliseconds()
	c.Groups.ConsumerHeartbeatMs = g.ConsumerHeartbeatInterval.Milliseconds()
	c.Transactions.MaxTimeoutMs = e.Txn.MaxTimeout.Milliseconds()
	c.Transactions.IDExpirationMs = e.Txn.IDExpiration.Milliseconds()
	c.Transactions.AbortCheckIntervalMs = e.Txn.AbortInterval.Milliseconds()
	c.Transactions.ExpireCheckIntervalMs = e.Txn.ExpireInterval.Milliseconds()
	c.Transactions.StateLogPartitions = e.TxnStatePartitions
	c.Transactions.StateLogSegmentBytes = e.TxnStateSegmentBytes
	c.Transactions.Version = e.TransactionVersion
	c.Replication.PeerID = -1
	c.Replication.LagTimeMaxMs = e.Replication.LagTimeMaxMs
	c.Replication.MinInsyncReplicas = e.Replication.MinInsyncReplicas
	c.Replication.FailoverTimeoutMs = e.Replication.FailoverTimeoutMs
	c.Replication.FetchMaxBytes = replica.DefaultFetchMaxBytes
	c.Replication.FetchResponseMaxBytes = replica.DefaultFetchResponseMaxBytes
	c.Net.Loops = e.NumLoops
	c.Net.MaxRequestBytes = e.MaxRequestBytes
	c.Net.MaxConnections = e.MaxConnections
	c.Net.MaxInflight = e.MaxInflight
	c.Net.MoveBufferedBytes = netio.DefaultMoveBufferedBytes
	c.Net.MaxQueuedBytes = e.MaxQueuedBytes
	c.Net.IdleTimeoutMs = e.IdleTimeoutMs
	c.Net.Sendfile = e.Sendfile
	c.Net.MaxPreAuthRequestBytes = netio.DefaultMaxPreAuthRequestBytes
	c.Net.FrameStallTimeoutMs = 30000
	c.Net.FrameTimeoutMs = 60000
	return c
}

// loadConfig reads a config file over the defaults. A missing file is an
// error; unknown keys are an error naming them.
func loadConfig(path string) (fileConfig, error) {
	c := defaultFileConfig()
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return c, fmt.Errorf("cannot read config: %w", err)
		}
		return c, fmt.Errorf("cannot parse config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, 0, len(und))
		for _, k := range und {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return c, fmt.Errorf("unknown config key(s) in %s: %s", path, strings.Join(keys, ", "))
	}
	return c, nil
}

// engineConfig converts the file config to the engine's typed config.
func (c *fileConfig) engineConfig() (engine.Config, error) {
	e := engine.DefaultConfig()
	e.NodeID, e.Listen, e.Advertised, e.DataDir = c.NodeID, c.Listen, c.Advertised, c.DataDir
	specs, err := c.listenerSpecs()
	if err != nil {
		return e, fmt.Errorf("invalid config: %w", err)
	}
	e.Listen, e.Advertised = specs[0].Addr, specs[0].Advertised
	e.ListenerName, e.ListenerProtocol = specs[0].Name, specs[0].Protocol
	e.SASL.Mechanisms = nil
	for _, m := range strings.Split(c.SASL.EnabledMechanisms, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
			e.SASL.Mechanisms = append(e.SASL.Mechanisms, m)
		}
	}
	e.SASL.MaxReauth = time.Duration(c.SASL.MaxReauthMs) * time.Millisecond
	e.ACL.Enabled, e.ACL.AllowEveryoneIfNoACL = c.ACL.Enabled, c.ACL.AllowEveryoneIfNoACL
	e.ACL.SuperUsers = nil
	for _, u := range strings.FieldsFunc(c.ACL.SuperUsers, func(r rune) bool { return r == ';' || r == ',' }) {
		u = strings.TrimSpace(u)
		if kind, name, ok := strings.Cut(u, ":"); !ok || kind == "" || name == "" {
			return e, fmt.Errorf("invalid config: acl.super_users: %q is not TYPE:NAME (User:admin)", u)
		}
		e.ACL.SuperUsers = append(e.ACL.SuperUsers, u)
	}
	if err := e.SASL.Validate(); err != nil {
		return e, fmt.Errorf("invalid config: %w", err)
	}
	if usesTLS(specs) {
		if _, err := c.loadTLS(); err != nil {
			return e, fmt.Errorf("invalid config: %w", err)
		}
	}
	e.AutoCreateTopics = c.Broker.AutoCreateTopics
	e.NumPartitions = c.Broker.NumPartitions
	e.Durability = c.Broker.Durability
	e.FlushIntervalMs = c.Broker.FlushIntervalMs
	e.RetentionCheckIntervalMs = c.Broker.RetentionCheckIntervalMs
	e.CleanerBackoffMs = c.Broker.CleanerBackoffMs
	e.ProducerIDExpirationMs = c.Broker.ProducerIDExpirationMs
	e.FetchSessionSlots = c.Broker.FetchSessionSlots
	e.MinFreeBytes = c.Broker.MinFreeBytes
	e.RecoveryThreads = c.Broker.RecoveryThreads
	e.OpenSegmentFiles = c.Broker.OpenSegmentFiles
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	e.Groups.InitialRebalanceDelay = ms(c.Groups.InitialRebalanceDelayMs)
	e.Groups.MinSessionTimeout = ms(c.Groups.MinSessionTimeoutMs)
	e.Groups.MaxSessionTimeout = ms(c.Groups.MaxSessionTimeoutMs)
	e.Groups.MaxGroupSize = c.Groups.MaxSize
	e.Groups.OffsetsRetention = time.Duration(c.Groups.OffsetsRetentionMinutes) * time.Minute
	e.Groups.RetentionCheck = ms(c.Groups.OffsetsRetentionCheckMs)
	e.Groups.MaxMetadataBytes = c.Groups.OffsetMetadataMaxBytes
	e.OffsetsPartitions = c.Groups.OffsetsTopicNumPartitions
	e.OffsetsSegmentBytes = c.Groups.OffsetsTopicSegmentBytes
	e.Groups.ConsumerSessionTimeout = ms(c.Groups.ConsumerSessionTimeoutMs)
	e.Groups.ConsumerHeartbeatInterval = ms(c.Groups.ConsumerHeartbeatMs)
	e.Txn.MaxTimeout = ms(c.Transactions.MaxTimeoutMs)
	e.Txn.IDExpiration = ms(c.Transactions.IDExpirationMs)
	e.Txn.AbortInterval = ms(c.Transactions.AbortCheckIntervalMs)
	e.Txn.ExpireInterval = ms(c.Transactions.ExpireCheckIntervalMs)
	e.TxnStatePartitions = c.Transactions.StateLogPartitions
	e.TxnStateSegmentBytes = c.Transactions.StateLogSegmentBytes
	e.TransactionVersion = c.Transactions.Version
	e.Replication = replica.Config{Role: c.Replication.Role, Listen: c.Replication.Listen,
		BindDevice: c.Replication.BindDevice, PeerID: c.Replication.PeerID, PeerClient: c.Replication.PeerClient,
		PeerLink: c.Replication.PeerLink, LagTimeMaxMs: c.Replication.LagTimeMaxMs,
		MinInsyncReplicas: c.Replication.MinInsyncReplicas, AutoFailover: c.Replication.AutoFailover,
		FailoverTimeoutMs: c.Replication.FailoverTimeoutMs, LinkCompression: c.Replication.LinkCompression,
		StandbyFsync: c.Replication.StandbyFsync, FetchMaxBytes: c.Replication.FetchMaxBytes,
		FetchResponseMaxBytes: c.Replication.FetchResponseMaxBytes}
	if c.Replication.Role != replica.RoleStandalone && c.Replication.Role != "" {
		if e.PeerAdvertised, err = peerAdvertised(c.Replication.PeerAdvertisedListeners, specs); err != nil {
			return e, fmt.Errorf("invalid config: %w", err)
		}
		if c.Replication.AutoFailover && (specs[0].Protocol == protoSSL || specs[0].Protocol == protoSASLSSL) {
			// The standby asks the primary's client address (peer_client:
			// the peer's first listener, configured as this one) whether
			// it answers before it promotes itself: over TLS there.
			src, err := c.loadTLS()
			if err != nil {
				return e, fmt.Errorf("invalid config: auto_failover with an %s first listener: %w", specs[0].Protocol, err)
			}
			e.Replication.ClientTLS = src.probeClientConfig()
		}
		switch {
		case c.Replication.LinkTLS:
			src, err := c.loadTLS()
			if err != nil {
				return e, fmt.Errorf("invalid config: replication.link_tls: %w", err)
			}
			if e.Replication.LinkTLS, err = src.linkClientConfig(); err != nil {
				return e, fmt.Errorf("invalid config: replication.link_tls: %w", err)
			}
			e.LinkTrusted = true
		case c.ACL.Enabled:
			return e, errors.New("invalid config: with [acl] enabled the replication link needs link_tls = true (mutual TLS), or anyone reaching it could follow or pose as the peer")
		case c.Replication.PeerPrincipal != "":
			return e, errors.New("invalid config: replication.peer_principal needs link_tls = true")
		}
	}
	e.NumLoops = c.Net.Loops
	e.MaxRequestBytes = c.Net.MaxRequestBytes
	e.MaxConnections = c.Net.MaxConnections
	e.MaxInflight = c.Net.MaxInflight
	e.MaxQueuedBytes = c.Net.MaxQueuedBytes
	e.IdleTimeoutMs = c.Net.IdleTimeoutMs
	e.Sendfile = c.Net.Sendfile
	if e.TopicDefaults, err = c.topicDefaults(); err != nil {
		return e, err
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("invalid config: %w", err)
	}
	disks, err := parseCPUList(c.CPU.Disks)
	if err != nil {
		return e, fmt.Errorf("invalid config: cpu.disks: %w", err)
	}
	if len(disks) > 0 {
		e.PinDiskThread = func() {
			if err := pinThread(disks); err != nil {
				slog.Warn("disk goroutine not pinned", "err", err)
			}
		}
	}
	return e, nil
}

// topicDefaults converts [topic_defaults] to strings, as Kafka configs are.
func (c *fileConfig) topicDefaults() (map[string]string, error) {
	if len(c.TopicDefaults) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for k, v := range c.TopicDefaults {
		switch x := v.(type) {
		case string:
			out[k] = x
		case int64:
			out[k] = strconv.FormatInt(x, 10)
		case float64:
			out[k] = strconv.FormatFloat(x, 'g', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(x)
		default:
			return nil, fmt.Errorf("topic_defaults.%s: unsupported value %v", k, v)
		}
	}
	return out, nil
}

// netOptions converts the file config to the network layer's options (without the
// logger).
func (c *fileConfig) netOptions(e engine.Config) (netio.Options, error) {
	l := c.Net.limits()
	// The engine's view wins where it has one (tests set it directly).
	l.MaxRequestBytes, l.MaxConnections, l.MaxQueuedBytes = e.MaxRequestBytes, e.MaxConnections, e.MaxQueuedBytes
	l.IdleTimeout = time.Duration(e.IdleTimeoutMs) * time.Millisecond
	o := netio.Options{
		Addr:        e.Listen,
		NumLoops:    e.NumLoops,
		Limits:      l,
		MaxInflight: e.MaxInflight,
		NoSendfile:  !e.Sendfile,
		ReusePort:   c.CPU.ReusePort,
		// Past this a pipelining client's unread input moves its
		// connection to a transport that stops reading (TCP pushes back).
		MoveBufferedBytes: c.Net.MoveBufferedBytes,
	}
	if err := c.Net.validate(); err != nil {
		return o, fmt.Errorf("invalid config: %w", err)
	}
	if m := c.Net.MoveBufferedBytes; m < 1<<20 || int64(m) >= int64(e.MaxRequestBytes)+64<<20 {
		return o, fmt.Errorf("invalid config: net.move_buffered_bytes: %d is not between 1 MiB and max_request_bytes + 64 MiB (where a paused connection is closed)", m)
	}
	loops, err := parseCPUList(c.CPU.NetIO)
	if err != nil {
		return o, fmt.Errorf("invalid config: cpu.netio: %w", err)
	}
	if len(loops) > 0 {
		o.PinLoop = func(n int) {
			// One CPU per loop, round robin over the list.
			if err := pinThread(loops[n%len(loops) : n%len(loops)+1]); err != nil {
				slog.Warn("event loop not pinned", "err", err)
			}
		}
	}
	return o, nil
}

// newLogger builds the process logger from log_level and log_format. Its
// level is level, set from log_level, so a reload can change it.
func (c *fileConfig) newLogger(level *slog.LevelVar) (*slog.Logger, error) {
	lvl, err := c.level()
	if err != nil {
		return nil, err
	}
	level.Set(lvl)
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("invalid log_format %q (text or json)", c.LogFormat)
}

func (c *fileConfig) level() (slog.Level, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return lvl, fmt.Errorf("invalid log_level %q (debug, info, warn or error)", c.LogLevel)
	}
	return lvl, nil
}
