package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// TestLargeFetchesEveryClient: tens of MiB in 4 partitions, read back
// whole by kcat, kafka-python and franz-go. Their fetch responses are
// megabytes, far above the socket buffer, so they take the zero-copy path
// (sendfile from the event loop, waiting for the socket when it is full)
// as well as the copy path for small ranges; every record must arrive
// once, intact, in order per partition.
func TestLargeFetchesEveryClient(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	b := startBroker(t)
	const topic, parts, n = "bigfetch", 4, 24000
	b.createTopic(topic, parts, nil)
	value := func(i int) string {
		return fmt.Sprintf("%06d-%s", i, strings.Repeat(string(rune('a'+i%26)), 1000+i%97))
	}
	p := b.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Partition: int32(i % parts), Value: []byte(value(i))})
	}
	if err := p.ProduceSync(timeout(t, 60*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The digest of each partition's values in offset order.
	want := make([][32]byte, parts)
	for pi := range parts {
		h := sha256.New()
		for i := pi; i < n; i += parts {
			h.Write([]byte(value(i) + "\n"))
		}
		copy(want[pi][:], h.Sum(nil))
	}
	check := func(client string, pi int, got []byte) {
		t.Helper()
		if sum := sha256.Sum256(got); sum != want[pi] {
			lines := bytes.Count(got, []byte("\n"))
			t.Fatalf("%s: partition %d: %d records read, content differs from what was produced (%d records)", client, pi, lines, n/parts)
		}
	}

	t.Run("franz-go", func(t *testing.T) {
		offsets := map[string]map[int32]kgo.Offset{topic: {}}
		for pi := range int32(parts) {
			offsets[topic][pi] = kgo.NewOffset().AtStart()
		}
		c := b.client(kgo.ConsumePartitions(offsets), kgo.FetchMaxBytes(32<<20), kgo.FetchMaxPartitionBytes(16<<20))
		got := make([]bytes.Buffer, parts)
		ctx := timeout(t, 60*time.Second)
		for seen := 0; seen < n; {
			fs := c.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("read %d of %d records: %v", seen, n, err)
			}
			fs.EachError(func(_ string, p int32, err error) { t.Fatalf("partition %d: %v", p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				got[r.Partition].Write(r.Value)
				got[r.Partition].WriteByte('\n')
				seen++
			})
		}
		for pi := range parts {
			check("franz-go", pi, got[pi].Bytes())
		}
	})
	t.Run("kcat", func(t *testing.T) {
		kcat := needKcat(t)
		for pi := range parts {
			out := runTool(t, "", kcat, "-b", b.addr, "-C", "-t", topic, "-p", fmt.Sprint(pi), "-o", "beginning", "-e", "-q",
				"-X", "fetch.message.max.bytes=16777216", "-X", "fetch.max.bytes=33554432", "-f", `%s\n`)
			check("kcat", pi, []byte(out))
		}
	})
	t.Run("kafka-python", func(t *testing.T) {
		needKafkaPython(t)
		script := `
import sys
from kafka import KafkaConsumer, TopicPartition
addr, topic, p, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = KafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False, consumer_timeout_ms=20000,
                  fetch_max_bytes=33554432, max_partition_fetch_bytes=16777216)
tp = TopicPartition(topic, p)
c.assign([tp])
c.seek_to_beginning(tp)
out = sys.stdout.buffer
seen = 0
for m in c:
    out.write(m.value + b"\n")
    seen += 1
    if seen == n:
        break
out.flush()
`
		for pi := range parts {
			cmd := exec.Command(pythonWithKafka, "-c", script, b.addr, topic, fmt.Sprint(pi), fmt.Sprint(n/parts))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kafka-python: %v\n%s", err, lastLines(stderr.String(), 20))
			}
			check("kafka-python", pi, out)
		}
	})
	// The clients above read ~75 MiB in large responses: most of it must
	// have gone by sendfile (the shutdown log counts it), where the kernel
	// can tell samsa what is in the page cache. A range with pages gone
	// from the cache (a Firecracker guest was seen to drop a 64 KiB folio
	// of a file just written, with no memory pressure) is filled first and
	// still goes by sendfile.
	b.stop()
	if !kernelHasCachestat(t) {
		return
	}
	m := regexp.MustCompile(`sendfile_bytes=(\d+) copied_bytes=(\d+) filled_bytes=(\d+)`).FindStringSubmatch(b.log.String())
	if m == nil {
		t.Fatalf("no sendfile counts in the shutdown log:\n%s", b.log.tail())
	}
	sent, _ := strconv.ParseInt(m[1], 10, 64)
	copied, _ := strconv.ParseInt(m[2], 10, 64)
	t.Logf("%d bytes by sendfile, %d copied, %s read into the page cache first", sent, copied, m[3])
	if sent < 50<<20 || sent < 4*copied {
		t.Fatalf("%d bytes by sendfile, %d copied: large fetches did not take the zero-copy path", sent, copied)
	}
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kernelHasCachestat reports whether cachestat(2) (Linux 6.5) works here:
// without it samsa copies fetched data instead of using sendfile.
func kernelHasCachestat(t *testing.T) bool {
	f, err := os.CreateTemp(t.TempDir(), "cachestat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cs unix.Cachestat_t
	return unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{Len: 4096}, &cs, 0) == nil
}
