package netio

import (
	"bufio"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// declare writes a frame size prefix of size and then rest.
func declare(c *client, size int32, rest ...byte) {
	c.t.Helper()
	c.write(append(binary.BigEndian.AppendUint32(nil, uint32(size)), rest...))
}

// TestDeclaredLengthCostsNothing: connections that declare big frames and
// stall hold memory for the bytes they sent, not for what they declared,
// and other clients are answered meanwhile (the two connections
// declaring 100 MiB, and many declaring 1 MiB).
func TestDeclaredLengthCostsNothing(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{MaxQueuedBytes: 1 << 20, MaxRequestBytes: 100 << 20}}, echo)
	var stalled []*client
	for range 2 {
		c := dial(t, s.Addr())
		declare(c, 100<<20, 0, 0) // a Produce: exempt from the first-request bound
		stalled = append(stalled, c)
	}
	for range 200 {
		c := dial(t, s.Addr())
		declare(c, 1<<20, 0, 0)
		stalled = append(stalled, c)
	}
	waitFor(t, "every declaration read", func() bool { return s.Stats().IncompleteBytes == 202<<minFrameShift })
	dial(t, s.Addr()).roundTrip(1, "still answered")
	for _, c := range stalled {
		c.c.Close()
	}
	waitFor(t, "the budget returned", func() bool {
		st := s.Stats()
		return st.IncompleteBytes == 0 && st.BufferedBytes == 0 && st.QueuedBytes == 0
	})
}

// TestStalledFrameCloses: a frame that gets no byte for FrameStallTimeout
// closes its connection, and so does a frame dribbled a byte at a time for
// longer than FrameTimeout; a connection between frames is left alone.
func TestStalledFrameCloses(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{FrameStallTimeout: 300 * time.Millisecond, FrameTimeout: time.Second}}, echo)
	quiet := dial(t, s.Addr())
	quiet.roundTrip(1, "between frames")

	half := dial(t, s.Addr())
	half.write(appendReq(nil, 1, 0, 1, nil, make([]byte, 100))[:50])
	start := time.Now()
	half.expectClosed()
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("stalled frame closed after %v, before the stall timeout", d)
	}
	prefix := dial(t, s.Addr()) // two bytes of a size prefix
	prefix.write([]byte{0, 0})
	prefix.expectClosed()

	frame := appendReq(nil, 1, 0, 2, nil, make([]byte, 100))
	drip := dial(t, s.Addr())
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for _, b := range frame {
			if _, err := drip.c.Write([]byte{b}); err != nil {
				done <- time.Since(start)
				return
			}
			time.Sleep(100 * time.Millisecond) // progress, within the stall timeout
		}
		done <- 0
	}()
	drip.expectClosed()
	if d := <-done; d == 0 {
		t.Fatal("a frame dribbled for 10 s was taken")
	}
	if got := s.Stats().ClosedSlow; got != 3 {
		t.Errorf("ClosedSlow = %d, want 3", got)
	}
	quiet.roundTrip(2, "still open")
}

// TestPreAuthBound: before its first request a connection may send only
// frames up to MaxPreAuthRequestBytes, except a Produce; after it, up to
// MaxRequestBytes. With RequireAuth the bound holds until
// SetAuthenticated, Produce included.
func TestPreAuthBound(t *testing.T) {
	t.Parallel()
	big := make([]byte, 100<<10)
	s, _ := startServer(t, Options{Limits: Limits{MaxPreAuthRequestBytes: 64 << 10}}, echo)
	first := dial(t, s.Addr())
	first.write(appendReq(nil, 3, 0, 1, nil, big)) // a Metadata
	first.expectClosed()
	produce := dial(t, s.Addr())
	produce.write(appendReq(nil, 0, 0, 1, nil, big))
	if corr, got := produce.recv(); corr != 1 || len(got) != len(big) {
		t.Fatalf("a big first Produce: corr %d, %d bytes", corr, len(got))
	}
	after := dial(t, s.Addr())
	after.roundTrip(1, "small first")
	after.write(appendReq(nil, 3, 0, 2, nil, big))
	if corr, got := after.recv(); corr != 2 || len(got) != len(big) {
		t.Fatalf("a big second request: corr %d, %d bytes", corr, len(got))
	}
	if got := s.Stats().ClosedBad; got != 1 {
		t.Errorf("ClosedBad = %d, want 1", got)
	}

	var auth atomic.Bool
	a, _ := startServer(t, Options{RequireAuth: true, Limits: Limits{MaxPreAuthRequestBytes: 64 << 10}}, func(req *Request) {
		if string(req.Body) == "login" {
			req.Conn.SetAuthenticated()
			auth.Store(true)
		}
		echo(req)
	})
	c := dial(t, a.Addr())
	c.roundTrip(1, "hello") // not authenticated yet
	c.write(appendReq(nil, 0, 0, 2, nil, big))
	c.expectClosed()
	c = dial(t, a.Addr())
	c.roundTrip(1, "login")
	c.write(appendReq(nil, 0, 0, 2, nil, big))
	if corr, got := c.recv(); corr != 2 || len(got) != len(big) || !auth.Load() {
		t.Fatalf("after SetAuthenticated: corr %d, %d bytes", corr, len(got))
	}
}

// TestBudgetEvictsLargestIncomplete: when MaxQueuedBytes is short, the
// connection holding the most bytes of an incomplete frame is closed for
// the one whose bytes are here, and the latter is answered.
func TestBudgetEvictsLargestIncomplete(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{MaxQueuedBytes: 64 << 10}}, echo)
	hog := dial(t, s.Addr())
	hog.roundTrip(1, "hi")
	frame := appendReq(nil, 1, 0, 2, nil, make([]byte, 200<<10))
	hog.write(frame[:60<<10]) // holds a 64 KiB buffer, then stalls
	waitFor(t, "the hog's bytes held", func() bool { return s.Stats().IncompleteBytes >= 60<<10 })
	c := dial(t, s.Addr())
	c.roundTrip(1, "hi")
	body := make([]byte, 20<<10)
	rand.NewChaCha8([32]byte{}).Read(body)
	c.write(appendReq(nil, 1, 0, 2, nil, body))
	if corr, got := c.recv(); corr != 2 || string(got) != string(body) {
		t.Fatalf("corr %d, %d bytes back", corr, len(got))
	}
	hog.expectClosed()
	if got := s.Stats().ClosedBudget; got != 1 {
		t.Errorf("ClosedBudget = %d, want 1", got)
	}
}

// TestConnectionLimitsPerIP: max connections per address with an override,
// and the connection rate.
func TestConnectionLimitsPerIP(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{MaxConnectionsPerIP: 2, ConnectionsPerIP: map[string]int{"127.0.0.2": 4}}}, echo)
	from := func(ip string) *client {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		nc, err := d.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
		return &client{t: t, c: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	}
	one := []*client{from("127.0.0.1"), from("127.0.0.1")}
	for i, c := range one {
		c.roundTrip(int32(i), "in")
	}
	from("127.0.0.1").expectClosed()
	for i := range 4 {
		from("127.0.0.2").roundTrip(int32(i), "override")
	}
	from("127.0.0.2").expectClosed()
	one[0].c.Close()
	waitFor(t, "the closed connection uncounted", func() bool { return s.NumConns() == 5 })
	from("127.0.0.1").roundTrip(9, "room again")
	if got := s.Stats().Refused; got != 2 {
		t.Errorf("Refused = %d, want 2", got)
	}

	r, _ := startServer(t, Options{Limits: Limits{MaxConnectionRatePerIP: 3}}, echo)
	refused := 0
	for range 10 {
		c := dial(t, r.Addr())
		c.send(1, []byte("x"))
		if _, _, err := readResp(c.r, false); err != nil {
			refused++
		}
	}
	if refused < 5 || refused > 7 { // a burst of 3, and maybe a token more
		t.Errorf("%d of 10 quick connections refused at 3 a second", refused)
	}
}

func TestBucket(t *testing.T) {
	var b bucket
	now := time.Unix(1000, 0)
	for i := range 5 {
		if !b.take(now, 5) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if b.take(now, 5) {
		t.Fatal("a sixth token in the same instant")
	}
	if !b.take(now.Add(200*time.Millisecond), 5) {
		t.Fatal("no token after 200ms at 5/s")
	}
	if b.full(now.Add(200*time.Millisecond), 5) || !b.full(now.Add(2*time.Second), 5) {
		t.Fatal("full")
	}
	var bm bucketMap
	bm.limit = 1
	bm.take("a", now)
	bm.prune(now.Add(2 * time.Second))
	if len(bm.m) != 0 {
		t.Fatal("a refilled bucket kept")
	}
}

func TestFramePool(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 0, 512: 0, 513: 1, 1024: 1, maxPooledFrame: nFrameClasses - 1, maxPooledFrame + 1: -1} {
		if got := classOf(n); got != want {
			t.Errorf("classOf(%d) = %d, want %d", n, got, want)
		}
	}
	p := framePool{maxBytes: 8 << 10}
	a, b := p.get(3000), p.get(3000)
	if cap(a.B) != 4096 || len(a.B) != 0 {
		t.Fatalf("get(3000): len %d cap %d", len(a.B), cap(a.B))
	}
	p.put(a)
	p.put(b)
	p.put(p.get(5000)) // over maxBytes: dropped
	if got := p.pooled.Load(); got != 8<<10 {
		t.Fatalf("pooled %d", got)
	}
	if big := p.get(maxPooledFrame + 1); cap(big.B) != maxPooledFrame+1 {
		t.Fatalf("beyond the classes: cap %d", cap(big.B))
	}
	p.trim() // the first trim sets the low-water mark
	x := p.get(4096)
	p.put(x)
	if freed := p.trim(); freed != 4096 {
		t.Fatalf("trim freed %d, want the one buffer not needed (4096)", freed)
	}
	if freed := p.trim(); freed != 4096 || p.pooled.Load() != 0 {
		t.Fatalf("second trim freed %d, %d left", freed, p.pooled.Load())
	}
}

func TestGrownCap(t *testing.T) {
	for _, c := range []struct{ cur, have, ready, need, want int }{
		{0, 0, 2, 1 << 20, 512},
		{0, 0, 100, 100, 100},
		{0, 0, 64 << 10, 1 << 20, 64 << 10},
		{64 << 10, 64 << 10, 64 << 10, 1 << 20, 256 << 10},
		{256 << 10, 256 << 10, 1, 300 << 10, 300 << 10}, // a quarter came
		{256 << 10, 256 << 10, 64 << 10, 100 << 20, 1 << 20},
		{1 << 20, 1 << 20, 1, 100 << 20, 100 << 20}, // trustFrameBytes came
	} {
		if got := grownCap(c.cur, c.have, c.ready, c.need); got != c.want {
			t.Errorf("grownCap(%d, %d, %d, %d) = %d, want %d", c.cur, c.have, c.ready, c.need, got, c.want)
		}
	}
}

// TestBudgetSparesActiveSender: a client that declared a big Produce and
// stalled after 1.5 MiB cannot get an honest client, still sending a
// bigger frame, closed for room; the honest frame is answered.
func TestBudgetSparesActiveSender(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{MaxQueuedBytes: 10 << 20}}, echo)
	legit := dial(t, s.Addr())
	legit.roundTrip(1, "hi")
	frame := appendReq(nil, 0, 0, 2, nil, make([]byte, 6<<20))
	legit.write(frame[:2<<20])
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stats %+v", s.Stats())
		}
	})
	waitFor(t, "the honest frame held", func() bool { return s.Stats().IncompleteBytes >= 6<<20 })
	go func() { // keeps sending, slowly
		for off := 2 << 20; off < len(frame); off += 64 << 10 {
			if _, err := legit.c.Write(frame[off:min(off+64<<10, len(frame))]); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	att := dial(t, s.Addr())
	declare(att, 6<<20, 0, 0)
	att.write(make([]byte, 3<<19))
	if corr, got := legit.recv(); corr != 2 || len(got) != 6<<20 {
		t.Fatalf("the honest frame: corr %d, %d bytes", corr, len(got))
	}
	st := s.Stats()
	if st.ClosedBudget > 1 {
		t.Errorf("%d connections closed for room; only the stalled one may be", st.ClosedBudget)
	}
}

// TestBudgetTwoFramesAtOnce: two frames that do not fit beside each other
// in the budget both complete (one waits, or is let past the bound), and
// neither connection is closed.
func TestBudgetTwoFramesAtOnce(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, Options{Limits: Limits{MaxQueuedBytes: 1 << 20}}, echo)
	a, b := dial(t, s.Addr()), dial(t, s.Addr())
	a.roundTrip(1, "hi")
	b.roundTrip(1, "hi")
	body := make([]byte, 700<<10)
	fa, fb := appendReq(nil, 1, 0, 2, nil, body), appendReq(nil, 1, 0, 3, nil, body)
	for _, c := range []struct {
		c     *client
		frame []byte
	}{{a, fa}, {b, fb}} {
		go func() {
			for off := 0; off < len(c.frame); off += 32 << 10 {
				if _, err := c.c.c.Write(c.frame[off:min(off+32<<10, len(c.frame))]); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stats %+v", s.Stats())
		}
	})
	if corr, got := a.recv(); corr != 2 || len(got) != len(body) {
		t.Fatalf("a: corr %d, %d bytes", corr, len(got))
	}
	if corr, got := b.recv(); corr != 3 || len(got) != len(body) {
		t.Fatalf("b: corr %d, %d bytes", corr, len(got))
	}
	if st := s.Stats(); st.ClosedBudget != 0 {
		t.Errorf("%d connections closed for room", st.ClosedBudget)
	}
	waitFor(t, "the budget returned", func() bool {
		st := s.Stats()
		return st.IncompleteBytes == 0 && st.QueuedBytes == 0 && st.BufferedBytes == 0
	})
	if s.overdraft.Load() != nil {
		t.Error("the overdraft stays taken")
	}
}
