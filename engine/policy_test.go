package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/segment"
)

// storedCodecs lists the codec of every batch stored in partition 0.
func storedCodecs(t *testing.T, tb *testBroker, topic string) []int {
	t.Helper()
	p := tb.b.partition(topic, 0)
	var out []int
	for off := p.log.StartOffset(); off < p.log.EndOffset(); {
		sl, err := p.log.Read(off, p.log.EndOffset(), 1)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, sl.Len)
		sl.ReadAt(buf, 0)
		sl.Release()
		h, err := segment.ValidateBatch(buf)
		if err != nil {
			t.Fatalf("stored batch at %d: %v", off, err)
		}
		out = append(out, int(h.Compression()))
		off = h.LastOffset() + 1
	}
	return out
}

// TestTopicCompressionType: a topic's compression.type re-encodes batches
// sent with another codec; "producer" keeps them as sent. Records, keys,
// headers, timestamps and offsets come back unchanged either way.
func TestTopicCompressionType(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	admin := tb.client()
	cases := []struct {
		topicCodec string
		sent       kgo.CompressionCodec
		want       int
	}{
		{"lz4", kgo.SnappyCompression(), 3},
		{"lz4", kgo.NoCompression(), 3},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.GzipCompression(), 4},
		{"gzip", kgo.ZstdCompression(), 1},
		{"snappy", kgo.Lz4Compression(), 2},
		{"uncompressed", kgo.ZstdCompression(), 0},
		{"producer", kgo.ZstdCompression(), 4},
	}
	for i, c := range cases {
		topic := fmt.Sprintf("ct-%d-%s", i, c.topicCodec)
		v := c.topicCodec
		createTopic(t, admin, topic, 1, map[string]*string{"compression.type": &v})
		p := tb.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.sent), kgo.ProducerLinger(0))
		var rs []*kgo.Record
		for j := range 200 {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint("k", j%7)), Value: bytes.Repeat([]byte(fmt.Sprint(j)), 40),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(j))}}})
		}
		if err := p.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		got := consumeAll(t, tb, topic, len(rs))
		for j, r := range got {
			w := rs[j]
			if r.Offset != int64(j) || !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) ||
				len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(j) || !r.Timestamp.Equal(w.Timestamp) {
				t.Fatalf("%s: record %d: got %+v, want %+v", topic, j, r, w)
			}
		}
		codecs := storedCodecs(t, tb, topic)
		if len(codecs) == 0 {
			t.Fatalf("%s: nothing stored", topic)
		}
		for _, got := range codecs {
			if got != c.want {
				t.Fatalf("%s: stored codecs %v, want all %d", topic, codecs, c.want)
			}
		}
	}
}

// TestCompactedTopicNeedsKeys: Kafka refuses records without a key on a
// compacted topic, compressed or not, with INVALID_RECORD; keyed records
// and other topics are unaffected.
func TestCompactedTopicNeedsKeys(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	admin := tb.client()
	compact := "compact"
	createTopic(t, admin, "cmp", 1, map[string]*string{"cleanup.policy": &compact})
	both := "compact,delete"
	createTopic(t, admin, "cmpdel", 1, map[string]*string{"cleanup.policy": &both})
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression()} {
		// Manual flushing: the five records below go out as one batch.
		c := tb.client(kgo.ProducerBatchCompression(codec), kgo.RecordRetries(1), kgo.ManualFlushing())
		produce := func(rs ...*kgo.Record) []error {
			t.Helper()
			errs := make([]error, len(rs))
			var wg sync.WaitGroup
			for i, r := range rs {
				wg.Add(1)
				c.Produce(testCtx(t), r, func(_ *kgo.Record, err error) { errs[i] = err; wg.Done() })
			}
			if err := c.Flush(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			return errs
		}
		for _, topic := range []string{"cmp", "cmpdel"} {
			if err := produce(&kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v")})[0]; err != nil {
				t.Fatalf("%s keyed: %v", topic, err)
			}
			// A batch of keyed records with one null key fails whole.
			var rs []*kgo.Record
			for i := range 5 {
				r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte("v")}
				if i == 3 {
					r.Key = nil
				}
				rs = append(rs, r)
			}
			for i, err := range produce(rs...) {
				if !errors.Is(err, kerr.InvalidRecord) {
					t.Fatalf("%s: record with key %q: %v, want INVALID_RECORD", topic, rs[i].Key, err)
				}
			}
		}
	}
	if end := tb.b.partition("cmp", 0).log.EndOffset(); end != 2 {
		t.Fatalf("compacted topic holds %d records, want the 2 keyed ones", end)
	}
	// A delete-policy topic takes null keys.
	c := tb.client(kgo.AllowAutoTopicCreation())
	if err := c.ProduceSync(testCtx(t), &kgo.Record{Topic: "plain", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestMinInsyncReplicas: with one replica in sync, a topic asking for two
// refuses acks=all with NOT_ENOUGH_REPLICAS and takes acks=1.
func TestMinInsyncReplicas(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	two := "2"
	createTopic(t, tb.client(), "isr2", 1, map[string]*string{"min.insync.replicas": &two})
	all := tb.client(kgo.DefaultProduceTopic("isr2"), kgo.RecordRetries(2), kgo.RequiredAcks(kgo.AllISRAcks()))
	err := all.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("v")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	one := tb.client(kgo.DefaultProduceTopic("isr2"), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()))
	if err := one.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
	if end := tb.b.partition("isr2", 0).log.EndOffset(); end != 1 {
		t.Fatalf("end offset %d, want 1", end)
	}
}
