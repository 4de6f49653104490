package segment

// Transactions on a partition, as Kafka's log keeps them: transactional
// batches open a transaction per producer, the coordinator's commit or
// abort marker (a control batch) closes it. The first offset of the
// oldest open transaction bounds what read_committed consumers see (the
// last stable offset), and every aborted transaction is recorded in the
// aborted-transaction index of the segment holding its marker, in Kafka's
// .txnindex format, so a read_committed fetch learns which records to drop
// without reading the log.
//
// The index of the active segment lives in memory and is written with the
// segment's other indexes when it is sealed or the log closes cleanly. A
// crash rebuilds it by replaying the batches after the producer snapshot;
// a sealed segment whose indexes had to be rebuilt makes the replay start
// at the log start (loadProducers).

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"time"
)

// AbortedTxn is one entry of an aborted-transaction index (Kafka's
// AbortedTxn): the producer, the first offset of its aborted transaction,
// the offset of the abort marker, and the last stable offset right after
// the abort.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// txnIndex is a segment's aborted transactions in marker order.
type txnIndex []AbortedTxn

// txnEntrySize is Kafka's .txnindex entry: version int16 (0) | producerId
// int64 | firstOffset int64 | lastOffset int64 | lastStableOffset int64.
const txnEntrySize = 34

func (x txnIndex) marshal(dst []byte) []byte {
	for _, e := range x {
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ProducerID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstOffset))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastOffset))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastStableOffset))
	}
	return dst
}

func unmarshalTxnIndex(src []byte) (txnIndex, error) {
	if len(src)%txnEntrySize != 0 {
		return nil, fmt.Errorf("cannot load transaction index: %d bytes is not a whole number of entries", len(src))
	}
	x := make(txnIndex, 0, len(src)/txnEntrySize)
	for ; len(src) > 0; src = src[txnEntrySize:] {
		if v := binary.BigEndian.Uint16(src); v != 0 {
			return nil, fmt.Errorf("cannot load transaction index: entry version %d", v)
		}
		e := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(src[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(src[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(src[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(src[26:])),
		}
		if e.FirstOffset > e.LastOffset || (len(x) > 0 && e.LastOffset <= x[len(x)-1].LastOffset) {
			return nil, fmt.Errorf("cannot load transaction index: entries out of order")
		}
		x = append(x, e)
	}
	return x, nil
}

// loadTxnIndex reads the segment's .txnindex, keeping the entries whose
// markers the segment still holds. OpenLog calls it only for segments
// whose directory listing has one: most never had an aborted transaction.
func (s *Segment) loadTxnIndex() error {
	b, err := os.ReadFile(s.path + ".txnindex")
	if os.IsNotExist(err) {
		s.txnIdx = nil
		s.txnOnDisk.Store(false)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read transaction index: %w", err)
	}
	x, err := unmarshalTxnIndex(b)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range x {
		if e.LastOffset >= s.base && e.LastOffset <= s.lastOffset {
			x[n] = e
			n++
		}
	}
	s.txnIdx = x[:n]
	return nil
}

// writeTxnIndex persists the segment's aborted transactions, or removes a
// stale file when there are none (and only then: sealing a segment that
// never had one costs no syscall).
func (s *Segment) writeTxnIndex(x txnIndex) error {
	if len(x) == 0 {
		if !s.txnOnDisk.Load() {
			return nil
		}
		if err := os.Remove(s.path + ".txnindex"); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("cannot remove transaction index: %w", err)
		}
		s.txnOnDisk.Store(false)
		return nil
	}
	if err := writeFileSync(s.path+".txnindex", x.marshal(nil)); err != nil {
		return err
	}
	s.txnOnDisk.Store(true)
	return nil
}

// Control record types of transaction markers.
const (
	controlAbort  = 0
	controlCommit = 1
)

// markerSize is a transaction marker's batch: the header and one record
// whose key is (version 0, type) and value (version 0, coordinator epoch).
const markerSize = BatchHeaderSize + 17

// BuildMarker returns a commit or abort marker for producer (pid, epoch),
// stamped with the coordinator's epoch, as Kafka's
// MemoryRecords.withEndTransactionMarker writes it. Its base offset and
// leader epoch are set when it is appended.
func BuildMarker(pid int64, epoch int16, coordEpoch int32, commit bool, ts int64) []byte {
	b := make([]byte, markerSize)
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(markerSize-batchLengthOverhead))
	b[16] = 2
	be.PutUint16(b[21:], AttrTransactional|AttrControl)
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], 0xffffffff) // no sequence
	be.PutUint32(b[57:], 1)
	r := b[BatchHeaderSize:]
	r[0] = 16 << 1 // record length 16 (zigzag varint)
	// attributes, timestamp delta and offset delta are 0
	r[4] = 4 << 1 // key length
	typ := uint16(controlAbort)
	if commit {
		typ = controlCommit
	}
	be.PutUint16(r[7:], typ)                 // key: version 0 (r[5:7]), type
	r[9] = 6 << 1                            // value length
	be.PutUint32(r[12:], uint32(coordEpoch)) // value: version 0 (r[10:12]), epoch
	// header count 0
	be.PutUint32(b[17:], crc32.Checksum(b[crcStart:], crcTable))
	return b
}

// ParseMarker reads a transaction marker's type and coordinator epoch
// from a control batch. A value of a later version is read as version 0,
// as Kafka does.
func ParseMarker(batch []byte, h *BatchHeader) (commit bool, coordEpoch int32, err error) {
	if !h.IsControl() || h.Compression() != 0 || len(batch) < BatchHeaderSize {
		return false, 0, fmt.Errorf("cannot read marker: not an uncompressed control batch: %w", ErrInvalidRecord)
	}
	var typ int16 = -1
	err = ForEachRecord(batch[BatchHeaderSize:], func(r *Record) bool {
		if len(r.Key) < 4 || binary.BigEndian.Uint16(r.Key) != 0 {
			return false
		}
		typ = int16(binary.BigEndian.Uint16(r.Key[2:]))
		if len(r.Value) < 6 || int16(binary.BigEndian.Uint16(r.Value)) < 0 {
			typ = -1
			return false
		}
		coordEpoch = int32(binary.BigEndian.Uint32(r.Value[2:]))
		return false
	})
	if err != nil {
		return false, 0, err
	}
	if typ != controlAbort && typ != controlCommit {
		return false, 0, fmt.Errorf("cannot read marker: not a transaction marker: %w", ErrInvalidRecord)
	}
	return typ == controlCommit, coordEpoch, nil
}

// AppendMarker appends the coordinator's commit or abort marker for
// producer (pid, epoch) and closes its open transaction, if any, as
// Kafka's WriteTxnMarkers does. A marker older than the producer's epoch
// fails with ErrProducerFenced, one from an older coordinator with
// ErrCoordinatorFenced. done is called as for Append. It returns the
// marker's offset.
func (l *Log) AppendMarker(pid int64, epoch int16, coordEpoch int32, commit, sync bool, done func(error)) (int64, error) {
	now := time.Now()
	batch := BuildMarker(pid, epoch, coordEpoch, commit, now.UnixMilli())
	h, err := ParseBatchHeader(batch)
	if err != nil {
		panic("BUG: a marker does not parse: " + err.Error())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.disk.closing() {
		return -1, ErrLogClosed
	}
	if err := l.failure(); err != nil {
		return -1, err
	}
	if e := l.producers[pid]; e != nil {
		switch {
		case epoch < e.epoch:
			return -1, fmt.Errorf("cannot write marker: producer %d epoch %d < %d: %w", pid, epoch, e.epoch, ErrProducerFenced)
		case coordEpoch < e.coordEpoch:
			return -1, fmt.Errorf("cannot write marker: producer %d coordinator epoch %d < %d: %w", pid, coordEpoch, e.coordEpoch, ErrCoordinatorFenced)
		}
	}
	cfg := l.cfg.Load()
	// Markers may use the reserve: a transaction must be able to end on a
	// full disk, or its partitions' LSO stays stuck.
	if !cfg.Internal {
		c := *cfg
		c.Internal = true
		cfg = &c
	}
	if err := l.checkSpace(cfg); err != nil {
		return -1, err
	}
	active, err := l.activeForLocked(cfg, int64(len(batch)), &h, now)
	if err != nil {
		return -1, err
	}
	off := l.next
	l.noteEpochLocked(l.leaderEpoch, l.next)
	SetBaseOffset(batch, off)
	SetLeaderEpoch(batch, l.leaderEpoch)
	h.BaseOffset, h.LeaderEpoch = off, l.leaderEpoch
	l.placeLocked(active, cfg, batch, &h, now, sync, done)
	return off, nil
}

// applyProducerLocked updates the producer state for a batch placed at
// the end of seg (appended, replicated or replayed): data batches through
// producerState.update, markers by closing the producer's transaction and
// indexing an abort. l.mu is held.
func (l *Log) applyProducerLocked(seg *Segment, batch []byte, h *BatchHeader, nowMs int64) {
	if !h.IsControl() {
		if e := l.producers.update(h, nowMs); e.txnFirst >= 0 {
			if first, ok := l.ongoing[h.ProducerID]; !ok || first != e.txnFirst {
				l.setOngoingLocked(h.ProducerID, e.txnFirst)
			}
		}
		return
	}
	commit, coordEpoch, err := ParseMarker(batch, h)
	if err != nil {
		return // a control batch of another kind: no producer state
	}
	e := l.producers[h.ProducerID]
	if e == nil {
		e = newProducerEntry()
		l.producers[h.ProducerID] = e
	}
	l.markerSeq++
	e.lastMarker = l.markerSeq // guards read before it no longer hold (TxnGuard)
	if h.ProducerEpoch != e.epoch {
		// A fencing marker: the next batch of the new epoch starts at 0.
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	e.coordEpoch = max(e.coordEpoch, coordEpoch)
	e.lastTs = nowMs
	first := e.txnFirst
	if first < 0 {
		return // an empty transaction, or a retried marker
	}
	e.txnFirst = -1
	delete(l.ongoing, h.ProducerID)
	fu := l.firstOngoingLocked()
	// LastStableOffset and AbortedTxns read without the lock: the
	// transaction is noted as decided, and an abort indexed, before the
	// first unstable offset moves past it, or a fetch in between would
	// take it as stable with its marker not yet held by the standby, or
	// read aborted records with no aborted list.
	l.noteDecidedLocked(first, h.BaseOffset)
	if !commit {
		lso := h.BaseOffset + 1
		if fu >= 0 {
			lso = fu
		}
		// A replayed abort is already loaded from the segment's index.
		if n := len(seg.txnIdx); n == 0 || seg.txnIdx[n-1].LastOffset < h.BaseOffset {
			seg.txnIdx = append(seg.txnIdx, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: first, LastOffset: h.BaseOffset, LastStableOffset: lso})
			l.hasAborts.Store(true)
		}
	}
	l.firstUnstable.Store(fu)
}

// setOngoingLocked records that pid's open transaction starts at first
// and recomputes the first unstable offset. l.mu is held.
func (l *Log) setOngoingLocked(pid, first int64) {
	if l.ongoing == nil {
		l.ongoing = map[int64]int64{}
	}
	l.ongoing[pid] = first
	l.firstUnstable.Store(l.firstOngoingLocked())
}

// firstOngoingLocked is the first offset of the oldest open transaction,
// -1 for none. l.mu is held.
func (l *Log) firstOngoingLocked() int64 {
	fu := int64(-1)
	for _, f := range l.ongoing {
		if fu < 0 || f < fu {
			fu = f
		}
	}
	return fu
}

// decidedTxn is a transaction of [first, marker] decided by its marker.
type decidedTxn struct{ first, marker int64 }

// maxDecided bounds the decided transactions a log keeps: those whose
// markers are above the high watermark last noted (NoteHighWatermark, as
// the pair's high watermark moves; LastStableOffset). Only markers the
// standby does not hold yet are kept, a few in practice; past the bound
// the oldest goes and the LSO may pass its transaction before the standby
// holds its marker (Kafka keeps them all).
const maxDecided = 256

// noteDecidedLocked records that the transaction of [first, marker] was
// decided by its marker: until the high watermark passes the marker, the
// last stable offset stays at first, as Kafka's (a read_committed
// consumer must not take the transaction as decided on a marker that a
// failover to the standby would lose). Entries whose marker is below the
// high watermark last seen are dropped. l.mu is held.
func (l *Log) noteDecidedLocked(first, marker int64) {
	hw := l.seenHW.Load()
	var next []decidedTxn
	if p := l.decided.Load(); p != nil {
		for _, d := range *p {
			if d.marker >= hw {
				next = append(next, d)
			}
		}
	}
	if marker >= hw {
		next = append(next, decidedTxn{first, marker})
	}
	if len(next) > maxDecided {
		next = next[len(next)-maxDecided:]
	}
	if len(next) == 0 {
		l.decided.Store(nil)
		return
	}
	l.decided.Store(&next)
}

// rebuildOngoingLocked derives the open transactions from the producer
// state (after a snapshot load or a truncation). l.mu is held.
func (l *Log) rebuildOngoingLocked() {
	l.ongoing = nil
	l.decided.Store(nil)
	l.seenHW.Store(0)
	for pid, e := range l.producers {
		if e.txnFirst < 0 {
			continue
		}
		if l.ongoing == nil {
			l.ongoing = map[int64]int64{}
		}
		l.ongoing[pid] = e.txnFirst
	}
	l.firstUnstable.Store(l.firstOngoingLocked())
}

// NoteHighWatermark tells the log its high watermark moved to hw: decided
// transactions whose markers are below it are dropped at the next marker.
// Any goroutine.
func (l *Log) NoteHighWatermark(hw int64) {
	for seen := l.seenHW.Load(); hw > seen && !l.seenHW.CompareAndSwap(seen, hw); seen = l.seenHW.Load() {
	}
}

// LastStableOffset is the offset below which every transaction is decided,
// given the high watermark hw: the first offset of the oldest transaction
// still open or whose marker is at or above hw, or hw when that is lower
// or there is none. Never below the log start (retention may delete the
// start of an open transaction).
func (l *Log) LastStableOffset(hw int64) int64 {
	fu := l.firstUnstable.Load()
	if p := l.decided.Load(); p != nil {
		for _, d := range *p {
			if d.marker >= hw && (fu < 0 || d.first < fu) {
				fu = d.first
			}
		}
		l.NoteHighWatermark(hw)
	}
	if fu < 0 || fu >= hw {
		return hw
	}
	return max(fu, l.start.Load())
}

// AbortedTxns appends to dst the aborted transactions a read_committed
// fetch of [from, upTo) must report: those with records in the range and a
// marker at or after from. Like Kafka's collectAbortedTransactions it reads
// the indexes from the segment holding from onward, until an entry's last
// stable offset reaches upTo. A log that never had an aborted transaction
// answers without taking its lock.
func (l *Log) AbortedTxns(dst []AbortedTxn, from, upTo int64) []AbortedTxn {
	if !l.hasAborts.Load() || from >= upTo {
		return dst
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].base > from {
		i--
	}
	for _, s := range l.segs[i:] {
		for _, e := range s.txnIdx {
			if e.LastOffset >= from && e.FirstOffset < upTo {
				dst = append(dst, e)
			}
			if e.LastStableOffset >= upTo {
				return dst
			}
		}
	}
	return dst
}

// ProducerInfo is a producer's state on a partition, for DescribeProducers.
type ProducerInfo struct {
	ID               int64
	Epoch            int16
	LastSequence     int32
	LastTimestamp    int64 // broker time of its last append (ms); after an unclean start, its last batch's max timestamp
	CoordinatorEpoch int32
	TxnStartOffset   int64 // first offset of its open transaction, -1 if none
}

// Producers lists the producers the partition tracks.
func (l *Log) Producers() []ProducerInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]ProducerInfo, 0, len(l.producers))
	for id, e := range l.producers {
		out = append(out, ProducerInfo{ID: id, Epoch: e.epoch, LastSequence: e.lastSeq(), LastTimestamp: e.lastTs,
			CoordinatorEpoch: e.coordEpoch, TxnStartOffset: e.txnFirst})
	}
	return out
}

// TxnGuard is Kafka's verification guard for a transactional produce:
// read before the produce is verified (the producer is in a transaction
// on this partition, or the coordinator says the partition is in its open
// transaction) and handed to AppendVerified, it tells whether a marker for
// the producer was written in between. Without it, a batch verified just
// before its transaction's marker and appended just after would open a
// transaction the coordinator has already ended, holding the partition's
// last stable offset until an operator aborts it. It is the log's marker
// clock, not a count kept in the producer's entry, so an entry expired or
// rebuilt in between cannot make a good guard look stale.
func (l *Log) TxnGuard() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.markerSeq
}

// InTransaction reports whether producer (pid, epoch) has a transaction
// open on the partition.
func (l *Log) InTransaction(pid int64, epoch int16) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e := l.producers[pid]
	return e != nil && e.epoch == epoch && e.txnFirst >= 0
}

// ParseTxnIndex decodes a .txnindex file as OpenLog does (for tools).
func ParseTxnIndex(src []byte) ([]AbortedTxn, error) { return unmarshalTxnIndex(src) }
