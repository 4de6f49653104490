package main

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPrincipalRules: Kafka's ssl.principal.mapping.rules, first match
// wins, DEFAULT keeps the DN, L/U change case; bad rules are refused.
func TestPrincipalRules(t *testing.T) {
	m, err := parsePrincipalRules(`RULE:^CN=([^,]*),OU=ServiceUsers.*$/svc-$1/L, RULE:^CN=(.*?),O=(.*)$/$1@$2/U, DEFAULT`)
	if err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]string{
		"CN=Writer,OU=ServiceUsers,O=Acme": "svc-writer",
		"CN=alice,O=Acme":                  "ALICE@ACME",
		"CN=bob":                           "CN=bob",
	} {
		if got := m.name(dn); got != want {
			t.Errorf("name(%q) = %q, want %q", dn, got, want)
		}
	}
	if m, err := parsePrincipalRules(""); err != nil || m.name("CN=x,O=y") != "CN=x,O=y" {
		t.Errorf(`"" is not DEFAULT: %v`, err)
	}
	// As in Kafka, a / in the pattern or the replacement is escaped,
	// also inside a character class.
	if m, err := parsePrincipalRules(`RULE:^CN=([^\/]*)\/x$/$1\/y/`); err != nil || m.name("CN=a/x") != "a/y" {
		t.Errorf("escaped slashes: %v", err)
	}
	for _, bad := range []string{"RULE:^CN=(.*)$", "RULE:^CN=(.*)$/$1", "RULE:(/x/", "NOPE", "RULE:a/b/Q"} {
		if _, err := parsePrincipalRules(bad); err == nil {
			t.Errorf("rules %q accepted", bad)
		}
	}
}

// TestListenerSpecs: Kafka's listeners forms, and what is refused.
func TestListenerSpecs(t *testing.T) {
	c := defaultFileConfig()
	c.Listeners = "PLAINTEXT://127.0.0.1:9092, ssl://:9093,EXTERNAL://0.0.0.0:9094"
	c.ListenerSecurityProtocolMap = "EXTERNAL:SSL"
	c.AdvertisedListeners = "EXTERNAL://box.example:19094"
	specs, err := c.listenerSpecs()
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 || specs[1].Name != "SSL" || specs[1].Protocol != "SSL" || specs[1].Addr != ":9093" ||
		specs[2].Protocol != "SSL" || specs[2].Advertised != "box.example:19094" || specs[0].Advertised != "" {
		t.Fatalf("specs = %+v", specs)
	}
	c.listenOverride = "127.0.0.1:0"
	if specs, _ := c.listenerSpecs(); specs[0].Addr != "127.0.0.1:0" {
		t.Errorf("-listen did not replace the first listener: %+v", specs[0])
	}
	for _, tc := range []struct{ listeners, adv, pmap, want string }{
		{"PLAINTEXT://a:1,PLAINTEXT://b:2", "", "", "listed twice"},
		{"FOO://a:1", "", "", "no security protocol"},
		{"PLAINTEXT://nohostport", "", "", "missing port"},
		{"PLAINTEXT://a:1", "SSL://b:2", "", "not in listeners"},
		{"X://a:1", "", "X:TLS", "unknown security protocol"},
		{"", "SSL://b:2", "", "need listeners"},
	} {
		c := defaultFileConfig()
		c.Listeners, c.AdvertisedListeners, c.ListenerSecurityProtocolMap = tc.listeners, tc.adv, tc.pmap
		if _, err := c.listenerSpecs(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listeners %q advertised %q map %q: err %v, want %q", tc.listeners, tc.adv, tc.pmap, err, tc.want)
		}
	}
	// A pair with auto_failover and a TLS listener first checks the
	// peer's client address over TLS.
	c = defaultFileConfig()
	c.Listeners = "SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"
	c.Replication.Role, c.Replication.PeerID, c.Replication.AutoFailover = "primary", 2, true
	c.Replication.Listen, c.Replication.PeerClient, c.Replication.PeerLink = "127.0.0.1:0", "127.0.0.1:1", "127.0.0.1:2"
	c.TLS.CertFile, c.TLS.KeyFile = newTestCA(t).issue("broker", 2, pkix.Name{CommonName: "broker"}, true)
	if e, err := c.engineConfig(); err != nil || e.Replication.ClientTLS == nil {
		t.Errorf("auto_failover with SSL first: %v (TLS probe %v)", err, err == nil && e.Replication.ClientTLS != nil)
	}
	c.Listeners = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"
	if e, err := c.engineConfig(); err != nil || e.Replication.ClientTLS != nil {
		t.Errorf("auto_failover with PLAINTEXT first: %v (TLS probe %v)", err, err == nil && e.Replication.ClientTLS != nil)
	}
	// SSL without certificates is a config error, named.
	c = defaultFileConfig()
	c.Listeners = "SSL://127.0.0.1:0"
	if _, err := c.engineConfig(); err == nil || !strings.Contains(err.Error(), "cert_file and key_file") {
		t.Errorf("SSL without [tls]: %v", err)
	}
}

// The standby's TLS liveness check of its peer's client address accepts a
// server certificate of the CAs in ca_file, whatever host it names, and
// refuses one from another CA.
func TestProbeClientConfig(t *testing.T) {
	ours, theirs := newTestCA(t), newTestCA(t)
	serve := func(ca *testCA) string {
		cert, key := ca.issue("peer", 3, pkix.Name{CommonName: "some-other-host"}, true)
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_ = c.(*tls.Conn).Handshake()
				}()
			}
		}()
		return l.Addr().String()
	}
	var tc tlsConfig
	tc.CertFile, tc.KeyFile = ours.issue("me", 4, pkix.Name{CommonName: "me"}, true)
	tc.CAFile = ours.file
	src, err := newTLSSource(tc)
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(addr string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, src.probeClientConfig())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := handshake(serve(ours)); err != nil {
		t.Errorf("a peer certificate of our CA, another host name: %v", err)
	}
	if err := handshake(serve(theirs)); err == nil {
		t.Error("a peer certificate of another CA was accepted")
	}
}

// TestPeerAdvertisedListeners: a node of a pair tells the clients of each
// listener where its peer is on that listener (peer_advertised_listeners),
// and clients of a listener it does not name the peer's client address.
func TestPeerAdvertisedListeners(t *testing.T) {
	addr, ext, link := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, t.TempDir(),
		`listen = "127.0.0.1:9092"`, fmt.Sprintf(`listeners = "PLAINTEXT://%s,EXTERNAL://%s"`+"\n"+
			`listener_security_protocol_map = "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT"`+"\n"+
			`advertised_listeners = "EXTERNAL://self.example:19093"`, addr, ext),
		`role = ""`, `role = "primary"`,
		`listen = ""                     # this node's`, fmt.Sprintf(`listen = %q # this node's`, link),
		`peer_id = -1`, `peer_id = 2`,
		`peer_client = ""`, `peer_client = "peer.internal:9092"`,
		`peer_link = ""`, `peer_link = "127.0.0.1:1"`,
		`peer_advertised_listeners = ""`, `peer_advertised_listeners = "EXTERNAL://peer.example:19093"`,
	)
	b := &broker{t: t, addr: addr, dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	b.args = []string{"-data-dir", b.dataDir}
	b.fileOnly = true
	t.Cleanup(b.cleanup)
	b.start()
	waitListening(t, ext)
	brokers := func(at string) map[int32]string {
		resp := dialRaw(t, at).roundTrip(kmsg.NewPtrDescribeClusterRequest(), 0).(*kmsg.DescribeClusterResponse)
		out := map[int32]string{}
		for _, br := range resp.Brokers {
			out[br.NodeID] = net.JoinHostPort(br.Host, fmt.Sprint(br.Port))
		}
		return out
	}
	if got := brokers(addr); got[2] != "peer.internal:9092" || got[1] != addr {
		t.Errorf("PLAINTEXT listener: brokers %v, want the peer at peer_client", got)
	}
	if got := brokers(ext); got[2] != "peer.example:19093" || got[1] != "self.example:19093" {
		t.Errorf("EXTERNAL listener: brokers %v, want the peer at its EXTERNAL endpoint", got)
	}
}
