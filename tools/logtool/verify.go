package logtool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"samsa/segment"
)

// Problem is one thing wrong found by Verify.
type Problem struct {
	Path   string // file (or directory)
	Offset int64  // byte position in the file, -1 if not applicable
	// Kind is short and machine-friendly: "crc", "framing", "torn-tail",
	// "records", "offset-order", "offset-gap", "overlap", "index",
	// "timeindex", "epochs", "snapshot", "cleaned", "stray", "start",
	// "vanished", "io".
	Kind   string
	Detail string // a human sentence
	// Damage is true when data is damaged; false for a warning: something
	// the broker handles on start (a torn tail in the last segment, which
	// recovery truncates; a stray *.cleaned file; a missing index) or an
	// inconsistency that loses no data.
	Damage bool
}

// String is the line Verify writes for the problem, with anything that is
// not printable escaped.
func (p Problem) String() string {
	sev := "warning"
	if p.Damage {
		sev = "damage"
	}
	if p.Offset >= 0 {
		return fmt.Sprintf("%s [%s] %s at position %d: %s", sev, p.Kind, safe(p.Path), p.Offset, safe(p.Detail))
	}
	return fmt.Sprintf("%s [%s] %s: %s", sev, p.Kind, safe(p.Path), safe(p.Detail))
}

// Report is what Verify found.
type Report struct {
	// Partitions, Segments and Bytes (the size of the segment files) count
	// what was read; Batches counts every framed batch, damaged or not,
	// and Records the records of those whose CRC holds.
	Partitions, Segments, Batches, Records int64
	Bytes                                  int64
	Problems                               []Problem
}

// Damaged reports whether any problem is damage.
func (r *Report) Damaged() bool {
	for _, p := range r.Problems {
		if p.Damage {
			return true
		}
	}
	return false
}

// Verify checks every partition directory under dataDir offline and
// read-only (it never writes or renames anything): every batch's framing
// and CRC32C, that its records decode, offsets strictly increasing within
// and across segments (each segment's base offset <= its first batch's
// base offset, batches of a segment do not overlap the next one, no gap
// between segments), index and time-index entries pointing at batch starts
// with the right relative offsets and in order, the leader-epoch-checkpoint
// parseable, monotonic and agreeing with the batches' leader epochs, and
// producer snapshots decodable. It writes one line per problem to w as it
// goes (Problem.String) and returns the Report; a flood of one kind of
// problem in one file is cut to its first few and a count. err is non-nil
// only if dataDir cannot be read at all or holds no partition. dataDir may
// also be a single partition directory.
func Verify(w io.Writer, dataDir string) (Report, error) {
	st, err := os.Stat(dataDir)
	if err != nil {
		return Report{}, fmt.Errorf("cannot verify: %w", err)
	}
	if !st.IsDir() {
		return Report{}, fmt.Errorf("cannot verify %s: not a directory", dataDir)
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return Report{}, fmt.Errorf("cannot verify: %w", err)
	}
	v := &verifier{w: w}
	if isPartitionDir(ents) {
		v.clean = hasCleanMarker(filepath.Dir(filepath.Clean(dataDir)))
		v.partition(dataDir)
	} else {
		v.clean = hasCleanMarker(dataDir)
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			if !partitionDirName.MatchString(e.Name()) {
				v.warn(filepath.Join(dataDir, e.Name()), -1, "stray", "not a partition directory (TOPIC-PARTITION); the broker ignores it")
				continue
			}
			v.partition(filepath.Join(dataDir, e.Name()))
		}
	}
	if v.rep.Partitions == 0 {
		return v.rep, fmt.Errorf("cannot verify %s: no partition directories or segment files in it", dataDir)
	}
	return v.rep, nil
}

// openFailed reports a file that cannot be opened: damage, unless it is
// gone, which a running broker does (retention, compaction, a roll).
func (v *verifier) openFailed(path, kind string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		v.warn(path, -1, "vanished", "deleted while being verified (a running broker deletes files on retention, compaction and rolls)")
		return
	}
	v.damage(path, -1, kind, "cannot open: %v", err)
}

// partitionDirName is how the broker names a partition's directory.
var partitionDirName = regexp.MustCompile(`^.+-[0-9]+$`)

// cleanMarkerName is the file the broker leaves in its data directory on a
// clean shutdown and removes once it runs again (segment/store.go).
const cleanMarkerName = segment.CleanMarkerFile

func hasCleanMarker(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, cleanMarkerName))
	return err == nil
}

// isPartitionDir reports whether a directory holds partition files itself
// rather than partition directories.
func isPartitionDir(ents []os.DirEntry) bool {
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		stem, typ, _ := splitName(e.Name())
		switch typ {
		case epochCheckpointName:
			return true
		case ".log", ".index", ".timeindex", ".snapshot":
			if _, ok := segment.ParseOffsetName(stem); ok {
				return true
			}
		}
	}
	return false
}

// maxProblemsPerKind is how many problems of one kind in one file are
// listed; the rest are counted in one more.
const maxProblemsPerKind = 20

// verifier holds the state of one Verify call.
type verifier struct {
	// clean: the data directory holds the broker's clean-shutdown marker,
	// so no tail is torn: a bad last batch is damage, not a crash's
	// leftover that recovery truncates.
	clean   bool
	w       io.Writer
	rep     Report
	scratch []byte // inflated records
	seen    map[problemKey]int
	cut     map[problemKey]*cutCount
}

type problemKey struct{ path, kind string }

type cutCount struct {
	n      int
	damage bool
}

// add records a problem and writes its line.
func (v *verifier) add(p Problem) {
	k := problemKey{p.Path, p.Kind}
	if v.seen == nil {
		v.seen, v.cut = map[problemKey]int{}, map[problemKey]*cutCount{}
	}
	if v.seen[k] >= maxProblemsPerKind {
		c := v.cut[k]
		if c == nil {
			c = &cutCount{}
			v.cut[k] = c
		}
		c.n++
		c.damage = c.damage || p.Damage
		return
	}
	v.seen[k]++
	v.rep.Problems = append(v.rep.Problems, p)
	fmt.Fprintln(v.w, p.String())
}

// flushCut reports the problems add left out, once a partition is done.
func (v *verifier) flushCut() {
	keys := make([]problemKey, 0, len(v.cut))
	for k := range v.cut {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].path != keys[j].path {
			return keys[i].path < keys[j].path
		}
		return keys[i].kind < keys[j].kind
	})
	for _, k := range keys {
		c := v.cut[k]
		p := Problem{Path: k.path, Offset: -1, Kind: k.kind, Damage: c.damage,
			Detail: fmt.Sprintf("%d more problems of this kind in this file, not listed", c.n)}
		v.rep.Problems = append(v.rep.Problems, p)
		fmt.Fprintln(v.w, p.String())
	}
	v.seen, v.cut = nil, nil
}

func (v *verifier) damage(path string, off int64, kind, format string, args ...any) {
	v.add(Problem{Path: path, Offset: off, Kind: kind, Detail: fmt.Sprintf(format, args...), Damage: true})
}

func (v *verifier) warn(path string, off int64, kind, format string, args ...any) {
	v.add(Problem{Path: path, Offset: off, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

// partFiles is what a partition directory holds.
type partFiles struct {
	segs      []int64 // base offsets, ascending
	index     map[int64]bool
	timeIndex map[int64]bool
	txnIndex  map[int64]bool
	snapshots []int64
	epochs    bool
	start     bool // a log-start-offset file (DeleteRecords)
}

// partition verifies one partition directory.
func (v *verifier) partition(dir string) {
	v.rep.Partitions++
	defer v.flushCut()
	ents, err := os.ReadDir(dir)
	if err != nil {
		v.damage(dir, -1, "io", "cannot list the partition directory: %v", err)
		return
	}
	pf := v.classify(dir, ents)
	ps := &partState{dir: dir}
	if pf.epochs {
		ps.loadEpochs(v)
	}
	prevLast, prevBase := int64(-1), int64(-1)
	prevComplete := true
	logEnd := int64(-1)
	for i, base := range pf.segs {
		last := i == len(pf.segs)-1
		path := segPath(dir, base, ".log")
		res := v.segment(ps, segmentFiles{
			dir: dir, base: base, last: last,
			index: pf.index[base], timeIndex: pf.timeIndex[base],
			// A compaction leftover repeats batches already seen.
			noEpochs: prevBase >= 0 && base <= prevLast,
		})
		if prevBase >= 0 {
			switch {
			case base <= prevLast && res.complete && res.last <= prevLast:
				v.warn(path, -1, "overlap", "offsets %d..%d lie inside segment %d (which ends at %d): left over from a compaction that did not finish; the broker removes it on start",
					base, res.last, prevBase, prevLast)
				continue
			case base <= prevLast:
				v.damage(path, -1, "offset-order", "segment starts at offset %d, inside the previous segment %d, which ends at offset %d", base, prevBase, prevLast)
			case base > prevLast+1 && prevComplete:
				v.damage(path, -1, "offset-gap", "offsets %d..%d are missing between segment %d and this one; the broker drops this segment and those after it on start",
					prevLast+1, base-1, prevBase)
			}
		}
		prevLast, prevBase, prevComplete = res.last, base, res.complete
		logEnd = res.last + 1
		if pf.txnIndex[base] {
			v.txnIndex(segPath(dir, base, ".txnindex"), base, res.last)
		}
	}
	for _, base := range sortedKeys(pf.txnIndex) {
		if !contains(pf.segs, base) {
			v.warn(segPath(dir, base, ".txnindex"), -1, "stray", "no segment file for this transaction index; the broker ignores it")
		}
	}
	for _, base := range sortedKeys(pf.index) {
		if !contains(pf.segs, base) {
			v.warn(segPath(dir, base, ".index"), -1, "stray", "no segment file for this index; the broker ignores it")
		}
	}
	for _, base := range sortedKeys(pf.timeIndex) {
		if !contains(pf.segs, base) {
			v.warn(segPath(dir, base, ".timeindex"), -1, "stray", "no segment file for this time index; the broker ignores it")
		}
	}
	ps.finishEpochs(v, logEnd)
	if pf.start {
		v.startOffset(filepath.Join(dir, startOffsetName), pf.segs, logEnd)
	}
	for _, off := range pf.snapshots {
		v.snapshot(segPath(dir, off, ".snapshot"), off, pf.segs, logEnd)
	}
}

// classify sorts a partition directory's entries, warning about those
// that are no part of a log.
func (v *verifier) classify(dir string, ents []os.DirEntry) partFiles {
	pf := partFiles{index: map[int64]bool{}, timeIndex: map[int64]bool{}, txnIndex: map[int64]bool{}}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		if e.IsDir() {
			v.warn(path, -1, "stray", "a directory inside a partition directory")
			continue
		}
		stem, typ, suffix := splitName(name)
		switch {
		case strings.Contains(suffix, cleanedSuffix):
			v.warn(path, -1, "cleaned", "left over from a compaction that did not finish; the broker removes it on start")
			continue
		case strings.HasSuffix(suffix, ".tmp"):
			v.warn(path, -1, "stray", "left over from an interrupted write; the broker removes it on start")
			continue
		case suffix != "":
			v.warn(path, -1, "stray", "left over from a segment deletion; the broker does not read it")
			continue
		}
		if typ == epochCheckpointName {
			pf.epochs = true
			continue
		}
		if name == startOffsetName {
			pf.start = true
			continue
		}
		off, ok := segment.ParseOffsetName(stem)
		switch {
		case !ok || (typ != ".log" && typ != ".index" && typ != ".timeindex" && typ != ".txnindex" && typ != ".snapshot"):
			v.warn(path, -1, "stray", "not a file of the log (<20-digit offset>.log, .index, .timeindex, .txnindex or .snapshot); the broker ignores it")
		case typ == ".txnindex":
			pf.txnIndex[off] = true
		case typ == ".log":
			pf.segs = append(pf.segs, off)
		case typ == ".index":
			pf.index[off] = true
		case typ == ".timeindex":
			pf.timeIndex[off] = true
		default:
			pf.snapshots = append(pf.snapshots, off)
		}
	}
	sort.Slice(pf.segs, func(i, j int) bool { return pf.segs[i] < pf.segs[j] })
	sort.Slice(pf.snapshots, func(i, j int) bool { return pf.snapshots[i] < pf.snapshots[j] })
	return pf
}

func segPath(dir string, base int64, typ string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, typ))
}

func sortedKeys(m map[int64]bool) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func contains(sorted []int64, x int64) bool {
	i := sort.Search(len(sorted), func(i int) bool { return sorted[i] >= x })
	return i < len(sorted) && sorted[i] == x
}

// txnIndex verifies a segment's aborted-transaction index: Kafka's
// 34-byte entries in marker order, each marker inside the segment.
func (v *verifier) txnIndex(path string, base, last int64) {
	data, err := os.ReadFile(path)
	var entries []segment.AbortedTxn
	if err == nil {
		entries, err = segment.ParseTxnIndex(data)
	}
	if err != nil {
		v.damage(path, -1, "txnindex", "%v; the broker rebuilds it from the log", err)
		return
	}
	for _, e := range entries {
		if e.LastOffset < base || e.LastOffset > last {
			v.warn(path, -1, "txnindex", "the abort of producer %d at offset %d is outside the segment (%d..%d); the broker drops the entry", e.ProducerID, e.LastOffset, base, last)
		}
	}
}

// snapshot verifies a producer snapshot, named after the offset it
// describes the state at.
func (v *verifier) snapshot(path string, off int64, segs []int64, logEnd int64) {
	f, err := os.Open(path)
	if err != nil {
		v.openFailed(path, "snapshot", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		v.damage(path, -1, "snapshot", "cannot stat: %v", err)
		return
	}
	data, err := readSmall(f, st.Size(), maxSnapshotFileBytes)
	if err == nil {
		_, err = parseSnapshot(data)
	}
	if err != nil {
		v.damage(path, -1, "snapshot", "%v; the broker ignores it and rebuilds producer state from the log", err)
		return
	}
	switch {
	case len(segs) == 0:
	case off > logEnd:
		v.warn(path, -1, "snapshot", "describes offset %d, past the log end offset %d; the broker deletes it on start", off, logEnd)
	case off < segs[0]:
		v.warn(path, -1, "snapshot", "describes offset %d, below the log start offset %d; the broker deletes it on start", off, segs[0])
	}
}
