package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"samsa/tools/ctl"
)

func TestTopics(t *testing.T) {
	t.Parallel()
	b := startBroker(t)

	out := ok(t, b.addr, "topics", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000", "--config", "cleanup.policy=compact")
	if !strings.Contains(out, "created topic orders: 3 partitions, replication factor 1") {
		t.Errorf("topics create printed %q", out)
	}
	var created []ctl.CreatedTopic
	okJSON(t, b.addr, &created, "topics", "create", "small")
	if len(created) != 1 || created[0].Name != "small" || created[0].Partitions != 1 || created[0].ReplicationFactor != 1 || created[0].ID == "-" {
		t.Errorf("topics create -o json: %+v", created)
	}
	fails(t, b.addr, 1, []string{"topics", "create", "orders"}, `topic "orders"`, "already exists")
	fails(t, b.addr, 1, []string{"topics", "create", "bad", "--config", "no.such.config=1"}, `cannot create topic "bad"`)

	out = ok(t, b.addr, "topics", "list")
	want := [][]string{{"TOPIC", "PARTITIONS", "REPLICATION-FACTOR"}, {"orders", "3", "1"}, {"small", "1", "1"}}
	if got := fields(out); !equalRows(got, want) {
		t.Errorf("topics list:\n%s\nwant rows %v", out, want)
	}
	var list []ctl.TopicSummary
	okJSON(t, b.addr, &list, "topics", "list")
	if len(list) != 2 || list[0].Name != "orders" || list[0].Partitions != 3 || list[0].ReplicationFactor != 1 || list[0].Internal {
		t.Errorf("topics list -o json: %+v", list)
	}

	produce(t, b.addr, "orders", 3, 5, time.Now())
	// Flags after the positional arguments.
	var desc []ctl.TopicDescription
	okJSON(t, b.addr, &desc, "topics", "describe", "orders")
	if len(desc) != 1 {
		t.Fatalf("topics describe: %+v", desc)
	}
	d := desc[0]
	if d.Name != "orders" || d.ID != list[0].ID || len(d.Partitions) != 3 || d.ReplicationFactor != 1 {
		t.Errorf("topics describe: %+v", d)
	}
	for i, p := range d.Partitions {
		if p.Partition != int32(i) || p.Leader != b.nodeID || p.LogStartOffset != 0 || p.LogEndOffset != 5 ||
			len(p.Replicas) != 1 || p.Replicas[0] != b.nodeID || len(p.ISR) != 1 || p.Error != "" {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	if got := configMap(d.Configs); len(got) != 2 || got["retention.ms"] != "3600000" || got["cleanup.policy"] != "compact" {
		t.Errorf("topics describe configs: %+v", d.Configs)
	}
	out = ok(t, b.addr, "topics", "describe", "orders")
	for _, w := range []string{"Topic: orders  ID: " + d.ID + "  Partitions: 3  ReplicationFactor: 1", "retention.ms=3600000", "PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START  LOG-END"} {
		if !strings.Contains(out, w) {
			t.Errorf("topics describe does not show %q:\n%s", w, out)
		}
	}
	if rows := fields(out); !containsRow(rows, []string{"2", "1", "0", "1", "1", "0", "5"}) {
		t.Errorf("topics describe has no row for partition 2:\n%s", out)
	}

	// An unknown topic is not auto-created by looking at it.
	r := fails(t, b.addr, 4, []string{"topics", "describe", "orders", "nosuch"}, `topic "nosuch" does not exist`, "samsactl topics list")
	if !strings.Contains(r.stdout, "Topic: orders") {
		t.Errorf("describing a known and an unknown topic did not print the known one:\n%s", r.stdout)
	}
	fails(t, b.addr, 4, []string{"offsets", "nosuch"}, `topic "nosuch" does not exist`)
	if out := ok(t, b.addr, "topics", "list"); strings.Contains(out, "nosuch") {
		t.Errorf("looking at an unknown topic created it:\n%s", out)
	}

	// configs describe: the topic's own configs, then all of them.
	out = ok(t, b.addr, "configs", "describe", "--topic", "orders")
	if rows := fields(out); !containsRow(rows, []string{"retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"}) || len(rows) != 3 {
		t.Errorf("configs describe --topic:\n%s", out)
	}
	var cd ctl.ConfigsDescription
	okJSON(t, b.addr, &cd, "configs", "describe", "--topic", "orders", "--all")
	if got := configMap(cd.Configs); cd.ResourceType != "topic" || cd.Resource != "orders" || got["retention.ms"] != "3600000" || got["segment.bytes"] == "" {
		t.Errorf("configs describe --all: %+v", cd)
	}
	fails(t, b.addr, 4, []string{"configs", "describe", "--topic", "nosuch"}, `topic "nosuch" does not exist`)

	ok(t, b.addr, "topics", "delete", "small")
	fails(t, b.addr, 4, []string{"topics", "delete", "small"}, `topic "small" does not exist`)
	var deleted struct {
		Deleted []string `json:"deleted"`
	}
	okJSON(t, b.addr, &deleted, "topics", "delete", "orders")
	if len(deleted.Deleted) != 1 || deleted.Deleted[0] != "orders" {
		t.Errorf("topics delete -o json: %+v", deleted)
	}
	if out := ok(t, b.addr, "topics", "list"); len(fields(out)) != 1 {
		t.Errorf("topics left after deleting all:\n%s", out)
	}
}

// TestTopicsAlter needs IncrementalAlterConfigs and CreatePartitions.
func TestTopicsAlter(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ok(t, b.addr, "topics", "create", "t1", "--partitions", "2", "--config", "cleanup.policy=compact")

	out := ok(t, b.addr, "topics", "alter-config", "t1", "--set", "retention.ms=1000", "--delete", "cleanup.policy")
	if want := "altered topic t1: set retention.ms=1000, deleted cleanup.policy\n"; out != want {
		t.Errorf("topics alter-config printed %q, want %q", out, want)
	}
	var desc []ctl.TopicDescription
	okJSON(t, b.addr, &desc, "topics", "describe", "t1")
	if got := configMap(desc[0].Configs); len(got) != 1 || got["retention.ms"] != "1000" {
		t.Errorf("configs after alter-config: %+v", desc[0].Configs)
	}
	fails(t, b.addr, 4, []string{"topics", "alter-config", "nosuch", "--set", "retention.ms=1"}, `topic "nosuch" does not exist`)
	fails(t, b.addr, 1, []string{"topics", "alter-config", "t1", "--set", "retention.ms=soon"}, "cannot alter configs of topic t1")

	// configs alter on a topic is the same thing.
	ok(t, b.addr, "configs", "alter", "--topic", "t1", "--set", "segment.ms=60000")
	var cd ctl.ConfigsDescription
	okJSON(t, b.addr, &cd, "configs", "describe", "--topic", "t1")
	if got := configMap(cd.Configs); len(got) != 2 || got["segment.ms"] != "60000" {
		t.Errorf("configs describe after configs alter: %+v", cd)
	}

	out = ok(t, b.addr, "topics", "add-partitions", "t1", "--total", "5")
	if out != "topic t1 now has 5 partitions (was 2)\n" {
		t.Errorf("topics add-partitions printed %q", out)
	}
	okJSON(t, b.addr, &desc, "topics", "describe", "t1")
	if len(desc[0].Partitions) != 5 || desc[0].Partitions[4].Leader != b.nodeID || desc[0].Partitions[4].LogEndOffset != 0 {
		t.Errorf("after add-partitions: %+v", desc[0].Partitions)
	}
	fails(t, b.addr, 1, []string{"topics", "add-partitions", "t1", "--total", "3"}, "already has 5 partitions")
	fails(t, b.addr, 4, []string{"topics", "add-partitions", "nosuch", "--total", "3"}, `topic "nosuch" does not exist`)
}

// TestBrokerConfigs needs dynamic broker configs (IncrementalAlterConfigs
// on resource "" and on the node id).
func TestBrokerConfigs(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	id := itoa(b.nodeID)

	var cd ctl.ConfigsDescription
	okJSON(t, b.addr, &cd, "configs", "describe", "--broker-id", id, "--all")
	if cd.ResourceType != "broker" || cd.Resource != id || len(cd.Configs) == 0 {
		t.Errorf("configs describe --broker-id --all: %+v", cd)
	}
	fails(t, b.addr, 4, []string{"configs", "describe", "--broker-id", "77"}, "broker 77")

	out := ok(t, b.addr, "configs", "alter", "--broker-defaults", "--set", "log.retention.ms=7200000")
	if out != "altered broker defaults: set log.retention.ms=7200000\n" {
		t.Errorf("configs alter --broker-defaults printed %q", out)
	}
	okJSON(t, b.addr, &cd, "configs", "describe", "--broker-defaults")
	if got := configMap(cd.Configs); got["log.retention.ms"] != "7200000" {
		t.Errorf("configs describe --broker-defaults: %+v", cd)
	}
	// Inherited values are not the resource's own (kafka-configs lists
	// only those): not on the node, not on a topic.
	okJSON(t, b.addr, &cd, "configs", "describe", "--broker-id", id)
	if _, set := configMap(cd.Configs)["log.retention.ms"]; set {
		t.Errorf("configs describe --broker-id lists the cluster default as its own: %+v", cd)
	}
	ok(t, b.addr, "topics", "create", "inherits")
	okJSON(t, b.addr, &cd, "configs", "describe", "--topic", "inherits")
	if len(cd.Configs) != 0 {
		t.Errorf("configs describe --topic lists inherited configs: %+v", cd)
	}
	ok(t, b.addr, "configs", "alter", "--broker-id", id, "--set", "log.retention.ms=3600000")
	okJSON(t, b.addr, &cd, "configs", "describe", "--broker-id", id)
	if got := configMap(cd.Configs); got["log.retention.ms"] != "3600000" {
		t.Errorf("configs describe --broker-id: %+v", cd)
	}
	ok(t, b.addr, "configs", "alter", "--broker-id", id, "--delete", "log.retention.ms")
	ok(t, b.addr, "configs", "alter", "--broker-defaults", "--delete", "log.retention.ms")
	out = ok(t, b.addr, "configs", "describe", "--broker-defaults")
	if strings.Contains(out, "log.retention.ms") {
		t.Errorf("log.retention.ms still set after --delete:\n%s", out)
	}
}

func configMap(cs []ctl.ConfigEntry) map[string]string {
	m := map[string]string{}
	for _, c := range cs {
		if c.Value != nil {
			m[c.Name] = *c.Value
		}
	}
	return m
}

// fields splits a table into rows of whitespace-separated fields.
func fields(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], " ") != strings.Join(b[i], " ") {
			return false
		}
	}
	return true
}

func containsRow(rows [][]string, want []string) bool {
	for _, r := range rows {
		if strings.Join(r, " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
