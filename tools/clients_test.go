package tools_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func needKcat(t *testing.T) string {
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (apt-get install kcat; .ci/run does)")
	}
	return p
}

func runCmd(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, stderr.String())
	}
	return string(out)
}

func TestKcat(t *testing.T) {
	kcat := needKcat(t)
	p := startProc(t, t.TempDir(), "")
	adm := kadm.NewClient(p.client())
	if r, err := adm.CreateTopic(ctxFor(t, 10*time.Second), 2, 1, nil, "kc"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	out := runCmd(t, "", kcat, "-b", p.addr, "-L")
	if !strings.Contains(out, "broker 1 at "+p.addr) || !strings.Contains(out, `topic "kc" with 2 partitions`) {
		t.Fatalf("kcat -L:\n%s", out)
	}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		topic := "kc-" + codec
		var in strings.Builder
		for i := range 10 {
			fmt.Fprintf(&in, "key%d:%s-value-%d\n", i, codec, i)
		}
		runCmd(t, in.String(), kcat, "-b", p.addr, "-P", "-t", topic, "-p", "0", "-K:", "-z", codec, "-X", "topic.request.required.acks=-1")
		out := runCmd(t, "", kcat, "-b", p.addr, "-C", "-t", topic, "-p", "0", "-o", "4", "-e", "-f", "%k|%s|%o\n")
		var want strings.Builder
		for i := 4; i < 10; i++ {
			fmt.Fprintf(&want, "key%d|%s-value-%d|%d\n", i, codec, i, i)
		}
		if out != want.String() {
			t.Fatalf("%s: kcat consumed:\n%s\nwant:\n%s", codec, out, want.String())
		}
	}
	// Offsets by time and the end.
	out = runCmd(t, "", kcat, "-b", p.addr, "-Q", "-t", "kc-lz4:0:-1")
	if !strings.Contains(out, "offset 10") {
		t.Fatalf("kcat -Q end offset:\n%s", out)
	}
}

const kafkaPythonScript = `
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic, ConfigResource, ConfigResourceType
b = sys.argv[1]
adm = KafkaAdminClient(bootstrap_servers=b)
adm.create_topics([NewTopic("py", 3, 1, topic_configs={"retention.ms": "7200000"})])
cfg = adm.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "py")])
for res in cfg[0].resources:
    for entry in res[4]:
        if entry[0] == "retention.ms":
            print("config retention.ms=%s" % entry[1])
p = KafkaProducer(bootstrap_servers=b, acks="all", compression_type="gzip")
futs = []
for i in range(300):
    futs.append(p.send("py", key=b"k%d" % (i % 10), value=b"v%d" % i, headers=[("n", str(i).encode())], partition=i % 3))
p.flush()
offs = [f.get(timeout=10).offset for f in futs]
print("produced %d max_offset %d" % (len(offs), max(offs)))
c = KafkaConsumer(bootstrap_servers=b, consumer_timeout_ms=5000, auto_offset_reset="earliest")
tps = [TopicPartition("py", i) for i in range(3)]
c.assign(tps)
c.seek_to_beginning()
got = {}
for m in c:
    got.setdefault(m.partition, []).append((m.offset, m.value.decode(), dict(m.headers)["n"].decode()))
    if sum(len(v) for v in got.values()) == 300:
        break
for part in sorted(got):
    vals = got[part]
    ok = all(v == "v%d" % int(n) and int(n) % 3 == part for (_, v, n) in vals)
    inorder = [o for (o, _, _) in vals] == list(range(len(vals)))
    print("partition %d count %d ok %s ordered %s" % (part, len(vals), ok, inorder))
print("end", c.end_offsets(tps)[tps[0]])
c.seek(tps[1], 50)
m = next(c)
print("seek", m.partition, m.offset, m.value.decode())
`

func TestKafkaPython(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import kafka").Run(); err != nil {
		t.Skip("python3-kafka not installed (apt-get install python3-kafka; .ci/run does)")
	}
	p := startProc(t, t.TempDir(), "")
	script := filepath.Join(t.TempDir(), "client.py")
	os.WriteFile(script, []byte(kafkaPythonScript), 0o644)
	out := runCmd(t, "", py, script, p.addr)
	want := []string{
		"config retention.ms=7200000",
		"produced 300 max_offset 99",
		"partition 0 count 100 ok True ordered True",
		"partition 1 count 100 ok True ordered True",
		"partition 2 count 100 ok True ordered True",
		"end 100",
		"seek 1 50 v151",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("kafka-python output lacks %q:\n%s", w, out)
		}
	}
}

// TestRestartKeepsTopicsRecordsProducers checks a clean (SIGTERM) and an
// unclean (SIGKILL) restart keep topics with their configs, records, and
// idempotent producer state.
func TestRestartKeepsTopicsRecordsProducers(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, dir, addr)
	// Produce v12 and below name topics (v13 uses ids).
	c := p.client(kgo.MaxVersions(kversion.V3_9_0()))
	adm := kadm.NewClient(c)
	ret := "123456789"
	if r, err := adm.CreateTopic(ctxFor(t, 10*time.Second), 1, 1, map[string]*string{"retention.ms": &ret}, "rs"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	ipr, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctxFor(t, 10*time.Second), c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatal(err, ipr)
	}
	pid := ipr.ProducerID
	produce := func(c *kgo.Client, seq int32, v string) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		rec := &kgo.Record{Value: []byte(v)}
		batch := buildIdempotentBatch(pid, 0, seq, rec)
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "rs"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := c.Request(ctxFor(t, 10*time.Second), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	seq := int32(0)
	for i := range 5 {
		if r := produce(c, seq, fmt.Sprint(i)); r.ErrorCode != 0 || r.BaseOffset != int64(i) {
			t.Fatalf("produce %d: %+v", i, r)
		}
		seq++
	}
	for _, how := range []string{"sigterm", "sigkill"} {
		c.Close()
		if how == "sigterm" {
			p.stop()
		} else {
			p.kill()
		}
		p = startProc(t, dir, addr)
		c = p.client(kgo.MaxVersions(kversion.V3_9_0()))
		// The retry of the last batch is a duplicate: same offset, no append.
		if r := produce(c, seq-1, fmt.Sprint(seq-1)); r.ErrorCode != 0 || r.BaseOffset != int64(seq-1) {
			t.Fatalf("%s: duplicate after restart: %+v", how, r)
		}
		if r := produce(c, seq+3, "gap"); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
			t.Fatalf("%s: gap after restart: %v", how, kerr.ErrorForCode(r.ErrorCode))
		}
		if r := produce(c, seq, fmt.Sprint(seq)); r.ErrorCode != 0 || r.BaseOffset != int64(seq) {
			t.Fatalf("%s: next after restart: %+v", how, r)
		}
		seq++
		got := consumeAllPartitions(t, p, "rs")
		if len(got) != int(seq) {
			t.Fatalf("%s: %d records, want %d", how, len(got), seq)
		}
		for i := range int(seq) {
			if got[acked{0, int64(i)}] != fmt.Sprint(i) {
				t.Fatalf("%s: offset %d = %q", how, i, got[acked{0, int64(i)}])
			}
		}
		rcs, err := kadm.NewClient(c).DescribeTopicConfigs(ctxFor(t, 10*time.Second), "rs")
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := rcs.On("rs", nil)
		found := false
		for _, e := range rc.Configs {
			if e.Key == "retention.ms" && e.MaybeValue() == ret {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: retention.ms lost: %+v", how, rc.Configs)
		}
	}
}

// buildIdempotentBatch encodes one record as a v2 batch from producer pid.
func buildIdempotentBatch(pid int64, epoch int16, seq int32, r *kgo.Record) []byte {
	now := time.Now().UnixMilli()
	rec := kmsg.Record{Value: r.Value}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	rb := kmsg.RecordBatch{Magic: 2, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: 1, FirstTimestamp: now, MaxTimestamp: now, Records: rec.AppendTo(nil)}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
