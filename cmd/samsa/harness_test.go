package main

// Integration tests against the real broker binary: TestMain builds it once,
// and each test starts, SIGKILLs and restarts it like an operator would,
// driving it with real clients (franz-go, kcat, kafka-python) and raw
// sockets. Every wait is bounded; tests talk only to 127.0.0.1.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testVersion is linked into the test binary with -X main.version, so the
// -version test can tell the flag really reaches the variable.
const testVersion = "v0.0.0-itest"

var (
	samsaBin   string // the broker built by TestMain
	samsactl   string // the admin CLI built by TestMain
	repoConfig string // the shipped config.toml
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if os.Getenv(eosProcessorEnv) != "" {
		return eosProcessorMain() // a child of TestExactlyOnceGroupTransactSession
	}
	dir, err := os.MkdirTemp("", "samsa-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot create temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	samsaBin = filepath.Join(dir, "samsa")
	args := []string{"build", "-o", samsaBin, "-ldflags", "-X main.version=" + testVersion}
	if raceEnabled {
		// A race in the broker under real clients fails the test that saw it.
		args = append(args, "-race")
	}
	// The test runs in the package directory: "." is cmd/samsa.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build samsa: %v\n%s", err, out)
		return 1
	}
	samsactl = filepath.Join(dir, "samsactl")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", samsactl, "../samsactl").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build samsactl: %v\n%s", err, out)
		return 1
	}
	if repoConfig, err = filepath.Abs(filepath.Join("..", "..", "config.toml")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := os.Stat(repoConfig); err != nil {
		fmt.Fprintln(os.Stderr, "cannot find the shipped config:", err)
		return 1
	}
	return m.Run()
}

// logBuffer collects a broker's stderr across all its runs.
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

// logged waits up to 5 s for the broker's log to contain s. A running
// broker's output reaches the log through a pipe and a copying goroutine,
// a little after the broker wrote it (after stop or kill it is all there).
func (b *broker) logged(s string) bool {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.log.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// broker is one broker: an address and a data directory that outlive the
// processes started on them.
type broker struct {
	t       *testing.T
	addr    string
	dataDir string
	config  string
	log     *logBuffer
	runs    int
	// fileOnly starts the process with -config alone, so listen and
	// data_dir come from the file (which must agree with addr and dataDir).
	fileOnly bool
	env      []string // added to the process environment
	args     []string // added to the command line
	netns    string   // the network namespace it runs in ("" = this one)

	// The current process; nil once it was stopped or killed.
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd.Wait returned
	waitErr error         // valid after exited is closed
}

// Ports handed out by freeAddr, so that no two tests of this process get
// the same one.
var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freeAddr returns a 127.0.0.1 address nobody listens on right now. The
// port comes from below Linux's ephemeral range (32768-60999 by default),
// so that no client connection of a test running meanwhile takes it as its
// local port before the broker binds it (as happened to a broker binding
// 0.0.0.0:port in CI), and it is free on every address, not only loopback.
func freeAddr(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := 10000 + rand.IntN(22000)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	t.Fatal("no free port found below the ephemeral range")
	return ""
}

// startBroker starts a broker on a fresh port and data directory with the
// shipped config.toml, and stops it when the test ends.
func startBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: repoConfig, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	return b
}

// startQuickGroupsBroker is startBroker with groups that rebalance after
// 100 ms instead of the shipped 3 s (group.initial.rebalance.delay.ms):
// for tests whose groups form once and would only wait.
func startQuickGroupsBroker(t *testing.T) *broker {
	t.Helper()
	cfg := writeConfig(t, t.TempDir(), "initial_rebalance_delay_ms = 3000", "initial_rebalance_delay_ms = 100")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	return b
}

// start runs a broker process on b's address and data directory and waits
// until it accepts connections.
func (b *broker) start() {
	b.t.Helper()
	if b.cmd != nil {
		b.t.Fatal("BUG: test starts a broker that is running")
	}
	b.runs++
	fmt.Fprintf(b.log, "=== run %d: %s ===\n", b.runs, time.Now().Format(time.TimeOnly))
	args := []string{"-config", b.config}
	if !b.fileOnly {
		args = append(args, "-listen", b.addr, "-data-dir", b.dataDir)
	}
	args = append(args, b.args...)
	cmd := exec.Command(samsaBin, args...)
	if b.netns != "" {
		// ip execs the broker after entering the namespace: the process
		// (and its pid, for signals) is the broker's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", b.netns, samsaBin}, args...)...)
	}
	cmd.Stdout = b.log
	cmd.Stderr = b.log
	if b.env != nil {
		cmd.Env = append(os.Environ(), b.env...)
	}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("cannot start broker: %v", err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	exited := b.exited
	go func() {
		b.waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b.cmd = nil
			b.t.Fatalf("broker exited while starting (%v):\n%s", b.waitErr, b.log.tail())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker does not accept on %s after 15s:\n%s", b.addr, b.log.tail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill SIGKILLs the broker and waits for it to be gone.
func (b *broker) kill() {
	b.t.Helper()
	if b.cmd == nil {
		b.t.Fatal("BUG: kill without a running broker")
	}
	b.checkAlive()
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.t.Fatalf("broker still running 10s after SIGKILL")
	}
	b.cmd = nil
	fmt.Fprintf(b.log, "=== run %d: SIGKILLed ===\n", b.runs)
}

// stop sends SIGTERM and requires a clean exit (status 0) within 20s.
func (b *broker) stop() {
	b.t.Helper()
	if b.cmd == nil {
		b.t.Fatal("BUG: stop without a running broker")
	}
	b.checkAlive()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(20 * time.Second):
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.exited
		b.cmd = nil
		b.t.Fatalf("broker did not exit within 20s of SIGTERM:\n%s", b.log.tail())
	}
	b.cmd = nil
	if b.waitErr != nil {
		b.t.Fatalf("broker exited with %v after SIGTERM:\n%s", b.waitErr, b.log.tail())
	}
}

// restart starts the broker again on the same address and data directory.
func (b *broker) restart() { b.t.Helper(); b.start() }

// checkAlive fails the test if the process died without being told to.
func (b *broker) checkAlive() {
	b.t.Helper()
	select {
	case <-b.exited:
		b.cmd = nil
		b.t.Fatalf("broker died on its own (%v):\n%s", b.waitErr, b.log.tail())
	default:
	}
}

// cleanup stops a running broker (SIGTERM, SIGKILL after 10s) and reports
// races, panics and unexpected exits seen in its log.
func (b *broker) cleanup() {
	t := b.t
	if b.cmd != nil {
		select {
		case <-b.exited:
			t.Errorf("broker died on its own: %v", b.waitErr)
		default:
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.exited:
				if b.waitErr != nil {
					t.Errorf("broker exited with %v after SIGTERM", b.waitErr)
				}
			case <-time.After(10 * time.Second):
				_ = b.cmd.Process.Signal(syscall.SIGKILL)
				<-b.exited
				t.Errorf("broker did not exit within 10s of SIGTERM")
			}
		}
		b.cmd = nil
	}
	log := b.log.String()
	if strings.Contains(log, "WARNING: DATA RACE") {
		t.Errorf("the race detector fired in the broker")
	}
	if strings.Contains(log, "panic:") || strings.Contains(log, "fatal error:") {
		t.Errorf("the broker panicked")
	}
	if t.Failed() {
		t.Logf("broker %s log:\n%s", b.addr, b.log.tail())
	}
}

// client is a franz-go client for b, closed when the test ends.
func (b *broker) client(opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(b.addr),
		kgo.RetryTimeout(15 * time.Second),
		kgo.RequestTimeoutOverhead(5 * time.Second),
	}, opts...)
	c, err := kgo.NewClient(opts...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(c.Close)
	return c
}

// admin is a kadm client for b.
func (b *broker) admin() *kadm.Client { return kadm.NewClient(b.client()) }

// createTopic creates a topic through CreateTopics and fails on any error.
func (b *broker) createTopic(topic string, partitions int32, configs map[string]*string) {
	b.t.Helper()
	r, err := b.admin().CreateTopic(timeout(b.t, 10*time.Second), partitions, 1, configs, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		b.t.Fatalf("cannot create topic %s: %v", topic, err)
	}
}

// timeout is a context cancelled after d or when the test ends.
func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// endOffsets lists the end offset of each partition of topic.
func (b *broker) endOffsets(topic string) map[int32]int64 {
	b.t.Helper()
	ends, err := b.admin().ListEndOffsets(timeout(b.t, 15*time.Second), topic)
	if err != nil {
		b.t.Fatalf("cannot list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			b.t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	if len(out) == 0 {
		b.t.Fatalf("topic %s has no partitions", topic)
	}
	return out
}

// consumeAll reads every record of topic, partition by partition, up to
// the end offsets at the time of the call, from assigned partitions (no
// group). It fails unless offsets start at 0 and are dense.
func (b *broker) consumeAll(topic string) map[int32][]*kgo.Record {
	b.t.Helper()
	t := b.t
	ends := b.endOffsets(topic)
	parts := map[int32]kgo.Offset{}
	want := 0
	for p, end := range ends {
		parts[p] = kgo.NewOffset().AtStart()
		want += int(end)
	}
	c := b.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxWait(200*time.Millisecond))
	defer c.Close()
	ctx := timeout(t, 30*time.Second)
	got := map[int32][]*kgo.Record{}
	n := 0
	for n < want {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: consumed %d of %d records in 30s", topic, n, want)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return // appended after ListOffsets
			}
			if exp := int64(len(got[r.Partition])); r.Offset != exp {
				t.Fatalf("%s/%d: record at offset %d, expected %d (hole or repeat)", topic, r.Partition, r.Offset, exp)
			}
			got[r.Partition] = append(got[r.Partition], r)
			n++
		})
	}
	return got
}

// produceSync produces records and fails on any error.
func produceSync(t *testing.T, c *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	if err := c.ProduceSync(timeout(t, 20*time.Second), rs...).FirstErr(); err != nil {
		t.Fatalf("cannot produce: %v", err)
	}
}

// runTool runs an external client with stdin, bounded to 60s, and returns
// its stdout; it fails the test on a non-zero exit, showing stderr.
func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, fmt.Errorf("timed out after 60s"))
	}
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
