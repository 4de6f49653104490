package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLog(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ok(t, b.addr, "topics", "create", "lt", "--partitions", "1")
	produce(t, b.addr, "lt", 1, 20, time.Now())
	b.stop()

	var segment string
	filepath.WalkDir(b.dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(path)) == "lt-0" && strings.HasSuffix(path, ".log") {
			segment = path
		}
		return nil
	})
	if segment == "" {
		t.Fatalf("no segment of lt-0 under %s", b.dataDir)
	}

	out := ok(t, "", "log", "verify", b.dataDir)
	if !strings.HasSuffix(out, " bytes: 0 problems (0 damage, 0 warnings)\n") {
		t.Errorf("log verify:\n%s", out)
	}
	var vr VerifyResult
	okJSON(t, "", &vr, "log", "verify", b.dataDir)
	if vr.Damaged || vr.Records < 20 || vr.Partitions < 1 || vr.DataDir != b.dataDir {
		t.Errorf("log verify -o json: %+v", vr)
	}

	out = ok(t, "", "log", "dump", segment)
	if !strings.Contains(out, "baseOffset: 0 lastOffset: 19 count: 20") {
		t.Errorf("log dump:\n%s", out)
	}
	out = ok(t, "", "log", "dump", segment, "--records", "-o", "json")
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("log dump -o json line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n == 0 {
		t.Errorf("log dump -o json printed nothing")
	}

	fails(t, "", 4, []string{"log", "dump", filepath.Join(b.dataDir, "nosuch.log")}, "nosuch.log")
	fails(t, "", 4, []string{"log", "verify", filepath.Join(b.dataDir, "nosuch")}, "nosuch")
	fails(t, "", 2, []string{"log", "dump"}, "needs a FILE")

	// Damage a record in the first batch: its CRC no longer holds.
	data, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}
	data[70] ^= 0xff
	if err := os.WriteFile(segment, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := fails(t, "", 1, []string{"log", "verify", b.dataDir}, "log verify found damage in "+b.dataDir)
	if !strings.Contains(r.stdout, "damage [crc]") {
		t.Errorf("log verify on a damaged log printed:\n%s", r.stdout)
	}
}
