package engine

import (
	"encoding/binary"
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

// buildBatch encodes an uncompressed v2 record batch with one record per
// key/value pair, timestamps ts, no producer. It is for samsa's own internal
// records (the metadata log); client batches are never re-encoded.
func buildBatch(ts int64, kvs ...[2][]byte) []byte {
	b := make([]byte, segment.BatchHeaderSize, 256)
	var rec []byte
	for i, kv := range kvs {
		rec = rec[:0]
		rec = append(rec, 0)                     // attributes
		rec = binary.AppendVarint(rec, 0)        // timestamp delta
		rec = binary.AppendVarint(rec, int64(i)) // offset delta
		rec = appendVarBytes(rec, kv[0])         // key
		rec = appendVarBytes(rec, kv[1])         // value
		rec = binary.AppendVarint(rec, 0)        // headers
		b = binary.AppendVarint(b, int64(len(rec)))
		b = append(b, rec...)
	}
	be := binary.BigEndian
	be.PutUint64(b[0:], 0)
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[12:], 0)
	b[16] = 2
	be.PutUint16(b[21:], 0)
	be.PutUint32(b[23:], uint32(len(kvs)-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], ^uint16(0))
	be.PutUint32(b[53:], ^uint32(0))
	be.PutUint32(b[57:], uint32(len(kvs)))
	be.PutUint32(b[17:], segment.BatchCRC(b))
	return b
}

func appendVarBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}
