package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// TestCPUPinning: with [cpu] netio and disks set, the event loop that
// serves a client and both disk goroutines run on threads restricted to
// the configured CPU.
func TestCPUPinning(t *testing.T) {
	shipped, err := os.ReadFile(repoConfig)
	if err != nil {
		t.Fatal(err)
	}
	// The first CPU this process may run on (a container's cpuset may
	// exclude CPU 0).
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for !set.IsSet(cpu) {
		cpu++
	}
	c := strconv.Itoa(cpu)
	cfg := strings.Replace(string(shipped), `netio = ""`, `netio = "`+c+`"`, 1)
	cfg = strings.Replace(cfg, `disks = ""`, `disks = "`+c+`"`, 1)
	if cfg == string(shipped) {
		t.Fatal("shipped config has no [cpu] netio/disks lines to change")
	}
	path := filepath.Join(t.TempDir(), "pinned.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: path, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic("pinned"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(timeout(t, 20*time.Second), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(b.cmd.Process.Pid), "task", "*", "status"))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads found: %v", err)
	}
	pinned := 0
	for _, f := range tasks {
		st, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) == c {
				pinned++
			}
		}
	}
	// The writer, the syncer, and at least one event loop.
	if pinned < 3 {
		t.Fatalf("%d of %d threads pinned to CPU %s, want at least 3", pinned, len(tasks), c)
	}
}
