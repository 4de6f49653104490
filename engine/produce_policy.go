package engine

// The produce-time policy of a topic, as Kafka applies it: what a batch
// must satisfy and how it is re-encoded before it is appended, and how many
// replicas count as in sync for acks=all and min.insync.replicas (offset
// commits use it too).

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/valyala/bytebufferpool"

	"samsa/segment"
	"samsa/segment/compress"
)

// recordsRefused is a batch refused for some of its records, as Kafka's
// RecordValidationException (KIP-467): Produce v8+ names each record
// (its index in the batch and why), so a client can fail those records
// and retry the others (librdkafka's _INVALID_DIFFERENT_RECORD).
type recordsRefused struct {
	records   []kmsg.ProduceResponseTopicPartitionErrorRecord
	timestamp bool // one was refused for its timestamp: INVALID_TIMESTAMP
}

func (e *recordsRefused) add(index int32, msg string) {
	r := kmsg.NewProduceResponseTopicPartitionErrorRecord()
	r.RelativeOffset, r.ErrorMessage = index, &msg
	e.records = append(e.records, r)
}

// Error is Kafka's message for the partition (LogValidator's
// processRecordErrors).
func (e *recordsRefused) Error() string {
	if e.timestamp {
		return "One or more records have been rejected due to invalid timestamp"
	}
	var sb strings.Builder
	for i, r := range e.records[:min(3, len(e.records))] {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "RecordError(batchIndex=%d, message='%s')", r.RelativeOffset, *r.ErrorMessage)
	}
	return "One or more records have been rejected due to " + strconv.Itoa(len(e.records)) +
		" record errors in total, and only showing the first three errors at most: [" + sb.String() + "]"
}

func (e *recordsRefused) Unwrap() error {
	if e.timestamp {
		return segment.ErrInvalidTimestamp
	}
	return segment.ErrInvalidRecord
}

// checksTimestamps reports whether a batch's records need their
// timestamps checked one by one: a CreateTime topic with a bound the
// batch's max timestamp does not settle (message.timestamp.before.max.ms
// needs each record's; after.max.ms only when the max is past it).
func (pol *topicPolicy) checksTimestamps(h *segment.BatchHeader, nowMs int64) bool {
	if h.Attributes&segment.AttrLogAppendTime != 0 {
		return true // refused whatever the topic's type
	}
	if pol.logAppendTime {
		return false
	}
	return pol.tsBefore != math.MaxInt64 || (h.MaxTimestamp >= 0 && h.MaxTimestamp-nowMs > pol.tsAfter)
}

// prepareBatch applies a topic's produce-time policy to a validated batch
// of a topic's partition: a compressed batch's records must inflate and
// parse, compacted topics need a key on every record, CreateTime
// timestamps must be within the topic's bounds, and a topic codec other
// than the batch's re-encodes it. The header's max timestamp is made the
// records' own, as Kafka's LogValidator does. It returns the batch to
// append (batch itself when nothing changes) and updates h to match; a
// refusal for some records is a *recordsRefused. The records are inflated
// at most once.
//
// Every compressed batch is inflated, as Kafka's LogValidator does: stored
// unread, a batch whose payload does not inflate to the records its header
// counts (a client's bug, or a CRC computed over corrupt bytes) would stop
// every consumer that reaches it. The inflated records go to a pooled
// buffer and are dropped; the batch is stored as sent.
func prepareBatch(pol *topicPolicy, topic string, partition int32, batch []byte, h *segment.BatchHeader) ([]byte, error) {
	if h.IsControl() {
		return batch, nil
	}
	records := batch[segment.BatchHeaderSize:]
	if h.Compression() != 0 {
		buf := inflatePool.Get()
		defer inflatePool.Put(buf)
		var err error
		records, err = segment.BatchRecords(buf.B, batch, h, segment.MaxInflatedBatch)
		if err != nil {
			return nil, err
		}
		buf.B = records // its length calibrates the pool
	}
	// After the inflation, which sets h.MaxTimestamp from the records.
	nowMs := time.Now().UnixMilli()
	checkTs := pol.checksTimestamps(h, nowMs)
	if pol.compacted || checkTs {
		if err := pol.checkRecords(records, topic, partition, h, nowMs, checkTs); err != nil {
			return nil, err
		}
	}
	if pol.codec < 0 || compress.Codec(h.Compression()) == pol.codec {
		segment.SyncMaxTimestamp(batch, h)
		return batch, nil
	}
	return segment.Recompress(make([]byte, 0, len(batch)), records, batch, h, pol.codec)
}

// inflatePool holds the buffers prepareBatch inflates into; it keeps
// buffers of the sizes most used and lets the rare huge one go.
var inflatePool bytebufferpool.Pool

// checkRecords checks each record as Kafka's LogValidator does, a key
// first (compacted topics), then its timestamp, and returns every record
// refused (a *recordsRefused), or nil.
func (pol *topicPolicy) checkRecords(records []byte, topic string, partition int32, h *segment.BatchHeader, nowMs int64, checkTs bool) error {
	var refused *recordsRefused
	refuse := func(index int32, ts bool, msg string) {
		if refused == nil {
			refused = &recordsRefused{}
		}
		refused.timestamp = refused.timestamp || ts
		refused.add(index, msg)
	}
	lo, hi := nowMs-pol.tsBefore, nowMs+pol.tsAfter
	if pol.tsBefore > nowMs {
		lo = math.MinInt64
	}
	if pol.tsAfter > math.MaxInt64-nowMs {
		hi = math.MaxInt64
	}
	var index int32
	err := segment.ForEachRecord(records, func(r *segment.Record) bool {
		switch {
		case pol.compacted && r.Key == nil:
			refuse(index, false, "Compacted topic cannot accept message without key in topic partition "+topic+"-"+strconv.Itoa(int(partition)))
		case !checkTs:
		case h.Attributes&segment.AttrLogAppendTime != 0:
			refuse(index, true, fmt.Sprintf("Invalid timestamp type in message at offset %d. Producer should not set timestamp type to LogAppendTime.", h.BaseOffset+int64(r.OffsetDelta)))
		case pol.logAppendTime:
		default:
			ts := h.FirstTimestamp + r.TimestampDelta
			if ts != -1 && (ts < lo || ts > hi) {
				refuse(index, true, fmt.Sprintf("Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]",
					ts, h.BaseOffset+int64(r.OffsetDelta), lo, hi))
			}
		}
		index++
		return true
	})
	if err != nil {
		return err
	}
	if refused == nil {
		return nil
	}
	return refused
}

// inSyncReplicas is how many replicas of p hold its acknowledged writes:
// this node alone until a standby follows it.
func (b *Broker) inSyncReplicas(p *partition) int {
	if p.replica.InSync() {
		return 2
	}
	return 1
}
