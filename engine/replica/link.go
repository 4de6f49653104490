package replica

// lz4 on the replication link ([replication] link_compression = "lz4"),
// for a link slower than the disk. The record batches stay as they are
// (the standby's logs are byte-identical copies); the bytes on the wire,
// both ways, are lz4-compressed blocks, one per write.
// On the primary the link listener is then a small relay: it decodes what
// the standby sends, passes it to the client listener on loopback, and
// encodes the answers (sendfile still serves the relay).

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// lz4Conn is a connection whose bytes are lz4-compressed both ways: each
// Write is one frame, [raw length][stored length][bytes], the bytes lz4
// block-compressed (stored length < raw length) or as they are.
type lz4Conn struct {
	net.Conn
	br     *bufio.Reader
	rest   []byte // decoded bytes not yet read
	in     []byte
	mu     sync.Mutex
	out    []byte
	hashes [1 << 16]int
}

// maxLinkFrame bounds a frame's sizes, so a bad peer cannot make this
// side allocate without limit.
const maxLinkFrame = 64 << 20

// NewLZ4Conn is c with the link's lz4 framing both ways: what is written
// goes compressed, what is read is decompressed. The link's server side
// wraps its TLS connections in it (netio.TLSOptions.Wrap).
func NewLZ4Conn(c net.Conn) net.Conn { return newLZ4Conn(c) }

func newLZ4Conn(c net.Conn) *lz4Conn {
	return &lz4Conn{Conn: c, br: bufio.NewReaderSize(c, 256<<10)}
}

func (c *lz4Conn) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		var hdr [8]byte
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return 0, err
		}
		raw, stored := binary.BigEndian.Uint32(hdr[:4]), binary.BigEndian.Uint32(hdr[4:])
		if raw > maxLinkFrame || stored > raw {
			return 0, errors.New("replication link: bad lz4 frame")
		}
		c.in = append(c.in[:0], make([]byte, stored)...)
		if _, err := io.ReadFull(c.br, c.in); err != nil {
			return 0, err
		}
		if stored == raw {
			c.rest = append(c.rest[:0], c.in...)
			continue
		}
		dec := make([]byte, raw)
		n, err := lz4.UncompressBlock(c.in, dec)
		if err != nil || n != int(raw) {
			return 0, errors.New("replication link: corrupt lz4 frame")
		}
		c.rest = dec
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// Write sends p as one frame, so the peer can act on it at once.
func (c *lz4Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for off := 0; off < len(p); {
		chunk := p[off:min(len(p), off+maxLinkFrame)]
		need := 8 + lz4.CompressBlockBound(len(chunk))
		if cap(c.out) < need {
			c.out = make([]byte, need)
		}
		out := c.out[:need]
		n, err := lz4.CompressBlock(chunk, out[8:], c.hashes[:])
		if err != nil || n == 0 || n >= len(chunk) {
			n = copy(out[8:], chunk) // incompressible: as it is
		}
		binary.BigEndian.PutUint32(out[:4], uint32(len(chunk)))
		binary.BigEndian.PutUint32(out[4:], uint32(n))
		if _, err := c.Conn.Write(out[:8+n]); err != nil {
			return off, err
		}
		off += len(chunk)
	}
	return len(p), nil
}

// linkConn wraps a connection to the peer's link as configured.
func (p *Pair) linkConn(c net.Conn) net.Conn {
	if p.cfg.LinkTLS != nil {
		cfg := p.cfg.LinkTLS.Clone()
		if host, _, err := net.SplitHostPort(p.cfg.PeerLink); err == nil && cfg.ServerName == "" {
			cfg.ServerName = host
		}
		c = tls.Client(c, cfg)
	}
	if p.cfg.LinkCompression == LinkLZ4 {
		return newLZ4Conn(c)
	}
	return c
}

// ServeCompressedLink relays lz4-framed connections accepted on l to the
// plain listener at target until l is closed; then it closes the relayed
// connections and returns once their goroutines have ended.
func ServeCompressedLink(l net.Listener, target string, logger *slog.Logger) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{} // (mu) open on either side
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
	}
	untrack := func(c net.Conn) {
		mu.Lock()
		delete(conns, c)
		mu.Unlock()
		c.Close()
	}
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logger.Warn("replication link accept failed", "err", err)
			}
			return
		}
		track(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer untrack(c)
			up, err := net.Dial("tcp", target)
			if err != nil {
				logger.Warn("replication link relay cannot reach the broker", "err", err)
				return
			}
			track(up)
			defer untrack(up)
			zc := newLZ4Conn(c)
			done := make(chan struct{})
			go func() {
				io.Copy(up, zc) // decoded requests to the broker
				up.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			buf := make([]byte, 256<<10)
			for {
				n, err := up.Read(buf)
				if n > 0 {
					if _, werr := zc.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
			<-done
		}()
	}
}
