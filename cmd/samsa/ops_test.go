package main

// Operating the broker as a service: sd_notify and the watchdog, the ops
// HTTP listener's /metrics, /healthz and /readyz ([admin] listen), SIGHUP
// reloads, and `make install` with a unit that systemd-analyze accepts.

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// writeConfig writes the shipped config.toml with edits (old → new line
// replacements, each required to match) into dir.
func writeConfig(t *testing.T, dir string, edits ...string) string {
	t.Helper()
	raw, err := os.ReadFile(repoConfig)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("config.toml has no %q", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// notifySocket is a datagram socket standing in for systemd's.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// Socket paths are short (108 bytes): not under t.TempDir().
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ns := &notifySocket{path: path, msgs: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(ns.msgs)
				return
			}
			ns.msgs <- string(buf[:n])
		}
	}()
	return ns
}

// next waits for a message containing want, returning it and what came
// before it.
func (ns *notifySocket) next(t *testing.T, want string, timeout time.Duration) (string, []string) {
	t.Helper()
	var before []string
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				t.Fatalf("notify socket closed waiting for %q (got %q)", want, before)
			}
			if strings.Contains(m, want) {
				return m, before
			}
			before = append(before, m)
		case <-deadline:
			t.Fatalf("no %q from the broker within %v (got %q)", want, timeout, before)
		}
	}
}

func TestSdNotify(t *testing.T) {
	ns := listenNotify(t)
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: repoConfig, log: &logBuffer{}}
	b.env = []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=1500000"}
	t.Cleanup(b.cleanup)
	b.start()

	// READY=1 comes once clients can connect: dial the moment it arrives.
	ready, before := ns.next(t, "READY=1", 20*time.Second)
	c, err := net.DialTimeout("tcp", b.addr, time.Second)
	if err != nil {
		t.Fatalf("READY=1 arrived but %s does not accept: %v", b.addr, err)
	}
	c.Close()
	if !strings.Contains(ready, "STATUS=serving "+b.addr) {
		t.Fatalf("READY without a STATUS line naming the listener: %q", ready)
	}
	if len(before) == 0 || !strings.Contains(before[0], "STATUS=recovering logs") {
		t.Fatalf("no STATUS before READY: %q", before)
	}
	// Watchdog pings come at a third of WATCHDOG_USEC (1.5 s) while the
	// broker answers itself.
	for range 3 {
		ns.next(t, "WATCHDOG=1", 10*time.Second)
	}
	// SIGHUP: RELOADING=1, then READY=1 again.
	b.cmd.Process.Signal(syscall.SIGHUP)
	ns.next(t, "RELOADING=1", 5*time.Second)
	ns.next(t, "READY=1", 5*time.Second)
	// SIGTERM: STOPPING=1, and a clean exit.
	b.cmd.Process.Signal(syscall.SIGTERM)
	ns.next(t, "STOPPING=1", 5*time.Second)
	select {
	case <-b.exited:
		if b.waitErr != nil {
			t.Fatalf("exit after SIGTERM: %v", b.waitErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit 20s after SIGTERM")
	}
	b.cmd = nil
}

// scrape reads /metrics and parses it as Prometheus text format.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := scrapeErr(addr)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// scrapeErr is scrape for a caller that must clean up before failing.
func scrapeErr(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("/metrics is not Prometheus text format: %w", err)
	}
	return fams, nil
}

// metricValue finds a sample by family name and labels (counter, gauge,
// or a histogram's sample count).
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsEndpoint(t *testing.T) {
	httpAddr := freeAddr(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "[admin]\n# HTTP admin", "[admin]\nlisten = \""+httpAddr+"\"\n# HTTP admin", "\nlisten = \"\"\n\n[topic_defaults]", "\n\n[topic_defaults]")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	code, body := get("/readyz")
	var ready struct {
		Ready bool   `json:"ready"`
		Role  string `json:"role"`
	}
	if err := json.Unmarshal([]byte(body), &ready); code != 200 || err != nil || !ready.Ready || ready.Role != "alone" {
		t.Fatalf("/readyz: %d %q", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic("metered"), kgo.ConsumerGroup("meter-group"),
		kgo.ConsumeTopics("metered"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "metered"); err != nil {
		t.Fatal(err)
	}
	produce := func(n int) {
		for i := range n {
			cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "value-%d", i)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(100)
	fams := scrape(t, httpAddr)
	topic := map[string]string{"topic": "metered"}
	part := map[string]string{"topic": "metered", "partition": "0"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
	}{
		{"samsa_topic_records_in_total", topic, func(v float64) bool { return v == 100 }},
		{"samsa_topic_bytes_in_total", topic, func(v float64) bool { return v > 100*7 }},
		{"samsa_partition_log_end_offset", part, func(v float64) bool { return v == 100 }},
		{"samsa_partition_high_watermark", part, func(v float64) bool { return v == 100 }},
		{"samsa_partition_size_bytes", part, func(v float64) bool { return v > 0 }},
		{"samsa_request_duration_seconds", map[string]string{"api": "Produce"}, func(v float64) bool { return v >= 1 }},
		{"samsa_request_duration_seconds", map[string]string{"api": "CreateTopics"}, func(v float64) bool { return v == 1 }},
		{"samsa_request_queue_seconds", map[string]string{"api": "Produce"}, func(v float64) bool { return v >= 1 }},
		{"samsa_fsync_duration_seconds", nil, func(v float64) bool { return v >= 1 }},
		{"samsa_produce_stage_seconds", map[string]string{"stage": "write", "lane": "small"}, func(v float64) bool { return v >= 1 }},
		{"samsa_produce_stage_seconds", map[string]string{"stage": "fsync", "lane": "small"}, func(v float64) bool { return v >= 1 }},
		{"samsa_produce_stage_seconds", map[string]string{"stage": "write", "lane": "bulk"}, func(v float64) bool { return v == 0 }},
		{"samsa_connections", nil, func(v float64) bool { return v >= 1 }},
		{"samsa_role", map[string]string{"role": "alone"}, func(v float64) bool { return v == 1 }},
		{"go_goroutines", nil, func(v float64) bool { return v > 0 }},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }},
	} {
		if v, ok := metricValue(fams, c.name, c.labels); !ok || !c.want(v) {
			t.Errorf("%s%v = %v (found %v)", c.name, c.labels, v, ok)
		}
	}

	// Consume 60 and commit: the group's lag is 40, and bytes out move.
	var got []*kgo.Record
	for len(got) < 100 {
		fs := cl.PollRecords(ctx, 100)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d: %v", len(got), ctx.Err())
		}
		got = append(got, fs.Records()...)
	}
	if err := cl.CommitRecords(ctx, got[59]); err != nil {
		t.Fatal(err)
	}
	produce(50)
	// A parked fetch woken by new records is counted: a consumer of
	// another topic waits in its fetch, and a record there wakes it (one
	// a quarter second, as on a loaded machine its fetch may not have
	// parked yet when the first comes).
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "wake"); err != nil {
		t.Fatal(err)
	}
	waiter, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics("wake"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	go func() {
		for ctx.Err() == nil && waiter.PollFetches(ctx).Err0() == nil {
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		cl.Produce(ctx, &kgo.Record{Topic: "wake", Value: []byte("wake")}, nil)
		time.Sleep(250 * time.Millisecond)
		fams = scrape(t, httpAddr)
		if v, ok := metricValue(fams, "samsa_fetch_wake_seconds", nil); ok && v >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no parked fetch answer counted in samsa_fetch_wake_seconds")
		}
	}
	groupPart := map[string]string{"group": "meter-group", "topic": "metered", "partition": "0"}
	if v, ok := metricValue(fams, "samsa_group_lag_records", groupPart); !ok || v != 90 {
		t.Errorf("group lag %v (found %v), want 150-60", v, ok)
	}
	if v, ok := metricValue(fams, "samsa_group_committed_offset", groupPart); !ok || v != 60 {
		t.Errorf("committed offset %v (found %v)", v, ok)
	}
	if v, _ := metricValue(fams, "samsa_topic_records_in_total", topic); v != 150 {
		t.Errorf("records in after 50 more: %v", v)
	}
	if v, _ := metricValue(fams, "samsa_topic_bytes_out_total", topic); v <= 0 {
		t.Errorf("bytes out after consuming: %v", v)
	}
	if v, _ := metricValue(fams, "samsa_topic_records_out_total", topic); v < 100 {
		t.Errorf("records out after consuming 100: %v", v)
	}
	if v, _ := metricValue(fams, "samsa_request_duration_seconds", map[string]string{"api": "Fetch"}); v < 1 {
		t.Errorf("fetch requests: %v", v)
	}

	// A batch of 256 KiB or more is written by the disk's bulk lane, and
	// timed as such (random bytes: the client's compression leaves them
	// that big).
	big := make([]byte, 300<<10)
	crand.Read(big)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "wake", Value: big}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, httpAddr)
	for _, stage := range []string{"write_wait", "write", "sync_wait", "fsync"} {
		if v, ok := metricValue(fams, "samsa_produce_stage_seconds", map[string]string{"stage": stage, "lane": "bulk"}); !ok || v != 1 {
			t.Errorf("bulk lane's %s observations: %v (found %v), want 1", stage, v, ok)
		}
	}

	// While shutting down, /readyz says so (the listener lives until the
	// logs are closed); afterwards nothing listens.
	b.stop()
	if _, err := http.Get("http://" + httpAddr + "/healthz"); err == nil {
		t.Fatal("HTTP listener still up after the broker exited")
	}
}

func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "\n[topic_defaults]\n", "\n[topic_defaults]\n\"retention.ms\" = 86400000\n")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "reloaded"); err != nil {
		t.Fatal(err)
	}
	retention := func() (string, kmsg.ConfigSource) {
		rcs, err := adm.DescribeTopicConfigs(ctx, "reloaded")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rcs[0].Configs {
			if c.Key == "retention.ms" {
				return c.MaybeValue(), c.Source
			}
		}
		t.Fatal("no retention.ms")
		return "", 0
	}
	if v, src := retention(); v != "86400000" || src != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("retention.ms before reload: %s (%v)", v, src)
	}

	// A reload applies log_level and topic_defaults, and names what needs
	// a restart.
	writeConfig(t, dir, "\n[topic_defaults]\n", "\n[topic_defaults]\n\"retention.ms\" = 3600000\n", `log_level = "info"`, `log_level = "debug"`,
		"loops = 0 ", "loops = 1 ", "max_request_bytes = 104857600", "max_request_bytes = 4096",
		"frame_stall_timeout_ms = 30000", "frame_stall_timeout_ms = 500",
		"# [net.max_connections_per_ip_overrides]\n# \"10.0.0.5\" = 1000", "[net.max_connections_per_ip_overrides]\n\"127.0.0.3\" = 2")
	b.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, b, `msg="config reloaded"`)
	line := logLine(b, `msg="config reloaded"`)
	for _, want := range []string{`applied="log_level net.frame_stall_timeout_ms net.max_connections_per_ip_overrides.127.0.0.3 net.max_request_bytes topic_defaults.retention.ms"`, `needs_restart=net.loops`} {
		if !strings.Contains(line, want) {
			t.Fatalf("reload log line lacks %s: %s", want, line)
		}
	}
	if v, src := retention(); v != "3600000" || src != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("retention.ms after reload: %s (%v)", v, src)
	}
	// The request size limit applies to new requests: 5000 bytes is over.
	rc, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 4+5000)
	binary.BigEndian.PutUint32(frame, 5000)
	rc.SetDeadline(time.Now().Add(10 * time.Second))
	rc.Write(frame)
	if n, err := rc.Read(make([]byte, 16)); err == nil {
		t.Fatalf("a 5000-byte request under max_request_bytes=4096 got %d bytes back", n)
	}
	rc.Close()
	waitLog(t, b, `msg="bad request size; closing"`)
	// The per-address override: 127.0.0.3 gets two connections.
	from3 := func() net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	from3()
	from3()
	third := from3()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third connection from 127.0.0.3 stayed open with its limit at 2")
	}
	waitLog(t, b, `msg="connection limit per address reached; refusing" subsystem=netio remote=127.0.0.3`)
	// The stall timeout: 2 bytes of a size prefix, then nothing.
	stall, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	stall.Write([]byte{0, 0})
	stall.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := stall.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled frame's connection not closed with frame_stall_timeout_ms=500: %v", err)
	}
	waitLog(t, b, `msg="request frame stalled; closing"`)
	// Debug logging is on now: a new connection is logged.
	if c, err := net.Dial("tcp", b.addr); err == nil {
		c.Close()
	}
	waitLog(t, b, `level=DEBUG msg="connection opened"`)

	// A broken file is refused whole; the broker goes on as it was.
	if err := os.WriteFile(cfg, []byte("log_level = \"loud\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, b, `msg="config reload failed; the running config stays"`)
	if v, _ := retention(); v != "3600000" {
		t.Fatalf("retention.ms after a failed reload: %s", v)
	}
	b.stop()
}

func logLine(b *broker, substr string) string {
	for _, l := range strings.Split(b.log.String(), "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

func waitLog(t *testing.T, b *broker, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.log.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after 10s:\n%s", substr, b.log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMakeInstall: `make install` puts binaries, unit and config under
// PREFIX and DESTDIR, keeps an existing config, and systemd-analyze
// verify accepts the installed unit.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	prefix := t.TempDir()
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	bin := t.TempDir()
	run("make", "install", "PREFIX="+prefix, "BIN="+bin)
	for _, f := range []string{"bin/samsa", "bin/samsactl", "bin/samsa-bench", "lib/systemd/system/samsa.service", "etc/samsa/config.toml", "share/doc/samsa/README.md"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("not installed: %s", f)
		}
	}
	unit, err := os.ReadFile(filepath.Join(prefix, "lib/systemd/system/samsa.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "LimitNOFILE=", "ProtectSystem=strict", "ReadWritePaths=/var/lib/samsa", "NoNewPrivileges=yes", "User=samsa",
		"ExecStart=" + prefix + "/bin/samsa -config " + prefix + "/etc/samsa/config.toml", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	conf, err := os.ReadFile(filepath.Join(prefix, "etc/samsa/config.toml"))
	if err != nil || !regexp.MustCompile(`(?m)^data_dir = "/var/lib/samsa"$`).Match(conf) {
		t.Fatalf("installed config's data_dir: %v\n%s", err, conf)
	}
	// An operator's config survives a reinstall.
	if err := os.WriteFile(filepath.Join(prefix, "etc/samsa/config.toml"), []byte("node_id = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("make", "install", "PREFIX="+prefix, "BIN="+bin)
	if conf, _ := os.ReadFile(filepath.Join(prefix, "etc/samsa/config.toml")); string(conf) != "node_id = 7\n" {
		t.Fatalf("reinstall replaced the config: %q", conf)
	}
	// Both the installed unit and the one in the repository verify clean.
	for _, unit := range []string{filepath.Join(prefix, "lib/systemd/system/samsa.service"), filepath.Join(repo, "tools/dist/systemd/samsa.service")} {
		out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) || len(out) > 0 {
			t.Fatalf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
		if err != nil {
			t.Fatalf("systemd-analyze (apt-get install systemd): %v", err)
		}
	}
}
