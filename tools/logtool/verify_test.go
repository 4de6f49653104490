package logtool

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"samsa/segment"
)

func TestVerifyClean(t *testing.T) {
	b := buildLog(t)
	var size int64
	for _, s := range b.segs {
		size += fileSizeOf(t, s)
	}
	for _, dir := range []string{b.dataDir, b.partDir} {
		rep, out := verify(t, dir)
		if len(rep.Problems) != 0 || out != "" || rep.Damaged() {
			t.Fatalf("Verify(%s) of a clean log: %v\n%s", dir, rep.Problems, out)
		}
		if rep.Partitions != 1 || rep.Segments != int64(len(b.segs)) || rep.Batches != int64(b.batches) ||
			rep.Records != int64(b.records) || rep.Bytes != size {
			t.Fatalf("Verify(%s): %+v; want 1 partition, %d segments, %d batches, %d records, %d bytes",
				dir, rep, len(b.segs), b.batches, b.records, size)
		}
	}
}

func fileSizeOf(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestVerifyCRC(t *testing.T) {
	b := buildLog(t)
	seg := b.segs[1]
	bs := batchesOf(t, seg)
	patchFile(t, seg, bs[1].pos+segment.BatchHeaderSize+5, func(p []byte) { p[0] ^= 0x01 })
	rep, out := verify(t, b.dataDir)
	p := onlyProblem(t, rep)
	if p.Kind != "crc" || !p.Damage || p.Path != seg || p.Offset != bs[1].pos || !rep.Damaged() {
		t.Fatalf("problem %+v", p)
	}
	if out != p.String()+"\n" || !strings.HasPrefix(out, "damage [crc] "+seg+" at position ") {
		t.Fatalf("output %q", out)
	}
	// Every batch was still counted; the damaged one's records were not.
	if rep.Batches != int64(b.batches) || rep.Records != int64(b.records)-int64(bs[1].h.NumRecords) {
		t.Fatalf("counts %+v", rep)
	}
}

func TestVerifyTornTail(t *testing.T) {
	b := buildLog(t)
	last := b.segs[len(b.segs)-1]
	bs := batchesOf(t, last)
	lb := bs[len(bs)-1]
	for _, cut := range []int64{20, 100} { // inside the header, inside the body
		if err := os.Truncate(last, lb.pos+cut); err != nil {
			t.Fatal(err)
		}
		rep, _ := verify(t, b.dataDir)
		if rep.Damaged() {
			t.Fatalf("cut %d: a torn tail in the last segment is damage: %v", cut, rep.Problems)
		}
		var torn, snap int
		for _, p := range rep.Problems {
			switch p.Kind {
			case "torn-tail":
				torn++
				if p.Path != last || p.Offset != lb.pos || p.Damage {
					t.Fatalf("cut %d: %+v", cut, p)
				}
			case "snapshot": // it describes the state at the end that is gone
				snap++
			default:
				t.Fatalf("cut %d: unexpected %+v", cut, p)
			}
		}
		if torn != 1 || snap != 1 {
			t.Fatalf("cut %d: %v", cut, rep.Problems)
		}
	}

	// In a sealed segment the same is damage: the broker drops what follows.
	seg := b.segs[1]
	bs = batchesOf(t, seg)
	lb = bs[len(bs)-1]
	if err := os.Truncate(seg, lb.pos+100); err != nil {
		t.Fatal(err)
	}
	rep, _ := verify(t, b.dataDir)
	var found bool
	for _, p := range rep.Problems {
		if p.Kind == "torn-tail" && p.Path == seg {
			found = true
			if !p.Damage || p.Offset != lb.pos {
				t.Fatalf("torn sealed segment: %+v", p)
			}
		}
	}
	if !found || !rep.Damaged() {
		t.Fatalf("torn sealed segment not reported as damage: %v", rep.Problems)
	}
}

func TestVerifyIndex(t *testing.T) {
	b := buildLog(t)
	seg := b.segs[0]
	bs := batchesOf(t, seg)
	idx := strings.TrimSuffix(seg, ".log") + ".index"
	tidx := strings.TrimSuffix(seg, ".log") + ".timeindex"
	orig, _ := os.ReadFile(idx)
	origT, _ := os.ReadFile(tidx)
	f := func(name, path string, off int64, kind, detail string, patch func([]byte)) {
		t.Helper()
		patchFile(t, path, off, patch)
		rep, _ := verify(t, b.dataDir)
		p := onlyProblem(t, rep)
		if p.Kind != kind || p.Path != path || p.Offset != off || !p.Damage || !strings.Contains(p.Detail, detail) {
			t.Fatalf("%s: %+v", name, p)
		}
		os.WriteFile(idx, orig, 0o644)
		os.WriteFile(tidx, origT, 0o644)
	}
	f("position inside a batch", idx, 16, "index", "does not point at a batch start",
		func(e []byte) { binary.BigEndian.PutUint32(e[4:], uint32(bs[2].pos+1)) })
	f("wrong offset", idx, 8, "index", "says offset 4 for position",
		func(e []byte) { binary.BigEndian.PutUint32(e, 4) })
	f("past the log", idx, 32, "index", "past the end of the log",
		func(e []byte) { binary.BigEndian.PutUint32(e[4:], 1<<20) })
	f("time entry inside a batch", tidx, 0, "timeindex", "does not point at a batch start",
		func(e []byte) { binary.BigEndian.PutUint32(e[8:], 4) })
	f("time entry below an earlier batch", tidx, 12, "timeindex", "is below timestamp",
		func(e []byte) { binary.BigEndian.PutUint64(e, uint64(ts0+5)) })

	// A partial entry at the end.
	os.WriteFile(idx, append(orig, 1, 2, 3), 0o644)
	rep, _ := verify(t, b.dataDir)
	if p := onlyProblem(t, rep); p.Kind != "index" || p.Offset != int64(len(orig)) || !strings.Contains(p.Detail, "3 trailing bytes") {
		t.Fatalf("partial entry: %+v", p)
	}
	// A missing index of a sealed segment is rebuilt on start: a warning.
	os.Remove(idx)
	rep, _ = verify(t, b.dataDir)
	if p := onlyProblem(t, rep); p.Kind != "index" || p.Damage || p.Path != idx {
		t.Fatalf("missing index: %+v", p)
	}
}

func TestVerifyOffsets(t *testing.T) {
	b := buildLog(t)
	// A missing segment leaves a gap: the broker would drop what follows.
	gone := b.segs[2]
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		os.Remove(strings.TrimSuffix(gone, ".log") + ext)
	}
	rep, _ := verify(t, b.dataDir)
	if p := onlyProblem(t, rep); p.Kind != "offset-gap" || !p.Damage || p.Path != b.segs[3] || !strings.Contains(p.Detail, "offsets 22..27 are missing") {
		t.Fatalf("gap: %+v", p)
	}

	// A compaction leftover lying inside the previous segment is a warning.
	b = buildLog(t)
	bs := batchesOf(t, b.segs[0])
	data, _ := os.ReadFile(b.segs[0])
	leftover := segPath(b.partDir, bs[1].h.BaseOffset, ".log")
	os.WriteFile(leftover, data[bs[1].pos:], 0o644)
	rep, _ = verify(t, b.dataDir)
	var overlap bool
	for _, p := range rep.Problems {
		overlap = overlap || (p.Kind == "overlap" && p.Path == leftover)
		if p.Damage {
			t.Fatalf("compaction leftover: %+v", p)
		}
	}
	if !overlap {
		t.Fatalf("no overlap warning: %v", rep.Problems)
	}

	// Offsets going back inside a segment, and a first batch below the
	// segment's base offset.
	dir := filepath.Join(t.TempDir(), "x-0")
	os.Mkdir(dir, 0o755)
	one := func(off int64) []byte { return at(plain(ts0, kv("k", "v"), kv("k", "w")), off).encode() }
	writeSegment(t, segPath(dir, 10, ".log"), one(8), one(12), one(11))
	rep, _ = verify(t, dir)
	if len(rep.Problems) != 2 || rep.Problems[0].Kind != "offset-order" || rep.Problems[0].Offset != 0 ||
		!strings.Contains(rep.Problems[0].Detail, "below the segment's base offset 10") ||
		rep.Problems[1].Kind != "offset-order" || !strings.Contains(rep.Problems[1].Detail, "batch 11..12 does not start after the previous batch's last offset 13") {
		t.Fatalf("offset order: %v", rep.Problems)
	}
}

func TestVerifyEpochsAndFiles(t *testing.T) {
	b := buildLog(t)
	ckpt := filepath.Join(b.partDir, "leader-epoch-checkpoint")
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kinds := func(rep Report) string {
		var ks []string
		for _, p := range rep.Problems {
			sev := "w"
			if p.Damage {
				sev = "d"
			}
			ks = append(ks, sev+":"+p.Kind)
		}
		return strings.Join(ks, ",")
	}
	f := func(name, want string) Report {
		t.Helper()
		rep, out := verify(t, b.dataDir)
		if got := kinds(rep); got != want {
			t.Fatalf("%s: problems %s, want %s\n%s", name, got, want, out)
		}
		return rep
	}

	write(ckpt, "0\n2\n3 22\n0 0\n")
	f("epochs going down", "d:epochs")
	write(ckpt, "0\n3\n0 0\n3 22\n")
	f("wrong count", "d:epochs")
	write(ckpt, "0\n1\n0 0\n")
	rep := f("batches of an epoch the checkpoint lacks", "w:epochs")
	if !strings.Contains(rep.Problems[0].Detail, "4 batches carry a leader epoch other than") {
		t.Fatalf("epoch mismatch: %+v", rep.Problems[0])
	}
	write(ckpt, "0\n3\n0 0\n3 22\n4 31\n")
	f("an epoch past the log end", "w:epochs")
	write(ckpt, "0\n2\n0 0\n3 22\n")
	f("restored", "")

	snaps, _ := filepath.Glob(filepath.Join(b.partDir, "*.snapshot"))
	patchFile(t, snaps[0], 8, func(p []byte) { p[0] ^= 0xff })
	f("damaged snapshot", "d:snapshot")
	os.Remove(snaps[0])

	write(filepath.Join(b.partDir, "00000000000000000000.log.cleaned"), "partial")
	write(filepath.Join(b.partDir, "notes.txt"), "hello")
	write(filepath.Join(b.partDir, "00000000000000000099.index"), "")
	f("stray files", "w:cleaned,w:stray,w:stray")
}

func TestVerifyFloodIsCut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x-0")
	os.Mkdir(dir, 0o755)
	markClean(t, dir)
	var batches [][]byte
	for i := range 30 {
		bt := at(plain(ts0, kv("k", "v")), int64(i)).encode()
		bt[len(bt)-1] ^= 1
		batches = append(batches, bt)
	}
	path := segPath(dir, 0, ".log")
	writeSegment(t, path, batches...)
	rep, _ := verify(t, dir)
	if len(rep.Problems) != maxProblemsPerKind+1 || rep.Batches != 30 || rep.Records != 0 {
		t.Fatalf("%d problems, %+v", len(rep.Problems), rep)
	}
	if p := rep.Problems[maxProblemsPerKind]; p.Kind != "crc" || !p.Damage || p.Offset != -1 || p.Detail != "10 more problems of this kind in this file, not listed" {
		t.Fatalf("summary %+v", p)
	}
}

func TestVerifyErrors(t *testing.T) {
	dir := t.TempDir()
	f := func(path, want string) {
		t.Helper()
		_, err := Verify(&strings.Builder{}, path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Verify(%s): %v, want %q", path, err, want)
		}
	}
	f(filepath.Join(dir, "nope"), "no such file")
	f(dir, "no partition directories or segment files in it")
	writeSegment(t, filepath.Join(dir, "file"))
	f(filepath.Join(dir, "file"), "not a directory")
}

// TestVerifyStartOffset: DeleteRecords' log-start-offset file is part of
// the log; garbage in it is damage.
func TestVerifyStartOffset(t *testing.T) {
	b := buildLog(t)
	path := filepath.Join(b.partDir, startOffsetName)
	if err := os.WriteFile(path, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep, out := verify(t, b.dataDir); len(rep.Problems) != 0 {
		t.Fatalf("a valid log start offset: %v\n%s", rep.Problems, out)
	}
	if err := os.WriteFile(path, []byte("three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _ := verify(t, b.dataDir)
	if p := onlyProblem(t, rep); p.Kind != "start" || !p.Damage {
		t.Fatalf("garbage log start offset: %+v", p)
	}
}

// markClean leaves the broker's clean-shutdown marker in the data
// directory above partition directory dir.
func markClean(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), cleanMarkerName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyTornTailAfterCrash: bad batches at the very end of the last
// segment are a torn write, a warning, after a crash (no clean-shutdown
// marker: recovery truncates them); with the marker, or with a good batch
// after them, they are damage.
func TestVerifyTornTailAfterCrash(t *testing.T) {
	write := func(t *testing.T, clean bool, badAt ...int) string {
		dir := filepath.Join(t.TempDir(), "x-0")
		os.Mkdir(dir, 0o755)
		if clean {
			markClean(t, dir)
		}
		var batches [][]byte
		for i := range 5 {
			bt := at(plain(ts0, kv("k", "v")), int64(i)).encode()
			for _, b := range badAt {
				if b == i {
					bt[len(bt)-1] ^= 1
				}
			}
			batches = append(batches, bt)
		}
		writeSegment(t, segPath(dir, 0, ".log"), batches...)
		return dir
	}
	kinds := func(rep Report) string {
		var out []string
		for _, p := range rep.Problems {
			d := "w"
			if p.Damage {
				d = "d"
			}
			out = append(out, d+":"+p.Kind)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name  string
		clean bool
		bad   []int
		want  string
	}{
		{"last batch after a crash", false, []int{4}, "w:torn-tail"},
		{"last two batches after a crash", false, []int{3, 4}, "w:torn-tail,w:torn-tail"},
		{"last batch after a clean shutdown", true, []int{4}, "d:crc"},
		{"a bad batch before a good one after a crash", false, []int{3}, "d:crc"},
		{"first batch after a clean shutdown", true, []int{0}, "d:crc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, out := verify(t, write(t, tc.clean, tc.bad...))
			if got := kinds(rep); got != tc.want {
				t.Fatalf("problems %s, want %s\n%s", got, tc.want, out)
			}
			if rep.Damaged() != strings.Contains(tc.want, "d:") {
				t.Fatalf("Damaged() = %v", rep.Damaged())
			}
		})
	}
}

// TestVerifySkipsForeignDirectories: a lost+found in the data directory is
// a warning, not a partition.
func TestVerifySkipsForeignDirectories(t *testing.T) {
	b := buildLog(t)
	if err := os.Mkdir(filepath.Join(b.dataDir, "lost+found"), 0o755); err != nil {
		t.Fatal(err)
	}
	rep, out := verify(t, b.dataDir)
	if rep.Partitions != 1 || rep.Damaged() || len(rep.Problems) != 1 || rep.Problems[0].Kind != "stray" {
		t.Fatalf("%+v\n%s", rep, out)
	}
}
