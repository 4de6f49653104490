package netio

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestManyPartsBytesOnly: a response of more byte parts than one writev
// takes (IOV_MAX, 1024) is answered whole.
func TestManyPartsBytesOnly(t *testing.T) {
	const parts = 1100
	s, _ := startServer(t, Options{}, func(req *Request) {
		ps := make([]Part, parts)
		for i := range ps {
			ps[i] = Part{B: []byte{byte(i)}}
		}
		req.Respond(&Response{Parts: ps})
	})
	c := dial(t, s.Addr())
	c.send(1, []byte("x"))
	corr, body, err := readResp(c.r, false)
	if err != nil || corr != 1 || len(body) != parts {
		t.Fatalf("corr %d, %d bytes, err %v", corr, len(body), err)
	}
}

// TestManyPartsZeroCopy: the same through sendAll, as a fetch of many
// partitions: many small file ranges (copied) between byte parts, then a
// large cached range.
func TestManyPartsZeroCopy(t *testing.T) {
	f, data := testFile(t, 1<<20)
	if !cached(f, 0, 1<<20) {
		t.Skip("no cachestat")
	}
	const n = 600 // 2 bufs each -> 1200 iovecs in the header chunk
	s, _ := startServer(t, Options{}, func(req *Request) {
		var ps []Part
		for i := 0; i < n; i++ {
			ps = append(ps, Part{B: []byte{'p'}}, Part{File: f, Off: int64(i), Len: 10})
		}
		ps = append(ps, Part{B: []byte{'b'}}, Part{File: f, Off: 0, Len: 100 << 10})
		req.Respond(&Response{Parts: ps})
	})
	c := dial(t, s.Addr())
	c.send(1, []byte("x"))
	corr, body, err := readResp(c.r, false)
	if err != nil || corr != 1 {
		t.Fatalf("corr %d, %d bytes, err %v", corr, len(body), err)
	}
	var want []byte
	for i := 0; i < n; i++ {
		want = append(want, 'p')
		want = append(want, data[i:i+10]...)
	}
	want = append(want, 'b')
	want = append(want, data[:100<<10]...)
	if !bytes.Equal(body, want) {
		t.Fatal("body differs")
	}

}

// TestDrainWaitsForPeerClosedQueue: requests received from a client that
// closed right after sending are served before Drain returns, though the
// connection is already gone.
func TestDrainWaitsForPeerClosedQueue(t *testing.T) {
	var served atomic.Int32
	s, _ := newTestServer(t, Options{}, func(req *Request) {
		time.Sleep(10 * time.Millisecond)
		served.Add(1)
		req.Done()
	})
	const n = 30
	c := dial(t, s.Addr())
	var stream []byte
	for i := range n {
		stream = appendReq(stream, 0, 0, int32(i), nil, []byte{'a'})
	}
	c.write(stream)
	c.c.Close()
	// The server has read them (NumConns is 0 before it accepts, too).
	waitFor(t, "requests read", func() bool { return s.pending.Load()+int64(served.Load()) == n })
	waitFor(t, "connection gone", func() bool { return s.NumConns() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	s.Drain(ctx)
	t.Logf("Drain returned after %v with %d of %d served", time.Since(t0), served.Load(), n)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := served.Load(); got != n {
		t.Fatalf("Drain+Stop served %d of %d requests read before the drain", got, n)
	}
}

// TestTruncatedResponseClosesBeforeNext: a file that ends before its range
// cuts a response short; the connection closes and nothing follows the
// truncated response on the wire, even with the loop's urgent task queue
// kept long (other goroutines' AsyncWritev on a busy server), where gnet
// runs the queued close after later writes.
func TestTruncatedResponseClosesBeforeNext(t *testing.T) {
	big, _ := testFile(t, 8<<20)
	small, _ := testFile(t, 1<<20)
	if !cached(big, 0, 8<<20) || !cached(small, 0, 1<<20) {
		t.Skip("no cachestat")
	}
	var n atomic.Int32
	s, _ := startServer(t, Options{NumLoops: 1}, func(req *Request) {
		if req.APIKey == 7 {
			req.Respond(&Response{Parts: []Part{{B: []byte("x")}}})
			return
		}
		switch n.Add(1) {
		case 1:
			req.Respond(&Response{Parts: []Part{{B: []byte("h")}, {File: big, Off: 0, Len: 8 << 20}}})
		case 2:
			req.Respond(&Response{Parts: []Part{{B: []byte("h")}, {File: small, Off: 0, Len: 1 << 20}}})
		default:
			req.Respond(&Response{Parts: []Part{{B: []byte("AFTER-AFTER-AFTER")}}})
		}
	})
	other := dial(t, s.Addr())
	other.write(appendReq(nil, 7, 0, 1, nil, []byte("warm")))
	if corr, _, err := readResp(other.r, false); err != nil || corr != 1 {
		t.Fatalf("warm-up: %d %v", corr, err)
	}
	var oc *Conn
	s.connMu.Lock()
	for c := range s.conns {
		oc = c
	}
	s.connMu.Unlock()
	c := dial(t, s.Addr())
	for i := range 3 {
		c.write(appendReq(nil, 1, 4, int32(i), nil, []byte{1}))
	}
	time.Sleep(200 * time.Millisecond)
	if err := os.Truncate(small.Name(), 100<<10); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for range 256 {
					_ = oc.wire().AsyncWritev(nil, nil)
				}
			}
		}()
	}
	// Response 1 whole, then response 2 cut short: nothing may follow.
	want := 8 + 1 + 8<<20 + 8 + 1 + 100<<10
	all := make([]byte, want)
	_, err := io.ReadFull(c.r, all)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("read %d bytes: %v", want, err)
	}
	c.c.SetReadDeadline(time.Now().Add(time.Second))
	if n, _ := c.r.Read(make([]byte, 64)); n > 0 {
		t.Fatalf("%d bytes follow the truncated response on the wire", n)
	}
}
