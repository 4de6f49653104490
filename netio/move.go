package netio

import (
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Backpressure for clients that pipeline without bound. A connection
// pauses its framing once MaxInflight of its requests are being served,
// and a transport that stops reading then lets TCP push back on the
// client, as Kafka does by muting a channel. gnet cannot stop reading: it
// keeps copying the socket into the connection's inbound buffer, so a
// client that sends faster than it is served (librdkafka's
// non-idempotent producer allows a million requests in flight) would
// pile up memory until the MaxBufferedBytes guard closed it. Such a
// connection is moved instead, once its paused input passes
// MoveBufferedBytes, to a goroutine transport on a duplicate of its
// socket (the TLS listeners' tlsWire, unencrypted), whose loop stops
// taking input while the connection is paused.
//
// The move keeps the byte streams whole and in order:
//   - out: the transport is swapped under Conn.mu, where responses are
//     handed to it, while no response is being sent from the loop
//     (Conn.blocked); the new writer starts only once every response
//     handed to gnet before the swap has left gnet's buffer (takeOver,
//     queued behind them);
//   - in: framing stays on gnet's loop until takeOver, which hands the
//     unframed input gnet holds to the new loop and closes gnet's
//     descriptor on the loop, so gnet reads no more.

// DefaultMoveBufferedBytes is Options.MoveBufferedBytes unless set.
const DefaultMoveBufferedBytes = 8 << 20

// move starts moving a paused gnet connection to a goroutine transport;
// takeOver completes it. If the move cannot start now (a response is
// being sent from the loop) or at all, the connection stays on gnet and
// the MaxBufferedBytes guard still bounds it. Loop goroutine.
func (s *Server) move(c *Conn, g gnet.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blocked.Load() || c.closed.Load() {
		return // sendAll's goroutine and tasks use gnet; try at the next read
	}
	fd, err := g.Dup()
	if err != nil {
		s.logger.Warn("cannot move a connection off gnet", "remote", c.remote, "err", err)
		return
	}
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f) // its own duplicate
	f.Close()
	if err != nil {
		s.logger.Warn("cannot move a connection off gnet", "remote", c.remote, "err", err)
		return
	}
	bw := &batchConn{Conn: nc, batching: true}
	w := newTLSWire(s, bw, nc, bw)
	w.SetContext(c)
	c.moving = w
	c.gc.Store(&wireRef{w})
	// Queued after every response handed to gnet so far (they were
	// handed under c.mu): gnet runs its write tasks in order.
	if err := g.AsyncWritev(nil, w.takeOver); err != nil {
		c.moving = nil
		c.gc.Store(&wireRef{g})
		_ = nc.Close()
		return
	}
	s.stats.moved.Add(1)
	if n, ok := s.moveLog.Allow(); ok {
		s.logger.Info("client pipelines faster than it is served; moving its connection to a transport that stops reading while it waits",
			"remote", c.remote, "buffered", g.InboundBuffered(), "suppressed", n)
	}
}

// takeOver completes a move once gnet has sent every response handed to
// it: the new transport gets the unframed input, gnet's descriptor is
// closed (the connection lives on in the duplicate), and the new loop
// starts. If gnet closed the connection first, closed abandoned w. Loop
// goroutine (gnet's).
func (w *tlsWire) takeOver(g gnet.Conn, err error) error {
	c, _ := g.Context().(*Conn)
	if err != nil || c == nil || c.moving != w {
		return nil
	}
	s := w.s
	if c.closed.Load() {
		// Closed while the move waited (idle timeout, eviction, the
		// handler): Conn.Close reached w, which has not started, so the
		// socket is closed here, and OnClose abandons w.
		return g.EventLoop().Close(g)
	}
	if g.OutboundBuffered() > 0 {
		// The client has yet to take earlier responses: look again
		// soon. Meanwhile framing goes on here, and the guard bounds
		// what gnet reads.
		s.afterRunning(time.Millisecond, func() { _ = g.AsyncWritev(nil, w.takeOver) })
		return nil
	}
	if n := g.InboundBuffered(); n > 0 {
		w.in = make([]byte, n)
		_, _ = g.Read(w.in)
	}
	c.moving = nil
	g.SetContext(nil) // OnClose leaves the connection alone
	_ = g.EventLoop().Close(g)
	s.tlsWG.Add(1)
	go func() {
		defer s.tlsWG.Done()
		w.run()
	}()
	_ = w.Wake(nil) // frame what it was handed
	return nil
}
