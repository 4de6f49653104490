package replica

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// Bytes written through an lz4 link come out the same at the other end.
func TestLZ4LinkRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	za, zb := newLZ4Conn(a), newLZ4Conn(b)
	msgs := [][]byte{[]byte("hello"), bytes.Repeat([]byte("compressible "), 10000), {}, make([]byte, 70000)}
	go func() {
		for _, m := range msgs {
			za.Write(m)
		}
		a.Close()
	}()
	want := bytes.Join(msgs, nil)
	got, err := io.ReadAll(zb)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}

// A peer sending garbage gets an error, never a panic or a huge buffer.
func FuzzLZ4Link(f *testing.F) {
	a, b := net.Pipe()
	go func() { newLZ4Conn(a).Write([]byte("some bytes some bytes some bytes")); a.Close() }()
	seed, _ := io.ReadAll(b)
	f.Add(seed)
	f.Add([]byte{0, 0, 0, 10, 0, 0, 0, 5, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer b.Close()
		go func() { a.Write(data); a.Close() }()
		b.SetDeadline(time.Now().Add(time.Second))
		io.ReadAll(newLZ4Conn(b))
	})
}
