package main

// Listeners as Kafka names them (listeners, advertised.listeners,
// listener.security.protocol.map) and the TLS of SSL listeners: PEM
// certificates reloaded on SIGHUP, ssl.client.auth, and the principal a
// client certificate maps to (ssl.principal.mapping.rules).

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"samsa/netio"
)

// tlsConfig is config.toml's [tls]: the certificates of every SSL
// listener.
type tlsConfig struct {
	CertFile              string `toml:"cert_file"`
	KeyFile               string `toml:"key_file"`
	CAFile                string `toml:"ca_file"`
	ClientAuth            string `toml:"client_auth"`
	PrincipalMappingRules string `toml:"principal_mapping_rules"`
	HandshakeTimeoutMs    int64  `toml:"handshake_timeout_ms"`
	MinVersion            string `toml:"min_version"`
}

// Security protocols, as Kafka names them.
const (
	protoPlaintext     = "PLAINTEXT"
	protoSSL           = "SSL"
	protoSASLPlaintext = "SASL_PLAINTEXT"
	protoSASLSSL       = "SASL_SSL"
)

// listenerSpec is one listener: its name, security protocol, address and
// the address Metadata gives its clients ("" = the bound one).
type listenerSpec struct {
	Name, Protocol, Addr, Advertised string
}

// listenerSpecs are the listeners to open: `listeners` when set (the
// first one's address replaced by -listen, if given), otherwise one
// PLAINTEXT listener on `listen`, advertised as `advertised`.
func (c *fileConfig) listenerSpecs() ([]listenerSpec, error) {
	if strings.TrimSpace(c.Listeners) == "" {
		if c.AdvertisedListeners != "" || c.ListenerSecurityProtocolMap != "" {
			return nil, errors.New("advertised_listeners and listener_security_protocol_map need listeners")
		}
		return []listenerSpec{{Name: protoPlaintext, Protocol: protoPlaintext, Addr: c.Listen, Advertised: c.Advertised}}, nil
	}
	protocols := map[string]string{}
	for _, p := range []string{protoPlaintext, protoSSL, protoSASLPlaintext, protoSASLSSL} {
		protocols[p] = p
	}
	if c.ListenerSecurityProtocolMap != "" {
		for _, kv := range strings.Split(c.ListenerSecurityProtocolMap, ",") {
			name, proto, ok := strings.Cut(strings.TrimSpace(kv), ":")
			if !ok || name == "" {
				return nil, fmt.Errorf("listener_security_protocol_map: %q is not NAME:PROTOCOL", kv)
			}
			protocols[strings.ToUpper(name)] = strings.ToUpper(proto)
		}
	}
	specs, err := parseListenerList("listeners", c.Listeners)
	if err != nil {
		return nil, err
	}
	advertised, err := parseListenerList("advertised_listeners", c.AdvertisedListeners)
	if err != nil {
		return nil, err
	}
	if c.listenOverride != "" {
		specs[0].Addr = c.listenOverride
	}
	seen := map[string]bool{}
	for i := range specs {
		l := &specs[i]
		if seen[l.Name] {
			return nil, fmt.Errorf("listeners: %s is listed twice", l.Name)
		}
		seen[l.Name] = true
		l.Protocol = protocols[l.Name]
		switch l.Protocol {
		case protoPlaintext, protoSSL, protoSASLPlaintext, protoSASLSSL:
		case "":
			return nil, fmt.Errorf("listeners: %s has no security protocol: name it PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, or map it in listener_security_protocol_map", l.Name)
		default:
			return nil, fmt.Errorf("listeners: %s maps to unknown security protocol %q", l.Name, l.Protocol)
		}
	}
	for _, a := range advertised {
		found := false
		for i := range specs {
			if specs[i].Name == a.Name {
				specs[i].Advertised, found = a.Addr, true
			}
		}
		if !found {
			return nil, fmt.Errorf("advertised_listeners: %s is not in listeners", a.Name)
		}
	}
	return specs, nil
}

// peerAdvertised parses replication.peer_advertised_listeners: the
// peer's endpoint per listener of this node, by name.
func peerAdvertised(s string, specs []listenerSpec) (map[string]string, error) {
	list, err := parseListenerList("replication.peer_advertised_listeners", s)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	out := make(map[string]string, len(list))
	for _, a := range list {
		if !slices.ContainsFunc(specs, func(l listenerSpec) bool { return l.Name == a.Name }) {
			return nil, fmt.Errorf("replication.peer_advertised_listeners: %s is not in listeners", a.Name)
		}
		if host, _, _ := net.SplitHostPort(a.Addr); host == "" {
			return nil, fmt.Errorf("replication.peer_advertised_listeners: %s needs a host clients can reach, not %q", a.Name, a.Addr)
		}
		out[a.Name] = a.Addr
	}
	return out, nil
}

// parseListenerList parses Kafka's NAME://host:port,... (an empty host
// binds every address, as in Kafka).
func parseListenerList(key, s string) ([]listenerSpec, error) {
	var out []listenerSpec
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s: %q is not NAME://host:port", key, item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", key, item, err)
		}
		out = append(out, listenerSpec{Name: strings.ToUpper(name), Addr: addr})
	}
	if len(out) == 0 && key == "listeners" {
		return nil, errors.New("listeners: none listed")
	}
	return out, nil
}

// usesTLS reports whether any listener needs [tls].
func usesTLS(specs []listenerSpec) bool {
	for _, l := range specs {
		if l.Protocol == protoSSL || l.Protocol == protoSASLSSL {
			return true
		}
	}
	return false
}

// tlsSource holds the TLS config of the SSL listeners; reload swaps in
// the certificates on disk for the next handshakes.
type tlsSource struct {
	conf      tlsConfig
	cfg       atomic.Pointer[tls.Config]
	principal *principalMapper
}

// newTLSSource checks [tls] and loads its files.
func newTLSSource(c tlsConfig) (*tlsSource, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("tls: an SSL listener needs cert_file and key_file")
	}
	pm, err := parsePrincipalRules(c.PrincipalMappingRules)
	if err != nil {
		return nil, fmt.Errorf("tls.principal_mapping_rules: %w", err)
	}
	t := &tlsSource{conf: c, principal: pm}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// loadTLS is c's [tls], read from its files the first time.
func (c *fileConfig) loadTLS() (*tlsSource, error) {
	if c.tls == nil && c.tlsErr == nil {
		c.tls, c.tlsErr = newTLSSource(c.TLS)
	}
	return c.tls, c.tlsErr
}

// reload reads the certificate, key and CA files again; on an error the
// running config stays.
func (t *tlsSource) reload() error {
	c := t.conf
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: cannot load cert_file %s and key_file %s: %w", c.CertFile, c.KeyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// Full-size records from the first byte: fetches are bulk.
		DynamicRecordSizingDisabled: true,
	}
	switch c.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return fmt.Errorf("tls.min_version %q: 1.2 or 1.3", c.MinVersion)
	}
	switch c.ClientAuth {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return fmt.Errorf("tls.client_auth %q: none, requested or required", c.ClientAuth)
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return fmt.Errorf("tls: cannot read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: ca_file %s holds no PEM certificate", c.CAFile)
		}
		cfg.ClientCAs = pool
	} else if cfg.ClientAuth != tls.NoClientCert {
		return errors.New("tls: client_auth requested or required needs ca_file (the CAs that sign client certificates)")
	}
	t.cfg.Store(cfg)
	return nil
}

// options are netio's TLS options for a listener.
func (t *tlsSource) options() *netio.TLSOptions {
	return &netio.TLSOptions{
		Config:           t.cfg.Load,
		HandshakeTimeout: time.Duration(t.conf.HandshakeTimeoutMs) * time.Millisecond,
		Principal: func(cs tls.ConnectionState) string {
			if len(cs.PeerCertificates) == 0 {
				return ""
			}
			return "User:" + t.principal.name(cs.PeerCertificates[0].Subject.String())
		},
	}
}

// principalMapper is Kafka's ssl.principal.mapping.rules: a list of
// RULE:pattern/replacement/[LU] and DEFAULT, tried in order on the
// certificate subject's distinguished name (RFC 2253 form, CN first); the
// first rule whose pattern matches the whole name gives the principal
// name, DEFAULT the name itself. None matching: the name itself.
type principalMapper struct{ rules []principalRule }

type principalRule struct {
	def     bool
	re      *regexp.Regexp
	replace string
	lower   bool
	upper   bool
}

func (m *principalMapper) name(dn string) string {
	for _, r := range m.rules {
		if r.def {
			return dn
		}
		if !r.re.MatchString(dn) {
			continue
		}
		out := r.re.ReplaceAllString(dn, r.replace)
		switch {
		case r.lower:
			out = strings.ToLower(out)
		case r.upper:
			out = strings.ToUpper(out)
		}
		return out
	}
	return dn
}

// parsePrincipalRules parses the rules ("" is DEFAULT).
func parsePrincipalRules(s string) (*principalMapper, error) {
	m := &principalMapper{}
	rest := strings.TrimSpace(s)
	for rest != "" {
		rest = strings.TrimLeft(rest, ", \t\n")
		switch {
		case rest == "":
		case strings.HasPrefix(rest, "DEFAULT"):
			m.rules = append(m.rules, principalRule{def: true})
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			rest = rest[len("RULE:"):]
			pat, after, ok := cutUnescaped(rest)
			if !ok {
				return nil, fmt.Errorf("rule %q: no / after the pattern", "RULE:"+rest)
			}
			repl, after2, ok := cutUnescaped(after)
			if !ok {
				return nil, fmt.Errorf("rule %q: no / after the replacement", "RULE:"+rest)
			}
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				return nil, fmt.Errorf("rule pattern %q: %w", pat, err)
			}
			r := principalRule{re: re, replace: strings.ReplaceAll(repl, `\/`, "/")}
			if after2 != "" && (after2[0] == 'L' || after2[0] == 'U') {
				r.lower, r.upper = after2[0] == 'L', after2[0] == 'U'
				after2 = after2[1:]
			}
			if after2 = strings.TrimLeft(after2, " \t\n"); after2 != "" && after2[0] != ',' {
				return nil, fmt.Errorf("rule %q: unexpected %q after it", "RULE:"+rest, after2)
			}
			m.rules = append(m.rules, r)
			rest = after2
		default:
			return nil, fmt.Errorf("%q: each rule is RULE:pattern/replacement/[LU] or DEFAULT", rest)
		}
	}
	if len(m.rules) == 0 {
		m.rules = []principalRule{{def: true}}
	}
	return m, nil
}

// cutUnescaped splits s at its first / not escaped by a backslash.
func cutUnescaped(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '/':
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// logListener logs a listener once it is bound.
func logListener(logger *slog.Logger, l listenerSpec, bound string) {
	logger.Info("listener", "name", l.Name, "protocol", l.Protocol, "addr", bound, "advertised", l.Advertised)
}

// listenerOptions names the first listener in first (and makes it TLS if
// it is SSL) and returns the options of the others, based on base, and the
// TLS source if any listener needs one.
func (c *fileConfig) listenerOptions(base netio.Options, first *netio.Options) ([]extraListener, *tlsSource, error) {
	specs, err := c.listenerSpecs()
	if err != nil {
		return nil, nil, fmt.Errorf("invalid config: %w", err)
	}
	var src *tlsSource
	if usesTLS(specs) {
		if src, err = c.loadTLS(); err != nil {
			return nil, nil, fmt.Errorf("invalid config: %w", err)
		}
	}
	tlsFor := func(l listenerSpec) *netio.TLSOptions {
		if l.Protocol == protoSSL || l.Protocol == protoSASLSSL {
			return src.options()
		}
		return nil
	}
	isSASL := func(l listenerSpec) bool { return l.Protocol == protoSASLPlaintext || l.Protocol == protoSASLSSL }
	first.Listener, first.TLS, first.RequireAuth = specs[0].Name, tlsFor(specs[0]), isSASL(specs[0])
	var extra []extraListener
	for _, l := range specs[1:] {
		o := base
		o.Addr, o.Listener, o.TLS, o.RequireAuth = l.Addr, l.Name, tlsFor(l), isSASL(l)
		o.ReusePort = false
		extra = append(extra, extraListener{spec: l, opts: o})
	}
	return extra, src, nil
}

// linkClientConfig is this node's side of the mutually authenticated
// replication link: its certificate, and the CAs (ca_file) that sign the
// peer's.
func (t *tlsSource) linkClientConfig() (*tls.Config, error) {
	cur := t.cfg.Load()
	if cur.ClientCAs == nil {
		return nil, errors.New("link_tls needs tls.ca_file: the CAs that sign the peer's certificate")
	}
	return &tls.Config{Certificates: cur.Certificates, RootCAs: cur.ClientCAs, MinVersion: cur.MinVersion}, nil
}

// probeClientConfig is how a standby speaks TLS to its primary's client
// address when it checks that the primary still answers (auto_failover):
// this node's certificate, for a listener that requires one, and, with
// ca_file, a server certificate signed by those CAs (the host name is not
// checked: peer_client is often an address the certificate does not
// name, and the check is of life, not of identity). Without ca_file any
// certificate does.
func (t *tlsSource) probeClientConfig() *tls.Config {
	cur := t.cfg.Load()
	cfg := &tls.Config{Certificates: cur.Certificates, MinVersion: cur.MinVersion, InsecureSkipVerify: true}
	if roots := cur.ClientCAs; roots != nil {
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, 0, len(raw))
			for _, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs = append(certs, c)
			}
			if len(certs) == 0 {
				return errors.New("the peer sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg
}

// linkServerOptions are the replication listener's TLS options: a client
// certificate is required, and with peer set its principal must be peer.
func (t *tlsSource) linkServerOptions(peer string, logger *slog.Logger) *netio.TLSOptions {
	o := t.options()
	principal := o.Principal
	o.Config = func() *tls.Config {
		cfg := t.cfg.Load().Clone()
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if peer == "" {
				return nil
			}
			if got := principal(cs); got != peer {
				logger.Warn("refusing a replication link connection: not the peer", "principal", got, "peer_principal", peer)
				return fmt.Errorf("principal %s is not the peer %s", got, peer)
			}
			return nil
		}
		return cfg
	}
	return o
}
