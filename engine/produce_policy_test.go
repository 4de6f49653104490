package engine

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"
)

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
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = version, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = topic, tb.b.topic(topic).id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return rc.request(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
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
