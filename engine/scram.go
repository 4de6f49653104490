package engine

// SCRAM credentials (RFC 5802, RFC 7677): per user and mechanism a salt,
// an iteration count, StoredKey and ServerKey, never the password. They
// are records of the metadata log (recScram, recDeleteScram), so they are
// fsynced, replicated to the standby and replayed at start like topics;
// the SASL authenticator reads a copy-on-write snapshot (Broker.scram).

import (
	"cmp"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"maps"
	"regexp"
	"strconv"
	"strings"
)

// SCRAM mechanisms as Kafka names and numbers them (ScramMechanism).
const (
	mechSCRAM256 = "SCRAM-SHA-256"
	mechSCRAM512 = "SCRAM-SHA-512"
	mechPLAIN    = "PLAIN"
)

// Kafka's bounds on a credential's iteration count
// (ScramMechanism.minIterations, and the 16384 AlterUserScramCredentials
// allows at most).
const (
	minScramIterations = 4096
	maxScramIterations = 16384
)

// scramMechNum is the mechanism's number in the Describe/Alter
// UserScramCredentials APIs (0: unknown).
func scramMechNum(mech string) int8 {
	switch mech {
	case mechSCRAM256:
		return 1
	case mechSCRAM512:
		return 2
	}
	return 0
}

func scramMechName(n int8) string {
	switch n {
	case 1:
		return mechSCRAM256
	case 2:
		return mechSCRAM512
	}
	return ""
}

// scramHash is the mechanism's hash.
func scramHash(mech string) func() hash.Hash {
	if mech == mechSCRAM512 {
		return sha512.New
	}
	return sha256.New
}

// metaScram is a user's credential for one mechanism (recScram), or with
// only User and Mechanism, its removal (recDeleteScram).
type metaScram struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations,omitempty"`
	Salt       []byte `json:"salt,omitempty"`
	StoredKey  []byte `json:"stored_key,omitempty"`
	ServerKey  []byte `json:"server_key,omitempty"`
}

// scramCreds is every credential by user, then mechanism.
type scramCreds map[string]map[string]metaScram

// applyScram applies a credential record to a snapshot map (copied on
// write by the caller).
func (c scramCreds) apply(m metaScram, del bool) {
	if del {
		delete(c[m.User], m.Mechanism)
		if len(c[m.User]) == 0 {
			delete(c, m.User)
		}
		return
	}
	if c[m.User] == nil {
		c[m.User] = map[string]metaScram{}
	}
	c[m.User][m.Mechanism] = m
}

// clone copies the map two levels deep.
func (c scramCreds) clone() scramCreds {
	out := make(scramCreds, len(c))
	for u, ms := range c {
		out[u] = maps.Clone(ms)
	}
	return out
}

// scramCredential returns a user's credential for a mechanism.
func (b *Broker) scramCredential(user, mech string) (metaScram, bool) {
	c := b.scram.Load()
	if c == nil {
		return metaScram{}, false
	}
	m, ok := (*c)[user][mech]
	return m, ok
}

// scramFromSalted derives a credential from the salted password
// (Hi(password, salt, i), what AlterUserScramCredentials carries).
func scramFromSalted(user, mech string, iterations int, salt, salted []byte) metaScram {
	h := scramHash(mech)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	sum := h()
	sum.Write(clientKey)
	return metaScram{
		User: user, Mechanism: mech, Iterations: iterations, Salt: salt,
		StoredKey: sum.Sum(nil), ServerKey: mac(salted, "Server Key"),
	}
}

// saltedPassword is Hi(password, salt, i) of RFC 5802.
func saltedPassword(mech, password string, salt []byte, iterations int) []byte {
	h := scramHash(mech)
	k, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		panic("BUG: pbkdf2 refused its parameters: " + err.Error())
	}
	return k
}

// newScram makes a credential for a password with a fresh salt.
func newScram(user, mech, password string, iterations int) (metaScram, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return metaScram{}, err
	}
	return scramFromSalted(user, mech, iterations, salt, saltedPassword(mech, password, salt, iterations)), nil
}

// checkPassword reports whether password is the user's, by any of its
// SCRAM credentials (PLAIN checks against them: no clear passwords are
// stored).
func (b *Broker) checkPassword(user, password string) bool {
	for _, mech := range []string{mechSCRAM512, mechSCRAM256} {
		m, ok := b.scramCredential(user, mech)
		if !ok {
			continue
		}
		c := scramFromSalted(user, mech, m.Iterations, m.Salt, saltedPassword(mech, password, m.Salt, m.Iterations))
		return hmac.Equal(c.StoredKey, m.StoredKey)
	}
	return false
}

// ScramUser is a credential to create at start (the first admin user on
// a fresh box: samsa -add-scram).
type ScramUser struct {
	Mechanism, Name, Password string
	Iterations                int // 0: 4096
}

// scramSpec is Kafka's kafka-storage --add-scram form:
// MECHANISM=[name=NAME,password=PASSWORD(,iterations=N)].
var scramSpec = regexp.MustCompile(`^(SCRAM-SHA-256|SCRAM-SHA-512)=\[(.*)\]$`)

// ParseScramUser parses MECHANISM=[name=NAME,password=PASSWORD,iterations=N]
// (iterations optional; the password may not contain a comma).
func ParseScramUser(s string) (ScramUser, error) {
	m := scramSpec.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return ScramUser{}, fmt.Errorf("%q is not SCRAM-SHA-256=[name=NAME,password=PASSWORD] (or SCRAM-SHA-512)", s)
	}
	u := ScramUser{Mechanism: m[1], Iterations: minScramIterations}
	for _, kv := range strings.Split(m[2], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return ScramUser{}, fmt.Errorf("%q: %q is not key=value", s, kv)
		}
		switch k {
		case "name":
			u.Name = v
		case "password":
			u.Password = v
		case "iterations":
			n, err := strconv.Atoi(v)
			if err != nil || n < minScramIterations || n > maxScramIterations {
				return ScramUser{}, fmt.Errorf("%q: iterations must be %d to %d", s, minScramIterations, maxScramIterations)
			}
			u.Iterations = n
		default:
			return ScramUser{}, fmt.Errorf("%q: unknown key %q (name, password, iterations)", s, k)
		}
	}
	if u.Name == "" || u.Password == "" {
		return ScramUser{}, fmt.Errorf("%q: needs name and password", s)
	}
	return u, nil
}

// addScramUsers writes the credentials of cfg.ScramUsers (at start, on a
// primary or a standalone node).
func (b *Broker) addScramUsers() error {
	if len(b.cfg.ScramUsers) == 0 {
		return nil
	}
	if b.pair.IsStandby() {
		return errors.New("cannot add SCRAM users on the standby: add them on the primary")
	}
	unlock := b.lockMeta()
	defer unlock()
	for _, u := range b.cfg.ScramUsers {
		m, err := newScram(u.Name, u.Mechanism, u.Password, cmp.Or(u.Iterations, minScramIterations))
		if err != nil {
			return err
		}
		if err := b.commitMeta(recScram, m); err != nil {
			return err
		}
		b.logger.Info("SCRAM credential written", "user", u.Name, "mechanism", u.Mechanism, "iterations", m.Iterations)
	}
	return nil
}
