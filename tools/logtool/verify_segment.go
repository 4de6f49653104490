package logtool

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"samsa/segment"
)

// segmentFiles names one segment to verify.
type segmentFiles struct {
	dir              string
	base             int64
	last             bool // the active segment: a torn tail is expected after a crash
	index, timeIndex bool // the index files exist
	noEpochs         bool // do not check leader epochs (a compaction leftover)
}

// segResult is what the rest of the partition needs to know of a segment.
type segResult struct {
	last     int64 // last offset of its last framed batch, base-1 if none
	complete bool  // read to the end of the file without losing the framing
}

// segment verifies one segment file and its indexes.
func (v *verifier) segment(ps *partState, sf segmentFiles) segResult {
	path := segPath(sf.dir, sf.base, ".log")
	res := segResult{last: sf.base - 1}
	f, err := os.Open(path)
	if err != nil {
		v.openFailed(path, "io", err)
		return res
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		v.damage(path, -1, "io", "cannot stat: %v", err)
		return res
	}
	size := st.Size()
	v.rep.Segments++
	v.rep.Bytes += size

	var oi *offsetIndexCheck
	var ti *timeIndexCheck
	if sf.index {
		oi = v.openOffsetIndex(segPath(sf.dir, sf.base, ".index"), sf.base, size)
	} else if !sf.last {
		v.warn(segPath(sf.dir, sf.base, ".index"), -1, "index", "missing for a sealed segment; the broker rebuilds it by scanning the segment on start")
	}
	if sf.timeIndex {
		ti = v.openTimeIndex(segPath(sf.dir, sf.base, ".timeindex"), sf.base)
	} else if !sf.last {
		v.warn(segPath(sf.dir, sf.base, ".timeindex"), -1, "timeindex", "missing for a sealed segment; the broker rebuilds it by scanning the segment on start")
	}

	sc := newBatchScanner(f, size)
	first := true
	complete := true
	// A batch failing its CRC at the end of the last segment, followed by
	// nothing that reads as a batch, is a torn write after a crash unless
	// the broker shut down cleanly: recovery truncates it. Whether it is
	// the end is known only at the next frame.
	var pending []frame
	flushPending := func(torn bool) {
		for i := range pending {
			p := &pending[i]
			h := &p.h
			if torn {
				v.warn(path, p.pos, kindTornTail, "batch %d..%d: %s: a torn write at the end of the last segment; recovery after a crash truncates the segment here, dropping %d bytes",
					h.BaseOffset, h.LastOffset(), p.detail, size-p.pos)
			} else {
				v.damage(path, p.pos, kindCRC, "batch %d..%d: %s", h.BaseOffset, h.LastOffset(), p.detail)
			}
		}
		pending = pending[:0]
	}
	for {
		fr, ok, err := sc.next()
		if err != nil {
			v.damage(path, sc.pos, "io", "%v", err)
			complete = false
			break
		}
		if !ok {
			break
		}
		tornAfterBad := false
		if len(pending) > 0 && fr.kind != kindCRC {
			// What follows a run of bad batches decides what it was: a
			// good batch makes it damage, the end of the readable data a
			// torn tail.
			tornAfterBad = fr.kind == kindTornTail || fr.kind == kindFraming && fr.stop
			flushPending(tornAfterBad)
		}
		switch fr.kind {
		case kindTornTail:
			complete = false
			if sf.last {
				v.warn(path, fr.pos, kindTornTail, "%s; recovery after a crash truncates the last segment here, dropping %d bytes", fr.detail, fr.size)
			} else {
				v.damage(path, fr.pos, kindTornTail, "%s; in a sealed segment: the broker truncates it here and drops the segments after it", fr.detail)
			}
			continue
		case kindFraming:
			if fr.stop && tornAfterBad {
				complete = false
				v.warn(path, fr.pos, kindTornTail, "%s; the rest of the torn write above (%d bytes)", fr.detail, fr.size)
			} else if fr.stop {
				complete = false
				v.damage(path, fr.pos, kindFraming, "%s; the %d bytes from here cannot be read as batches", fr.detail, fr.size)
			} else {
				v.damage(path, fr.pos, kindFraming, "%s", fr.detail)
			}
			continue
		}
		h := &fr.h
		v.rep.Batches++
		if fr.kind == kindCRC {
			if sf.last && !v.clean {
				pending = append(pending, fr)
			} else {
				v.damage(path, fr.pos, kindCRC, "batch %d..%d: %s", h.BaseOffset, h.LastOffset(), fr.detail)
			}
		} else {
			v.rep.Records += int64(h.NumRecords)
			if fr.batch != nil {
				if _, err := walkRecords(fr.batch, h, &v.scratch, func(*segment.Record) {}); err != nil {
					v.damage(path, fr.pos, "records", "batch %d..%d: %v", h.BaseOffset, h.LastOffset(), err)
				}
			}
		}
		switch {
		case h.LastOffsetDelta < 0:
			v.damage(path, fr.pos, "offset-order", "batch at offset %d has a negative last offset delta %d", h.BaseOffset, h.LastOffsetDelta)
		case first && h.BaseOffset < sf.base:
			v.damage(path, fr.pos, "offset-order", "first batch starts at offset %d, below the segment's base offset %d", h.BaseOffset, sf.base)
		case !first && h.BaseOffset <= res.last:
			v.damage(path, fr.pos, "offset-order", "batch %d..%d does not start after the previous batch's last offset %d", h.BaseOffset, h.LastOffset(), res.last)
		case h.LastOffset()-sf.base > math.MaxInt32:
			v.damage(path, fr.pos, "offset-order", "batch %d..%d is more than 2^31 offsets past the segment's base offset %d", h.BaseOffset, h.LastOffset(), sf.base)
		}
		first = false
		// Whatever was wrong, go on from this batch: one bad offset gives
		// at most two reports, not one per batch after it.
		res.last = h.LastOffset()
		rel := h.BaseOffset - sf.base
		if oi != nil {
			oi.batch(fr.pos, rel)
		}
		if ti != nil {
			ti.batch(rel, h.MaxTimestamp)
		}
		if !sf.noEpochs {
			ps.batch(path, fr.pos, h)
		}
	}
	flushPending(true) // a bad batch with nothing after it
	if oi != nil {
		oi.finish(complete)
	}
	if ti != nil {
		ti.finish(complete)
	}
	res.complete = complete
	return res
}

// indexFile streams the fixed-size entries of an index file.
type indexFile struct {
	v     *verifier
	path  string
	kind  string // "index" or "timeindex"
	f     *os.File
	r     *bufio.Reader
	left  int64 // whole entries not yet read
	next  int64 // number of the next entry
	entry [timeEntrySize]byte
}

// open opens the file and checks its size; false if it cannot be read.
func (x *indexFile) open(entrySize int64) bool {
	f, err := os.Open(x.path)
	if err != nil {
		x.v.openFailed(x.path, x.kind, err)
		return false
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		x.v.damage(x.path, -1, x.kind, "cannot stat: %v", err)
		return false
	}
	if n := st.Size() % entrySize; n != 0 {
		x.v.damage(x.path, st.Size()-n, x.kind, "%d trailing bytes: the size %d is not a multiple of the %d-byte entry", n, st.Size(), entrySize)
	}
	x.f, x.r, x.left = f, bufio.NewReaderSize(f, bufferSize(st.Size(), 1<<16)), st.Size()/entrySize
	return true
}

// read reads the next entry into x.entry; false at the end or on an error.
func (x *indexFile) read(entrySize int) bool {
	if x.left == 0 {
		return false
	}
	if _, err := io.ReadFull(x.r, x.entry[:entrySize]); err != nil {
		x.v.damage(x.path, x.next*int64(entrySize), "io", "%v", readErr(err))
		x.left = 0
		return false
	}
	x.left--
	x.next++
	return true
}

func (x *indexFile) close() {
	if x.f != nil {
		x.f.Close()
	}
}

// offsetIndexCheck walks an .index file beside the batches of its segment,
// as segment's loadIndexes does: entries strictly increasing, each at a
// batch start with that batch's relative offset, none past the log.
type offsetIndexCheck struct {
	indexFile
	base, logSize int64
	has           bool // cur holds the next unmatched entry
	cur, prev     [2]uint32
	n             int64 // cur's entry number
}

func (v *verifier) openOffsetIndex(path string, base, logSize int64) *offsetIndexCheck {
	c := &offsetIndexCheck{indexFile: indexFile{v: v, path: path, kind: "index"}, base: base, logSize: logSize}
	if !c.open(offsetEntrySize) {
		return nil
	}
	if c.left == 0 && logSize > 0 {
		v.damage(path, -1, "index", "empty for a segment of %d bytes", logSize)
	}
	c.advance()
	return c
}

// advance reads the next entry into cur, checking its order and range.
func (c *offsetIndexCheck) advance() {
	c.has = false
	if !c.read(offsetEntrySize) {
		return
	}
	e := [2]uint32{binary.BigEndian.Uint32(c.entry[:]), binary.BigEndian.Uint32(c.entry[4:])}
	c.n = c.next - 1
	at := c.n * offsetEntrySize
	if c.n > 0 && (e[0] <= c.prev[0] || e[1] <= c.prev[1]) {
		c.v.damage(c.path, at, "index", "entry %d (offset %d, position %d) is out of order after (offset %d, position %d)",
			c.n, c.base+int64(e[0]), e[1], c.base+int64(c.prev[0]), c.prev[1])
	}
	if int64(e[1]) >= c.logSize {
		c.v.damage(c.path, at, "index", "entry %d (offset %d) points at position %d, past the end of the log (%d bytes)",
			c.n, c.base+int64(e[0]), e[1], c.logSize)
	}
	c.prev, c.cur, c.has = e, e, true
}

// batch matches the entries up to a batch at pos with relative offset rel.
func (c *offsetIndexCheck) batch(pos, rel int64) {
	for c.has && int64(c.cur[1]) < pos {
		c.notAtBatch()
		c.advance()
	}
	if c.has && int64(c.cur[1]) == pos {
		if int64(c.cur[0]) != rel {
			c.v.damage(c.path, c.n*offsetEntrySize, "index", "entry %d says offset %d for position %d; the batch there starts at offset %d",
				c.n, c.base+int64(c.cur[0]), c.cur[1], c.base+rel)
		}
		c.advance()
	}
}

func (c *offsetIndexCheck) notAtBatch() {
	if int64(c.cur[1]) >= c.logSize {
		return // reported by advance
	}
	c.v.damage(c.path, c.n*offsetEntrySize, "index", "entry %d (offset %d, position %d) does not point at a batch start",
		c.n, c.base+int64(c.cur[0]), c.cur[1])
}

// finish checks the entries after the last batch: none may remain when
// the whole segment was read; otherwise they cannot be matched.
func (c *offsetIndexCheck) finish(complete bool) {
	for c.has {
		if complete {
			c.notAtBatch()
		}
		c.advance()
	}
	c.close()
}

// timeIndexCheck walks a .timeindex file beside the batches of its
// segment: entries (timestamp, relative offset) non-decreasing in both,
// each at a batch start, its timestamp at least the largest of the
// batches before it (the broker writes exactly that).
type timeIndexCheck struct {
	indexFile
	base    int64
	has     bool
	curTs   int64
	curRel  uint32
	prevTs  int64
	prevRel uint32
	n       int64
	maxTs   int64 // largest max timestamp of the batches walked so far
}

func (v *verifier) openTimeIndex(path string, base int64) *timeIndexCheck {
	c := &timeIndexCheck{indexFile: indexFile{v: v, path: path, kind: "timeindex"}, base: base, maxTs: -1}
	if !c.open(timeEntrySize) {
		return nil
	}
	c.advance()
	return c
}

func (c *timeIndexCheck) advance() {
	c.has = false
	if !c.read(timeEntrySize) {
		return
	}
	ts, rel := int64(binary.BigEndian.Uint64(c.entry[:])), binary.BigEndian.Uint32(c.entry[8:])
	c.n = c.next - 1
	if c.n > 0 && (ts < c.prevTs || rel < c.prevRel) {
		c.v.damage(c.path, c.n*timeEntrySize, "timeindex", "entry %d (timestamp %d, offset %d) is out of order after (timestamp %d, offset %d)",
			c.n, ts, c.base+int64(rel), c.prevTs, c.base+int64(c.prevRel))
	}
	c.prevTs, c.prevRel = ts, rel
	c.curTs, c.curRel, c.has = ts, rel, true
}

// batch matches the entries up to a batch with relative offset rel and
// largest timestamp maxTs.
func (c *timeIndexCheck) batch(rel, maxTs int64) {
	for c.has && int64(c.curRel) < rel {
		c.notAtBatch()
		c.advance()
	}
	for c.has && int64(c.curRel) == rel {
		if c.curTs < c.maxTs {
			c.v.damage(c.path, c.n*timeEntrySize, "timeindex", "entry %d (timestamp %d, offset %d) is below timestamp %d of an earlier batch",
				c.n, c.curTs, c.base+rel, c.maxTs)
		}
		c.advance()
	}
	c.maxTs = max(c.maxTs, maxTs)
}

func (c *timeIndexCheck) notAtBatch() {
	c.v.damage(c.path, c.n*timeEntrySize, "timeindex", "entry %d (timestamp %d, offset %d) does not point at a batch start",
		c.n, c.curTs, c.base+int64(c.curRel))
}

func (c *timeIndexCheck) finish(complete bool) {
	for c.has {
		if complete {
			c.notAtBatch()
		}
		c.advance()
	}
	c.close()
}

// partState carries the leader-epoch checks across a partition's
// segments.
type partState struct {
	dir       string
	haveFile  bool
	epochs    []epochEntry // the checkpoint entries the broker would load
	prevEpoch int32
	batches   int64 // batches seen

	mismatches, decreases int64
	firstMismatch         string
	firstDecrease         string
}

// loadEpochs reads and checks the leader-epoch-checkpoint.
func (ps *partState) loadEpochs(v *verifier) {
	path := filepath.Join(ps.dir, epochCheckpointName)
	// Unreadable, the file gives no epochs to check the batches against.
	ps.haveFile = true
	f, err := os.Open(path)
	if err != nil {
		v.openFailed(path, "epochs", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		v.damage(path, -1, "epochs", "cannot stat: %v", err)
		return
	}
	data, err := readSmall(f, st.Size(), maxEpochFileBytes)
	if err != nil {
		v.damage(path, -1, "epochs", "%v", err)
		return
	}
	var problems []string
	ps.epochs, problems = parseEpochs(data)
	for _, p := range problems {
		v.damage(path, -1, "epochs", "%s", p)
	}
}

// batch checks a batch's leader epoch against the checkpoint and the
// batch before it.
func (ps *partState) batch(path string, pos int64, h *segment.BatchHeader) {
	want, ok := int32(0), !ps.haveFile // without a file the broker takes the log as of epoch 0
	if ps.haveFile {
		want, ok = epochAt(ps.epochs, h.BaseOffset)
	}
	if ok && h.LeaderEpoch != want {
		if ps.mismatches == 0 {
			ps.firstMismatch = fmt.Sprintf("the first, batch %d..%d in %s at position %d, has epoch %d where the checkpoint says %d",
				h.BaseOffset, h.LastOffset(), filepath.Base(path), pos, h.LeaderEpoch, want)
		}
		ps.mismatches++
	}
	if ps.batches > 0 && h.LeaderEpoch < ps.prevEpoch {
		if ps.decreases == 0 {
			ps.firstDecrease = fmt.Sprintf("the first, batch %d..%d in %s at position %d, has epoch %d after %d",
				h.BaseOffset, h.LastOffset(), filepath.Base(path), pos, h.LeaderEpoch, ps.prevEpoch)
		}
		ps.decreases++
	}
	ps.prevEpoch = h.LeaderEpoch
	ps.batches++
}

// finishEpochs reports what the batches showed, and checkpoint entries
// past the log end offset (-1 if unknown).
func (ps *partState) finishEpochs(v *verifier, logEnd int64) {
	path := filepath.Join(ps.dir, epochCheckpointName)
	if ps.mismatches > 0 {
		src := "the leader-epoch-checkpoint"
		if !ps.haveFile {
			src = "the missing leader-epoch-checkpoint (epoch 0 for all)"
		}
		v.warn(path, -1, "epochs", "%d batches carry a leader epoch other than %s gives for their offset; %s",
			ps.mismatches, src, ps.firstMismatch)
	}
	if ps.decreases > 0 {
		v.warn(path, -1, "epochs", "%d batches have a lower leader epoch than the batch before them; %s", ps.decreases, ps.firstDecrease)
	}
	if logEnd < 0 {
		return
	}
	for _, e := range ps.epochs {
		if e.start > logEnd {
			v.warn(path, -1, "epochs", "epoch %d starts at offset %d, past the log end offset %d; the broker drops it and those after it on start",
				e.epoch, e.start, logEnd)
			break
		}
	}
}
