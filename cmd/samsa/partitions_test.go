package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestManyPartitionsRestart: 2,000 partitions through the start-up and
// shutdown paths that open and close logs in parallel (issue 19). A clean
// stop rewrites only the logs that changed since they were opened; a broker
// SIGKILLed under an acks=all load, and SIGKILLed again while it recovers
// its logs in parallel, starts with every acknowledged record. It holds
// at most 500 segment files open (open_segment_files): the rest are closed
// while idle and reopened when read or written, through all of it.
func TestManyPartitionsRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: 2,000 partitions through several restarts")
	}
	t.Parallel()
	const topics, parts, fileBound = 20, 100, 500
	httpAddr := freeAddr(t)
	cfg := writeConfig(t, t.TempDir(), "open_segment_files = 0", fmt.Sprintf("open_segment_files = %d", fileBound),
		"[admin]\n# HTTP admin", "[admin]\nlisten = \""+httpAddr+"\"\n# HTTP admin", "\nlisten = \"\"\n\n[topic_defaults]", "\n\n[topic_defaults]")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("many-%02d", i)
		b.createTopic(names[i], parts, nil)
	}
	c := b.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	var (
		mu    sync.Mutex
		acked = map[string]bool{} // values acknowledged
	)
	produce := func(ctx context.Context, round string, n int) int {
		var wg sync.WaitGroup
		for i := range n {
			v := fmt.Sprintf("%s-%06d", round, i)
			r := &kgo.Record{Topic: names[i%topics], Partition: int32(i/topics) % parts, Value: []byte(v)}
			wg.Add(1)
			c.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					mu.Lock()
					acked[string(r.Value)] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// check reads every partition and requires each acknowledged value.
	check := func(when string) {
		t.Helper()
		stored := map[string]bool{}
		for _, name := range names {
			for _, rs := range b.consumeAll(name) {
				for _, r := range rs {
					stored[string(r.Value)] = true
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		lost := 0
		for v := range acked {
			if !stored[v] {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("%s: %d of %d acknowledged records missing", when, lost, len(acked))
		}
	}
	// One record in each partition: every log changed since it was opened.
	if n := produce(timeout(t, time.Minute), "first", topics*parts); n != topics*parts {
		t.Fatalf("%d of %d records acknowledged", n, topics*parts)
	}
	c.Close()
	check("with idle segment files closed")
	// At rest the broker holds no more segment files than the bound (and
	// a few dozen other descriptors).
	if n := openFiles(t, b.cmd.Process.Pid); n > fileBound+100 {
		t.Errorf("%d files open, open_segment_files %d", n, fileBound)
	} else {
		t.Logf("%d files open at rest, open_segment_files %d", n, fileBound)
	}
	// What /metrics says of it: files open within the bound, files closed
	// while idle and reopened by the writes and reads above.
	fams := scrape(t, httpAddr)
	if v, ok := metricValue(fams, "samsa_segment_files_open", nil); !ok || v < 1 || v > fileBound+fileBound/8 {
		t.Errorf("samsa_segment_files_open = %v (%v), bound %d", v, ok, fileBound)
	}
	for _, m := range []string{"samsa_segment_files_closed_idle_total", "samsa_segment_files_reopened_total"} {
		if v, ok := metricValue(fams, m, nil); !ok || v < 1 {
			t.Errorf("%s = %v (%v), want files closed and reopened", m, v, ok)
		}
	}

	b.stop()
	if n := lastRewritten(t, b); n < topics*parts {
		t.Fatalf("clean stop after writing to every partition rewrote %d logs, want >= %d:\n%s", n, topics*parts, b.log.tail())
	}
	b.restart()
	if !b.logged("idle segment files are closed") {
		t.Errorf("no log line about closing idle segment files:\n%s", b.log.tail())
	}
	b.stop()
	// Nothing changed since the start: a stop that rewrote the logs again
	// would cost a file per partition for nothing. (The metadata and
	// internal logs may have a record or two.)
	n := lastRewritten(t, b)
	t.Logf("clean stop of unchanged logs rewrote %d", n)
	if n > 10 {
		t.Fatalf("clean stop of unchanged logs rewrote %d of them", n)
	}
	b.restart()
	check("after clean restarts")

	// SIGKILL under load, then SIGKILL while the logs are recovered.
	c = b.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- produce(ctx, "load", 200_000) }()
	time.Sleep(700 * time.Millisecond)
	b.kill()
	cancel()
	c.Close()
	<-done
	killedWhileRecovering := 0
	for attempt := 0; attempt < 5 && killedWhileRecovering < 2; attempt++ {
		if b.killDuringRecovery() {
			killedWhileRecovering++
		}
	}
	t.Logf("%d starts killed while recovering their logs", killedWhileRecovering)
	if killedWhileRecovering == 0 {
		t.Fatalf("no start was caught recovering its logs:\n%s", b.log.tail())
	}
	b.restart()
	check("after SIGKILL under load and during recovery")
	// The log says the previous start was not clean, and it still serves.
	if !b.logged("last shutdown was not clean") {
		t.Fatal("no unclean start logged")
	}
}

// openFiles counts the descriptors process pid has open.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

var rewrittenRe = regexp.MustCompile(`msg="logs closed".* rewritten=([0-9]+)`)

// lastRewritten is how many logs the broker's last clean stop rewrote.
func lastRewritten(t *testing.T, b *broker) int {
	t.Helper()
	m := rewrittenRe.FindAllStringSubmatch(b.log.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no \"logs closed\" line in the broker's log:\n%s", b.log.tail())
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// killDuringRecovery starts the broker and SIGKILLs it as soon as it logs
// that it verifies its logs after an unclean stop, before it serves. It
// reports whether the kill came before the logs were all open.
func (b *broker) killDuringRecovery() bool {
	b.t.Helper()
	before := strings.Count(b.log.String(), "last shutdown was not clean")
	opened := strings.Count(b.log.String(), "partition logs opened")
	b.runs++
	fmt.Fprintf(b.log, "=== run %d: killed while recovering ===\n", b.runs)
	cmd := exec.Command(samsaBin, "-config", b.config, "-listen", b.addr, "-data-dir", b.dataDir)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(b.log.String(), "last shutdown was not clean") == before && time.Now().Before(deadline) {
		time.Sleep(200 * time.Microsecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	return strings.Count(b.log.String(), "partition logs opened") == opened
}
