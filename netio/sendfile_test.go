package netio

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testFile writes n patterned bytes to a file in the test's temp dir and
// opens it.
func testFile(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*13/7 + i>>16)
	}
	path := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// evict drops a file's pages from the page cache.
func evict(t *testing.T, f *os.File) {
	t.Helper()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// rangeServer answers a request "file, off, n" (a byte and two uint32)
// with "head" + files[file][off:off+n] + "tail".
func rangeServer(t *testing.T, opts Options, files ...*os.File) *Server {
	s, _ := startServer(t, opts, func(req *Request) {
		f := files[req.Body[0]]
		off := int64(binary.BigEndian.Uint32(req.Body[1:]))
		n := int64(binary.BigEndian.Uint32(req.Body[5:]))
		req.Respond(&Response{Parts: []Part{{B: []byte("head")}, {File: f, Off: off, Len: n}, {B: []byte("tail")}}})
	})
	return s
}

func rangeReq(corr int32, file byte, off, n int) []byte {
	body := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32([]byte{file}, uint32(off)), uint32(n))
	return appendReq(nil, 1, 4, corr, nil, body)
}

// TestSendfileHotAndCold: a range in the page cache goes out by sendfile;
// one that is not has its missing chunks read into the cache off the loop
// (the loop never waits for the disk) and then goes by sendfile too; with
// sendfile off, everything is read into memory. The bytes are the same.
func TestSendfileHotAndCold(t *testing.T) {
	hot, hotData := testFile(t, 1<<20)
	// A second file that sendfile never touched: its pages are not pinned
	// by socket buffers, so eviction takes.
	cold, coldData := testFile(t, 1<<20)
	data := [][]byte{hotData, coldData}
	check := func(s *Server, c *client, corr int32, file byte, off, n int, wantSendfile, wantCopied, wantFilled int64) {
		t.Helper()
		before := s.Stats()
		c.write(rangeReq(corr, file, off, n))
		got, body, err := readResp(c.r, false)
		if err != nil || got != corr {
			t.Fatalf("response %d: corr %d, %v", corr, got, err)
		}
		if want := slices.Concat([]byte("head"), data[file][off:off+n], []byte("tail")); !bytes.Equal(body, want) {
			t.Fatalf("response %d: %d bytes differ from the file's", corr, len(body))
		}
		after := s.Stats()
		if d := after.SendfileBytes - before.SendfileBytes; d != wantSendfile {
			t.Fatalf("response %d: %d bytes by sendfile, want %d", corr, d, wantSendfile)
		}
		if d := after.CopiedBytes - before.CopiedBytes; d != wantCopied {
			t.Fatalf("response %d: %d bytes copied, want %d", corr, d, wantCopied)
		}
		if d := after.FilledBytes - before.FilledBytes; d != wantFilled {
			t.Fatalf("response %d: %d bytes filled, want %d", corr, d, wantFilled)
		}
	}
	s := rangeServer(t, Options{}, hot, cold)
	c := dial(t, s.Addr())
	if !cached(hot, 0, 1<<20) {
		t.Skip("no page cache residency check on this kernel (cachestat needs Linux 6.5)")
	}
	check(s, c, 1, 0, 1000, 100000, 100000, 0, 0)
	evict(t, cold)
	if cached(cold, 5000, 60000) {
		t.Fatal("evicted pages still reported cached")
	}
	// Filled from the start of its 256 KiB chunk to the range's end.
	check(s, c, 2, 1, 5000, 60000, 60000, 0, 65000)
	// The fill brought the pages back: the same range is hot now.
	check(s, c, 3, 1, 5000, 60000, 60000, 0, 0)

	off := rangeServer(t, Options{NoSendfile: true}, hot)
	c2 := dial(t, off.Addr())
	check(off, c2, 4, 0, 0, 1<<20, 0, 1<<20, 0)
}

// TestFill: fill reads only the chunks with pages missing, and leaves the
// range cached; a range past the file's end is not filled.
func TestFill(t *testing.T) {
	f, data := testFile(t, 1<<20)
	if !cached(f, 0, 1<<20) {
		t.Skip("no page cache residency check on this kernel (cachestat needs Linux 6.5)")
	}
	if ok, read := fill(f, 0, 1<<20); !ok || read != 0 {
		t.Fatalf("cached file: fill %v, read %d; want true, 0", ok, read)
	}
	// Whole folios leave the cache only with the whole file (a partial
	// DONTNEED keeps a large folio): evict it all, with readahead off for
	// this descriptor, and read the first chunk back.
	evict(t, f)
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, fillChunk), 0); err != nil {
		t.Fatal(err)
	}
	if !cached(f, 0, fillChunk) || cached(f, fillChunk, 4096) {
		t.Skip("the kernel did not evict the file, or read ahead past the first chunk")
	}
	if ok, read := fill(f, 10, 1<<20-10); !ok || !cached(f, 0, 1<<20) || read != 1<<20-fillChunk {
		t.Fatalf("fill %v, read %d; want true, the %d bytes after the first chunk", ok, read, 1<<20-fillChunk)
	}
	if got := make([]byte, 1<<20); func() bool { _, err := f.ReadAt(got, 0); return err != nil || !bytes.Equal(got, data) }() {
		t.Fatal("the file's bytes changed")
	}
	if ok, _ := fill(f, 1<<20-100, 200); ok {
		t.Fatal("fill past the end of the file reported cached")
	}
}

func TestSendfileSlowReader(t *testing.T) {
	f, data := testFile(t, 8<<20)
	if !cached(f, 0, 8<<20) {
		t.Skip("no page cache residency check on this kernel (cachestat needs Linux 6.5)")
	}
	bigBytes := make([]byte, 6<<20)
	for i := range bigBytes {
		bigBytes[i] = byte(i % 249)
	}
	s, _ := startServer(t, Options{Limits: Limits{MaxRequestBytes: 1 << 20}}, func(req *Request) {
		switch {
		case len(req.Body) == 1 && req.Body[0] == 'B':
			req.Respond(&Response{Parts: []Part{{B: bigBytes}}})
		case len(req.Body) < 8:
			req.Respond(&Response{Parts: []Part{{B: []byte("small")}}})
		default:
			off := int64(binary.BigEndian.Uint32(req.Body))
			n := int64(binary.BigEndian.Uint32(req.Body[4:]))
			req.Respond(&Response{Parts: []Part{{B: []byte("head")}, {File: f, Off: off, Len: n}, {B: []byte("mid")}, {File: f, Off: 0, Len: 10}}})
		}
	})
	c := dial(t, s.Addr())
	var stream []byte
	type want struct {
		corr int32
		body []byte
	}
	var wants []want
	var fileBytes int64
	corr := int32(0)
	for i := range 6 {
		off, n := i*1000, 8<<20-i*1000
		body := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(off)), uint32(n))
		stream = appendReq(stream, 1, 4, corr, nil, body)
		wants = append(wants, want{corr, slices.Concat([]byte("head"), data[off:off+n], []byte("mid"), data[:10])})
		fileBytes += int64(n) + 10
		corr++
		kind := []byte{1}
		if i%2 == 1 {
			kind = []byte{'B'}
			wants = append(wants, want{corr, bigBytes})
		} else {
			wants = append(wants, want{corr, []byte("small")})
		}
		stream = appendReq(stream, 1, 4, corr, nil, kind)
		corr++
	}
	c.write(stream)
	time.Sleep(200 * time.Millisecond) // let the socket buffer fill
	for _, w := range wants {
		corr, body, err := readResp(c.r, false)
		if err != nil || corr != w.corr || !bytes.Equal(body, w.body) {
			t.Fatalf("response %d: corr %d, %d bytes (want %d), err %v", w.corr, corr, len(body), len(w.body), err)
		}
	}
	st := s.Stats()
	if st.SendfileBytes+st.CopiedBytes != fileBytes || st.SendfileBytes == 0 {
		t.Fatalf("stats %+v: want %d file bytes, most by sendfile", st, fileBytes)
	}
	t.Logf("sendfile %d bytes, copied %d", st.SendfileBytes, st.CopiedBytes)
}

// TestSendfileCloseWhileBlocked: a client that stops reading and goes away
// in the middle of a large file response: the wait ends, the response's
// Release runs, and the server stops cleanly.
func TestSendfileCloseWhileBlocked(t *testing.T) {
	f, _ := testFile(t, 8<<20)
	var released atomic.Int32
	s, _ := startServer(t, Options{}, func(req *Request) {
		req.Respond(&Response{Parts: []Part{{B: []byte("head")}, {File: f, Off: 0, Len: 8 << 20}}, Release: func() { released.Add(1) }})
	})
	for range 3 {
		c := dial(t, s.Addr())
		c.write(appendReq(nil, 1, 4, 1, nil, []byte{1}))
		c.write(appendReq(nil, 1, 4, 2, nil, []byte{1}))
		time.Sleep(50 * time.Millisecond)
		c.c.Close()
	}
	waitFor(t, "every response released", func() bool { return released.Load() == 6 })
}

// TestSendfileEvictedWhileBlocked: the file's pages leave the page cache
// while the response waits for a full socket; the rest is then read back
// into the cache off the loop and sent by sendfile, intact.
func TestSendfileEvictedWhileBlocked(t *testing.T) {
	f, data := testFile(t, 16<<20)
	if !cached(f, 0, 16<<20) {
		t.Skip("no page cache residency check on this kernel (cachestat needs Linux 6.5)")
	}
	s, _ := startServer(t, Options{}, func(req *Request) {
		req.Respond(&Response{Parts: []Part{{B: []byte("head")}, {File: f, Off: 0, Len: 16 << 20}}})
	})
	c := dial(t, s.Addr())
	c.write(appendReq(nil, 1, 4, 1, nil, []byte{1}))
	// The socket fills; the loop waits for it. Drop what it has not sent.
	waitFor(t, "sendfile under way", func() bool { return s.Stats().SendfileBytes > 0 })
	time.Sleep(50 * time.Millisecond)
	evict(t, f)
	corr, body, err := readResp(c.r, false)
	if err != nil || corr != 1 || !bytes.Equal(body, slices.Concat([]byte("head"), data)) {
		t.Fatalf("corr %d, %d bytes, err %v", corr, len(body), err)
	}
	if st := s.Stats(); st.FilledBytes == 0 || st.CopiedBytes != 0 || st.SendfileBytes != 16<<20 {
		t.Fatalf("stats %+v: want the evicted rest filled and all %d bytes by sendfile", st, 16<<20)
	}
}

// TestSendfileWithoutCachestat: on kernels without cachestat (before 6.5:
// Debian 12, Ubuntu 22.04, RHEL 9) residency comes from mincore, so cached
// ranges still go by sendfile and evicted ones are still filled off the
// loop.
func TestSendfileWithoutCachestat(t *testing.T) {
	noCachestat.Store(true)
	t.Cleanup(func() { noCachestat.Store(false) })
	hot, hotData := testFile(t, 1<<20)
	cold, coldData := testFile(t, 1<<20)
	if !cachedMincore(hot, 0, 1<<20) || !cached(hot, 4097, 100000) {
		t.Fatal("mincore: a file just written is not reported cached")
	}
	evict(t, cold)
	if cachedMincore(cold, 5000, 60000) {
		t.Fatal("mincore: evicted pages reported cached")
	}
	data := [][]byte{hotData, coldData}
	s := rangeServer(t, Options{}, hot, cold)
	c := dial(t, s.Addr())
	for i, tc := range []struct {
		file                     byte
		off, n                   int
		sendfile, copied, filled int64
	}{
		{0, 1000, 100000, 100000, 0, 0},
		{1, 5000, 60000, 60000, 0, 65000}, // cold: filled off the loop
		{1, 5000, 60000, 60000, 0, 0},     // the fill brought it back
	} {
		corr := int32(i + 1)
		before := s.Stats()
		c.write(rangeReq(corr, tc.file, tc.off, tc.n))
		got, body, err := readResp(c.r, false)
		if err != nil || got != corr {
			t.Fatalf("response %d: corr %d, %v", corr, got, err)
		}
		if want := slices.Concat([]byte("head"), data[tc.file][tc.off:tc.off+tc.n], []byte("tail")); !bytes.Equal(body, want) {
			t.Fatalf("response %d: bytes differ from the file's", corr)
		}
		after := s.Stats()
		if d := after.SendfileBytes - before.SendfileBytes; d != tc.sendfile {
			t.Errorf("response %d: %d bytes by sendfile, want %d", corr, d, tc.sendfile)
		}
		if d := after.CopiedBytes - before.CopiedBytes; d != tc.copied {
			t.Errorf("response %d: %d bytes copied, want %d", corr, d, tc.copied)
		}
		if d := after.FilledBytes - before.FilledBytes; d != tc.filled {
			t.Errorf("response %d: %d bytes filled, want %d", corr, d, tc.filled)
		}
	}
}

// BenchmarkCached: the cost of a residency check of a 1 MiB range on the
// loop, by cachestat and by mincore (kernels before 6.5).
func BenchmarkCached(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "cached")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	b.Run("cachestat", func(b *testing.B) {
		if _, err := cachedCachestat(f, 0, 1<<20); err != nil {
			b.Skip("no cachestat:", err)
		}
		b.ReportAllocs()
		for b.Loop() {
			cachedCachestat(f, 4096, 1<<20-4096)
		}
	})
	b.Run("mincore", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !cachedMincore(f, 4096, 1<<20-4096) {
				b.Fatal("not cached")
			}
		}
	})
}
