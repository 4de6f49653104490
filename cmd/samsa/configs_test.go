package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestConfigsThroughSamsactl: a topic config changed with samsactl is what
// kafka-python's DescribeConfigs reports, and a retention change takes
// effect: kcat, reading from the beginning, no longer gets the records
// retention deleted.
func TestConfigsThroughSamsactl(t *testing.T) {
	kcat := needKcat(t)
	needKafkaPython(t)
	cfg := writeConfig(t, t.TempDir(), "retention_check_interval_ms = 300000", "retention_check_interval_ms = 200")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	ctl := func(args ...string) string {
		t.Helper()
		return runTool(t, "", samsactl, append([]string{"-broker", b.addr}, args...)...)
	}
	ctl("topics", "create", "ret", "--partitions", "1", "--config", "segment.bytes=2000")
	var in strings.Builder
	for i := range 200 {
		fmt.Fprintf(&in, "%03d-%s\n", i, strings.Repeat("x", 96))
	}
	runTool(t, in.String(), kcat, "-b", b.addr, "-P", "-t", "ret", "-p", "0", "-X", "batch.num.messages=10", "-X", "linger.ms=0", "-z", "none")
	count := func() (n int, first string) {
		out := runTool(t, "", kcat, "-b", b.addr, "-C", "-t", "ret", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o\n")
		lines := strings.Fields(out)
		if len(lines) == 0 {
			return 0, ""
		}
		return len(lines), lines[0]
	}
	if n, first := count(); n != 200 || first != "0" {
		t.Fatalf("kcat read %d records from offset %s, want 200 from 0", n, first)
	}
	describe := func() map[string]string {
		t.Helper()
		var m map[string]string
		out := runTool(t, "", pythonWithKafka, "testdata/kafka_python_configs.py", b.addr, "ret")
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("kafka-python output %q: %v", out, err)
		}
		return m
	}
	if m := describe(); m["retention.bytes"] != "-1" || m["segment.bytes"] != "2000" {
		t.Fatalf("before: retention.bytes %q, segment.bytes %q", m["retention.bytes"], m["segment.bytes"])
	}
	ctl("topics", "alter-config", "ret", "--set", "retention.bytes=6000")
	if m := describe(); m["retention.bytes"] != "6000" || m["segment.bytes"] != "2000" {
		t.Fatalf("after samsactl: retention.bytes %q, segment.bytes %q", m["retention.bytes"], m["segment.bytes"])
	}
	// The retention check (every 200 ms here) deletes old segments.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, first := count()
		if n < 200 && n >= 40 && first != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after retention.bytes=6000 kcat still reads %d records from offset %s", n, first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// samsactl shows the new log start, and the broker's version.
	if out := ctl("offsets", "ret"); !strings.Contains(out, "200") {
		t.Fatalf("samsactl offsets:\n%s", out)
	}
	if out := ctl("cluster"); !strings.Contains(out, "samsa "+testVersion) {
		t.Fatalf("samsactl cluster does not show the broker's version %s:\n%s", testVersion, out)
	}
}

// TestAdminChangesSurviveKill: a DeleteRecords, a topic config change, a
// dynamic broker config and added partitions, each acknowledged to
// samsactl, are all there after SIGKILL and restart, and `samsactl log
// verify` finds no damage in the data directory the kill left.
func TestAdminChangesSurviveKill(t *testing.T) {
	b := startBroker(t)
	ctl := func(args ...string) string {
		t.Helper()
		return runTool(t, "", samsactl, append([]string{"-broker", b.addr}, args...)...)
	}
	ctl("topics", "create", "durable", "--partitions", "1")
	var in strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "record-%d\n", i)
	}
	kcat := needKcat(t)
	runTool(t, in.String(), kcat, "-b", b.addr, "-P", "-t", "durable", "-p", "0", "-X", "batch.num.messages=10", "-X", "linger.ms=0")
	ctl("delete-records", "durable", "--partition", "0", "--before", "40")
	ctl("topics", "alter-config", "durable", "--set", "retention.ms=7654321")
	ctl("configs", "alter", "--broker-defaults", "--set", "log.retention.bytes=987654321")
	ctl("topics", "add-partitions", "durable", "--total", "3")
	b.kill()

	if out, err := exec.Command(samsactl, "log", "verify", b.dataDir).CombinedOutput(); err != nil {
		t.Fatalf("log verify after SIGKILL: %v\n%s", err, out)
	}
	b.restart()
	var offs struct {
		Partitions []struct {
			Partition int32 `json:"partition"`
			Earliest  int64 `json:"earliest"`
			Latest    int64 `json:"latest"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(ctl("offsets", "durable", "-o", "json")), &offs); err != nil {
		t.Fatal(err)
	}
	if p := offs.Partitions; len(p) != 3 || p[0].Earliest != 40 || p[0].Latest != 100 {
		t.Fatalf("offsets after SIGKILL: %+v, want 3 partitions and partition 0 at [40, 100)", p)
	}
	topicCfg := ctl("configs", "describe", "--topic", "durable")
	brokerCfg := ctl("configs", "describe", "--broker-defaults")
	if !strings.Contains(topicCfg, "7654321") || !strings.Contains(brokerCfg, "987654321") {
		t.Fatalf("configs after SIGKILL:\n%s\n%s", topicCfg, brokerCfg)
	}
	out := runTool(t, "", kcat, "-b", b.addr, "-C", "-t", "durable", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o %s\n")
	if first := strings.SplitN(out, "\n", 2)[0]; first != "40 record-40" {
		t.Fatalf("first record read after SIGKILL: %q", first)
	}
}
