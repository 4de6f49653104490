package netio

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
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

// rangeServer answers a request "off, n" (two uint32) with
// "head" + file[off:off+n] + "tail".
func rangeServer(t *testing.T, opts Options, f *os.File) *Server {
	s, _ := startServer(t, opts, func(req *Request) {
		off := int64(binary.BigEndian.Uint32(req.Body))
		n := int64(binary.BigEndian.Uint32(req.Body[4:]))
		req.Respond(&Response{Parts: []Part{{B: []byte("head")}, {File: f, Off: off, Len: n}, {B: []byte("tail")}}})
	})
	return s
}

func rangeReq(corr int32, off, n int) []byte {
	return appendReq(nil, 1, 4, corr, nil, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(off)), uint32(n)))
}

// TestSendfileHotAndCold: a range in the page cache goes out by sendfile;
// one that is not is read off the loop (the loop never waits for the
// disk); with sendfile off, everything is read. The bytes are the same.
func TestSendfileHotAndCold(t *testing.T) {
	f, data := testFile(t, 1<<20)
	check := func(s *Server, c *client, corr int32, off, n int, wantSendfile, wantCopied int64) {
		t.Helper()
		before := s.Stats()
		c.write(rangeReq(corr, off, n))
		got, body, err := readResp(c.r, false)
		if err != nil || got != corr {
			t.Fatalf("response %d: corr %d, %v", corr, got, err)
		}
		if want := slices.Concat([]byte("head"), data[off:off+n], []byte("tail")); !bytes.Equal(body, want) {
			t.Fatalf("response %d: %d bytes differ from the file's", corr, len(body))
		}
		after := s.Stats()
		if d := after.SendfileBytes - before.SendfileBytes; d != wantSendfile {
			t.Fatalf("response %d: %d bytes by sendfile, want %d", corr, d, wantSendfile)
		}
		if d := after.CopiedBytes - before.CopiedBytes; d != wantCopied {
			t.Fatalf("response %d: %d bytes copied, want %d", corr, d, wantCopied)
		}
	}
	s := rangeServer(t, Options{}, f)
	c := dial(t, s.Addr())
	if !cached(f, 0, 1<<20) {
		t.Skip("no page cache residency check on this kernel (cachestat needs Linux 6.5)")
	}
	check(s, c, 1, 1000, 100000, 100000, 0)
	evict(t, f)
	if cached(f, 0, 4096) {
		t.Fatal("evicted pages still reported cached")
	}
	check(s, c, 2, 5000, 60000, 0, 60000)
	// That read brought the pages back: the same range is hot now.
	check(s, c, 3, 5000, 60000, 60000, 0)

	off := rangeServer(t, Options{NoSendfile: true}, f)
	c2 := dial(t, off.Addr())
	check(off, c2, 4, 0, 1<<20, 0, 1<<20)
}

// TestSendfileSlowReader: responses far larger than the socket buffer, to
// a client that does not read for a while, interleaved with byte-only
// responses: sendfile stops at EAGAIN, the rest goes through gnet's buffer,
// and every response arrives whole and in order.
func TestSendfileSlowReader(t *testing.T) {
	f, data := testFile(t, 8<<20)
	s, _ := startServer(t, Options{}, func(req *Request) {
		if len(req.Body) < 8 {
			req.Respond(&Response{Parts: []Part{{B: []byte("small")}}})
			return
		}
		off := int64(binary.BigEndian.Uint32(req.Body))
		n := int64(binary.BigEndian.Uint32(req.Body[4:]))
		req.Respond(&Response{Parts: []Part{{B: []byte("head")}, {File: f, Off: off, Len: n}, {B: []byte("mid")}, {File: f, Off: 0, Len: 10}}})
	})
	c := dial(t, s.Addr())
	var stream []byte
	type want struct {
		corr int32
		body []byte
	}
	var wants []want
	for i := range 6 {
		corr := int32(2 * i)
		off, n := i*1000, 8<<20-i*1000
		stream = append(stream, rangeReq(corr, off, n)...)
		wants = append(wants, want{corr, slices.Concat([]byte("head"), data[off:off+n], []byte("mid"), data[:10])})
		stream = appendReq(stream, 1, 4, corr+1, nil, []byte{1})
		wants = append(wants, want{corr + 1, []byte("small")})
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
	if st.SendfileBytes == 0 || st.CopiedBytes == 0 {
		t.Fatalf("stats %+v: want both sendfile and the EAGAIN fallback used", st)
	}
}
