package netio

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// slowEcho answers each request with its body a millisecond later: a
// server slower than a client on loopback can send.
func slowEcho(req *Request) {
	go func() {
		time.Sleep(time.Millisecond)
		echo(req)
	}()
}

// flood sends n requests of size bytes as fast as the socket takes them
// while reading the answers, and checks that each came back, in order,
// with its own body. It returns the peak of the server's unframed input
// seen meanwhile.
func flood(t *testing.T, s *Server, c *client, n, size int) int64 {
	t.Helper()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if b := s.Stats().BufferedBytes; b > peak.Load() {
				peak.Store(b)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	werr := sendNumbered(c, 0, n, size)
	for i := range n {
		corr, got, err := readResp(c.r, false)
		if err != nil {
			t.Fatalf("response %d of %d: %v (server: %+v)", i, n, err, s.Stats())
		}
		if corr != int32(i) || !bytes.Equal(got, numbered(i, size)) {
			t.Fatalf("response %d: correlation id %d, %d bytes: not its request's", i, corr, len(got))
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	return peak.Load()
}

// TestPipelinerMovesOffGnet: a client that pipelines faster than it is
// served (librdkafka's non-idempotent producer, a million requests in
// flight) is pushed back by TCP, as Kafka does it, rather than closed:
// once paused with more than MoveBufferedBytes unread, its connection
// moves off gnet (which cannot stop reading) to a transport that stops
// reading while it waits. Every request is answered in order, the
// memory it holds stays far below the guard that closed it before, and
// the connection goes on working.
func TestPipelinerMovesOffGnet(t *testing.T) {
	t.Parallel()
	const guard = 4 << 20
	s, _ := startServer(t, Options{MaxInflight: 2, MoveBufferedBytes: 256 << 10, MaxBufferedBytes: guard,
		Limits: Limits{MaxRequestBytes: 1 << 20}}, slowEcho)
	c := dial(t, s.Addr())
	c.roundTrip(-1, "before")
	peak := flood(t, s, c, 600, 64<<10) // 37.5 MiB, 300 ms of service
	st := s.Stats()
	if st.Moved != 1 {
		t.Fatalf("%d connections moved off gnet, want 1 (stats %+v)", st.Moved, st)
	}
	if peak >= guard/2 {
		t.Errorf("peak unframed input %d bytes: reading did not stop", peak)
	}
	t.Logf("peak unframed input %d KiB", peak>>10)
	c.roundTrip(-2, "after")
	// Responses with file parts go out through the new transport too.
	dial(t, s.Addr()).roundTrip(-3, "another connection")
	if s.NumConns() != 2 {
		t.Errorf("%d connections open, want 2", s.NumConns())
	}
}

// bigAnswers answers each request with its first 4 bytes and 256 KiB
// more, a millisecond later, counting answers made and released.
func bigAnswers(made, released *atomic.Int64) func(*Request) {
	big := bytes.Repeat([]byte("r"), 256<<10)
	return func(req *Request) {
		go func() {
			time.Sleep(time.Millisecond)
			made.Add(1)
			req.Respond(&Response{Parts: []Part{{B: slices.Clone(req.Body[:4])}, {B: big}},
				Release: func() { released.Add(1) }})
		}()
	}
}

// numbered is request i's body: its number, then size-4 bytes of i.
func numbered(i, size int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, size)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// sendNumbered writes requests first..last-1 of size bytes, each
// starting with its number, in the background.
func sendNumbered(c *client, first, last, size int) <-chan error {
	werr := make(chan error, 1)
	go func() {
		for i := first; i < last; i++ {
			if _, err := c.c.Write(appendReq(nil, 1, 0, int32(i), nil, numbered(i, size))); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	return werr
}

// backlog makes a connection whose client has not read 5 MiB of answers
// (more than the socket holds, so gnet buffers the rest), then floods it
// until it is moving off gnet: the move must wait for those answers.
func backlog(t *testing.T, made, released *atomic.Int64) (*Server, *client) {
	s, _ := startServer(t, Options{MaxInflight: 2, MoveBufferedBytes: 128 << 10, MaxBufferedBytes: 64 << 20,
		Limits: Limits{MaxRequestBytes: 1 << 20}}, bigAnswers(made, released))
	c := dial(t, s.Addr())
	if err := <-sendNumbered(c, 0, 20, 64); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "20 answers made", func() bool { return made.Load() == 20 })
	time.Sleep(20 * time.Millisecond)
	if err := <-sendNumbered(c, 20, 120, 32<<10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the move to start", func() bool { return s.Stats().Moved == 1 })
	return s, c
}

// TestPipelinerMovesWhileResponsesWait: a move waits for the answers
// still in gnet's buffer (the client reads them late), so none is lost or
// reordered by the switch.
func TestPipelinerMovesWhileResponsesWait(t *testing.T) {
	t.Parallel()
	var made, released atomic.Int64
	_, c := backlog(t, &made, &released)
	time.Sleep(20 * time.Millisecond) // takeOver finds gnet's buffer full, and waits
	for i := range 120 {
		corr, got, err := readResp(c.r, false)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if corr != int32(i) || binary.BigEndian.Uint32(got) != uint32(i) || len(got) != 4+256<<10 {
			t.Fatalf("response %d: correlation id %d, %d bytes: not its request's", i, corr, len(got))
		}
	}
	if err := <-sendNumbered(c, 120, 121, 64); err != nil {
		t.Fatal(err)
	}
	if corr, got, err := readResp(c.r, false); err != nil || corr != 120 || binary.BigEndian.Uint32(got) != 120 {
		t.Fatalf("after the move: correlation id %d, %d bytes, %v", corr, len(got), err)
	}
	waitFor(t, "every answer released", func() bool { return released.Load() == made.Load() })
}

// TestPipelinerClosesDuringMove: a client that goes away while its move
// waits leaves nothing behind: every answer is released and the
// connection closes once (startServer checks).
func TestPipelinerClosesDuringMove(t *testing.T) {
	t.Parallel()
	var made, released atomic.Int64
	s, c := backlog(t, &made, &released)
	c.c.Close()
	waitFor(t, "the connection to close", func() bool { return s.NumConns() == 0 })
	time.Sleep(50 * time.Millisecond) // the requests read before the close are answered
	waitFor(t, "every answer released", func() bool { return released.Load() == made.Load() })
	if m := made.Load(); m < 20 {
		t.Fatalf("%d answers made, want the first 20 at least", m)
	}
}

// TestPipelinerIdleClosedDuringMove: a connection closed by samsa while
// its move waits (here the idle timeout, with the client reading
// nothing) is closed for real: the close reached the transport that had
// not started, and takeOver used to requeue itself forever while gnet
// held unread answers, leaving the socket and its buffers behind.
func TestPipelinerIdleClosedDuringMove(t *testing.T) {
	t.Parallel()
	var made, released atomic.Int64
	s, _ := backlog(t, &made, &released)
	time.Sleep(200 * time.Millisecond) // framing stops at MaxOutboundBytes of unread answers
	if s.NumConns() != 1 {
		t.Fatalf("%d connections before the idle timeout, want 1", s.NumConns())
	}
	s.SetLimits(Limits{MaxRequestBytes: 1 << 20, IdleTimeout: 100 * time.Millisecond})
	waitFor(t, "the idle connection to close", func() bool { return s.NumConns() == 0 })
	waitFor(t, "every answer released", func() bool { return released.Load() == made.Load() })
}

// TestMovedReaderNotFloodClosed: a moved connection whose client reads
// every answer is not closed as a flood. It starts on its new transport
// with more than MoveBufferedBytes unframed and with the answers queued
// during the move counted as unread, which the gnet-only flood check
// used to take for a client that sends without reading.
func TestMovedReaderNotFloodClosed(t *testing.T) {
	t.Parallel()
	var made, released atomic.Int64
	const n = 400
	s, _ := startServer(t, Options{MaxInflight: 8, MoveBufferedBytes: 2 << 20, MaxOutboundBytes: 1 << 20,
		MaxBufferedBytes: 64 << 20, Limits: Limits{MaxRequestBytes: 1 << 20}}, bigAnswers(&made, &released))
	c := dial(t, s.Addr())
	werr := sendNumbered(c, 0, n, 32<<10)
	for i := range n {
		corr, got, err := readResp(c.r, false)
		if err != nil {
			t.Fatalf("response %d: %v (stats %+v)", i, err, s.Stats())
		}
		if corr != int32(i) || binary.BigEndian.Uint32(got) != uint32(i) {
			t.Fatalf("response %d: correlation id %d: not its request's", i, corr)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.ClosedFlood != 0 || st.Moved == 0 {
		t.Fatalf("flood closes %d, moves %d: want 0 and at least 1", st.ClosedFlood, st.Moved)
	}
	waitFor(t, "every answer released", func() bool { return released.Load() == made.Load() })
}

// TestTLSPipelinerPushedBack: a TLS connection's loop takes no input
// while the connection is paused, so the same client is pushed back by
// TCP there too instead of being buffered until the guard closes it.
func TestTLSPipelinerPushedBack(t *testing.T) {
	t.Parallel()
	const guard = 4 << 20
	pki := newTestPKI(t)
	s := startTLSServerOpts(t, pki, tls.NoClientCert, Options{MaxInflight: 2, MaxBufferedBytes: guard,
		Limits: Limits{MaxRequestBytes: 1 << 20}}, slowEcho)
	c, err := dialTLS(t, s.Addr(), pki, false)
	if err != nil {
		t.Fatal(err)
	}
	peak := flood(t, s, c, 400, 64<<10)
	if peak >= guard/2 {
		t.Errorf("peak unframed input %d bytes: reading did not stop", peak)
	}
	t.Logf("peak unframed input %d KiB", peak>>10)
	c.roundTrip(-1, fmt.Sprint("after"))
}

// dialSmallWindow connects with a 256 KiB receive buffer set before the
// connect, which turns off the kernel's autotuning of the window, so what
// the socket can hold unread is bounded; over TLS if cfg is set.
func dialSmallWindow(t *testing.T, addr string, cfg *tls.Config) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 256<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		tc := tls.Client(nc, cfg)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		nc = tc
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, c: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

// TestUnreadAnswersStopFraming: a client that sends small requests with
// large answers and does not read them gets no more requests served once
// MaxOutboundBytes of answers wait (Kafka answers one at a time), so it
// cannot grow the broker's output buffers without bound; once it reads,
// everything is answered in order. Both transports.
func TestUnreadAnswersStopFraming(t *testing.T) {
	t.Parallel()
	const n = 400
	big := bytes.Repeat([]byte("a"), 256<<10) // 100 MiB for all n
	for _, tc := range []string{"gnet", "tls"} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			var served atomic.Int64
			serve := func(req *Request) {
				served.Add(1)
				req.Respond(&Response{Parts: []Part{{B: slices.Clone(req.Body[:4])}, {B: big}}})
			}
			// Requests are framed in bursts of up to MaxInflight before
			// their answers reach the output; a small one keeps the
			// bursts that pass while the output is short small too.
			opts := Options{MaxOutboundBytes: 1 << 20, MaxInflight: 4}
			var s *Server
			var c *client
			if tc == "gnet" {
				s, _ = startServer(t, opts, serve)
				c = dialSmallWindow(t, s.Addr(), nil)
			} else {
				pki := newTestPKI(t)
				s = startTLSServerOpts(t, pki, tls.NoClientCert, opts, serve)
				c = dialSmallWindow(t, s.Addr(), &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"})
			}
			if err := <-sendNumbered(c, 0, n, 8); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			// The socket's buffers hold a few answers (the client's
			// window is fixed small: loopback autotunes it to 32 MiB),
			// the server 1 MiB and the few in flight more.
			t.Logf("%d served before the client read", served.Load())
			if got := served.Load(); got > n/2 {
				t.Fatalf("%d of %d requests served with none of their answers read", got, n)
			}
			for i := range n {
				corr, got, err := readResp(c.r, false)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				if corr != int32(i) || binary.BigEndian.Uint32(got) != uint32(i) || len(got) != 4+len(big) {
					t.Fatalf("response %d: correlation id %d, %d bytes: not its request's", i, corr, len(got))
				}
			}
		})
	}
}
