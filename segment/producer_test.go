package segment

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"time"
)

func TestProducerCheck(t *testing.T) {
	ps := producerState{}
	off := int64(0)
	// apply checks a batch and, when it is new, records it.
	apply := func(epoch int16, seq int32, n int32) (*producerBatch, error) {
		h := BatchHeader{ProducerID: 1, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1, NumRecords: n, BaseOffset: off}
		dup, err := ps.check(&h)
		if err == nil && dup == nil {
			ps.update(&h, 0)
			off += int64(n)
		}
		return dup, err
	}
	f := func(name string, epoch int16, seq, n int32, wantErr error, wantDupAt int64) {
		t.Helper()
		dup, err := apply(epoch, seq, n)
		if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Fatalf("%s: error %v, want %v", name, err, wantErr)
		}
		switch {
		case wantDupAt < 0 && dup != nil:
			t.Fatalf("%s: duplicate of %+v", name, *dup)
		case wantDupAt >= 0 && (dup == nil || dup.firstOffset != wantDupAt):
			t.Fatalf("%s: duplicate %v, want one at %d", name, dup, wantDupAt)
		}
	}
	f("first batch", 0, 0, 3, nil, -1) // offsets 0-2, seq 0-2
	f("next batch", 0, 3, 2, nil, -1)  // offsets 3-4, seq 3-4
	f("retry first", 0, 0, 3, nil, 0)  // duplicate
	f("retry second", 0, 3, 2, nil, 3) // duplicate
	f("same start, other length", 0, 3, 1, ErrOutOfOrderSequence, -1)
	f("gap", 0, 6, 1, ErrOutOfOrderSequence, -1) // expected 5
	f("old, not remembered", 0, 1, 1, ErrOutOfOrderSequence, -1)
	for i := range 5 {
		f("fill", 0, int32(5+i), 1, nil, -1) // seq 5..9 at offsets 5..9
	}
	f("evicted", 0, 3, 2, ErrOutOfOrderSequence, -1) // only the last 5 are kept
	f("oldest kept", 0, 5, 1, nil, 5)
	f("continues", 0, 10, 1, nil, -1)
}

func TestProducerEpochs(t *testing.T) {
	ps := producerState{}
	h := func(epoch int16, seq, n int32) *BatchHeader {
		return &BatchHeader{ProducerID: 9, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1, NumRecords: n}
	}
	mustOK := func(name string, b *BatchHeader) {
		t.Helper()
		dup, err := ps.check(b)
		if err != nil || dup != nil {
			t.Fatalf("%s: dup %v err %v", name, dup, err)
		}
		ps.update(b, 0)
	}
	mustErr := func(name string, b *BatchHeader, want error) {
		t.Helper()
		if _, err := ps.check(b); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
	}
	mustOK("epoch 3", h(3, 0, 5))
	mustErr("older epoch", h(2, 5, 1), ErrProducerFenced)
	mustErr("older epoch retry", h(2, 0, 5), ErrProducerFenced)
	mustErr("new epoch must restart at 0", h(4, 5, 1), ErrOutOfOrderSequence)
	mustOK("new epoch at 0", h(4, 0, 2))
	mustErr("old epoch after bump", h(3, 0, 5), ErrProducerFenced)
	mustErr("old epoch's sequence in the new epoch", h(4, 5, 1), ErrOutOfOrderSequence)
	mustOK("continues", h(4, 2, 1))
}

func TestProducerUnknownStartsAnywhere(t *testing.T) {
	// Kafka accepts any sequence from a producer it has no state for
	// (ProducerAppendInfo.checkSequence: "If there is no current producer
	// epoch ... accept writes with any sequence number"); its state may have
	// expired or been removed with the log's head.
	ps := producerState{}
	b := &BatchHeader{ProducerID: 4, ProducerEpoch: 7, BaseSequence: 1234, LastOffsetDelta: 1, NumRecords: 2}
	if dup, err := ps.check(b); err != nil || dup != nil {
		t.Fatalf("unknown producer at seq 1234: dup %v err %v", dup, err)
	}
	ps.update(b, 0)
	next := &BatchHeader{ProducerID: 4, ProducerEpoch: 7, BaseSequence: 1236, NumRecords: 1}
	if _, err := ps.check(next); err != nil {
		t.Fatal(err)
	}
	gap := &BatchHeader{ProducerID: 4, ProducerEpoch: 7, BaseSequence: 1240, NumRecords: 1}
	if _, err := ps.check(gap); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after the first batch: %v", err)
	}
}

func TestProducerSequenceWraps(t *testing.T) {
	ps := producerState{}
	first := &BatchHeader{ProducerID: 1, BaseSequence: 0x7ffffffe, LastOffsetDelta: 1, NumRecords: 2}
	ps.update(first, 0)
	next := &BatchHeader{ProducerID: 1, BaseSequence: 0, LastOffsetDelta: 2, NumRecords: 3}
	if dup, err := ps.check(next); err != nil || dup != nil {
		t.Fatalf("wrapped sequence: %v %v", dup, err)
	}
	// A batch spanning the wrap is recognised as a duplicate.
	span := &BatchHeader{ProducerID: 1, BaseSequence: 0x7fffffff, LastOffsetDelta: 1, NumRecords: 2}
	ps = producerState{}
	ps.update(&BatchHeader{ProducerID: 1, BaseSequence: 0x7ffffffd, LastOffsetDelta: 1, NumRecords: 2}, 0)
	ps.update(span, 0)
	if dup, err := ps.check(span); err != nil || dup == nil || dup.lastSeq != 0 {
		t.Fatalf("retry across the wrap: %v %v", dup, err)
	}
}

func TestProducerDedupeInLog(t *testing.T) {
	e := newTestEnv(t, testConfig())
	var sent [][]byte
	seq := int32(0)
	for i := range 8 {
		b := pidBatch(1+i%3, 1000, 42, 1, seq).encode()
		seq += int32(1 + i%3)
		res := e.mustAppend(b)
		if res.Duplicate {
			t.Fatalf("batch %d is a duplicate", i)
		}
		sent = append(sent, b)
	}
	end := e.log.EndOffset()
	// Retries of any of the last five batches, with or without sync.
	for i := 3; i < 8; i++ {
		h, _ := ParseBatchHeader(sent[i])
		retry := bytes.Clone(sent[i])
		SetBaseOffset(retry, -1)
		res, err := e.append(retry, i%2 == 0)
		if err != nil || !res.Duplicate || res.BaseOffset != h.BaseOffset {
			t.Fatalf("retry of batch %d: %+v %v, want duplicate at %d", i, res, err, h.BaseOffset)
		}
	}
	if e.log.EndOffset() != end {
		t.Fatalf("retries moved the end offset from %d to %d", end, e.log.EndOffset())
	}
	if n := len(checkLog(t, e.log)); n != 8 {
		t.Fatalf("%d batches in the log, want 8", n)
	}
	// Too old to tell: out of order, as in Kafka.
	retry := bytes.Clone(sent[0])
	if _, err := e.append(retry, false); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry of an evicted batch: %v", err)
	}
	if _, err := e.append(pidBatch(1, 1, 42, 1, seq+1).encode(), false); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	if _, err := e.append(pidBatch(1, 1, 42, 0, seq).encode(), false); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("old epoch: %v", err)
	}
	if e.log.EndOffset() != end {
		t.Fatalf("rejected appends moved the end offset")
	}
	e.mustAppend(pidBatch(1, 1, 42, 1, seq).encode())
}

// TestProducerStateRestart checks dedupe and fencing across restarts, clean
// and not, with the state in a snapshot or only in the log.
func TestProducerStateRestart(t *testing.T) {
	for _, clean := range []bool{true, false} {
		cfg := testConfig()
		cfg.SegmentBytes = 1000
		e := newTestEnv(t, cfg)
		seqs := map[int64]int32{}
		last := map[int64][]byte{}
		rng := rand.New(rand.NewPCG(21, 22))
		for range 40 {
			pid := int64(rng.IntN(3))
			n := 1 + rng.IntN(4)
			b := pidBatch(n, 1000, pid, int16(pid), seqs[pid]).encode()
			seqs[pid] += int32(n)
			e.mustAppend(b)
			last[pid] = b
		}
		syncWait(t, e.log)
		for round := range 2 {
			e.reopen(clean)
			for pid, b := range last {
				h, _ := ParseBatchHeader(b)
				res, err := e.append(bytes.Clone(b), false)
				if err != nil || !res.Duplicate || res.BaseOffset != h.BaseOffset {
					t.Fatalf("clean=%v round %d: retry of producer %d: %+v %v", clean, round, pid, res, err)
				}
				if _, err := e.append(pidBatch(1, 1, pid, int16(pid)-1, seqs[pid]).encode(), false); pid > 0 && !errors.Is(err, ErrProducerFenced) {
					t.Fatalf("clean=%v: older epoch of producer %d: %v", clean, pid, err)
				}
			}
		}
		for pid := range last {
			b := pidBatch(1, 1, pid, int16(pid), seqs[pid]).encode()
			if _, err := e.append(b, false); err != nil {
				t.Fatalf("next batch of producer %d: %v", pid, err)
			}
		}
	}
}

func TestProducerExpiry(t *testing.T) {
	cfg := testConfig()
	cfg.ProducerExpirationMs = 1
	e := newTestEnv(t, cfg)
	b := pidBatch(2, time.Now().UnixMilli(), 8, 0, 0).encode()
	e.mustAppend(b)
	time.Sleep(5 * time.Millisecond)
	// Expiry runs when a snapshot is taken: at a roll or a clean close.
	e.reopen(true)
	if len(e.log.producers) != 0 {
		t.Fatalf("producer state not expired: %v", e.log.producers)
	}
	// The producer, unknown now, may continue where it was.
	if _, err := e.append(pidBatch(1, 1, 8, 0, 2).encode(), false); err != nil {
		t.Fatalf("expired producer continuing: %v", err)
	}

	// Expiry counts from the broker's clock, not the batch timestamps.
	cfg.ProducerExpirationMs = 3_600_000
	e.log.SetConfig(cfg)
	old := pidBatch(2, 1000, 9, 0, 0).encode() // timestamps from 1970
	e.mustAppend(old)
	e.reopen(true)
	if _, ok := e.log.producers[9]; !ok {
		t.Fatal("producer with old timestamps expired")
	}
}

func randomProducerState(rng *rand.Rand) producerState {
	ps := producerState{}
	for range rng.IntN(20) {
		e := &producerEntry{epoch: int16(rng.IntN(1 << 15)), lastTs: rng.Int64()}
		for range rng.IntN(maxProducerBatches + 1) {
			e.batches = append(e.batches, producerBatch{
				firstSeq: rng.Int32(), lastSeq: rng.Int32(), firstOffset: rng.Int64(), lastOffset: rng.Int64(),
			})
		}
		ps[rng.Int64()] = e
	}
	return ps
}

func TestSnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for range 100 {
		ps := randomProducerState(rng)
		data := ps.marshal([]byte("prefix"))
		if !bytes.HasPrefix(data, []byte("prefix")) {
			t.Fatal("marshal dropped dst")
		}
		got, err := unmarshalProducerState(data[6:])
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ps {
			if len(e.batches) == 0 {
				e.batches = nil
			}
		}
		if !reflect.DeepEqual(got, ps) {
			t.Fatalf("round trip:\n%v\n%v", got, ps)
		}
		// Deterministic: map order does not leak into the file.
		if !bytes.Equal(ps.marshal(nil), got.marshal(nil)) {
			t.Fatal("marshal is not deterministic")
		}
	}
}

// TestSnapshotFormat freezes the producer snapshot format. If it fails, the
// format changed: bump snapshotVersion and keep reading the old one.
func TestSnapshotFormat(t *testing.T) {
	ps := producerState{
		7: {epoch: 3, lastTs: 0x1122334455, batches: []producerBatch{
			{firstSeq: 1, lastSeq: 2, firstOffset: 10, lastOffset: 11},
			{firstSeq: 3, lastSeq: 3, firstOffset: 12, lastOffset: 12},
		}},
		-0x10: {epoch: -1, lastTs: -1, coordEpoch: 9, txnFirst: 0x77},
	}
	ps[7].coordEpoch, ps[7].txnFirst = -1, -1
	const golden = "0002" + "00000002" + // version, count
		// pid -16, epoch, lastTs, coordinator epoch, open transaction, no batches
		"fffffffffffffff0" + "ffff" + "ffffffffffffffff" + "00000009" + "0000000000000077" + "00" +
		"0000000000000007" + "0003" + "0000001122334455" + "ffffffff" + "ffffffffffffffff" + "02" + // pid 7
		"00000001" + "00000002" + "000000000000000a" + "000000000000000b" +
		"00000003" + "00000003" + "000000000000000c" + "000000000000000c"
	body, _ := hex.DecodeString(golden)
	want := binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	if got := ps.marshal(nil); !bytes.Equal(got, want) {
		t.Fatalf("snapshot bytes\n%x\nwant\n%x", got, want)
	}
	got, err := unmarshalProducerState(want)
	if err != nil {
		t.Fatal(err)
	}
	ps[-0x10].batches = nil
	if !reflect.DeepEqual(got, ps) {
		t.Fatalf("decoded %v", got)
	}
	if p := snapshotPath("/d", 42); p != "/d/00000000000000000042.snapshot" {
		t.Fatalf("snapshot path %q", p)
	}

	// Version 1, written before transactions, still loads: no open
	// transactions, no coordinator epoch.
	const v1 = "0001" + "00000001" +
		"0000000000000007" + "0003" + "0000001122334455" + "01" +
		"00000001" + "00000002" + "000000000000000a" + "000000000000000b"
	body, _ = hex.DecodeString(v1)
	got, err = unmarshalProducerState(binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))))
	if err != nil {
		t.Fatal(err)
	}
	want1 := producerState{7: {epoch: 3, lastTs: 0x1122334455, coordEpoch: -1, txnFirst: -1,
		batches: []producerBatch{{firstSeq: 1, lastSeq: 2, firstOffset: 10, lastOffset: 11}}}}
	if !reflect.DeepEqual(got, want1) {
		t.Fatalf("decoded version 1 %+v", got[7])
	}
}

func TestSnapshotRejects(t *testing.T) {
	good := producerState{1: {epoch: 1, batches: []producerBatch{{1, 2, 3, 4}}}}.marshal(nil)
	withCRC := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crcTable))
	}
	body := good[:len(good)-4]
	f := func(name string, data []byte) {
		t.Helper()
		if _, err := unmarshalProducerState(data); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("empty", nil)
	f("short", good[:9])
	f("crc", append(bytes.Clone(body), 0, 0, 0, 0))
	f("flipped", func() []byte { b := bytes.Clone(good); b[8] ^= 1; return b }())
	f("version", withCRC(append([]byte{0, 3}, body[2:]...)))
	f("count too high", withCRC(append([]byte{0, 2, 0, 0, 0, 2}, body[6:]...)))
	f("count too low", withCRC(append([]byte{0, 2, 0, 0, 0, 0}, body[6:]...)))
	f("too many batches", withCRC(func() []byte { b := bytes.Clone(body); b[6+30] = 6; return b }()))
	f("truncated batch", withCRC(body[:len(body)-1]))
	f("huge count", withCRC([]byte{0, 1, 0xff, 0xff, 0xff, 0xff}))
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	rng := rand.New(rand.NewPCG(25, 26))
	for range 4 {
		f.Add(randomProducerState(rng).marshal(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 4 && data[0]&1 == 1 {
			// Fix the CRC half the time to reach the decoder.
			body := data[:len(data)-4]
			binary.BigEndian.PutUint32(data[len(data)-4:], crc32.Checksum(body, crcTable))
		}
		ps, err := unmarshalProducerState(data)
		if err != nil {
			return
		}
		again, err := unmarshalProducerState(ps.marshal(nil))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		for _, e := range ps {
			if len(e.batches) == 0 {
				e.batches = nil
			}
		}
		if !reflect.DeepEqual(again, ps) {
			t.Fatal("re-encoding changes the state")
		}
	})
}

func TestSnapshotFilesCleanedUp(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 500
	e := newTestEnv(t, cfg)
	for i := range 20 {
		e.mustAppend(pidBatch(2, 1000, 1, 0, int32(2*i)).encode())
	}
	syncWait(t, e.log)
	syncWait(t, e.log) // the snapshot lands after the fsync that covers it
	snaps := listSnapshots(e.dir)
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v, want only the newest", snaps)
	}
	segs := segmentFiles(t, e.dir)
	last := segs[len(segs)-1]
	base, _ := parseSegmentName(last[len(last)-len("00000000000000000000.log"):])
	if snaps[0] != base {
		t.Fatalf("snapshot at %d, newest segment at %d", snaps[0], base)
	}
	os.WriteFile(snapshotPath(e.dir, 3)+".tmp", nil, 0o644)
	e.reopen(false)
	if _, err := os.Stat(snapshotPath(e.dir, 3) + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("temporary snapshot not removed")
	}
}
