package netio

// TLS listeners. gnet has no TLS, so a TLS listener accepts with the net
// package and gives each connection three goroutines around Go's
// crypto/tls: a reader (decrypts into pooled buffers), a loop (the
// connection's own event loop: framing, exactly as gnet's loops run it) and
// a writer (seals the responses, coalescing small ones). tlsWire is what
// the framing and the response queue see in place of a gnet.Conn.
//
// Kernel TLS would let file parts keep sendfile (the kernel seals them);
// this is where it would go: after the handshake, hand the session keys to
// the socket (setsockopt TCP_ULP "tls") and give the connection a
// gnet-style wire on the raw descriptor. Not built: the kernels here offer
// no tls ULP to test it on.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// TLSOptions make a Server a TLS listener.
type TLSOptions struct {
	// Config returns the config for a new connection's handshake; a
	// reloaded certificate applies to the next handshake, and open
	// connections keep theirs.
	Config func() *tls.Config
	// HandshakeTimeout bounds a handshake from accept; 0: 10 s. The
	// connection counts against the connection limits meanwhile, so slow
	// handshakes (slowloris) hold at most that many for at most that long.
	HandshakeTimeout time.Duration
	// Principal names the client from its handshake (its verified
	// certificate); nil, or "" returned: User:ANONYMOUS.
	Principal func(tls.ConnectionState) string
	// Wrap, if set, wraps each connection after its handshake: a codec
	// (the replication link's lz4) between TLS and the Kafka framing.
	Wrap func(net.Conn) net.Conn
}

const (
	defaultHandshakeTimeout = 10 * time.Second
	// tlsReadSize is a read from the TLS connection: a few records.
	tlsReadSize = 64 << 10
	// tlsCoalesce: responses and parts below it are copied into one
	// buffer and sealed together (few records, one write); larger ones
	// are sealed straight from their own buffers.
	tlsCoalesce = 16 << 10
	// closeFlushTimeout bounds how long a closing connection may take to
	// send what was queued before its close.
	closeFlushTimeout = 5 * time.Second
)

var tlsReadPool = sync.Pool{New: func() any { b := make([]byte, tlsReadSize); return &b }}

// startTLS listens and accepts in the background.
func (s *Server) startTLS() error {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		if s.opts.BindDevice == "" {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, s.opts.BindDevice)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", s.opts.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	s.lifeMu.Lock()
	s.started = true
	s.lifeMu.Unlock()
	s.tlsWG.Add(2)
	go s.acceptTLS()
	go s.tickTLS()
	return nil
}

// acceptTLS accepts until the listener closes.
func (s *Server) acceptTLS() {
	defer s.tlsWG.Done()
	var backoff time.Duration
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			if s.halted.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.draining.Load() || !s.admit(raw.RemoteAddr()) {
			raw.Close()
			continue
		}
		s.connMu.Lock()
		if s.handshaking == nil {
			s.handshaking = map[net.Conn]struct{}{}
		}
		s.handshaking[raw] = struct{}{}
		s.connMu.Unlock()
		s.tlsWG.Add(1)
		go s.serveTLS(raw)
	}
}

// tickTLS runs OnTick as gnet's ticker would, until Stop.
func (s *Server) tickTLS() {
	defer s.tlsWG.Done()
	for {
		d, _ := s.OnTick()
		select {
		case <-s.tlsQuit:
			return
		case <-time.After(d):
		}
	}
}

// serveTLS runs one connection: the handshake, then its loop.
func (s *Server) serveTLS(raw net.Conn) {
	defer s.tlsWG.Done()
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if s.isSelf(raw.RemoteAddr()) {
		// DialSelf's connection (the watchdog's self-check): the
		// process itself on a port it registered, served without TLS,
		// which it could not complete where client certificates are
		// required.
		s.connMu.Lock()
		delete(s.handshaking, raw)
		s.connMu.Unlock()
		bw := &batchConn{Conn: raw, batching: true}
		w := newTLSWire(s, bw, raw, bw)
		s.lifeMu.RLock()
		if s.stopped {
			s.lifeMu.RUnlock()
			raw.Close()
			return
		}
		s.open(w)
		s.lifeMu.RUnlock()
		w.run()
		return
	}
	o := s.opts.TLS
	timeout := o.HandshakeTimeout
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	bw := &batchConn{Conn: raw}
	tc := tls.Server(bw, o.Config())
	_ = raw.SetDeadline(time.Now().Add(timeout))
	err := tc.Handshake()
	_ = raw.SetDeadline(time.Time{})
	s.connMu.Lock()
	delete(s.handshaking, raw)
	s.connMu.Unlock()
	if err != nil || s.halted.Load() {
		raw.Close()
		s.unadmit(raw.RemoteAddr())
		if err != nil {
			s.stats.closedBad.Add(1)
			if n, ok := s.badLog.Allow(); ok {
				s.logger.Warn("TLS handshake failed; closing", "remote", raw.RemoteAddr().String(), "err", err, "suppressed", n)
			}
		}
		return
	}
	bw.batching = true // after the handshake, which flushes its own writes
	var wc net.Conn = tc
	if o.Wrap != nil {
		wc = o.Wrap(tc)
	}
	w := newTLSWire(s, wc, raw, bw)
	s.lifeMu.RLock()
	if s.stopped {
		s.lifeMu.RUnlock()
		raw.Close()
		s.unadmit(raw.RemoteAddr())
		return
	}
	c := s.open(w)
	s.lifeMu.RUnlock()
	if o.Principal != nil {
		if p := o.Principal(tc.ConnectionState()); p != "" {
			c.SetPrincipal(p)
		}
	}
	w.run()
}

// unadmit gives back what admit counted for a connection that never
// opened.
func (s *Server) unadmit(remote net.Addr) {
	if s.isSelf(remote) {
		return
	}
	s.connMu.Lock()
	s.connGoneLocked(hostOf(remote))
	s.connMu.Unlock()
}

// stopTLS closes the listener and every connection, and waits for their
// goroutines.
func (s *Server) stopTLS(ctx context.Context) error {
	_ = s.ln.Close()
	close(s.tlsQuit)
	s.connMu.Lock()
	for c := range s.conns {
		_ = c.wire().Close()
	}
	for raw := range s.handshaking {
		_ = raw.Close()
	}
	s.connMu.Unlock()
	return s.waitGoroutines(ctx)
}

// waitGoroutines waits for the connections' goroutines (workers and
// goroutine transports), or until ctx ends.
func (s *Server) waitGoroutines(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.tlsWG.Wait()
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tlsWire is a TLS connection seen as a wire. The loop goroutine (run)
// owns in and off.
type tlsWire struct {
	s   *Server
	tc  net.Conn // the TLS connection, wrapped (for DialSelf's, bw itself)
	raw net.Conn
	bw  *batchConn   // under tc: gathers its records into few writes
	ctx atomic.Value // *Conn

	// Loop-owned: the input not yet framed is in[off:].
	in  []byte
	off int

	data    chan []byte   // reader -> loop: decrypted input; closed at EOF or error
	readErr error         // valid once data is closed
	wake    chan struct{} // Wake -> loop

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []tlsWrite // (mu) what the writer has still to send
	closing  bool       // (mu) Close was called
	outBytes atomic.Int64
	closed   atomic.Bool // the socket is closed
}

// newTLSWire is the wire of a connection read and written through tc
// (the TLS session, possibly wrapped), on the socket raw, whose writes bw
// gathers.
func newTLSWire(s *Server, tc, raw net.Conn, bw *batchConn) *tlsWire {
	w := &tlsWire{s: s, tc: tc, raw: raw, bw: bw, data: make(chan []byte, 4), wake: make(chan struct{}, 1)}
	w.cond = sync.NewCond(&w.mu)
	return w
}

type tlsWrite struct {
	bufs   [][]byte
	chunks []chunk // instead of bufs: a response, its file ranges unread
	cb     gnet.AsyncCallback
	n      int64
}

// run starts the reader and the writer and runs the loop until the
// connection is gone.
func (w *tlsWire) run() {
	go w.readLoop()
	go w.writeLoop()
	c, _ := w.Context().(*Conn) // set before run
	for {
		// While the connection is paused, or its answers wait unread,
		// take no input: the reader blocks, the socket's buffers fill,
		// and TCP pushes back on the client. The response that unpauses
		// it wakes the loop, so do recheckLater and the writer closing
		// the socket.
		data := w.data
		if c != nil && !w.closed.Load() {
			switch {
			case c.paused.Load():
				data = nil
			case w.OutboundBuffered() > w.s.opts.MaxOutboundBytes:
				data = nil
				c.recheckLater()
			}
		}
		select {
		case b, ok := <-data:
			if !ok {
				w.finish()
				return
			}
			w.in = append(w.in, b...)
			tlsReadPool.Put(&b)
		case <-w.wake:
		}
		if w.s.traffic(w) == gnet.Close {
			_ = w.Close()
			// Drain the reader until the close reaches it.
			for b := range w.data {
				tlsReadPool.Put(&b)
			}
			w.finish()
			return
		}
		w.compact()
	}
}

// finish ends the connection once the reader is done.
func (w *tlsWire) finish() {
	_ = w.Close()
	w.in, w.off = nil, 0
	w.s.closed(w, w.readErr)
}

// compact moves the unframed input to the front of the buffer, and drops
// a large buffer once it is empty.
func (w *tlsWire) compact() {
	switch rest := len(w.in) - w.off; {
	case rest == 0 && cap(w.in) > 4*tlsReadSize:
		w.in, w.off = nil, 0
	case rest == 0:
		w.in, w.off = w.in[:0], 0
	case w.off > cap(w.in)/2:
		n := copy(w.in, w.in[w.off:])
		w.in, w.off = w.in[:n], 0
	}
}

// readLoop reads the TLS connection into pooled buffers for the loop.
func (w *tlsWire) readLoop() {
	defer close(w.data)
	for {
		bp := tlsReadPool.Get().(*[]byte)
		b := (*bp)[:tlsReadSize]
		n, err := w.tc.Read(b)
		if n > 0 {
			w.data <- b[:n]
		} else {
			tlsReadPool.Put(bp)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !w.closed.Load() {
				w.readErr = err
			}
			return
		}
	}
}

// writeLoop seals and sends what AsyncWritev queued, in order, then runs
// the callbacks; after Close it sends what was queued before it and closes
// the socket.
func (w *tlsWire) writeLoop() {
	var (
		werr error
		buf  []byte
	)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing {
			w.cond.Wait()
		}
		tasks, closing := w.queue, w.closing
		w.queue = nil
		w.mu.Unlock()
		for i, t := range tasks {
			if werr == nil && t.chunks != nil {
				buf, werr = w.sendChunks(buf, t.chunks, i == len(tasks)-1)
				if werr == nil && i == len(tasks)-1 {
					werr = w.bw.flush()
				}
			} else if werr == nil {
				buf, werr = w.send(buf, t.bufs, i == len(tasks)-1)
				if werr == nil && i == len(tasks)-1 {
					werr = w.bw.flush()
				}
			}
			w.outBytes.Add(-t.n)
			if t.cb != nil {
				_ = t.cb(nil, werr)
			}
		}
		if cap(buf) > 4*tlsCoalesce {
			buf = nil
		}
		if werr != nil || closing {
			w.mu.Lock()
			more := len(w.queue) > 0 && werr == nil
			w.mu.Unlock()
			if more {
				continue // queued before the close: send it too
			}
			w.shut()
			return
		}
	}
}

// shut fails what is still queued, closes the socket and wakes the loop
// (a paused one takes the reader's end then).
func (w *tlsWire) shut() {
	w.mu.Lock()
	w.closing = true
	rest := w.queue
	w.queue = nil
	w.mu.Unlock()
	for _, t := range rest {
		w.outBytes.Add(-t.n)
		if t.cb != nil {
			_ = t.cb(nil, net.ErrClosed)
		}
	}
	w.closed.Store(true)
	_ = w.raw.Close()
	_ = w.Wake(nil)
}

// tlsFileStep is how much of a file range the writer reads before it
// seals it: the first bytes of a large fetch leave after one step has
// been read instead of the whole response, so the client decrypts while
// the rest is read and sealed.
const tlsFileStep = 256 << 10

// sendChunks writes a response's chunks: bytes as send does, file ranges
// read a step at a time into one reused buffer and sealed at once.
func (w *tlsWire) sendChunks(buf []byte, chunks []chunk, last bool) ([]byte, error) {
	for i, ch := range chunks {
		if ch.file == nil {
			var err error
			if buf, err = w.send(buf, ch.bufs, last && i == len(chunks)-1); err != nil {
				return buf, err
			}
			continue
		}
		if len(buf) > 0 {
			if _, err := w.tc.Write(buf); err != nil {
				return buf[:0], err
			}
			buf = buf[:0]
		}
		if err := w.sendFile(ch.file, ch.off, ch.n); err != nil {
			return buf, err
		}
	}
	if last && len(buf) > 0 {
		_, err := w.tc.Write(buf)
		return buf[:0], err
	}
	return buf, nil
}

// sendFile reads n bytes at off of f a step at a time and writes each.
func (w *tlsWire) sendFile(f *os.File, off, n int64) error {
	bb := filePool.Get()
	defer filePool.Put(bb)
	if int64(cap(bb.B)) < min(n, tlsFileStep) {
		bb.B = make([]byte, min(n, tlsFileStep))
	}
	for n > 0 {
		step := bb.B[:min(n, int64(cap(bb.B)), tlsFileStep)]
		if k, err := f.ReadAt(step, off); k < len(step) {
			if err == nil || errors.Is(err, io.EOF) {
				err = errFileShort
			}
			return fmt.Errorf("cannot read %d bytes at %d of %s: %w", len(step), off, f.Name(), err)
		}
		if _, err := w.tc.Write(step); err != nil {
			return err
		}
		w.s.stats.copiedBytes.Add(int64(len(step)))
		off += int64(len(step))
		n -= int64(len(step))
	}
	return nil
}

// asyncWriteChunks queues a response whose file chunks the writer reads
// (sendChunks); cb runs on the writer once it is sent or failed.
func (w *tlsWire) asyncWriteChunks(chunks []chunk, cb gnet.AsyncCallback) error {
	var n int64
	for _, ch := range chunks {
		n += ch.n
		for _, b := range ch.bufs {
			n += int64(len(b))
		}
	}
	return w.enqueue(tlsWrite{chunks: chunks, cb: cb, n: n})
}

// enqueue hands t to the writer; it fails once the connection is closing.
func (w *tlsWire) enqueue(t tlsWrite) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return net.ErrClosed
	}
	w.outBytes.Add(t.n)
	w.queue = append(w.queue, t)
	w.cond.Signal()
	return nil
}

// send writes bufs: small ones gathered in buf, sealed together when buf
// fills, a large one arrives, or last is set (nothing else is queued).
func (w *tlsWire) send(buf []byte, bufs [][]byte, last bool) ([]byte, error) {
	for _, b := range bufs {
		if len(b) >= tlsCoalesce {
			if len(buf) > 0 {
				if _, err := w.tc.Write(buf); err != nil {
					return buf[:0], err
				}
				buf = buf[:0]
			}
			if _, err := w.tc.Write(b); err != nil {
				return buf, err
			}
			continue
		}
		if len(buf)+len(b) > tlsCoalesce && len(buf) > 0 {
			if _, err := w.tc.Write(buf); err != nil {
				return buf[:0], err
			}
			buf = buf[:0]
		}
		buf = append(buf, b...)
	}
	if last && len(buf) > 0 {
		_, err := w.tc.Write(buf)
		return buf[:0], err
	}
	return buf, nil
}

// batchConn gathers what crypto/tls writes, a record (16 KiB at most) per
// call, into writes of up to batchSize: a 1 MiB fetch response leaves in
// four system calls rather than sixty-four. The writer flushes after each
// batch of responses. mu: the reader goroutine may write too (crypto/tls
// answers a TLS 1.3 KeyUpdate from Read); that record goes out with the
// next flush.
type batchConn struct {
	net.Conn
	batching bool // set once, after the handshake, before any other goroutine runs
	mu       sync.Mutex
	buf      []byte
}

const batchSize = 256 << 10

func (b *batchConn) Write(p []byte) (int, error) {
	if !b.batching {
		return b.Conn.Write(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > batchSize {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= batchSize {
			return b.Conn.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// flush writes what is gathered.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	if cap(b.buf) > batchSize+tlsCoalesce {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

func (w *tlsWire) Peek(n int) ([]byte, error) {
	if len(w.in)-w.off < n {
		return nil, io.ErrShortBuffer
	}
	return w.in[w.off : w.off+n], nil
}

func (w *tlsWire) Discard(n int) (int, error) {
	n = min(n, len(w.in)-w.off)
	w.off += n
	return n, nil
}

func (w *tlsWire) Read(p []byte) (int, error) {
	n := copy(p, w.in[w.off:])
	w.off += n
	return n, nil
}

func (w *tlsWire) InboundBuffered() int  { return len(w.in) - w.off }
func (w *tlsWire) OutboundBuffered() int { return int(w.outBytes.Load()) }

// AsyncWritev queues bs; cb runs on the writer goroutine once they are
// sent (or failed). It fails once the connection is closing.
func (w *tlsWire) AsyncWritev(bs [][]byte, cb gnet.AsyncCallback) error {
	var n int64
	for _, b := range bs {
		n += int64(len(b))
	}
	return w.enqueue(tlsWrite{bufs: bs, cb: cb, n: n})
}

// Wake makes the loop frame again (cb is not supported: netio passes nil).
func (w *tlsWire) Wake(gnet.AsyncCallback) error {
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close sends what was queued before it (for at most closeFlushTimeout)
// and closes the socket, which ends the reader and then the loop.
func (w *tlsWire) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closing {
		w.closing = true
		_ = w.raw.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		w.cond.Signal()
	}
	return nil
}

func (w *tlsWire) Context() any { return w.ctx.Load() }

func (w *tlsWire) SetContext(ctx any) { w.ctx.Store(ctx) }

func (w *tlsWire) RemoteAddr() net.Addr { return w.raw.RemoteAddr() }
