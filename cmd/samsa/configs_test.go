package main

import (
	"encoding/json"
	"fmt"
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
