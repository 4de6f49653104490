package segment

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The tests in this file freeze samsa's on-disk formats. Kafka's tools read
// the index files and segment names, so these must not change at all.

func TestOffsetIndexFormat(t *testing.T) {
	x := offsetIndex{{rel: 0, pos: 0}, {rel: 5, pos: 4096}, {rel: 0x01020304, pos: 0x0a0b0c0d}}
	const golden = "00000000" + "00000000" + "00000005" + "00001000" + "01020304" + "0a0b0c0d"
	want, _ := hex.DecodeString(golden)
	if got := x.marshal(nil); !bytes.Equal(got, want) {
		t.Fatalf("offset index bytes\n%x\nwant\n%x", got, want)
	}
	got, err := unmarshalOffsetIndex(want, 0x0a0b0c0e)
	if err != nil || !reflect.DeepEqual(got, x) {
		t.Fatalf("decoded %v, %v", got, err)
	}
}

func TestTimeIndexFormat(t *testing.T) {
	x := timeIndex{{ts: 1700000000000, rel: 0}, {ts: 1700000000001, rel: 9}, {ts: 0x0102030405060708, rel: 0x0a0b0c0d}}
	const golden = "0000018bcfe56800" + "00000000" + "0000018bcfe56801" + "00000009" + "0102030405060708" + "0a0b0c0d"
	want, _ := hex.DecodeString(golden)
	if got := x.marshal(nil); !bytes.Equal(got, want) {
		t.Fatalf("time index bytes\n%x\nwant\n%x", got, want)
	}
	got, err := unmarshalTimeIndex(want)
	if err != nil || !reflect.DeepEqual(got, x) {
		t.Fatalf("decoded %v, %v", got, err)
	}
}

func TestIndexRejects(t *testing.T) {
	entry := func(a, b uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, a), b)
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	f := func(name string, data []byte, size int64) {
		t.Helper()
		if _, err := unmarshalOffsetIndex(data, size); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("odd size", make([]byte, 7), 100)
	f("offsets repeat", cat(entry(0, 0), entry(0, 10)), 100)
	f("positions repeat", cat(entry(0, 0), entry(1, 0)), 100)
	f("offsets go back", cat(entry(5, 0), entry(4, 10)), 100)
	f("past the log", entry(0, 100), 100)
	if x, err := unmarshalOffsetIndex(nil, 0); err != nil || len(x) != 0 {
		t.Fatalf("empty index: %v %v", x, err)
	}

	tentry := func(ts int64, rel uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(ts)), rel)
	}
	g := func(name string, data []byte) {
		t.Helper()
		if _, err := unmarshalTimeIndex(data); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	g("odd size", make([]byte, 13))
	g("time goes back", cat(tentry(10, 0), tentry(9, 1)))
	g("offset goes back", cat(tentry(10, 5), tentry(11, 4)))
}

func TestIndexLookup(t *testing.T) {
	x := offsetIndex{{0, 0}, {10, 100}, {20, 200}}
	f := func(rel, want uint32) {
		t.Helper()
		if got := x.lookup(rel); got != want {
			t.Fatalf("lookup(%d) = %d, want %d", rel, got, want)
		}
	}
	f(0, 0)
	f(9, 0)
	f(10, 100)
	f(19, 100)
	f(1000, 200)
	if (offsetIndex{}).lookup(5) != 0 {
		t.Fatal("empty index lookup")
	}

	ti := timeIndex{{100, 5}, {200, 10}, {300, 20}}
	g := func(ts int64, want uint32) {
		t.Helper()
		if got := ti.lookup(ts); got != want {
			t.Fatalf("time lookup(%d) = %d, want %d", ts, got, want)
		}
	}
	g(50, 0)
	g(100, 0) // a record at 100 may precede offset 5
	g(101, 5)
	g(200, 5)
	g(250, 10)
	g(1000, 20)
}

func TestSegmentNames(t *testing.T) {
	if p := segmentPath("/data/t-0", 0); p != "/data/t-0/00000000000000000000" {
		t.Fatalf("segment path %q", p)
	}
	if p := segmentPath("/d", 1234567); p != "/d/00000000000001234567" {
		t.Fatalf("segment path %q", p)
	}
	if p := segmentPath("/d", 1<<62); filepath.Base(p) != "04611686018427387904" {
		t.Fatalf("segment path %q", p)
	}
	f := func(name string, want int64, ok bool) {
		t.Helper()
		got, gotOK := parseSegmentName(name)
		if gotOK != ok || (ok && got != want) {
			t.Fatalf("parseSegmentName(%q) = %d, %v", name, got, gotOK)
		}
	}
	f("00000000000000000000.log", 0, true)
	f("00000000000001234567.log", 1234567, true)
	f("09223372036854775807.log", 1<<63-1, true)
	f("0000000000000000000.log", 0, false)   // 19 digits
	f("000000000000000000000.log", 0, false) // 21 digits
	f("00000000000000000000.index", 0, false)
	f("00000000000000000000.log.deleted", 0, false)
	f("0000000000000000000a.log", 0, false)
	f("+0000000000000000001.log", 0, false)
	f("-0000000000000000001.log", 0, false)
	f("99999999999999999999.log", 0, false) // overflows int64
}

// TestStrayFilesIgnored checks that files that merely look like segments or
// snapshots do not stop a log from opening.
func TestStrayFilesIgnored(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.mustAppend(plainBatch(2, 10, 1).encode())
	e.shutdown(true)
	for _, name := range []string{"+0000000000000000001.log", "-0000000000000000001.log", "junk.log", "x.snapshot", "+0000000000000000001.snapshot", "leader-epoch-checkpoint"} {
		os.WriteFile(filepath.Join(e.dir, name), []byte("junk"), 0o644)
	}
	e.open(true)
	if e.log.EndOffset() != 2 {
		t.Fatalf("end offset %d", e.log.EndOffset())
	}
	checkLog(t, e.log)
}

// TestIndexFilesDescribeTheLog reads the index files a clean close leaves as
// Kafka's tools would and checks every entry against the segment.
func TestIndexFilesDescribeTheLog(t *testing.T) {
	withActiveIndexes(t)
	cfg := testConfig()
	cfg.SegmentBytes = 6000
	e := newTestEnv(t, cfg)
	appendTimed(t, e, 80, rand.New(rand.NewPCG(31, 32)))
	e.shutdown(true)
	for _, seg := range segmentFiles(t, e.dir) {
		stem := seg[:len(seg)-4]
		base, _ := parseSegmentName(filepath.Base(seg))
		data, _ := os.ReadFile(seg)
		ob, err := os.ReadFile(stem + ".index")
		if err != nil {
			t.Fatal(err)
		}
		if len(ob) == 0 || len(ob)%8 != 0 {
			t.Fatalf("%s.index: %d bytes", stem, len(ob))
		}
		for i := 0; i < len(ob); i += 8 {
			rel := binary.BigEndian.Uint32(ob[i:])
			pos := binary.BigEndian.Uint32(ob[i+4:])
			h, err := ParseBatchHeader(data[pos:])
			if err != nil || h.BaseOffset != base+int64(rel) {
				t.Fatalf("index entry (%d, %d): batch %+v %v", rel, pos, h, err)
			}
		}
		tb, _ := os.ReadFile(stem + ".timeindex")
		if len(tb)%12 != 0 {
			t.Fatalf("%s.timeindex: %d bytes", stem, len(tb))
		}
		for i := 0; i < len(tb); i += 12 {
			ts := int64(binary.BigEndian.Uint64(tb[i:]))
			rel := int64(binary.BigEndian.Uint32(tb[i+8:]))
			// Every batch before rel has timestamps <= ts.
			for p := 0; p < len(data); {
				h, _ := ParseBatchHeader(data[p:])
				if h.BaseOffset-base >= rel {
					break
				}
				if h.MaxTimestamp > ts {
					t.Fatalf("time index entry (%d, %d) but batch at %d has max timestamp %d", ts, rel, h.BaseOffset, h.MaxTimestamp)
				}
				p += int(h.Size())
			}
		}
	}
}

func FuzzUnmarshalIndex(f *testing.F) {
	f.Add(offsetIndex{{0, 0}, {3, 100}}.marshal(nil), int64(200))
	f.Add(timeIndex{{5, 0}, {7, 3}}.marshal(nil), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, size int64) {
		if x, err := unmarshalOffsetIndex(data, size); err == nil {
			if !bytes.Equal(x.marshal(nil), data) {
				t.Fatal("offset index does not round trip")
			}
			for i := 1; i < len(x); i++ {
				if x[i].rel <= x[i-1].rel || x[i].pos <= x[i-1].pos || int64(x[i].pos) >= size {
					t.Fatalf("accepted bad entries %v", x)
				}
			}
		}
		if x, err := unmarshalTimeIndex(data); err == nil {
			if !bytes.Equal(x.marshal(nil), data) {
				t.Fatal("time index does not round trip")
			}
		}
	})
}
