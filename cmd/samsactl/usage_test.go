package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"samsa/tools/ctl"
)

// Usage errors exit 2 before any connection: the broker address here is
// closed, which would exit 3.
func TestUsage(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"topics"}, "topics needs a subcommand: one of list, describe, create"},
		{[]string{"topics", "frobnicate"}, `topics has no subcommand "frobnicate"`},
		{[]string{"topics", "create"}, "needs at least one TOPIC"},
		{[]string{"topics", "create", "x", "--partitions", "0"}, "--partitions must be at least 1"},
		{[]string{"topics", "create", "x", "--config", "novalue"}, `"novalue" is not NAME=VALUE`},
		{[]string{"topics", "list", "-o", "yaml"}, `-o must be table or json, not "yaml"`},
		{[]string{"topics", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"topics", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"topics", "alter-config", "t"}, "nothing to alter"},
		{[]string{"topics", "add-partitions", "t"}, "--total N"},
		{[]string{"topics", "add-partitions", "t", "--total", "4294967301"}, "more partitions than a topic can have"},
		{[]string{"topics", "describe", ""}, "an empty TOPIC"},
		{[]string{"topics", "delete", "a", " "}, "an empty TOPIC"},
		{[]string{"configs", "describe"}, "exactly one of --topic"},
		{[]string{"configs", "describe", "--topic", "t", "--broker-defaults"}, "exactly one of --topic"},
		{[]string{"configs", "alter", "--broker-id", "x", "--set", "a=b"}, `"x" is not a node id`},
		{[]string{"groups", "describe"}, "needs at least one GROUP"},
		{[]string{"groups", "reset-offsets", "g", "--to-earliest"}, "--topic TOPIC[:P,P...] (repeatable) or --all-topics"},
		{[]string{"groups", "reset-offsets", "g", "--all-topics"}, "one of --to-earliest"},
		{[]string{"groups", "reset-offsets", "g", "--all-topics", "--to-earliest", "--to-latest"}, "give one of --to-earliest, --to-latest"},
		{[]string{"groups", "reset-offsets", "g", "--all-topics", "--to-datetime", "tomorrow"}, "not RFC 3339"},
		{[]string{"groups", "reset-offsets", "g", "--topic", "t:x", "--to-earliest"}, "not a partition number"},
		{[]string{"offsets"}, "needs a TOPIC"},
		{[]string{"offsets", "t", "--time", "soon"}, "neither RFC 3339"},
		{[]string{"delete-records", "t"}, "exactly one of --before OFFSET and --all"},
		{[]string{"delete-records", "t", "--before", "3"}, "--before needs --partition P"},
		{[]string{"status", "-o", "json"}, "prints text only"},
		{[]string{"topics", "list", "-timeout", "0s"}, "-timeout must be positive"},
	} {
		fails(t, addr, 2, c.args, c.want)
	}

	var o, e strings.Builder
	if code := run(nil, &o, &e); code != 2 || !strings.Contains(e.String(), "Exit codes:") {
		t.Errorf("samsactl without a command: exit %d, stderr %q", code, e.String())
	}
	o.Reset()
	if code := run([]string{"-h"}, &o, &e); code != 0 || !strings.Contains(o.String(), "3  cannot reach the broker") || !strings.Contains(o.String(), "groups reset-offsets GROUP") {
		t.Errorf("samsactl -h: exit %d, stdout %q", code, o.String())
	}
	o.Reset()
	if code := run([]string{"topics", "create", "-h"}, &o, &e); code != 0 || !strings.Contains(o.String(), "-replication-factor") || !strings.Contains(o.String(), "-broker") {
		t.Errorf("samsactl topics create -h: exit %d, stdout %q", code, o.String())
	}
	// After "--", "-x" is a topic name: the command goes on to connect.
	fails(t, addr, 3, []string{"topics", "describe", "--", "-x"}, "cannot reach broker")
}

// A closed port fails with exit 3 in well under the -timeout; so does a
// listener that never answers, within the -timeout.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	for _, args := range [][]string{{"topics", "list"}, {"groups", "describe", "g"}, {"cluster"}, {"status"}, {"promote"}} {
		r := fails(t, addr, 3, args, "cannot reach broker "+addr+" (connection refused): is samsa running? set -broker")
		if r.took > 3*time.Second {
			t.Errorf("samsactl %v took %v to give up on a closed port", args, r.took)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	r := fails(t, l.Addr().String(), 3, []string{"topics", "list", "-timeout", "1s"}, "cannot reach broker", "no answer")
	if r.took > 4*time.Second {
		t.Errorf("a silent broker took %v with -timeout 1s", r.took)
	}
}

// TestKafkaCompat runs samsactl against franz-go's kfake, a Kafka stand-in
// that, here, lacks IncrementalAlterConfigs: the commands that do not need
// it work, and the one that does says so.
func TestKafkaCompat(t *testing.T) {
	t.Parallel()
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(kmsg.IncrementalAlterConfigs.Int16(), -1)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.MaxVersions(vs), kfake.ClusterID("kfake-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]

	ok(t, addr, "topics", "create", "k1", "--partitions", "2", "--config", "retention.ms=60000")
	var desc []ctl.TopicDescription
	okJSON(t, addr, &desc, "topics", "describe", "k1")
	if len(desc) != 1 || len(desc[0].Partitions) != 2 || configMap(desc[0].Configs)["retention.ms"] != "60000" {
		t.Errorf("topics describe on kfake: %+v", desc)
	}
	produce(t, addr, "k1", 2, 3, time.Now())
	out := ok(t, addr, "offsets", "k1")
	if want := [][]string{{"PARTITION", "EARLIEST", "LATEST"}, {"0", "0", "3"}, {"1", "0", "3"}}; !equalRows(fields(out), want) {
		t.Errorf("offsets on kfake:\n%s", out)
	}
	var cl ctl.ClusterDescription
	okJSON(t, addr, &cl, "cluster")
	if cl.ClusterID != "kfake-test" || len(cl.Brokers) != 1 || cl.Brokers[0].Role != "alone" {
		t.Errorf("cluster on kfake: %+v", cl)
	}
	fails(t, addr, 1, []string{"topics", "alter-config", "k1", "--set", "retention.ms=1"},
		"cannot alter configs of topic k1: the broker does not support IncrementalAlterConfigs (API key 44)")
	fails(t, addr, 4, []string{"groups", "describe", "nosuch"}, `group "nosuch" does not exist`)
}

// TestBinary builds the real samsactl once and checks its exit codes and
// output reach the process.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "samsactl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "-ldflags", "-X main.version=v9.9.9-test", ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build samsactl: %v\n%s", err, out)
	}
	b := startBroker(t)
	runBin := func(args ...string) (int, string, string) {
		cmd := exec.CommandContext(ctx, bin, args...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, o.String(), e.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), o.String(), e.String()
		}
		t.Fatalf("cannot run samsactl: %v", err)
		return 0, "", ""
	}
	if code, out, _ := runBin("version"); code != 0 || out != "samsactl v9.9.9-test\n" {
		t.Errorf("samsactl version: exit %d, %q", code, out)
	}
	if code, _, errOut := runBin("-broker", closedAddr(t), "topics", "list"); code != 3 || !strings.Contains(errOut, "cannot reach broker") {
		t.Errorf("samsactl against a closed port: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runBin("topics", "create"); code != 2 {
		t.Errorf("samsactl topics create without a topic: exit %d, want 2", code)
	}
	if code, _, errOut := runBin("-broker", b.addr, "topics", "describe", "nosuch"); code != 4 || !strings.Contains(errOut, `topic "nosuch" does not exist`) {
		t.Errorf("samsactl topics describe nosuch: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := runBin("-broker", b.addr, "topics", "create", "bin", "--partitions", "2", "-o", "json"); code != 0 {
		t.Errorf("samsactl topics create: exit %d, stderr %q", code, errOut)
	} else {
		var created []ctl.CreatedTopic
		if err := json.Unmarshal([]byte(out), &created); err != nil || len(created) != 1 || created[0].Partitions != 2 {
			t.Errorf("samsactl topics create -o json: %v %q", err, out)
		}
	}
}
