package logtool

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"samsa/segment"
)

// lineFor returns the line of out starting with prefix and the given
// field values, or fails.
func lineFor(t *testing.T, out, prefix string, want map[string]string) map[string]string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := fields(line)
		ok := true
		for k, v := range want {
			if f[k] != v {
				ok = false
			}
		}
		if ok {
			return f
		}
	}
	t.Fatalf("no line %q with %v in:\n%s", prefix, want, out)
	return nil
}

func TestDumpText(t *testing.T) {
	b := buildLog(t)
	out := dumpString(t, b.segs[0], DumpOptions{Records: true})
	if !strings.HasPrefix(out, "Dumping "+b.segs[0]+"\nLog starting offset: 0\n") {
		t.Fatalf("header:\n%s", out)
	}
	bs := batchesOf(t, b.segs[0])
	f := func(base int64, want map[string]string) {
		t.Helper()
		var at *batchAt
		for i := range bs {
			if bs[i].h.BaseOffset == base {
				at = &bs[i]
			}
		}
		if at == nil {
			t.Fatalf("no batch at %d in the file", base)
		}
		want["position"] = strconv.FormatInt(at.pos, 10)
		want["size"] = strconv.FormatInt(at.h.Size(), 10)
		want["crc"] = strconv.FormatUint(uint64(at.h.CRC), 10)
		want["magic"] = "2"
		want["isvalid"] = "true"
		lineFor(t, out, "baseOffset: ", want)
	}
	f(0, map[string]string{"baseOffset": "0", "lastOffset": "2", "count": "3", "compresscodec": "none",
		"producerId": "-1", "baseSequence": "-1", "lastSequence": "-1", "CreateTime": strconv.FormatInt(ts0, 10),
		"isControl": "false", "partitionLeaderEpoch": "0"})
	f(3, map[string]string{"lastOffset": "7", "count": "5", "compresscodec": "lz4"})
	f(8, map[string]string{"lastOffset": "9", "count": "2", "compresscodec": "zstd"})
	f(10, map[string]string{"lastOffset": "13", "count": "4", "producerId": "1000", "producerEpoch": "0",
		"baseSequence": "0", "lastSequence": "3", "compresscodec": "none"})
	f(14, map[string]string{"isControl": "true", "isTransactional": "true", "producerId": "2000", "count": "1"})

	lineFor(t, out, "| offset: 0 ", map[string]string{"CreateTime": strconv.FormatInt(ts0, 10), "keySize": "2", "valueSize": "5",
		"sequence": "-1", "headerKeys": "[h1]", "key": "k0", "payload": "hello"})
	lineFor(t, out, "| offset: 5 ", map[string]string{"key": "c2", "payload": "compressed-2", "keySize": "2", "valueSize": "12"})
	lineFor(t, out, "| offset: 9 ", map[string]string{"key": "z1", "payload": "zstd-1"})
	lineFor(t, out, "| offset: 12 ", map[string]string{"key": "p2", "payload": "idem-2", "sequence": "2"})
	lineFor(t, out, "| offset: 14 ", map[string]string{"endTxnMarker": "COMMIT", "coordinatorEpoch": "5"})

	// Binary values are escaped, nulls left out as Kafka does, long values
	// cut, and no control character reaches the terminal.
	out = dumpString(t, b.segs[1], DumpOptions{Records: true})
	lineFor(t, out, "| offset: 15 ", map[string]string{"key": "bin", "payload": `\x00\x01ab\x0a\xff\x1b`, "valueSize": "7"})
	null := lineFor(t, out, "| offset: 16 ", map[string]string{"key": "tomb", "valueSize": "-1"})
	if _, ok := null["payload"]; ok {
		t.Fatalf("a null value printed: %v", null)
	}
	long := lineFor(t, out, "| offset: 17 ", map[string]string{"keySize": "-1", "valueSize": "200"})
	if _, ok := long["key"]; ok || long["payload"] != strings.Repeat("x", 64)+"...(+136" {
		t.Fatalf("long value: %v", long)
	}
	for i := 0; i < len(out); i++ {
		if c := out[i]; (c < 0x20 && c != '\n') || c == 0x7f {
			t.Fatalf("raw control byte %#x at %d", c, i)
		}
	}

	// MaxValueBytes applies to keys and values; without Records there
	// are no record lines.
	out = dumpString(t, b.segs[0], DumpOptions{Records: true, MaxValueBytes: 4})
	lineFor(t, out, "| offset: 3 ", map[string]string{"key": "c0", "payload": "comp...(+8"})
	out = dumpString(t, b.segs[0], DumpOptions{})
	if strings.Contains(out, "| offset") || strings.Count(out, "\nbaseOffset: ") != 5 {
		t.Fatalf("dump without records:\n%s", out)
	}
}

// jsonLine is what the tests read back of a JSON dump line.
type jsonLine struct {
	Position      *int64 `json:"position"`
	BaseOffset    *int64 `json:"baseOffset"`
	LastOffset    int64  `json:"lastOffset"`
	Count         int32  `json:"count"`
	ProducerID    int64  `json:"producerId"`
	BaseSequence  int32  `json:"baseSequence"`
	Size          int64  `json:"size"`
	CRC           uint32 `json:"crc"`
	IsValid       bool   `json:"isvalid"`
	CompressCodec string `json:"compresscodec"`
	TimestampType string `json:"timestampType"`
	MaxTimestamp  int64  `json:"maxTimestamp"`
	Error         string `json:"error"`
	Stopped       bool   `json:"stopped"`
	Records       []struct {
		Offset        int64   `json:"offset"`
		Timestamp     int64   `json:"timestamp"`
		Sequence      int32   `json:"sequence"`
		Key           *string `json:"key"`
		KeyEncoding   string  `json:"keyEncoding"`
		Value         *string `json:"value"`
		ValueEncoding string  `json:"valueEncoding"`
		ValueSize     int     `json:"valueSize"`
		Headers       []struct {
			Key   string  `json:"key"`
			Value *string `json:"value"`
		} `json:"headers"`
		ControlType      string `json:"controlType"`
		CoordinatorEpoch *int32 `json:"coordinatorEpoch"`
	} `json:"records"`
}

func parseJSONLines(t *testing.T, out string) []jsonLine {
	t.Helper()
	var ls []jsonLine
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var l jsonLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		ls = append(ls, l)
	}
	return ls
}

func TestDumpJSON(t *testing.T) {
	b := buildLog(t)
	batches, records := 0, 0
	byOffset := map[int64]int{} // record offset -> index in recs
	type rec = struct {
		key, value *string
		enc        string
		line       jsonLine
		i          int
	}
	recs := []rec{}
	for _, seg := range b.segs {
		text := dumpString(t, seg, DumpOptions{})
		out := dumpString(t, seg, DumpOptions{Records: true, JSON: true})
		for _, l := range parseJSONLines(t, out) {
			if l.BaseOffset == nil || l.Position == nil {
				t.Fatalf("not a batch: %+v", l)
			}
			// The same numbers as the text dump.
			lineFor(t, text, "baseOffset: ", map[string]string{
				"baseOffset": strconv.FormatInt(*l.BaseOffset, 10), "lastOffset": strconv.FormatInt(l.LastOffset, 10),
				"count": strconv.Itoa(int(l.Count)), "position": strconv.FormatInt(*l.Position, 10),
				"size": strconv.FormatInt(l.Size, 10), "crc": strconv.FormatUint(uint64(l.CRC), 10),
				"compresscodec": l.CompressCodec, "producerId": strconv.FormatInt(l.ProducerID, 10),
				l.TimestampType: strconv.FormatInt(l.MaxTimestamp, 10), "isvalid": strconv.FormatBool(l.IsValid),
			})
			if !l.IsValid || len(l.Records) != int(l.Count) {
				t.Fatalf("batch %d: valid %v, %d records for count %d", *l.BaseOffset, l.IsValid, len(l.Records), l.Count)
			}
			batches++
			for i, r := range l.Records {
				byOffset[r.Offset] = len(recs)
				recs = append(recs, rec{r.Key, r.Value, r.ValueEncoding, l, i})
				records++
			}
		}
	}
	if batches != b.batches || records != b.records {
		t.Fatalf("%d batches, %d records; want %d, %d", batches, records, b.batches, b.records)
	}
	get := func(off int64) rec {
		t.Helper()
		i, ok := byOffset[off]
		if !ok {
			t.Fatalf("no record at %d", off)
		}
		return recs[i]
	}
	r0 := get(0)
	if *r0.key != "k0" || *r0.value != "hello" || r0.line.Records[0].Headers[0].Key != "h1" || *r0.line.Records[0].Headers[0].Value != "v1" {
		t.Fatalf("record 0: %+v", r0.line.Records[0])
	}
	if r := get(6); *r.key != "c3" || *r.value != "compressed-3" || r.line.CompressCodec != "lz4" {
		t.Fatalf("record 6: %+v", r)
	}
	if r := get(11); r.line.Records[r.i].Sequence != 1 || r.line.ProducerID != 1000 {
		t.Fatalf("record 11: %+v", r.line.Records[r.i])
	}
	if r := get(14); r.line.Records[0].ControlType != "COMMIT" || *r.line.Records[0].CoordinatorEpoch != 5 {
		t.Fatalf("control record: %+v", r.line.Records[0])
	}
	if r := get(15); r.enc != "base64" || *r.value != base64.StdEncoding.EncodeToString(binaryValue) {
		t.Fatalf("binary value: %q %q", r.enc, *r.value)
	}
	if r := get(16); r.value != nil || *r.key != "tomb" {
		t.Fatalf("tombstone: %+v", r)
	}
	if r := get(17); r.key != nil || *r.value != longValue {
		t.Fatalf("null key, long value (JSON is not cut by default): %+v", r)
	}
	out := dumpString(t, b.segs[1], DumpOptions{Records: true, JSON: true, MaxValueBytes: 3})
	if l := parseJSONLines(t, out)[0]; *l.Records[2].Value != "xxx" || l.Records[2].ValueSize != 200 {
		t.Fatalf("MaxValueBytes in JSON: %+v", l.Records[2])
	}
}

// writeSegment writes hand-made batches back to back as a segment file.
func writeSegment(t *testing.T, path string, batches ...[]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(batches, nil), 0o644); err != nil {
		t.Fatal(err)
	}
}

func at(b testBatch, off int64) testBatch { b.baseOff = off; return b }

func TestDumpDamaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "00000000000000000000.log")
	a := at(plain(ts0, kv("a", "1"), kv("b", "2")), 0).encode()
	bad := at(plain(ts0, kv("c", "3")), 2).encode()
	bad[len(bad)-2] ^= 0x40 // in the value: the CRC no longer holds
	c := at(plain(ts0, kv("d", "4")), 3).encode()
	d := at(plain(ts0, kv("e", strings.Repeat("5", 50))), 4).encode()
	writeSegment(t, path, a, bad, c, d[:len(d)-10])
	posBad, posC, posD := len(a), len(a)+len(bad), len(a)+len(bad)+len(c)

	out := dumpString(t, path, DumpOptions{Records: true})
	h, _ := segment.ParseBatchHeader(bad)
	f := lineFor(t, out, "baseOffset: 2 ", map[string]string{"position": strconv.Itoa(posBad), "isvalid": "false"})
	if f["mismatch"] != "stored" || !strings.Contains(out, "(crc mismatch: stored "+strconv.FormatUint(uint64(h.CRC), 10)+", computed ") {
		t.Fatalf("crc line:\n%s", out)
	}
	lineFor(t, out, "baseOffset: 3 ", map[string]string{"position": strconv.Itoa(posC), "isvalid": "true"})
	lineFor(t, out, "| offset: 3 ", map[string]string{"key": "d"})
	want := "position: " + strconv.Itoa(posD) + ": truncated batch: its header says " + strconv.Itoa(len(d)) + " bytes, the file has " +
		strconv.Itoa(len(d)-10) + " from here (baseOffset: 4 lastOffset: 4); the dump stops here, " + strconv.Itoa(len(d)-10) + " bytes not shown\n"
	if !strings.HasSuffix(out, want) {
		t.Fatalf("want it to end with\n%s\ngot\n%s", want, out)
	}

	ls := parseJSONLines(t, dumpString(t, path, DumpOptions{JSON: true}))
	if len(ls) != 4 || ls[1].IsValid || !strings.Contains(ls[1].Error, "crc mismatch") || !ls[2].IsValid ||
		!ls[3].Stopped || *ls[3].Position != int64(posD) || !strings.Contains(ls[3].Error, "truncated batch") {
		t.Fatalf("JSON dump of a damaged segment: %+v", ls)
	}

	// A bad magic byte under a usable length field: skipped, and the dump
	// goes on with the next batch.
	bm := bytes.Clone(c)
	bm[16] = 7
	writeSegment(t, path, a, bm, d)
	out = dumpString(t, path, DumpOptions{})
	if !strings.Contains(out, "position: "+strconv.Itoa(len(a))+": cannot parse batch: ") || !strings.Contains(out, "skipping "+strconv.Itoa(len(c))+" bytes") {
		t.Fatalf("bad magic:\n%s", out)
	}
	lineFor(t, out, "baseOffset: 4 ", map[string]string{"isvalid": "true"})

	// Garbage stops the dump; zeros at the end are named as such.
	writeSegment(t, path, a, bytes.Repeat([]byte{0xee}, 100))
	out = dumpString(t, path, DumpOptions{})
	if !strings.HasSuffix(out, ": cannot parse batch: cannot parse batch header: magic -18: corrupt record batch; the dump stops here, 100 bytes not shown\n") {
		t.Fatalf("garbage:\n%s", out)
	}
	writeSegment(t, path, a, make([]byte, 4096))
	out = dumpString(t, path, DumpOptions{})
	if !strings.HasSuffix(out, "position: "+strconv.Itoa(len(a))+": 4096 zero bytes at the end (never written, or preallocated); the dump stops here, 4096 bytes not shown\n") {
		t.Fatalf("zero tail:\n%s", out)
	}
}

func TestDumpLogAppendTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "00000000000000000000.log")
	b := at(plain(ts0, kv("a", "1"), kv("b", "2")), 0)
	b.attrs = segment.AttrLogAppendTime
	data := b.encode()
	segment.SetLogAppendTime(data, ts0+999)
	writeSegment(t, path, data)
	out := dumpString(t, path, DumpOptions{Records: true})
	lineFor(t, out, "baseOffset: 0 ", map[string]string{"LogAppendTime": strconv.FormatInt(ts0+999, 10), "isvalid": "true"})
	lineFor(t, out, "| offset: 1 ", map[string]string{"LogAppendTime": strconv.FormatInt(ts0+999, 10), "key": "b"})
}

func TestDumpIndexes(t *testing.T) {
	b := buildLog(t)
	idx := strings.TrimSuffix(b.segs[0], ".log") + ".index"
	bs := batchesOf(t, b.segs[0])
	out := dumpString(t, idx, DumpOptions{})
	for _, x := range bs { // index.interval.bytes is 1: every batch
		lineFor(t, out, "offset: ", map[string]string{"offset": strconv.FormatInt(x.h.BaseOffset, 10), "position": strconv.FormatInt(x.pos, 10)})
	}
	if strings.Contains(out, "(") {
		t.Fatalf("a clean index shows a problem:\n%s", out)
	}
	ls := parseJSONLines(t, dumpString(t, idx, DumpOptions{JSON: true}))
	if len(ls) != len(bs) || *ls[1].Position != bs[1].pos {
		t.Fatalf("JSON index: %+v", ls)
	}

	patchFile(t, idx, 8, func(e []byte) { binary.BigEndian.PutUint32(e, 4) })                        // entry 1: offset 4
	patchFile(t, idx, 16, func(e []byte) { binary.BigEndian.PutUint32(e[4:], uint32(bs[2].pos+1)) }) // entry 2: inside a batch
	out = dumpString(t, idx, DumpOptions{})
	if !strings.Contains(out, "offset: 4 position: "+strconv.FormatInt(bs[1].pos, 10)+" (mismatch: the batch at this position starts at offset 3)") ||
		!strings.Contains(out, "position: "+strconv.FormatInt(bs[2].pos+1, 10)+" (no batch header at this position") {
		t.Fatalf("damaged index:\n%s", out)
	}

	out = dumpString(t, strings.TrimSuffix(b.segs[0], ".log")+".timeindex", DumpOptions{})
	lineFor(t, out, "timestamp: ", map[string]string{"timestamp": strconv.FormatInt(ts0+10, 10), "offset": "8"})

	snaps, _ := filepath.Glob(filepath.Join(b.partDir, "*.snapshot"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots: %v", snaps)
	}
	out = dumpString(t, snaps[0], DumpOptions{})
	lineFor(t, out, "producerId: ", map[string]string{"producerId": "1000", "producerEpoch": "0", "batches": "1"})
	lineFor(t, out, "| firstSequence: ", map[string]string{"lastSequence": "3", "firstOffset": "10", "lastOffset": "13"})

	out = dumpString(t, filepath.Join(b.partDir, "leader-epoch-checkpoint"), DumpOptions{})
	lineFor(t, out, "epoch: ", map[string]string{"epoch": "3", "startOffset": "22"})
}

func TestDumpErrors(t *testing.T) {
	dir := t.TempDir()
	f := func(path, want string) {
		t.Helper()
		err := Dump(&strings.Builder{}, path, DumpOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Dump(%s): %v, want %q", path, err, want)
		}
	}
	f(filepath.Join(dir, "00000000000000000000.log"), "no such file")
	f(filepath.Join(dir, "notes.txt"), "unknown file type")
	os.Mkdir(filepath.Join(dir, "x.log"), 0o755)
	f(filepath.Join(dir, "x.log"), "is a directory")
	// An empty segment is no error.
	writeSegment(t, filepath.Join(dir, "00000000000000000000.log"))
	if out := dumpString(t, filepath.Join(dir, "00000000000000000000.log"), DumpOptions{}); strings.Count(out, "\n") != 2 {
		t.Fatalf("empty segment:\n%s", out)
	}
}

// A batch over maxBatchRead is framed and CRC-checked without holding it;
// only its records are not shown.
func TestBigBatch(t *testing.T) {
	defer func(n int64) { maxBatchRead = n }(maxBatchRead)
	maxBatchRead = 100
	dir := filepath.Join(t.TempDir(), "x-0")
	os.Mkdir(dir, 0o755)
	markClean(t, dir)
	path := segPath(dir, 0, ".log")
	small := at(plain(ts0, kv("a", "1")), 0).encode()
	big := at(plain(ts0, kv("b", strings.Repeat("2", 5000))), 1).encode()
	writeSegment(t, path, small, big)
	out := dumpString(t, path, DumpOptions{Records: true})
	lineFor(t, out, "baseOffset: 1 ", map[string]string{"isvalid": "true", "size": strconv.Itoa(len(big))})
	if !strings.Contains(out, "\n| records not decoded: a batch of "+strconv.Itoa(len(big))+" bytes is over the ") {
		t.Fatalf("big batch:\n%s", out)
	}
	if rep, _ := verify(t, dir); len(rep.Problems) != 0 || rep.Batches != 2 || rep.Records != 2 {
		t.Fatalf("big batch: %+v", rep)
	}
	patchFile(t, path, int64(len(small)+len(big)-1000), func(p []byte) { p[0] ^= 1 })
	rep, _ := verify(t, dir)
	if p := onlyProblem(t, rep); p.Kind != "crc" || p.Offset != int64(len(small)) {
		t.Fatalf("big batch, damaged: %+v", p)
	}
}
