package netio

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// A frame's buffer grows with the bytes that arrive, never with the length
// a client declares: a declared 100 MiB costs nothing until the bytes come.
// Buffers come from framePool in power-of-two classes up to maxPooledFrame;
// larger ones are allocated for the frame and left to the garbage
// collector. The pool keeps at most maxPooledBytes and frees what a burst
// left unused within trimEvery, so it does not hold a burst's memory.
// (Measured: pooling only up to 4 MiB cost a third of produce throughput,
// 600 -> 450 MiB/s, as franz-go's produce requests at full speed are
// several MiB.)
const (
	minFrameShift  = 9 // 512 B: most requests (ApiVersions, Metadata, heartbeats) fit
	maxFrameShift  = 26
	maxPooledFrame = 1 << maxFrameShift // 64 MiB
	nFrameClasses  = maxFrameShift - minFrameShift + 1
	// growFactor bounds what a frame reserves ahead of its bytes until
	// it has sent trustFrameBytes: a buffer that fills grows to
	// growFactor times its size (or to the frame's size).
	growFactor = 4
)

// frameBuf is a request frame's bytes; B's capacity is its class size.
type frameBuf struct {
	B []byte
}

// framePool keeps frame buffers for reuse, at most maxBytes in all. Trim
// frees what went unused since the previous Trim, so a burst's buffers go
// back to the runtime once it is over. Any goroutine.
type framePool struct {
	maxBytes int64
	pooled   atomic.Int64 // bytes of the buffers kept
	classes  [nFrameClasses]frameClass
}

type frameClass struct {
	mu   sync.Mutex
	free []*frameBuf
	low  int // fewest buffers free since the last trim: those were not needed
}

// classOf is the class whose buffers hold n bytes, or -1 if n is beyond the
// pooled sizes.
func classOf(n int) int {
	if n <= 1<<minFrameShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxFrameShift {
		return -1
	}
	return shift - minFrameShift
}

// get returns an empty buffer with room for at least n bytes.
func (p *framePool) get(n int) *frameBuf {
	i := classOf(n)
	if i < 0 {
		return &frameBuf{B: make([]byte, 0, n)}
	}
	c := &p.classes[i]
	c.mu.Lock()
	if k := len(c.free); k > 0 {
		b := c.free[k-1]
		c.free[k-1] = nil
		c.free = c.free[:k-1]
		c.low = min(c.low, len(c.free))
		c.mu.Unlock()
		p.pooled.Add(-int64(cap(b.B)))
		return b
	}
	c.mu.Unlock()
	return &frameBuf{B: make([]byte, 0, 1<<(i+minFrameShift))}
}

// put returns a buffer for reuse; b must not be used afterwards.
func (p *framePool) put(b *frameBuf) {
	size := cap(b.B)
	i := classOf(size)
	if i < 0 || size != 1<<(i+minFrameShift) {
		return // beyond the pooled sizes, or not one of ours
	}
	if p.pooled.Add(int64(size)) > p.maxBytes {
		p.pooled.Add(-int64(size))
		return
	}
	b.B = b.B[:0]
	c := &p.classes[i]
	c.mu.Lock()
	c.free = append(c.free, b)
	c.mu.Unlock()
}

// trim frees the buffers that stayed unused since the last trim and
// returns how many bytes it freed.
func (p *framePool) trim() int64 {
	var freed int64
	for i := range p.classes {
		c := &p.classes[i]
		c.mu.Lock()
		drop := c.low
		if drop > 0 {
			k := len(c.free) - drop
			clear(c.free[k:])
			c.free = c.free[:k]
			if len(c.free) == 0 {
				c.free = nil
			}
		}
		c.low = len(c.free)
		c.mu.Unlock()
		if drop > 0 {
			n := int64(drop) << (i + minFrameShift)
			p.pooled.Add(-n)
			freed += n
		}
	}
	return freed
}

// grownCap is the capacity a frame of size need grows to when it holds
// have bytes in a buffer of capacity cur and ready more are here: enough
// for have+ready and at least growFactor times cur, never above need; and
// need itself once a quarter of the frame or trustFrameBytes of it came,
// which spares a big frame's buffer most of its copies (a client that sent
// that much is sending; the budget still bounds what all frames hold).
func grownCap(cur, have, ready, need int) int {
	got := have + ready
	if got >= trustFrameBytes || got*growFactor >= need {
		return need
	}
	return min(need, max(got, growFactor*cur, 1<<minFrameShift))
}

// trustFrameBytes: see grownCap.
const trustFrameBytes = 1 << 20
