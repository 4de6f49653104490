package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Producer-state errors, mapped by the engine to Kafka codes.
var (
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	ErrProducerFenced     = errors.New("producer epoch is older than the current one")
	// ErrInvalidTxnState: a producer with an open transaction on the
	// partition wrote a batch outside it.
	ErrInvalidTxnState = errors.New("invalid transaction state")
	// ErrCoordinatorFenced: a marker from a coordinator older than the
	// one that last wrote a marker for the producer.
	ErrCoordinatorFenced = errors.New("transaction coordinator epoch is older than the current one")
)

// maxProducerBatches is how many recent batches per producer are remembered
// for duplicate detection: Kafka clients keep at most 5 requests in flight.
const maxProducerBatches = 5

type producerBatch struct {
	firstSeq, lastSeq int32
	firstOffset       int64
	lastOffset        int64
}

// producerEntry is the idempotence state of one producer id on one partition.
type producerEntry struct {
	epoch   int16
	batches []producerBatch // oldest first, at most maxProducerBatches
	// lastTs is the broker time of the producer's last append. Kafka counts
	// producer.id.expiration.ms from the batch's max timestamp instead, so a
	// producer writing old timestamps there loses its dedupe state at the
	// next expiry check; samsa uses its own clock.
	lastTs int64
	// coordEpoch is the coordinator epoch of the last marker written for
	// the producer; markers from older coordinators are fenced.
	coordEpoch int32
	// txnFirst is the first offset of the producer's open transaction on
	// this partition, -1 when none is open.
	txnFirst int64
	// lastMarker is the log's markerSeq at the producer's last marker:
	// a transactional produce's verification guard (Log.TxnGuard).
	lastMarker uint64
}

func newProducerEntry() *producerEntry { return &producerEntry{coordEpoch: -1, txnFirst: -1} }

func (e *producerEntry) lastSeq() int32 {
	if len(e.batches) == 0 {
		return -1
	}
	return e.batches[len(e.batches)-1].lastSeq
}

// producerState tracks every idempotent producer seen on a partition.
// Guarded by Log.mu.
type producerState map[int64]*producerEntry

// check decides what to do with a batch from an idempotent producer: append
// it (dup == nil), acknowledge it as a duplicate of an earlier batch, or
// reject it.
func (ps producerState) check(h *BatchHeader) (dup *producerBatch, err error) {
	e := ps[h.ProducerID]
	if e == nil {
		// As Kafka (ProducerAppendInfo.checkSequence) does for a producer
		// with no state, whatever the sequence: its state may have expired
		// or gone with retention, and refusing would wedge the producer.
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, fmt.Errorf("cannot append: producer %d epoch %d < %d: %w", h.ProducerID, h.ProducerEpoch, e.epoch, ErrProducerFenced)
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("cannot append: producer %d new epoch %d starts at sequence %d: %w", h.ProducerID, h.ProducerEpoch, h.BaseSequence, ErrOutOfOrderSequence)
		}
		return nil, nil
	}
	last := h.LastSequence()
	for i := range e.batches {
		b := &e.batches[i]
		if b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, nil
		}
	}
	if want := seqAdd(e.lastSeq(), 1); h.BaseSequence != want {
		return nil, fmt.Errorf("cannot append: producer %d sent sequence %d, expected %d: %w", h.ProducerID, h.BaseSequence, want, ErrOutOfOrderSequence)
	}
	if e.txnFirst >= 0 && !h.IsTransactional() {
		return nil, fmt.Errorf("cannot append: producer %d has a transaction open since offset %d and wrote outside it: %w", h.ProducerID, e.txnFirst, ErrInvalidTxnState)
	}
	return nil, nil
}

// update records an appended data batch (with its final offsets). nowMs
// is the broker's time of the append, which producer expiry counts from.
// It returns the entry, whose txnFirst a transactional batch sets.
func (ps producerState) update(h *BatchHeader, nowMs int64) *producerEntry {
	e := ps[h.ProducerID]
	if e == nil || h.ProducerEpoch != e.epoch {
		if e == nil {
			e = newProducerEntry()
			ps[h.ProducerID] = e
		}
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	if len(e.batches) == maxProducerBatches {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:maxProducerBatches-1]
	}
	e.batches = append(e.batches, producerBatch{
		firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
		firstOffset: h.BaseOffset, lastOffset: h.LastOffset(),
	})
	e.lastTs = nowMs
	if h.IsTransactional() && e.txnFirst < 0 {
		e.txnFirst = h.BaseOffset
	}
	return e
}

// expire drops producers whose last batch is older than cutoff, except
// those with a transaction open (as Kafka's isProducerExpired).
func (ps producerState) expire(cutoff int64) {
	for id, e := range ps {
		if e.lastTs < cutoff && e.txnFirst < 0 {
			delete(ps, id)
		}
	}
}

// Snapshot file: "<20-digit offset>.snapshot" holds the producer state as of
// that offset (every batch below it applied):
//
//	version int16 (2) | count int32 | entries | crc32c of everything before
//	entry: producerId int64 | epoch int16 | lastTs int64 |
//	       coordEpoch int32 | txnFirst int64 (version 2 only) | n int8 |
//	       n × (firstSeq int32 | lastSeq int32 | firstOffset int64 | lastOffset int64)
//
// Version 1 (before transactions) lacks coordEpoch and txnFirst; it is
// still read.
const snapshotVersion = 2

func (ps producerState) marshal(dst []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, snapshotVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ps)))
	ids := make([]int64, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		e := ps[id]
		dst = binary.BigEndian.AppendUint64(dst, uint64(id))
		dst = binary.BigEndian.AppendUint16(dst, uint16(e.epoch))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.lastTs))
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.coordEpoch))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.txnFirst))
		dst = append(dst, byte(len(e.batches)))
		for _, b := range e.batches {
			dst = binary.BigEndian.AppendUint32(dst, uint32(b.firstSeq))
			dst = binary.BigEndian.AppendUint32(dst, uint32(b.lastSeq))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.firstOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.lastOffset))
		}
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

func unmarshalProducerState(src []byte) (producerState, error) {
	bad := func(what string) (producerState, error) {
		return nil, fmt.Errorf("cannot decode producer snapshot: %s", what)
	}
	if len(src) < 10 {
		return bad("too short")
	}
	body, sum := src[:len(src)-4], binary.BigEndian.Uint32(src[len(src)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return bad("crc mismatch")
	}
	version := binary.BigEndian.Uint16(body)
	if version != 1 && version != snapshotVersion {
		return bad("unknown version")
	}
	fixed := 19 // the entry's bytes before its batches
	if version >= 2 {
		fixed = 31
	}
	n := int(binary.BigEndian.Uint32(body[2:]))
	body = body[6:]
	if n > len(body)/fixed {
		return bad("count exceeds the data") // before sizing a map by it
	}
	ps := make(producerState, n)
	for i := 0; i < n; i++ {
		if len(body) < fixed {
			return bad("truncated entry")
		}
		id := int64(binary.BigEndian.Uint64(body))
		e := newProducerEntry()
		e.epoch, e.lastTs = int16(binary.BigEndian.Uint16(body[8:])), int64(binary.BigEndian.Uint64(body[10:]))
		if version >= 2 {
			e.coordEpoch = int32(binary.BigEndian.Uint32(body[18:]))
			e.txnFirst = int64(binary.BigEndian.Uint64(body[22:]))
		}
		nb := int(body[fixed-1])
		body = body[fixed:]
		if nb > maxProducerBatches || len(body) < nb*24 {
			return bad("truncated batches")
		}
		for j := 0; j < nb; j++ {
			e.batches = append(e.batches, producerBatch{
				firstSeq:    int32(binary.BigEndian.Uint32(body)),
				lastSeq:     int32(binary.BigEndian.Uint32(body[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(body[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(body[16:])),
			})
			body = body[24:]
		}
		ps[id] = e
	}
	if len(body) != 0 {
		return bad("trailing bytes")
	}
	return ps, nil
}

func snapshotPath(dir string, off int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.snapshot", off))
}

// listSnapshots returns the offsets of the snapshot files in dir, ascending.
func listSnapshots(dir string) []int64 {
	ents, _ := os.ReadDir(dir)
	names := make(map[string]bool, len(ents))
	for _, e := range ents {
		names[e.Name()] = true
	}
	return snapshotsIn(names)
}

// snapshotsIn returns the offsets of the snapshot files among a
// directory's names, ascending.
func snapshotsIn(names map[string]bool) []int64 {
	var offs []int64
	for name := range names {
		base, ok := strings.CutSuffix(name, ".snapshot")
		if !ok {
			continue
		}
		if off, ok := ParseOffsetName(base); ok {
			offs = append(offs, off)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs
}
