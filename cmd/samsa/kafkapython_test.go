package main

// kafka-python 2.0.2 (Debian's python3-kafka) against the binary. It
// caps the versions it uses far below franz-go's (Metadata v5 and
// below, Produce v7 and below), which is the point. The client script is
// testdata/kafka_python_client.py; it prints JSON lines checked here.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// pythonWithKafka is Debian's python3: the python3 first on PATH may be
// another installation without python3-kafka.
const pythonWithKafka = "/usr/bin/python3"

func needKafkaPython(t *testing.T) {
	t.Helper()
	// kafka-python reads and writes snappy, lz4 and zstd batches only with
	// python3-snappy, python3-lz4 and python3-zstandard (UnsupportedCodecError
	// otherwise). make test needs every tool the README names: a skip
	// would let a machine without them pass.
	if out, err := exec.Command(pythonWithKafka, "-c", "import kafka, snappy, lz4.frame, zstandard").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import kafka, snappy, lz4 and zstandard (apt-get install python3-kafka python3-snappy python3-lz4 python3-zstandard; .ci/run installs them): %v\n%s", pythonWithKafka, err, out)
	}
}

type pyLine struct {
	Kind      string            `json:"kind"`
	Error     *string           `json:"error"`
	Configs   map[string]string `json:"configs"`
	I         int               `json:"i"`
	Codec     string            `json:"codec"`
	Partition *int32            `json:"partition"`
	Offset    *int64            `json:"offset"`
	Key       *string           `json:"key"`
	Value     *string           `json:"value"`
	Headers   [][2]string       `json:"headers"`
	Offsets   map[string]int64  `json:"offsets"`
	Version   []int             `json:"version"`
}

func TestKafkaPython(t *testing.T) {
	needKafkaPython(t)
	b := startBroker(t)
	const n = 60
	out := runTool(t, "", pythonWithKafka, "testdata/kafka_python_client.py", b.addr, "py-topic", fmt.Sprint(n))

	var lines []pyLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var pl pyLine
		if err := json.Unmarshal([]byte(l), &pl); err != nil {
			t.Fatalf("script output line %q: %v\n%s", l, err, out)
		}
		lines = append(lines, pl)
	}
	byKind := map[string][]pyLine{}
	for _, l := range lines {
		byKind[l.Kind] = append(byKind[l.Kind], l)
	}
	one := func(kind string) pyLine {
		t.Helper()
		if len(byKind[kind]) != 1 {
			t.Fatalf("%d %q lines, want 1:\n%s", len(byKind[kind]), kind, out)
		}
		return byKind[kind][0]
	}
	one("done") // the script ran to its end
	t.Logf("kafka-python negotiated api_version %v", one("producer_api_version").Version)

	// Admin: CreateTopics, a second create of the same topic, DescribeConfigs.
	if e := one("create_again").Error; e == nil || *e != "TopicAlreadyExistsError" {
		t.Fatalf("creating an existing topic: %v, want TopicAlreadyExistsError", e)
	}
	wantCfg := map[string]string{"retention.ms": "3600000", "max.message.bytes": "500000", "cleanup.policy": "delete"}
	if got := one("configs").Configs; !reflect.DeepEqual(got, wantCfg) {
		t.Fatalf("describe_configs: %v, want %v", got, wantCfg)
	}
	if len(byKind["describe_configs_error"]) != 0 {
		t.Fatalf("describe_configs errors: %+v", byKind["describe_configs_error"])
	}

	// The producer's acknowledged offsets: per partition dense from 0, in
	// send order.
	type pos struct {
		p int32
		o int64
	}
	want := map[pos]pyLine{} // what the consumer must find where
	next := map[int32]int64{}
	acked := byKind["acked"]
	if len(acked) != n {
		t.Fatalf("%d acknowledged sends, want %d", len(acked), n)
	}
	for _, a := range acked {
		p := int32(a.I % 3)
		if *a.Partition != p || *a.Offset != next[p] {
			t.Fatalf("send %d acknowledged at %d/%d, want %d/%d", a.I, *a.Partition, *a.Offset, p, next[p])
		}
		next[p]++
		key, val := fmt.Sprintf("key-%d", a.I), fmt.Sprintf("value-%d", a.I)
		want[pos{p, *a.Offset}] = pyLine{Key: &key, Value: &val, Headers: [][2]string{{"idx", fmt.Sprint(a.I)}, {"empty", ""}}}
	}
	// Five records with each codec (gzip, snappy, lz4, zstd), in turn.
	gz := byKind["acked_compressed"]
	if len(gz) != 20 {
		t.Fatalf("%d compressed sends acknowledged, want 20", len(gz))
	}
	for _, a := range gz {
		if *a.Partition != 0 || *a.Offset != next[0] {
			t.Fatalf("%s send %d acknowledged at %d/%d, want 0/%d", a.Codec, a.I, *a.Partition, *a.Offset, next[0])
		}
		next[0]++
		val := fmt.Sprintf("%s-%d", a.Codec, a.I)
		want[pos{0, *a.Offset}] = pyLine{Value: &val, Headers: [][2]string{}}
	}

	// The assigned consumer read exactly those, in offset order.
	seen := map[int32]int64{}
	recs := byKind["record"]
	for _, r := range recs {
		p, o := *r.Partition, *r.Offset
		if o != seen[p] {
			t.Fatalf("consumer got %d/%d after %d/%d", p, o, p, seen[p]-1)
		}
		seen[p]++
		w, ok := want[pos{p, o}]
		if !ok {
			t.Fatalf("consumer got unexpected record at %d/%d", p, o)
		}
		if !reflect.DeepEqual(r.Key, w.Key) || *r.Value != *w.Value || !reflect.DeepEqual(nonNil(r.Headers), nonNil(w.Headers)) {
			t.Fatalf("record at %d/%d: key %v value %q headers %v; want key %v value %q headers %v",
				p, o, str(r.Key), *r.Value, r.Headers, str(w.Key), *w.Value, w.Headers)
		}
	}
	if len(recs) != len(want) {
		t.Fatalf("consumer read %d records, want %d", len(recs), len(want))
	}

	// ListOffsets: latest, earliest, by time; then a seek into partition 2.
	if got, w := one("end_offsets").Offsets, map[string]int64{"0": next[0], "1": next[1], "2": next[2]}; !reflect.DeepEqual(got, w) {
		t.Fatalf("end_offsets %v, want %v", got, w)
	}
	if got, w := one("beginning_offsets").Offsets, map[string]int64{"0": 0, "1": 0, "2": 0}; !reflect.DeepEqual(got, w) {
		t.Fatalf("beginning_offsets %v, want %v", got, w)
	}
	if l := one("offsets_for_times"); l.Offset == nil || *l.Offset != 0 {
		t.Fatalf("offsets_for_times(0) on partition 1: %v, want 0", l.Offset)
	}
	// Partition 2 holds sends 2, 5, 8, ...: offset 4 is send 14.
	if l := one("seek"); l.Partition == nil || *l.Partition != 2 || *l.Offset != 4 || *l.Value != "value-14" {
		t.Fatalf("seek to 2/4 read %v/%v %v, want 2/4 value-14", str32(l.Partition), str64(l.Offset), str(l.Value))
	}
}

func nonNil(h [][2]string) [][2]string {
	if h == nil {
		return [][2]string{}
	}
	return h
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func str32(p *int32) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

func str64(p *int64) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}
