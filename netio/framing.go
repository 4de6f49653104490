package netio

import (
	"encoding/binary"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Framing: the bytes a client sends become requests here, on the event
// loop. A declared frame length costs nothing until its bytes come: the
// frame's buffer grows with them (framebuf.go), within the request memory
// budget (Limits.MaxQueuedBytes). A frame that cannot grow waits for the
// budget, and the stalled connection holding the most bytes of an
// incomplete frame is closed to make room, never one whose bytes are
// coming. OnTick closes connections whose frames stall or crawl.

const (
	// maxPooledBytes bounds the free frame buffers kept for reuse.
	maxPooledBytes = 64 << 20
	// trimEvery: free frame buffers unused for that long go back to the
	// runtime.
	trimEvery = 5 * time.Second
	// evictWait: an eviction whose connection has not closed after that
	// long no longer holds up the next.
	evictWait = time.Second
	// stalledAfter: a connection that sent nothing for that long counts
	// as stalled when choosing whom to close for room.
	stalledAfter = time.Second
)

// OnTraffic frames requests and hands each to the worker, copying it once
// out of the loop's read buffer. Loop goroutine.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action { return s.traffic(gc) }

// traffic is OnTraffic for any wire: gnet's loops and TLS connections'
// own loop goroutines.
func (s *Server) traffic(gc wire) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil || c.closed.Load() {
		return gnet.Close
	}
	now := time.Now().UnixNano()
	if int64(gc.InboundBuffered()) > c.buffered.Load() {
		// New bytes, not a wake-up (a release, a response written).
		c.lastActive.Store(now)
		c.lastRead.Store(now)
	}
	act := s.frame(c, gc)
	if act == gnet.None {
		c.noteUnframed(gc.InboundBuffered(), now)
	}
	return act
}

// noteUnframed records what input is left unframed after OnTraffic: the
// bytes gnet keeps, for the budget, and since when a frame has been
// arriving, for the frame timeouts. Loop goroutine.
func (c *Conn) noteUnframed(buffered int, now int64) {
	b := int64(buffered)
	c.srv.buffered.Add(b - c.buffered.Swap(b))
	c.arrived.Store(c.need > 0 && c.have()+buffered >= c.need)
	switch {
	case c.need == 0 && buffered == 0:
		c.frameStart.Store(0)
	case c.frameStart.Load() == 0:
		c.frameStart.Store(now)
	}
}

// frame reads whole frames off gc and hands them to the worker until the
// input runs out, the connection must wait, or it is to be closed. Loop
// goroutine.
func (s *Server) frame(c *Conn, gc wire) gnet.Action {
	limit := int32(s.opts.MaxInflight)
	for {
		if s.draining.Load() {
			return s.overflow(c, gc)
		}
		if c.inflight.Load() >= limit {
			c.paused.Store(true)
			if c.inflight.Load() >= limit {
				if g, ok := gc.(gnet.Conn); ok && c.moving == nil && gc.InboundBuffered() > s.opts.MoveBufferedBytes {
					s.move(c, g) // a transport that stops reading (move.go)
				}
				return s.overflow(c, gc) // the next response written wakes us
			}
			c.paused.Store(false)
		}
		if c.need == 0 {
			if gc.OutboundBuffered() > s.opts.MaxOutboundBytes {
				// Answers pile up unread: no more requests until the
				// client reads them (Kafka answers one at a time), so a
				// small request with a large answer cannot grow the
				// output without bound. gnet reads on meanwhile: a
				// client that sends 8 MiB more without reading is
				// closed. A goroutine transport stops reading instead
				// (a moved connection starts with more than that
				// unframed, and its queued answers count as unread).
				if _, onGnet := gc.(gnet.Conn); onGnet && gc.InboundBuffered() > s.opts.MoveBufferedBytes {
					return s.flood(c, gc)
				}
				c.recheckLater()
				return gnet.None
			}
			if act, ok := s.startFrame(c, gc); !ok {
				return act
			}
		}
		// Copy what has arrived of the frame straight into its buffer:
		// consuming the loop's read buffer keeps gnet from copying it
		// into the connection's ring buffer first, so the frame is copied
		// once in user space however many reads it takes (plus the
		// bounded copies of its buffer growing).
		if ready := min(c.need-c.have(), gc.InboundBuffered()); ready > 0 {
			if c.room() < ready && !s.grow(c, ready) {
				return s.overflow(c, gc) // a release wakes us
			}
			bb := c.partial
			have := len(bb.B)
			n, _ := gc.Read(bb.B[have : have+ready])
			bb.B = bb.B[:have+n]
			if n > 0 && s.streamer != nil {
				c.stream = s.streamer.Stream(bb.B, c.stream)
			}
		}
		if g, ok := gc.(gnet.Conn); ok && c.have() < c.need && gc.InboundBuffered() == 0 && c.need-c.have() >= directReadMin {
			// gnet's buffers are empty and much of the frame is still in
			// the socket: read it straight into the frame's buffer, which
			// saves the copy through the loop's read buffer.
			if act := c.readDirect(g); act != gnet.None {
				return act
			}
		}
		if c.have() < c.need {
			return gnet.None
		}
		if act := s.deliver(c); act != gnet.None {
			return act
		}
	}
}

// startFrame reads a frame's size prefix and checks it; ok is false if
// there is not enough input yet (act None) or the connection is to close.
// Loop goroutine.
func (s *Server) startFrame(c *Conn, gc wire) (act gnet.Action, ok bool) {
	hdr, err := gc.Peek(4)
	if err != nil {
		return gnet.None, false
	}
	size := int32(binary.BigEndian.Uint32(hdr))
	l := s.limits.Load()
	// A bare SASL token (after SaslHandshake v0) has no request header:
	// PLAIN's "\x00u\x00pw" is 5 bytes, and Kafka reads any size.
	minSize := int32(8)
	if c.rawNext.Load() {
		minSize = 1
	}
	if size < minSize || size > l.MaxRequestBytes {
		return s.refuseFrame(c, "bad request size; closing", "size", size, "max", l.MaxRequestBytes), false
	}
	if max := l.MaxPreAuthRequestBytes; max > 0 && size > max && !c.trusted.Load() {
		if s.opts.RequireAuth {
			return s.refuseFrame(c, "request too large before authentication; closing", "size", size, "max", max), false
		}
		// Before the first request: only a Produce may be large.
		key, err := gc.Peek(6)
		if err != nil {
			return gnet.None, false
		}
		if apiKey := int16(binary.BigEndian.Uint16(key[4:])); apiKey != 0 {
			return s.refuseFrame(c, "first request too large; closing", "size", size, "max", max, "api_key", apiKey), false
		}
	}
	_, _ = gc.Discard(4)
	c.need = int(size)
	return gnet.None, true
}

// refuseFrame closes a connection for its framing, logging at most a line
// a second. Loop goroutine.
func (s *Server) refuseFrame(c *Conn, msg string, args ...any) gnet.Action {
	c.abort()
	s.stats.closedBad.Add(1)
	if n, ok := s.badLog.Allow(); ok {
		s.logger.Warn(msg, append([]any{"remote", c.remote, "suppressed", n}, args...)...)
	}
	return gnet.Close
}

// deliver hands the complete frame to the worker: its bytes move from the
// incomplete frames' share of the budget to the queued requests'. Loop
// goroutine.
func (s *Server) deliver(c *Conn) gnet.Action {
	bb := c.partial
	held := c.reserved.Swap(0)
	s.queued.Add(held)
	s.incomplete.Add(-held)
	c.partial, c.need = nil, 0
	c.frameStart.Store(0)
	s.overdraft.CompareAndSwap(c, nil)
	req := &Request{Conn: c, Received: time.Now(), buf: bb, held: held, Prepared: c.stream}
	c.stream = nil
	if c.rawNext.CompareAndSwap(true, false) {
		req.Raw, req.Body = true, bb.B
	} else if err := parseRequest(req, bb.B); err != nil {
		req.release()
		return s.refuseFrame(c, "malformed request header; closing", "err", err)
	}
	if !s.opts.RequireAuth {
		c.trusted.Store(true)
	}
	req.seq = c.nextSeq
	c.nextSeq++
	c.inflight.Add(1)
	s.pending.Add(1)
	c.reqs <- req // never blocks: at most MaxInflight outstanding
	return gnet.None
}

// have is how much of the current frame has arrived. Loop goroutine.
func (c *Conn) have() int {
	if c.partial == nil {
		return 0
	}
	return len(c.partial.B)
}

// room is how many more bytes the frame's buffer takes as it is. Loop
// goroutine.
func (c *Conn) room() int {
	if c.partial == nil {
		return 0
	}
	return min(cap(c.partial.B), c.need) - len(c.partial.B)
}

// grow makes room in the frame's buffer for ready more bytes, within the
// budget; false: the connection waits. When the budget is tight a frame
// grows only for the bytes that are here, not to its declared size. Loop
// goroutine.
func (s *Server) grow(c *Conn, ready int) bool {
	cur, have := 0, c.have()
	if c.partial != nil {
		cur = cap(c.partial.B)
	}
	want := grownCap(cur, have, ready, c.need)
	if !s.tryReserve(c, int64(want-cur)) {
		want = max(cur+1, min(c.need, have+ready))
		if !s.tryReserve(c, int64(want-cur)) {
			s.starve(c)
			// A release between the check and the registration would
			// not have woken us: check again.
			if !s.tryReserve(c, int64(want-cur)) && !s.overdraw(c, int64(want-cur)) {
				s.evict(c)
				return false
			}
		}
	}
	if c.waiting.Load() {
		s.unstarve(c)
	}
	nb := s.pool.get(want)
	if extra := int64(cap(nb.B) - want); extra != 0 { // a class rounds up
		c.reserved.Add(extra)
		s.incomplete.Add(extra)
	}
	if old := c.partial; old != nil {
		nb.B = append(nb.B, old.B...)
		s.pool.put(old)
	}
	c.partial = nb
	return true
}

// tryReserve takes n bytes of the budget for c's incomplete frame if they
// fit. Loop goroutine.
func (s *Server) tryReserve(c *Conn, n int64) bool {
	max := s.limits.Load().MaxQueuedBytes
	// c's bytes in gnet's buffer are about to move into its frame: they
	// do not count twice.
	held := s.queued.Load() + s.incomplete.Load() + s.buffered.Load() - c.buffered.Load()
	if max > 0 && held+n > max && held > c.reserved.Load() { // alone, a connection always gets its request in
		return false
	}
	c.reserved.Add(n)
	s.incomplete.Add(n)
	return true
}

// overdraw lets c's frame past the budget when c has waited stalledAfter
// and no other frame is past it: when the budget is full of frames still
// arriving, none of them stalled, the wait could last until their
// timeouts, so one at a time completes. The budget is then exceeded by one
// frame at most (MaxRequestBytes). Loop goroutine.
func (s *Server) overdraw(c *Conn, n int64) bool {
	if !c.waiting.Load() || time.Now().UnixNano()-c.waitSince.Load() < int64(stalledAfter) {
		return false
	}
	if s.overdraft.Load() != c && !s.overdraft.CompareAndSwap(nil, c) {
		return false
	}
	c.reserved.Add(n)
	s.incomplete.Add(n)
	return true
}

// starve registers c among the connections waiting for the budget. Loop
// goroutine.
func (s *Server) starve(c *Conn) {
	s.starveMu.Lock()
	if s.starved == nil {
		s.starved = map[*Conn]struct{}{}
	}
	s.starved[c] = struct{}{}
	s.nStarved.Store(int32(len(s.starved)))
	s.starveMu.Unlock()
	if !c.waiting.Swap(true) {
		c.waitSince.Store(time.Now().UnixNano())
	}
}

// unstarve ends c's wait; the time it waited does not count against its
// frame (FrameTimeout). Loop goroutine.
func (s *Server) unstarve(c *Conn) {
	s.starveMu.Lock()
	delete(s.starved, c)
	s.nStarved.Store(int32(len(s.starved)))
	s.starveMu.Unlock()
	c.waiting.Store(false)
	if start := c.frameStart.Load(); start != 0 {
		c.frameStart.Store(start + time.Now().UnixNano() - c.waitSince.Load())
	}
}

// evict closes a connection holding bytes of an incomplete frame to make
// room for c, which waits for the budget: of those that sent nothing for
// stalledAfter, the one holding the most (its buffer and what gnet keeps
// for it). A connection still sending is never closed for room (see
// overdraw). One eviction at a time: its close wakes the starved. Loop
// goroutine.
func (s *Server) evict(c *Conn) {
	now := time.Now().UnixNano()
	if s.evicting.Load() != nil && now-s.evictedAt.Load() < int64(evictWait) {
		return
	}
	var victim *Conn
	var vHeld int64
	s.connMu.Lock()
	for o := range s.conns {
		if o == c || o.closed.Load() || o.arrived.Load() || now-o.lastRead.Load() < int64(stalledAfter) {
			continue // closed, its frame all here (it waits for us), or still sending
		}
		if held := o.reserved.Load() + o.buffered.Load(); held > vHeld {
			victim, vHeld = o, held
		}
	}
	s.connMu.Unlock()
	if victim == nil {
		return
	}
	s.evicting.Store(victim)
	s.evictedAt.Store(now)
	if !victim.shut() {
		s.evicting.CompareAndSwap(victim, nil) // closed meanwhile: its OnClose may have run
		return
	}
	s.stats.closedBudget.Add(1)
	if n, ok := s.roomLog.Allow(); ok {
		s.logger.Warn("request memory short (max_queued_bytes); closing the stalled connection holding the most bytes of an incomplete request",
			"remote", victim.remote, "bytes", vHeld, "suppressed", n)
	}
}

// released returns a request's bytes to the budget and wakes the starved
// connections. Any goroutine.
func (s *Server) released(size int64) {
	s.queued.Add(-size)
	s.lastRelease.Store(time.Now().UnixNano())
	s.wakeStarved()
}

// wakeStarved wakes the connections waiting for the budget: each tries
// again on its loop. Any goroutine.
func (s *Server) wakeStarved() {
	if s.nStarved.Load() == 0 {
		return
	}
	s.starveMu.Lock()
	conns := make([]*Conn, 0, len(s.starved))
	for c := range s.starved {
		conns = append(conns, c) // still waiting until they get room
	}
	clear(s.starved)
	s.nStarved.Store(0)
	s.starveMu.Unlock()
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.stopped {
		return
	}
	for _, c := range conns {
		if !c.closed.Load() {
			_ = c.wire().Wake(nil)
		}
	}
}

// dropPartial frees the incomplete frame of a closed connection and
// returns the bytes of the budget it held. Loop goroutine.
func (c *Conn) dropPartial() int64 {
	c.srv.overdraft.CompareAndSwap(c, nil)
	held := c.reserved.Swap(0)
	c.srv.incomplete.Add(-held)
	if c.partial != nil {
		c.srv.pool.put(c.partial)
		c.partial = nil
	}
	c.need = 0
	c.stream = nil
	return held
}

// directReadMin is the part of a frame still to come above which netio
// reads the socket itself, straight into the frame's buffer.
const directReadMin = 32 << 10

// readDirect reads the rest of the partial frame from the socket until the
// frame is complete, the socket has nothing more (EAGAIN) or the budget
// stops the buffer growing. gnet's own buffers must be empty, so no byte
// is read out of order. Loop goroutine.
func (c *Conn) readDirect(gc gnet.Conn) gnet.Action {
	s := c.srv
	for c.have() < c.need {
		if c.room() == 0 {
			// Grow for what the socket holds already, if it says.
			ready, _ := unix.IoctlGetInt(gc.Fd(), unix.SIOCINQ)
			if !s.grow(c, max(ready, 0)) {
				return gnet.None // gnet reads on; the frame waits for room
			}
		}
		bb := c.partial
		n, err := unix.Read(gc.Fd(), bb.B[len(bb.B):min(cap(bb.B), c.need)])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return gnet.None
		case err != nil:
			s.logger.Debug("read failed; closing", "remote", c.remote, "err", err)
			return gnet.Close
		case n == 0: // the peer closed mid-frame
			return gnet.Close
		}
		bb.B = bb.B[:len(bb.B)+n]
		now := time.Now().UnixNano()
		c.lastRead.Store(now)
		c.lastActive.Store(now)
		if s := s.streamer; s != nil {
			c.stream = s.Stream(bb.B, c.stream)
		}
	}
	return gnet.None
}

// OnTick closes idle connections and those whose frames stall or crawl,
// and trims the frame pool. gnet's ticker goroutine.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	l := s.limits.Load()
	now := time.Now()
	ns := now.UnixNano()
	s.connMu.Lock()
	for c := range s.conns {
		if c.closed.Load() {
			continue
		}
		// inflight first: complete updates lastActive before it lowers
		// inflight.
		if l.IdleTimeout > 0 && c.inflight.Load() == 0 && c.lastActive.Load() < ns-int64(l.IdleTimeout) {
			c.Close("idle timeout") // only queues the close: no lock cycle
			continue
		}
		start := c.frameStart.Load()
		if start == 0 || c.paused.Load() || c.waiting.Load() || s.draining.Load() {
			continue // no frame arriving, or it waits for us
		}
		var why string
		switch {
		case l.FrameStallTimeout > 0 && ns-c.lastRead.Load() > int64(l.FrameStallTimeout):
			why = "request frame stalled; closing"
		case l.FrameTimeout > 0 && ns-start > int64(l.FrameTimeout):
			why = "request frame too slow; closing"
		default:
			continue
		}
		s.stats.closedSlow.Add(1)
		if n, ok := s.slowLog.Allow(); ok {
			s.logger.Warn(why, "remote", c.remote, "received", c.reserved.Load()+c.buffered.Load(),
				"since", now.Sub(time.Unix(0, start)).Round(time.Millisecond), "suppressed", n)
		}
		c.shut()
	}
	s.ipRate.prune(now)
	s.connMu.Unlock()
	if s.nStarved.Load() > 0 && ns-s.lastRelease.Load() >= int64(stalledAfter) {
		// Nothing released for a while: without a retry the starved
		// would wait for a release that may never come.
		s.lastRelease.Store(ns)
		s.wakeStarved()
	}
	if now.Sub(s.lastTrim) >= trimEvery {
		s.lastTrim = now
		s.pool.trim()
	}
	return tickInterval(l), gnet.None
}

// tickInterval keeps an idle connection's lifetime within 1.5 timeouts, and
// a stalled frame's within 1.5 stall timeouts.
func tickInterval(l *Limits) time.Duration {
	d := time.Second
	for _, t := range []time.Duration{l.IdleTimeout, l.FrameStallTimeout, l.FrameTimeout} {
		if t > 0 {
			d = min(d, t/2)
		}
	}
	return max(d, 10*time.Millisecond)
}
