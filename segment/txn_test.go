package segment

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMarkerFormat pins a marker's bytes to Kafka's layout
// (MemoryRecords.withEndTransactionMarker): a change breaks the test.
func TestMarkerFormat(t *testing.T) {
	b := BuildMarker(0x1234, 7, 3, true, 0x0102030405)
	const golden = "0000000000000000" + // base offset, set at append
		"00000042" + "00000000" + "02" + "%CRC%" + // length 66, leader epoch, magic, crc
		"0030" + "00000000" + // attributes: transactional|control, last offset delta
		"0000000102030405" + "0000000102030405" + // first and max timestamp
		"0000000000001234" + "0007" + "ffffffff" + "00000001" + // pid, epoch, no sequence, one record
		"20" + "00" + "00" + "00" + // record length 16, attributes, ts delta, offset delta
		"08" + "0000" + "0001" + // key: 4 bytes, version 0, type COMMIT
		"0c" + "0000" + "00000003" + // value: 6 bytes, version 0, coordinator epoch 3
		"00" // no headers
	want, _ := hex.DecodeString(strings.Replace(golden, "%CRC%", "00000000", 1))
	copy(want[17:21], b[17:21]) // the CRC is checked below
	if !bytes.Equal(b, want) {
		t.Fatalf("marker\n%x\nwant\n%x", b, want)
	}
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatalf("a marker does not validate: %v", err)
	}
	if !h.IsControl() || !h.IsTransactional() || h.ProducerID != 0x1234 || h.ProducerEpoch != 7 {
		t.Fatalf("marker header %+v", h)
	}
	commit, ce, err := ParseMarker(b, &h)
	if err != nil || !commit || ce != 3 {
		t.Fatalf("ParseMarker: %v %d %v", commit, ce, err)
	}
	a := BuildMarker(1, 0, -1, false, 0)
	ha, _ := ValidateBatch(a)
	if commit, ce, err := ParseMarker(a, &ha); err != nil || commit || ce != -1 {
		t.Fatalf("ParseMarker(abort): %v %d %v", commit, ce, err)
	}
	// A control batch of another type is not a marker.
	c := bytes.Clone(a)
	c[BatchHeaderSize+8] = 2 // LEADER_CHANGE
	fixCRC(c)
	hc, _ := ValidateBatch(c)
	if _, _, err := ParseMarker(c, &hc); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("ParseMarker(leader change): %v", err)
	}
}

// txnBatch is a transactional batch of n records from (pid, epoch).
func txnBatch(n int, pid int64, epoch int16, seq int32, key string) []byte {
	b := pidBatch(n, time.Now().UnixMilli(), pid, epoch, seq)
	b.Attrs = AttrTransactional
	for i := range b.Records {
		b.Records[i].Key = []byte(key)
	}
	return b.encode()
}

func (e *testEnv) marker(pid int64, epoch int16, coordEpoch int32, commit bool) (int64, error) {
	e.t.Helper()
	done := make(chan error, 1)
	off, err := e.log.AppendMarker(pid, epoch, coordEpoch, commit, true, func(err error) { done <- err })
	if err != nil {
		return off, err
	}
	return off, <-done
}

func (e *testEnv) mustMarker(pid int64, epoch int16, coordEpoch int32, commit bool) int64 {
	e.t.Helper()
	off, err := e.marker(pid, epoch, coordEpoch, commit)
	if err != nil {
		e.t.Fatalf("marker: %v", err)
	}
	return off
}

func TestTransactionsOnALog(t *testing.T) {
	e := newTestEnv(t, testConfig())
	lso := func(want int64) {
		t.Helper()
		if got := e.log.LastStableOffset(e.log.EndOffset()); got != want {
			t.Fatalf("LSO %d, want %d", got, want)
		}
	}
	e.mustAppend(plainBatch(2, 10, time.Now().UnixMilli()).encode()) // 0-1
	lso(2)
	// Producer 1 opens a transaction at 2; producer 2 at 5.
	e.mustAppend(txnBatch(3, 1, 0, 0, "a")) // 2-4
	lso(2)
	e.mustAppend(txnBatch(1, 2, 0, 0, "b")) // 5
	e.mustAppend(txnBatch(1, 1, 0, 3, "a")) // 6
	lso(2)
	// Outside its transaction, producer 1 is refused.
	nonTxn := pidBatch(1, time.Now().UnixMilli(), 1, 0, 4).encode()
	if _, err := e.append(nonTxn, false); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("non-transactional write in a transaction: %v", err)
	}
	// Producer 1 aborts (marker at 7): the LSO moves to producer 2's start,
	// which the index entry records.
	if off := e.mustMarker(1, 0, 0, false); off != 7 {
		t.Fatalf("marker at %d", off)
	}
	lso(5)
	want := []AbortedTxn{{ProducerID: 1, FirstOffset: 2, LastOffset: 7, LastStableOffset: 5}}
	if got := e.log.AbortedTxns(nil, 0, 8); !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted %+v, want %+v", got, want)
	}
	for _, r := range [][2]int64{{0, 2}, {8, 9}} { // before its records; after its marker
		if got := e.log.AbortedTxns(nil, r[0], r[1]); len(got) != 0 {
			t.Fatalf("aborted in [%d,%d): %+v", r[0], r[1], got)
		}
	}
	// Producer 2 commits: everything is stable.
	if off := e.mustMarker(2, 0, 0, true); off != 8 {
		t.Fatalf("marker at %d", off)
	}
	lso(9)
	// A retried marker changes nothing; a stale one is fenced.
	e.mustMarker(2, 0, 0, true)
	if _, err := e.marker(2, 0, -1, true); !errors.Is(err, ErrCoordinatorFenced) {
		t.Fatalf("old coordinator's marker: %v", err)
	}
	// A fencing abort with a higher epoch: the old epoch is refused after.
	e.mustAppend(txnBatch(1, 1, 0, 4, "a"))
	e.mustMarker(1, 1, 0, false)
	if _, err := e.append(txnBatch(1, 1, 0, 5, "a"), false); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("zombie write after the fence: %v", err)
	}
	if _, err := e.marker(1, 0, 0, true); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("marker of an older epoch: %v", err)
	}
	// The new epoch starts at sequence 0.
	e.mustAppend(txnBatch(1, 1, 1, 0, "a"))
	lso(e.log.EndOffset() - 1)
	ps := e.log.Producers()
	found := false
	for _, p := range ps {
		if p.ID == 1 {
			found = true
			if p.Epoch != 1 || p.TxnStartOffset != e.log.EndOffset()-1 || p.CoordinatorEpoch != 0 {
				t.Fatalf("producer 1: %+v", p)
			}
		}
	}
	if !found {
		t.Fatalf("producers %+v", ps)
	}
}

// TestTransactionsSurviveRestart checks that open transactions (the LSO)
// and aborted ranges come back after a clean stop, a crash, and a crash
// that lost a sealed segment's indexes (replayed from the log start).
func TestTransactionsSurviveRestart(t *testing.T) {
	for _, how := range []string{"clean", "crash", "sealed index lost"} {
		t.Run(how, func(t *testing.T) {
			cfg := testConfig()
			cfg.SegmentBytes = 600
			e := newTestEnv(t, cfg)
			// Producer 1: a transaction across segments, aborted; producer
			// 2: committed; producer 3: left open.
			e.mustAppend(txnBatch(2, 1, 0, 0, "a"))
			e.mustAppend(txnBatch(2, 3, 0, 0, "c"))
			open := int64(2)
			for i := range 6 {
				e.mustAppend(txnBatch(1, 2, 0, int32(i), "b"))
				e.mustAppend(txnBatch(1, 1, 0, int32(2+i), "a"))
			}
			abortAt := e.mustMarker(1, 0, 0, false)
			e.mustMarker(2, 0, 0, true)
			for range 4 { // the marker's segment is sealed
				e.mustAppend(plainBatch(2, 100, time.Now().UnixMilli()).encode())
			}
			end := e.log.EndOffset()
			wantAborted := e.log.AbortedTxns(nil, 0, end)
			if len(wantAborted) != 1 || wantAborted[0].LastOffset != abortAt || wantAborted[0].FirstOffset != 0 {
				t.Fatalf("aborted before restart: %+v", wantAborted)
			}
			if segs := segmentFiles(t, e.dir); len(segs) < 3 {
				t.Fatalf("%d segments", len(segs))
			}
			switch how {
			case "clean":
				e.reopen(true)
			case "crash":
				e.reopen(false)
			case "sealed index lost":
				e.shutdown(false)
				segs := segmentFiles(t, e.dir)
				// The segment holding the marker has its .txnindex; lose
				// every sealed index file.
				for _, s := range segs[:len(segs)-1] {
					base := s[:len(s)-4]
					os.Remove(base + ".index")
					os.Remove(base + ".txnindex")
				}
				e.open(false)
			}
			if got := e.log.EndOffset(); got != end {
				t.Fatalf("end %d, want %d", got, end)
			}
			if got := e.log.LastStableOffset(end); got != open {
				t.Fatalf("LSO after restart %d, want %d (producer 3's open transaction)", got, open)
			}
			if got := e.log.AbortedTxns(nil, 0, end); !reflect.DeepEqual(got, wantAborted) {
				t.Fatalf("aborted after restart %+v, want %+v", got, wantAborted)
			}
			// The .txnindex on disk holds the entry, in Kafka's format.
			var files []string
			filepath.Walk(e.dir, func(p string, _ os.FileInfo, _ error) error {
				if filepath.Ext(p) == ".txnindex" {
					files = append(files, p)
				}
				return nil
			})
			if len(files) != 1 {
				t.Fatalf(".txnindex files %v", files)
			}
			b, _ := os.ReadFile(files[0])
			if !bytes.Equal(b, txnIndex(wantAborted).marshal(nil)) || len(b) != txnEntrySize {
				t.Fatalf(".txnindex %x", b)
			}
			// Producer 3 can still close it, and the LSO moves.
			e.mustMarker(3, 0, 0, true)
			if got := e.log.LastStableOffset(e.log.EndOffset()); got != e.log.EndOffset() {
				t.Fatalf("LSO after the last commit %d, end %d", got, e.log.EndOffset())
			}
		})
	}
}

func TestTxnIndexFormat(t *testing.T) {
	x := txnIndex{{ProducerID: 5, FirstOffset: 10, LastOffset: 20, LastStableOffset: 21}}
	const golden = "0000" + "0000000000000005" + "000000000000000a" + "0000000000000014" + "0000000000000015"
	if got := hex.EncodeToString(x.marshal(nil)); got != golden {
		t.Fatalf("entry %s, want %s", got, golden)
	}
	b, _ := hex.DecodeString(golden)
	if got, err := unmarshalTxnIndex(b); err != nil || !reflect.DeepEqual(got, x) {
		t.Fatalf("decoded %+v %v", got, err)
	}
	bad := func(name string, b []byte) {
		t.Helper()
		if _, err := unmarshalTxnIndex(b); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	bad("short", b[:33])
	bad("version", append([]byte{0, 1}, b[2:]...))
	bad("out of order", append(bytes.Clone(b), b...))
	bad("first after last", txnIndex{{FirstOffset: 9, LastOffset: 8}}.marshal(nil))
}

// TestTruncateDropsAborts: a follower cutting its tail forgets the aborts
// whose markers went, on disk too.
func TestTruncateDropsAborts(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(txnBatch(1, 1, 0, 0, "a"))
	m1 := e.mustMarker(1, 0, 0, false)
	e.mustAppend(txnBatch(1, 1, 0, 1, "a"))
	e.mustMarker(1, 0, 0, false)
	if n := len(e.log.AbortedTxns(nil, 0, e.log.EndOffset())); n != 2 {
		t.Fatalf("%d aborts", n)
	}
	e.reopen(true) // the active segment's .txnindex is on disk now
	if _, err := e.log.TruncateTo(m1 + 1); err != nil {
		t.Fatal(err)
	}
	if got := e.log.AbortedTxns(nil, 0, m1+1); len(got) != 1 || got[0].LastOffset != m1 {
		t.Fatalf("aborts after truncation %+v", got)
	}
	// Offsets past the cut are written again; no stale entry comes back.
	e.mustAppend(plainBatch(3, 10, time.Now().UnixMilli()).encode())
	e.reopen(false)
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 1 || got[0].LastOffset != m1 {
		t.Fatalf("aborts after restart %+v", got)
	}
}

// TestCompactionDropsAbortedRecords: aborted records go whatever their
// keys and never shadow a committed one; the open transaction bounds the
// cleaning; markers and their index entries stay.
func TestCompactionDropsAbortedRecords(t *testing.T) {
	e := newCompactTxnEnv(t)
	e.mustAppend(txnBatch(1, 1, 0, 0, "k"))    // committed k
	e.mustMarker(1, 0, 0, true)                //
	e.mustAppend(txnBatch(1, 1, 0, 1, "k"))    // aborted k: must not shadow
	e.mustAppend(txnBatch(1, 1, 0, 2, "gone")) // aborted, no other version
	abortAt := e.mustMarker(1, 0, 0, false)    //
	for i := range 6 {                         // roll a few segments
		e.mustAppend(txnBatch(1, 2, 0, int32(i), "other"))
		e.mustMarker(2, 0, 0, true)
	}
	e.mustAppend(plainBatch(1, 10, time.Now().UnixMilli()).encode())
	if _, err := e.log.Compact(time.Now()); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]int64{}
	for _, b := range readBatches(t, e.log, 0, e.log.EndOffset(), 1<<20) {
		h, _ := ParseBatchHeader(b)
		if h.IsControl() {
			continue
		}
		ForEachRecord(b[BatchHeaderSize:], func(r *Record) bool {
			keys[string(r.Key)] = append(keys[string(r.Key)], h.BaseOffset+int64(r.OffsetDelta))
			return true
		})
	}
	if !reflect.DeepEqual(keys["k"], []int64{0}) || len(keys["gone"]) != 0 {
		t.Fatalf("after compaction: k at %v, gone at %v", keys["k"], keys["gone"])
	}
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 1 || got[0].LastOffset != abortAt {
		t.Fatalf("aborts after compaction %+v", got)
	}
	e.reopen(true)
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 1 || got[0].LastOffset != abortAt {
		t.Fatalf("aborts after compaction and restart %+v", got)
	}

	// An open transaction stops the cleaning at its start.
	first := e.log.EndOffset()
	e.mustAppend(txnBatch(1, 3, 0, 0, "open"))
	for range 6 {
		e.mustAppend(plainBatch(1, 10, time.Now().UnixMilli()).encode())
	}
	before := readBatches(t, e.log, first, e.log.EndOffset(), 1<<20)
	if _, err := e.log.Compact(time.Now()); err != nil {
		t.Fatal(err)
	}
	if after := readBatches(t, e.log, first, e.log.EndOffset(), 1<<20); !reflect.DeepEqual(before, after) {
		t.Fatal("compaction went past an open transaction")
	}
}

// TestReplicaAppliesMarkers: the standby's copy (AppendReplica) tracks
// transactions as the primary's does.
func TestReplicaAppliesMarkers(t *testing.T) {
	src := newTestEnv(t, testConfig())
	src.mustAppend(txnBatch(2, 4, 0, 0, "a"))
	src.mustMarker(4, 0, 0, false)
	src.mustAppend(txnBatch(1, 5, 0, 0, "b"))
	dst := newTestEnv(t, testConfig())
	for _, b := range readBatches(t, src.log, 0, src.log.EndOffset(), 1<<20) {
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		if err := dst.log.AppendReplica(bytes.Clone(b), &h, false, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	end := dst.log.EndOffset()
	if got, want := dst.log.AbortedTxns(nil, 0, end), src.log.AbortedTxns(nil, 0, end); !reflect.DeepEqual(got, want) || len(got) != 1 {
		t.Fatalf("replica aborts %+v, primary %+v", got, want)
	}
	if got, want := dst.log.LastStableOffset(end), src.log.LastStableOffset(end); got != want || got != 3 {
		t.Fatalf("replica LSO %d, primary %d", got, want)
	}
}

// TestTransactionAtOffsetZero: a transaction opened by the log's first
// batch holds the LSO at 0 (a read_committed consumer saw its records
// before this was caught).
func TestTransactionAtOffsetZero(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(txnBatch(2, 9, 0, 0, "a"))
	e.mustAppend(txnBatch(2, 9, 0, 2, "a"))
	if got := e.log.LastStableOffset(e.log.EndOffset()); got != 0 {
		t.Fatalf("LSO %d, want 0", got)
	}
	e.mustMarker(9, 0, 0, true)
	if got := e.log.LastStableOffset(e.log.EndOffset()); got != 5 {
		t.Fatalf("LSO after commit %d, want 5", got)
	}
}

// newCompactTxnEnv is a compacted log of small segments, cleaned
// whatever its dirty ratio.
func newCompactTxnEnv(t *testing.T) *testEnv {
	t.Helper()
	cfg := testConfig()
	cfg.Compact, cfg.Delete = true, false
	cfg.SegmentBytes = 400
	cfg.MinCleanableRatio = 0
	return newTestEnv(t, cfg)
}

// TestCompactionRemovesOldMarkers: past delete.retention.ms compaction
// removes the markers of transactions with no batch left, and the index
// entries of the aborts they closed.
func TestCompactionRemovesOldMarkers(t *testing.T) {
	e := newCompactTxnEnv(t)
	e.mustAppend(txnBatch(1, 1, 0, 0, "k"))
	e.mustMarker(1, 0, 0, true)
	e.mustAppend(txnBatch(1, 1, 0, 1, "k"))
	e.mustMarker(1, 0, 0, false)
	for range 6 {
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	markers := func() int {
		n := 0
		for _, b := range readBatches(t, e.log, 0, e.log.EndOffset(), 1<<20) {
			if h, _ := ParseBatchHeader(b); h.IsControl() {
				n++
			}
		}
		return n
	}
	e.reopen(true) // every sealed segment indexed
	if _, err := e.log.Compact(time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := markers(); n != 2 {
		t.Fatalf("%d markers within delete.retention.ms, want 2", n)
	}
	if at := e.log.tombstonesAt.Load(); at == 0 {
		t.Fatal("no later pass scheduled for the markers")
	}
	if _, err := e.log.Compact(time.Now().Add(25 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The abort marker goes (its records went); the commit marker stays:
	// its record k@0 is still the latest of its key.
	if n := markers(); n != 1 {
		t.Fatalf("%d markers after delete.retention.ms, want 1", n)
	}
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 0 {
		t.Fatalf("aborts indexed after their markers went: %+v", got)
	}
	e.reopen(true)
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 0 {
		t.Fatalf("aborts indexed after a restart: %+v", got)
	}
}

// FuzzTxnIndex: any .txnindex bytes decode to ordered entries or an
// error, and what decodes encodes back to the same bytes.
func FuzzTxnIndex(f *testing.F) {
	f.Add(txnIndex{{ProducerID: 1, FirstOffset: 2, LastOffset: 3, LastStableOffset: 4}}.marshal(nil))
	f.Add(txnIndex{{ProducerID: -1, FirstOffset: 0, LastOffset: 0}, {ProducerID: 5, FirstOffset: 0, LastOffset: 9, LastStableOffset: 1}}.marshal(nil))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := unmarshalTxnIndex(data)
		if err != nil {
			return
		}
		for i, e := range x {
			if e.FirstOffset > e.LastOffset || (i > 0 && e.LastOffset <= x[i-1].LastOffset) {
				t.Fatalf("decoded out of order: %+v", x)
			}
		}
		if got := x.marshal(nil); !bytes.Equal(got, data) {
			t.Fatalf("round trip %x, want %x", got, data)
		}
	})
}

// FuzzParseMarker: any control batch body is a marker with a type and an
// epoch, or an error; never a panic.
func FuzzParseMarker(f *testing.F) {
	f.Add(BuildMarker(1, 2, 3, true, 4))
	f.Add(BuildMarker(-1, 0, -1, false, 0))
	f.Fuzz(func(t *testing.T, batch []byte) {
		if len(batch) < BatchHeaderSize {
			return
		}
		h, err := ParseBatchHeader(batch)
		if err != nil {
			return
		}
		h.Attributes |= AttrControl
		commit, epoch, err := ParseMarker(batch, &h)
		if err != nil {
			return
		}
		// What it read, a marker built from it says again.
		m := BuildMarker(h.ProducerID, h.ProducerEpoch, epoch, commit, h.FirstTimestamp)
		mh, err := ValidateBatch(m)
		if err != nil {
			t.Fatalf("a rebuilt marker does not validate: %v", err)
		}
		if c2, e2, err := ParseMarker(m, &mh); err != nil || c2 != commit || e2 != epoch {
			t.Fatalf("rebuilt marker reads %v %d %v, want %v %d", c2, e2, err, commit, epoch)
		}
	})
}

// TestCompactionKeepsMarkersOfLiveRecords: a commit marker whose records
// are still in the log stays, whatever its age: without it a replay of
// the log (recovery, the group coordinator's offsets) would take them for
// an open transaction.
func TestCompactionKeepsMarkersOfLiveRecords(t *testing.T) {
	e := newCompactTxnEnv(t)
	e.mustAppend(txnBatch(1, 1, 0, 0, "live"))
	keptAt := e.mustMarker(1, 0, 0, true)
	e.mustAppend(txnBatch(1, 2, 0, 0, "gone"))
	e.mustMarker(2, 0, 0, true)
	b := plainBatch(1, 10, time.Now().UnixMilli())
	b.Records[0].Key = []byte("gone")
	e.mustAppend(b.encode())
	for range 6 {
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	e.reopen(true)
	markers := func() []int64 {
		var out []int64
		for _, bb := range readBatches(t, e.log, 0, e.log.EndOffset(), 1<<20) {
			if h, _ := ParseBatchHeader(bb); h.IsControl() {
				out = append(out, h.BaseOffset)
			}
		}
		return out
	}
	// The pass that removes "gone"'s transactional record keeps its
	// marker (Kafka's cleaner: a marker whose transaction's batches
	// were traversed stays that pass); the next one removes it.
	if _, err := e.log.Compact(time.Now().Add(25 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := markers(); len(got) != 2 || got[0] != keptAt {
		t.Fatalf("markers %v after the first pass, want %d and the one of the record it removed", got, keptAt)
	}
	if _, err := e.log.Compact(time.Now().Add(25 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := markers(); !reflect.DeepEqual(got, []int64{keptAt}) {
		t.Fatalf("markers %v after the second pass, want only %d (its record is live)", got, keptAt)
	}
	// A replay from the log start finds no open transaction.
	e.shutdown(false)
	for _, s := range segmentFiles(t, e.dir)[:1] {
		os.Remove(s[:len(s)-4] + ".index")
	}
	e.open(false)
	if lso := e.log.LastStableOffset(e.log.EndOffset()); lso != e.log.EndOffset() {
		t.Fatalf("LSO %d after a replay, end %d", lso, e.log.EndOffset())
	}
}

// TestLSONeverBelowLogStart: records deleted under an open transaction
// (DeleteRecords; retention alike) leave its LSO at the log start, and the
// transaction still holds it there until it ends.
func TestLSONeverBelowLogStart(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(txnBatch(3, 4, 0, 0, "a")) // 0-2, open
	e.mustAppend(plainBatch(3, 10, time.Now().UnixMilli()).encode())
	if _, err := e.log.DeleteBefore(2); err != nil {
		t.Fatal(err)
	}
	if got := e.log.LastStableOffset(e.log.EndOffset()); got != 2 {
		t.Fatalf("LSO %d with the log starting at 2, want 2", got)
	}
	e.mustMarker(4, 0, 0, false)
	if got := e.log.LastStableOffset(e.log.EndOffset()); got != e.log.EndOffset() {
		t.Fatalf("LSO %d after the abort, end %d", got, e.log.EndOffset())
	}
}

// TestLSOHeldUntilHighWatermarkPassesMarker: a transaction decided by a
// marker the high watermark has not passed keeps the LSO at its first
// offset, as Kafka's unreplicatedTxns (in a pair the standby may not hold
// the marker yet); once the high watermark passes the marker it does not,
// and entries below the high watermark seen are dropped.
func TestLSOHeldUntilHighWatermarkPassesMarker(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(txnBatch(3, 4, 0, 0, "a")) // 0-2
	m := e.mustMarker(4, 0, 0, true)        // 3
	if got := e.log.LastStableOffset(m); got != 0 {
		t.Fatalf("LSO %d with the high watermark at the commit marker %d, want 0 (the transaction's first offset)", got, m)
	}
	if got := e.log.LastStableOffset(m + 1); got != m+1 {
		t.Fatalf("LSO %d with the high watermark past the marker, want %d", got, m+1)
	}
	e.mustAppend(txnBatch(2, 5, 0, 0, "b")) // 4-5
	e.mustAppend(txnBatch(1, 6, 0, 0, "c")) // 6, open
	m2 := e.mustMarker(5, 0, 0, false)      // 7
	if got := e.log.LastStableOffset(m2); got != 4 {
		t.Fatalf("LSO %d with the high watermark at the abort marker %d, want 4", got, m2)
	}
	if got := e.log.LastStableOffset(m2 + 1); got != 6 {
		t.Fatalf("LSO %d past the abort marker, want 6 (producer 6's open transaction)", got)
	}
	if got := e.log.AbortedTxns(nil, 0, 6); len(got) != 1 || got[0].ProducerID != 5 {
		t.Fatalf("aborted transactions %+v, want producer 5's", got)
	}
	e.mustMarker(6, 0, 0, true) // 8
	if p := e.log.decided.Load(); p == nil || len(*p) != 1 || (*p)[0].first != 6 {
		t.Fatalf("decided transactions %v, want only producer 6's (the others' markers are below the high watermark seen)", p)
	}
	if got, end := e.log.LastStableOffset(e.log.EndOffset()), e.log.EndOffset(); got != end {
		t.Fatalf("LSO %d at the end %d", got, end)
	}
}

// TestOffsetForTimeFindsMarker: a lookup by timestamp can land on a
// marker, as Kafka's searchForTimestamp (it skips no control batch): the
// records of a transaction at T, its commit later, a lookup between the
// two answers the marker's offset.
func TestOffsetForTimeFindsMarker(t *testing.T) {
	e := newTestEnv(t, testConfig())
	old := time.Now().Add(-time.Minute).UnixMilli()
	b := pidBatch(2, old, 1, 0, 0)
	b.Attrs = AttrTransactional
	e.mustAppend(b.encode()) // 0-1
	m := e.mustMarker(1, 0, 0, true)
	off, _, found, err := e.log.OffsetForTime(old + 30_000)
	if err != nil || !found || off != m {
		t.Fatalf("OffsetForTime between the records and their commit: %d %v %v, want the marker at %d", off, found, err, m)
	}
	if off, _, found, err := e.log.OffsetForTime(old); err != nil || !found || off != 0 {
		t.Fatalf("OffsetForTime of the records: %d %v %v", off, found, err)
	}
}

// TestCompactionLeavesKeptMarkerAlone: a commit marker past
// delete.retention.ms that stays (its transaction's record is live) sets
// no deadline, so a later pass with nothing dirty rewrites nothing. It
// rewrote the cleaned range at every pass, as Kafka never does (it cleans
// only a log with dirty bytes).
func TestCompactionLeavesKeptMarkerAlone(t *testing.T) {
	e := newCompactTxnEnv(t)
	e.mustAppend(txnBatch(1, 1, 0, 0, "txnkey"))
	m := e.mustMarker(1, 0, 0, true)
	for range 6 {
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	e.reopen(true)
	later := time.Now().Add(25 * time.Hour)
	if st, err := e.log.Compact(later); err != nil || st.Segments == 0 {
		t.Fatalf("first pass: %+v %v", st, err)
	}
	if at := e.log.tombstonesAt.Load(); at != 0 {
		t.Fatalf("a deadline at %d for a marker kept past its time", at)
	}
	st, err := e.log.Compact(later.Add(time.Minute))
	if err != nil || st.Segments != 0 {
		t.Fatalf("second pass, nothing dirty: %+v %v, want no segment rewritten", st, err)
	}
	if got := readBatches(t, e.log, m, m+1, 1<<20); len(got) == 0 {
		t.Fatal("the marker of the live transaction is gone")
	}
}

// TestCompactionKeepsAbortWhileRemovingItsRecords: the pass that removes
// an aborted transaction's records keeps its marker and index entry
// even when both are past delete.retention.ms (a read_committed fetch
// that read those records just before must still find the abort); the
// next pass removes them.
func TestCompactionKeepsAbortWhileRemovingItsRecords(t *testing.T) {
	e := newCompactTxnEnv(t)
	e.mustAppend(txnBatch(2, 7, 0, 0, "a"))
	e.mustMarker(7, 0, 0, false)
	for range 6 {
		e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
	}
	e.reopen(true)
	slice := readBatches(t, e.log, 0, 3, 1<<20) // the aborted records, read before the pass
	if len(slice) == 0 {
		t.Fatal("nothing read")
	}
	later := time.Now().Add(25 * time.Hour)
	if _, err := e.log.Compact(later); err != nil {
		t.Fatal(err)
	}
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 1 || got[0].ProducerID != 7 {
		t.Fatalf("after the pass that removed the aborted records: aborts %+v, want producer 7's", got)
	}
	if _, err := e.log.Compact(later); err != nil {
		t.Fatal(err)
	}
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 0 {
		t.Fatalf("after the next pass: aborts %+v, want none", got)
	}
}

// TestReplayKeepsProducerLastTimestamp: a producer replayed from the log
// after an unclean stop was last seen at its batch's max timestamp, as
// Kafka's replay, not at the restart (DescribeProducers, find-hanging);
// a batch stamped in the future, or before producer.id.expiration.ms (a
// client writing old CreateTimes), counts as now, so its dedupe state is
// not dropped.
func TestReplayKeepsProducerLastTimestamp(t *testing.T) {
	e := newTestEnv(t, testConfig())
	hourAgo := time.Now().Add(-time.Hour).UnixMilli()
	e.mustAppend(pidBatch(2, hourAgo, 7, 0, 0).encode())
	e.mustAppend(pidBatch(1, time.Now().Add(time.Hour).UnixMilli(), 8, 0, 0).encode())
	e.mustAppend(pidBatch(1, time.Now().Add(-48*time.Hour).UnixMilli(), 9, 0, 0).encode())
	e.reopen(false)
	last := map[int64]int64{}
	for _, p := range e.log.Producers() {
		last[p.ID] = p.LastTimestamp
	}
	if last[7] < hourAgo || last[7] > hourAgo+1000 {
		t.Fatalf("producer 7 last seen at %d after the replay, want its batch's max timestamp about %d", last[7], hourAgo)
	}
	now := time.Now().UnixMilli()
	for _, pid := range []int64{8, 9} {
		if last[pid] > now || last[pid] < now-time.Minute.Milliseconds() {
			t.Fatalf("producer %d (a batch an hour ahead, two days behind) last seen at %d, want about now %d", pid, last[pid], now)
		}
	}
}

// TestCompactionDropsEmptyBatchOnceNotLast: an aborted transaction's data
// batch that ends a cleaning group is kept with no records (the group ends
// at the same offset); a later pass, where it no longer ends its group,
// drops it, then the abort marker and its index entry, as Kafka's cleaner
// drops empty batches and then markers with no batch left. Before, the
// empty batch was kept unchanged at every pass and pinned the marker, and
// empty batches piled up pass after pass.
func TestCompactionDropsEmptyBatchOnceNotLast(t *testing.T) {
	e := newCompactTxnEnv(t)
	e.mustAppend(txnBatch(2, 7, 0, 0, "a")) // 0-1, aborted below
	c := e.log.Config()
	small := c
	small.SegmentBytes = 1
	e.log.SetConfig(small)
	e.mustMarker(7, 0, 0, false) // 2: the first batch of a new segment
	e.log.SetConfig(c)
	e.reopen(true)
	now := time.Now().Add(25 * time.Hour)
	if _, err := e.log.Compact(now); err != nil { // cleans the first segment alone
		t.Fatal(err)
	}
	count := func() (empties, markers int) {
		for _, b := range readBatches(t, e.log, 0, e.log.EndOffset(), 1<<20) {
			h, _ := ParseBatchHeader(b)
			switch {
			case h.IsControl():
				markers++
			case h.NumRecords == 0:
				empties++
			}
		}
		return
	}
	if empties, markers := count(); empties != 1 || markers != 1 {
		t.Fatalf("after the first pass: %d empty batches, %d markers; want the group's last batch kept empty and the marker", empties, markers)
	}
	var empties2 int
	for pass := range 6 {
		for range 4 {
			e.mustAppend(plainBatch(1, 100, time.Now().UnixMilli()).encode())
		}
		e.reopen(true)
		now = now.Add(25 * time.Hour)
		if _, err := e.log.Compact(now); err != nil {
			t.Fatal(err)
		}
		if pass == 1 {
			empties2, _ = count()
		}
	}
	empties, markers := count()
	if got := e.log.AbortedTxns(nil, 0, e.log.EndOffset()); len(got) != 0 || markers != 0 {
		t.Fatalf("after 6 more dirty passes, 150 h later: %d markers, aborts indexed %+v; want the marker and its entry gone", markers, got)
	}
	// Each cleaned segment left with nothing keeps its last batch, empty;
	// no more pile up.
	if empties > empties2 || empties > len(e.log.segs) {
		t.Fatalf("empty batches: %d after the second dirty pass, %d after the sixth, over %d segments; want no more", empties2, empties, len(e.log.segs))
	}
}

// TestLSONeverPassesMarkerBeingWritten: LastStableOffset takes no lock, and
// a marker's append moved the first unstable offset past its transaction
// before noting the transaction as decided; a call in between answered the
// high watermark, past the transaction's first offset, though its marker
// was above the high watermark (the standby did not hold it). A reader
// loops on LastStableOffset while markers are appended (found by review).
func TestLSONeverPassesMarkerBeingWritten(t *testing.T) {
	e := newTestEnv(t, testConfig())
	var hw, first, bad atomic.Int64
	hw.Store(-1)
	bad.Store(-1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f, h := first.Load(), hw.Load()
			if h < 0 {
				continue
			}
			if got := e.log.LastStableOffset(h); got > f && first.Load() == f && hw.Load() == h {
				bad.Store(got)
			}
		}
	}()
	for i := 0; i < 5000 && bad.Load() < 0; i++ {
		hw.Store(-1)
		res := e.mustAppend(txnBatch(1, int64(i+1), 0, 0, "k"))
		first.Store(res.BaseOffset)
		hw.Store(e.log.EndOffset()) // the standby holds the data, not the marker
		e.mustMarker(int64(i+1), 0, 0, i%2 == 0)
	}
	close(stop)
	wg.Wait()
	if got := bad.Load(); got >= 0 {
		t.Fatalf("LSO %d past a transaction's first offset while its marker was above the high watermark", got)
	}
}

// TestLSOHeldForManyUnreplicatedMarkers: 40 transactions decided by
// markers the standby does not hold yet keep the LSO at the first one's
// first offset (it kept only 16 and passed the oldest: found by review);
// once the high watermark is noted past them they are dropped at the next
// marker.
func TestLSOHeldForManyUnreplicatedMarkers(t *testing.T) {
	e := newTestEnv(t, testConfig())
	const n = 40
	for pid := int64(1); pid <= n; pid++ {
		e.mustAppend(txnBatch(1, pid, 0, 0, "k"))
	}
	for pid := int64(1); pid <= n; pid++ {
		e.mustMarker(pid, 0, 0, pid%2 == 0)
	}
	hw := int64(n) // the standby holds the data batches, no marker
	e.log.NoteHighWatermark(hw)
	if got := e.log.LastStableOffset(hw); got != 0 {
		t.Fatalf("LSO %d with %d markers above the high watermark %d, want 0", got, n, hw)
	}
	end := e.log.EndOffset()
	e.log.NoteHighWatermark(end)
	if got := e.log.LastStableOffset(end); got != end {
		t.Fatalf("LSO %d once the standby holds every marker, want %d", got, end)
	}
	e.mustAppend(txnBatch(1, n+1, 0, 0, "k"))
	e.mustMarker(n+1, 0, 0, true)
	if p := e.log.decided.Load(); p == nil || len(*p) != 1 {
		t.Fatalf("decided transactions kept after the high watermark passed %d markers: %v, want only the newest", n, p)
	}
}

// The verification guard (Kafka's VerificationGuard): a transactional
// batch verified before a marker of its producer and appended after it is
// refused, unless its transaction is still open here at its epoch or it
// is a duplicate of a batch in the log; a batch whose guard still holds
// goes in, whatever markers other producers got meanwhile.
func TestTxnGuard(t *testing.T) {
	e := newTestEnv(t, testConfig())
	appendVerified := func(b []byte, guard uint64) (AppendResult, error) {
		t.Helper()
		return appendWaitWith(t, b, func(h *BatchHeader, done func(error)) (AppendResult, error) {
			return e.log.AppendVerified(b, h, guard, false, done)
		})
	}
	// No marker since the guard was read: the first batch of a
	// transaction goes in.
	g := e.log.TxnGuard()
	first := txnBatch(2, 1, 0, 0, "a")
	if _, err := appendVerified(first, g); err != nil {
		t.Fatalf("first batch, guard holding: %v", err)
	}
	// The transaction open here at the batch's epoch: a guard older than
	// its producer's last marker does not matter.
	e.mustMarker(9, 0, 0, true)
	if _, err := appendVerified(txnBatch(1, 1, 0, 2, "a"), 0); err != nil {
		t.Fatalf("batch of an open transaction: %v", err)
	}
	// Verified, then the transaction ended (its marker), then appended:
	// refused, and no transaction is left open.
	g = e.log.TxnGuard()
	e.mustMarker(1, 0, 0, false)
	end := e.log.EndOffset()
	_, err := appendVerified(txnBatch(1, 1, 0, 3, "a"), g)
	if !errors.Is(err, ErrTxnNotVerified) || !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("batch verified before its transaction's marker: %v, want ErrTxnNotVerified", err)
	}
	if e.log.EndOffset() != end || e.log.InTransaction(1, 0) || e.log.LastStableOffset(end) != end {
		t.Fatalf("after the refused batch: end %d (was %d), open transaction %v, LSO %d",
			e.log.EndOffset(), end, e.log.InTransaction(1, 0), e.log.LastStableOffset(end))
	}
	// A retry of a batch already in the log is its duplicate, as Kafka
	// checks duplicates before the guard.
	if res, err := appendVerified(first, g); err != nil || !res.Duplicate {
		t.Fatalf("a retried batch after the marker: %+v %v, want its duplicate", res, err)
	}
	// A guard read after the marker holds: the next transaction starts.
	if _, err := appendVerified(txnBatch(1, 1, 0, 3, "a"), e.log.TxnGuard()); err != nil {
		t.Fatalf("next transaction, fresh guard: %v", err)
	}
	// Another producer's marker after the guard does not break it.
	g = e.log.TxnGuard()
	e.mustMarker(1, 0, 0, true)
	if _, err := appendVerified(txnBatch(1, 2, 0, 0, "b"), g); err != nil {
		t.Fatalf("producer 2 after producer 1's marker: %v", err)
	}
	// A marker for a producer with nothing here (an abort of a
	// transaction that wrote elsewhere) after its guard breaks it.
	g = e.log.TxnGuard()
	e.mustMarker(3, 0, 0, false)
	if _, err := appendVerified(txnBatch(1, 3, 0, 0, "c"), g); !errors.Is(err, ErrTxnNotVerified) {
		t.Fatalf("a marker for a producer with nothing here, after its guard: %v", err)
	}
	// The producer's entry expired between the guard and the append (a
	// roll's snapshot expires idle producers): the guard still holds.
	e.mustAppend(txnBatch(1, 4, 0, 0, "d"))
	e.mustMarker(4, 0, 0, true)
	g = e.log.TxnGuard()
	e.log.mu.Lock()
	delete(e.log.producers, 4)
	e.log.mu.Unlock()
	if _, err := appendVerified(txnBatch(1, 4, 0, 1, "d"), g); err != nil {
		t.Fatalf("producer entry expired after the guard: %v", err)
	}
}
