package replica

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// Replication roles.
const (
	RoleStandalone = ""
	RolePrimary    = "primary"
	RoleStandby    = "standby"
)

// LinkLZ4 is the link_compression value that turns lz4 on.
const LinkLZ4 = "lz4"

// Config describes the hot standby pair, from this node's side.
type Config struct {
	Role       string // RoleStandalone, RolePrimary or RoleStandby
	Listen     string // this node's replication listener, host:port
	BindDevice string // optional NIC for the link (SO_BINDTODEVICE)
	PeerID     int32  // the other node's id
	PeerClient string // the other node's client address, host:port
	PeerLink   string // the other node's replication address, host:port
	// LagTimeMaxMs is replica.lag.time.max.ms: a standby that has not
	// caught up for this long leaves the ISR.
	LagTimeMaxMs int64
	// MinInsyncReplicas is the default min.insync.replicas of topics when
	// a standby is configured.
	MinInsyncReplicas int
	// AutoFailover promotes the standby once the primary has been
	// unreachable on both its link and its client address for
	// FailoverTimeoutMs.
	AutoFailover      bool
	FailoverTimeoutMs int64
	// LinkCompression is "" or "lz4": the link's bytes, both ways, as an
	// lz4 stream (both nodes must agree).
	LinkCompression string
	// StandbyFsync makes the standby fsync what it appends before its
	// next fetch acknowledges it, so an acks=all record is on two disks
	// before it is acknowledged (Kafka's followers do not fsync).
	StandbyFsync bool
	// FetchMaxBytes and FetchResponseMaxBytes bound the standby's
	// fetches: Kafka's replica.fetch.max.bytes (per partition) and
	// replica.fetch.response.max.bytes (0: DefaultFetchMaxBytes,
	// DefaultFetchResponseMaxBytes).
	FetchMaxBytes         int32
	FetchResponseMaxBytes int32
	// LinkTLS, if set, is the client side of a mutually authenticated TLS
	// link (this node's certificate, the CAs of the peer's): every
	// connection to the peer's link address goes through it, under lz4
	// if both are on.
	LinkTLS *tls.Config
	// ClientTLS, if set, is how the standby speaks TLS to the peer's
	// client address (peer_client on an SSL or SASL_SSL listener) when it
	// checks whether the primary still answers before promoting itself.
	ClientTLS *tls.Config
	// ObserveFetch, if set, is called on a standby after each replica
	// fetch that brought records: wait is from sending the fetch to its
	// answer (the primary's wait for new records included), apply from
	// the answer until its records were written (fsynced too with
	// StandbyFsync), when the next fetch may acknowledge them.
	ObserveFetch func(wait, apply time.Duration)
}

// The standby's fetch sizes by default. Kafka's are 1 MiB and 10 MiB, for a
// follower that is one of many fetching from many brokers. A pair's one
// standby copies everything over one link, one fetch at a time, so a
// fetch's size bounds the pair's throughput: with 1 MiB per partition, 8
// partitions and a 60 ms round (the response read, appended and written)
// it is 133 MiB/s, whatever the disk and link could do.
const (
	DefaultFetchMaxBytes         = 8 << 20
	DefaultFetchResponseMaxBytes = 64 << 20
)

func (c *Config) fetchMaxBytes() int32 {
	if c.FetchMaxBytes > 0 {
		return c.FetchMaxBytes
	}
	return DefaultFetchMaxBytes
}

func (c *Config) fetchResponseMaxBytes() int32 {
	if c.FetchResponseMaxBytes > 0 {
		return c.FetchResponseMaxBytes
	}
	return DefaultFetchResponseMaxBytes
}

// Validate checks the configuration of node nodeID.
func (c *Config) Validate(nodeID int32) error {
	switch c.Role {
	case RoleStandalone:
		return nil
	case RolePrimary, RoleStandby:
	default:
		return fmt.Errorf("replication role must be %q, %q or empty, not %q", RolePrimary, RoleStandby, c.Role)
	}
	if c.PeerID < 0 || c.PeerID == nodeID {
		return fmt.Errorf("replication peer_id must be set and differ from node_id")
	}
	for name, a := range map[string]string{"peer_client": c.PeerClient, "peer_link": c.PeerLink} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("replication %s %q: %w", name, a, err)
		}
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("replication listen %q: %w", c.Listen, err)
		}
	}
	if c.LagTimeMaxMs <= 0 {
		return fmt.Errorf("replication lag_time_max_ms must be > 0")
	}
	if c.LinkCompression != "" && c.LinkCompression != LinkLZ4 {
		return fmt.Errorf("replication link_compression must be \"\" or %q", LinkLZ4)
	}
	if c.AutoFailover && c.FailoverTimeoutMs <= 0 {
		return fmt.Errorf("replication failover_timeout_ms must be > 0 with auto_failover")
	}
	for name, v := range map[string]int32{"replica_fetch_max_bytes": c.FetchMaxBytes, "replica_fetch_response_max_bytes": c.FetchResponseMaxBytes} {
		if v != 0 && (v < 64<<10 || v > 256<<20) {
			return fmt.Errorf("replication %s must be 0 (the default) or from 65536 to 268435456, not %d", name, v)
		}
	}
	if c.MinInsyncReplicas < 1 || c.MinInsyncReplicas > 2 {
		return fmt.Errorf("replication min_insync_replicas must be 1 or 2")
	}
	return nil
}
