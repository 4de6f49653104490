package engine

import (
	"context"
	"strings"
	"testing"

	fscram "github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/xdg-go/scram"
)

// scramLookup serves one user, "user" with password "pencil", for both
// mechanisms.
func scramLookup(t testing.TB) func(user, mech string) (metaScram, bool) {
	creds := map[string]metaScram{}
	for _, mech := range []string{mechSCRAM256, mechSCRAM512} {
		m, err := newScram("user", mech, "pencil", 4096)
		if err != nil {
			t.Fatal(err)
		}
		creds[mech] = m
	}
	return func(user, mech string) (metaScram, bool) {
		m, ok := creds[mech]
		return m, ok && user == "user"
	}
}

// exchange runs xdg-go's client against scramServer; mangle may rewrite
// the client-final-message.
func exchange(t *testing.T, mech, user, pass string, mangle func(first, final string) string) (verified bool, err error) {
	t.Helper()
	gen := scram.SHA256
	if mech == mechSCRAM512 {
		gen = scram.SHA512
	}
	cl, err := gen.NewClient(user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	srv := &scramServer{mech: mech, lookup: scramLookup(t)}
	c1, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	s1, _, err := srv.next(c1)
	if err != nil {
		return false, err
	}
	c2, err := conv.Step(s1)
	if err != nil {
		t.Fatal(err)
	}
	if mangle != nil {
		c2 = mangle(c1, c2)
	}
	s2, done, err := srv.next(c2)
	if err != nil {
		return false, err
	}
	if !done {
		t.Fatal("the server did not finish after the client-final-message")
	}
	if _, err := conv.Step(s2); err != nil {
		return false, err // the client rejects the server's signature
	}
	return conv.Valid(), nil
}

// TestSCRAMServer: a real client authenticates with both mechanisms and
// verifies the server's signature; a wrong password, an unknown user and
// a tampered proof fail; librdkafka's doubled nonce is accepted as Kafka
// accepts it.
func TestSCRAMServer(t *testing.T) {
	for _, mech := range []string{mechSCRAM256, mechSCRAM512} {
		if ok, err := exchange(t, mech, "user", "pencil", nil); err != nil || !ok {
			t.Fatalf("%s: valid %v, err %v", mech, ok, err)
		}
		if _, err := exchange(t, mech, "user", "wrong", nil); err != errBadCredentials {
			t.Errorf("%s wrong password: %v", mech, err)
		}
		if _, err := exchange(t, mech, "nobody", "pencil", nil); err != errBadCredentials {
			t.Errorf("%s unknown user: %v", mech, err)
		}
		tamper := func(_, final string) string {
			i := strings.LastIndex(final, ",p=")
			return final[:i] + ",p=" + strings.Repeat("A", len(final)-i-3)
		}
		if _, err := exchange(t, mech, "user", "pencil", tamper); err == nil {
			t.Errorf("%s: a tampered proof was accepted", mech)
		}
	}
	// librdkafka <= 2.0: r= client nonce + combined nonce. Its proof is
	// over that message, so build it with the client's own primitives:
	// here the check is only that the nonce test is Kafka's suffix test.
	srv := &scramServer{mech: mechSCRAM256, lookup: scramLookup(t)}
	s1, _, err := srv.next("n,,n=user,r=abc")
	if err != nil {
		t.Fatal(err)
	}
	nonce := strings.TrimPrefix(strings.Split(s1, ",")[0], "r=")
	if _, _, err := srv.next("c=biws,r=abc" + nonce + ",p=" + strings.Repeat("A", 43) + "="); err != errBadCredentials {
		t.Errorf("doubled nonce: %v, want the proof checked (invalid credentials)", err)
	}
	srv = &scramServer{mech: mechSCRAM256, lookup: scramLookup(t)}
	srv.next("n,,n=user,r=abc")
	if _, _, err := srv.next("c=biws,r=abcOTHER,p=" + strings.Repeat("A", 44)); err == nil || err == errBadCredentials {
		t.Errorf("a foreign nonce: %v, want a nonce error", err)
	}
}

// TestSCRAMServerRefuses: malformed messages get errors, never a panic.
func TestSCRAMServerRefuses(t *testing.T) {
	for _, first := range []string{"", "n", "n,", "x,,n=user,r=a", "p=tls-unique,,n=user,r=a", "n,,r=a,n=user",
		"n,,n=user", "n,,n=user,r=", "n,,m=ext,n=user,r=a", "n,a=other,n=user,r=a", "n,,n=us=er,r=a", "n,,n=user,r=a,=x"} {
		srv := &scramServer{mech: mechSCRAM512, lookup: scramLookup(t)}
		if _, _, err := srv.next(first); err == nil {
			t.Errorf("client-first %q accepted", first)
		}
	}
	for _, final := range []string{"", "c=biws", "c=biws,r=x", "r=x,c=biws,p=AAAA", "c=eSws,r=NONCE,p=AAAA", "c=biws,r=NONCE,p=!!!", "c=biws,r=NONCE,p=AAAA"} {
		srv := &scramServer{mech: mechSCRAM512, lookup: scramLookup(t)}
		s1, _, err := srv.next("n,,n=user,r=abc")
		if err != nil {
			t.Fatal(err)
		}
		nonce := strings.TrimPrefix(strings.Split(s1, ",")[0], "r=")
		if _, done, err := srv.next(strings.ReplaceAll(final, "NONCE", nonce)); err == nil || done {
			t.Errorf("client-final %q accepted", final)
		}
		if _, _, err := srv.next("again"); err == nil {
			t.Error("a third message was accepted")
		}
	}
	// Escaped names: =2C and =3D.
	if n, err := scramName("a=2Cb=3Dc"); err != nil || n != "a,b=c" {
		t.Errorf("scramName: %q %v", n, err)
	}
}

// FuzzSCRAMServer: any pair of client messages ends in a reply or an
// error, never a panic, and never in success without the password.
func FuzzSCRAMServer(f *testing.F) {
	f.Add("n,,n=user,r=abc", "c=biws,r=abc,p=AAAA")
	f.Add("y,a=user,n=user,r=x,ext=1", "c=eSxhPXVzZXIs,r=x,e=1,p=")
	f.Add("n,,n=u=2Cser,r=abc", "c=biws,r=abcabc,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	lookup := scramLookup(f)
	f.Fuzz(func(t *testing.T, first, final string) {
		srv := &scramServer{mech: mechSCRAM256, lookup: lookup}
		if _, _, err := srv.next(first); err != nil {
			return
		}
		if _, done, err := srv.next(final); done || err == nil {
			t.Fatalf("authenticated without the password: %q %q", first, final)
		}
	})
}

// TestSCRAMServerFranzZid: franz-go with an authorization id sends
// "n,a=user," first and "c=biws" (n,,) in its final message; Kafka does
// not check c=, so the exchange succeeds, and a different authorization
// id gets Kafka's message.
func TestSCRAMServerFranzZid(t *testing.T) {
	run := func(zid string) error {
		t.Helper()
		sess, msg, err := fscram.Auth{User: "user", Pass: "pencil", Zid: zid}.AsSha256Mechanism().Authenticate(context.Background(), "h:1")
		if err != nil {
			t.Fatal(err)
		}
		srv := &scramServer{mech: mechSCRAM256, lookup: scramLookup(t)}
		for range 3 {
			reply, done, err := srv.next(string(msg))
			if err != nil {
				return err
			}
			cdone, next, err := sess.Challenge([]byte(reply))
			if err != nil {
				t.Fatalf("the client refused the server: %v", err)
			}
			if done != cdone {
				t.Fatalf("server done %v, client done %v", done, cdone)
			}
			if done {
				return nil
			}
			msg = next
		}
		t.Fatal("the exchange did not end")
		return nil
	}
	if err := run("user"); err != nil {
		t.Fatalf("Zid = the user: %v", err)
	}
	if err := run("other"); err != errAuthzID {
		t.Fatalf("Zid = another user: %v, want %v", err, errAuthzID)
	}
}
