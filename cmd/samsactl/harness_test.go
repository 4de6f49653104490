package main

// The tests run the whole CLI in-process through run(...) against the real
// broker binary, built once by TestMain and started per test on a free
// 127.0.0.1 port with its own config.toml and a t.TempDir() data directory,
// and check what it prints, not only the exit code. Every wait is bounded.
// The broker is a separate process so that samsactl's tests, like samsactl,
// link no broker package (TestNoBrokerPackages).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testBrokerVersion is the software version the test broker reports: the
// binary is built with -X main.version set to it.
const testBrokerVersion = "v9.9.9-test"

// testNodeID is the node_id in the test broker's config.toml.
const testNodeID = 1

// samsaBin is the broker binary TestMain builds.
var samsaBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "samsactl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot create temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	samsaBin = filepath.Join(dir, "samsa")
	args := []string{"build", "-o", samsaBin, "-ldflags", "-X main.version=" + testBrokerVersion}
	if raceEnabled {
		// A race in the broker under samsactl fails the test that saw it.
		args = append(args, "-race")
	}
	// The test runs in the package directory: ../samsa is cmd/samsa.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", append(args, "../samsa")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build samsa: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// testBroker is a samsa process on a loopback port.
type testBroker struct {
	addr      string
	nodeID    int32
	clusterID string
	dataDir   string
	stop      func() // SIGTERMs the broker and requires a clean exit (again: no-op)
}

// logBuffer collects a broker's stderr.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail is the end of the log, enough to explain a failure.
func (l *logBuffer) tail() string {
	s := l.String()
	const max = 64 << 10
	if len(s) > max {
		s = "...\n" + s[len(s)-max:]
	}
	return s
}

// startBroker starts a broker with two event loops, no initial rebalance
// delay and a 4-partition __consumer_offsets, and stops it when the test
// ends.
func startBroker(t *testing.T) *testBroker {
	t.Helper()
	addr, dataDir := closedAddr(t), t.TempDir()
	config := filepath.Join(t.TempDir(), "config.toml")
	text := fmt.Sprintf(`node_id = %d
listen = %q
data_dir = %q

[net]
loops = 2

[groups]
initial_rebalance_delay_ms = 0
offsets_topic_partitions = 4
`, testNodeID, addr, dataDir)
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &logBuffer{}
	cmd := exec.Command(samsaBin, "-config", config)
	cmd.Stdout, cmd.Stderr = log, log
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(log, os.Stderr), io.MultiWriter(log, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start broker: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error // valid once exited is closed
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			select {
			case <-exited:
				t.Errorf("broker died on its own (%v):\n%s", waitErr, log.tail())
				return
			default:
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if waitErr != nil {
					t.Errorf("broker exited with %v after SIGTERM:\n%s", waitErr, log.tail())
				}
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				t.Errorf("broker did not exit within 20s of SIGTERM:\n%s", log.tail())
			}
			out := log.String()
			if strings.Contains(out, "WARNING: DATA RACE") {
				t.Errorf("the race detector fired in the broker:\n%s", log.tail())
			}
			if strings.Contains(out, "panic:") || strings.Contains(out, "fatal error:") {
				t.Errorf("the broker panicked:\n%s", log.tail())
			}
		})
	}
	t.Cleanup(stop)
	clusterID := awaitBroker(t, addr, exited, log)
	return &testBroker{addr: addr, nodeID: testNodeID, clusterID: clusterID, dataDir: dataDir, stop: stop}
}

// awaitBroker waits up to 15s until the broker at addr answers Metadata
// and returns its cluster id; it fails the test if the broker exits first.
func awaitBroker(t *testing.T, addr string, exited <-chan struct{}, log *logBuffer) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := adm.Metadata(ctx)
		cancel()
		if err == nil && m.Cluster != "" {
			return m.Cluster
		}
		select {
		case <-exited:
			t.Fatalf("broker exited while starting:\n%s", log.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker on %s does not answer Metadata after 15s (%v):\n%s", addr, err, log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
