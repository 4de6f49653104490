package netio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	type seen struct {
		key, ver int16
		corr     int32
		clientID string
		body     string
	}
	got := make(chan seen, 1)
	s, _ := startServer(t, Options{}, func(req *Request) {
		got <- seen{req.APIKey, req.APIVersion, req.CorrelationID, req.ClientID, string(req.Body)}
		req.Respond(&Response{
			HeaderV1: req.APIVersion >= 3,
			Parts:    []Part{{B: []byte("ans:")}, {B: slices.Clone(req.Body)}, {B: nil}},
		})
	})
	c := dial(t, s.Addr())
	f := func(key, ver int16, corr int32, clientID *string, body string) {
		t.Helper()
		c.write(appendReq(nil, key, ver, corr, clientID, []byte(body)))
		want := seen{key, ver, corr, "", body}
		if clientID != nil {
			want.clientID = *clientID
		}
		if r := <-got; r != want {
			t.Fatalf("handler saw %+v, want %+v", r, want)
		}
		// Check the framing byte by byte.
		var wantFrame []byte
		n := 4 + 4 + len(body)
		if ver >= 3 {
			n++
		}
		wantFrame = binary.BigEndian.AppendUint32(wantFrame, uint32(n))
		wantFrame = binary.BigEndian.AppendUint32(wantFrame, uint32(corr))
		if ver >= 3 {
			wantFrame = append(wantFrame, 0)
		}
		wantFrame = append(wantFrame, "ans:"+body...)
		frame := make([]byte, len(wantFrame))
		if _, err := io.ReadFull(c.r, frame); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame, wantFrame) {
			t.Fatalf("frame %x, want %x", frame, wantFrame)
		}
	}
	f(18, 3, 7, strp("abc"), "hello")
	f(3, 0, -5, nil, "")
	f(0, 9, 1<<30, strp(""), "x")
	f(-1, -1, 0, strp(strings.Repeat("c", 300)), strings.Repeat("body", 1000))
}

// TestFragmented writes a pipelined stream in small random pieces, so frames
// and their size prefixes straddle gnet's read buffer and inbound buffer.
func TestFragmented(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{}, echo)
	c := dial(t, s.Addr())
	var stream []byte
	for i := range 30 {
		stream = appendReq(stream, 1, 0, int32(i), strp("frag"), bytes.Repeat([]byte{byte(i)}, i*7))
	}
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for b := stream; len(b) > 0; {
			n := min(len(b), 1+rng.IntN(40))
			if _, err := c.c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for i := range 30 {
		corr, body := c.recv()
		if corr != int32(i) || !bytes.Equal(body, bytes.Repeat([]byte{byte(i)}, i*7)) {
			t.Fatalf("response %d: corr %d, %d bytes", i, corr, len(body))
		}
	}
}

// TestOrdering completes pipelined requests out of order on many goroutines;
// responses must leave in request order, also when the pipeline is deeper
// than MaxInflight and reading pauses.
func TestOrdering(t *testing.T) {
	t.Parallel()
	for _, inflight := range []int{64, 8, 3, 1} {
		t.Run(fmt.Sprintf("inflight=%d", inflight), func(t *testing.T) {
			t.Parallel()
			var peak atomic.Int32
			var outOfOrder atomic.Bool
			var lastDone atomic.Int32
			lastDone.Store(-1)
			s, _ := startServer(t, Options{MaxInflight: inflight}, func(req *Request) {
				// Requests of this connection in the handler.
				outstanding, _ := req.Conn.State.(*atomic.Int32)
				if outstanding == nil {
					outstanding = new(atomic.Int32)
					req.Conn.State = outstanding
				}
				n := outstanding.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				body := slices.Clone(req.Body)
				corr := req.CorrelationID
				go func() {
					time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
					outstanding.Add(-1)
					if lastDone.Swap(corr) > corr { // across connections, good enough
						outOfOrder.Store(true)
					}
					req.Respond(&Response{Parts: []Part{{B: body}}})
				}()
			})
			var wg sync.WaitGroup
			for range 4 {
				c := dial(t, s.Addr())
				wg.Go(func() {
					var stream []byte
					for i := range 50 {
						stream = appendReq(stream, 1, 0, int32(i), nil, fmt.Appendf(nil, "req-%d", i))
					}
					go c.c.Write(stream) //nolint:errcheck // the reader reports failures
					for i := range 50 {
						corr, body, err := readResp(c.r, false)
						if err != nil {
							t.Errorf("response %d: %v", i, err)
							return
						}
						if corr != int32(i) || string(body) != fmt.Sprintf("req-%d", i) {
							t.Errorf("response %d: corr %d body %q", i, corr, body)
							return
						}
					}
				})
			}
			wg.Wait()
			if p := peak.Load(); p > int32(inflight) {
				t.Errorf("%d requests in the handler at once, MaxInflight %d", p, inflight)
			}
			if inflight > 1 && !outOfOrder.Load() {
				t.Logf("handlers happened to complete in order")
			}
		})
	}
}

// TestDoneInterleaved mixes requests without a response (acks=0) with
// normal ones.
func TestDoneInterleaved(t *testing.T) {
	t.Parallel()
	for _, inflight := range []int{64, 4, 1} {
		t.Run(fmt.Sprintf("inflight=%d", inflight), func(t *testing.T) {
			t.Parallel()
			s, _ := startServer(t, Options{MaxInflight: inflight}, func(req *Request) {
				quiet := req.Body[0] == 0
				go func() {
					time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
					if quiet {
						req.Done()
					} else {
						req.Respond(&Response{Parts: []Part{{B: []byte("ok")}}})
					}
				}()
			})
			c := dial(t, s.Addr())
			var stream []byte
			var want []int32
			for i := range 60 {
				quiet := i%3 != 0 || i > 50 // a run of Done at the end
				b := byte(1)
				if quiet {
					b = 0
				} else {
					want = append(want, int32(i))
				}
				stream = appendReq(stream, 0, 0, int32(i), nil, []byte{b})
			}
			c.write(stream)
			for _, w := range want {
				if corr, _ := c.recv(); corr != w {
					t.Fatalf("got corr %d, want %d", corr, w)
				}
			}
			// Nothing stalled behind the trailing Dones.
			c.write(appendReq(nil, 0, 0, 1000, nil, []byte{1}))
			if corr, _ := c.recv(); corr != 1000 {
				t.Fatalf("got corr %d, want 1000", corr)
			}
		})
	}
}

func TestFileParts(t *testing.T) {
	t.Parallel()
	f, data := testFile(t, 1<<20)

	var released atomic.Int32
	s, _ := startServer(t, Options{}, func(req *Request) {
		off := int64(binary.BigEndian.Uint32(req.Body))
		n := int64(binary.BigEndian.Uint32(req.Body[4:]))
		req.Respond(&Response{
			HeaderV1: true,
			Parts: []Part{
				{B: []byte("head")},
				{File: f, Off: off, Len: n},
				{File: f, Off: 5, Len: 0},
				{B: []byte("tail")},
				{File: f, Off: 0, Len: 3},
			},
			Release: func() { released.Add(1) },
		})
	})
	c := dial(t, s.Addr())
	ask := func(corr int32, off, n uint32) {
		c.write(appendReq(nil, 1, 12, corr, nil, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, off), n)))
	}
	for i, r := range [][2]uint32{{1000, 300000}, {0, 1 << 20}, {12345, 1}, {7, 0}} {
		ask(int32(i), r[0], r[1])
		corr, body, err := readResp(c.r, true)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Concat([]byte("head"), data[r[0]:r[0]+r[1]], []byte("tail"), data[:3])
		if corr != int32(i) || !bytes.Equal(body, want) {
			t.Fatalf("range %v: corr %d, %d bytes, want %d", r, corr, len(body), len(want))
		}
	}
	waitFor(t, "Release", func() bool { return released.Load() == 4 })

	// A range past the end of the file cannot be sent: the connection
	// closes and Release still runs once.
	ask(9, 1<<20-10, 100)
	c.expectClosed()
	waitFor(t, "Release", func() bool { return released.Load() == 5 })
	time.Sleep(10 * time.Millisecond)
	if n := released.Load(); n != 5 {
		t.Fatalf("Release ran %d times, want 5", n)
	}
}

func TestFrameLimits(t *testing.T) {
	t.Parallel()
	const max = 1024
	s, h := startServer(t, Options{Limits: Limits{MaxRequestBytes: max}}, echo)
	healthy := dial(t, s.Addr())
	healthy.roundTrip(0, "before")

	frame := func(size int32, rest []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(size)), rest...)
	}
	header := func(clientIDLen int16) []byte {
		b := make([]byte, 10)
		binary.BigEndian.PutUint16(b[8:], uint16(clientIDLen))
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"size 0", frame(0, nil)},
		{"size 7", frame(7, make([]byte, 7))},
		{"size 8 without client id length", frame(8, make([]byte, 8))},
		{"size 9", frame(9, make([]byte, 9))},
		{"negative size", frame(-1, make([]byte, 20))},
		{"most negative size", frame(-1<<31, nil)},
		{"size over max", frame(max+1, nil)},
		{"size over max with the data", frame(max+1, make([]byte, max+1))},
		{"client id past the frame", frame(12, append(header(3), 'a', 'b'))},
		{"client id far past the frame", frame(10, header(32767))},
		{"negative client id length", frame(12, append(header(-2), 'a', 'b'))},
		{"http", []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")},
		{"tls hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}},
	} {
		c := dial(t, s.Addr())
		c.write(tc.b)
		if err := waitClosed(c.c, c.r); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		// A bad frame right behind a good one: the good one reaches the
		// handler (its response may be lost, as with Kafka).
		c2 := dial(t, s.Addr())
		c2.write(slices.Concat(appendReq(nil, 1, 0, 1, nil, []byte("good")), tc.b))
		if err := waitClosed(c2.c, c2.r); err != nil {
			t.Errorf("%s after a good request: %v", tc.name, err)
		}
	}
	healthy.roundTrip(1, "during")

	// A frame of exactly the limit is fine.
	body := bytes.Repeat([]byte{'m'}, max-10)
	healthy.write(appendReq(nil, 1, 0, 2, nil, body))
	if corr, got := healthy.recv(); corr != 2 || !bytes.Equal(got, body) {
		t.Fatalf("max-size frame: corr %d, %d bytes", corr, len(got))
	}

	// Half a frame, then the client goes away.
	for _, n := range []int{2, 4, 10, 200} {
		c := dial(t, s.Addr())
		c.write(appendReq(nil, 1, 0, 3, nil, make([]byte, 500))[:n])
		time.Sleep(5 * time.Millisecond)
		c.c.Close()
	}
	waitFor(t, "truncated connections to close", func() bool { return s.NumConns() == 1 })
	healthy.roundTrip(3, "after")
	// The handler saw only good requests: the healthy connection's, and
	// some of those right before a bad frame (their connection may be
	// closed before the worker gets to them).
	if n := h.served.Load(); n < 4 || n > 4+13 {
		t.Errorf("handler served %d requests, want 4 to %d", n, 4+13)
	}
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{MaxConnections: 2}}, echo)
	a, b := dial(t, s.Addr()), dial(t, s.Addr())
	a.roundTrip(1, "a")
	b.roundTrip(1, "b")
	extra := dial(t, s.Addr())
	extra.expectClosed()
	a.c.Close()
	waitFor(t, "a to close", func() bool { return s.NumConns() == 1 })
	c := dial(t, s.Addr())
	c.roundTrip(2, "c")
	b.roundTrip(2, "b")
	if n := s.NumConns(); n != 2 {
		t.Fatalf("NumConns %d, want 2", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	// Generous against a starved test goroutine (-race on two CPUs): the
	// busy connection talks every idle/10.
	const idle = 400 * time.Millisecond
	s, _ := startServer(t, Options{Limits: Limits{IdleTimeout: idle}}, func(req *Request) {
		if req.APIKey == 9 { // slow: longer than the idle timeout
			go func() {
				time.Sleep(idle * 3 / 2)
				echo(req)
			}()
			return
		}
		echo(req)
	})
	idleConn, busy, slow := dial(t, s.Addr()), dial(t, s.Addr()), dial(t, s.Addr())
	start := time.Now()
	idleConn.roundTrip(1, "x")
	slow.write(appendReq(nil, 9, 0, 5, nil, []byte("slow")))

	closed := make(chan time.Duration, 1)
	go func() {
		if err := waitClosed(idleConn.c, idleConn.r); err != nil {
			t.Error(err)
		}
		closed <- time.Since(start)
	}()
	slowDone := make(chan error, 1)
	go func() {
		// The slow request outlives the idle timeout; the connection
		// stays open, and counts as active from its response on.
		if corr, body, err := readResp(slow.r, false); err != nil || corr != 5 || string(body) != "slow" {
			slowDone <- fmt.Errorf("slow request: corr %d %q %v", corr, body, err)
			return
		}
		if _, err := slow.c.Write(appendReq(nil, 1, 0, 6, nil, []byte("still open"))); err != nil {
			slowDone <- err
			return
		}
		if corr, body, err := readResp(slow.r, false); err != nil || corr != 6 || string(body) != "still open" {
			slowDone <- fmt.Errorf("after the slow request: corr %d %q %v", corr, body, err)
			return
		}
		slowDone <- nil
	}()

	var d time.Duration
	idleClosed := false
	last := time.Now()
	for i := 0; !idleClosed || i < 20; i++ {
		select {
		case d = <-closed:
			idleClosed = true
		default:
		}
		busy.send(int32(i), []byte("keepalive"))
		if _, _, err := readResp(busy.r, false); err != nil {
			t.Fatalf("busy connection, %v after its last response: %v", time.Since(last), err)
		}
		last = time.Now()
		time.Sleep(idle / 10)
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if d < idle || d > idle+tickInterval(&Limits{IdleTimeout: idle})+time.Second {
		t.Errorf("idle connection closed after %v, timeout %v", d, idle)
	}
	busy.expectClosed() // once it stops talking
}

func TestTickInterval(t *testing.T) {
	f := func(idle, want time.Duration) {
		t.Helper()
		if got := tickInterval(&Limits{IdleTimeout: idle}); got != want {
			t.Errorf("tickInterval(%v) = %v, want %v", idle, got, want)
		}
	}
	f(10*time.Minute, time.Second)
	f(2*time.Second, time.Second)
	f(time.Second, 500*time.Millisecond)
	f(100*time.Millisecond, 50*time.Millisecond)
	f(time.Millisecond, 10*time.Millisecond)
	f(0, time.Second)
	// The shortest of the timeouts sets it.
	if got := tickInterval(&Limits{IdleTimeout: time.Minute, FrameStallTimeout: 300 * time.Millisecond, FrameTimeout: time.Hour}); got != 150*time.Millisecond {
		t.Errorf("tickInterval with a 300ms stall timeout = %v", got)
	}
}

func TestBigMessages(t *testing.T) {
	t.Parallel()
	const max = 4 << 20
	s, _ := startServer(t, Options{MaxInflight: 2, Limits: Limits{MaxRequestBytes: max}}, func(req *Request) {
		if req.APIKey == 1 { // a big generated response
			n := int(binary.BigEndian.Uint32(req.Body))
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i % 251)
			}
			go req.Respond(&Response{Parts: []Part{{B: b[:n/2]}, {B: b[n/2:]}}})
			return
		}
		echo(req)
	})
	c := dial(t, s.Addr())
	big := make([]byte, max-10)
	for i := range big {
		big[i] = byte(i % 253)
	}
	var stream []byte
	const n = 6
	for i := range n {
		if i%2 == 0 {
			stream = appendReq(stream, 0, 0, int32(i), nil, big)
		} else {
			stream = appendReq(stream, 1, 0, int32(i), nil, binary.BigEndian.AppendUint32(nil, 9<<20))
		}
	}
	// Write while reading: neither side's buffers hold it all.
	go c.c.Write(stream) //nolint:errcheck // the reader reports failures
	for i := range n {
		corr, body := c.recv()
		if corr != int32(i) {
			t.Fatalf("corr %d, want %d", corr, i)
		}
		if i%2 == 0 {
			if !bytes.Equal(body, big) {
				t.Fatalf("echo %d: %d bytes differ", i, len(body))
			}
			continue
		}
		if len(body) != 9<<20 {
			t.Fatalf("response %d: %d bytes", i, len(body))
		}
		for j, b := range body {
			if b != byte(j%251) {
				t.Fatalf("response %d: byte %d is %d", i, j, b)
			}
		}
	}
}

// TestReleaseWhenClosed: responses to a connection that is gone are
// dropped, and Release runs exactly once for each.
func TestReleaseWhenClosed(t *testing.T) {
	t.Parallel()
	var released atomic.Int32
	hold := make(chan struct{})
	s, h := startServer(t, Options{}, func(req *Request) {
		go func() {
			<-hold
			req.Respond(&Response{Parts: []Part{{B: make([]byte, 1<<20)}}, Release: func() { released.Add(1) }})
		}()
	})
	c := dial(t, s.Addr())
	var stream []byte
	for i := range 10 {
		stream = appendReq(stream, 1, 0, int32(i), nil, nil)
	}
	c.write(stream)
	waitFor(t, "requests", func() bool { return h.served.Load() == 10 })
	c.c.Close()
	waitFor(t, "close", func() bool { return s.NumConns() == 0 })
	close(hold)
	waitFor(t, "Release", func() bool { return released.Load() == 10 })
}

// TestHandlerClose: Conn.Close from the handler, with responses pending.
func TestHandlerClose(t *testing.T) {
	t.Parallel()
	var released atomic.Int32
	s, _ := startServer(t, Options{}, func(req *Request) {
		if string(req.Body) == "bye" {
			req.Done()
			req.Conn.Close("test says bye")
			return
		}
		body := slices.Clone(req.Body)
		go req.Respond(&Response{Parts: []Part{{B: body}}, Release: func() { released.Add(1) }})
	})
	c := dial(t, s.Addr())
	c.roundTrip(1, "hi")
	var stream []byte
	for i := range 20 {
		stream = appendReq(stream, 1, 0, int32(i), nil, []byte("x"))
	}
	c.write(append(stream, appendReq(nil, 1, 0, 99, nil, []byte("bye"))...))
	c.expectClosed()
	waitFor(t, "Release", func() bool { return released.Load() == 21 })
}

func TestRespondTwicePanics(t *testing.T) {
	t.Parallel()
	msg := make(chan any, 1)
	s, _ := startServer(t, Options{}, func(req *Request) {
		if req.CorrelationID != 1 {
			echo(req)
			return
		}
		req.Done()
		defer func() { msg <- recover() }()
		req.Done()
	})
	c := dial(t, s.Addr())
	c.send(1, nil)
	if m, _ := (<-msg).(string); !strings.HasPrefix(m, "BUG: ") {
		t.Fatalf("second Done: recovered %v", m)
	}
	c.roundTrip(2, "still in order")
}

// TestDrainStop is not parallel: it counts goroutines.
func TestDrainStop(t *testing.T) {
	before := runtime.NumGoroutine()
	const respBytes = 3 << 20
	hold := make(chan struct{})
	var released atomic.Int32
	s, h := newTestServer(t, Options{NumLoops: 2}, func(req *Request) {
		if req.APIKey == 0 {
			echo(req)
			return
		}
		go func() {
			<-hold
			b := bytes.Repeat([]byte{byte(req.CorrelationID)}, respBytes)
			req.Respond(&Response{Parts: []Part{{B: b}}, Release: func() { released.Add(1) }})
		}()
	})
	const conns, perConn = 3, 4
	var wg sync.WaitGroup
	clients := make([]*client, conns)
	for i := range clients {
		c := dial(t, s.Addr())
		clients[i] = c
		c.write(appendReq(nil, 0, 0, -1, nil, []byte("warm")))
		if corr, body := c.recv(); corr != -1 || string(body) != "warm" {
			t.Fatalf("warm-up: corr %d %q", corr, body)
		}
		var stream []byte
		for j := range perConn {
			stream = appendReq(stream, 1, 0, int32(j), nil, nil)
		}
		c.write(stream)
		// Read slowly so responses pile up in gnet's outbound buffers.
		wg.Go(func() {
			for j := range perConn {
				time.Sleep(20 * time.Millisecond)
				corr, body, err := readResp(c.r, false)
				if err != nil || corr != int32(j) || len(body) != respBytes || body[respBytes-1] != byte(j) {
					t.Errorf("conn %d response %d: corr %d, %d bytes, %v", i, j, corr, len(body), err)
					return
				}
			}
			if err := waitClosed(c.c, c.r); err != nil {
				t.Errorf("conn %d after Stop: %v", i, err)
			}
		})
	}
	waitFor(t, "requests", func() bool { return h.served.Load() == conns*(perConn+1) })

	drained := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Drain(ctx)
		close(drained)
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-drained:
		t.Fatal("Drain returned with requests in flight")
	default:
	}
	// No new connections while draining.
	late := dial(t, s.Addr())
	late.expectClosed()

	close(hold)
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("Stop took %v", d)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	wg.Wait()
	h.checkClosedOnce(t, s)
	if n := released.Load(); n != conns*perConn {
		t.Errorf("Release ran %d times, want %d", n, conns*perConn)
	}
	for _, c := range clients {
		c.c.Close()
	}
	late.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after Stop\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestStopWithoutDrain: requests in flight at Stop are answered into the
// void; nothing hangs, Release and ConnClosed still run once.
func TestStopWithoutDrain(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	var released atomic.Int32
	s, h := newTestServer(t, Options{}, func(req *Request) {
		go func() {
			<-hold
			req.Respond(&Response{Parts: []Part{{B: []byte("late")}}, Release: func() { released.Add(1) }})
		}()
	})
	var clients []*client
	for range 3 {
		c := dial(t, s.Addr())
		c.write(slices.Concat(appendReq(nil, 1, 0, 1, nil, nil), appendReq(nil, 1, 0, 2, nil, nil)))
		clients = append(clients, c)
	}
	waitFor(t, "requests", func() bool { return h.served.Load() == 6 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.expectClosed()
	}
	close(hold)
	waitFor(t, "Release", func() bool { return released.Load() == 6 })
	h.checkClosedOnce(t, s)
}

func TestStopUnstarted(t *testing.T) {
	t.Parallel()
	s := NewServer(Options{Addr: "127.0.0.1:0", Logger: quietLogger}, &testHandler{serve: echo})
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A failed Start leaves nothing to stop either.
	s2 := NewServer(Options{Addr: "256.0.0.1:0", Logger: quietLogger}, &testHandler{serve: echo})
	if err := s2.Start(); err == nil {
		t.Fatal("Start on a bad address succeeded")
	}
	if err := s2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReusePortZero(t *testing.T) {
	t.Parallel()
	s := NewServer(Options{Addr: "127.0.0.1:0", ReusePort: true, NumLoops: 2, Logger: quietLogger}, &testHandler{serve: echo})
	if err := s.Start(); err == nil {
		s.Stop(context.Background()) //nolint:errcheck
		t.Fatal("ReusePort with port 0 and 2 loops started")
	}
	s, _ = startServer(t, Options{ReusePort: true, NumLoops: 1}, echo)
	dial(t, s.Addr()).roundTrip(1, "reuseport")
}

// BenchmarkPipelined: one connection, 64 requests of 1 KiB in flight,
// echoed.
func BenchmarkPipelined(b *testing.B) {
	h := &testHandler{serve: echo, closed: map[uint64]int{}}
	s := NewServer(Options{Addr: "127.0.0.1:0", NumLoops: 1, Logger: quietLogger}, h)
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Stop(context.Background()) //nolint:errcheck
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const depth = 64
	var batch []byte
	for i := range depth {
		batch = appendReq(batch, 1, 0, int32(i), strp("bench"), make([]byte, 1024))
	}
	r := bufio.NewReaderSize(c, 256<<10)
	b.SetBytes(depth * 1024)
	b.ReportAllocs()
	for b.Loop() {
		go c.Write(batch) //nolint:errcheck
		for range depth {
			if _, _, err := readResp(r, false); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// A client that floods requests without reading responses is closed once
// its buffered input exceeds MaxBufferedBytes, bounding its memory.
func TestFloodWhilePausedCloses(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var held []*Request
	var mu sync.Mutex
	s, _ := startServer(t, Options{MaxInflight: 2, MaxBufferedBytes: 64 << 10, Limits: Limits{MaxRequestBytes: 4096}}, func(req *Request) {
		if req.CorrelationID == 99 {
			echo(req)
			return
		}
		mu.Lock()
		held = append(held, req)
		mu.Unlock()
	})
	t.Cleanup(func() {
		close(release)
		mu.Lock()
		for _, r := range held {
			r.Done()
		}
		mu.Unlock()
	})
	flood := dial(t, s.Addr())
	frame := appendReq(nil, 1, 0, 1, strp("f"), make([]byte, 1000))
	go func() {
		for i := 0; i < 200; i++ {
			if _, err := flood.c.Write(frame); err != nil {
				return
			}
		}
	}()
	flood.expectClosed()
	// Other connections are unaffected.
	dial(t, s.Addr()).roundTrip(99, "ok")
}

// TestPeerCloseServesQueuedRequests: a client that pipelines requests and
// closes at once (an acks=0 producer exiting) still gets every request
// served, as Kafka does; only the responses go nowhere. A connection samsa
// closes itself drops what is queued.
func TestPeerCloseServesQueuedRequests(t *testing.T) {
	t.Parallel()
	var served atomic.Int32
	s, _ := startServer(t, Options{}, func(req *Request) {
		time.Sleep(5 * time.Millisecond) // let the close overtake the queue
		served.Add(1)
		if req.Body[0] == 'x' {
			req.Conn.Close("test abort")
		}
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
	waitFor(t, "every queued request served", func() bool { return served.Load() == n })

	served.Store(0)
	c2 := dial(t, s.Addr())
	stream = appendReq(nil, 0, 0, 0, nil, []byte{'x'})
	for i := range n {
		stream = appendReq(stream, 0, 0, int32(i+1), nil, []byte{'a'})
	}
	c2.write(stream)
	c2.expectClosed()
	time.Sleep(50 * time.Millisecond)
	if got := served.Load(); got >= n {
		t.Fatalf("served %d requests after samsa closed the connection", got)
	}
}

// TestMaxQueuedBytes: across connections, request bytes between read and
// response stay within MaxQueuedBytes; a starved connection resumes when a
// request is answered, and a request larger than the bound still gets in
// alone.
func TestMaxQueuedBytes(t *testing.T) {
	t.Parallel()
	held := make(chan *Request, 10)
	s, _ := startServer(t, Options{Limits: Limits{MaxQueuedBytes: 1000}}, func(req *Request) { held <- req })
	body := make([]byte, 580) // a 600-byte frame with the header
	a, b := dial(t, s.Addr()), dial(t, s.Addr())
	a.write(appendReq(nil, 0, 0, 1, nil, body))
	first := <-held
	b.write(appendReq(nil, 0, 0, 2, nil, body))
	select {
	case r := <-held:
		t.Fatalf("request %d admitted past the bound (%d bytes queued)", r.CorrelationID, s.QueuedBytes())
	case <-time.After(100 * time.Millisecond):
	}
	first.Respond(&Response{Parts: []Part{{B: []byte("one")}}})
	if corr, _ := a.recv(); corr != 1 {
		t.Fatalf("corr %d", corr)
	}
	second := <-held // woken by the release
	if second.CorrelationID != 2 {
		t.Fatalf("corr %d", second.CorrelationID)
	}
	second.Respond(&Response{Parts: []Part{{B: []byte("two")}}})
	b.recv()
	waitFor(t, "queue empty", func() bool { return s.QueuedBytes() == 0 })
	// Alone, a request above the bound is taken.
	a.write(appendReq(nil, 0, 0, 3, nil, make([]byte, 3000)))
	big := <-held
	big.Respond(&Response{Parts: []Part{{B: []byte("big")}}})
	if corr, _ := a.recv(); corr != 3 {
		t.Fatalf("corr %d", corr)
	}
	waitFor(t, "queue empty", func() bool { return s.QueuedBytes() == 0 })
	// Half a frame, then the client goes: its bytes return to the budget.
	half := appendReq(nil, 0, 0, 4, nil, body)
	b.write(half[:300])
	// Half of it came, so its buffer holds the whole frame, rounded up to
	// a class (TestDeclaredLengthCostsNothing: less when less came).
	waitFor(t, "partial frame counted", func() bool { st := s.Stats(); return st.IncompleteBytes > 0 && st.QueuedBytes == 0 })
	if got := s.Stats().IncompleteBytes; got != 1024 {
		t.Errorf("half a frame of %d bytes holds %d bytes", binary.BigEndian.Uint32(half), got)
	}
	b.c.Close()
	waitFor(t, "partial frame released", func() bool { st := s.Stats(); return st.IncompleteBytes == 0 && st.BufferedBytes == 0 })
}

func TestLogLimiter(t *testing.T) {
	var l LogLimiter
	if n, ok := l.Allow(); !ok || n != 0 {
		t.Fatalf("first line: %d %v", n, ok)
	}
	for range 5 {
		if _, ok := l.Allow(); ok {
			t.Fatal("a second line within the second got through")
		}
	}
	l.last.Add(-int64(2 * time.Second)) // as if two seconds passed
	if n, ok := l.Allow(); !ok || n != 5 {
		t.Fatalf("after a second: %d held back, %v; want 5, true", n, ok)
	}
}

// TestDialSelfPassesConnectionLimit: the broker's own health check gets in
// when clients fill MaxConnections; other connections still do not.
func TestDialSelfPassesConnectionLimit(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{MaxConnections: 1}}, echo)
	a := dial(t, s.Addr())
	a.roundTrip(1, "a")
	sc, err := s.DialSelf(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	self := &client{t: t, c: sc, r: bufio.NewReaderSize(sc, 64<<10)}
	_ = sc.SetDeadline(time.Now().Add(20 * time.Second))
	self.roundTrip(2, "self")
	dial(t, s.Addr()).expectClosed()
	sc.Close()
	waitFor(t, "the self connection to close", func() bool { return s.NumConns() == 1 })
	if n := 0; func() bool { s.selfPorts.Range(func(any, any) bool { n++; return true }); return n != 0 }() {
		t.Fatal("a closed self connection stays registered")
	}
}

// TestDirectWrites: responses are written by the goroutine that completes
// them while gnet has nothing of the connection's to send, and by the loop
// otherwise. A client that does not read for a while fills the socket: a
// direct write is cut short and gnet sends the rest, the responses after
// it go through gnet until its buffer is empty, and then directly again.
// Completed in random order, byte and file responses alike, every one
// arrives whole and in request order.
func TestDirectWrites(t *testing.T) {
	t.Parallel()
	f, data := testFile(t, 1<<20)
	body := func(corr int32) []byte { // 200 KiB: tens fill the socket
		b := make([]byte, 200<<10)
		for i := range b {
			b[i] = byte(int(corr) + i/1000)
		}
		return b
	}
	fileRange := func(corr int32) (off, n int64) { return int64(corr) * 1000, 20 << 10 }
	s, _ := startServer(t, Options{}, func(req *Request) {
		corr := req.CorrelationID
		go func() {
			delay := time.Duration(rand.IntN(500)) * time.Microsecond
			if corr >= 70 && corr < 100 {
				// Completions spread over the slow read below, so some
				// find the socket with room while gnet still holds
				// earlier responses.
				delay += 40*time.Millisecond + time.Duration(corr-70)*3*time.Millisecond
			}
			time.Sleep(delay)
			if corr%3 == 0 {
				off, n := fileRange(corr)
				req.Respond(&Response{Parts: []Part{{B: []byte("f")}, {File: f, Off: off, Len: n}}})
				return
			}
			req.Respond(&Response{Parts: []Part{{B: body(corr)}}})
		}()
	})
	c := dialSmallWindow(t, s.Addr(), nil)
	check := func(from, to int32) {
		t.Helper()
		for i := from; i < to; i++ {
			corr, got, err := readResp(c.r, false)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			want := body(i)
			if i%3 == 0 {
				off, n := fileRange(i)
				want = slices.Concat([]byte("f"), data[off:off+n])
			}
			if corr != i || !bytes.Equal(got, want) {
				t.Fatalf("response %d: corr %d, %d bytes (want %d), equal %v", i, corr, len(got), len(want), bytes.Equal(got, want))
			}
		}
	}
	ask := func(from, to int32) {
		var stream []byte
		for i := from; i < to; i++ {
			stream = appendReq(stream, 1, 0, i, nil, []byte("x"))
		}
		c.write(stream)
	}
	// Read as they come: direct.
	for i := int32(0); i < 20; i++ {
		ask(i, i+1)
		check(i, i+1)
	}
	if s.stats.direct.Load() == 0 {
		t.Fatal("no response was written directly")
	}
	// Unread for a while, then read slowly: the socket fills and drains
	// while responses complete.
	ask(20, 100)
	time.Sleep(50 * time.Millisecond)
	for i := int32(20); i < 100; i++ {
		check(i, i+1)
		time.Sleep(time.Millisecond)
	}
	if s.stats.directRest.Load() == 0 {
		t.Fatal("no direct write was cut short with a full socket")
	}
	// And direct again once gnet's buffer is empty.
	before := s.stats.direct.Load()
	for i := int32(100); i < 120; i++ {
		ask(i, i+1)
		check(i, i+1)
	}
	if s.stats.direct.Load() == before {
		t.Fatal("no direct write after gnet's buffer emptied")
	}
}
