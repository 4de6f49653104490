package engine

// samsa's own records in its internal logs (the metadata log and
// __consumer_offsets): buildBatch encodes them, readLog reads every record of
// such a log back on start. Client batches are never built or re-read here.

import (
	"encoding/binary"
	"fmt"

	"samsa/segment"
)

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

// setTxnProducer makes an internal batch a transactional one of producer
// (pid, epoch), as the group coordinator writes transactional offsets.
// Coordinator writes carry no sequence (segment.Log.AppendCoordinator).
func setTxnProducer(b []byte, pid int64, epoch int16) {
	be := binary.BigEndian
	be.PutUint16(b[21:], segment.AttrTransactional)
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[17:], segment.BatchCRC(b))
}

func appendVarBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

// readLog calls fn for every record of l in order (records of compressed
// batches too).
func readLog(l *segment.Log, fn func(key, value []byte) error) error {
	return readLogFrom(l, 0, fn)
}

// readLogFrom calls fn for every record of l at or after offset from.
func readLogFrom(l *segment.Log, from int64, fn func(key, value []byte) error) error {
	return readLogTxn(l, from, func(key, value []byte, _ *segment.BatchHeader) error { return fn(key, value) }, nil)
}

// readLogTxn calls fn for every record of l at or after offset from, with
// its batch's header (its producer, whether it is transactional), and
// marker, if not nil, for every transaction marker.
func readLogTxn(l *segment.Log, from int64, fn func(key, value []byte, h *segment.BatchHeader) error, marker func(h *segment.BatchHeader, commit bool)) error {
	var buf, scratch []byte
	for off := max(from, l.StartOffset()); off < l.EndOffset(); {
		sl, err := l.Read(off, l.EndOffset(), 1<<20)
		if err != nil {
			return err
		}
		if sl.Len == 0 {
			sl.Release()
			break
		}
		buf = append(buf[:0], make([]byte, sl.Len)...)
		_, err = sl.ReadAt(buf, 0)
		sl.Release()
		if err != nil {
			return err
		}
		for p := buf; len(p) > 0; {
			h, err := segment.ParseBatchHeader(p)
			if err != nil {
				return err
			}
			batch := p[:h.Size()]
			p = p[h.Size():]
			if h.LastOffset() < off {
				continue
			}
			if h.IsControl() {
				if commit, _, err := segment.ParseMarker(batch, &h); err == nil && marker != nil {
					marker(&h, commit)
				}
				continue
			}
			records, err := segment.StoredRecords(scratch[:0], batch, &h, segment.MaxInflatedBatch)
			if err != nil {
				return fmt.Errorf("at offset %d: %w", h.BaseOffset, err)
			}
			if h.Compression() != 0 {
				scratch = records // StoredRecords aliases batch when it is not compressed
			}
			var ferr error
			err = segment.ForEachRecord(records, func(r *segment.Record) bool {
				if h.BaseOffset+int64(r.OffsetDelta) < off {
					return true
				}
				ferr = fn(r.Key, r.Value, &h)
				return ferr == nil
			})
			if err == nil {
				err = ferr
			}
			if err != nil {
				return fmt.Errorf("at offset %d: %w", h.BaseOffset, err)
			}
		}
		off = sl.NextOffset
	}
	return nil
}
