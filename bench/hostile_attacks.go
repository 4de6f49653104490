package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The hostile workload's attacks: raw sockets that break Kafka's framing
// (a 4-byte big-endian size, then the request) in the ways an issue
// reported to stop or bloat the broker. Every attack runs until its
// context ends, owns its goroutines and sockets, and returns only once
// every one of them is gone.

// Attack names, as -attacks takes them.
const (
	AttackDeclare100M = "declare100m" // a few connections declare 100 MiB frames and stall
	AttackDeclare1M   = "declare1m"   // many connections declare 1 MiB frames and stall
	AttackRandom      = "random"      // connections writing random bytes, in a loop
	AttackDribble     = "dribble"     // one frame, one byte per second
	AttackMixed       = "mixed"       // all of the above and garbage bodies for every API key
	AttackNoRead      = "noread"      // connections sending requests as fast as they can, never reading an answer
)

// HostileAttacks are the attacks in the order the hostile workload runs
// them by default.
var HostileAttacks = []string{AttackDeclare100M, AttackDeclare1M, AttackRandom, AttackDribble, AttackMixed, AttackNoRead}

const (
	// dialParallel bounds the dials in flight at once.
	dialParallel = 64
	// attackDialTimeout bounds one dial.
	attackDialTimeout = 5 * time.Second
	// actionLimit bounds each of mixed's actions and random's connections.
	actionLimit = 10 * time.Second
	// randomHeld is how many of its connections a random worker keeps
	// open (the broker may be waiting for the rest of a frame their bytes
	// declared) before it closes its oldest.
	randomHeld = 64
	// maxKey is the highest API key the mixed attack sends garbage to;
	// Kafka 4.0 ends at 74 (ListConfigResources).
	maxKey = 74
)

// AttackStats counts what one attack's sockets did. Connected is
// ClosedByBroker + ClosedByAttack + OpenAtEnd.
type AttackStats struct {
	Dials     int64 `json:"dials"`
	Connected int64 `json:"connected"`
	Refused   int64 `json:"refused"` // dials that failed
	// ClosedByBroker: connections the broker closed (EOF or reset seen)
	// before the attack closed them.
	ClosedByBroker int64 `json:"closed_by_broker"`
	ClosedByAttack int64 `json:"closed_by_attack"` // closed by the attack while the broker held them open
	OpenAtEnd      int64 `json:"open_at_end"`      // still open when the attack ended
	BytesSent      int64 `json:"bytes_sent"`
	Frames         int64 `json:"frames,omitempty"`    // complete request frames sent (mixed, dribble)
	Responses      int64 `json:"responses,omitempty"` // response frames read (mixed)
	// DribbleClosedAfter is when the broker closed the dribble
	// connection, in seconds from its first byte (to the second); -1: it
	// did not within the attack.
	DribbleClosedAfter float64 `json:"dribble_closed_after_s,omitempty"`
}

// attacker is one attack's dialer and counters. Any goroutine.
type attacker struct {
	addr   string
	dialer net.Dialer

	dials, connected, refused, byBroker, byAttack, openAtEnd atomic.Int64
	bytes, frames, responses                                 atomic.Int64
	dribbleClosed                                            atomic.Int64 // ns from the first byte; 0: not closed

	wg sync.WaitGroup // the attack's goroutines
}

// newAttacker returns an attacker dialing addr from the local address
// from (any 127.x.y.z is local on Linux).
func newAttacker(addr, from string) (*attacker, error) {
	ip := net.ParseIP(from)
	if ip == nil {
		return nil, fmt.Errorf("cannot attack from %q: not an IP address", from)
	}
	return &attacker{addr: addr, dialer: net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: attackDialTimeout}}, nil
}

func (a *attacker) stats() AttackStats {
	s := AttackStats{
		Dials: a.dials.Load(), Connected: a.connected.Load(), Refused: a.refused.Load(),
		ClosedByBroker: a.byBroker.Load(), ClosedByAttack: a.byAttack.Load(), OpenAtEnd: a.openAtEnd.Load(),
		BytesSent: a.bytes.Load(), Frames: a.frames.Load(), Responses: a.responses.Load(),
	}
	return s
}

// attackConn is an attack's connection: its reads and writes end when the
// attack does.
type attackConn struct {
	net.Conn
	ctx  context.Context
	stop func() bool // stops the AfterFunc that ends I/O with ctx
}

// dial opens a connection, or counts a refusal.
func (a *attacker) dial(ctx context.Context) (*attackConn, error) {
	a.dials.Add(1)
	c, err := a.dialer.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		if !ended(ctx) {
			a.refused.Add(1)
		}
		return nil, err
	}
	a.connected.Add(1)
	ac := &attackConn{Conn: c, ctx: ctx}
	ac.stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	return ac, nil
}

// within bounds the connection's next I/O by d and by the attack's end.
func (c *attackConn) within(d time.Duration) {
	t := time.Now().Add(d)
	if dl, ok := c.ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	_ = c.SetDeadline(t)
	if c.ctx.Err() != nil { // the AfterFunc may have run before the line above
		_ = c.SetDeadline(time.Now())
	}
}

// release closes c, counting who ended it.
func (a *attacker) release(c *attackConn) {
	c.stop()
	switch {
	case peerClosed(c.Conn):
		a.byBroker.Add(1)
	case ended(c.ctx):
		a.openAtEnd.Add(1)
	default:
		a.byAttack.Add(1)
	}
	_ = c.Close()
}

// ended reports whether the attack is over: its context ended or its
// deadline passed (which ends the connections' I/O a moment before the
// context's own timer fires).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// write writes b, reporting whether the connection is still usable.
func (a *attacker) write(c *attackConn, b []byte) bool {
	n, err := c.Write(b)
	a.bytes.Add(int64(n))
	return err == nil
}

// rng is a goroutine's own random source, with random bytes.
type rng struct {
	*rand.Rand
	src *rand.ChaCha8
}

func newRNG() rng {
	var seed [32]byte
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(seed[8*i:], rand.Uint64())
	}
	src := rand.NewChaCha8(seed)
	return rng{rand.New(src), src}
}

func (r rng) bytes(n int) []byte {
	b := make([]byte, n)
	_, _ = r.src.Read(b)
	return b
}

// between returns a duration in [lo, hi).
func (r rng) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// declaration is a frame size and the first 2 bytes of the frame (the
// high bytes of ApiVersions' key): what the stalling clients sent.
func declaration(size int32, key int16) []byte {
	return []byte{byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size), byte(key >> 8), byte(key)}
}

// requestFrame returns a frame: its size, a request header v1 (API key,
// version, correlation id, nullable client id) and body.
func requestFrame(key, version int16, corr int32, clientID string, body []byte) []byte {
	b := make([]byte, 4, 4+10+len(clientID)+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// runAttack runs the named attack until ctx ends.
func runAttack(ctx context.Context, name string, a *attacker, cfg *HostileConfig) error {
	switch name {
	case AttackDeclare100M:
		a.declare(ctx, cfg.Declare100MConns, 100<<20)
	case AttackDeclare1M:
		a.declare(ctx, cfg.Declare1MConns, 1<<20)
	case AttackRandom:
		a.workers(ctx, cfg.RandomWorkers, a.randomWorker)
	case AttackDribble:
		a.dribble(ctx, cfg.DribbleSize)
	case AttackMixed:
		a.workers(ctx, cfg.MixedWorkers, a.mixedWorker)
	case AttackNoRead:
		a.workers(ctx, cfg.NoReadConns, a.noReadWorker)
	default:
		return fmt.Errorf("cannot run attack %q: unknown (want one of %v)", name, HostileAttacks)
	}
	return nil
}

// declare opens conns connections at once, each sending a frame size of
// size and 2 bytes of the frame, and holds them until ctx ends. The 2
// bytes are an API key: ApiVersions on even connections, Produce on odd
// ones (a broker may bound a first request's size, but not a Produce's:
// clients that skip ApiVersions send Produce first).
func (a *attacker) declare(ctx context.Context, conns int, size int32) {
	var mu sync.Mutex
	var held []*attackConn
	sem := make(chan struct{}, dialParallel)
	for i := 0; i < conns; i++ {
		key := int16(18)
		if i%2 == 1 {
			key = 0
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer func() { <-sem }()
			c, err := a.dial(ctx)
			if err != nil {
				return
			}
			c.within(actionLimit)
			a.write(c, declaration(size, key))
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}()
	}
	a.wg.Wait()
	<-ctx.Done()
	for _, c := range held {
		a.release(c)
	}
}

// redial dials until it connects (the connection bounded by actionLimit)
// or ctx ends (nil).
func (a *attacker) redial(ctx context.Context) *attackConn {
	for ctx.Err() == nil {
		if c, err := a.dial(ctx); err == nil {
			c.within(actionLimit)
			return c
		}
		wait(ctx, 50*time.Millisecond)
	}
	return nil
}

// workers runs n copies of work until ctx ends.
func (a *attacker) workers(ctx context.Context, n int, work func(context.Context)) {
	for i := 0; i < n; i++ {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			work(ctx)
		}()
	}
	a.wg.Wait()
}

// randomWorker connects, writes 1 to 8 times 1 to 4,096 random bytes a
// few milliseconds apart, keeps the connection (its bytes may have
// declared a frame the broker waits for) and connects again; it holds
// its last randomHeld connections, a new one closing the oldest.
func (a *attacker) randomWorker(ctx context.Context) {
	r := newRNG()
	var held []*attackConn
	defer func() {
		for _, c := range held {
			a.release(c)
		}
	}()
	for c := a.redial(ctx); c != nil; c = a.redial(ctx) {
		for i, n := 0, 1+r.IntN(8); i < n; i++ {
			if !a.write(c, r.bytes(1+r.IntN(4096))) || !wait(ctx, r.between(time.Millisecond, 10*time.Millisecond)) {
				break
			}
		}
		if peerClosed(c.Conn) {
			a.release(c)
			continue
		}
		if len(held) == randomHeld {
			a.release(held[0])
			held = append(held[:0], held[1:]...)
		}
		held = append(held, c)
	}
}

// noReadWorker connects and sends ApiVersions requests (18 bytes, each
// answered with about 500) as fast as the socket takes them, never
// reading an answer, until the broker closes the connection (then it
// connects again) or ctx ends. Answers pile up unread in the broker
// unless it stops serving such a client.
func (a *attacker) noReadWorker(ctx context.Context) {
	var burst []byte
	for i := range 256 {
		burst = append(burst, requestFrame(18, 0, int32(i), "", nil)...)
	}
	for c := a.redial(ctx); c != nil; c = a.redial(ctx) {
		for {
			c.within(actionLimit)
			n, err := c.Write(burst)
			a.bytes.Add(int64(n))
			if err == nil {
				a.frames.Add(256)
				continue
			}
			// Answers wait unread in the socket, so release's peek
			// cannot see the broker's close: a write refused before
			// the end, and not for the deadline, is it.
			var ne net.Error
			if ended(ctx) || (errors.As(err, &ne) && ne.Timeout()) {
				a.release(c)
			} else {
				c.stop()
				a.byBroker.Add(1)
				_ = c.Close()
			}
			break
		}
	}
}

// dribble sends one frame of size bytes (an ApiVersions v0 header, then
// zeros) one byte per second until the frame is sent, the broker closes
// the connection or ctx ends; then it holds the connection until ctx ends.
func (a *attacker) dribble(ctx context.Context, size int) {
	a.dribbleClosed.Store(0)
	c, err := a.dial(ctx)
	if err != nil {
		return
	}
	defer a.release(c)
	hdr := requestFrame(18, 0, 1, "samsa-bench-dribble", nil)
	f := make([]byte, 4+max(size, len(hdr)-4))
	copy(f, hdr)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for i := 0; i < len(f); i++ {
		if peerClosed(c.Conn) {
			a.dribbleClosed.Store(int64(max(time.Since(start), 1)))
			return
		}
		c.within(actionLimit)
		if !a.write(c, f[i:i+1]) {
			if !ended(ctx) {
				a.dribbleClosed.Store(int64(max(time.Since(start), 1)))
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	a.frames.Add(1)
	for ctx.Err() == nil && !peerClosed(c.Conn) {
		wait(ctx, time.Second)
	}
	if !ended(ctx) {
		a.dribbleClosed.Store(int64(max(time.Since(start), 1)))
	}
}

// mixedWorker runs random mixed actions, 10-50 ms apart, until ctx ends.
func (a *attacker) mixedWorker(ctx context.Context) {
	r := newRNG()
	actions := []func(context.Context, *attackConn, rng){
		a.randomFrame, a.lyingLength, a.truncated, a.garbageBodies, a.garbageBodies, a.idleDeclarer,
	}
	for c := a.redial(ctx); c != nil; c = a.redial(ctx) {
		actions[r.IntN(len(actions))](ctx, c, r)
		a.release(c)
		wait(ctx, r.between(10*time.Millisecond, 50*time.Millisecond))
	}
}

// randomFrame writes 1 to 4,096 random bytes 1 to 3 times.
func (a *attacker) randomFrame(ctx context.Context, c *attackConn, r rng) {
	for i, n := 0, 1+r.IntN(3); i < n; i++ {
		if !a.write(c, r.bytes(1+r.IntN(4096))) || !wait(ctx, r.between(time.Millisecond, 5*time.Millisecond)) {
			return
		}
	}
}

// lyingLength declares a frame of 64 KiB to 100 MiB, sends a valid
// header and up to 4 KiB of it, then closes at once or after stalling
// 0.5 to 3 s.
func (a *attacker) lyingLength(ctx context.Context, c *attackConn, r rng) {
	size := int32(64<<10 + r.Int64N(100<<20-64<<10))
	f := requestFrame(int16(r.IntN(maxKey+1)), int16(r.IntN(10)), r.Int32(), "lying", r.bytes(r.IntN(4096)))
	binary.BigEndian.PutUint32(f, uint32(size))
	if !a.write(c, f) {
		return
	}
	if r.IntN(2) == 0 {
		wait(ctx, r.between(500*time.Millisecond, 3*time.Second))
	}
}

// truncated sends part of a well-formed frame with a random body, and
// closes.
func (a *attacker) truncated(_ context.Context, c *attackConn, r rng) {
	f := requestFrame(int16(r.IntN(maxKey+1)), int16(r.IntN(10)), r.Int32(), "truncated", r.bytes(r.IntN(64<<10)))
	a.write(c, f[:1+r.IntN(len(f)-1)])
}

// garbageBodies sends 1 to 4 complete frames with valid headers, for any
// API key from 0 to maxKey and some unknown ones, versions 0 to 17 and a
// few absurd ones, and random bodies of up to 64 KiB (mostly small), then
// reads what comes back for up to half a second.
func (a *attacker) garbageBodies(ctx context.Context, c *attackConn, r rng) {
	for i, n := 0, 1+r.IntN(4); i < n; i++ {
		key := int16(r.IntN(maxKey + 1))
		switch r.IntN(10) {
		case 0:
			key = []int16{-1, maxKey + 1, maxKey + 20, 1000, 32767, -32768}[r.IntN(6)]
		}
		version := int16(r.IntN(18))
		if r.IntN(20) == 0 {
			version = []int16{-1, 100, 32767}[r.IntN(3)]
		}
		bodyLen := r.IntN(256)
		if r.IntN(4) == 0 {
			bodyLen = r.IntN(64 << 10)
		}
		if !a.write(c, requestFrame(key, version, r.Int32(), "garbage", r.bytes(bodyLen))) {
			return
		}
		a.frames.Add(1)
	}
	c.within(500 * time.Millisecond)
	for ctx.Err() == nil {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(size[:]))
		if _, err := io.CopyN(io.Discard, c, n); err != nil {
			return
		}
		a.responses.Add(1)
	}
}

// idleDeclarer declares a frame of 1 MiB (or, one time in four, of up to
// 100 MiB) and 2 bytes of it (the API key of a Produce or an
// ApiVersions), and stalls 2 to 5 s.
func (a *attacker) idleDeclarer(ctx context.Context, c *attackConn, r rng) {
	size := int32(1 << 20)
	if r.IntN(4) == 0 {
		size = int32(1 + r.Int64N(100<<20))
	}
	if a.write(c, declaration(size, int16(r.IntN(2)*18))) { // Produce or ApiVersions
		wait(ctx, r.between(2*time.Second, 5*time.Second))
	}
}
