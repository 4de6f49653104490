package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
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
	Parts    []Part
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
	srv    *Server
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

// prepare frames the response. A file range goes out by sendfile when the
// server allows it and the range is in the page cache (so the event loop
// never waits for the disk); otherwise it is read here, off the loop, into
// a pooled buffer. Called on the goroutine that responds.
func (resp *Response) prepare(srv *Server, corrID int32) error {
	resp.srv = srv
	sendfile := !srv.opts.NoSendfile
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
	resp.chunks = append(resp.chunks[:0], chunk{bufs: [][]byte{h}})
	addBytes := func(b []byte) {
		last := &resp.chunks[len(resp.chunks)-1]
		if last.file != nil {
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
		if sendfile && cached(p.File, p.Off, p.Len) {
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
	resp.srv.stats.copiedBytes.Add(n)
	return bb.B, nil
}

// zeroCopy reports whether the response has file chunks to send from the
// loop.
func (resp *Response) zeroCopy() bool { return len(resp.chunks) > 1 }

// written is the AsyncWritev callback for responses without file chunks:
// gnet has copied whatever the socket did not take into its outbound
// buffer, or the connection is gone. Loop goroutine.
func (resp *Response) written(gnet.Conn, error) error {
	resp.free()
	return nil
}

var errFileShort = errors.New("file range ends early")

// writeRest is the AsyncWritev callback of the first chunk of a response
// with file chunks: it writes the other chunks in order, on the loop, so
// nothing else reaches the socket in between (gnet runs queued writes one
// after another). A file chunk goes by sendfile while gnet's outbound
// buffer is empty; from the first EAGAIN on, the rest is read into a pooled
// buffer and written through gnet, which buffers it. Loop goroutine.
func (resp *Response) writeRest(gc gnet.Conn, err error) error {
	defer resp.free()
	if err != nil {
		return nil
	}
	for _, ch := range resp.chunks[1:] {
		if ch.file == nil {
			if _, err := gc.Writev(ch.bufs); err != nil {
				return nil // gnet closed the connection
			}
			continue
		}
		off, n := ch.off, ch.n
		if gc.OutboundBuffered() == 0 {
			sent, err := sendfile(gc.Fd(), ch.file, off, n)
			off, n = off+sent, n-sent
			resp.srv.stats.sendfileBytes.Add(sent)
			if err != nil {
				_ = gc.Close()
				return nil
			}
		}
		if n == 0 {
			continue
		}
		b, err := resp.readFile(ch.file, off, n)
		if err == nil {
			_, err = gc.Write(b)
		}
		if err != nil {
			_ = gc.Close()
			return nil
		}
	}
	return nil
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
