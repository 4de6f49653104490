package main

// The tests run the whole CLI in-process through run(...) against a real
// broker started in-process (tools.Start) on 127.0.0.1:0 in a t.TempDir(),
// and check what it prints, not only the exit code. Every wait is bounded.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/tools"
)

// testBroker is an in-process samsa on a loopback port.
type testBroker struct {
	addr      string
	nodeID    int32
	clusterID string
	dataDir   string
	stop      func() // shuts the broker down cleanly (again: no-op)
}

// testBrokerVersion is the software version the test broker reports.
const testBrokerVersion = "v9.9.9-test"

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	fc := tools.DefaultFileConfig()
	fc.Listen = "127.0.0.1:0"
	fc.DataDir = t.TempDir()
	fc.Net.Loops = 2
	fc.Groups.InitialRebalanceDelayMs = 0
	fc.Groups.OffsetsTopicNumPartitions = 4
	cfg, err := fc.Engine()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Version = testBrokerVersion
	nopts, err := fc.NetOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logOut io.Writer = io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	srv, err := tools.Start(cfg, nopts, slog.New(slog.NewTextHandler(logOut, nil)))
	if err != nil {
		t.Fatalf("cannot start broker: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testBroker{addr: srv.Addr(), nodeID: cfg.NodeID, clusterID: srv.Broker.ClusterID(), dataDir: cfg.DataDir, stop: stop}
}

// result is one samsactl run.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runCtl runs samsactl against the broker at addr.
func runCtl(t *testing.T, addr string, args ...string) result {
	t.Helper()
	var o, e bytes.Buffer
	start := time.Now()
	code := run(append([]string{"-broker", addr, "-timeout", "20s"}, args...), &o, &e)
	r := result{code: code, stdout: o.String(), stderr: e.String(), took: time.Since(start)}
	if testing.Verbose() {
		t.Logf("samsactl %s -> %d\n%s%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	}
	return r
}

// ok runs samsactl and fails the test unless it exits 0.
func ok(t *testing.T, addr string, args ...string) string {
	t.Helper()
	r := runCtl(t, addr, args...)
	if r.code != 0 {
		t.Fatalf("samsactl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("samsactl %s: unexpected stderr %q", strings.Join(args, " "), r.stderr)
	}
	return r.stdout
}

// fails runs samsactl and checks the exit code and that stderr is one line
// containing each of want.
func fails(t *testing.T, addr string, code int, args []string, want ...string) result {
	t.Helper()
	r := runCtl(t, addr, args...)
	if r.code != code {
		t.Fatalf("samsactl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "samsactl: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("samsactl %s: stderr is not one \"samsactl: \" line: %q", strings.Join(args, " "), r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("samsactl %s: stderr %q does not say %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}

// okJSON runs samsactl with -o json and decodes its output into v.
func okJSON(t *testing.T, addr string, v any, args ...string) {
	t.Helper()
	out := ok(t, addr, append(args, "-o", "json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("samsactl %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes n records to each of partitions 0..parts-1 of topic; the
// record at offset i has timestamp base + i seconds.
func produce(t *testing.T, addr, topic string, parts int32, n int, base time.Time) {
	t.Helper()
	cl := client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for i := range n {
		for p := range parts {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(strconv.Itoa(i)), Value: []byte("v"), Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
	}
	if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatalf("cannot produce: %v", err)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
