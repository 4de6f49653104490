package netio

import (
	"net"

	"github.com/panjf2000/gnet/v2"
)

// wire is what netio needs of a connection's transport: gnet.Conn for
// plaintext listeners, tlsWire for TLS ones. Peek, Discard, Read and
// InboundBuffered are called on the connection's loop goroutine only;
// AsyncWritev, Wake and Close from any goroutine, and the callbacks of
// AsyncWritev run in the order queued, each after its bytes were written
// (or copied into the transport's buffer). sendfile and reading frames
// straight from the socket need gnet.Conn itself: TLS connections do
// neither.
type wire interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Read(p []byte) (int, error)
	InboundBuffered() int
	OutboundBuffered() int
	AsyncWritev(bs [][]byte, cb gnet.AsyncCallback) error
	Wake(cb gnet.AsyncCallback) error
	Close() error
	Context() any
	SetContext(ctx any)
	RemoteAddr() net.Addr
}

var _ wire = gnet.Conn(nil)
