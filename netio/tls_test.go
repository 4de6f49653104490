package netio

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, subject pkix.Name, usage x509.ExtKeyUsage) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: subject,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		pool:   pool,
		server: leaf(2, pkix.Name{CommonName: "broker"}, x509.ExtKeyUsageServerAuth),
		client: leaf(3, pkix.Name{CommonName: "alice", Organization: []string{"Acme"}}, x509.ExtKeyUsageClientAuth),
	}
}

func startTLSServer(t *testing.T, pki *testPKI, auth tls.ClientAuthType, serve func(*Request)) *Server {
	t.Helper()
	return startTLSServerOpts(t, pki, auth, Options{}, serve)
}

// startTLSServerOpts is startTLSServer with opts for everything but TLS.
func startTLSServerOpts(t *testing.T, pki *testPKI, auth tls.ClientAuthType, opts Options, serve func(*Request)) *Server {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: auth, MinVersion: tls.VersionTLS12}
	opts.Listener = "SSL"
	opts.TLS = &TLSOptions{
		Config:           func() *tls.Config { return cfg },
		HandshakeTimeout: time.Second,
		Principal: func(cs tls.ConnectionState) string {
			if len(cs.PeerCertificates) == 0 {
				return ""
			}
			return "User:" + cs.PeerCertificates[0].Subject.String()
		},
	}
	s, _ := startServer(t, opts, serve)
	return s
}

func dialTLS(t *testing.T, addr string, pki *testPKI, withCert bool) (*client, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"}
	if withCert {
		cfg.Certificates = []tls.Certificate{pki.client}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// TestTLSPipelinedInOrder: requests pipelined over TLS are answered in
// order, small and large, and the connection knows its listener and the
// client's certificate principal.
func TestTLSPipelinedInOrder(t *testing.T) {
	pki := newTestPKI(t)
	var mu sync.Mutex
	var principals, listeners []string
	s := startTLSServer(t, pki, tls.VerifyClientCertIfGiven, func(req *Request) {
		mu.Lock()
		principals = append(principals, req.Conn.Principal())
		listeners = append(listeners, req.Conn.Listener())
		mu.Unlock()
		echo(req)
	})
	c, err := dialTLS(t, s.Addr(), pki, true)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many TLS records
	var batch []byte
	for i := range 20 {
		body := []byte("small")
		if i%5 == 4 {
			body = big
		}
		batch = appendReq(batch, 1, 0, int32(i), strp("test"), body)
	}
	c.write(batch)
	for i := range 20 {
		corr, body := c.recv()
		want := 5
		if i%5 == 4 {
			want = len(big)
		}
		if corr != int32(i) || len(body) != want {
			t.Fatalf("response %d: corr %d, %d bytes; want corr %d, %d bytes", i, corr, len(body), i, want)
		}
	}
	mu.Lock()
	if want := "User:CN=alice,O=Acme"; principals[0] != want || listeners[0] != "SSL" {
		t.Errorf("principal %q listener %q, want %q and SSL", principals[0], listeners[0], want)
	}
	mu.Unlock()

	// Without a client certificate (requested, not required): anonymous.
	c2, err := dialTLS(t, s.Addr(), pki, false)
	if err != nil {
		t.Fatal(err)
	}
	c2.roundTrip(1, "hello")
	mu.Lock()
	defer mu.Unlock()
	if p := principals[len(principals)-1]; p != AnonymousPrincipal {
		t.Errorf("principal without a certificate: %q, want %q", p, AnonymousPrincipal)
	}
}

// TestTLSFileParts: file parts of a response are read and sealed (no
// sendfile over TLS), whole and in order.
func TestTLSFileParts(t *testing.T) {
	pki := newTestPKI(t)
	f, data := testFile(t, 2_800_000)
	s := startTLSServer(t, pki, tls.NoClientCert, func(req *Request) {
		req.Respond(&Response{Parts: []Part{{B: []byte("hdr")}, {File: f, Off: 7, Len: int64(len(data) - 7)}, {B: []byte("end")}}})
	})
	c, err := dialTLS(t, s.Addr(), pki, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.send(int32(i), []byte("x"))
	}
	for i := range 3 {
		corr, body := c.recv()
		want := append(append([]byte("hdr"), data[7:]...), "end"...)
		if corr != int32(i) || !bytes.Equal(body, want) {
			t.Fatalf("response %d: corr %d, %d bytes, want %d bytes", i, corr, len(body), len(want))
		}
	}
	if st := s.Stats(); st.SendfileBytes != 0 || st.CopiedBytes == 0 {
		t.Errorf("sendfile %d bytes, copied %d: TLS must copy, never sendfile", st.SendfileBytes, st.CopiedBytes)
	}
}

// A file range that ends early (a truncated segment) over TLS: the
// connection is closed, never answered with short or other bytes, and the
// server serves the next connection.
func TestTLSFileShort(t *testing.T) {
	pki := newTestPKI(t)
	f, data := testFile(t, 600_000) // three steps and a bit
	s := startTLSServer(t, pki, tls.NoClientCert, func(req *Request) {
		n := int64(len(data))
		if string(req.Body) == "short" {
			n += 100
		}
		req.Respond(&Response{Parts: []Part{{B: []byte("hdr")}, {File: f, Len: n}}})
	})
	c, err := dialTLS(t, s.Addr(), pki, false)
	if err != nil {
		t.Fatal(err)
	}
	c.send(1, []byte("short"))
	if _, body, err := readResp(c.r, false); err == nil {
		t.Fatalf("a short file range answered with %d bytes", len(body))
	}
	c2, err := dialTLS(t, s.Addr(), pki, false)
	if err != nil {
		t.Fatal(err)
	}
	c2.send(2, []byte("whole"))
	if corr, body := c2.recv(); corr != 2 || !bytes.Equal(body, append([]byte("hdr"), data...)) {
		t.Fatalf("next connection: corr %d, %d bytes", corr, len(body))
	}
}

// TestTLSRefusals: a required client certificate that is missing, and
// plaintext Kafka bytes on the TLS port, both end in a closed connection,
// with the server still serving others.
func TestTLSRefusals(t *testing.T) {
	pki := newTestPKI(t)
	s := startTLSServer(t, pki, tls.RequireAndVerifyClientCert, echo)
	if c, err := dialTLS(t, s.Addr(), pki, false); err == nil {
		// TLS 1.3 reports the missing certificate on the first read.
		c.send(1, []byte("x"))
		if _, _, err := readResp(c.r, false); err == nil {
			t.Fatal("a client without a certificate was served")
		}
	}
	plain := dial(t, s.Addr())
	plain.send(1, []byte("plaintext"))
	plain.expectClosed()
	c, err := dialTLS(t, s.Addr(), pki, true)
	if err != nil {
		t.Fatal(err)
	}
	c.roundTrip(2, "still serving")
	// A client that connects and says nothing is closed after the
	// handshake timeout.
	idle := dial(t, s.Addr())
	start := time.Now()
	idle.expectClosed()
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("silent client closed after %v, handshake timeout is 1s", d)
	}
	waitFor(t, "refused handshakes counted", func() bool { return s.Stats().ClosedBad >= 2 })
}

// TestTLSDialSelf: the process's own connection (DialSelf, the watchdog's
// self-check) is served without TLS on a TLS listener, even where client
// certificates are required; a stranger's plaintext is not.
func TestTLSDialSelf(t *testing.T) {
	pki := newTestPKI(t)
	s := startTLSServer(t, pki, tls.RequireAndVerifyClientCert, echo)
	c, err := s.DialSelf(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	cl.roundTrip(7, "self-check")
	stranger := dial(t, s.Addr())
	stranger.send(1, []byte("plaintext"))
	stranger.expectClosed()
}
