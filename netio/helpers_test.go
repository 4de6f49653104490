package netio

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testHandler runs serve for each request and counts ConnClosed per
// connection.
type testHandler struct {
	serve func(req *Request)

	mu     sync.Mutex
	closed map[uint64]int // (mu) ConnClosed calls per connection id
	served atomic.Int64
}

func (h *testHandler) Serve(req *Request) {
	h.served.Add(1)
	h.serve(req)
}

func (h *testHandler) ConnClosed(c *Conn) {
	h.mu.Lock()
	h.closed[c.ID()]++
	h.mu.Unlock()
}

// checkClosedOnce checks that ConnClosed ran exactly once for every
// connection the server accepted. Call it after Stop.
func (h *testHandler) checkClosedOnce(t *testing.T, s *Server) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	accepted := int(s.nextID.Load())
	if len(h.closed) != accepted {
		t.Errorf("ConnClosed ran for %d connections, %d accepted", len(h.closed), accepted)
	}
	for id, n := range h.closed {
		if n != 1 {
			t.Errorf("ConnClosed ran %d times for connection %d", n, id)
		}
	}
}

var quietLogger = slog.New(slog.DiscardHandler)

// startServer runs a server on a random port; t.Cleanup stops it and checks
// ConnClosed.
func startServer(t *testing.T, opts Options, serve func(*Request)) (*Server, *testHandler) {
	t.Helper()
	s, h := newTestServer(t, opts, serve)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		h.checkClosedOnce(t, s)
	})
	return s, h
}

func newTestServer(t *testing.T, opts Options, serve func(*Request)) (*Server, *testHandler) {
	t.Helper()
	h := &testHandler{serve: serve, closed: map[uint64]int{}}
	opts.Addr = "127.0.0.1:0"
	if opts.NumLoops == 0 {
		opts.NumLoops = 2
	}
	if testing.Verbose() && os.Getenv("NETIO_LOG") != "" {
		opts.Logger = slog.Default()
	} else {
		opts.Logger = quietLogger
	}
	s := NewServer(opts, h)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s, h
}

// echo answers each request with a copy of its body.
func echo(req *Request) {
	req.Respond(&Response{Parts: []Part{{B: slices.Clone(req.Body)}}})
}

func strp(s string) *string { return &s }

// appendReq appends a framed request with a v1 header (nil clientID is the
// null string).
func appendReq(dst []byte, key, ver int16, corr int32, clientID *string, body []byte) []byte {
	n := 10 + len(body)
	if clientID != nil {
		n += len(*clientID)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = binary.BigEndian.AppendUint16(dst, uint16(key))
	dst = binary.BigEndian.AppendUint16(dst, uint16(ver))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if clientID == nil {
		dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	} else {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(*clientID)))
		dst = append(dst, *clientID...)
	}
	return append(dst, body...)
}

// client is a raw Kafka-framing client. Its methods fail the test, so call
// them on the test goroutine only (or use the err-returning forms).
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(corr int32, body []byte) {
	c.t.Helper()
	c.write(appendReq(nil, 1, 0, corr, strp("test"), body))
}

// readResp reads one response frame; headerV1 expects the tagged-fields byte.
func readResp(r io.Reader, headerV1 bool) (corr int32, body []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:]))
	corr = int32(binary.BigEndian.Uint32(hdr[4:]))
	if size < 4 {
		return corr, nil, errors.New("response size < 4")
	}
	body = make([]byte, size-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return corr, nil, err
	}
	if headerV1 {
		if len(body) == 0 || body[0] != 0 {
			return corr, nil, errors.New("missing empty tagged fields")
		}
		body = body[1:]
	}
	return corr, body, nil
}

func (c *client) recv() (int32, []byte) {
	c.t.Helper()
	corr, body, err := readResp(c.r, false)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	return corr, body
}

// roundTrip sends one request and checks the echoed answer.
func (c *client) roundTrip(corr int32, body string) {
	c.t.Helper()
	c.send(corr, []byte(body))
	gotCorr, got := c.recv()
	if gotCorr != corr || string(got) != body {
		c.t.Fatalf("got corr %d body %q, want %d %q", gotCorr, got, corr, body)
	}
}

// expectClosed waits for the server to close the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	if err := waitClosed(c.c, c.r); err != nil {
		c.t.Fatal(err)
	}
}

func waitClosed(c net.Conn, r io.Reader) error {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [512]byte
	for {
		_, err := r.Read(buf[:])
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil
		}
		return errors.New("connection not closed: " + err.Error())
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: make test runs every package at once under -race on two
	// cores, and a loop goroutine can be starved for seconds.
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
