package segment

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"samsa/segment/compress"
)

// benchAppend appends b.N copies of batch with up to inflight appends
// outstanding, as many producers on one partition would.
func benchAppend(b *testing.B, proto []byte, sync bool) {
	const inflight = 128
	dir := filepath.Join(b.TempDir(), "p")
	disk := NewDisk(filepath.Dir(dir), 0, nil, testLogger)
	defer disk.Close()
	cfg := DefaultConfig()
	cfg.MaxMessageBytes = 1 << 30
	l, err := OpenLog(dir, disk, cfg, false, testLogger)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(false)
	h, err := ValidateBatch(proto)
	if err != nil {
		b.Fatal(err)
	}
	// Each slot's buffer is reused once its previous append completes.
	bufs := make([][]byte, inflight)
	for i := range bufs {
		bufs[i] = append([]byte(nil), proto...)
	}
	slots := make(chan int, inflight)
	for i := range inflight {
		slots <- i
	}
	dones := make([]func(error), inflight)
	for i := range dones {
		dones[i] = func(err error) {
			if err != nil {
				b.Error(err)
			}
			slots <- i
		}
	}
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		i := <-slots
		hh := h
		if _, err := l.Append(bufs[i], &hh, sync, dones[i]); err != nil {
			b.Fatal(err)
		}
	}
	for range inflight {
		<-slots
	}
	b.StopTimer()
}

func BenchmarkAppend(b *testing.B) {
	now := time.Now().UnixMilli()
	batches := []struct {
		name string
		raw  []byte
	}{
		{"1KiB", plainBatch(1, 1024, now).encode()},
		{"100x100B", plainBatch(100, 100, now).encode()},
	}
	for _, bt := range batches {
		for _, sync := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/sync=%v", bt.name, sync), func(b *testing.B) {
				benchAppend(b, bt.raw, sync)
			})
		}
	}
}

func BenchmarkRead(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "p")
	disk := NewDisk(filepath.Dir(dir), 0, nil, testLogger)
	defer disk.Close()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 16 << 20
	l, err := OpenLog(dir, disk, cfg, false, testLogger)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(false)
	proto := plainBatch(10, 100, time.Now().UnixMilli()).encode()
	const n = 20000 // about 22 MiB in two segments
	for range n {
		raw := append([]byte(nil), proto...)
		h, _ := ValidateBatch(raw)
		if _, err := l.Append(raw, &h, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	syncWait(b, l)
	end := l.EndOffset()
	for _, maxBytes := range []int64{1, 64 << 10} {
		b.Run(fmt.Sprintf("maxBytes=%d", maxBytes), func(b *testing.B) {
			sl, _ := l.Read(0, end, maxBytes)
			b.SetBytes(sl.Len)
			sl.Release()
			b.ReportAllocs()
			b.ResetTimer()
			off := int64(0)
			for range b.N {
				sl, err := l.Read(off, end, maxBytes)
				if err != nil || sl.Len == 0 {
					b.Fatal(err)
				}
				sl.Release()
				off = (off + 7919) % end
			}
		})
	}
}

func BenchmarkValidateBatch(b *testing.B) {
	raw := plainBatch(100, 100, 1).encode()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for range b.N {
		if _, err := ValidateBatch(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecoverScan(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "p")
	disk := NewDisk(filepath.Dir(dir), 0, nil, testLogger)
	l, err := OpenLog(dir, disk, DefaultConfig(), false, testLogger)
	if err != nil {
		b.Fatal(err)
	}
	proto := plainBatch(10, 100, time.Now().UnixMilli()).encode()
	for range 10000 {
		raw := append([]byte(nil), proto...)
		h, _ := ValidateBatch(raw)
		l.Append(raw, &h, false, nil)
	}
	syncWait(b, l)
	size := l.segs[0].size.Load()
	disk.Close()
	l.Close(false)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		disk := NewDisk(filepath.Dir(dir), 0, nil, testLogger)
		l, err := OpenLog(dir, disk, DefaultConfig(), false, testLogger)
		if err != nil {
			b.Fatal(err)
		}
		disk.Close()
		l.Close(false)
	}
}

// BenchmarkBatchRecords is the produce path's check of a compressed batch
// (inflate and walk the records): 1 MiB of 1 KiB records, either random
// upper-case letters, as samsa-bench's producer sends (the codecs store
// them nearly as they are), or JSON log lines (compressed 4-10x). Bytes
// are the inflated size.
func BenchmarkBatchRecords(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	payloads := map[string]func(v []byte){
		"letters": func(v []byte) {
			for j := range v {
				v[j] = 'A' + byte(rng.IntN(26))
			}
		},
		"logs": func(v []byte) {
			for j := 0; j < len(v); {
				line := fmt.Appendf(nil, `{"ts":"2026-12-05T13:%02d:%02d.%03dZ","level":"info","host":"edge-%d","msg":"reading %d","value":%d}`,
					rng.IntN(60), rng.IntN(60), rng.IntN(1000), rng.IntN(8), rng.IntN(100000), rng.IntN(1<<20))
				j += copy(v[j:], line)
			}
		},
	}
	for _, data := range []string{"letters", "logs"} {
		for _, c := range []compress.Codec{compress.Gzip, compress.Snappy, compress.LZ4, compress.Zstd} {
			b.Run(data+"/"+c.String(), func(b *testing.B) {
				tb := plainBatch(1024, 1024, 1)
				for _, r := range tb.Records {
					payloads[data](r.Value)
				}
				tb.Codec = c
				raw := tb.encode()
				h, err := ValidateBatch(raw)
				if err != nil {
					b.Fatal(err)
				}
				dst, err := BatchRecords(nil, raw, &h, MaxInflatedBatch)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(dst)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if dst, err = BatchRecords(dst, raw, &h, MaxInflatedBatch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(dst))/float64(len(raw)), "inflated/sent")
			})
		}
	}
}
