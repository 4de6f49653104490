package engine

// SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners: PLAIN
// and SCRAM-SHA-256/512, KIP-152's SaslAuthenticate framing (and the bare
// tokens after SaslHandshake v0, which kafka-python 2.0 still sends), and
// KIP-368 re-authentication. Until a connection has authenticated it may
// send only ApiVersions, SaslHandshake and SaslAuthenticate; anything else
// closes it, as Kafka's SaslServerAuthenticator does.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

// SASLConfig is what the SASL listeners accept.
type SASLConfig struct {
	// Mechanisms enabled (sasl.enabled.mechanisms): PLAIN, SCRAM-SHA-256,
	// SCRAM-SHA-512. Empty: the two SCRAM ones.
	Mechanisms []string
	// MaxReauth is connections.max.reauth.ms: a session lasts this long,
	// then the client must authenticate again (KIP-368) or is closed. 0:
	// sessions do not expire.
	MaxReauth time.Duration
}

// mechanisms is the enabled list, defaulted.
func (c SASLConfig) mechanisms() []string {
	if len(c.Mechanisms) == 0 {
		return []string{mechSCRAM256, mechSCRAM512}
	}
	return c.Mechanisms
}

// Validate reports the first thing wrong.
func (c SASLConfig) Validate() error {
	for _, m := range c.Mechanisms {
		switch m {
		case mechPLAIN, mechSCRAM256, mechSCRAM512:
		default:
			return fmt.Errorf("sasl: unknown mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", m)
		}
	}
	if c.MaxReauth < 0 {
		return errors.New("sasl: connections_max_reauth_ms must not be negative")
	}
	return nil
}

// saslState is a connection's authentication (connState.sasl); only its
// worker goroutine touches it.
type saslState struct {
	mech      string // from the last SaslHandshake; "" before
	bare      bool   // SaslHandshake v0: the tokens come bare
	conv      *scramServer
	authed    bool
	reauth    bool      // a re-authentication's SaslHandshake came (KIP-368)
	principal string    // once authenticated
	expires   time.Time // the session's end (KIP-368); zero: never
}

func saslOf(c *netio.Conn) *saslState { return &stateOf(c).sasl }

// isSASL reports whether a listener's protocol authenticates with SASL.
func isSASL(protocol string) bool {
	return protocol == "SASL_PLAINTEXT" || protocol == "SASL_SSL"
}

// protocolOf is the security protocol of the named listener.
func (b *Broker) protocolOf(listener string) string {
	if cur := b.lst.Load(); cur != nil {
		for _, l := range *cur {
			if l.name == listener {
				return l.protocol
			}
		}
	}
	return b.firstListener().protocol
}

// saslGate lets a request through, or handles it (a bare SASL token) or
// closes the connection (anything but the SASL APIs and ApiVersions
// before authentication, or after the session expired). It reports
// whether Serve should go on.
func (b *Broker) saslGate(req *netio.Request) bool {
	if !isSASL(b.protocolOf(req.Conn.Listener())) {
		return true
	}
	st := saslOf(req.Conn)
	if req.Raw {
		b.saslBareToken(req, st)
		return false
	}
	if st.authed && (st.expires.IsZero() || time.Now().Before(st.expires)) {
		return true
	}
	switch k := req.APIKey; {
	case !st.authed && (k == kmsg.ApiVersions.Int16() || k == kmsg.SASLHandshake.Int16() || k == kmsg.SASLAuthenticate.Int16()):
		return true
	case st.authed && (k == kmsg.SASLHandshake.Int16() || k == kmsg.SASLAuthenticate.Int16() && st.reauth):
		// Past its session, a connection may only re-authenticate, as
		// Kafka's SocketServer allows.
		return true
	}
	why := "request before SASL authentication"
	if st.authed {
		why = "SASL session expired (connections_max_reauth_ms) without re-authentication"
	}
	b.logWarnLimited(&b.authLog, why+"; closing connection", "remote", req.Conn.RemoteAddr(), "client", clip(req.ClientID), "api", kmsg.NameForKey(req.APIKey))
	req.Done()
	req.Conn.Close(why)
	return false
}

// saslStep feeds one client token to the connection's mechanism. done
// reports a successful end; err a failed one, with a message for the
// client.
func (b *Broker) saslStep(st *saslState, token []byte) (reply []byte, done bool, err error) {
	switch st.mech {
	case mechPLAIN:
		// [authzid] NUL authcid NUL passwd (RFC 4616).
		// Kafka's PlainSaslServer, in its order and words.
		parts := strings.Split(string(token), "\x00")
		switch {
		case len(parts) != 3:
			return nil, false, errBadCredentials // a SaslException there: the generic text
		case parts[1] == "":
			return nil, false, saslMessage("Authentication failed: username not specified")
		case parts[2] == "":
			return nil, false, saslMessage("Authentication failed: password not specified")
		case !b.checkPassword(parts[1], parts[2]):
			return nil, false, saslMessage("Authentication failed: Invalid username or password")
		case parts[0] != "" && parts[0] != parts[1]:
			return nil, false, errAuthzID
		}
		return []byte{}, true, b.saslDone(st, parts[1])
	case mechSCRAM256, mechSCRAM512:
		if st.conv == nil {
			st.conv = &scramServer{mech: st.mech, lookup: b.scramCredential}
		}
		out, fin, err := st.conv.next(string(token))
		if err != nil {
			st.conv = nil
			return nil, false, err
		}
		if !fin {
			return []byte(out), false, nil
		}
		user := st.conv.user
		st.conv = nil
		return []byte(out), true, b.saslDone(st, user)
	}
	return nil, false, errors.New("no SASL mechanism chosen: SaslHandshake first")
}

// errBadCredentials is any failure Kafka reports with its generic text
// (a SaslException in its SASL servers).
var errBadCredentials = errors.New("invalid credentials")

// saslMessage is a failure whose text the client sees as it is (a
// SaslAuthenticationException in Kafka).
type saslMessage string

func (m saslMessage) Error() string { return string(m) }

// errAuthzID is Kafka's answer (PLAIN and SCRAM) to an authorization id
// other than the user name.
const errAuthzID = saslMessage("Authentication failed: Client requested an authorization id that is different from username")

// saslDone marks the connection authenticated as user (or fails a
// re-authentication that changes the principal, as Kafka does).
func (b *Broker) saslDone(st *saslState, user string) error {
	p := "User:" + user
	if st.authed && st.principal != p {
		// Kafka's ensurePrincipalUnchanged, word for word.
		return saslMessage(fmt.Sprintf("Cannot change principals during re-authentication from %s: %s",
			strings.Replace(st.principal, ":", ".", 1), strings.Replace(p, ":", ".", 1)))
	}
	st.authed, st.principal = true, p
	st.expires = time.Time{}
	if d := b.cfg.SASL.MaxReauth; d > 0 {
		st.expires = time.Now().Add(d)
	}
	return nil
}

// saslFailMessage is what the client is told, in Kafka's words: a
// saslMessage as it is, anything else the generic text
// (SaslServerAuthenticator.handleSaslToken), which says
// "re-authentication" on a connection already authenticated.
func saslFailMessage(mech string, reauth bool, err error) string {
	var m saslMessage
	if errors.As(err, &m) {
		return string(m)
	}
	what := "authentication"
	if reauth {
		what = "re-authentication"
	}
	return "Authentication failed during " + what + " due to invalid credentials with SASL mechanism " + mech
}

// saslBareToken answers a token sent bare after SaslHandshake v0: the
// reply goes back bare too; a failure closes the connection (there is no
// way to say why).
func (b *Broker) saslBareToken(req *netio.Request, st *saslState) {
	reply, done, err := b.saslStep(st, req.Body)
	if err != nil {
		b.authFailures.Add(1)
		b.logWarnLimited(&b.authLog, "SASL authentication failed; closing connection", "remote", req.Conn.RemoteAddr(), "mechanism", st.mech, "err", err)
		req.Done()
		req.Conn.Close("SASL authentication failed")
		return
	}
	if done {
		b.authenticated(req.Conn, st)
	} else {
		req.Conn.ExpectRawFrame()
	}
	req.Respond(&netio.Response{Raw: true, Parts: []netio.Part{{B: reply}}})
}

// authenticated records the principal on the connection.
func (b *Broker) authenticated(c *netio.Conn, st *saslState) {
	c.SetPrincipal(st.principal)
	c.SetAuthenticated()
	b.logger.Debug("SASL authenticated", "remote", c.RemoteAddr(), "principal", st.principal, "mechanism", st.mech)
}

// handleSASLHandshake chooses the mechanism (key 17).
func (b *Broker) handleSASLHandshake(req *netio.Request, r *kmsg.SASLHandshakeRequest) {
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SupportedMechanisms = b.cfg.SASL.mechanisms()
	if !isSASL(b.protocolOf(req.Conn.Listener())) {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		respond(req, resp)
		return
	}
	st := saslOf(req.Conn)
	if !slices.Contains(resp.SupportedMechanisms, r.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		respond(req, resp)
		req.Conn.Close("unsupported SASL mechanism " + clip(r.Mechanism))
		return
	}
	if st.authed && b.cfg.SASL.MaxReauth <= 0 {
		// Kafka re-authenticates only sessions that expire; the
		// connection stays open.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		respond(req, resp)
		return
	}
	if st.authed && (r.Version == 0 || r.Mechanism != st.mech) {
		// KIP-368: re-authentication uses SaslAuthenticate and the
		// session's mechanism.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		respond(req, resp)
		req.Conn.Close("re-authentication must use SaslHandshake v1 and the same mechanism")
		return
	}
	st.mech, st.conv, st.bare = r.Mechanism, nil, r.Version == 0
	st.reauth = st.authed
	if st.bare {
		req.Conn.ExpectRawFrame()
	}
	respond(req, resp)
}

// handleSASLAuthenticate runs a step of the mechanism (key 36).
func (b *Broker) handleSASLAuthenticate(req *netio.Request, r *kmsg.SASLAuthenticateRequest) {
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	st := saslOf(req.Conn)
	if !isSASL(b.protocolOf(req.Conn.Listener())) || st.mech == "" || st.bare {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake v1 on a SASL listener"
		resp.ErrorMessage = &msg
		respond(req, resp)
		req.Conn.Close(msg)
		return
	}
	if st.authed && !st.reauth {
		// As KafkaApis.handleSaslAuthenticateRequest: the connection
		// stays open.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate request received after successful authentication"
		resp.ErrorMessage = &msg
		respond(req, resp)
		return
	}
	reauth := st.authed
	reply, done, err := b.saslStep(st, r.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := saslFailMessage(st.mech, reauth, err)
		resp.ErrorMessage = &msg
		b.authFailures.Add(1)
		b.logWarnLimited(&b.authLog, "SASL authentication failed; closing connection", "remote", req.Conn.RemoteAddr(), "mechanism", st.mech, "err", err)
		respond(req, resp)
		req.Conn.Close("SASL authentication failed")
		return
	}
	resp.SASLAuthBytes = reply
	if done {
		st.reauth = false
		b.authenticated(req.Conn, st)
		if !st.expires.IsZero() {
			// connections.max.reauth.ms itself, as Kafka (no token
			// lifetime shortens it here).
			resp.SessionLifetimeMillis = b.cfg.SASL.MaxReauth.Milliseconds()
		}
	}
	respond(req, resp)
}
