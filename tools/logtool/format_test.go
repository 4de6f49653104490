package logtool

import "testing"

func TestAppendText(t *testing.T) {
	f := func(in string, limit int, want string) {
		t.Helper()
		if got := string(appendText(nil, []byte(in), limit)); got != want {
			t.Fatalf("appendText(%q, %d) = %q, want %q", in, limit, got, want)
		}
	}
	f("hello", 0, "hello")
	f("héllo wörld", 0, "héllo wörld")
	f("a\\b", 0, `a\\b`)
	f("\x1b[31mred", 0, `\x1b[31mred`)
	f("bidi\u202etxt", 0, `bidi\xe2\x80\xaetxt`)
	f("\xff\xfe", 0, `\xff\xfe`)
	f("hello", 3, "hel...(+2 bytes)")
	f("héllo", 2, "h...(+5 bytes)") // not inside the é
	f("\xff\xff\xff\xff\xff", 2, `\xff\xff...(+3 bytes)`)
}

func TestSafe(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := safe(in); got != want {
			t.Fatalf("safe(%q) = %q, want %q", in, got, want)
		}
	}
	f(`/data/t-0/x\y.log`, `/data/t-0/x\y.log`)
	f("/data/\x1b]0;pwned\x07.log", `/data/\x1b]0;pwned\x07.log`)
	p := Problem{Path: "/d/a\nb", Offset: 3, Kind: "crc", Detail: "x", Damage: true}
	if got := p.String(); got != `damage [crc] /d/a\x0ab at position 3: x` {
		t.Fatalf("Problem.String() = %q", got)
	}
}
