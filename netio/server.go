// Package netio owns the client-facing network layer: gnet event loops, Kafka
// request framing, and a per-connection queue that writes responses in
// request order while requests complete asynchronously. It knows nothing of
// Kafka semantics beyond the request header.
package netio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
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
	Addr     string // host:port
	NumLoops int    // 0: one per CPU
	// Limits are the bounds a config reload may change (SetLimits).
	Limits
	// MaxInflight bounds requests per connection between read and
	// response; beyond it framing pauses. gnet itself keeps reading the
	// socket into the connection's inbound buffer (it has no way to drop
	// read interest) until the connection moves to a transport that
	// stops (MoveBufferedBytes); a paused connection that buffers more
	// than MaxBufferedBytes is closed, which bounds its memory.
	MaxInflight int
	// MaxBufferedBytes bounds unframed input of a paused connection;
	// 0: MaxRequestBytes + 64 MiB.
	MaxBufferedBytes int
	// MaxOutboundBytes: a connection whose client leaves more of its
	// answers unread than this gets no further request framed until it
	// reads them; 0: 4 MiB. One answer may be larger (Kafka holds a
	// connection's next request until its answer is sent), and requests
	// framed before the output grew (MaxInflight at most) are still
	// answered.
	MaxOutboundBytes int
	// MoveBufferedBytes: a connection paused with more unframed input
	// than this moves off gnet to a transport that stops reading while
	// it is paused, so TCP pushes back on the client (move.go); 0: 8 MiB.
	MoveBufferedBytes int
	// RequireAuth: the listener authenticates its clients; until the
	// handler calls Conn.SetAuthenticated, frames above
	// MaxPreAuthRequestBytes close the connection. Without it the bound
	// holds until a connection's first complete request.
	RequireAuth bool
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
	// Listener names the listener (PLAINTEXT, SSL, a name of
	// listener_security_protocol_map): Conn.Listener.
	Listener string
	// TLS, if set, makes this a TLS listener: Go's crypto/tls on a
	// goroutine transport (tlsWire) instead of gnet's loops, with the
	// same framing, limits and response queue. The config is asked per
	// handshake, so a new certificate applies to new connections at once.
	TLS    *TLSOptions
	Logger *slog.Logger
}

// Limits are the bounds on what clients may hold; a config reload may
// change them while the server runs (SetLimits). Zero values mean no bound
// unless said otherwise.
type Limits struct {
	MaxConnections int // connections over a lowered limit stay open
	// MaxConnectionsPerIP bounds one client address's connections
	// (max.connections.per.ip); ConnectionsPerIP overrides it by address
	// (max.connections.per.ip.overrides; 0 there: no bound).
	MaxConnectionsPerIP int
	ConnectionsPerIP    map[string]int
	// MaxConnectionRate bounds new connections per second on the listener
	// (max.connection.creation.rate), MaxConnectionRatePerIP per client
	// address; a burst of one second's worth is let through.
	MaxConnectionRate      float64
	MaxConnectionRatePerIP float64
	// MaxRequestBytes bounds a request frame (socket.request.max.bytes);
	// 0: 100 MiB.
	MaxRequestBytes int32
	// MaxPreAuthRequestBytes bounds frames before a connection has
	// authenticated, or on a listener without authentication before its
	// first complete request (sasl.server.max.receive.size). A first
	// Produce on a listener without authentication is exempt: clients that
	// skip ApiVersions (sarama's default) send it first to a leader.
	// 0: 512 KiB; negative: no bound.
	MaxPreAuthRequestBytes int32
	// MaxQueuedBytes bounds the request bytes held in memory across all
	// connections (queued.max.request.bytes): complete requests not yet
	// answered, the buffers of frames still arriving, and what paused
	// connections leave in gnet's buffers. A frame's buffer grows with the
	// bytes that arrive; one that cannot grow waits, and the stalled
	// connection (nothing sent for a second) holding the most bytes of an
	// incomplete frame is closed to make room; a connection still sending
	// is not. A frame that waited a second while no other is past the
	// bound is let past it, so one frame at a time completes; a connection
	// alone always gets its request in. 0: no bound.
	MaxQueuedBytes int64
	IdleTimeout    time.Duration
	// FrameStallTimeout closes a connection whose incomplete frame got no
	// byte for that long; FrameTimeout one whose frame takes longer than
	// that in all (a client dribbling a byte a second).
	FrameStallTimeout time.Duration
	FrameTimeout      time.Duration
}

// Server runs the event loops for one listener.
type Server struct {
	gnet.BuiltinEventEngine
	opts     Options
	handler  Handler
	streamer Streamer // handler's, if it implements it
	logger   *slog.Logger

	eng  gnet.Engine
	addr string
	// A TLS listener's (startTLS): its socket, its goroutines (accept,
	// ticker, connections), closed by Stop, and the connections still in
	// their handshake (connMu).
	ln          net.Listener
	tlsWG       sync.WaitGroup
	tlsQuit     chan struct{}
	handshaking map[net.Conn]struct{}
	booted      chan struct{}
	runErr      chan error
	draining    atomic.Bool
	nextID      atomic.Uint64

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

	// The request memory budget (Limits.MaxQueuedBytes), in bytes:
	// complete requests not yet answered (queued), buffers of frames still
	// arriving (incomplete), unframed input paused connections left in
	// gnet's buffers (buffered).
	queued      atomic.Int64
	incomplete  atomic.Int64
	buffered    atomic.Int64
	pending     atomic.Int64 // requests handed to workers and not yet answered
	starveMu    sync.Mutex
	starved     map[*Conn]struct{} // (starveMu) waiting for the budget
	nStarved    atomic.Int32       // len(starved), read without the lock
	evicting    atomic.Pointer[Conn]
	evictedAt   atomic.Int64         // unix ns of the last eviction
	lastRelease atomic.Int64         // unix ns a request last gave bytes back
	overdraft   atomic.Pointer[Conn] // the frame let past the budget (overdraw)
	pool        framePool
	lastTrim    time.Time // (OnTick)

	wg     sync.WaitGroup // connection workers
	halted atomic.Bool    // Stop began: workers drop what is queued

	selfPorts sync.Map // source ports of DialSelf connections
	limits    atomic.Pointer[Limits]
	perIP     map[string]int // (connMu) open connections by client address
	rate      bucket         // (connMu) new connections on the listener
	ipRate    bucketMap      // (connMu) new connections by client address
	limitLog  LogLimiter     // refused connections
	badLog    LogLimiter     // misbehaving clients: bad framing
	slowLog   LogLimiter     // frames that stall or crawl
	roomLog   LogLimiter     // connections closed for room in the budget
	closeLog  LogLimiter     // Conn.Close
	moveLog   LogLimiter     // connections moved off gnet
	stats     struct {
		sendfileBytes atomic.Int64 // file bytes sent by sendfile
		copiedBytes   atomic.Int64 // file bytes read into memory and written
		filledBytes   atomic.Int64 // file bytes read into the page cache for sendfile
		refused       atomic.Int64 // connections refused by a limit
		closedSlow    atomic.Int64 // closed for a stalled or too slow frame
		closedBudget  atomic.Int64 // closed to make room in MaxQueuedBytes
		closedBad     atomic.Int64 // closed for bad framing or a bad header
		closedFlood   atomic.Int64 // closed for buffering more than MaxBufferedBytes
		moved         atomic.Int64 // moved off gnet to stop reading (move.go)
		direct        atomic.Int64 // responses written whole by their goroutine
		directRest    atomic.Int64 // responses begun directly, finished by the loop
	}
}

// Stats counts how file parts of responses were sent, the open
// connections, the request memory, and the connections closed or refused
// to protect it.
type Stats struct {
	SendfileBytes int64 // by sendfile, zero copy
	CopiedBytes   int64 // read into memory first (behind gnet's buffer, sendfile off, TLS, a cache too short to fill)
	FilledBytes   int64 // read off the loop into the page cache before sendfile (evicted or never cached)
	Connections   int   // open now
	// Request memory now: complete requests not yet answered, buffers of
	// frames still arriving, unframed input left in gnet's buffers by
	// paused connections, and free frame buffers kept for reuse.
	QueuedBytes     int64
	IncompleteBytes int64
	BufferedBytes   int64
	PooledBytes     int64
	// Connections refused (MaxConnections, per address, connection rate)
	// and closed: a frame that stalled or took too long, to make room in
	// MaxQueuedBytes, bad framing (a size out of bounds, a bad header),
	// flooding (unframed input past MaxBufferedBytes).
	Refused      int64
	ClosedSlow   int64
	ClosedBudget int64
	ClosedBad    int64
	ClosedFlood  int64
	// Moved counts connections moved off gnet to a transport that stops
	// reading while they wait: clients that pipeline faster than they
	// are served.
	Moved int64
}

// Stats returns the counters so far. Any goroutine.
func (s *Server) Stats() Stats {
	s.connMu.Lock()
	n := len(s.conns)
	s.connMu.Unlock()
	return Stats{
		SendfileBytes: s.stats.sendfileBytes.Load(), CopiedBytes: s.stats.copiedBytes.Load(),
		FilledBytes: s.stats.filledBytes.Load(), Connections: n,
		QueuedBytes: s.queued.Load(), IncompleteBytes: s.incomplete.Load(), BufferedBytes: s.buffered.Load(),
		PooledBytes: s.pool.pooled.Load(),
		Refused:     s.stats.refused.Load(), ClosedSlow: s.stats.closedSlow.Load(),
		ClosedBudget: s.stats.closedBudget.Load(), ClosedBad: s.stats.closedBad.Load(),
		ClosedFlood: s.stats.closedFlood.Load(), Moved: s.stats.moved.Load(),
	}
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

// SetLimits changes the limits. Any goroutine.
func (s *Server) SetLimits(l Limits) {
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = 100 << 20
	}
	if l.MaxPreAuthRequestBytes == 0 {
		l.MaxPreAuthRequestBytes = DefaultMaxPreAuthRequestBytes
	}
	l.ConnectionsPerIP = maps.Clone(l.ConnectionsPerIP)
	s.limits.Store(&l)
	s.connMu.Lock()
	s.rate.limit, s.ipRate.limit = l.MaxConnectionRate, l.MaxConnectionRatePerIP
	s.connMu.Unlock()
	s.wakeStarved() // a larger budget may fit them now
}

// DefaultMaxPreAuthRequestBytes is Kafka's sasl.server.max.receive.size.
const DefaultMaxPreAuthRequestBytes = 512 << 10

// Limits returns the limits in force. Any goroutine.
func (s *Server) Limits() Limits { return *s.limits.Load() }

// NewServer makes a server; Start runs it.
func NewServer(opts Options, h Handler) *Server {
	if opts.MaxBufferedBytes <= 0 {
		opts.MaxBufferedBytes = int(cmp.Or(opts.MaxRequestBytes, 100<<20)) + 64<<20
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 64
	}
	if opts.MaxOutboundBytes <= 0 {
		opts.MaxOutboundBytes = 4 << 20
	}
	if opts.MoveBufferedBytes <= 0 {
		opts.MoveBufferedBytes = DefaultMoveBufferedBytes
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
		tlsQuit:  make(chan struct{}),
	}
	s.pool.maxBytes = maxPooledBytes
	s.SetLimits(opts.Limits)
	return s
}

// Start binds the listener and runs the loops in the background. It returns
// once the listener accepts connections.
func (s *Server) Start() error {
	if s.opts.TLS != nil {
		if err := s.startTLS(); err != nil {
			return fmt.Errorf("cannot listen on %s: %w", s.opts.Addr, err)
		}
		return nil
	}
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
	if !s.admit(gc.RemoteAddr()) {
		return nil, gnet.Close
	}
	s.open(gc)
	return nil, gnet.None
}

// admit counts a new connection from remote against the limits, or
// reports false (logged, at most a line a second) if one refuses it.
func (s *Server) admit(remote net.Addr) bool {
	now := time.Now()
	ip := hostOf(remote)
	self := s.isSelf(remote)
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.perIP == nil {
		s.perIP = map[string]int{}
	}
	reason, limit := s.admitConnLocked(ip, self, now)
	if reason != "" {
		s.stats.refused.Add(1)
		if n, ok := s.limitLog.Allow(); ok {
			s.logger.Warn(reason+"; refusing", "remote", remote.String(), "limit", limit, "suppressed", n)
		}
		return false
	}
	return true
}

// open sets up an admitted connection and starts its worker.
func (s *Server) open(gc wire) *Conn {
	now := time.Now()
	c := &Conn{
		srv:      s,
		listener: s.opts.Listener,
		id:       s.nextID.Add(1),
		remote:   gc.RemoteAddr().String(),
		ip:       hostOf(gc.RemoteAddr()),
		self:     s.isSelf(gc.RemoteAddr()),
		reqs:     make(chan *Request, s.opts.MaxInflight),
		slots:    make([]*Response, s.opts.MaxInflight),
		ready:    make([]bool, s.opts.MaxInflight),
	}
	c.gc.Store(&wireRef{gc})
	c.lastActive.Store(now.UnixNano())
	c.lastRead.Store(now.UnixNano())
	s.connMu.Lock()
	s.conns[c] = struct{}{}
	s.connMu.Unlock()
	s.logger.Debug("connection opened", "remote", c.remote, "conn", c.id, "listener", c.listener)
	gc.SetContext(c)
	s.wg.Add(1)
	go c.runWorker()
	return c
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
	if c, _ := gc.Context().(*Conn); c != nil {
		// gnet closes the descriptor once this returns: wait out a direct
		// write in progress (it holds c.mu), and let none start.
		c.mu.Lock()
		c.closed.Store(true)
		c.mu.Unlock()
	}
	s.closed(gc, err)
	return gnet.None
}

// closed ends a connection whose transport is gone: its worker stops after
// the requests already read. The connection's loop goroutine.
func (s *Server) closed(gc wire, err error) {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return
	}
	c.closed.Store(true)
	if w := c.moving; w != nil {
		c.moving = nil
		w.shut() // gnet closed it before the move completed: fail what waits
	}
	b := c.buffered.Swap(0)
	s.buffered.Add(-b)
	freed := c.dropPartial() + b
	close(c.reqs)
	s.connMu.Lock()
	delete(s.conns, c)
	if !c.self {
		s.connGoneLocked(c.ip)
	}
	s.connMu.Unlock()
	s.evicting.CompareAndSwap(c, nil)
	if freed > 0 {
		s.wakeStarved()
	}
	s.logger.Debug("connection closed", "remote", c.remote, "conn", c.id, "err", err)
}

// afterRunning runs fn after d unless the server has stopped by then,
// holding lifeMu so that what fn queues cannot reach a stopped poller.
func (s *Server) afterRunning(d time.Duration, fn func()) {
	time.AfterFunc(d, func() {
		s.lifeMu.RLock()
		defer s.lifeMu.RUnlock()
		if !s.stopped {
			fn()
		}
	})
}

// QueuedBytes is the request bytes read and not yet answered.
func (s *Server) QueuedBytes() int64 { return s.queued.Load() }

// overflow bounds what a paused connection may buffer: gnet keeps reading
// the socket, so a client that floods requests without reading responses
// (which keeps it on gnet: move.go waits for its responses to leave) is
// closed once it has more than MaxBufferedBytes waiting. Loop goroutine.
func (s *Server) overflow(c *Conn, gc wire) gnet.Action {
	if gc.InboundBuffered() > s.opts.MaxBufferedBytes {
		return s.flood(c, gc)
	}
	return gnet.None
}

// flood closes a connection that sends requests without reading the
// answers. Loop goroutine.
func (s *Server) flood(c *Conn, gc wire) gnet.Action {
	c.abort()
	s.stats.closedFlood.Add(1)
	if n, ok := s.badLog.Allow(); ok {
		s.logger.Warn("client floods requests without reading responses; closing", "remote", c.remote,
			"buffered", gc.InboundBuffered(), "unread", gc.OutboundBuffered(), "suppressed", n)
	}
	return gnet.Close
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
	if s.opts.TLS != nil {
		return s.stopTLS(ctx)
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
	// Connections moved off gnet (move.go) run on goroutines of their
	// own.
	s.connMu.Lock()
	for c := range s.conns {
		if w, ok := c.wire().(*tlsWire); ok {
			_ = w.Close()
		}
	}
	s.connMu.Unlock()
	return s.waitGoroutines(ctx)
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
