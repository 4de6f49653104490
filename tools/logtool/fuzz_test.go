package logtool

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"samsa/segment"
)

// fuzzSegment is a valid segment of testBatches, with its offset index
// (every batch) and time index.
func fuzzSegment() (log, index, timeIndex []byte) {
	var off int64
	maxTs := int64(-1)
	for _, tb := range testBatches() {
		b := at(tb, off).encode()
		h, _ := segment.ParseBatchHeader(b)
		index = binary.BigEndian.AppendUint32(index, uint32(off))
		index = binary.BigEndian.AppendUint32(index, uint32(len(log)))
		if maxTs >= 0 {
			timeIndex = binary.BigEndian.AppendUint64(timeIndex, uint64(maxTs))
			timeIndex = binary.BigEndian.AppendUint32(timeIndex, uint32(off))
		}
		maxTs = max(maxTs, h.MaxTimestamp)
		log = append(log, b...)
		off = h.LastOffset() + 1
	}
	return log, index, timeIndex
}

// fixCRCs gives every batch that the length fields frame a valid CRC, so
// that the fuzzer reaches the record decoders.
func fixCRCs(data []byte) {
	for pos := 0; pos+segment.BatchHeaderSize <= len(data); {
		n := int64(int32(binary.BigEndian.Uint32(data[pos+8:]))) + 12
		if n < segment.BatchHeaderSize || n > int64(len(data)-pos) {
			return
		}
		b := data[pos : pos+int(n)]
		binary.BigEndian.PutUint32(b[17:], segment.BatchCRC(b))
		pos += int(n)
	}
}

var fuzzTypes = []string{".log", ".index", ".timeindex", ".snapshot", ""}

// fuzzDir is a directory for one fuzz process's files, rewritten by each
// input (a process runs its inputs one at a time). It is on tmpfs when
// there is one: every input writes files, and a slow input makes the
// fuzzer's minimization of what it finds take minutes.
func fuzzDir(f *testing.F) string {
	dir, err := os.MkdirTemp("/dev/shm", "logtool-fuzz")
	if err != nil {
		return f.TempDir()
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// mutate returns a copy of b with cut bytes (mod its length + 1) cut off
// the end and the byte at flip (mod the length) xored with xor, then tail
// appended: with the whole of b cut, tail alone. Small parameters against
// a fixed valid input keep what the fuzzer finds quick to minimize.
func mutate(b []byte, cut, flip, xor uint32, tail []byte) []byte {
	b = bytes.Clone(b[:int64(len(b))-int64(cut)%int64(len(b)+1)])
	if xor&0xff != 0 && len(b) > 0 {
		b[int64(flip)%int64(len(b))] ^= byte(xor)
	}
	return append(b, tail...)
}

// FuzzDump feeds damaged and arbitrary bytes to Dump as each file type: it
// must not panic or hang, the text must hold no raw control character and
// every JSON line must parse.
func FuzzDump(f *testing.F) {
	log, index, timeIndex := fuzzSegment()
	f.Add(uint32(0), uint32(0), uint32(0), false, []byte{}, uint8(0))
	f.Add(uint32(7), uint32(0), uint32(0), false, []byte{}, uint8(0))
	f.Add(uint32(0), uint32(300), uint32(4), true, make([]byte, 100), uint8(0))
	f.Add(uint32(len(log)), uint32(0), uint32(0), false, []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x3d\x00\x00\x00\x00\x02"), uint8(0))
	f.Add(uint32(0), uint32(9), uint32(1), false, []byte{}, uint8(1))
	f.Add(uint32(0), uint32(13), uint32(1), false, []byte{}, uint8(2))
	f.Add(uint32(0), uint32(0), uint32(0), false, []byte("0\n2\n0 0\n3 22\n"), uint8(4))
	dir := fuzzDir(f)
	logPath := filepath.Join(dir, "00000000000000000000.log")
	f.Fuzz(func(t *testing.T, cut, flip, xor uint32, fix bool, tail []byte, typ uint8) {
		ext := fuzzTypes[int(typ)%len(fuzzTypes)]
		var data []byte
		switch ext {
		case ".log":
			data = mutate(log, cut, flip, xor, tail)
			if fix {
				fixCRCs(data)
			}
		case ".index":
			data = mutate(index, cut, flip, xor, tail)
		case ".timeindex":
			data = mutate(timeIndex, cut, flip, xor, tail)
		default:
			data = mutate(nil, cut, flip, xor, tail)
		}
		path := filepath.Join(dir, "00000000000000000000"+ext)
		if ext == "" {
			path = filepath.Join(dir, "leader-epoch-checkpoint")
		}
		os.WriteFile(logPath, log, 0o644) // what .index entries are checked against
		os.WriteFile(path, data, 0o644)
		var text bytes.Buffer
		if err := Dump(&text, path, DumpOptions{Records: true}); err != nil {
			t.Fatalf("Dump: %v", err)
		}
		for i, c := range text.Bytes() {
			if (c < 0x20 && c != '\n') || c == 0x7f {
				t.Fatalf("raw control byte %#x at %d:\n%q", c, i, text.String())
			}
		}
		var js bytes.Buffer
		if err := Dump(&js, path, DumpOptions{Records: true, JSON: true}); err != nil {
			t.Fatalf("Dump JSON: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(js.String(), "\n"), "\n") {
			if line != "" && !json.Valid([]byte(line)) {
				t.Fatalf("invalid JSON line %q", line)
			}
		}
	})
}

// FuzzVerify verifies a partition of damaged files: it must not panic or
// hang, must not change the directory, and a problem-free report must
// mean the segment dumps as valid batches only.
func FuzzVerify(f *testing.F) {
	log, index, timeIndex := fuzzSegment()
	f.Add(uint32(0), uint32(0), uint32(0), false, []byte{}, uint32(0), uint32(0), uint32(0), []byte("0\n1\n0 0\n"))
	f.Add(uint32(30), uint32(0), uint32(0), false, []byte{}, uint32(0), uint32(0), uint32(0), []byte("0\n1\n0 0\n"))
	f.Add(uint32(0), uint32(200), uint32(0x10), true, []byte{}, uint32(3), uint32(12), uint32(1), []byte("0\n2\n5 0\n1 3\n"))
	dir := filepath.Join(fuzzDir(f), "t-0")
	os.Mkdir(dir, 0o755)
	f.Fuzz(func(t *testing.T, cut, flip, xor uint32, fix bool, tail []byte, icut, iflip, ixor uint32, ckpt []byte) {
		seg := mutate(log, cut, flip, xor, tail)
		if fix {
			fixCRCs(seg)
		}
		files := map[string][]byte{
			"00000000000000000000.log":       seg,
			"00000000000000000000.index":     mutate(index, icut, iflip, ixor, nil),
			"00000000000000000000.timeindex": mutate(timeIndex, icut>>8, iflip>>8, ixor>>8, nil),
			"leader-epoch-checkpoint":        ckpt,
		}
		for name, data := range files {
			os.WriteFile(filepath.Join(dir, name), data, 0o644)
		}
		rep, err := Verify(io.Discard, filepath.Dir(dir))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		for name, data := range files {
			if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, data) {
				t.Fatalf("Verify changed %s", name)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != len(files) {
			t.Fatalf("Verify changed the directory: %v", ents)
		}
		if len(rep.Problems) == 0 {
			var js bytes.Buffer
			Dump(&js, filepath.Join(dir, "00000000000000000000.log"), DumpOptions{JSON: true})
			for _, line := range strings.Split(strings.TrimSuffix(js.String(), "\n"), "\n") {
				if line != "" && (!strings.Contains(line, `"isvalid":true`) || strings.Contains(line, `"error"`)) {
					t.Fatalf("no problems, but the dump shows %s", line)
				}
			}
			if rep.Bytes != int64(len(seg)) || slices.Contains([]int64{rep.Partitions, rep.Segments}, 0) {
				t.Fatalf("report %+v", rep)
			}
		}
	})
}
