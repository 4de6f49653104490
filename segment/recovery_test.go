package segment

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"samsa/segment/compress"
)

func TestCleanReopenKeepsEverything(t *testing.T) {
	withActiveIndexes(t)
	cfg := testConfig()
	cfg.SegmentBytes = 3000
	e := newTestEnv(t, cfg)
	batches := appendMixed(t, e, 60, rand.New(rand.NewPCG(11, 12)))
	end := e.log.EndOffset()
	e.shutdown(true)

	// A clean close leaves index files for every segment, the active one too.
	segs := segmentFiles(t, e.dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	for _, s := range segs {
		base := s[:len(s)-4]
		for _, ext := range []string{".index", ".timeindex"} {
			if _, err := os.Stat(base + ext); err != nil {
				t.Fatalf("clean close left no %s: %v", ext, err)
			}
		}
	}
	if snaps := listSnapshots(e.dir); len(snaps) != 1 || snaps[0] != end {
		t.Fatalf("snapshots at %v, want one at %d", snaps, end)
	}

	e.open(true)
	if e.log.EndOffset() != end || e.log.StartOffset() != 0 {
		t.Fatalf("reopened [%d, %d), want [0, %d)", e.log.StartOffset(), e.log.EndOffset(), end)
	}
	got := checkLog(t, e.log)
	for i := range batches {
		if !bytes.Equal(got[i], batches[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	// The active segment's index files stay until it rolls: an open does
	// not rewrite a directory (10,000 partitions would cost seconds).
	active := segs[len(segs)-1]
	stale, err := os.Stat(active[:len(active)-4] + ".index")
	if err != nil {
		t.Fatalf("active segment index removed by a clean open: %v", err)
	}
	// Appends continue after the old end.
	res := e.mustAppend(plainBatch(2, 10, 1).encode())
	if res.BaseOffset != end {
		t.Fatalf("append after reopen at %d, want %d", res.BaseOffset, end)
	}
	checkLog(t, e.log)
	// Once the segment rolls, its old index files, which a crash would have
	// trusted for a segment that is no longer the last, are gone or
	// rewritten whole by the seal (a new file): never the stale ones.
	for e.log.segs[len(e.log.segs)-1].path == active[:len(active)-4] {
		e.mustAppend(plainBatch(3, 10, 100).encode())
	}
	if now, err := os.Stat(active[:len(active)-4] + ".index"); err == nil && os.SameFile(now, stale) {
		t.Fatal("the rolled segment kept its stale index file")
	}
	e.reopen(false)
	checkLog(t, e.log)
}

func TestCrashReopenKeepsEverything(t *testing.T) {
	for _, withSnapshot := range []bool{true, false} {
		cfg := testConfig()
		cfg.SegmentBytes = 3000
		e := newTestEnv(t, cfg)
		batches := appendMixed(t, e, 60, rand.New(rand.NewPCG(13, 14)))
		syncWait(t, e.log)
		end := e.log.EndOffset()
		e.shutdown(false)
		if !withSnapshot {
			for _, off := range listSnapshots(e.dir) {
				os.Remove(snapshotPath(e.dir, off))
			}
		}
		e.open(false)
		if e.log.EndOffset() != end {
			t.Fatalf("end offset %d after crash, want %d", e.log.EndOffset(), end)
		}
		got := checkLog(t, e.log)
		for i := range batches {
			if !bytes.Equal(got[i], batches[i]) {
				t.Fatalf("batch %d differs", i)
			}
		}
		// Producer state was rebuilt: every producer's last batch is a
		// duplicate, and its next sequence is accepted.
		last := map[int64][]byte{}
		for _, b := range batches {
			if h, _ := ParseBatchHeader(b); h.HasProducer() {
				last[h.ProducerID] = b
			}
		}
		if len(last) == 0 {
			t.Fatal("no producers in the test data")
		}
		for pid, b := range last {
			h, _ := ParseBatchHeader(b)
			retry := bytes.Clone(b)
			SetBaseOffset(retry, 0)
			res, err := e.append(retry, false)
			if err != nil || !res.Duplicate || res.BaseOffset != h.BaseOffset {
				t.Fatalf("snapshot=%v: retry of producer %d: %+v %v, want duplicate at %d", withSnapshot, pid, res, err, h.BaseOffset)
			}
			next := pidBatch(1, 1, pid, 0, h.LastSequence()+1)
			if _, err := e.append(next.encode(), false); err != nil {
				t.Fatalf("snapshot=%v: producer %d next batch: %v", withSnapshot, pid, err)
			}
		}
		checkLog(t, e.log)
	}
}

// tornCase damages the tail of the active segment after the last good batch.
type tornCase struct {
	name     string
	damage   func(t *testing.T, path string, lastPos, size int64)
	keepLast bool // the damage is after the last batch
}

func tornCases() []tornCase {
	rewrite := func(t *testing.T, path string, fn func([]byte) []byte) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, fn(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []tornCase{
		{"truncated by 3 bytes", func(t *testing.T, p string, last, size int64) {
			os.Truncate(p, size-3)
		}, false},
		{"truncated inside the header", func(t *testing.T, p string, last, size int64) {
			os.Truncate(p, last+20)
		}, false},
		{"truncated and garbage", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte { return append(b[:size-5], bytes.Repeat([]byte{0xab}, 300)...) })
		}, false},
		{"zero filled", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte {
				clear(b[last+10:])
				return append(b, make([]byte, 4096)...)
			})
		}, false},
		{"flipped byte in last batch", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte { b[size-7] ^= 0x20; return b })
		}, false},
		{"flipped length", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte { b[last+11] ^= 0x01; return b })
		}, false},
		{"huge length", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte { binary.BigEndian.PutUint32(b[last+8:], 0x7fffffff); return b })
		}, false},
		{"garbage after the last batch", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte {
				return append(b, []byte("not a batch at all, not even close, no no no no no")...)
			})
		}, true},
		{"a few bytes after the last batch", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte { return append(b, 0, 0, 0) })
		}, true},
		{"base offset goes back", func(t *testing.T, p string, last, size int64) {
			rewrite(t, p, func(b []byte) []byte { binary.BigEndian.PutUint64(b[last:], 0); return b })
		}, false},
	}
}

func TestTornTail(t *testing.T) {
	for _, tc := range tornCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SegmentBytes = 4000
			e := newTestEnv(t, cfg)
			batches := appendMixed(t, e, 40, rand.New(rand.NewPCG(15, 16)))
			// The last batch is from producer 0, so a retry after the
			// damage must append again rather than count as a duplicate.
			lastB := pidBatch(3, 2000, 0, 0, 0)
			lastB.Seq = nextSeq(batches, 0)
			lastRaw := lastB.encode()
			e.mustAppend(lastRaw)
			syncWait(t, e.log)
			segs := segmentFiles(t, e.dir)
			active := segs[len(segs)-1]
			size := fileSizeOf(t, active)
			lastPos := size - int64(len(lastRaw))
			lastH, _ := ParseBatchHeader(lastRaw)
			e.shutdown(false)

			tc.damage(t, active, lastPos, size)
			e.open(false)
			wantEnd, wantSize := lastH.BaseOffset, lastPos
			if tc.keepLast {
				wantEnd, wantSize = lastH.LastOffset()+1, size
				batches = append(batches, bytes.Clone(lastRaw))
			}
			if got := e.log.EndOffset(); got != wantEnd {
				t.Fatalf("end offset %d after torn tail, want %d", got, wantEnd)
			}
			if got := fileSizeOf(t, active); got != wantSize {
				t.Fatalf("segment truncated to %d, want %d", got, wantSize)
			}
			got := checkLog(t, e.log)
			if len(got) != len(batches) {
				t.Fatalf("%d batches survived, want %d", len(got), len(batches))
			}
			for i := range batches {
				if !bytes.Equal(got[i], batches[i]) {
					t.Fatalf("batch %d differs", i)
				}
			}
			// A torn batch is forgotten by the producer state too: its retry
			// appends again. An intact one is a duplicate.
			SetBaseOffset(lastRaw, 0)
			res, err := e.append(lastRaw, false)
			if err != nil || res.Duplicate != tc.keepLast || res.BaseOffset != lastH.BaseOffset {
				t.Fatalf("retry of the last batch: %+v %v", res, err)
			}
			e.mustAppend(plainBatch(1, 1, 1).encode())
			checkLog(t, e.log)
			// And all of it survives another crash.
			end := e.log.EndOffset()
			syncWait(t, e.log)
			e.reopen(false)
			if e.log.EndOffset() != end {
				t.Fatalf("end offset %d after second crash, want %d", e.log.EndOffset(), end)
			}
			checkLog(t, e.log)
		})
	}
}

// nextSeq returns the sequence producer pid must send next after batches.
func nextSeq(batches [][]byte, pid int64) int32 {
	seq := int32(0)
	for _, b := range batches {
		if h, _ := ParseBatchHeader(b); h.ProducerID == pid {
			seq = h.LastSequence() + 1
		}
	}
	return seq
}

func TestCorruptIndexRebuilt(t *testing.T) {
	cases := []struct {
		name      string
		ext       string
		transform func([]byte) []byte
	}{
		{"offset index odd size", ".index", func(b []byte) []byte { return b[:len(b)-3] }},
		{"offset index empty", ".index", func(b []byte) []byte { return nil }},
		{"offset index out of order", ".index", func(b []byte) []byte {
			if len(b) >= 16 {
				copy(b[8:16], b[0:8])
			}
			return b
		}},
		{"offset index past end", ".index", func(b []byte) []byte {
			return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(b, 1<<30), 1<<30)
		}},
		{"offset index wrong position", ".index", func(b []byte) []byte {
			// Entry 1 points a few bytes off its batch.
			binary.BigEndian.PutUint32(b[12:], binary.BigEndian.Uint32(b[12:])+3)
			return b
		}},
		{"offset index wrong offset", ".index", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], binary.BigEndian.Uint32(b[8:])+1)
			return b
		}},
		{"time index odd size", ".timeindex", func(b []byte) []byte { return append(b, 1) }},
		{"time index decreasing", ".timeindex", func(b []byte) []byte {
			return append(b, make([]byte, 12)...)
		}},
		{"time index too low", ".timeindex", func(b []byte) []byte {
			// Claims everything before entry 1 is older than it is.
			binary.BigEndian.PutUint64(b[12:], 0)
			binary.BigEndian.PutUint64(b[0:], 0)
			return b
		}},
		{"offset index missing", ".index", nil},
		{"time index missing", ".timeindex", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SegmentBytes = 8000
			cfg.IndexIntervalBytes = 100
			e := newTestEnv(t, cfg)
			recs := appendTimed(t, e, 60, rand.New(rand.NewPCG(17, 18)))
			end := e.log.EndOffset()
			e.shutdown(true)
			segs := segmentFiles(t, e.dir)
			if len(segs) < 2 {
				t.Fatalf("%d segments", len(segs))
			}
			// Damage a sealed segment's index.
			p := segs[0][:len(segs[0])-4] + tc.ext
			if tc.transform == nil {
				os.Remove(p)
			} else {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) < 24 {
					t.Fatalf("index %s has %d bytes; test needs more entries", p, len(b))
				}
				if err := os.WriteFile(p, tc.transform(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, clean := range []bool{true, false} {
				e.open(clean)
				if e.log.EndOffset() != end {
					t.Fatalf("end offset %d, want %d", e.log.EndOffset(), end)
				}
				checkLog(t, e.log)
				for _, r := range recs {
					if r.control {
						continue
					}
					// The first record at or after r.ts is at or before r.
					off, _, found, err := e.log.OffsetForTime(r.ts)
					if err != nil || !found || off > r.offset {
						t.Fatalf("OffsetForTime(%d) = %d %v %v, want <= %d", r.ts, off, found, err, r.offset)
					}
					sl, err := e.log.Read(r.offset, end, 1)
					if err != nil || sl.FirstOffset > r.offset || sl.NextOffset <= r.offset {
						t.Fatalf("Read(%d) = %+v %v", r.offset, sl, err)
					}
					sl.Release()
				}
				e.shutdown(clean)
			}
			// The rebuilt index was written back in the right format.
			ob, _ := os.ReadFile(segs[0][:len(segs[0])-4] + ".index")
			if _, err := unmarshalOffsetIndex(ob, fileSizeOf(t, segs[0])); err != nil || len(ob) == 0 {
				t.Fatalf("rebuilt index: %d bytes, %v", len(ob), err)
			}
		})
	}
}

// TestCrashAfterRoll covers a crash between a roll and the old segment's
// seal: its index files were never written and its tail may be torn.
func TestCrashAfterRoll(t *testing.T) {
	setup := func(t *testing.T) (*testEnv, [][]byte, []string) {
		cfg := testConfig()
		cfg.SegmentBytes = 3000
		e := newTestEnv(t, cfg)
		batches := appendMixed(t, e, 50, rand.New(rand.NewPCG(19, 20)))
		syncWait(t, e.log)
		e.shutdown(false)
		segs := segmentFiles(t, e.dir)
		if len(segs) < 3 {
			t.Fatalf("%d segments", len(segs))
		}
		return e, batches, segs
	}
	stem := func(p string) string { return p[:len(p)-4] }

	t.Run("no index files", func(t *testing.T) {
		e, batches, segs := setup(t)
		for _, s := range segs {
			os.Remove(stem(s) + ".index")
			os.Remove(stem(s) + ".timeindex")
		}
		e.open(false)
		if n := len(checkLog(t, e.log)); n != len(batches) {
			t.Fatalf("%d batches, want %d", n, len(batches))
		}
		// The scanned sealed segments got their indexes back.
		for _, s := range segs[:len(segs)-1] {
			if _, err := os.Stat(stem(s) + ".index"); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("torn sealed segment drops the rest", func(t *testing.T) {
		e, batches, segs := setup(t)
		// Segment 1 was rolled away from but its tail never made it.
		s1 := segs[1]
		os.Remove(stem(s1) + ".index")
		os.Remove(stem(s1) + ".timeindex")
		os.Truncate(s1, fileSizeOf(t, s1)-10)
		e.open(false)
		got := checkLog(t, e.log)
		if len(segmentFiles(t, e.dir)) != 2 {
			t.Fatalf("segments %v, want the first two", segmentFiles(t, e.dir))
		}
		for i := range got {
			if !bytes.Equal(got[i], batches[i]) {
				t.Fatalf("batch %d differs", i)
			}
		}
		h, _ := ParseBatchHeader(got[len(got)-1])
		if next := h.LastOffset() + 1; e.log.EndOffset() != next {
			t.Fatalf("end %d, want %d", e.log.EndOffset(), next)
		}
		// No snapshot may describe offsets past the end.
		for _, off := range listSnapshots(e.dir) {
			if off > e.log.EndOffset() {
				t.Fatalf("snapshot at %d past end %d", off, e.log.EndOffset())
			}
		}
		res := e.mustAppend(plainBatch(1, 1, 1).encode())
		if res.BaseOffset != h.LastOffset()+1 {
			t.Fatalf("append at %d", res.BaseOffset)
		}
		checkLog(t, e.log)
	})

	t.Run("empty sealed segment drops the rest", func(t *testing.T) {
		e, _, segs := setup(t)
		// A segment whose writes never reached the disk, followed by one
		// whose did: the later one follows a hole and must go.
		s1 := segs[1]
		os.Remove(stem(s1) + ".index")
		os.Remove(stem(s1) + ".timeindex")
		os.Truncate(s1, 0)
		e.open(false)
		checkLog(t, e.log)
		if n := len(segmentFiles(t, e.dir)); n != 2 {
			t.Fatalf("%d segments, want 2", n)
		}
		base1, _ := parseSegmentName(filepath.Base(s1))
		if e.log.EndOffset() != base1 {
			t.Fatalf("end %d, want %d", e.log.EndOffset(), base1)
		}
		res := e.mustAppend(plainBatch(1, 1, 1).encode())
		if res.BaseOffset != base1 {
			t.Fatalf("append at %d, want %d", res.BaseOffset, base1)
		}
		checkLog(t, e.log)
	})

	t.Run("empty new active segment", func(t *testing.T) {
		e, batches, _ := setup(t)
		end := int64(0)
		for _, b := range batches {
			h, _ := ParseBatchHeader(b)
			end = h.LastOffset() + 1
		}
		// The roll created the file; nothing was written to it yet.
		f, err := os.Create(segmentPath(e.dir, end) + ".log")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		e.open(false)
		if e.log.EndOffset() != end {
			t.Fatalf("end %d, want %d", e.log.EndOffset(), end)
		}
		checkLog(t, e.log)
		res := e.mustAppend(plainBatch(1, 1, 1).encode())
		if res.BaseOffset != end {
			t.Fatalf("append at %d, want %d", res.BaseOffset, end)
		}
	})

	t.Run("overlapping segment dropped", func(t *testing.T) {
		e, batches, segs := setup(t)
		// A stray file whose base lies inside segment 0, as compaction
		// leaves a segment it merged into the previous one when it
		// crashes before removing it: it goes, the rest stays.
		data, _ := os.ReadFile(segs[len(segs)-1])
		os.WriteFile(segmentPath(e.dir, 1)+".log", data, 0o644)
		e.open(false)
		if n := len(segmentFiles(t, e.dir)); n != len(segs) {
			t.Fatalf("%d segments, want %d", n, len(segs))
		}
		if _, err := os.Stat(segmentPath(e.dir, 1) + ".log"); !os.IsNotExist(err) {
			t.Fatalf("stray segment still there: %v", err)
		}
		got := checkLog(t, e.log)
		if len(got) != len(batches) {
			t.Fatalf("%d batches, want %d", len(got), len(batches))
		}
		for i := range got {
			if !bytes.Equal(got[i], batches[i]) {
				t.Fatalf("batch %d differs", i)
			}
		}
	})

	t.Run("temporary files removed", func(t *testing.T) {
		e, _, segs := setup(t)
		os.WriteFile(stem(segs[0])+".index.tmp", []byte("x"), 0o644)
		e.open(false)
		if _, err := os.Stat(stem(segs[0]) + ".index.tmp"); !os.IsNotExist(err) {
			t.Fatalf("tmp file left: %v", err)
		}
	})
}

func TestCorruptSnapshotIgnored(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(pidBatch(2, 1, 5, 0, 0).encode())
	e.mustAppend(pidBatch(2, 1, 5, 0, 2).encode())
	e.shutdown(true)
	snaps := listSnapshots(e.dir)
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v", snaps)
	}
	p := snapshotPath(e.dir, snaps[0])
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)
	// A stale snapshot past the end is dropped too.
	os.WriteFile(snapshotPath(e.dir, 1000), producerState{}.marshal(nil), 0o644)
	e.open(true)
	if _, err := os.Stat(snapshotPath(e.dir, 1000)); !os.IsNotExist(err) {
		t.Fatalf("snapshot past the end kept: %v", err)
	}
	// The state is replayed from the log instead.
	res, err := e.append(pidBatch(2, 1, 5, 0, 2).encode(), false)
	if err != nil || !res.Duplicate || res.BaseOffset != 2 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, err := e.append(pidBatch(1, 1, 5, 0, 4).encode(), false); err != nil {
		t.Fatal(err)
	}
}

type recoverSeed struct {
	cut, flip, xor uint32
	fixCRC         bool
	tail           []byte
}

func fuzzRecoverSeeds() []recoverSeed {
	valid := pidBatch(2, 5, 3, 0, 100).encode()
	return []recoverSeed{
		{},
		{cut: 1},
		{cut: 70},
		{cut: 500},
		{flip: 3000, xor: 1},
		{flip: 100, xor: 0x80},
		{tail: []byte("garbage")},
		{tail: make([]byte, 100)},
		{tail: valid, fixCRC: true},
		{cut: 10, tail: valid, fixCRC: true},
		{tail: append(bytes.Repeat([]byte{0xff}, 8), valid[8:]...), fixCRC: true},
	}
}

// fuzzSegment is the segment file FuzzRecover starts from: batches of every
// kind with consecutive offsets, and their sizes.
func fuzzSegment() ([]byte, []int64) {
	var data []byte
	var ends []int64
	off := int64(0)
	for i := range 12 {
		b := plainBatch(1+i%4, 30+i*5, 1000+int64(i))
		if i%3 == 1 {
			b.ProducerID, b.Epoch, b.Seq = 3, 0, int32(off)
		}
		b.Codec = compress.Codec(i % 5)
		raw := b.encode()
		SetBaseOffset(raw, off)
		off += int64(len(b.Records))
		data = append(data, raw...)
		ends = append(ends, int64(len(data)))
	}
	return data, ends
}

// inLeaderEpoch reports whether byte p is in the leader epoch field of one
// of the batches ending at ends.
func inLeaderEpoch(ends []int64, p int64) bool {
	start := int64(0)
	for _, end := range ends {
		if p < end {
			return p >= start+12 && p < start+16
		}
		start = end
	}
	return false
}

func FuzzRecover(f *testing.F) {
	for _, s := range fuzzRecoverSeeds() {
		f.Add(s.cut, s.flip, s.xor, s.fixCRC, s.tail)
	}
	seg, ends := fuzzSegment()
	f.Fuzz(func(t *testing.T, cut, flip, xor uint32, frame bool, tail []byte) {
		data := bytes.Clone(seg)
		data = data[:int64(len(data))-int64(cut)%int64(len(data)+1)]
		if xor&0xff != 0 && len(data) > 0 {
			data[int64(flip)%int64(len(data))] ^= byte(xor)
		}
		if frame && len(tail) >= BatchHeaderSize {
			// Make the tail a well-framed batch with a valid CRC, so that
			// recovery has to judge its header.
			tail = bytes.Clone(tail)
			tail[16] = 2
			binary.BigEndian.PutUint32(tail[8:], uint32(len(tail)-batchLengthOverhead))
			fixCRC(tail)
		}
		data = append(data, tail...)
		// damage is the first byte that differs from the intact segment.
		// Nothing covers a batch's partition leader epoch (bytes 12-15), so
		// a change there is invisible and harmless.
		damage := int64(0)
		for damage < int64(min(len(data), len(seg))) &&
			(data[damage] == seg[damage] || inLeaderEpoch(ends, damage)) {
			damage++
		}

		dir := filepath.Join(t.TempDir(), "p")
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(segmentPath(dir, 0)+".log", data, 0o644); err != nil {
			t.Fatal(err)
		}
		disk := NewDisk(filepath.Dir(dir), 0, nil, testLogger)
		defer disk.Close()
		l, err := OpenLog(dir, disk, testConfig(), false, testLogger)
		if err != nil {
			t.Fatalf("OpenLog: %v", err)
		}
		defer l.Close(false)

		// Every batch wholly before the damage survives, byte for byte.
		intact := 0
		for intact < len(ends) && ends[intact] <= damage {
			intact++
		}
		var batches [][]byte
		if l.EndOffset() > 0 {
			batches = readBatches(t, l, 0, l.EndOffset(), 1<<20)
		}
		if len(batches) < intact {
			t.Fatalf("%d batches survived, %d were intact", len(batches), intact)
		}
		next := int64(0)
		pos := int64(0)
		for i, b := range batches {
			h, err := ParseBatchHeader(b)
			if err != nil || h.Size() != int64(len(b)) || BatchCRC(b) != h.CRC {
				t.Fatalf("batch %d is not a framed batch with a valid CRC: %v", i, err)
			}
			if pos+int64(len(b)) <= damage {
				want := bytes.Clone(seg[pos : pos+int64(len(b))])
				copy(want[12:16], b[12:16])
				if !bytes.Equal(b, want) {
					t.Fatalf("intact batch %d changed", i)
				}
			} else if !frame {
				// Damage without a CRC fix can never pass.
				t.Fatalf("batch %d at %d overlaps the damage at %d", i, pos, damage)
			}
			if _, err := ValidateBatch(b); err != nil && pos+int64(len(b)) <= damage {
				t.Fatalf("intact batch %d: %v", i, err)
			}
			if h.BaseOffset < next {
				t.Fatalf("batch %d base offset %d goes back from %d", i, h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
			pos += int64(len(b))
		}
		if next != l.EndOffset() {
			t.Fatalf("batches end at %d, log at %d", next, l.EndOffset())
		}
		// Appends continue at the end.
		end := l.EndOffset()
		b := plainBatch(1, 3, 5).encode()
		res, err := appendWait(t, l, b, false)
		if err != nil || res.BaseOffset != end {
			t.Fatalf("append after recovery: %+v %v, want offset %d", res, err, end)
		}
		if got := readBatches(t, l, end, end+1, 1<<20); len(got) != 1 || !bytes.Equal(got[0], b) {
			t.Fatal("appended batch not read back")
		}
	})
}

// TestCopyWhileOpen opens a copy of a live log's directory taken after a
// Sync, as a crash or a filesystem snapshot would leave it.
func TestCopyWhileOpen(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2500
	e := newTestEnv(t, cfg)
	batches := appendMixed(t, e, 50, rand.New(rand.NewPCG(41, 42)))
	syncWait(t, e.log)
	syncWait(t, e.log) // and the snapshot of the last roll
	cp := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(cp, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(e.dir)
	for _, ent := range ents {
		data, err := os.ReadFile(filepath.Join(e.dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(cp, ent.Name()), data, 0o644)
	}
	// The original keeps going; the copy must not notice.
	e.mustAppend(plainBatch(1, 1, 1).encode())

	disk := NewDisk(filepath.Dir(cp), 0, nil, testLogger)
	defer disk.Close()
	l, err := OpenLog(cp, disk, cfg, false, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(false)
	got := checkLog(t, l)
	if len(got) != len(batches) {
		t.Fatalf("copy has %d batches, want %d", len(got), len(batches))
	}
	for i := range got {
		if !bytes.Equal(got[i], batches[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}
