package logtool

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"samsa/segment"
)

// Index entry sizes (segment/index.go, Kafka's formats): .index holds
// (relative offset uint32, position uint32), .timeindex (timestamp int64,
// relative offset uint32), big-endian.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// siblingPath is the file of type typ beside path for the same segment:
// the .log of an .index, keeping a leftover suffix such as .cleaned.
func siblingPath(path, typ string) string {
	stem, _, suffix := splitName(filepath.Base(path))
	return filepath.Join(filepath.Dir(path), stem+typ+suffix)
}

// jsonIndexEntry is one index or time index entry in JSON mode.
type jsonIndexEntry struct {
	Offset    int64  `json:"offset"`
	Position  *int64 `json:"position,omitempty"`  // .index
	Timestamp *int64 `json:"timestamp,omitempty"` // .timeindex
	Error     string `json:"error,omitempty"`
}

type jsonError struct {
	Error string `json:"error"`
}

// offsetIndex dumps an .index file, checking each entry against the batch
// it points at when the segment's .log is there, as kafka-dump-log does.
func (d *dumper) offsetIndex(f *os.File, size int64) error {
	base, baseOK := segment.ParseOffsetName(stemOf(d.path))
	var lf *os.File
	var logSize int64
	if baseOK {
		if l, err := os.Open(siblingPath(d.path, ".log")); err == nil {
			defer l.Close()
			if st, err := l.Stat(); err == nil && st.Mode().IsRegular() {
				lf, logSize = l, st.Size()
			}
		}
	}
	if !d.opt.JSON {
		switch {
		case !baseOK:
			d.printf("(the name holds no base offset: offsets are relative)\n")
		case lf == nil:
			d.printf("(no %s beside it: entries not checked against the log)\n", filepath.Base(siblingPath(d.path, ".log")))
		}
	}
	r := bufio.NewReaderSize(f, bufferSize(size, 1<<16))
	var e [offsetEntrySize]byte
	var hb [segment.BatchHeaderSize]byte
	var prevRel, prevPos uint32
	for i := int64(0); i+offsetEntrySize <= size && d.err == nil; i += offsetEntrySize {
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return readErr(err)
		}
		rel, pos := binary.BigEndian.Uint32(e[:]), binary.BigEndian.Uint32(e[4:])
		off := base + int64(rel)
		problem := ""
		switch {
		case i > 0 && (rel <= prevRel || pos <= prevPos):
			problem = fmt.Sprintf("out of order: after offset %d position %d", base+int64(prevRel), prevPos)
		case lf != nil:
			problem = checkIndexEntry(lf, logSize, off, int64(pos), &hb)
		}
		prevRel, prevPos = rel, pos
		if d.opt.JSON {
			p := int64(pos)
			d.json(jsonIndexEntry{Offset: off, Position: &p, Error: problem})
			continue
		}
		d.line = fmt.Appendf(d.line[:0], "offset: %d position: %d", off, pos)
		if problem != "" {
			d.line = fmt.Appendf(d.line, " (%s)", problem)
		}
		d.writeLine(d.line)
	}
	d.trailing(size, offsetEntrySize)
	return nil
}

// checkIndexEntry says what is wrong with an index entry (offset, pos)
// against the segment's log file, or "".
func checkIndexEntry(lf *os.File, logSize, offset, pos int64, hb *[segment.BatchHeaderSize]byte) string {
	if pos >= logSize {
		return fmt.Sprintf("position past the end of the log, %d bytes", logSize)
	}
	n, err := lf.ReadAt(hb[:], pos)
	if n < len(hb) {
		return fmt.Sprintf("no batch header at this position: %d bytes left in the log (%v)", n, err)
	}
	h, err := segment.ParseBatchHeader(hb[:])
	if err != nil {
		return fmt.Sprintf("no batch header at this position: %v", err)
	}
	if h.BaseOffset != offset {
		return fmt.Sprintf("mismatch: the batch at this position starts at offset %d", h.BaseOffset)
	}
	return ""
}

// timeIndex dumps a .timeindex file.
func (d *dumper) timeIndex(f *os.File, size int64) error {
	base, baseOK := segment.ParseOffsetName(stemOf(d.path))
	if !baseOK && !d.opt.JSON {
		d.printf("(the name holds no base offset: offsets are relative)\n")
	}
	r := bufio.NewReaderSize(f, bufferSize(size, 1<<16))
	var e [timeEntrySize]byte
	var prevTs int64
	var prevRel uint32
	for i := int64(0); i+timeEntrySize <= size && d.err == nil; i += timeEntrySize {
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return readErr(err)
		}
		ts, rel := int64(binary.BigEndian.Uint64(e[:])), binary.BigEndian.Uint32(e[8:])
		off := base + int64(rel)
		problem := ""
		if i > 0 && (ts < prevTs || rel < prevRel) {
			problem = fmt.Sprintf("out of order: after timestamp %d offset %d", prevTs, base+int64(prevRel))
		}
		prevTs, prevRel = ts, rel
		if d.opt.JSON {
			d.json(jsonIndexEntry{Offset: off, Timestamp: &ts, Error: problem})
			continue
		}
		d.line = fmt.Appendf(d.line[:0], "timestamp: %d offset: %d", ts, off)
		if problem != "" {
			d.line = fmt.Appendf(d.line, " (%s)", problem)
		}
		d.writeLine(d.line)
	}
	d.trailing(size, timeEntrySize)
	return nil
}

// trailing reports the bytes after an index's last whole entry.
func (d *dumper) trailing(size, entry int64) {
	n := size % entry
	if n == 0 {
		return
	}
	d.problem("", fmt.Sprintf("%d trailing bytes at position %d, not a whole %d-byte entry", n, size-n, entry))
}

// problem reports what is wrong with a file: a JSON error line, or a text
// line after prefix.
func (d *dumper) problem(prefix, msg string) {
	if d.opt.JSON {
		d.json(jsonError{msg})
	} else {
		d.printf("%s%s\n", prefix, msg)
	}
}

// readSmall reads a whole file expected to be small, refusing more than
// limit bytes.
func readSmall(f *os.File, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%d bytes, more than the %d this tool reads for such a file", size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, readErr(err)
	}
	return b, nil
}

type jsonSnapshotProducer struct {
	ProducerID    int64 `json:"producerId"`
	ProducerEpoch int16 `json:"producerEpoch"`
	LastTimestamp int64 `json:"lastTimestamp"`
	// Transactions: the coordinator epoch of its last marker and the first
	// offset of its open transaction (-1: none).
	CoordinatorEpoch      int32               `json:"coordinatorEpoch"`
	CurrentTxnStartOffset int64               `json:"currentTxnStartOffset"`
	Batches               []jsonSnapshotBatch `json:"batches"`
}

type jsonSnapshotBatch struct {
	FirstSequence int32 `json:"firstSequence"`
	LastSequence  int32 `json:"lastSequence"`
	FirstOffset   int64 `json:"firstOffset"`
	LastOffset    int64 `json:"lastOffset"`
}

// snapshot dumps a producer snapshot: one line per producer, then its
// remembered batches.
func (d *dumper) snapshot(f *os.File, size int64) error {
	data, err := readSmall(f, size, maxSnapshotFileBytes)
	var ps []snapshotProducer
	if err == nil {
		ps, err = parseSnapshot(data)
	}
	if err != nil {
		d.problem("", err.Error())
		return nil
	}
	for _, p := range ps {
		if d.opt.JSON {
			j := jsonSnapshotProducer{ProducerID: p.id, ProducerEpoch: p.epoch, LastTimestamp: p.lastTs,
				CoordinatorEpoch: p.coordEpoch, CurrentTxnStartOffset: p.txnFirst, Batches: []jsonSnapshotBatch{}}
			for _, b := range p.batches {
				j.Batches = append(j.Batches, jsonSnapshotBatch{b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset})
			}
			d.json(&j)
			continue
		}
		d.printf("producerId: %d producerEpoch: %d lastTimestamp: %d coordinatorEpoch: %d currentTxnStartOffset: %d batches: %d\n",
			p.id, p.epoch, p.lastTs, p.coordEpoch, p.txnFirst, len(p.batches))
		for _, b := range p.batches {
			d.printf("| firstSequence: %d lastSequence: %d firstOffset: %d lastOffset: %d\n", b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset)
		}
	}
	return nil
}

type jsonEpoch struct {
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"startOffset"`
}

// epochs dumps a leader-epoch-checkpoint: the entries the broker would
// load, then what is wrong with the file.
func (d *dumper) epochs(f *os.File, size int64) error {
	data, err := readSmall(f, size, maxEpochFileBytes)
	var entries []epochEntry
	var problems []string
	if err != nil {
		problems = []string{err.Error()}
	} else {
		entries, problems = parseEpochs(data)
	}
	for _, e := range entries {
		if d.opt.JSON {
			d.json(jsonEpoch{e.epoch, e.start})
		} else {
			d.printf("epoch: %d startOffset: %d\n", e.epoch, e.start)
		}
	}
	for _, p := range problems {
		d.problem("problem: ", p)
	}
	return nil
}

type jsonAbortedTxn struct {
	ProducerID       int64 `json:"producerId"`
	FirstOffset      int64 `json:"firstOffset"`
	LastOffset       int64 `json:"lastOffset"`
	LastStableOffset int64 `json:"lastStableOffset"`
}

// txnIndex dumps an aborted-transaction index, one line per aborted
// transaction, as Kafka's DumpLogSegments does.
func (d *dumper) txnIndex(f *os.File, size int64) error {
	data, err := readSmall(f, size, maxSnapshotFileBytes)
	var entries []segment.AbortedTxn
	if err == nil {
		entries, err = segment.ParseTxnIndex(data)
	}
	if err != nil {
		d.problem("", err.Error())
		return nil
	}
	for _, e := range entries {
		if d.opt.JSON {
			d.json(&jsonAbortedTxn{e.ProducerID, e.FirstOffset, e.LastOffset, e.LastStableOffset})
			continue
		}
		d.printf("version: 0 producerId: %d firstOffset: %d lastOffset: %d lastStableOffset: %d\n", e.ProducerID, e.FirstOffset, e.LastOffset, e.LastStableOffset)
	}
	return nil
}
