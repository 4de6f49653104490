package replica

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// serveApiVersions answers every request on l with an ApiVersions v0
// response until l is closed.
func serveApiVersions(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var size [4]byte
			for {
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				req := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := io.ReadFull(c, req); err != nil || len(req) < 8 {
					return
				}
				resp := kmsg.NewApiVersionsResponse()
				body := resp.AppendTo(nil)
				out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
				out = append(out, req[4:8]...) // correlation id
				if _, err := c.Write(append(out, body...)); err != nil {
					return
				}
			}
		}()
	}
}

// A standby checks a primary whose client address is a TLS listener over
// TLS (ClientTLS): it answers; the same check in plaintext gets nothing
// and says so, as it did before ClientTLS, when auto_failover could not
// see such a primary through its client address.
func TestProbeClientAddressOverTLS(t *testing.T) {
	// httptest's certificate, without its HTTP server.
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	srvCfg := hs.TLS.Clone()
	hs.Close()
	l, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serveApiVersions(l)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Role: RoleStandby, PeerID: 1, PeerLink: "127.0.0.1:1", PeerClient: l.Addr().String(), LagTimeMaxMs: 1000, MinInsyncReplicas: 1}
	_, rl := primaryLog(t, time.Minute)
	plain := NewPair(cfg, 2, oneLog{rl}, logger)
	if plain.answers(cfg.PeerClient, false, 2*time.Second) {
		t.Fatal("a plaintext ApiVersions got an answer from a TLS listener")
	}
	cfg.ClientTLS = &tls.Config{InsecureSkipVerify: true}
	secure := NewPair(cfg, 2, oneLog{rl}, logger)
	if !secure.answers(cfg.PeerClient, false, 2*time.Second) {
		t.Fatal("the TLS liveness check of the peer's client address got no answer")
	}
	if !secure.answersEither(2 * time.Second) {
		t.Fatal("answersEither: the client address answers over TLS, the link is down")
	}
}
