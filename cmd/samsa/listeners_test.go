package main

import (
	"crypto/x509/pkix"
	"strings"
	"testing"
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
	// A pair with auto_failover cannot put a TLS listener first.
	c = defaultFileConfig()
	c.Listeners = "SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"
	c.Replication.Role, c.Replication.PeerID, c.Replication.AutoFailover = "primary", 2, true
	c.Replication.Listen, c.Replication.PeerClient, c.Replication.PeerLink = "127.0.0.1:0", "127.0.0.1:1", "127.0.0.1:2"
	c.TLS.CertFile, c.TLS.KeyFile = newTestCA(t).issue("broker", 2, pkix.Name{CommonName: "broker"}, true)
	if _, err := c.engineConfig(); err == nil || !strings.Contains(err.Error(), "auto_failover needs the first listener") {
		t.Errorf("auto_failover with SSL first: %v", err)
	}
	// SSL without certificates is a config error, named.
	c = defaultFileConfig()
	c.Listeners = "SSL://127.0.0.1:0"
	if _, err := c.engineConfig(); err == nil || !strings.Contains(err.Error(), "cert_file and key_file") {
		t.Errorf("SSL without [tls]: %v", err)
	}
}
