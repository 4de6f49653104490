package netio

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Conn is one client connection. Requests are read on the event loop,
// handled in order on the connection's worker goroutine, and may complete in
// any order on any goroutine; responses leave strictly in request order.
type Conn struct {
	srv *Server
	// gc is the transport: gnet's connection, or a goroutine
	// transport's (tlsWire: a TLS connection, or a plaintext one moved
	// off gnet because it pipelines faster than it is served, move.go).
	// It changes once at most, on a move, under mu.
	gc atomic.Pointer[wireRef]
	// moving: the goroutine transport taking over from gnet (move.go),
	// until it does. Loop-owned.
	moving *tlsWire
	// listener is the name of the listener the client came in on
	// (PLAINTEXT, SSL, or a name of listener_security_protocol_map).
	listener string
	// principal is who the client is: User:ANONYMOUS until TLS client
	// authentication or SASL says otherwise.
	principal atomic.Pointer[string]
	id        uint64
	remote    string
	ip        string // remote's address part: per-address limits
	self      bool   // from DialSelf: not counted against the limits

	reqs chan *Request // (loop sends) frames waiting for the worker

	// Loop-owned.
	nextSeq uint64
	partial *frameBuf // the frame being read, its size prefix consumed; nil until its first bytes
	need    int       // size of the frame being read; 0: none
	stream  any       // the handler's Stream state for the partial frame

	// The loop writes these; eviction, OnTick and metrics read them.
	reserved   atomic.Int64 // budget bytes the incomplete frame's buffer holds
	buffered   atomic.Int64 // unframed bytes gnet kept after the last OnTraffic
	frameStart atomic.Int64 // unix ns since which a frame has been arriving; 0: none
	lastRead   atomic.Int64 // unix ns of the last OnTraffic
	waiting    atomic.Bool  // among the starved: the budget is short
	waitSince  atomic.Int64 // unix ns the wait began
	arrived    atomic.Bool  // the frame's bytes are all here (some in gnet's buffer)
	// trusted: authenticated (a listener with RequireAuth), or past its
	// first complete request; before, frames are held to
	// MaxPreAuthRequestBytes.
	trusted atomic.Bool
	// rawNext: the next frame is a bare SASL token (ExpectRawFrame).
	rawNext atomic.Bool

	mu        sync.Mutex
	nextWrite uint64 // (mu) sequence of the next response to write
	// blocked: a response with file chunks is being sent by the loop,
	// outside gnet's buffer; later responses wait in their slots until it
	// is done (unblock).
	blocked atomic.Bool // (mu for writes)
	slots   []*Response // (mu) ring indexed by seq % len
	ready   []bool      // (mu)

	// Direct writes: a response (with file chunks, up to
	// maxDirectZeroCopy) is written to the socket by the goroutine that
	// completes it, under mu, when gnet has nothing of this connection's
	// to send (direct; netio/LOCKS.md). The hop to the loop
	// (a task queued, the eventfd, the loop thread woken) cost p50 50 µs
	// and p99 0.3 ms at 10,000 records/s on two cores.
	loopOwned   int          // (mu) byte responses handed to gnet whose write callback has not run
	gnetPending bool         // (mu) gnet's outbound buffer may hold bytes: no direct write
	inflight    atomic.Int32 // requests read but not yet handed to gnet
	paused      atomic.Bool  // the loop stopped reading until a slot frees
	// rechecking: a wake-up is due to look again at unread output
	// (MaxOutboundBytes).
	rechecking atomic.Bool
	closed     atomic.Bool // no more responses can be written
	// aborted: samsa closed the connection (bad input, flooding, the
	// engine's decision); requests still queued are dropped. When the
	// peer closes, queued requests are still served, as Kafka does
	// (acks=0 producers close right after their last request), and only
	// their responses are dropped.
	aborted    atomic.Bool
	lastActive atomic.Int64 // unix nanos

	// Drain's view of the outbound side: writes counts responses handed to
	// gnet or written directly; quiet is writes+1 once a loop-side probe
	// saw them all leave gnet's outbound buffer with nothing in flight (see
	// probeQuiet).
	writes  atomic.Uint64
	quiet   atomic.Uint64
	probing atomic.Bool

	// State is for the handler: per-connection protocol state (fetch
	// sessions, SASL). Only the worker goroutine touches it.
	State any
}

// wireRef holds a transport, so that one can replace another atomically.
type wireRef struct{ w wire }

// wire is the connection's transport. Any goroutine.
func (c *Conn) wire() wire { return c.gc.Load().w }

// onGoroutines reports whether the connection runs on a goroutine
// transport (tlsWire): its file parts are read into memory, never sent by
// sendfile. Any goroutine.
func (c *Conn) onGoroutines() bool {
	_, ok := c.wire().(*tlsWire)
	return ok
}

// Closed reports whether the connection is gone: responses will not be
// written. Any goroutine.
func (c *Conn) Closed() bool { return c.closed.Load() }

// ID is a process-unique connection number.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() string { return c.remote }

// RemoteIP is the client's address without the port: the host ACLs name.
func (c *Conn) RemoteIP() string { return c.ip }

// Close closes the connection, logging why (a line a second at most). Responses already handed to
// gnet are still sent; later ones are dropped. Any goroutine.
func (c *Conn) Close(reason string) {
	if !c.closed.Load() {
		if n, ok := c.srv.closeLog.Allow(); ok {
			c.srv.logger.Info("closing connection", "remote", c.remote, "reason", reason, "suppressed", n)
		}
	}
	c.shut()
}

// shut closes the connection as Close does, without a log line: for
// callers that log at most a line a second. It reports whether this call closed it. Any goroutine.
func (c *Conn) shut() bool {
	c.aborted.Store(true)
	if !c.closed.CompareAndSwap(false, true) {
		return false
	}
	s := c.srv
	s.lifeMu.RLock()
	if !s.stopped {
		_ = c.wire().Close()
	}
	s.lifeMu.RUnlock()
	return true
}

// Listener is the name of the listener the client came in on.
func (c *Conn) Listener() string { return c.listener }

// Principal is the client's principal in Kafka's form ("User:name").
// Any goroutine.
func (c *Conn) Principal() string {
	if p := c.principal.Load(); p != nil {
		return *p
	}
	return AnonymousPrincipal
}

// SetPrincipal records who the client authenticated as. Any goroutine.
func (c *Conn) SetPrincipal(p string) { c.principal.Store(&p) }

// AnonymousPrincipal is Kafka's principal of an unauthenticated client.
const AnonymousPrincipal = "User:ANONYMOUS"

// ExpectRawFrame makes the connection's next frame a bare SASL token
// (Request.Raw), as clients send after SaslHandshake v0. The handler calls
// it before answering the handshake: the client sends the token only once
// it has the answer. Any goroutine.
func (c *Conn) ExpectRawFrame() { c.rawNext.Store(true) }

// SetAuthenticated lifts the pre-authentication bound on frame sizes
// (Limits.MaxPreAuthRequestBytes): the handler calls it once the client
// has authenticated. Any goroutine.
func (c *Conn) SetAuthenticated() { c.trusted.Store(true) }

// outboundRecheck: how soon a connection whose answers wait unread
// (MaxOutboundBytes) looks again. Neither transport says when its
// output drains.
const outboundRecheck = 2 * time.Millisecond

// recheckLater wakes the connection's loop shortly, to look again at
// its unread output. Any goroutine.
func (c *Conn) recheckLater() {
	if !c.rechecking.CompareAndSwap(false, true) {
		return
	}
	c.srv.afterRunning(outboundRecheck, func() {
		c.rechecking.Store(false)
		if !c.closed.Load() {
			_ = c.wire().Wake(nil)
		}
	})
}

// cut closes a connection whose response could not be written whole (the
// peer is gone: EPIPE, ECONNRESET; or the stream is cut mid-frame): marked
// closed first, so that no later response follows the truncated one onto
// the wire before gnet runs the (queued) close. Requests already received
// are still served. On the loop goroutine, or with c.mu held (a direct
// write).
func (c *Conn) cut(gc wire) {
	c.closed.Store(true)
	_ = gc.Close()
}

// abort marks a connection samsa is closing from its loop (the caller
// returns gnet.Close). Loop goroutine.
func (c *Conn) abort() {
	c.aborted.Store(true)
	c.closed.Store(true)
}

// complete stores a finished response and writes every response that is now
// next in order.
func (c *Conn) complete(seq uint64, resp *Response) {
	c.mu.Lock()
	n := uint64(len(c.slots))
	if c.ready[seq%n] || seq < c.nextWrite {
		c.mu.Unlock()
		panic("BUG: netio: response slot already in use")
	}
	c.slots[seq%n] = resp
	c.ready[seq%n] = true
	if c.ready[c.nextWrite%n] {
		// Before inflight drops: the idle check reads them the other
		// way round.
		c.lastActive.Store(time.Now().UnixNano())
	}
	var buf [4]*Response
	dropped := c.flushLocked(buf[:0])
	c.mu.Unlock()
	// Outside c.mu: Release is the handler's code.
	for _, r := range dropped {
		r.free()
	}
}

// flushLocked writes every response that is next in order, until one with
// file chunks blocks the connection. It returns the responses not to be
// written, for the caller to free outside c.mu. c.mu should be held.
func (c *Conn) flushLocked(dropped []*Response) []*Response {
	n := uint64(len(c.slots))
	for !c.blocked.Load() && c.ready[c.nextWrite%n] {
		i := c.nextWrite % n
		r := c.slots[i]
		c.slots[i], c.ready[i] = nil, false
		c.nextWrite++
		if !c.writeLocked(r) {
			dropped = append(dropped, r)
		}
	}
	return dropped
}

// unblock ends a blocking response and writes the ones that waited behind
// it. Any goroutine.
func (c *Conn) unblock(gc gnet.Conn) {
	c.mu.Lock()
	c.blocked.Store(false)
	if gc != nil {
		// On the loop, after sendAll: what writeThroughGnet left in
		// gnet's buffer keeps later responses on the loop.
		c.settleLocked(gc)
	}
	var buf [4]*Response
	dropped := c.flushLocked(buf[:0])
	c.mu.Unlock()
	for _, r := range dropped {
		r.free()
	}
}

// writeLocked writes a response directly or hands it to gnet. It reports
// false if it has nothing more to do with it (written whole directly, not
// to be written: acks=0, connection gone); the caller frees those. c.mu
// must be held: it keeps the direct writes and AsyncWritev calls, and so
// the bytes on the wire, in request order (gnet runs them in the order
// queued).
func (c *Conn) writeLocked(r *Response) bool {
	s := c.srv
	queued := false
	s.lifeMu.RLock()
	if !r.skip && !c.closed.Load() && !s.stopped {
		// On error the task may be queued all the same; free is idempotent.
		gc := c.wire()
		if tw, ok := gc.(*tlsWire); ok {
			// The writer reads the file chunks as it seals them.
			queued = tw.asyncWriteChunks(r.chunks, r.written) == nil
		} else if r.zeroCopy() {
			queued = c.sendZeroCopy(gc, r)
		} else if g, ok := gc.(gnet.Conn); ok && c.direct() {
			switch rest, err := c.writeDirect(g, r); {
			case err != nil: // being closed; the caller frees it
			case rest == nil:
				c.writes.Add(1)
				c.srv.stats.direct.Add(1)
			default:
				c.srv.stats.directRest.Add(1)
				if queued = c.handToGnet(gc, r, rest); !queued {
					c.cut(gc) // half a response is on the wire
				}
			}
		} else {
			queued = c.handToGnet(gc, r, r.chunks[0].bufs)
		}
		if queued {
			c.writes.Add(1)
		}
	}
	// After writes: Drain reads inflight, then writes.
	c.inflight.Add(-1)
	if c.paused.CompareAndSwap(true, false) && !s.stopped {
		// A goroutine transport read nothing while paused: the frame
		// stall clock starts again now.
		c.lastRead.Store(time.Now().UnixNano())
		_ = c.wire().Wake(nil)
	}
	s.lifeMu.RUnlock()
	return queued
}

// direct reports whether a response may be written straight to gnet's
// socket now. c.mu must be held; the wire must be gnet's.
func (c *Conn) direct() bool {
	return c.loopOwned == 0 && !c.gnetPending && !c.blocked.Load()
}

// maxDirectZeroCopy bounds the responses with file chunks sent directly:
// a tailing consumer's fetch, which the socket takes whole. A bulk
// consumer's megabytes fill the socket and go on from the loop anyway,
// so they start there, as before direct writes.
const maxDirectZeroCopy = 256 << 10

// sendZeroCopy sends a response with file chunks: directly where it may,
// else (or for what the socket does not take) from the loop (sendAll),
// outside gnet's buffer, with the connection blocked meanwhile so nothing
// else reaches the socket. It reports whether the loop has it. c.mu must
// be held.
func (c *Conn) sendZeroCopy(gc wire, r *Response) bool {
	if g, ok := gc.(gnet.Conn); ok && r.frameSize() <= maxDirectZeroCopy && c.direct() {
		switch err := r.sendChunks(g.Fd()); err {
		case nil:
			c.writes.Add(1)
			c.srv.stats.direct.Add(1)
			return false // sent: the caller frees it
		case unix.EAGAIN:
			c.srv.stats.directRest.Add(1)
		default:
			c.cut(gc)
			return false
		}
	}
	c.blocked.Store(true)
	c.gnetPending = true
	if gc.AsyncWritev(nil, r.sendAll) != nil {
		c.blocked.Store(false)
		if r.ci > 0 || r.bi > 0 || r.off > 0 {
			c.cut(gc) // part of it is on the wire
		}
		return false
	}
	return true
}

// writeDirect writes a byte response straight to gnet's socket. It returns
// what the socket did not take (nil: all of it), or an error when the
// connection failed (it is then being closed). c.mu must be held: OnClose
// takes it before gnet closes the descriptor, so the number cannot be
// reused under the write.
func (c *Conn) writeDirect(gc gnet.Conn, r *Response) ([][]byte, error) {
	bufs := r.chunks[0].bufs
	bi, off := 0, int64(0)
	switch err := writevFrom(gc.Fd(), bufs, &bi, &off); err {
	case nil:
		return nil, nil
	case unix.EAGAIN:
		return append([][]byte{bufs[bi][off:]}, bufs[bi+1:]...), nil
	default:
		c.cut(gc)
		return nil, err
	}
}

// handToGnet queues bufs, the rest of r, for gnet's loop to write (and
// buffer what the socket does not take). c.mu must be held.
func (c *Conn) handToGnet(gc wire, r *Response, bufs [][]byte) bool {
	// Counted before the callback can run. On an error the task may be
	// queued all the same (free is idempotent); if its callback never
	// runs, the connection keeps to the loop, which is safe.
	r.onLoop = true
	c.loopOwned++
	c.gnetPending = true
	return gc.AsyncWritev(bufs, r.written) == nil
}

// loopWrote is the loop's note that a byte response handed to gnet has
// been written or buffered: once none is left, gnet's buffer decides
// whether the next response may be written directly. Loop goroutine.
func (c *Conn) loopWrote(gc gnet.Conn, err error) {
	c.mu.Lock()
	c.loopOwned--
	if err == nil {
		c.settleLocked(gc)
	}
	c.mu.Unlock()
}

// settleLocked: once gnet has none of the connection's responses left to
// run, its outbound buffer decides whether the next response may be
// written directly. Loop goroutine, c.mu held.
func (c *Conn) settleLocked(gc gnet.Conn) {
	if c.loopOwned == 0 && !c.blocked.Load() {
		c.gnetPending = gc.OutboundBuffered() > 0
	}
}

// probeQuiet asks the connection's loop whether every response handed to
// gnet so far has left its outbound buffer and no request is in flight. The
// probe is an empty AsyncWritev, so it runs after every write queued before
// it, and after any OnTraffic that was under way. Any goroutine.
func (c *Conn) probeQuiet() {
	if !c.probing.CompareAndSwap(false, true) {
		return
	}
	w := c.writes.Load()
	s := c.srv
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.stopped {
		c.probing.Store(false)
		return
	}
	gc := c.wire()
	err := gc.AsyncWritev(nil, func(_ gnet.Conn, err error) error {
		if err != nil || (gc.OutboundBuffered() == 0 && c.inflight.Load() == 0 && !c.blocked.Load()) {
			c.quiet.Store(w + 1)
		}
		c.probing.Store(false)
		return nil
	})
	if err != nil {
		c.probing.Store(false)
	}
}

// isQuiet reports whether the last probe saw the connection idle and
// nothing has been written since.
func (c *Conn) isQuiet() bool {
	return c.inflight.Load() == 0 && c.quiet.Load() == c.writes.Load()+1
}

// runWorker hands requests to the handler in order.
func (c *Conn) runWorker() {
	defer c.srv.wg.Done()
	for req := range c.reqs {
		if c.aborted.Load() || c.srv.halted.Load() {
			req.Done()
			continue
		}
		c.srv.handler.Serve(req)
	}
	c.srv.handler.ConnClosed(c)
}
