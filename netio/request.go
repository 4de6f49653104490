package netio

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
)

// Request is one Kafka request. Body is the bytes after the request header's
// client id: for flexible versions the header's tagged fields come first.
// Body lives in a pooled buffer that goes back to the pool in Respond or
// Done: neither Body nor anything aliasing it (response parts included) may
// be used afterwards.
type Request struct {
	Conn          *Conn
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      string
	Body          []byte
	Received      time.Time
	// Prepared is the handler's last Stream state for this request's
	// frame, if it streams.
	Prepared any
	// Raw: the frame is a bare SASL token (Conn.ExpectRawFrame), not a
	// Kafka request: Body is the whole frame, the header fields are zero,
	// and the response must be Raw too.
	Raw bool

	buf      *frameBuf
	held     int64 // bytes of the budget buf holds
	seq      uint64
	answered int32 // (atomic) Respond ran; not atomic.Bool, so copies of a Request stay vet-clean
}

// Respond queues the response; it is written once every earlier response on
// the connection has been. It may be called from any goroutine, exactly once
// per request. File parts are read here, so call it off the event loops.
func (r *Request) Respond(resp *Response) {
	if atomic.SwapInt32(&r.answered, 1) != 0 {
		panic("BUG: netio: request answered twice")
	}
	defer r.Conn.srv.pending.Add(-1)
	if obs := r.Conn.srv.opts.Observe; obs != nil {
		obs(r.APIKey, r.Received)
	}
	r.release()
	if resp == nil {
		resp = &Response{skip: true}
	}
	if !resp.skip {
		if err := resp.prepare(r.Conn, r.CorrelationID); err != nil {
			r.Conn.srv.logger.Warn("cannot read response data", "remote", r.Conn.remote, "err", err)
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
		s := r.Conn.srv
		s.pool.put(r.buf)
		s.released(r.held)
		r.buf = nil
		r.Body = nil
	}
}

var (
	errShortHeader    = errors.New("request header truncated")
	errBadClientIDLen = errors.New("negative client id length")
)

// parseRequest decodes a request header (v1/v2, up to the client id) from
// frame, the request without its size prefix. Body aliases frame.
func parseRequest(req *Request, frame []byte) error {
	if len(frame) < 10 {
		return errShortHeader
	}
	req.APIKey = int16(binary.BigEndian.Uint16(frame[0:]))
	req.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
	req.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	b := frame[10:]
	switch {
	case n == -1: // null client id
	case n < 0:
		return errBadClientIDLen
	case int(n) > len(b):
		return errShortHeader
	default:
		req.ClientID = string(b[:n])
		b = b[n:]
	}
	req.Body = b
	return nil
}
