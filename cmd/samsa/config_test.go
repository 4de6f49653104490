package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"samsa/netio"
)

// configFile writes text to a config.toml in a fresh directory.
func configFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The shipped config.toml is the embedded default: loading it changes
// nothing.
func TestShippedConfigIsDefault(t *testing.T) {
	c, err := loadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := defaultFileConfig()
	if len(c.TopicDefaults) == 0 {
		c.TopicDefaults = nil // an empty [topic_defaults] table
	}
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("config.toml differs from the defaults:\n%+v\n%+v", c, d)
	}
	e, err := c.engineConfig()
	if err != nil {
		t.Fatal(err)
	}
	if e.Listen != "127.0.0.1:9092" || e.DataDir != "./data" {
		t.Fatalf("default listen %s data %s", e.Listen, e.DataDir)
	}
}

func TestUnknownKeysNamed(t *testing.T) {
	f := func(text string, want ...string) {
		t.Helper()
		_, err := loadConfig(configFile(t, text))
		if err == nil {
			t.Fatalf("%q: no error", text)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%q: error %q does not name %q", text, err, w)
			}
		}
	}
	f("listn = \"x:1\"\n", "listn")
	f("[broker]\nauto_create = true\n", "broker.auto_create")
	f("[nett]\nloops = 1\n", "nett")
	f("node_id = \"one\"\n", "node_id")
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestEngineConversion(t *testing.T) {
	c, err := loadConfig(configFile(t, `
listen = "127.0.0.1:0"
[broker]
durability = "always"
[topic_defaults]
"retention.ms" = 1000
"cleanup.policy" = "compact"
"min.cleanable.dirty.ratio" = 0.25
"preallocate" = true
`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.engineConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retention.ms": "1000", "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.25", "preallocate": "true"}
	if !reflect.DeepEqual(e.TopicDefaults, want) || e.Durability != "always" {
		t.Fatalf("got %+v", e)
	}
	f := func(text, want string) {
		t.Helper()
		c, err := loadConfig(configFile(t, text))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.engineConfig(); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: error %v, want it to mention %q", text, err, want)
		}
	}
	f("[topic_defaults]\n\"retention.mss\" = 1\n", "retention.mss")
	f("[topic_defaults]\n\"retention.ms\" = \"soon\"\n", "retention.ms")
	f("[broker]\ndurability = \"maybe\"\n", "durability")
	f("listen = \"nowhere\"\n", "listen")
	f("[broker]\nnum_partitions = 0\n", "num_partitions")
}

// TestNetLimits: the [net] limits reach netio, bad values are refused, and
// a reload knows every one of them (the overrides' table included).
func TestNetLimits(t *testing.T) {
	c, err := loadConfig(configFile(t, `
[net]
max_connections_per_ip = 20
max_connection_rate = 50.5
frame_stall_timeout_ms = 1500
max_preauth_request_bytes = 65536
move_buffered_bytes = 2097152
[net.max_connections_per_ip_overrides]
"10.0.0.5" = 1000
"::1" = 0
"::ffff:10.0.0.6" = 7
`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.engineConfig()
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.netOptions(e)
	if err != nil {
		t.Fatal(err)
	}
	l := o.Limits
	if l.MaxConnectionsPerIP != 20 || l.MaxConnectionRate != 50.5 || l.FrameStallTimeout.Milliseconds() != 1500 ||
		l.FrameTimeout.Milliseconds() != 60000 || l.MaxPreAuthRequestBytes != 65536 ||
		!reflect.DeepEqual(l.ConnectionsPerIP, map[string]int{"10.0.0.5": 1000, "::1": 0, "10.0.0.6": 7}) || l.MaxQueuedBytes != 128<<20 {
		t.Fatalf("limits %+v", l)
	}
	if o.MoveBufferedBytes != 2<<20 {
		t.Fatalf("move_buffered_bytes reached netio as %d", o.MoveBufferedBytes)
	}
	if c, err := loadConfig(configFile(t, "")); err != nil {
		t.Fatal(err)
	} else if e, _ := c.engineConfig(); func() bool {
		o, err := c.netOptions(e)
		return err != nil || o.MoveBufferedBytes != netio.DefaultMoveBufferedBytes
	}() {
		t.Fatal("move_buffered_bytes left out is not netio's default")
	}
	for _, text := range []string{"[net]\nmove_buffered_bytes = 1000\n", "[net]\nmove_buffered_bytes = 200000000\n", "[net]\nframe_timeout_ms = -1\n", "[net]\nmax_connection_rate = -0.5\n", "[net]\nmax_connection_rate = nan\n", "[net.max_connections_per_ip_overrides]\n\"host\" = 1\n",
		"[net.max_connections_per_ip_overrides]\n\"10.0.0.1\" = -2\n"} {
		c, err := loadConfig(configFile(t, text))
		if err != nil {
			t.Fatal(err)
		}
		e, _ := c.engineConfig()
		if _, err := c.netOptions(e); err == nil {
			t.Errorf("%q accepted", text)
		}
	}
	for _, k := range []string{"net.max_connections", "net.frame_timeout_ms", "net.max_connection_rate_per_ip", "net.max_connections_per_ip_overrides.10.0.0.5"} {
		if !isNetLimit(k) {
			t.Errorf("%s is not applied by a reload", k)
		}
	}
	for _, k := range []string{"net.loops", "net.max_inflight", "broker.max_connections", "net"} {
		if isNetLimit(k) {
			t.Errorf("%s counted as a reloadable limit", k)
		}
	}
}
