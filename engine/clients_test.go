package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func createTopic(t *testing.T, c *kgo.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(c)
	resp, err := adm.CreateTopic(testCtx(t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// consumeAll reads n records from the start of every partition of topic.
func consumeAll(t *testing.T, tb *testBroker, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	c := tb.client(opts...)
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func TestProduceConsumeKeysHeadersTimestamps(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client(kgo.DefaultProduceTopic("kht"), kgo.AllowAutoTopicCreation())
	ts := time.UnixMilli(1_700_000_000_123)
	var want []*kgo.Record
	for i := range 50 {
		r := &kgo.Record{
			Key:       []byte(fmt.Sprintf("key-%d", i%7)),
			Value:     []byte(fmt.Sprintf("value-%d", i)),
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "h1", Value: []byte(fmt.Sprint(i))}, {Key: "empty", Value: nil}},
		}
		if i == 3 {
			r.Key = nil // null key
		}
		if i == 4 {
			r.Value = nil // tombstone-style null value
		}
		want = append(want, r)
	}
	if err := c.ProduceSync(testCtx(t), want...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, tb, "kht", len(want))
	for i, r := range got {
		w := want[i]
		if !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) || !bytes.Equal(r.Value, w.Value) ||
			(r.Value == nil) != (w.Value == nil) || !r.Timestamp.Equal(w.Timestamp) || r.Offset != int64(i) {
			t.Fatalf("record %d: got key=%q value=%q ts=%v off=%d, want key=%q value=%q ts=%v", i, r.Key, r.Value, r.Timestamp, r.Offset, w.Key, w.Value, w.Timestamp)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "h1" || string(r.Headers[0].Value) != fmt.Sprint(i) || r.Headers[1].Key != "empty" {
			t.Fatalf("record %d headers: %+v", i, r.Headers)
		}
	}
}

func TestPerKeyOrderEightPartitions(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client(kgo.DefaultProduceTopic("order"), kgo.ProducerLinger(time.Millisecond))
	createTopic(t, c, "order", 8, nil)
	const n, keys = 10000, 100
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		c.Produce(testCtx(t), &kgo.Record{Key: []byte(fmt.Sprintf("k%03d", i%keys)), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				errMu.Lock()
				firstErr = err
				errMu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	got := consumeAll(t, tb, "order", n)
	last := map[string]int{}
	keyPart := map[string]int32{}
	parts := map[int32]bool{}
	for _, r := range got {
		var v int
		fmt.Sscan(string(r.Value), &v)
		k := string(r.Key)
		if p, ok := keyPart[k]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
		}
		keyPart[k] = r.Partition
		parts[r.Partition] = true
		if prev, ok := last[k]; ok && v <= prev {
			t.Fatalf("key %s: value %d after %d", k, v, prev)
		}
		last[k] = v
	}
	if len(parts) != 8 {
		t.Fatalf("records landed in %d partitions, want 8", len(parts))
	}
}

func TestAcks(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	for _, acks := range []struct {
		name string
		acks kgo.Acks
	}{{"none", kgo.NoAck()}, {"leader", kgo.LeaderAck()}, {"all", kgo.AllISRAcks()}} {
		t.Run(acks.name, func(t *testing.T) {
			topic := "acks-" + acks.name
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks.acks)}
			if acks.name != "all" {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			c := tb.client(opts...)
			createTopic(t, c, topic, 2, nil)
			var rs []*kgo.Record
			for i := range 200 {
				rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
			}
			if err := c.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got := consumeAll(t, tb, topic, 200)
			seen := map[string]bool{}
			for _, r := range got {
				seen[string(r.Value)] = true
			}
			if len(seen) != 200 {
				t.Fatalf("%d distinct records, want 200", len(seen))
			}
		})
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	codecs := map[string]kgo.CompressionCodec{"lz4": kgo.Lz4Compression(), "snappy": kgo.SnappyCompression(), "zstd": kgo.ZstdCompression(), "gzip": kgo.GzipCompression()}
	for name, codec := range codecs {
		topic := "comp-" + name
		c := tb.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.AllowAutoTopicCreation())
		var rs []*kgo.Record
		for i := range 300 {
			rs = append(rs, &kgo.Record{Key: []byte("k"), Value: bytes.Repeat([]byte(fmt.Sprint(i)), 50)})
		}
		if err := c.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		got := consumeAll(t, tb, topic, 300)
		for i, r := range got {
			if !bytes.Equal(r.Value, rs[i].Value) || r.Offset != int64(i) {
				t.Fatalf("%v: record %d mismatch", codec, i)
			}
		}
		// The batch is stored as the producer compressed it.
		p := tb.b.partition(topic, 0)
		sl, err := p.log.Read(0, p.log.EndOffset(), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, 61)
		sl.ReadAt(hdr, 0)
		sl.Release()
		if hdr[22]&7 == 0 {
			t.Fatalf("%v: stored batch is uncompressed", codec)
		}
	}
}

func TestListOffsetsByTimestamp(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client(kgo.DefaultProduceTopic("times"), kgo.AllowAutoTopicCreation())
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 100 {
		// Separate batches so the time index has several entries.
		r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := c.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(c)
	f := func(ts time.Time, wantOff int64) {
		t.Helper()
		lo, err := adm.ListOffsetsAfterMilli(testCtx(t), ts.UnixMilli(), "times")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("times", 0)
		if o.Err != nil || o.Offset != wantOff {
			t.Fatalf("offset after %v: got %d (%v), want %d", ts, o.Offset, o.Err, wantOff)
		}
	}
	f(base.Add(-time.Minute), 0)
	f(base.Add(42*time.Second), 42)
	f(base.Add(42*time.Second+time.Millisecond), 43)
	f(base.Add(time.Hour), 100) // none: Kafka answers -1, kadm maps it to the end
	start, _ := adm.ListStartOffsets(testCtx(t), "times")
	end, _ := adm.ListEndOffsets(testCtx(t), "times")
	if o, _ := start.Lookup("times", 0); o.Offset != 0 {
		t.Fatalf("start offset %d", o.Offset)
	}
	if o, _ := end.Lookup("times", 0); o.Offset != 100 {
		t.Fatalf("end offset %d", o.Offset)
	}
	// Max timestamp (-3).
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "times"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -3
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.Offset != 99 || p.Timestamp != base.Add(99*time.Second).UnixMilli() {
		t.Fatalf("max timestamp: %+v", p)
	}
	// Replay from the looked-up offset starts at the right record.
	cons := tb.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"times": {0: kgo.NewOffset().AfterMilli(base.Add(57 * time.Second).UnixMilli())}}))
	fs := cons.PollFetches(testCtx(t))
	if rs := fs.Records(); len(rs) == 0 || string(rs[0].Value) != "57" {
		t.Fatalf("replay by time started at %v", rs)
	}
}

// rawBatch builds an uncompressed batch from an idempotent producer.
func rawBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	rb := kmsg.RecordBatch{Magic: 2, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli()}
	recs := make([]kmsg.Record, len(values))
	for i, v := range values {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
	}
	return encodeBatch(rb, recs)
}

// encodeBatch encodes rb holding recs (their lengths, the batch's count,
// length and CRC filled in).
func encodeBatch(rb kmsg.RecordBatch, recs []kmsg.Record) []byte {
	rb.NumRecords, rb.LastOffsetDelta, rb.Records = int32(len(recs)), int32(len(recs)-1), nil
	for _, r := range recs {
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		rb.Records = r.AppendTo(rb.Records)
	}
	b := rb.AppendTo(nil)
	rb.Length = int32(len(b) - 12)
	return setBatchCRC(rb.AppendTo(nil))
}

// setBatchCRC sets b's CRC32C (over attributes to the end).
func setBatchCRC(b []byte) []byte {
	h := crcC(b[21:])
	b[17], b[18], b[19], b[20] = byte(h>>24), byte(h>>16), byte(h>>8), byte(h)
	return b
}

func produceRaw(t *testing.T, tb *testBroker, c *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	if tp := tb.b.topic(topic); tp != nil {
		rt.TopicID = tp.id // v13 names topics by id
	}
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestIdempotentRetriesNoDuplicates(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	createTopic(t, c, "idem", 1, nil)
	ipr, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(testCtx(t), c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ipr)
	}
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch
	f := func(seq int32, wantCode int16, wantOff int64, values ...string) {
		t.Helper()
		p := produceRaw(t, tb, c, "idem", rawBatch(pid, epoch, seq, values...))
		if p.ErrorCode != wantCode || (wantCode == 0 && p.BaseOffset != wantOff) {
			t.Fatalf("seq %d: code %d offset %d, want code %d offset %d", seq, p.ErrorCode, p.BaseOffset, wantCode, wantOff)
		}
	}
	f(0, 0, 0, "a", "b")
	f(2, 0, 2, "c")
	f(0, 0, 0, "a", "b") // retry of an older in-flight batch
	f(2, 0, 2, "c")      // retry of the last batch
	f(5, kerr.OutOfOrderSequenceNumber.Code, 0, "gap")
	f(3, 0, 3, "d")
	// A producer id with no sequence is refused (LogValidator), whether
	// the partition knows the producer or not.
	f(-1, kerr.InvalidRecord.Code, 0, "no sequence")
	if p := produceRaw(t, tb, c, "idem", rawBatch(pid+1000, 0, -1, "no sequence")); p.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("an unknown producer's batch without a sequence: %v, want INVALID_RECORD", kerr.ErrorForCode(p.ErrorCode))
	}
	if end := tb.b.partition("idem", 0).log.EndOffset(); end != 4 {
		t.Fatalf("log end offset %d after retries, want 4", end)
	}
	// A second producer id is independent; an older epoch is fenced.
	ipr2, _ := kmsg.NewPtrInitProducerIDRequest().RequestWith(testCtx(t), c)
	if ipr2.ProducerID == pid {
		t.Fatal("producer id reused")
	}
	if p := produceRaw(t, tb, c, "idem", rawBatch(pid, epoch+1, 0, "e")); p.ErrorCode != 0 {
		t.Fatalf("new epoch: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := produceRaw(t, tb, c, "idem", rawBatch(pid, epoch, 4, "f")); p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old epoch: %v", kerr.ErrorForCode(p.ErrorCode))
	}

	// kgo's own idempotent producer through many small batches.
	kc := tb.client(kgo.DefaultProduceTopic("idem2"), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(100))
	var rs []*kgo.Record
	for i := range 2000 {
		rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
	}
	if err := kc.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, tb, "idem2", 2000)
	for i, r := range got {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d = %s", i, r.Value)
		}
	}
}

func TestProduceValidationPerPartition(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	one := "1000"
	createTopic(t, c, "val", 3, map[string]*string{"max.message.bytes": &one})
	good := rawBatch(-1, -1, -1, "ok")
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	big := rawBatch(-1, -1, -1, string(bytes.Repeat([]byte("x"), 2000)))
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "val"
	rt.TopicID = tb.b.topic("val").id
	for i, recs := range [][]byte{good, badCRC, big} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = int32(i), recs
		rt.Partitions = append(rt.Partitions, rp)
	}
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 7, good
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	unknown := kmsg.NewProduceRequestTopic()
	unknown.Topic = "nope"
	unknown.TopicID = [16]byte{1}
	unknown.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	req.Topics = append(req.Topics, unknown)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{0, kerr.CorruptMessage.Code, kerr.MessageTooLarge.Code, kerr.UnknownTopicOrPartition.Code}
	for i, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != want[i] {
			t.Errorf("partition %d: %v, want %v", p.Partition, kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(want[i]))
		}
	}
	if p := resp.Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("unknown topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if end := tb.b.partition("val", 0).log.EndOffset(); end != 1 {
		t.Errorf("good partition end offset %d, want 1", end)
	}
	// Two batches in one partition's records are refused as Kafka does.
	p := produceRaw(t, tb, c, "val", append(append([]byte(nil), good...), good...))
	if p.ErrorCode != kerr.InvalidRecord.Code {
		t.Errorf("two batches: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

func TestRetentionAdvancesLogStart(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client(kgo.DefaultProduceTopic("ret"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	segBytes, retBytes := "2000", "4000"
	createTopic(t, c, "ret", 1, map[string]*string{"segment.bytes": &segBytes, "retention.bytes": &retBytes})
	for i := range 60 {
		if err := c.ProduceSync(testCtx(t), &kgo.Record{Value: bytes.Repeat([]byte{byte(i)}, 400)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tb.b.store.EnforceRetention()
	adm := kadm.NewClient(c)
	start, err := adm.ListStartOffsets(testCtx(t), "ret")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := start.Lookup("ret", 0)
	if o.Err != nil || o.Offset <= 0 || o.Offset > 55 {
		t.Fatalf("log start offset after retention: %d (%v)", o.Offset, o.Err)
	}
	// A consumer from the earliest offset starts at the new log start.
	got := consumeAll(t, tb, "ret", int(60-o.Offset))
	if got[0].Offset != o.Offset || got[0].Value[0] != byte(o.Offset) {
		t.Fatalf("first record after retention: offset %d", got[0].Offset)
	}
}

// TestProduceMalformedBatchCodes: as Kafka's ProduceRequest validation, a
// v3+ request whose records are not one magic-2 batch gets INVALID_RECORD
// (not the retriable CORRUPT_MESSAGE), and zstd before Produce v7 gets
// UNSUPPORTED_COMPRESSION_TYPE.
func TestProduceMalformedBatchCodes(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	createTopic(t, c, "mal", 1, nil)
	good := rawBatch(-1, -1, -1, "ok")
	magic1 := append([]byte(nil), good...)
	magic1[16] = 1
	zstd := append([]byte(nil), good...)
	zstd[22] |= 4
	binary.BigEndian.PutUint32(zstd[17:], crcC(zstd[21:]))
	send := func(v int16, recs []byte) int16 {
		return produceOne(dialRaw(t, tb.addr), v, 1, "mal", [16]byte{}, recs).ErrorCode
	}
	f := func(name string, v int16, recs []byte, want *kerr.Error) {
		t.Helper()
		if got := send(v, recs); got != want.Code {
			t.Errorf("%s at v%d: %v, want %v", name, v, kerr.ErrorForCode(got), want)
		}
	}
	f("magic 1", 8, magic1, kerr.InvalidRecord)
	f("empty records", 8, []byte{}, kerr.InvalidRecord)
	f("20-byte records", 8, good[:20], kerr.InvalidRecord)
	f("zstd", 6, zstd, kerr.UnsupportedCompressionType)
	if end := tb.b.partition("mal", 0).log.EndOffset(); end != 0 {
		t.Fatalf("%d records stored", end)
	}
	f("good", 6, good, &kerr.Error{Code: 0})
}
