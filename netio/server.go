// Package netio owns the client-facing network layer: gnet event loops, Kafka
// request framing, and a per-connection queue that writes responses in
// request order while requests complete asynchronously. It knows nothing of
// Kafka semantics beyond the request header.
package netio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"
)

// Handler is the engine's side of a connection.
type Handler interface {
	// Serve is called on the connection's worker goroutine, one request at
	// a time in arrival order. It must eventually call req.Respond or
	// req.Done exactly once, from any goroutine.
	Serve(req *Request)
	// ConnClosed is called once after the connection's last Serve returned.
	ConnClosed(c *Conn)
}

// Streamer is optionally implemented by a Handler. Stream runs on the
// event loop each time more of a request frame has arrived, with the frame
// so far (the bytes after its size prefix), while the new bytes are still
// in the CPU's cache: for checksums over the bytes as they come. It
// returns its state for the next call on the same frame (nil for none);
// once the frame is complete, the last state becomes the request's
// Prepared. It must be cheap, must not block, and must not keep frame.
type Streamer interface {
	Stream(frame []byte, state any) any
}

// Options configure a Server.
type Options struct {
	Addr            string // host:port
	NumLoops        int    // 0: one per CPU
	MaxRequestBytes int32  // socket.request.max.bytes
	MaxConnections  int
	// MaxInflight bounds requests per connection between read and
	// response; beyond it framing pauses. gnet itself keeps reading the
	// socket into the connection's inbound buffer (it has no way to drop
	// read interest); a paused connection that buffers more than
	// MaxBufferedBytes is closed, which bounds its memory.
	MaxInflight int
	// MaxBufferedBytes bounds unframed input of a paused connection;
	// 0: MaxRequestBytes + 64 MiB.
	MaxBufferedBytes int
	// MaxQueuedBytes bounds the request bytes held across all connections
	// between read and response (Kafka's queued.max.request.bytes): past
	// it, loops stop framing requests until some are answered. A request
	// alone is always taken. 0: no bound.
	MaxQueuedBytes int64
	IdleTimeout    time.Duration
	// PinLoop, if set, is called once on each event loop's goroutine
	// (locked to its OS thread) the first time the loop serves a
	// connection, with the loop's number in order of first use: it pins the
	// thread to CPUs.
	PinLoop func(loop int)
	// Observe, if set, is called as each request is answered (from the
	// goroutine that answers it) with its API key and when it was read:
	// request metrics. It must be cheap and must not block.
	Observe func(apiKey int16, received time.Time)
	// NoSendfile turns off sendfile: file parts are always read into
	// memory off the loop and written from there.
	NoSendfile   bool
	LockOSThread bool
	ReusePort    bool
	// BindDevice binds the listener to a network interface
	// (SO_BINDTODEVICE), e.g. the NIC of a dedicated replication link.
	BindDevice string
	Logger     *slog.Logger
}

// Server runs the event loops for one listener.
type Server struct {
	gnet.BuiltinEventEngine
	opts     Options
	handler  Handler
	streamer Streamer // handler's, if it implements it
	logger   *slog.Logger

	eng      gnet.Engine
	addr     string
	booted   chan struct{}
	runErr   chan error
	draining atomic.Bool
	nextID   atomic.Uint64

	connMu sync.Mutex
	conns  map[*Conn]struct{} // (connMu)

	// Once gnet has stopped its pollers are closed and their descriptor
	// numbers may belong to someone else: a Trigger (AsyncWritev, Wake,
	// Close) would write into a stranger's fd. Every such call holds lifeMu
	// for reading and checks stopped; Stop sets it before stopping gnet.
	lifeMu  sync.RWMutex
	started bool // (lifeMu)
	stopped bool // (lifeMu)

	pinMu  sync.Mutex
	pinned map[gnet.EventLoop]bool // (pinMu) loops PinLoop ran on

	queued   atomic.Int64 // request bytes read and not yet answered
	pending  atomic.Int64 // requests handed to workers and not yet answered
	starveMu sync.Mutex
	starved  map[*Conn]struct{} // (starveMu) waiting for queued bytes to drop
	nStarved atomic.Int32       // len(starved), read without the lock

	wg     sync.WaitGroup // connection workers
	halted atomic.Bool    // Stop began: workers drop what is queued

	selfPorts sync.Map // source ports of DialSelf connections
	// The reloadable limits (SetLimits).
	maxRequest atomic.Int32
	maxQueued  atomic.Int64
	idle       atomic.Int64 // ns
	limitLog   LogLimiter   // "connection limit reached"
	badLog     LogLimiter   // misbehaving clients
	stats      struct {
		sendfileBytes atomic.Int64 // file bytes sent by sendfile
		copiedBytes   atomic.Int64 // file bytes read into memory and written
	}
}

// Stats counts how file parts of responses were sent, and the open
// connections.
type Stats struct {
	SendfileBytes int64 // by sendfile, zero copy
	CopiedBytes   int64 // read into memory first (cold data, EAGAIN, sendfile off)
	Connections   int   // open now
}

// Stats returns the counters so far. Any goroutine.
func (s *Server) Stats() Stats {
	s.connMu.Lock()
	n := len(s.conns)
	s.connMu.Unlock()
	return Stats{SendfileBytes: s.stats.sendfileBytes.Load(), CopiedBytes: s.stats.copiedBytes.Load(), Connections: n}
}

// LogLimiter lets a log line on a hot path through at most once per
// second, counting the ones it holds back. The zero value is ready.
type LogLimiter struct {
	last       atomic.Int64 // unix ns of the last line let through
	suppressed atomic.Int64
}

// Allow reports whether to log now and, if so, how many lines were held
// back since the last one.
func (r *LogLimiter) Allow() (suppressed int64, ok bool) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(time.Second) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return 0, false
	}
	return r.suppressed.Swap(0), true
}

// Limits are the options a config reload may change while the server runs.
type Limits struct {
	MaxConnections  int // connections over a lowered limit stay open
	MaxRequestBytes int32
	MaxQueuedBytes  int64
	IdleTimeout     time.Duration
}

// SetLimits changes the limits. Any goroutine.
func (s *Server) SetLimits(l Limits) {
	s.connMu.Lock()
	s.opts.MaxConnections = l.MaxConnections
	s.connMu.Unlock()
	if l.MaxRequestBytes > 0 {
		s.maxRequest.Store(l.MaxRequestBytes)
	}
	s.maxQueued.Store(l.MaxQueuedBytes)
	s.idle.Store(int64(l.IdleTimeout))
}

// NewServer makes a server; Start runs it.
func NewServer(opts Options, h Handler) *Server {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 100 << 20
	}
	if opts.MaxBufferedBytes <= 0 {
		opts.MaxBufferedBytes = int(opts.MaxRequestBytes) + 64<<20
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	streamer, _ := h.(Streamer)
	s := &Server{
		opts:     opts,
		handler:  h,
		streamer: streamer,
		logger:   opts.Logger.With("subsystem", "netio"),
		booted:   make(chan struct{}),
		runErr:   make(chan error, 1),
		conns:    map[*Conn]struct{}{},
	}
	s.maxRequest.Store(opts.MaxRequestBytes)
	s.maxQueued.Store(opts.MaxQueuedBytes)
	s.idle.Store(int64(opts.IdleTimeout))
	return s
}

// Start binds the listener and runs the loops in the background. It returns
// once the listener accepts connections.
func (s *Server) Start() error {
	if s.opts.ReusePort && s.opts.NumLoops != 1 {
		// Each loop binds its own listener; with port 0 each gets a
		// different port and Addr reports only the first.
		if _, port, err := net.SplitHostPort(s.opts.Addr); err == nil && port == "0" {
			return fmt.Errorf("cannot listen on %s: port 0 needs NumLoops 1 with ReusePort", s.opts.Addr)
		}
	}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithTicker(true), // idle timeouts; a reload may turn them on
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLockOSThread(s.opts.LockOSThread || s.opts.PinLoop != nil),
		gnet.WithReusePort(s.opts.ReusePort),
		// A restart after a crash must bind again while old connections
		// linger in TIME_WAIT.
		gnet.WithReuseAddr(true),
		gnet.WithLogger(gnetLogger{s.logger}),
	}
	if s.opts.NumLoops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(s.opts.NumLoops))
	}
	if s.opts.BindDevice != "" {
		opts = append(opts, gnet.WithBindToDevice(s.opts.BindDevice))
	}
	go func() {
		s.runErr <- gnet.Run(s, "tcp://"+s.opts.Addr, opts...)
	}()
	select {
	case <-s.booted:
		s.lifeMu.Lock()
		s.started = true
		s.lifeMu.Unlock()
		return nil
	case err := <-s.runErr:
		return fmt.Errorf("cannot listen on %s: %w", s.opts.Addr, err)
	}
}

// Addr is the bound listener address (useful with port 0).
func (s *Server) Addr() string { return s.addr }

// OnBoot records the engine and the bound address. gnet.Run's goroutine,
// before any loop runs.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	s.addr = s.opts.Addr
	if fd, err := eng.Dup(); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			switch a := sa.(type) {
			case *unix.SockaddrInet4:
				s.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), fmt.Sprint(a.Port))
			case *unix.SockaddrInet6:
				s.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), fmt.Sprint(a.Port))
			}
		}
		unix.Close(fd)
	}
	close(s.booted)
	return gnet.None
}

// OnOpen sets up a connection and its worker. Loop goroutine.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if s.draining.Load() {
		return nil, gnet.Close
	}
	if s.opts.PinLoop != nil {
		s.pinLoop(gc.EventLoop())
	}
	s.connMu.Lock()
	n, limit := len(s.conns), s.opts.MaxConnections
	if limit > 0 && n >= limit && !s.isSelf(gc.RemoteAddr()) {
		s.connMu.Unlock()
		if n, ok := s.limitLog.Allow(); ok {
			s.logger.Warn("connection limit reached; refusing", "remote", gc.RemoteAddr().String(), "limit", limit, "suppressed", n)
		}
		return nil, gnet.Close
	}
	c := &Conn{
		srv:    s,
		gc:     gc,
		id:     s.nextID.Add(1),
		remote: gc.RemoteAddr().String(),
		reqs:   make(chan *Request, s.opts.MaxInflight),
		slots:  make([]*Response, s.opts.MaxInflight),
		ready:  make([]bool, s.opts.MaxInflight),
	}
	c.lastActive.Store(time.Now().UnixNano())
	s.conns[c] = struct{}{}
	s.connMu.Unlock()
	s.logger.Debug("connection opened", "remote", c.remote, "conn", c.id)
	gc.SetContext(c)
	s.wg.Add(1)
	go c.runWorker()
	return nil, gnet.None
}

// pinLoop runs PinLoop the first time a loop serves a connection. Loop
// goroutine.
func (s *Server) pinLoop(el gnet.EventLoop) {
	s.pinMu.Lock()
	if s.pinned == nil {
		s.pinned = map[gnet.EventLoop]bool{}
	}
	n := len(s.pinned)
	first := !s.pinned[el]
	s.pinned[el] = true
	s.pinMu.Unlock()
	if first {
		s.opts.PinLoop(n)
	}
}

// OnClose stops the connection's worker. Loop goroutine.
func (s *Server) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.None
	}
	c.closed.Store(true)
	if c.partial != nil {
		bytebufferpool.Put(c.partial)
		c.partial = nil
		c.stream = nil
		s.released(int64(c.need))
	}
	close(c.reqs)
	s.connMu.Lock()
	delete(s.conns, c)
	s.connMu.Unlock()
	s.logger.Debug("connection closed", "remote", c.remote, "conn", c.id, "err", err)
	return gnet.None
}

// OnTraffic frames requests and hands each to the worker, copying it once
// out of the loop's read buffer. Loop goroutine.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil || c.closed.Load() {
		return gnet.Close
	}
	c.lastActive.Store(time.Now().UnixNano())
	limit := int32(s.opts.MaxInflight)
	for {
		if s.draining.Load() {
			return s.overflow(c, gc)
		}
		if c.inflight.Load() >= limit {
			c.paused.Store(true)
			if c.inflight.Load() >= limit {
				return s.overflow(c, gc) // the next response written wakes us
			}
			c.paused.Store(false)
		}
		if c.partial == nil {
			hdr, err := gc.Peek(4)
			if err != nil {
				return gnet.None
			}
			size := int32(binary.BigEndian.Uint32(hdr))
			if maxSize := s.maxRequest.Load(); size < 8 || size > maxSize {
				c.abort()
				if n, ok := s.badLog.Allow(); ok {
					s.logger.Warn("bad request size; closing", "remote", c.remote, "size", size, "max", maxSize, "suppressed", n)
				}
				return gnet.Close
			}
			if !s.admit(c, int64(size)) {
				return s.overflow(c, gc) // a released request wakes us
			}
			_, _ = gc.Discard(4)
			bb := bytebufferpool.Get()
			bb.B = slices.Grow(bb.B[:0], int(size))[:0]
			c.partial = bb
			c.need = int(size)
			s.queued.Add(int64(size))
		}
		// Copy what has arrived of the frame straight into its pooled
		// buffer: consuming the loop's read buffer keeps gnet from
		// copying it into the connection's ring buffer first, so the
		// frame is copied once in user space however many reads it takes.
		bb := c.partial
		have := len(bb.B)
		want := min(c.need-have, gc.InboundBuffered())
		n, _ := gc.Read(bb.B[have : have+want])
		bb.B = bb.B[:have+n]
		if n > 0 && s.streamer != nil {
			c.stream = s.streamer.Stream(bb.B, c.stream)
		}
		if len(bb.B) < c.need && gc.InboundBuffered() == 0 && c.need-len(bb.B) >= directReadMin {
			// gnet's buffers are empty and much of the frame is still in
			// the socket: read it straight into the frame's buffer, which
			// saves the copy through the loop's read buffer.
			if act := c.readDirect(gc); act != gnet.None {
				return act
			}
		}
		if len(bb.B) < c.need {
			return gnet.None
		}
		c.partial = nil
		req := &Request{Conn: c, Received: time.Now(), buf: bb, Prepared: c.stream}
		c.stream = nil
		if err := parseRequest(req, bb.B); err != nil {
			req.release()
			c.abort()
			if n, ok := s.badLog.Allow(); ok {
				s.logger.Warn("malformed request header; closing", "remote", c.remote, "err", err, "suppressed", n)
			}
			return gnet.Close
		}
		req.seq = c.nextSeq
		c.nextSeq++
		c.inflight.Add(1)
		s.pending.Add(1)
		c.reqs <- req // never blocks: at most MaxInflight outstanding
	}
}

// directReadMin is the part of a frame still to come above which netio
// reads the socket itself, straight into the frame's buffer.
const directReadMin = 32 << 10

// readDirect reads the rest of the partial frame from the socket until the
// frame is complete or the socket has nothing more (EAGAIN). gnet's own
// buffers must be empty, so no byte is read out of order. Loop goroutine.
func (c *Conn) readDirect(gc gnet.Conn) gnet.Action {
	bb := c.partial
	for len(bb.B) < c.need {
		n, err := unix.Read(gc.Fd(), bb.B[len(bb.B):c.need])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return gnet.None
		case err != nil:
			c.srv.logger.Debug("read failed; closing", "remote", c.remote, "err", err)
			return gnet.Close
		case n == 0: // the peer closed mid-frame
			return gnet.Close
		}
		bb.B = bb.B[:len(bb.B)+n]
		if s := c.srv.streamer; s != nil {
			c.stream = s.Stream(bb.B, c.stream)
		}
	}
	return gnet.None
}

// admit reports whether a request of size bytes fits in MaxQueuedBytes. If
// not, c waits among the starved connections until a request is released.
// Loop goroutine.
func (s *Server) admit(c *Conn, size int64) bool {
	max := s.maxQueued.Load()
	fits := func() bool { q := s.queued.Load(); return max <= 0 || q == 0 || q+size <= max }
	if fits() {
		return true
	}
	s.starveMu.Lock()
	if s.starved == nil {
		s.starved = map[*Conn]struct{}{}
	}
	s.starved[c] = struct{}{}
	s.nStarved.Store(int32(len(s.starved)))
	s.starveMu.Unlock()
	// A release between the check and the registration would not have
	// seen us: check again.
	if !fits() {
		return false
	}
	s.starveMu.Lock()
	delete(s.starved, c)
	s.nStarved.Store(int32(len(s.starved)))
	s.starveMu.Unlock()
	return true
}

// released returns a request's bytes to the budget and wakes the starved
// connections. Any goroutine.
func (s *Server) released(size int64) {
	s.queued.Add(-size)
	if s.nStarved.Load() == 0 {
		return
	}
	s.starveMu.Lock()
	conns := make([]*Conn, 0, len(s.starved))
	for c := range s.starved {
		conns = append(conns, c)
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
			_ = c.gc.Wake(nil)
		}
	}
}

// QueuedBytes is the request bytes read and not yet answered.
func (s *Server) QueuedBytes() int64 { return s.queued.Load() }

// overflow bounds what a paused connection may buffer: gnet keeps reading
// the socket, so a client that floods requests without reading responses
// (no Kafka client does: they pipeline at most a few) is closed once it
// has more than MaxBufferedBytes waiting. Loop goroutine.
func (s *Server) overflow(c *Conn, gc gnet.Conn) gnet.Action {
	if gc.InboundBuffered() > s.opts.MaxBufferedBytes {
		c.abort()
		if n, ok := s.badLog.Allow(); ok {
			s.logger.Warn("client floods requests without reading responses; closing", "remote", c.remote, "buffered", gc.InboundBuffered(), "suppressed", n)
		}
		return gnet.Close
	}
	return gnet.None
}

// OnTick closes idle connections. gnet's ticker goroutine.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	idle := time.Duration(s.idle.Load())
	if idle <= 0 {
		return time.Second, gnet.None
	}
	cutoff := time.Now().Add(-idle).UnixNano()
	s.connMu.Lock()
	for c := range s.conns {
		// inflight first: complete updates lastActive before it
		// lowers inflight.
		if c.inflight.Load() == 0 && c.lastActive.Load() < cutoff {
			c.Close("idle timeout") // only queues the close: no lock cycle
		}
	}
	s.connMu.Unlock()
	return tickInterval(idle), gnet.None
}

// tickInterval keeps an idle connection's lifetime within 1.5 timeouts.
func tickInterval(idle time.Duration) time.Duration {
	return max(min(time.Second, idle/2), 10*time.Millisecond)
}

// Drain stops accepting connections and reading requests, and waits until
// every request read so far is answered and its response has left gnet's
// buffers for the socket, or ctx ends.
func (s *Server) Drain(ctx context.Context) {
	s.draining.Store(true)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		// Requests of connections already gone (the peer closed after
		// sending) are still served: wait for them too.
		busy := s.pending.Load() > 0
		s.connMu.Lock()
		for c := range s.conns {
			if !c.isQuiet() {
				busy = true
				if c.inflight.Load() == 0 {
					c.probeQuiet()
				}
			}
		}
		s.connMu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop closes the listener and every connection and waits for the workers.
// Responses completed from now on are dropped: Drain first for a graceful
// stop. If ctx ends first, Stop returns its error without waiting further.
func (s *Server) Stop(ctx context.Context) error {
	s.lifeMu.Lock()
	run := s.started && !s.stopped
	s.stopped = true
	s.halted.Store(true)
	s.lifeMu.Unlock()
	if !run {
		return nil
	}
	// Engine.Stop signals the loops, then polls every 500ms until they
	// are gone; with a done context it returns right after signalling and
	// gnet.Run's return tells us when they are gone.
	// If gnet already stopped on its own, Stop fails and runErr says why.
	signal, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.eng.Stop(signal); err != nil && !errors.Is(err, context.Canceled) {
		s.logger.Debug("gnet refused to stop", "err", err)
	}
	select {
	case err := <-s.runErr:
		if err != nil {
			s.logger.Warn("gnet stopped with an error", "err", err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	s.wg.Wait()
	return nil
}

// NumConns is the number of open connections.
func (s *Server) NumConns() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return len(s.conns)
}

type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }
