package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// segmentBatch is one record batch found in a segment file.
type segmentBatch struct {
	pos, size  int
	baseOffset int64
	records    int
}

// parseSegment walks a segment file as Kafka's log format (v2 batches back
// to back) and fails unless every batch is whole, has magic 2 and a valid
// CRC32C, and offsets are dense from base.
func parseSegment(t *testing.T, data []byte, base int64) []segmentBatch {
	t.Helper()
	var out []segmentBatch
	next := base
	for pos := 0; pos < len(data); {
		if len(data)-pos < 61 {
			t.Fatalf("segment: %d trailing bytes at %d, less than a batch header", len(data)-pos, pos)
		}
		h := data[pos:]
		size := 12 + int(int32(binary.BigEndian.Uint32(h[8:])))
		if size < 61 || pos+size > len(data) {
			t.Fatalf("segment: batch at %d has size %d, file has %d bytes", pos, size, len(data))
		}
		if h[16] != 2 {
			t.Fatalf("segment: batch at %d has magic %d", pos, h[16])
		}
		if got, want := binary.BigEndian.Uint32(h[17:]), crc32.Checksum(h[21:size], castagnoli); got != want {
			t.Fatalf("segment: batch at %d has CRC %08x, computed %08x", pos, got, want)
		}
		bo := int64(binary.BigEndian.Uint64(h))
		if bo != next {
			t.Fatalf("segment: batch at %d has base offset %d, want %d", pos, bo, next)
		}
		n := int(binary.BigEndian.Uint32(h[57:]))
		next = bo + int64(binary.BigEndian.Uint32(h[23:])) + 1
		out = append(out, segmentBatch{pos: pos, size: size, baseOffset: bo, records: n})
		pos += size
	}
	return out
}

// segmentFiles lists a partition's segment files in offset order, with
// their base offsets, parsing each.
func segmentFiles(t *testing.T, dir string) (paths []string, batches [][]segmentBatch) {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	sort.Strings(logs) // 20-digit zero-padded names
	for _, p := range logs {
		base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(p), ".log"), 10, 64)
		if err != nil {
			t.Fatalf("segment name %s: %v", p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		batches = append(batches, parseSegment(t, data, base))
	}
	return paths, batches
}

// TestTornTail damages the end of the active segment while the broker is
// down, as a crash mid-write (or a disk) would, and checks that it starts,
// keeps every batch before the damaged one, and appends and serves new
// records from the next offset, durably.
func TestTornTail(t *testing.T) {
	t.Parallel() // its own broker and ports; mostly waits, so it overlaps the other long one
	const topic, n = "torn", 20
	// damage changes the active segment: last is its last batch, all
	// every batch in it.
	type damage func(data []byte, last segmentBatch, all []segmentBatch) []byte
	flip := func(at func(last segmentBatch) int) damage {
		return func(data []byte, last segmentBatch, _ []segmentBatch) []byte {
			data[at(last)] ^= 0x5a
			return data
		}
	}
	cases := []struct {
		name         string
		sigkill      bool
		segmentBytes string // topic segment.bytes; "" = default (one segment)
		damage       damage
		want         int // records that must survive
	}{
		{"kill/truncate-7-bytes", true, "", func(d []byte, _ segmentBatch, _ []segmentBatch) []byte { return d[:len(d)-7] }, n - 1},
		{"kill/truncate-inside-header", true, "", func(d []byte, l segmentBatch, _ []segmentBatch) []byte { return d[:l.pos+30] }, n - 1},
		{"kill/truncate-to-length-field", true, "", func(d []byte, l segmentBatch, _ []segmentBatch) []byte { return d[:l.pos+10] }, n - 1},
		{"kill/drop-whole-last-batch", true, "", func(d []byte, l segmentBatch, _ []segmentBatch) []byte { return d[:l.pos] }, n - 1},
		{"kill/append-garbage", true, "", func(d []byte, _ segmentBatch, _ []segmentBatch) []byte {
			return append(d, []byte("\x00\x00\x00\x00\x00\x00\x00\x14\x00\x00\x00\x30garbage after the last batch.......")...)
		}, n},
		{"kill/append-zeros", true, "", func(d []byte, _ segmentBatch, _ []segmentBatch) []byte { return append(d, make([]byte, 4096)...) }, n},
		{"kill/flip-value-byte", true, "", flip(func(l segmentBatch) int { return l.pos + l.size - 3 }), n - 1},
		{"kill/flip-crc", true, "", flip(func(l segmentBatch) int { return l.pos + 18 }), n - 1},
		{"kill/flip-record-count", true, "", flip(func(l segmentBatch) int { return l.pos + 60 }), n - 1},
		{"kill/length-overruns-file", true, "", func(d []byte, l segmentBatch, _ []segmentBatch) []byte {
			binary.BigEndian.PutUint32(d[l.pos+8:], uint32(l.size-12+1000))
			return d
		}, n - 1},
		{"kill/negative-length", true, "", func(d []byte, l segmentBatch, _ []segmentBatch) []byte {
			binary.BigEndian.PutUint32(d[l.pos+8:], 0xfffffff0)
			return d
		}, n - 1},
		// Recovery stops at the first bad batch, as Kafka's does: what
		// follows it is not trusted either.
		{"kill/flip-middle-batch", true, "", func(d []byte, _ segmentBatch, all []segmentBatch) []byte {
			d[all[10].pos+all[10].size-2] ^= 0xff
			return d
		}, 10},
		// Several segments: only the active one is damaged and recovered.
		{"kill/multi-segment-truncate", true, "300", func(d []byte, _ segmentBatch, _ []segmentBatch) []byte { return d[:len(d)-5] }, n - 1},
		{"kill/multi-segment-garbage", true, "300", func(d []byte, _ segmentBatch, _ []segmentBatch) []byte {
			return append(d, bytes.Repeat([]byte{0x7f}, 77)...)
		}, n},
		// After a clean stop the broker trusts its index, but not a file
		// that no longer matches it.
		{"sigterm/truncate-7-bytes", false, "", func(d []byte, _ segmentBatch, _ []segmentBatch) []byte { return d[:len(d)-7] }, n - 1},
		{"sigterm/append-garbage", false, "", func(d []byte, _ segmentBatch, _ []segmentBatch) []byte {
			return append(d, bytes.Repeat([]byte{0xee}, 100)...)
		}, n},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t)
			var cfg map[string]*string
			if tc.segmentBytes != "" {
				cfg = map[string]*string{"segment.bytes": &tc.segmentBytes}
			}
			b.createTopic(topic, 1, cfg)
			c := b.client(kgo.DefaultProduceTopic(topic))
			for i := range n {
				// One batch per record: sequential synchronous produces.
				produceSync(t, c, &kgo.Record{Value: []byte(fmt.Sprintf("record-%02d", i))})
			}
			c.Close()
			if tc.sigkill {
				b.kill()
			} else {
				b.stop()
			}
			partDir := filepath.Join(b.dataDir, topic+"-0")
			paths, segs := segmentFiles(t, partDir)
			total := 0
			for _, bs := range segs {
				total += len(bs)
			}
			if total != n {
				t.Fatalf("%d batches in the segments, want %d (one per produce)", total, n)
			}
			if tc.segmentBytes != "" && len(segs) < 3 {
				t.Fatalf("%d segments with segment.bytes=%s, want several", len(segs), tc.segmentBytes)
			}
			seg, active := paths[len(paths)-1], segs[len(segs)-1]
			if len(active) == 0 || (tc.name == "kill/flip-middle-batch" && len(active) != n) {
				t.Fatalf("active segment holds %d batches", len(active))
			}
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			data = tc.damage(data, active[len(active)-1], active)
			if err := os.WriteFile(seg, data, 0o644); err != nil {
				t.Fatal(err)
			}

			b.restart()
			check := func(want int, when string) {
				t.Helper()
				got := b.consumeAll(topic)[0]
				if len(got) != want {
					t.Fatalf("%s: %d records, want %d", when, len(got), want)
				}
				for i, r := range got {
					w := fmt.Sprintf("record-%02d", i)
					if i >= tc.want {
						w = fmt.Sprintf("after-%02d", i)
					}
					if string(r.Value) != w {
						t.Fatalf("%s: offset %d holds %q, want %q", when, i, r.Value, w)
					}
				}
			}
			check(tc.want, "after recovery")
			if end := b.endOffsets(topic)[0]; end != int64(tc.want) {
				t.Fatalf("end offset %d after recovery, want %d", end, tc.want)
			}
			c = b.client(kgo.DefaultProduceTopic(topic))
			for i := tc.want; i < tc.want+3; i++ {
				r := &kgo.Record{Value: []byte(fmt.Sprintf("after-%02d", i))}
				produceSync(t, c, r)
				if r.Offset != int64(i) {
					t.Fatalf("append after recovery at offset %d, want %d", r.Offset, i)
				}
			}
			check(tc.want+3, "after new appends")
			c.Close()

			// The repaired log and the new appends survive another crash
			// and a clean restart, and the file is well-formed again.
			b.kill()
			b.restart()
			check(tc.want+3, "after a second crash")
			b.stop()
			records := 0
			_, segs = segmentFiles(t, partDir)
			for _, bs := range segs {
				for _, bt := range bs {
					records += bt.records
				}
			}
			if records != tc.want+3 {
				t.Fatalf("segments hold %d records after a clean stop, want %d", records, tc.want+3)
			}
			b.restart()
			check(tc.want+3, "after a clean restart")
		})
	}
}
