package netio

import (
	"bufio"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// FuzzFraming sends arbitrary bytes, cut into writes at points the input
// chooses, over a real connection to one server with small limits: partial
// frames, lying lengths, frames beyond the bounds, garbage headers. After
// each input the server still answers a good request on a new connection,
// and once the fuzzed connection is gone every byte of the request memory
// budget is back.
func FuzzFraming(f *testing.F) {
	good := appendReq(nil, 18, 3, 1, strp("kgo"), []byte{0})
	f.Add(good, []byte{3})
	f.Add(append(binary.BigEndian.AppendUint32(nil, 100<<20), 0, 0), []byte{})     // a lying Produce
	f.Add(append(binary.BigEndian.AppendUint32(nil, 900<<10), 0, 18), []byte{})    // too big before the first request
	f.Add(append(good, binary.BigEndian.AppendUint32(nil, 600<<10)...), []byte{1}) // big after it
	f.Add(appendReq(nil, 1, 0, 2, nil, make([]byte, 200<<10))[:100<<10], []byte{7, 200})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Add(appendReq(appendReq(nil, 0, 0, 1, nil, []byte("a")), 1, 0, 2, nil, []byte("b")), []byte{5, 5, 5})

	s, _ := startServerF(f, Options{NumLoops: 1, Limits: Limits{
		MaxRequestBytes: 1 << 20, MaxQueuedBytes: 256 << 10, MaxPreAuthRequestBytes: 512 << 10,
	}})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; len(stream) > 0; i++ {
			n := len(stream)
			if i < len(cuts) {
				n = min(n, int(cuts[i])+1)
			}
			if _, err := c.Write(stream[:n]); err != nil {
				break // closed by the server: fine
			}
			stream = stream[n:]
		}
		c.Close()

		probe, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close()
		_ = probe.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := probe.Write(appendReq(nil, 1, 0, 9, nil, []byte("alive"))); err != nil {
			t.Fatalf("probe: %v", err)
		}
		corr, body, err := readResp(bufio.NewReader(probe), false)
		if err != nil || corr != 9 || string(body) != "alive" {
			t.Fatalf("probe answered corr %d %q, %v", corr, body, err)
		}
		probe.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := s.Stats()
			if st.IncompleteBytes == 0 && st.BufferedBytes == 0 && st.QueuedBytes == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("budget not returned: %+v", st)
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// startServerF is startServer for a fuzz target: one echo server for all
// its inputs.
func startServerF(f *testing.F, opts Options) (*Server, *testHandler) {
	f.Helper()
	h := &testHandler{serve: echo, closed: map[uint64]int{}}
	opts.Addr = "127.0.0.1:0"
	opts.Logger = quietLogger
	s := NewServer(opts, h)
	if err := s.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Stop(f.Context()) })
	return s, h
}
