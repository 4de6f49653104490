package engine

// The produce-time policy of a topic, as Kafka applies it: what a batch
// must satisfy and how it is re-encoded before it is appended, and how many
// replicas count as in sync for acks=all and min.insync.replicas (offset
// commits use it too).

import (
	"fmt"

	"samsa/segment"
	"samsa/segment/compress"
)

// prepareBatch applies a topic's produce-time policy to a validated batch:
// compacted topics need a key on every record, and a topic codec other
// than the batch's re-encodes it. It returns the batch to append (batch
// itself when nothing changes) and updates h to match. The records are
// inflated at most once, for both.
func prepareBatch(pol *topicPolicy, batch []byte, h *segment.BatchHeader) ([]byte, error) {
	if h.IsControl() {
		return batch, nil
	}
	recompress := pol.codec >= 0 && compress.Codec(h.Compression()) != pol.codec
	if !pol.compacted && !recompress {
		return batch, nil
	}
	records, err := segment.BatchRecords(nil, batch, h, segment.MaxInflatedBatch)
	if err != nil {
		return nil, err
	}
	if pol.compacted {
		nullKey := false
		err := segment.ForEachRecord(records, func(r *segment.Record) bool {
			nullKey = r.Key == nil
			return !nullKey
		})
		if err != nil {
			return nil, err
		}
		if nullKey {
			return nil, fmt.Errorf("compacted topic cannot accept a record without a key: %w", segment.ErrInvalidRecord)
		}
	}
	if !recompress {
		return batch, nil
	}
	return segment.Recompress(make([]byte, 0, len(batch)), records, batch, h, pol.codec)
}

// inSyncReplicas is how many replicas of p hold its acknowledged writes:
// this node alone until a standby follows it.
func (b *Broker) inSyncReplicas(p *partition) int {
	if p.replica.InSync() {
		return 2
	}
	return 1
}
