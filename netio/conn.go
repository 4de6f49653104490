package netio

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
)

// Conn is one client connection. Requests are read on the event loop,
// handled in order on the connection's worker goroutine, and may complete in
// any order on any goroutine; responses leave strictly in request order.
type Conn struct {
	srv    *Server
	gc     gnet.Conn
	id     uint64
	remote string

	reqs chan *Request // (loop sends) frames waiting for the worker

	// Loop-owned.
	nextSeq uint64

	mu        sync.Mutex
	nextWrite uint64      // (mu) sequence of the next response to write
	slots     []*Response // (mu) ring indexed by seq % len
	ready     []bool      // (mu)

	inflight   atomic.Int32 // requests read but not yet answered
	paused     atomic.Bool  // the loop stopped reading until a slot frees
	closed     atomic.Bool
	lastActive atomic.Int64 // unix nanos

	// State is for the handler: per-connection protocol state (fetch
	// sessions, SASL). Only the worker goroutine touches it.
	State any
}

// ID is a process-unique connection number.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() string { return c.remote }

// Close closes the connection, logging why.
func (c *Conn) Close(reason string) {
	if c.closed.CompareAndSwap(false, true) {
		c.srv.logger.Info("closing connection", "remote", c.remote, "reason", reason)
		_ = c.gc.Close()
	}
}

// Request is one Kafka request. Body is the bytes after the request header's
// client id: for flexible versions the header's tagged fields come first.
// Body stays valid until Respond or Done.
type Request struct {
	Conn          *Conn
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      string
	Body          []byte
	Received      time.Time

	buf *bytebufferpool.ByteBuffer
	seq uint64
}

// Part is a piece of a response: bytes, or a range of a file to be sent
// (zero-copy where the transport allows).
type Part struct {
	B    []byte
	File *os.File
	Off  int64
	Len  int64
}

// Response is a response body plus how to frame it.
type Response struct {
	// HeaderV1 adds the flexible response header's empty tagged fields.
	HeaderV1 bool
	Parts    []Part
	// Release, if set, is called once the parts are no longer needed.
	Release func()

	hdr  [9]byte
	bufs [][]byte
	pool []*bytebufferpool.ByteBuffer
	skip bool // acks=0: nothing to write
}

var filePool bytebufferpool.Pool

// Respond queues the response; it is written once every earlier response on
// the connection has been. The request's Body must not be used afterwards.
// File parts are read here, so call it off the event loops.
func (r *Request) Respond(resp *Response) {
	r.release()
	if resp == nil {
		resp = &Response{skip: true}
	}
	if !resp.skip {
		if err := resp.prepare(r.CorrelationID); err != nil {
			r.Conn.srv.logger.Warn("cannot read response data", "err", err)
			resp.free()
			r.Conn.Close("cannot read response data")
			resp = &Response{skip: true}
		}
	}
	r.Conn.complete(r.seq, resp)
}

// Done finishes a request that has no response (Produce with acks=0).
func (r *Request) Done() { r.Respond(nil) }

func (r *Request) release() {
	if r.buf != nil {
		bytebufferpool.Put(r.buf)
		r.buf = nil
		r.Body = nil
	}
}

// prepare frames the response and reads any file parts into pooled buffers.
func (resp *Response) prepare(corrID int32) error {
	size := 4
	if resp.HeaderV1 {
		size++
	}
	for _, p := range resp.Parts {
		if p.File != nil {
			size += int(p.Len)
		} else {
			size += len(p.B)
		}
	}
	binary.BigEndian.PutUint32(resp.hdr[0:], uint32(size))
	binary.BigEndian.PutUint32(resp.hdr[4:], uint32(corrID))
	h := resp.hdr[:8]
	if resp.HeaderV1 {
		h = resp.hdr[:9]
	}
	resp.bufs = append(resp.bufs[:0], h)
	for _, p := range resp.Parts {
		if p.File == nil {
			if len(p.B) > 0 {
				resp.bufs = append(resp.bufs, p.B)
			}
			continue
		}
		if p.Len == 0 {
			continue
		}
		bb := filePool.Get()
		if int64(cap(bb.B)) < p.Len {
			bb.B = make([]byte, p.Len)
		}
		bb.B = bb.B[:p.Len]
		resp.pool = append(resp.pool, bb)
		if _, err := p.File.ReadAt(bb.B, p.Off); err != nil {
			return fmt.Errorf("cannot read %d bytes at %d of %s: %w", p.Len, p.Off, p.File.Name(), err)
		}
		resp.bufs = append(resp.bufs, bb.B)
	}
	return nil
}

func (resp *Response) free() {
	for _, bb := range resp.pool {
		filePool.Put(bb)
	}
	resp.pool = nil
	if resp.Release != nil {
		resp.Release()
		resp.Release = nil
	}
}

// complete stores a finished response and writes every response that is now
// next in order.
func (c *Conn) complete(seq uint64, resp *Response) {
	c.mu.Lock()
	n := uint64(len(c.slots))
	c.slots[seq%n] = resp
	c.ready[seq%n] = true
	for c.ready[c.nextWrite%n] {
		i := c.nextWrite % n
		r := c.slots[i]
		c.slots[i], c.ready[i] = nil, false
		c.nextWrite++
		c.write(r)
	}
	c.mu.Unlock()
}

// write hands a response to gnet. c.mu should be held, which keeps the
// AsyncWritev calls, and so the bytes on the wire, in request order.
func (c *Conn) write(r *Response) {
	c.inflight.Add(-1)
	if r.skip || c.closed.Load() {
		r.free()
	} else {
		err := c.gc.AsyncWritev(r.bufs, func(gnet.Conn, error) error {
			r.free()
			return nil
		})
		if err != nil {
			r.free()
		}
	}
	if c.paused.CompareAndSwap(true, false) {
		_ = c.gc.Wake(nil)
	}
}

// runWorker hands requests to the handler in order.
func (c *Conn) runWorker() {
	defer c.srv.wg.Done()
	for req := range c.reqs {
		if c.closed.Load() {
			req.Respond(nil)
			continue
		}
		c.srv.handler.Serve(req)
	}
	c.srv.handler.ConnClosed(c)
}
