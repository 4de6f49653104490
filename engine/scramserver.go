package engine

// The server side of a SCRAM exchange (RFC 5802, RFC 7677), as Kafka's
// ScramSaslServer runs it. Written here rather than taken from xdg-go/scram
// because Kafka's clients need Kafka's leniency there: librdkafka up to
// 2.0 sends its own nonce again in front of the combined one in the
// client-final-message, which Kafka accepts (it checks that the nonce ends
// with the server-first-message's), and clients may add extensions after
// the nonce (tokenauth=true), which Kafka reads and xdg-go refuses.

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scramServer is one SCRAM exchange on a connection.
type scramServer struct {
	mech   string
	lookup func(user, mech string) (metaScram, bool)

	step        int // 0: awaiting client-first, 1: client-final, 2: done
	gs2Header   string
	user        string
	clientFirst string // client-first-message-bare
	serverFirst string
	nonce       string // client nonce + server nonce
	cred        metaScram
}

// errSCRAMFormat is a message that is not SCRAM.
var errSCRAMFormat = errors.New("malformed SCRAM message")

// next takes a client message and returns the reply; done is set with the
// server-final-message once the client proved it knows the password.
func (s *scramServer) next(msg string) (reply string, done bool, err error) {
	switch s.step {
	case 0:
		s.step = 1
		reply, err = s.first(msg)
		return reply, false, err
	case 1:
		s.step = 2
		reply, err = s.final(msg)
		return reply, err == nil, err
	}
	return "", false, errors.New("the SCRAM exchange is over")
}

// first handles client-first-message: gs2-header client-first-bare.
func (s *scramServer) first(msg string) (string, error) {
	// gs2-header = gs2-cbind-flag "," [ authzid ] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return "", errSCRAMFormat
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return "", errors.New("SCRAM channel binding is not supported")
	default:
		return "", errSCRAMFormat
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return "", errSCRAMFormat
	}
	s.gs2Header = flag + "," + authz + ","
	attrs, err := scramAttrs(bare)
	if err != nil {
		return "", err
	}
	if len(attrs) > 0 && attrs[0][0] == "m" {
		return "", errors.New("unsupported mandatory SCRAM extension")
	}
	if len(attrs) < 2 || attrs[0][0] != "n" || attrs[1][0] != "r" || attrs[1][1] == "" {
		return "", errSCRAMFormat
	}
	user, err := scramName(attrs[0][1])
	if err != nil {
		return "", err
	}
	if authz != "" {
		az, err := scramName(strings.TrimPrefix(authz, "a="))
		if err != nil || !strings.HasPrefix(authz, "a=") {
			return "", errSCRAMFormat
		}
		if az != user {
			return "", errAuthzID
		}
	}
	cred, ok := s.lookup(user, s.mech)
	if !ok {
		return "", errBadCredentials
	}
	var sn [24]byte
	if _, err := rand.Read(sn[:]); err != nil {
		return "", err
	}
	s.user, s.cred, s.clientFirst = user, cred, bare
	s.nonce = attrs[1][1] + base64.RawURLEncoding.EncodeToString(sn[:])
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	return s.serverFirst, nil
}

// final handles client-final-message: c=,r=[,ext],p=.
func (s *scramServer) final(msg string) (string, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", errSCRAMFormat
	}
	withoutProof, proofB64 := msg[:i], msg[i+len(",p="):]
	attrs, err := scramAttrs(withoutProof)
	if err != nil {
		return "", err
	}
	if len(attrs) < 2 || attrs[0][0] != "c" || attrs[1][0] != "r" {
		return "", errSCRAMFormat
	}
	// Kafka's ScramSaslServer does not check c=: franz-go sends "biws"
	// (n,,) even after an "n,a=user," header. Binding data (p=) was
	// refused in the first message.
	if cbind, err := base64.StdEncoding.DecodeString(attrs[0][1]); err != nil ||
		!strings.HasPrefix(string(cbind), "n,") && !strings.HasPrefix(string(cbind), "y,") {
		return "", errSCRAMFormat
	}
	// Kafka checks the suffix: librdkafka up to 2.0 sends its nonce again
	// in front of the combined one.
	if !strings.HasSuffix(attrs[1][1], s.nonce) {
		return "", errors.New("invalid client nonce in the final client message")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	h := scramHash(s.mech)
	if err != nil || len(proof) != h().Size() {
		return "", errSCRAMFormat
	}
	authMsg := s.clientFirst + "," + s.serverFirst + "," + withoutProof
	mac := func(key []byte) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(authMsg))
		return m.Sum(nil)
	}
	clientKey := mac(s.cred.StoredKey)
	for i := range clientKey {
		clientKey[i] ^= proof[i]
	}
	sum := h()
	sum.Write(clientKey)
	if !hmac.Equal(sum.Sum(nil), s.cred.StoredKey) {
		return "", errBadCredentials
	}
	return "v=" + base64.StdEncoding.EncodeToString(mac(s.cred.ServerKey)), nil
}

// scramAttrs splits "a=x,b=y" into pairs.
func scramAttrs(s string) ([][2]string, error) {
	var out [][2]string
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: attribute %q", errSCRAMFormat, f)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// scramName decodes a saslname: =2C is a comma, =3D an equals sign, and
// any other = is an error (RFC 5802).
func scramName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in the user name", errSCRAMFormat)
		}
		i += 2
	}
	return b.String(), nil
}
