package main

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/tools/ctl"
)

// startTLSPair starts a pair whose replication link is mutual TLS with
// each node's certificate (CN=node1, CN=node2) and only the other
// node's principal accepted; the authorizer is on with no ACL, and the
// test's own plaintext clients (ANONYMOUS) are super users: the link's
// connections (CN=node1, CN=node2) need no ACL.
func startTLSPair(t *testing.T, ca *testCA, extra ...string) (*brokerPair, string) {
	t.Helper()
	pAddr, sAddr, pLink, sLink := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cert1, key1 := ca.issue("node1", 101, pkix.Name{CommonName: "node1"}, true)
	cert2, key2 := ca.issue("node2", 102, pkix.Name{CommonName: "node2"}, true)
	withTLS := func(path, cert, key string) string {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, fmt.Sprintf("\n[tls]\ncert_file = %q\nkey_file = %q\nca_file = %q\n\n[acl]\nenabled = true\nsuper_users = \"User:ANONYMOUS\"\n", cert, key, ca.file)...)
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pp := &broker{t: t, addr: pAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: withTLS(pairConfig(t, 1, 2, "primary", pLink, sAddr, sLink, append([]string{"link_tls = true", `peer_principal = "User:CN=node2"`}, extra...)...), cert1, key1)}
	ss := &broker{t: t, addr: sAddr, dataDir: t.TempDir(), log: &logBuffer{},
		config: withTLS(pairConfig(t, 2, 1, "standby", sLink, pAddr, pLink, append([]string{"link_tls = true", `peer_principal = "User:CN=node1"`}, extra...)...), cert2, key2)}
	t.Cleanup(pp.cleanup)
	t.Cleanup(ss.cleanup)
	pp.start()
	ss.start()
	waitInSync(t, pp.addr)
	return &brokerPair{pp, ss}, pLink
}

// TestLinkTLS: over a mutual-TLS link the standby follows (acks=all
// needs it in sync) with the authorizer on; strangers cannot use the
// link: plaintext, TLS without a certificate, and a certificate of the
// same CA with another name are all refused before any request.
func TestLinkTLS(t *testing.T) {
	ca := newTestCA(t)
	p, pLink := startTLSPair(t, ca)
	cl := p.primary.client(kgo.SeedBrokers(p.primary.addr), kgo.DefaultProduceTopic("linked"), kgo.AllowAutoTopicCreation())
	var rs []*kgo.Record
	for i := range 200 {
		rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(timeout(t, 30*time.Second), rs...).FirstErr(); err != nil {
		t.Fatalf("acks=all over the TLS link: %v", err)
	}

	// A stranger in plaintext: an ApiVersions request gets no answer.
	c, err := net.DialTimeout("tcp", pLink, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 256)
	n, _ := c.Read(buf)
	if n >= 8 && buf[4] == 0 && buf[5] == 0 && buf[6] == 0 && buf[7] == 1 {
		t.Fatal("a plaintext stranger got an ApiVersions answer on the link")
	}
	// TLS without a certificate, and with a certificate of the CA under
	// another name.
	mallory, malloryKey := ca.issue("mallory", 103, pkix.Name{CommonName: "mallory"}, true)
	mcert, err := tls.LoadX509KeyPair(mallory, malloryKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*tls.Config{
		"no certificate": {RootCAs: ca.pool, ServerName: "127.0.0.1"},
		"CN=mallory":     {RootCAs: ca.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{mcert}},
	} {
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", pLink, cfg)
		if err == nil {
			// TLS 1.3: the server's verdict on the client comes with the
			// first read.
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = tc.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
			_, err = tc.Read(buf)
			tc.Close()
		}
		if err == nil {
			t.Fatalf("%s: a stranger was answered on the link", name)
		}
	}
	waitLog(t, p.primary, "not the peer")
}

// TestLinkTLSCompressed: link_tls with link_compression = "lz4" (lz4
// inside the TLS session): the standby follows, so acks=all succeeds,
// and it has every record once promoted.
func TestLinkTLSCompressed(t *testing.T) {
	ca := newTestCA(t)
	p, _ := startTLSPair(t, ca, `link_compression = "lz4"`)
	cl := p.primary.client(kgo.SeedBrokers(p.primary.addr), kgo.DefaultProduceTopic("zlinked"), kgo.AllowAutoTopicCreation())
	var rs []*kgo.Record
	for i := range 2000 {
		rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, "compressible value %d %s", i, strings.Repeat("x", 200))})
	}
	if err := cl.ProduceSync(timeout(t, 30*time.Second), rs...).FirstErr(); err != nil {
		t.Fatalf("acks=all over the lz4 TLS link: %v", err)
	}
	cl.Close()
	p.primary.kill()
	if err := ctl.Promote(timeout(t, 30*time.Second), p.standby.addr, io.Discard); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if got := p.standby.consumeAll("zlinked"); len(got[0]) != len(rs) {
		t.Fatalf("the promoted standby has %d records, %d were acknowledged", len(got[0]), len(rs))
	}
	waitLog(t, p.primary, "tls=true compression=lz4")
}
