package logtool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"samsa/segment"
)

// The partition files beside the segments, as segment writes them.
const (
	epochCheckpointName = segment.EpochCheckpointFile
	cleanedSuffix       = ".cleaned"
)

// splitName splits a partition file name into its stem (the offset part),
// its type (".log", ".index", ".timeindex", ".snapshot" or the name of the
// epoch checkpoint) and the leftover suffixes of an interrupted rewrite
// (".cleaned", ".deleted", ".tmp"), which do not change the format.
// startOffsetName is the file that holds a log start offset above the
// first segment's base (DeleteRecords; segment/start.go): one decimal
// number and a newline.
const startOffsetName = segment.StartOffsetFile

// startOffset checks a log-start-offset file: a number no lower than the
// first segment's base. Above the log end is only a warning: the broker
// clamps it (a crash can cut the tail after the file was written).
func (v *verifier) startOffset(path string, segs []int64, logEnd int64) {
	raw, err := os.ReadFile(path)
	if err != nil {
		v.openFailed(path, "start", err)
		return
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	switch {
	case err != nil || off < 0:
		v.damage(path, -1, "start", "not a log start offset: %q", safe(string(raw)))
	case len(segs) > 0 && off < segs[0]:
		v.warn(path, -1, "start", "log start offset %d is below the first segment (%d); the broker uses the segment's", off, segs[0])
	case logEnd >= 0 && off > logEnd:
		v.warn(path, -1, "start", "log start offset %d is beyond the log end %d; the broker starts the log at its end", off, logEnd)
	}
}

func splitName(name string) (stem, typ, suffix string) {
	base := name
	for {
		s := filepath.Ext(base)
		if s != cleanedSuffix && s != ".deleted" && s != ".tmp" {
			break
		}
		base = strings.TrimSuffix(base, s)
	}
	suffix = name[len(base):]
	if base == epochCheckpointName {
		return "", base, suffix
	}
	typ = filepath.Ext(base)
	return strings.TrimSuffix(base, typ), typ, suffix
}

// Producer snapshot "<20-digit offset>.snapshot", segment/producer.go:
//
//	version int16 (2) | count int32 | entries | crc32c of everything before
//	entry: producerId int64 | epoch int16 | lastTs int64 |
//	       coordEpoch int32 | txnFirst int64 (version 2 only) | n int8 |
//	       n × (firstSeq int32 | lastSeq int32 | firstOffset int64 | lastOffset int64)
const (
	snapshotVersion      = 2
	snapshotBatchSize    = 24
	maxSnapshotBatches   = 5
	maxSnapshotFileBytes = 64 << 20
)

type snapshotProducer struct {
	id         int64
	epoch      int16
	lastTs     int64
	coordEpoch int32 // of its last transaction marker, -1 if none
	txnFirst   int64 // first offset of its open transaction, -1 if none
	batches    []snapshotBatch
}

type snapshotBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// parseSnapshot decodes a producer snapshot file as segment does, with the
// same checks; it returns the producers in file order.
func parseSnapshot(src []byte) ([]snapshotProducer, error) {
	bad := func(what string) ([]snapshotProducer, error) {
		return nil, fmt.Errorf("cannot decode producer snapshot: %s", what)
	}
	if len(src) < 10 {
		return bad(fmt.Sprintf("%d bytes, too short", len(src)))
	}
	body, sum := src[:len(src)-4], binary.BigEndian.Uint32(src[len(src)-4:])
	if c := crc32.Checksum(body, castagnoli); c != sum {
		return bad(fmt.Sprintf("crc mismatch: stored %d, computed %d", sum, c))
	}
	version := binary.BigEndian.Uint16(body)
	if version != 1 && version != snapshotVersion {
		return bad(fmt.Sprintf("unknown version %d", version))
	}
	entrySize := 19 // the entry's bytes before its batches
	if version >= 2 {
		entrySize = 31
	}
	n := int64(binary.BigEndian.Uint32(body[2:]))
	body = body[6:]
	if n > int64(len(body)/entrySize) {
		return bad(fmt.Sprintf("%d producers do not fit in %d bytes", n, len(body)))
	}
	out := make([]snapshotProducer, 0, n)
	for i := int64(0); i < n; i++ {
		if len(body) < entrySize {
			return bad("truncated entry")
		}
		p := snapshotProducer{
			id:         int64(binary.BigEndian.Uint64(body)),
			epoch:      int16(binary.BigEndian.Uint16(body[8:])),
			lastTs:     int64(binary.BigEndian.Uint64(body[10:])),
			coordEpoch: -1,
			txnFirst:   -1,
		}
		if version >= 2 {
			p.coordEpoch = int32(binary.BigEndian.Uint32(body[18:]))
			p.txnFirst = int64(binary.BigEndian.Uint64(body[22:]))
		}
		nb := int(body[entrySize-1])
		body = body[entrySize:]
		if nb > maxSnapshotBatches || len(body) < nb*snapshotBatchSize {
			return bad(fmt.Sprintf("producer %d: %d batches", p.id, nb))
		}
		for j := 0; j < nb; j++ {
			p.batches = append(p.batches, snapshotBatch{
				firstSeq:    int32(binary.BigEndian.Uint32(body)),
				lastSeq:     int32(binary.BigEndian.Uint32(body[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(body[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(body[16:])),
			})
			body = body[snapshotBatchSize:]
		}
		out = append(out, p)
	}
	if len(body) != 0 {
		return bad(fmt.Sprintf("%d trailing bytes", len(body)))
	}
	return out, nil
}

// epochEntry is one line of a leader-epoch-checkpoint: epoch starts at
// offset start.
type epochEntry struct {
	epoch int32
	start int64
}

// maxEpochFileBytes bounds the checkpoint read: a real one holds one short
// line per leader change.
const maxEpochFileBytes = 16 << 20

// parseEpochs reads a leader-epoch-checkpoint in Kafka's text format: a
// version line "0", a count line, then count lines "epoch start_offset".
// It returns the entries the broker would load (those before the first
// malformed or non-increasing one, as segment's loadEpochs reads it; here
// also before a start offset that goes back) and what is wrong with the
// file, if anything.
func parseEpochs(data []byte) (entries []epochEntry, problems []string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxEpochFileBytes)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = errors.New("a line is too long")
		}
		return nil, []string{fmt.Sprintf("cannot read: %v", err)}
	}
	if len(lines) < 2 {
		return nil, []string{fmt.Sprintf("%d lines, want a version line and a count line", len(lines))}
	}
	if v := strings.TrimSpace(lines[0]); v != "0" {
		problems = append(problems, fmt.Sprintf("version line %q, want \"0\"", v))
	}
	count, err := strconv.Atoi(strings.TrimSpace(lines[1]))
	if err != nil {
		problems = append(problems, fmt.Sprintf("count line %q is not a number", lines[1]))
	} else if count != len(lines)-2 {
		problems = append(problems, fmt.Sprintf("count line says %d entries, the file has %d", count, len(lines)-2))
	}
	usable := true
	for i, line := range lines[2:] {
		f := strings.Fields(line)
		var e, s int64
		var err1, err2 error
		if len(f) == 2 {
			e, err1 = strconv.ParseInt(f[0], 10, 32)
			s, err2 = strconv.ParseInt(f[1], 10, 64)
		}
		if len(f) != 2 || err1 != nil || err2 != nil {
			problems = append(problems, fmt.Sprintf("line %d is %q, not \"epoch start_offset\"", i+3, line))
			usable = false
			continue
		}
		if n := len(entries); n > 0 && usable {
			if int32(e) <= entries[n-1].epoch {
				problems = append(problems, fmt.Sprintf("line %d: epoch %d does not increase on %d; the broker ignores it and the lines after it", i+3, e, entries[n-1].epoch))
				usable = false
				continue
			}
			if s < entries[n-1].start {
				problems = append(problems, fmt.Sprintf("line %d: epoch %d starts at offset %d, before epoch %d (at %d)", i+3, e, s, entries[n-1].epoch, entries[n-1].start))
				usable = false
				continue
			}
		}
		if s < 0 {
			problems = append(problems, fmt.Sprintf("line %d: negative start offset %d", i+3, s))
		}
		if usable {
			entries = append(entries, epochEntry{int32(e), s})
		}
	}
	return entries, problems
}

// epochAt returns the epoch in effect at offset by the checkpoint entries,
// or false when offset is below the first one.
// The starts must not decrease.
func epochAt(entries []epochEntry, offset int64) (int32, bool) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].start > offset })
	if i == 0 {
		return 0, false
	}
	return entries[i-1].epoch, true
}
