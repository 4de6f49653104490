package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The hostile tests each start a fresh broker (the real binary, the
// shipped config, a temp data dir), run one attack against it while the
// legitimate franz-go producer and consumer and the ApiVersions prober
// run, and require that those kept working: every record acknowledged
// within the stall bound (5 s), every acknowledged record read, every
// ApiVersions answered within 5 s. Sequential: on a 2-core machine two
// brokers under attack at once would measure each other.

// hostileTest runs attack for d against a fresh broker and returns its
// result, after checking that the run itself worked and left no goroutine
// or socket behind.
func hostileTest(t *testing.T, attack string, d time.Duration, edit func(*HostileConfig)) *HostileResult {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a broker and attacks it")
	}
	bin, root := samsaBinary(t)
	gor0, fds0, dirs0 := runtime.NumGoroutine(), selfFDs(t), samsaDirs(t)
	cfg := HostileConfig{
		SamsaBin: bin, Config: filepath.Join(root, "config.toml"),
		Attacks: []string{attack}, Duration: d,
		Warmup: 3 * time.Second, Settle: 3 * time.Second, Drain: 20 * time.Second,
		// Thousands of attack connections take ephemeral ports; from
		// their own address they do not take the ports that tests run
		// at the same time reserve on 127.0.0.1 (listen on :0, close,
		// bind again later).
		AttackFrom: "127.0.0.2",
	}
	if edit != nil {
		edit(&cfg)
	}
	var progress syncBuffer
	cfg.Progress = &progress
	rep, err := RunHostile(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", progress.String(), text.String())
	if rep.Error != "" {
		t.Errorf("run: %s", rep.Error)
	}
	if b := rep.Baseline; b == nil || len(b.Problems()) > 0 {
		t.Fatalf("the legitimate clients did not work before the attack: %v", b.Problems())
	}
	res := rep.Attack(attack)
	if res == nil {
		t.Fatalf("no result for %s", attack)
	}
	if res.RSSBefore == 0 || res.RSSAfter == 0 || res.FDsBefore <= 0 || len(res.Samples) == 0 {
		t.Errorf("broker figures missing: RSS %d before, %d after, fds %d, %d samples", res.RSSBefore, res.RSSAfter, res.FDsBefore, len(res.Samples))
	}
	// Everything the run started is gone: kgo's and the attack's
	// goroutines, their sockets, the broker's temp dir.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (runtime.NumGoroutine() > gor0+2 || selfFDs(t) > fds0+2) {
		time.Sleep(100 * time.Millisecond)
	}
	if g, f := runtime.NumGoroutine(), selfFDs(t); g > gor0+2 || f > fds0+2 {
		t.Errorf("left behind: %d goroutines (%d before), %d open fds (%d before)", g, gor0, f, fds0)
	}
	if n := samsaDirs(t); n != dirs0 {
		t.Errorf("%d broker temp dirs before, %d after", dirs0, n)
	}
	return res
}

// requireLegit fails the test unless the legitimate clients kept working
// through the attack.
func requireLegit(t *testing.T, res *HostileResult) {
	t.Helper()
	if p := res.Problems(); len(p) > 0 {
		t.Errorf("%s: the legitimate clients did not keep working:\n  %s", res.Attack, strings.Join(p, "\n  "))
	}
	if res.Acked == 0 || res.Acked != res.Sent || res.Unread != 0 {
		t.Errorf("%s: %d of %d records acknowledged, %d of them unread: want every one acknowledged and read", res.Attack, res.Acked, res.Sent, res.Unread)
	}
}

// samsaDirs counts the temp directories of started brokers.
func samsaDirs(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "samsa-bench-samsa-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func selfFDs(t *testing.T) int {
	t.Helper()
	fds, err := openFDs(os.Getpid())
	if err != nil {
		t.Skipf("cannot count open fds: %v", err)
	}
	return fds
}

// TestHostileDeclare100M: two connections each declare a 100 MiB frame,
// send 2 bytes of it and stall (together more than max_queued_bytes).
func TestHostileDeclare100M(t *testing.T) {
	res := hostileTest(t, AttackDeclare100M, 10*time.Second, nil)
	if res.Conns.Connected != 2 {
		t.Errorf("%d attack connections, want 2", res.Conns.Connected)
	}
	requireLegit(t, res)
}

// TestHostileDeclare1M: 1,000 connections declare 1 MiB frames and stall.
func TestHostileDeclare1M(t *testing.T) {
	res := hostileTest(t, AttackDeclare1M, 10*time.Second, func(c *HostileConfig) { c.Declare1MConns = 1000 })
	if res.Conns.Dials != 1000 {
		t.Errorf("%d dials, want 1,000", res.Conns.Dials)
	}
	requireLegit(t, res)
}

// TestHostileRandom: connections write random bytes in a loop for 20 s.
func TestHostileRandom(t *testing.T) {
	res := hostileTest(t, AttackRandom, 20*time.Second, nil)
	if res.Conns.Connected < 100 || res.Conns.BytesSent < 1<<20 {
		t.Errorf("%d attack connections, %d bytes: want the attack to have run", res.Conns.Connected, res.Conns.BytesSent)
	}
	requireLegit(t, res)
}

// TestHostileNoRead: two connections send ApiVersions requests as fast
// as they can and never read an answer. The broker stops serving each
// once 4 MiB of its answers wait unread; then it stops reading it (TCP
// pushes back) or, while the connection is still on gnet, closes it once
// it has sent 8 MiB more. Its memory stays bounded: it grew by
// gigabytes, and the legitimate clients' acks took a second, before.
func TestHostileNoRead(t *testing.T) {
	res := hostileTest(t, AttackNoRead, 10*time.Second, nil)
	if res.Conns.BytesSent < 8<<20 {
		t.Errorf("%d bytes sent: want the attack to have run", res.Conns.BytesSent)
	}
	if grew := res.RSSPeak - res.RSSBefore; grew > 1<<30 {
		t.Errorf("the broker's RSS grew by %d MiB under the attack", grew>>20)
	}
	requireLegit(t, res)
}

// TestHostileDribble: a frame dribbled one byte per second; with
// frame_timeout_ms 4000 the broker closes it after about 4 s (the shipped
// 60 s is longer than a test should wait).
func TestHostileDribble(t *testing.T) {
	res := hostileTest(t, AttackDribble, 10*time.Second, func(c *HostileConfig) {
		c.Config = editedConfig(t, c.Config, "frame_timeout_ms = 60000", "frame_timeout_ms = 4000")
	})
	if res.Conns.Connected != 1 || res.Conns.BytesSent < 3 {
		t.Errorf("%d attack connections, %d bytes: want one dribbling", res.Conns.Connected, res.Conns.BytesSent)
	}
	if after := res.Conns.DribbleClosedAfter; after < 3 || after > 7 {
		t.Errorf("the broker closed the dribbling connection after %v s (-1: never), frame_timeout_ms 4000", after)
	}
	requireLegit(t, res)
}

// editedConfig writes a copy of the config at path with old replaced by
// new and returns its path.
func editedConfig(t *testing.T, path, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", path, old)
	}
	out := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(out, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileMemory: 3 minutes of mixed hostile traffic leave the
// broker's RSS within 64 MiB of its value before (after a warm-up of the
// legitimate clients), 15 s after, and it does not grow from the second
// minute to the third.
func TestHostileMemory(t *testing.T) {
	const (
		slack       = 64 << 20
		growthSlack = 16 << 20
	)
	res := hostileTest(t, AttackMixed, 3*time.Minute, func(c *HostileConfig) {
		c.Warmup, c.Settle = 10*time.Second, 15*time.Second
	})
	at2, at3 := res.RSSAt(120), res.RSSAt(180)
	t.Logf("RSS: %s before, %s at 2 min, %s at 3 min, peak %s, %s 15 s after",
		fmtBytes(res.RSSBefore), fmtBytes(at2), fmtBytes(at3), fmtBytes(res.RSSPeak), fmtBytes(res.RSSAfter))
	if res.Conns.Connected < 1000 || res.Conns.Frames == 0 {
		t.Errorf("%d attack connections, %d garbage frames: want the attack to have run", res.Conns.Connected, res.Conns.Frames)
	}
	if res.RSSAfter > res.RSSBefore+slack {
		t.Errorf("RSS %s 15 s after the attack, %s before: want at most %s more",
			fmtBytes(res.RSSAfter), fmtBytes(res.RSSBefore), fmtBytes(slack))
	}
	if at2 == 0 || at3 == 0 || at3 > at2+growthSlack {
		t.Errorf("RSS %s at 2 min, %s at 3 min: want no growth (at most %s)", fmtBytes(at2), fmtBytes(at3), fmtBytes(growthSlack))
	}
	requireLegit(t, res)
}

func TestRequestFrame(t *testing.T) {
	f := requestFrame(18, 3, 7, "ab", []byte{9, 9})
	want := []byte{0, 0, 0, 14, 0, 18, 0, 3, 0, 0, 0, 7, 0, 2, 'a', 'b', 9, 9}
	if !bytes.Equal(f, want) {
		t.Errorf("requestFrame = %v, want %v", f, want)
	}
	d := declaration(100<<20, 18)
	if got := binary.BigEndian.Uint32(d); got != 100<<20 || len(d) != 6 || d[5] != 18 {
		t.Errorf("declaration = %v: want the size 104857600 and 2 bytes", d)
	}
}

// TestHostileReport checks the verdict and both report formats on a
// made-up run.
func TestHostileReport(t *testing.T) {
	ok := &HostileResult{Attack: AttackRandom, Sent: 100, Acked: 100, APIVersionsSent: 20, APIVersionsMax: 3,
		Produce: &Latency{Samples: 100, P50: 1, P99: 4, Max: 9}, StallBound: 5000}
	bad := &HostileResult{Attack: AttackDeclare100M, Sent: 100, Acked: 90, NotAcked: 10, Stalled: 40, APIVersionsSent: 4,
		APIVersionsFailed: 2, APIVersionsMax: 10000, APIVersionsFirstError: "i/o timeout",
		Produce: &Latency{Samples: 90, P50: 1, P99: 9000, Max: 12000}, StallBound: 5000}
	if p := ok.Problems(); len(p) != 0 {
		t.Errorf("problems of a good run: %v", p)
	}
	if p := bad.Problems(); len(p) != 4 {
		t.Errorf("problems of a bad run: %q, want 4 (never answered, stalled, probes failed, probe slow)", p)
	}
	if !strings.Contains(strings.Join(bad.Problems(), "\n"), "30 records stalled") {
		t.Errorf("problems %q: want 30 stalled (40 less the 10 never answered)", bad.Problems())
	}
	rep := &HostileReport{Settings: DefaultHostileConfig("x", 0), Attacks: []*HostileResult{ok, bad}, Baseline: &HostileResult{Attack: "baseline"}}
	if !rep.Failed() || rep.Attack(AttackRandom) != ok {
		t.Errorf("Failed %v, Attack %p: want failed, the random result", rep.Failed(), rep.Attack(AttackRandom))
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"produce ack p99 ms", "PASS", "FAIL", "declare100m: 10 of 100 records never answered", ">10000"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report has no %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back HostileReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Attacks) != 2 || back.Attacks[1].NotAcked != 10 {
		t.Errorf("JSON report does not decode (%v) or lost results:\n%s", err, js.String())
	}
}
