package main

// kcat (librdkafka) against the binary: metadata, produce with every codec,
// consume from an offset, headers, keyed partitioning.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func needKcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		// make test needs every tool the README names: a skip would let a
		// machine without it pass.
		t.Fatal("kcat not installed (apt-get install kcat; .ci/run installs it)")
	}
	return p
}

func TestKcatMetadata(t *testing.T) {
	kcat := needKcat(t)
	b := startBroker(t)
	b.createTopic("kc-meta", 3, nil)

	out := runTool(t, "", kcat, "-b", b.addr, "-L")
	for _, want := range []string{
		"broker 1 at " + b.addr + " (controller)",
		`topic "kc-meta" with 3 partitions:`,
		"partition 0, leader 1, replicas: 1, isrs: 1",
		"partition 2, leader 1, replicas: 1, isrs: 1",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("kcat -L lacks %q:\n%s", want, out)
		}
	}

	var md struct {
		ControllerID int32 `json:"controllerid"`
		Brokers      []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Error      string `json:"error"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
				Replicas  []struct {
					ID int32 `json:"id"`
				} `json:"replicas"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	out = runTool(t, "", kcat, "-b", b.addr, "-L", "-J", "-t", "kc-meta")
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s", err, out)
	}
	if md.ControllerID != 1 || len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Brokers[0].Name != b.addr {
		t.Fatalf("brokers: %+v controller %d, want broker 1 at %s", md.Brokers, md.ControllerID, b.addr)
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != "kc-meta" || md.Topics[0].Error != "" || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("topics: %+v", md.Topics)
	}
	ps := md.Topics[0].Partitions
	sort.Slice(ps, func(i, j int) bool { return ps[i].Partition < ps[j].Partition })
	for i, p := range ps {
		if p.Partition != int32(i) || p.Leader != 1 || len(p.Replicas) != 1 || p.Replicas[0].ID != 1 {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}
}

// TestKcatProduceConsume produces keyed records with each codec and reads
// them back from an offset in the middle of the (compressed) batch.
func TestKcatProduceConsume(t *testing.T) {
	kcat := needKcat(t)
	b := startBroker(t)
	codecs := []struct {
		name string
		id   int16 // the batch attributes' compression bits
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}
	const n = 12
	// Repetitive values, so that compression pays and librdkafka keeps it.
	value := func(codec string, i int) string {
		return fmt.Sprintf("%s-value-%02d-%s", codec, i, strings.Repeat("abc", 40))
	}
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			topic := "kc-" + codec.name
			b.createTopic(topic, 1, nil)
			var in strings.Builder
			for i := range n {
				fmt.Fprintf(&in, "key-%02d:%s\n", i, value(codec.name, i))
			}
			runTool(t, in.String(), kcat, "-b", b.addr, "-P", "-t", topic, "-p", "0", "-K:", "-z", codec.name,
				"-X", "acks=all", "-X", "linger.ms=50")

			for _, from := range []int{0, 5, n - 1} {
				out := runTool(t, "", kcat, "-b", b.addr, "-C", "-t", topic, "-p", "0", "-o", fmt.Sprint(from), "-e", "-q",
					"-X", "fetch.wait.max.ms=20", "-f", `%k|%s|%o\n`)
				var want strings.Builder
				for i := from; i < n; i++ {
					fmt.Fprintf(&want, "key-%02d|%s|%d\n", i, value(codec.name, i), i)
				}
				if out != want.String() {
					t.Fatalf("kcat -C -o %d:\n%s\nwant:\n%s", from, out, want.String())
				}
			}
			// Relative to the end: the last 3 records.
			out := runTool(t, "", kcat, "-b", b.addr, "-C", "-t", topic, "-p", "0", "-o", "-3", "-e", "-q", "-X", "fetch.wait.max.ms=20", "-f", `%o\n`)
			if want := fmt.Sprintf("%d\n%d\n%d\n", n-3, n-2, n-1); out != want {
				t.Fatalf("kcat -C -o -3: %q, want %q", out, want)
			}
			// End offset by ListOffsets.
			out = runTool(t, "", kcat, "-b", b.addr, "-Q", "-t", topic+":0:-1")
			if !strings.Contains(out, fmt.Sprintf("offset %d", n)) {
				t.Fatalf("kcat -Q end offset:\n%s", out)
			}

			// The stored batch carries kcat's codec: the broker stores
			// batches as received.
			raw := dialRaw(t, b.addr)
			batches := fetchBatches(t, raw, topic, 0)
			if len(batches) == 0 {
				t.Fatal("no batch stored")
			}
			total := 0
			for _, bt := range batches {
				// librdkafka enables its LZ4 feature only when the broker
				// advertises FindCoordinator (rdkafka_feature.c) and sends
				// uncompressed otherwise: lz4 checks that too.
				if attrs := int16(binary.BigEndian.Uint16(bt[21:])); attrs&7 != codec.id {
					t.Fatalf("stored batch compression %d, want %d (%s)", attrs&7, codec.id, codec.name)
				}
				total += int(binary.BigEndian.Uint32(bt[57:]))
			}
			if total != n {
				t.Fatalf("stored batches hold %d records, want %d", total, n)
			}
		})
	}
}

// TestKcatConsumesFranzGoCodecs: kcat reads batches that franz-go
// compressed with each codec, from the middle of the batch.
func TestKcatConsumesFranzGoCodecs(t *testing.T) {
	kcat := needKcat(t)
	b := startBroker(t)
	codecs := []struct {
		name  string
		id    int16
		codec kgo.CompressionCodec
	}{
		{"gzip", 1, kgo.GzipCompression()},
		{"snappy", 2, kgo.SnappyCompression()},
		{"lz4", 3, kgo.Lz4Compression()},
		{"zstd", 4, kgo.ZstdCompression()},
	}
	const n = 10
	for _, codec := range codecs {
		topic := "kgo-" + codec.name
		b.createTopic(topic, 1, nil)
		c := b.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec.codec), kgo.ManualFlushing())
		for i := range n {
			c.Produce(timeout(t, 10*time.Second), &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s-%d-%s", codec.name, i, strings.Repeat("z", 100)))}, nil)
		}
		if err := c.Flush(timeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		batches := fetchBatches(t, dialRaw(t, b.addr), topic, 0)
		if len(batches) != 1 || int16(binary.BigEndian.Uint16(batches[0][21:]))&7 != codec.id {
			t.Fatalf("%s: %d batches stored, want one compressed with codec %d", codec.name, len(batches), codec.id)
		}
		out := runTool(t, "", kcat, "-b", b.addr, "-C", "-t", topic, "-p", "0", "-o", "3", "-e", "-q",
			"-X", "fetch.wait.max.ms=20", "-f", `%k|%s|%o\n`)
		var want strings.Builder
		for i := 3; i < n; i++ {
			fmt.Fprintf(&want, "k%d|%s-%d-%s|%d\n", i, codec.name, i, strings.Repeat("z", 100), i)
		}
		if out != want.String() {
			t.Fatalf("%s: kcat consumed:\n%s\nwant:\n%s", codec.name, out, want.String())
		}
	}
}

// TestKcatHeadersAndKeyedPartitions produces with headers and librdkafka's
// key partitioner into 4 partitions, then consumes all partitions.
func TestKcatHeadersAndKeyedPartitions(t *testing.T) {
	kcat := needKcat(t)
	b := startBroker(t)
	b.createTopic("kc-keys", 4, nil)
	const n = 60
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "user-%d:event-%02d\n", i%7, i)
	}
	runTool(t, in.String(), kcat, "-b", b.addr, "-P", "-t", "kc-keys", "-K:", "-H", "source=kcat", "-H", "trace=t1",
		"-X", "acks=all", "-z", "lz4")
	out := runTool(t, "", kcat, "-b", b.addr, "-C", "-t", "kc-keys", "-e", "-q", "-X", "fetch.wait.max.ms=20", "-f", `%p|%o|%k|%s|%h\n`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("consumed %d records, want %d:\n%s", len(lines), n, out)
	}
	keyPart := map[string]string{}
	partOffsets := map[string][]int{}
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 5 {
			t.Fatalf("line %q", l)
		}
		part, key, val, hdrs := f[0], f[2], f[3], f[4]
		var off int
		fmt.Sscan(f[1], &off)
		if p, ok := keyPart[key]; ok && p != part {
			t.Fatalf("key %s in partitions %s and %s", key, p, part)
		}
		keyPart[key] = part
		partOffsets[part] = append(partOffsets[part], off)
		if seen[val] {
			t.Fatalf("%s consumed twice", val)
		}
		seen[val] = true
		var i int
		fmt.Sscanf(val, "event-%d", &i)
		if key != fmt.Sprintf("user-%d", i%7) {
			t.Fatalf("%s has key %s", val, key)
		}
		if hdrs != "source=kcat,trace=t1" {
			t.Fatalf("%s: headers %q", val, hdrs)
		}
	}
	for part, offs := range partOffsets {
		for i, o := range offs {
			if o != i {
				t.Fatalf("partition %s offsets %v: not dense from 0", part, offs)
			}
		}
	}
	if len(partOffsets) < 2 {
		t.Fatalf("7 keys all went to partitions %v", partOffsets)
	}
}

// fetchBatches reads the raw record batches of a partition from offset 0
// with Fetch v4 (uncompressed stored bytes, as on disk).
func fetchBatches(t *testing.T, raw *rawConn, topic string, partition int32) [][]byte {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 100, 1, 10<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, 0, 10<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := raw.roundTrip(req, 4).(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch response shape: %+v", resp)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("fetch %s/%d: error %d", topic, partition, p.ErrorCode)
		}
		var out [][]byte
		for rb := p.RecordBatches; len(rb) >= 61; {
			size := 12 + int(binary.BigEndian.Uint32(rb[8:]))
			if size > len(rb) {
				break // a partial batch at the end of the response
			}
			out = append(out, rb[:size])
			rb = rb[size:]
		}
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKcatAcksZeroStoresEverything: kcat with acks=0 exits as soon as its
// last request is written; the broker still serves every request it
// received, as Kafka does, so nothing is lost when the connection closes.
func TestKcatAcksZeroStoresEverything(t *testing.T) {
	kcat := needKcat(t)
	b := startBroker(t)
	b.createTopic("acks0", 1, nil)
	const rounds, n = 5, 400
	for r := range rounds {
		var in strings.Builder
		for i := range n {
			fmt.Fprintf(&in, "r%d-%d-%s\n", r, i, strings.Repeat("v", 200))
		}
		// Small batches, so that many requests are in flight at exit.
		runTool(t, in.String(), kcat, "-b", b.addr, "-P", "-t", "acks0", "-p", "0", "-X", "acks=0",
			"-X", "batch.num.messages=20", "-X", "linger.ms=0", "-z", "none")
	}
	raw := dialRaw(t, b.addr)
	deadline := time.Now().Add(10 * time.Second)
	for raw.listEnd("acks0", 0) != rounds*n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if end := raw.listEnd("acks0", 0); end != rounds*n {
		t.Fatalf("stored %d of %d acks=0 records", end, rounds*n)
	}
}
