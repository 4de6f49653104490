package engine

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"
	"samsa/segment/compress"
)

// produceOne sends batch to partition 0 of topic (named by id from
// v13) over rc and returns that partition's answer.
func produceOne(rc *rawConn, version, acks int16, topic string, id [16]byte, batch []byte) kmsg.ProduceResponseTopicPartition {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return rc.request(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// keyedBatch is an uncompressed batch of records with the given keys (nil:
// a null key) and timestamps, first as the batch's base, with attrs set.
func keyedBatch(attrs int16, keys [][]byte, times []int64) []byte {
	rb := kmsg.RecordBatch{Magic: 2, Attributes: attrs, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, FirstTimestamp: times[0]}
	recs := make([]kmsg.Record, len(keys))
	for i, k := range keys {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: times[i] - times[0], Key: k, Value: []byte("v")}
		rb.MaxTimestamp = max(rb.MaxTimestamp, times[i])
	}
	return encodeBatch(rb, recs)
}

// TestProduceRecordErrors: a batch refused for some of its records names
// them from Produce v8 (KIP-467) with Kafka's codes and messages, so a
// client fails just those records (librdkafka's 0011 test counts them): a
// compacted topic's records without a key, CreateTime timestamps outside
// the topic's bounds, and a producer's LogAppendTime.
func TestProduceRecordErrors(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	compact, before := "compact", "3600000"
	createTopic(t, c, "kc", 1, map[string]*string{"cleanup.policy": &compact})
	createTopic(t, c, "kt", 1, map[string]*string{"message.timestamp.before.max.ms": &before})
	rc := dialRaw(t, tb.addr)
	produce := func(version int16, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
		return produceOne(rc, version, -1, topic, tb.b.topic(topic).id, batch)
	}
	type want struct {
		code    int16
		indexes []int32
		record  string // the first record error's message starts so
		msg     string // the partition's message starts so
	}
	check := func(what string, got kmsg.ProduceResponseTopicPartition, w want) {
		t.Helper()
		if got.ErrorCode != w.code {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(w.code))
		}
		var idx []int32
		for _, r := range got.ErrorRecords {
			idx = append(idx, r.RelativeOffset)
		}
		if !slices.Equal(idx, w.indexes) {
			t.Fatalf("%s: record errors at %v, want %v", what, idx, w.indexes)
		}
		if w.record != "" && (got.ErrorRecords[0].ErrorMessage == nil || !strings.HasPrefix(*got.ErrorRecords[0].ErrorMessage, w.record)) {
			t.Fatalf("%s: record error %v, want it to start %q", what, got.ErrorRecords[0].ErrorMessage, w.record)
		}
		if w.msg != "" && (got.ErrorMessage == nil || !strings.HasPrefix(*got.ErrorMessage, w.msg)) {
			t.Fatalf("%s: error message %v, want it to start %q", what, got.ErrorMessage, w.msg)
		}
	}
	now := time.Now().UnixMilli()
	k := []byte("k")
	keys := [][]byte{nil, k, k, nil, k}
	times := []int64{now, now, now, now, now}

	// Compacted: the two records without a key, and only they, are named.
	check("v9 keyless records", produce(9, "kc", keyedBatch(0, keys, times)), want{kerr.InvalidRecord.Code, []int32{0, 3},
		"Compacted topic cannot accept message without key in topic partition kc-0",
		"One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=0, message='Compacted topic"})
	// Before v8 the answer has no place for them: the code alone.
	check("v7 keyless records", produce(7, "kc", keyedBatch(0, keys, times)), want{code: kerr.InvalidRecord.Code})
	check("v9 keyed records", produce(9, "kc", keyedBatch(0, [][]byte{k, k}, times[:2])), want{})

	// CreateTime bounds, per record: one record two hours old (before.max
	// is one hour) and one two hours ahead (after.max's default is one
	// hour), in a batch whose max timestamp alone would pass the first.
	old, ahead := now-2*3600_000, now+2*3600_000
	check("v9 old timestamp", produce(9, "kt", keyedBatch(0, [][]byte{k, k, k}, []int64{now, old, now})), want{kerr.InvalidTimestamp.Code, []int32{1},
		"Timestamp " + strconv.FormatInt(old, 10) + " of message with offset 1 is out of range. The timestamp should be within [",
		"One or more records have been rejected due to invalid timestamp"})
	check("v9 future timestamp", produce(9, "kt", keyedBatch(0, [][]byte{k, k}, []int64{ahead, now})), want{kerr.InvalidTimestamp.Code, []int32{0}, "Timestamp " + strconv.FormatInt(ahead, 10), ""})
	// A compacted topic checks the key first, then the timestamp.
	check("v9 keyless and future", produce(9, "kc", keyedBatch(0, [][]byte{nil, k}, []int64{now, ahead})), want{kerr.InvalidTimestamp.Code, []int32{0, 1}, "Compacted topic", ""})
	// A producer may not set LogAppendTime.
	check("v9 LogAppendTime from a producer", produce(9, "kt", keyedBatch(segment.AttrLogAppendTime, [][]byte{k, k}, times[:2])), want{kerr.InvalidTimestamp.Code, []int32{0, 1}, "Invalid timestamp type", ""})
	check("v9 good timestamps", produce(9, "kt", keyedBatch(0, [][]byte{k, k}, times[:2])), want{})

	for _, topic := range []string{"kc", "kt"} {
		if end := tb.b.partition(topic, 0).log.EndOffset(); end != 2 {
			t.Fatalf("%s: log end %d, want 2 (only the good batch)", topic, end)
		}
	}
}

// compressedBatch is a batch of the given values compressed with codec,
// whose header counts count records (len(values) when count is 0).
func compressedBatch(t *testing.T, codec compress.Codec, count int32, values ...string) []byte {
	t.Helper()
	rb := kmsg.RecordBatch{Magic: 2, Attributes: int16(codec), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		FirstTimestamp: time.Now().UnixMilli()}
	rb.MaxTimestamp = rb.FirstTimestamp
	var body []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	if count == 0 {
		count = int32(len(values))
	}
	var err error
	if rb.Records, err = compress.Compress(codec, nil, body); err != nil {
		t.Fatal(err)
	}
	rb.NumRecords, rb.LastOffsetDelta = count, count-1
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	return setBatchCRC(rb.AppendTo(nil))
}

// compressBatch is an uncompressed batch with its records compressed with
// codec, every other header field as it was.
func compressBatch(t *testing.T, codec compress.Codec, batch []byte) []byte {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil {
		t.Fatal(err)
	}
	var err error
	if rb.Records, err = compress.Compress(codec, nil, rb.Records); err != nil {
		t.Fatal(err)
	}
	rb.Attributes |= int16(codec)
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	return setBatchCRC(rb.AppendTo(nil))
}

// TestProduceCompressedBatchChecked: a compressed batch is inflated and its
// records checked before it is stored, as Kafka's LogValidator does. A
// payload that does not inflate, or inflates to other records than the
// header counts, is INVALID_RECORD and not written (stored, it would stop
// every consumer that reached it); a good one is stored as sent and reads
// back. The CRC of every bad batch is right, so only the inflation can
// find them.
func TestProduceCompressedBatchChecked(t *testing.T) {
	tb, rc := startWithTopic(t, "zc", nil)
	produce := func(batch []byte) kmsg.ProduceResponseTopicPartition {
		return produceOne(rc, 9, -1, "zc", [16]byte{}, batch)
	}
	var stored []string
	for _, codec := range []compress.Codec{compress.Gzip, compress.Snappy, compress.LZ4, compress.Zstd} {
		good := compressedBatch(t, codec, 0, codec.String()+"-a", codec.String()+"-b")
		if p := produce(good); p.ErrorCode != 0 {
			t.Fatalf("%v: good batch: %v", codec, kerr.ErrorForCode(p.ErrorCode))
		}
		stored = append(stored, codec.String()+"-a", codec.String()+"-b")

		garbage := bytes.Clone(good)
		for i := segment.BatchHeaderSize + 4; i < len(garbage); i++ {
			garbage[i] ^= 0x5a
		}
		bad := map[string][]byte{
			"garbage payload":   setBatchCRC(garbage),
			"header counts 3":   compressedBatch(t, codec, 3, "x", "y"),
			"header counts 1":   compressedBatch(t, codec, 1, "x", "y"),
			"truncated payload": nil,
		}
		trunc := bytes.Clone(good[:len(good)-6])
		binary.BigEndian.PutUint32(trunc[8:], uint32(len(trunc)-12))
		bad["truncated payload"] = setBatchCRC(trunc)
		for what, batch := range bad {
			p := produce(batch)
			if p.ErrorCode != kerr.InvalidRecord.Code {
				t.Fatalf("%v, %s: %v, want INVALID_RECORD", codec, what, kerr.ErrorForCode(p.ErrorCode))
			}
			if p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, codec.String()) && !strings.Contains(*p.ErrorMessage, "record") {
				t.Fatalf("%v, %s: message %v says nothing of the batch", codec, what, p.ErrorMessage)
			}
		}
	}
	if end := tb.b.partition("zc", 0).log.EndOffset(); end != int64(len(stored)) {
		t.Fatalf("log end %d, want %d: a refused batch was written", end, len(stored))
	}
	for i, r := range consumeAll(t, tb, "zc", len(stored)) {
		if string(r.Value) != stored[i] {
			t.Fatalf("record %d = %q, want %q", i, r.Value, stored[i])
		}
	}
}

// TestProduceSetsMaxTimestamp: a batch whose header understates its max
// timestamp is stored with its records' own, as Kafka's LogValidator
// does, so ListOffsets by time (and MAX_TIMESTAMP) and retention see the
// latest record. The stored batch's CRC is right.
func TestProduceSetsMaxTimestamp(t *testing.T) {
	tb, rc := startWithTopic(t, "mt", nil)
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	for i, batch := range [][]byte{
		keyedBatch(0, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, []int64{t0, t0 + 5000, t0 + 1000}),
		compressedBatch(t, compress.LZ4, 0, "d", "e"), // timestamps now
	} {
		binary.BigEndian.PutUint64(batch[35:], uint64(t0-1)) // the header says earlier than any record
		setBatchCRC(batch)
		if p := produceOne(rc, 9, -1, "mt", [16]byte{}, batch); p.ErrorCode != 0 {
			t.Fatalf("batch %d: %v", i, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	// A compressed batch's records are what a timestamp bound is
	// checked against, whatever its header says.
	after := "3600000"
	if _, err := tb.b.createTopic("mt-after", 1, -1, map[string]string{"message.timestamp.after.max.ms": after}, false); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	future := compressBatch(t, compress.Zstd, keyedBatch(0, [][]byte{[]byte("a"), []byte("b")}, []int64{now, now + 86400000}))
	binary.BigEndian.PutUint64(future[35:], uint64(now)) // the header says now
	setBatchCRC(future)
	if p := produceOne(rc, 9, -1, "mt-after", [16]byte{}, future); p.ErrorCode != kerr.InvalidTimestamp.Code ||
		len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != 1 {
		t.Fatalf("a zstd batch with a record a day ahead under a header saying now: %v, record errors %+v; want INVALID_TIMESTAMP naming record 1",
			kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}
	lookup := func(ts int64) (int64, int64) {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 7
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "mt"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = ts
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		p := rc.request(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("ListOffsets %d: %v", ts, kerr.ErrorForCode(p.ErrorCode))
		}
		return p.Offset, p.Timestamp
	}
	if off, _ := lookup(t0 + 3000); off != 1 {
		t.Fatalf("first record at or after t0+3s: offset %d, want 1", off)
	}
	if off, _ := lookup(t0 + 30000); off != 3 {
		t.Fatalf("first record at or after t0+30s: offset %d, want 3 (the LZ4 batch)", off)
	}
	sl, err := tb.b.partition("mt", 0).log.Read(0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Release()
	raw := make([]byte, sl.Len)
	if _, err := sl.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	h, err := segment.ValidateBatch(raw)
	if err != nil || h.MaxTimestamp != t0+5000 || int64(binary.BigEndian.Uint64(raw[35:])) != t0+5000 {
		t.Fatalf("stored batch: max timestamp %d (%v), want %d in its header", h.MaxTimestamp, err, t0+5000)
	}
}
