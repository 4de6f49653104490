package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// testCA signs certificates for the TLS tests and writes them as PEM.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samsa test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	ca.file = ca.write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

func (ca *testCA) write(name string, data []byte) string {
	ca.t.Helper()
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// issue writes a certificate and key signed by the CA to name.pem and
// name-key.pem: a server certificate for 127.0.0.1 or a client one.
func (ca *testCA) issue(name string, serial int64, subject pkix.Name, server bool) (certFile, keyFile string) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		// Both: a pair's nodes serve and dial the link with one certificate.
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	certFile = ca.write(name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyFile = ca.write(name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
}

// startTLSBroker starts a broker with a PLAINTEXT listener (b.addr) and an
// SSL one (returned), client certificates as clientAuth says.
func startTLSBroker(t *testing.T, ca *testCA, clientAuth string) (*broker, string) {
	t.Helper()
	certFile, keyFile := ca.issue("broker", 10, pkix.Name{CommonName: "broker"}, true)
	addr, sslAddr, data := freeAddr(t), freeAddr(t), t.TempDir()
	dir := t.TempDir()
	cfg := writeConfig(t, dir,
		`listen = "127.0.0.1:9092"`, fmt.Sprintf(`listeners = "PLAINTEXT://%s,SSL://%s"`, addr, sslAddr),
		`data_dir = "./data"`, fmt.Sprintf("data_dir = %q", data),
		"[admin]", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\nca_file = %q\nclient_auth = %q\n"+
			"principal_mapping_rules = \"RULE:^CN=([^,]*),.*$/$1/L,DEFAULT\"\n\n[admin]", certFile, keyFile, ca.file, clientAuth))
	b := &broker{t: t, addr: addr, dataDir: data, config: cfg, log: &logBuffer{}, fileOnly: true}
	t.Cleanup(b.cleanup)
	b.start()
	waitListening(t, sslAddr)
	return b, sslAddr
}

// TestTLSClients: kcat (librdkafka) and franz-go produce and consume over
// the SSL listener, with and without a client certificate, and Metadata
// sends each client to the listener it came in on.
func TestTLSClients(t *testing.T) {
	kcat := needKcat(t)
	ca := newTestCA(t)
	b, sslAddr := startTLSBroker(t, ca, "requested")
	clientCert, clientKey := ca.issue("alice", 20, pkix.Name{CommonName: "alice", Organization: []string{"Acme"}}, false)

	// kcat over SSL: Metadata names the SSL address (librdkafka connects
	// to what Metadata says: the plaintext port would fail the handshake).
	ssl := []string{"-b", sslAddr, "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + ca.file}
	out := runTool(t, "", kcat, append(ssl, "-L")...)
	if !strings.Contains(out, "broker 1 at "+sslAddr) {
		t.Fatalf("kcat -L over SSL does not list the SSL address %s:\n%s", sslAddr, out)
	}
	out = runTool(t, "", kcat, "-b", b.addr, "-L")
	if !strings.Contains(out, "broker 1 at "+b.addr) {
		t.Fatalf("kcat -L over PLAINTEXT does not list the plaintext address %s:\n%s", b.addr, out)
	}
	b.createTopic("tls-kcat", 2, nil)
	runTool(t, "one\ntwo\nthree\n", kcat, append(ssl, "-P", "-t", "tls-kcat", "-p", "0")...)
	mtls := append(ssl, "-X", "ssl.certificate.location="+clientCert, "-X", "ssl.key.location="+clientKey)
	runTool(t, "four\n", kcat, append(mtls, "-P", "-t", "tls-kcat", "-p", "0")...)
	got := runTool(t, "", kcat, append(mtls, "-C", "-t", "tls-kcat", "-p", "0", "-o", "beginning", "-e", "-q")...)
	if want := "one\ntwo\nthree\nfour\n"; got != want {
		t.Fatalf("kcat over mTLS read %q, want %q", got, want)
	}
	// Plaintext sees the same records.
	got = runTool(t, "", kcat, "-b", b.addr, "-C", "-t", "tls-kcat", "-p", "0", "-o", "beginning", "-e", "-q")
	if want := "one\ntwo\nthree\nfour\n"; got != want {
		t.Fatalf("kcat over PLAINTEXT read %q, want %q", got, want)
	}

	// franz-go over TLS: 2 MiB of records through a producer and a group
	// consumer (large fetches, many TLS records each).
	cert, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{cert}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(sslAddr), kgo.DialTLSConfig(tlsCfg),
		kgo.DefaultProduceTopic("tls-franz"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := bytes.Repeat([]byte("x"), 1024)
	const n = 2048
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "%d", i), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce over TLS: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(sslAddr), kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool}),
		kgo.ConsumeTopics("tls-franz"), kgo.ConsumerGroup("tls-group"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records over TLS: %v", len(seen), n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch over TLS: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if !bytes.Equal(r.Value, value) {
				t.Fatalf("record %s corrupted over TLS", r.Key)
			}
			seen[string(r.Key)] = true
		})
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit over TLS (group coordinator on the SSL listener): %v", err)
	}
}

// TestTLSRefusals: plaintext bytes on the SSL port and a TLS hello on the
// plaintext port end in a closed connection, and a client without a
// certificate is refused when one is required; the broker serves on.
func TestTLSRefusals(t *testing.T) {
	kcat := needKcat(t)
	ca := newTestCA(t)
	b, sslAddr := startTLSBroker(t, ca, "required")

	// Plaintext Kafka on the SSL port: an ApiVersions request, no answer.
	c, err := net.DialTimeout("tcp", sslAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if n, err := c.Read(make([]byte, 512)); err == nil {
		// A TLS alert may come first; what must not come is an answer
		// and an open connection.
		if _, err := c.Read(make([]byte, 512)); err == nil {
			t.Fatalf("plaintext request on the SSL port got %d bytes and the connection stays open", n)
		}
	}

	// A TLS hello on the plaintext port.
	_, err = tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", b.addr, &tls.Config{RootCAs: ca.pool})
	if err == nil {
		t.Fatal("a TLS handshake with the plaintext listener succeeded")
	}

	// No client certificate where one is required: kcat fails, the
	// broker logs the refused handshake.
	cmd := []string{"-b", sslAddr, "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + ca.file, "-L", "-m", "5"}
	if out, err := runToolErr("", kcat, cmd...); err == nil {
		t.Fatalf("kcat without a client certificate was served where one is required:\n%s", out)
	}
	waitLog(t, b, "TLS handshake failed")

	// With one, it works, and so does plaintext.
	certFile, keyFile := ca.issue("bob", 30, pkix.Name{CommonName: "bob"}, false)
	runTool(t, "", kcat, append(cmd[:len(cmd)-3], "-X", "ssl.certificate.location="+certFile, "-X", "ssl.key.location="+keyFile, "-L")...)
	runTool(t, "", kcat, "-b", b.addr, "-L")
}

// TestTLSCertificateReload: SIGHUP loads a rotated certificate for new
// connections; a connection made before keeps working.
func TestTLSCertificateReload(t *testing.T) {
	ca := newTestCA(t)
	b, sslAddr := startTLSBroker(t, ca, "none")
	serial := func() int64 {
		c, err := tls.Dial("tcp", sslAddr, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 10 {
		t.Fatalf("serving certificate serial %d, want 10", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(sslAddr), kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Rotate: same file names, a new certificate.
	ca.issue("broker", 11, pkix.Name{CommonName: "broker"}, true)
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, b, "TLS certificates reloaded")
	if s := serial(); s != 11 {
		t.Fatalf("after SIGHUP the serving certificate's serial is %d, want 11", s)
	}
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("a connection from before the reload broke: %v", err)
	}
}

// runToolErr runs an external client with stdin, bounded to 60s, and
// returns its stdout and stderr and how it exited.
func runToolErr(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAdminTLSToken: the [admin] listener over HTTPS with a bearer token:
// /metrics needs the token, /healthz does not, plain HTTP gets nothing.
func TestAdminTLSToken(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue("broker", 10, pkix.Name{CommonName: "broker"}, true)
	httpAddr := freeAddr(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, t.TempDir(), "[admin]\n# HTTP admin", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n\n[admin]\nlisten = %q\ntls = true\ntoken_file = %q\n# HTTP admin", certFile, keyFile, httpAddr, token),
		"\nlisten = \"\"\n\n[topic_defaults]", "\n\n[topic_defaults]")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	waitListening(t, httpAddr)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	get := func(path, auth string) int {
		req, _ := http.NewRequest("GET", "https://"+httpAddr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 && path == "/metrics" && !strings.Contains(string(body), "samsa_") {
			t.Fatalf("/metrics without samsa metrics:\n%.500s", body)
		}
		return resp.StatusCode
	}
	if c := get("/metrics", ""); c != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d", c)
	}
	if c := get("/metrics", "Bearer wrong"); c != http.StatusUnauthorized {
		t.Fatalf("/metrics with a wrong token: %d", c)
	}
	if c := get("/metrics", "Bearer s3cret-token"); c != http.StatusOK {
		t.Fatalf("/metrics with the token: %d", c)
	}
	if c := get("/healthz", ""); c != http.StatusOK {
		t.Fatalf("/healthz: %d", c)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + httpAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP was served on the HTTPS admin listener")
		}
	}
}

// TestTLSSlowHandshakes: clients that connect to the SSL listener and
// never finish a handshake (slowloris) hold at most max_connections_per_ip
// connections, each for at most handshake_timeout_ms, and a real client
// from another address still gets in meanwhile.
func TestTLSSlowHandshakes(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue("broker", 10, pkix.Name{CommonName: "broker"}, true)
	addr, sslAddr, data := freeAddr(t), freeAddr(t), t.TempDir()
	_, sslPort, _ := net.SplitHostPort(sslAddr)
	cfg := writeConfig(t, t.TempDir(),
		`listen = "127.0.0.1:9092"`, fmt.Sprintf(`listeners = "PLAINTEXT://%s,SSL://0.0.0.0:%s"`, addr, sslPort),
		`data_dir = "./data"`, fmt.Sprintf("data_dir = %q", data),
		"[admin]", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\nhandshake_timeout_ms = 1500\n\n[admin]", certFile, keyFile),
		"max_connections_per_ip = 0 ", "max_connections_per_ip = 20 ")
	b := &broker{t: t, addr: addr, dataDir: data, config: cfg, log: &logBuffer{}, fileOnly: true}
	t.Cleanup(b.cleanup)
	b.start()
	waitListening(t, sslAddr)

	// 60 silent connections from 127.0.0.2: 20 are held, the rest refused.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	for range 60 {
		c, err := d.Dial("tcp", "127.0.0.2:"+sslPort)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// A real client from 127.0.0.1 is served meanwhile.
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+sslPort, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("a real client during the slow handshakes: %v", err)
	}
	tc.Close()
	// Every silent connection is closed: the refused at once, the held
	// ones after the handshake timeout.
	start := time.Now()
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("silent connection %d got bytes", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("silent connection %d still open after %v", i, time.Since(start))
		}
	}
	waitLog(t, b, "connection limit per address reached")
}
