// Package kclient is a minimal Kafka client connection: it frames requests
// (kmsg types, or raw bodies for tests that send what no client would),
// reads size-prefixed response frames, checks correlation ids and strips
// the response header. It is samsa's one hand-written request framer: the
// nodes of a pair use it between themselves (replica fetches, failover
// probes), the broker's watchdog for its self-check, and tests to speak
// the raw protocol. It imports no other samsa package.
package kclient

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// MaxResponse bounds a response frame, so a bad peer cannot make the
// reader allocate without limit.
const MaxResponse = 1 << 30

// AppendRequest appends req, framed (size, request header v1, or v2 with
// tagged fields for flexible versions, then the body), to dst.
func AppendRequest(dst []byte, req kmsg.Request, corr int32, clientID string) []byte {
	return appendFrame(dst, req.Key(), req.GetVersion(), corr, clientID, req.IsFlexible(), func(b []byte) []byte { return req.AppendTo(b) })
}

// AppendRawRequest appends a request with the given body, framed by hand:
// request header v1, plus an empty tagged-field section when headerTags.
func AppendRawRequest(dst []byte, key, version int16, corr int32, clientID string, headerTags bool, body []byte) []byte {
	return appendFrame(dst, key, version, corr, clientID, headerTags, func(b []byte) []byte { return append(b, body...) })
}

func appendFrame(dst []byte, key, version int16, corr int32, clientID string, headerTags bool, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(key))
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if headerTags {
		dst = append(dst, 0)
	}
	dst = body(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// ReadFrame reads one size-prefixed frame and returns it without the size.
func ReadFrame(r io.Reader) ([]byte, error) { return readFrame(r, nil) }

// readFrame is ReadFrame into buf when it has the room (its contents are
// overwritten), else into a new slice.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 4 || n > MaxResponse {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	b := buf[:0]
	if cap(b) < int(n) {
		b = make([]byte, n)
	}
	b = b[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ResponseBody checks a response frame's correlation id and returns the
// body after the response header (v1, with headerTags, has a tagged-field
// section; ApiVersions responses never do).
func ResponseBody(frame []byte, corr int32, headerTags bool) ([]byte, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("response of %d bytes", len(frame))
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	b := frame[4:]
	if headerTags {
		var err error
		if b, err = SkipTags(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// ErrTagsTruncated is a tagged-field section that ends early or is too
// large.
var ErrTagsTruncated = errors.New("tagged fields truncated")

// SkipTags skips a tagged-field section, returning the rest.
func SkipTags(b []byte) ([]byte, error) {
	n, w := uvarint32(b)
	if w <= 0 {
		return nil, ErrTagsTruncated
	}
	b = b[w:]
	for ; n > 0; n-- {
		_, w := uvarint32(b)
		if w <= 0 {
			return nil, ErrTagsTruncated
		}
		b = b[w:]
		size, w := uvarint32(b)
		if w <= 0 || int(size) > len(b)-w {
			return nil, ErrTagsTruncated
		}
		b = b[w+int(size):]
	}
	return b, nil
}

// uvarint32 reads an unsigned varint as Kafka's protocol defines it: at
// most 5 bytes, fitting 32 bits. n <= 0 means it is truncated or too long.
func uvarint32(b []byte) (uint32, int) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n > 5 || v > 0xffffffff {
		return 0, -1
	}
	return uint32(v), n
}

// Conn is a connection that sends one request at a time and waits for its
// response. It is not safe for concurrent use.
type Conn struct {
	c        net.Conn
	r        *bufio.Reader
	clientID string
	corr     int32
	buf      []byte

	// resp is RequestReusing's response buffer; small counts the
	// responses in a row that used under an eighth of it.
	resp  []byte
	small int
}

// New wraps c; requests carry clientID.
func New(c net.Conn, clientID string) *Conn {
	return &Conn{c: c, r: bufio.NewReaderSize(c, 64<<10), clientID: clientID}
}

// Request sends req and reads and decodes its response, all within timeout.
func (c *Conn) Request(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	return c.request(req, timeout, false)
}

// RequestReusing is Request reading every response into one buffer the
// connection keeps, instead of a new one each time: for a stream of large
// responses (a standby's replica fetches) it saves allocating and zeroing
// megabytes per response. The response's byte fields (record batches)
// alias that buffer: they are valid only until the next RequestReusing.
func (c *Conn) RequestReusing(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	return c.request(req, timeout, true)
}

// reuseKeep is the response buffer RequestReusing keeps however its
// responses shrink; above it, 64 responses in a row under an eighth of the
// buffer give it back (a burst's buffer is not held while idle).
const reuseKeep = 1 << 20

func (c *Conn) request(req kmsg.Request, timeout time.Duration, reuse bool) (kmsg.Response, error) {
	c.corr++
	c.c.SetDeadline(time.Now().Add(timeout))
	c.buf = AppendRequest(c.buf[:0], req, c.corr, c.clientID)
	if _, err := c.c.Write(c.buf); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	body, err := c.recv(c.corr, resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16(), reuse)
	if err != nil {
		return nil, fmt.Errorf("%s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

func (c *Conn) recv(corr int32, headerTags, reuse bool) ([]byte, error) {
	var buf []byte
	if reuse {
		buf = c.resp
	}
	frame, err := readFrame(c.r, buf)
	if err != nil {
		return nil, err
	}
	if reuse {
		switch {
		case cap(frame) > cap(c.resp):
			c.resp, c.small = frame[:0], 0
		case cap(c.resp) > reuseKeep && len(frame) < cap(c.resp)/8:
			if c.small++; c.small >= 64 {
				c.resp, c.small = nil, 0
			}
		default:
			c.small = 0
		}
	}
	return ResponseBody(frame, corr, headerTags)
}
