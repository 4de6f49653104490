package main

// Group consumers of other clients against the binary: kcat -G
// (librdkafka's KafkaConsumer) and kafka-python's KafkaConsumer with a
// group_id each consume, commit, and resume from their commits after the
// consumer restarts and after the broker restarts. franz-go's group
// consumers are tested in engine/groups_test.go.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func produceRange(t *testing.T, b *broker, topic string, from, to int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte(fmt.Sprint(i))})
	}
	produceSync(t, b.client(), rs...)
}

// checkCommitted requires the group's committed offsets to equal the
// topic's end offsets.
func checkCommitted(t *testing.T, b *broker, group, topic string) {
	t.Helper()
	offs, err := b.admin().FetchOffsets(timeout(t, 10e9), group)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range b.endOffsets(topic) {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.At != end {
			t.Fatalf("group %s partition %d: committed %+v, end offset %d", group, p, o, end)
		}
	}
}

// keysInRange requires got to be exactly the keys from..to-1.
func keysInRange(t *testing.T, what string, got []string, from, to int) {
	t.Helper()
	sort.Strings(got)
	var want []string
	for i := from; i < to; i++ {
		want = append(want, fmt.Sprintf("k%04d", i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: got %d keys %v..., want k%04d..k%04d", what, len(got), head(got), from, to-1)
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

func TestKcatGroupConsumerResumes(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	kcat := needKcat(t)
	b := startBroker(t)
	const topic, group = "kcat-group", "kcat-g"
	b.createTopic(topic, 3, nil)
	consume := func() []string {
		out := runTool(t, "", kcat, "-b", b.addr, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", "-f", "%k\n", topic)
		return strings.Fields(out)
	}
	produceRange(t, b, topic, 0, 50)
	keysInRange(t, "first run", consume(), 0, 50)
	checkCommitted(t, b, group, topic)

	produceRange(t, b, topic, 50, 70)
	keysInRange(t, "after the consumer restarted", consume(), 50, 70)

	b.stop()
	b.restart()
	produceRange(t, b, topic, 70, 80)
	keysInRange(t, "after the broker restarted", consume(), 70, 80)
	checkCommitted(t, b, group, topic)

	ds, err := b.admin().DescribeGroups(timeout(t, 10e9), group)
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[group]; d.State != "Empty" || d.ProtocolType != "consumer" {
		t.Fatalf("group after its consumers left: %+v", d)
	}
}

func TestKafkaPythonGroupConsumerResumes(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	needKafkaPython(t)
	b := startBroker(t)
	const topic, group = "py-group", "py-g"
	b.createTopic(topic, 3, nil)
	consume := func(want int) []string {
		out := runTool(t, "", pythonWithKafka, "testdata/kafka_python_group.py", b.addr, topic, group, fmt.Sprint(want))
		var keys []string
		var committed map[string]int64
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var pl pyLine
			if err := json.Unmarshal([]byte(l), &pl); err != nil {
				t.Fatalf("script output line %q: %v\n%s", l, err, out)
			}
			switch pl.Kind {
			case "record":
				keys = append(keys, *pl.Key)
			case "committed":
				committed = pl.Offsets
			}
		}
		ends := b.endOffsets(topic)
		for p, end := range ends {
			if committed[fmt.Sprint(p)] != end {
				t.Fatalf("kafka-python sees committed %v, end offsets %v", committed, ends)
			}
		}
		return keys
	}
	produceRange(t, b, topic, 0, 40)
	keysInRange(t, "first run", consume(40), 0, 40)
	checkCommitted(t, b, group, topic)

	produceRange(t, b, topic, 40, 55)
	keysInRange(t, "after the consumer restarted", consume(15), 40, 55)

	b.stop()
	b.restart()
	produceRange(t, b, topic, 55, 60)
	keysInRange(t, "after the broker restarted", consume(5), 55, 60)

	var lag kadm.DescribedGroupLags
	lag, err := b.admin().Lag(timeout(t, 10e9), group)
	if err != nil {
		t.Fatal(err)
	}
	if l := lag[group]; l.Error() != nil || l.Lag.Total() != 0 {
		t.Fatalf("lag after resuming: %+v", l)
	}
}
