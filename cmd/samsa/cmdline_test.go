package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runBinary runs the broker with args, expecting it to exit by itself
// within 15s, and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, samsaBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("samsa %v did not exit within 15s; stderr:\n%s", args, e.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("cannot run samsa: %v", err)
	}
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersionFlag(t *testing.T) {
	code, out, errOut := runBinary(t, "-version")
	if code != 0 || out != "samsa "+testVersion+"\n" {
		t.Fatalf("-version: exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errOut, "samsa "+testVersion+"\n")
	}
	// -version wins over a config that could not even be loaded.
	code, out, _ = runBinary(t, "-version", "-config", filepath.Join(t.TempDir(), "missing.toml"))
	if code != 0 || !strings.Contains(out, testVersion) {
		t.Fatalf("-version with a missing config: exit %d, %q", code, out)
	}
}

func TestConfigErrorsExitNonZero(t *testing.T) {
	f := func(name, config string, want ...string) {
		t.Helper()
		dataDir := filepath.Join(t.TempDir(), "data")
		cfg := writeFile(t, "samsa.toml", config)
		code, _, errOut := runBinary(t, "-config", cfg, "-listen", freeAddr(t), "-data-dir", dataDir)
		if code == 0 {
			t.Fatalf("%s: exit 0, want non-zero; stderr:\n%s", name, errOut)
		}
		for _, w := range want {
			if !strings.Contains(errOut, w) {
				t.Fatalf("%s: stderr does not name %q:\n%s", name, w, errOut)
			}
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Fatalf("%s: the data directory was created by a broker that refused its config", name)
		}
	}
	f("unknown top-level key", "node_id = 1\nlistn = \"127.0.0.1:1\"\n", "listn")
	f("unknown nested key", "[net]\nmax_conections = 5\n", "net.max_conections")
	f("unknown table", "[brokr]\nnum_partitions = 3\n", "brokr")
	f("two unknown keys", "colour = 1\n[broker]\nauto_create = true\n", "colour", "broker.auto_create")
	f("wrong type", "node_id = \"one\"\n", "node_id")
	f("bad durability", "[broker]\ndurability = \"sometimes\"\n", "durability")
	f("unknown topic default", "[topic_defaults]\n\"retention.mss\" = 5\n", "retention.mss")
	f("not toml", "this is not toml\n")
	f("replica fetch too small", "[replication]\nrole = \"standby\"\npeer_id = 2\npeer_client = \"127.0.0.1:1\"\npeer_link = \"127.0.0.1:2\"\nreplica_fetch_max_bytes = 100\n",
		"replica_fetch_max_bytes")

	code, _, errOut := runBinary(t, "-config", filepath.Join(t.TempDir(), "missing.toml"), "-listen", freeAddr(t))
	if code == 0 || !strings.Contains(errOut, "missing.toml") {
		t.Fatalf("missing config: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runBinary(t, "-config", repoConfig, "-no-such-flag")
	if code == 0 || !strings.Contains(errOut, "no-such-flag") {
		t.Fatalf("unknown flag: exit %d, stderr %q", code, errOut)
	}
}

// TestFlagsOverrideConfig: listen and data_dir come from the file unless
// -listen and -data-dir are given.
func TestFlagsOverrideConfig(t *testing.T) {
	root := t.TempDir()
	fileAddr, fileDir := freeAddr(t), filepath.Join(root, "from-file")
	cfg := writeFile(t, "samsa.toml", "listen = \""+fileAddr+"\"\ndata_dir = \""+fileDir+"\"\n[broker]\nnum_partitions = 3\n")

	check := func(b *broker, notAddr, notDir string) {
		t.Helper()
		c := b.client(kgo.DefaultProduceTopic("flags"), kgo.AllowAutoTopicCreation())
		produceSync(t, c, &kgo.Record{Value: []byte("hello")})
		if _, err := os.Stat(filepath.Join(b.dataDir, "flags-0")); err != nil {
			t.Fatalf("partition not in the data dir %s: %v", b.dataDir, err)
		}
		// num_partitions from the same file still applies.
		if n := len(b.endOffsets("flags")); n != 3 {
			t.Fatalf("auto-created topic has %d partitions, config file says 3", n)
		}
		if _, err := os.Stat(notDir); err == nil {
			t.Fatalf("%s exists: the overridden data_dir was used", notDir)
		}
		if c, err := net.DialTimeout("tcp", notAddr, time.Second); err == nil {
			c.Close()
			t.Fatalf("something listens on the overridden address %s", notAddr)
		}
		// Metadata advertises the address really listened on.
		brokers, err := b.admin().ListBrokers(timeout(t, 10*time.Second))
		if err != nil || len(brokers) != 1 || net.JoinHostPort(brokers[0].Host, strconv.Itoa(int(brokers[0].Port))) != b.addr {
			t.Fatalf("metadata brokers %+v (%v), want one at %s", brokers, err, b.addr)
		}
	}

	// Flags given: neither file value is used.
	b := &broker{t: t, addr: freeAddr(t), dataDir: filepath.Join(root, "from-flag"), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	check(b, fileAddr, fileDir)
	b.stop()

	// No flags: the file's values are.
	fb := &broker{t: t, addr: fileAddr, dataDir: fileDir, config: cfg, log: &logBuffer{}, fileOnly: true}
	t.Cleanup(fb.cleanup)
	fb.start()
	check(fb, b.addr, filepath.Join(root, "nowhere"))
}
