package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"
)

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
	// Raw frames the parts with their size alone, no correlation id: the
	// answer to a bare SASL token (Request.Raw).
	Raw   bool
	Parts []Part
	// Release, if set, is called exactly once when the parts are no
	// longer needed: after gnet has written or copied them, or when the
	// connection closed first. It may run on an event loop, so it must
	// not block.
	Release func()

	hdr    [9]byte
	chunks []chunk // what to write, in order; the first is always bytes
	pool   []*bytebufferpool.ByteBuffer
	skip   bool  // acks=0: nothing to write
	freed  int32 // (atomic) free ran

	conn   *Conn // the connection it answers on (set by prepare)
	onLoop bool  // handed to gnet's loop as bytes (Conn.handToGnet)

	// Progress of a response the loop sends itself (sendAll).
	err error // warm failed to read a file chunk
	ci  int   // chunk
	bi  int   // buffer within a byte chunk
	off int64 // bytes of the buffer or file range already sent
}

// chunk is a run of byte slices written with one writev, or a file range
// sent with sendfile from the event loop.
type chunk struct {
	bufs [][]byte
	file *os.File
	off  int64
	n    int64
}

var filePool bytebufferpool.Pool

// maxChunkBufs keeps a byte chunk within what one writev takes (IOV_MAX is
// 1024 on Linux).
const maxChunkBufs = 1000

// minSendfile is the smallest file range sent by sendfile. Below it a copy
// costs less than the residency check and the extra system calls, and the
// whole response leaves with one writev (tailing consumers' small fetches).
const minSendfile = 16 << 10

// prepare frames the response. A file range goes out by sendfile when the
// server allows it and the range is in the page cache (so the event loop
// never waits for the disk); otherwise it is read here, off the loop, into
// a pooled buffer. Called on the goroutine that responds.
func (resp *Response) prepare(c *Conn, corrID int32) error {
	resp.conn = c
	// A goroutine transport (TLS, or a connection moved off gnet) cannot
	// use sendfile: its writer reads file ranges a step at a time and
	// seals (or writes) each step as it is read (tlsWire.sendFile).
	onGoroutines := c.onGoroutines()
	sendfile := !c.srv.opts.NoSendfile && !onGoroutines
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
	resp.hdr[8] = 0 // no tagged fields
	h := resp.hdr[:8]
	if resp.HeaderV1 {
		h = resp.hdr[:9]
	}
	if resp.Raw {
		binary.BigEndian.PutUint32(resp.hdr[0:], uint32(size-4))
		h = resp.hdr[:4]
	}
	resp.chunks = append(resp.chunks[:0], chunk{bufs: [][]byte{h}})
	addBytes := func(b []byte) {
		last := &resp.chunks[len(resp.chunks)-1]
		// writev takes at most IOV_MAX (1024) buffers: a fetch of many
		// partitions gets several byte chunks, which sendAll writes.
		if last.file != nil || len(last.bufs) >= maxChunkBufs {
			resp.chunks = append(resp.chunks, chunk{})
			last = &resp.chunks[len(resp.chunks)-1]
		}
		last.bufs = append(last.bufs, b)
	}
	for _, p := range resp.Parts {
		if p.File == nil {
			if len(p.B) > 0 {
				addBytes(p.B)
			}
			continue
		}
		if p.Len <= 0 {
			continue
		}
		if onGoroutines {
			resp.chunks = append(resp.chunks, chunk{file: p.File, off: p.Off, n: p.Len})
			continue
		}
		if sendfile && p.Len >= minSendfile && resp.inCache(p.File, p.Off, p.Len) {
			resp.chunks = append(resp.chunks, chunk{file: p.File, off: p.Off, n: p.Len})
			continue
		}
		bb, err := resp.readFile(p.File, p.Off, p.Len)
		if err != nil {
			return err
		}
		addBytes(bb)
	}
	return nil
}

// inCache reports whether a file range is in the page cache, reading the
// chunks that are not into it first (fill). Off the loop.
func (resp *Response) inCache(f *os.File, off, n int64) bool {
	if cached(f, off, n) {
		return true
	}
	ok, read := fill(f, off, n)
	resp.conn.srv.stats.filledBytes.Add(read)
	return ok
}

// readFile reads a file range into a pooled buffer the response owns.
func (resp *Response) readFile(f *os.File, off, n int64) ([]byte, error) {
	bb := filePool.Get()
	if int64(cap(bb.B)) < n {
		bb.B = make([]byte, n)
	}
	bb.B = bb.B[:n]
	resp.pool = append(resp.pool, bb)
	if _, err := f.ReadAt(bb.B, off); err != nil {
		return nil, fmt.Errorf("cannot read %d bytes at %d of %s: %w", n, off, f.Name(), err)
	}
	resp.conn.srv.stats.copiedBytes.Add(n)
	return bb.B, nil
}

// frameSize is the frame's size prefix: its bytes on the wire after the
// prefix (set by prepare).
func (resp *Response) frameSize() int { return int(binary.BigEndian.Uint32(resp.hdr[:4])) }

// zeroCopy reports whether the response has file chunks to send from the
// loop (sendAll).
func (resp *Response) zeroCopy() bool { return len(resp.chunks) > 1 }

// written is the AsyncWritev callback for responses without file chunks:
// gnet has copied whatever the socket did not take into its outbound
// buffer, or the connection is gone. Loop goroutine.
func (resp *Response) written(gc gnet.Conn, err error) error {
	if resp.onLoop {
		resp.conn.loopWrote(gc, err)
	}
	resp.free()
	return nil
}

var errFileShort = errors.New("file range ends early")

// sendAll is the loop's task for a response with file chunks: it writes
// the chunks itself, byte chunks with writev and file chunks with sendfile,
// straight to the socket, from where it left off. When the socket is full
// it hands the wait to a goroutine that polls for writability and queues
// sendAll again; the connection stays blocked meanwhile, so no other
// response can reach the socket in between. If earlier responses are still
// in gnet's buffer, the rest is read into memory and written through gnet
// instead (they are ahead of it, and gnet sends them first). Loop
// goroutine.
func (resp *Response) sendAll(gc gnet.Conn, err error) error {
	c := resp.conn
	if err != nil {
		resp.finish(gc)
		return nil
	}
	if resp.err != nil { // warm could not read the rest
		c.cut(gc)
		resp.finish(gc)
		return nil
	}
	// A client slowly draining a large response is not idle.
	c.lastActive.Store(time.Now().UnixNano())
	if gc.OutboundBuffered() > 0 {
		resp.writeThroughGnet(gc)
		resp.finish(gc)
		return nil
	}
	switch err := resp.sendChunks(gc.Fd()); err {
	case nil:
		resp.finish(gc)
	case unix.EAGAIN: // the socket is full
		if !resp.waitWritable(gc) {
			resp.finish(gc)
		}
	default:
		c.cut(gc)
		resp.finish(gc)
	}
	return nil
}

// sendChunks writes the chunks to fd from where the response left off:
// byte chunks with writev, file chunks with sendfile. It returns nil once
// all are sent, EAGAIN when the socket is full, or the write's error.
func (resp *Response) sendChunks(fd int) error {
	for resp.ci < len(resp.chunks) {
		ch := &resp.chunks[resp.ci]
		var err error
		if ch.file == nil {
			err = writevFrom(fd, ch.bufs, &resp.bi, &resp.off)
			if err == nil {
				resp.ci, resp.bi, resp.off = resp.ci+1, 0, 0
				continue
			}
		} else {
			var n int64
			n, err = sendfile(fd, ch.file, ch.off+resp.off, ch.n-resp.off)
			resp.off += n
			resp.conn.srv.stats.sendfileBytes.Add(n)
			if err == nil && resp.off == ch.n {
				resp.ci, resp.off = resp.ci+1, 0
				continue
			}
			if err == nil {
				err = unix.EAGAIN // short: the socket took what it could
			}
		}
		return err
	}
	return nil
}

// finish frees a blocking response and lets the next ones go. gc is nil
// off the loop.
func (resp *Response) finish(gc gnet.Conn) {
	c := resp.conn
	resp.free()
	c.unblock(gc)
}

// writevFrom writes bufs from buffer *bi, offset *off within it, until all
// are written or the socket refuses (EAGAIN); *bi and *off track progress.
func writevFrom(fd int, bufs [][]byte, bi *int, off *int64) error {
	var iov [][]byte
	for *bi < len(bufs) {
		iov = append(iov[:0], bufs[*bi][*off:])
		iov = append(iov, bufs[*bi+1:min(len(bufs), *bi+maxChunkBufs)]...)
		n, err := unix.Writev(fd, iov)
		for rest := int64(max(n, 0)); rest > 0 && *bi < len(bufs); {
			left := int64(len(bufs[*bi])) - *off
			if rest < left {
				*off += rest
				break
			}
			rest -= left
			*bi, *off = *bi+1, 0
		}
		// Skip empty buffers so the loop ends.
		for *bi < len(bufs) && int64(len(bufs[*bi])) == *off {
			*bi, *off = *bi+1, 0
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// waitWritable starts a goroutine that waits until the socket takes data
// again and then queues sendAll on the loop. It polls its own duplicate of
// the descriptor, so a close and reuse of gnet's descriptor number cannot
// confuse it. It reports false if the wait could not start. Loop goroutine.
func (resp *Response) waitWritable(gc gnet.Conn) bool {
	c := resp.conn
	s := c.srv
	fd, err := gc.Dup()
	if err != nil {
		c.cut(gc)
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		for !c.closed.Load() && !s.halted.Load() {
			n, err := unix.Poll(pfd, 100)
			if n > 0 || (err != nil && err != unix.EINTR) {
				break
			}
		}
		unix.Close(fd)
		resp.warm()
		s.lifeMu.RLock()
		queued := !s.stopped && c.wire().AsyncWritev(nil, resp.sendAll) == nil
		s.lifeMu.RUnlock()
		if !queued {
			resp.finish(nil)
		}
	}()
	return true
}

// warm reads into memory every file chunk still to send that is no longer
// in the page cache (it may have been evicted while the socket was full),
// so that the loop, resuming, never waits for the disk. It runs on the
// poller goroutine while the loop leaves the response alone; the queued
// sendAll sees its changes.
func (resp *Response) warm() {
	for i := resp.ci; i < len(resp.chunks); i++ {
		ch := &resp.chunks[i]
		if ch.file == nil {
			continue
		}
		off, n := ch.off, ch.n
		if i == resp.ci {
			off, n = off+resp.off, n-resp.off
		}
		if n <= 0 || resp.inCache(ch.file, off, n) {
			continue
		}
		b, err := resp.readFile(ch.file, off, n)
		if err != nil {
			resp.err = err
			return
		}
		*ch = chunk{bufs: [][]byte{b}}
		if i == resp.ci {
			resp.bi, resp.off = 0, 0
		}
	}
}

// writeThroughGnet writes the rest of the response through gnet, reading
// file chunks into memory: gnet's buffer holds earlier responses, which
// must leave first. Loop goroutine.
func (resp *Response) writeThroughGnet(gc gnet.Conn) {
	for ; resp.ci < len(resp.chunks); resp.ci, resp.bi, resp.off = resp.ci+1, 0, 0 {
		ch := &resp.chunks[resp.ci]
		var err error
		if ch.file == nil {
			bufs := ch.bufs[resp.bi:]
			if len(bufs) > 0 {
				bufs = append([][]byte{bufs[0][resp.off:]}, bufs[1:]...)
			}
			_, err = gc.Writev(bufs)
		} else {
			var b []byte
			if b, err = resp.readFile(ch.file, ch.off+resp.off, ch.n-resp.off); err == nil {
				_, err = gc.Write(b)
			}
		}
		if err != nil {
			resp.conn.cut(gc)
			return
		}
	}
}

// free returns the pooled buffers and calls Release. It runs once however
// often it is called, so an error path may call it without knowing whether
// gnet will run the write callback too.
func (resp *Response) free() {
	if !atomic.CompareAndSwapInt32(&resp.freed, 0, 1) {
		return
	}
	for _, bb := range resp.pool {
		filePool.Put(bb)
	}
	resp.pool = nil
	resp.chunks = nil
	if resp.Release != nil {
		resp.Release()
	}
}
