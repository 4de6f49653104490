package netio

import (
	"encoding/binary"
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

	hdr   [9]byte
	bufs  [][]byte
	pool  []*bytebufferpool.ByteBuffer
	skip  bool  // acks=0: nothing to write
	freed int32 // (atomic) free ran
}

var filePool bytebufferpool.Pool

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
	resp.hdr[8] = 0 // no tagged fields
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
		if p.Len <= 0 {
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

// written is the AsyncWritev callback: gnet has copied whatever the socket
// did not take into its outbound buffer, or the connection is gone. Loop
// goroutine.
func (resp *Response) written(gnet.Conn, error) error {
	resp.free()
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
	resp.bufs = nil
	if resp.Release != nil {
		resp.Release()
	}
}
