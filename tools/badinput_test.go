package tools_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// frame builds a request frame with header v1.
func frame(key, version int16, corr int32, body []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 1)
	b = append(b, 'x')
	b = append(b, body...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// exchange writes raw bytes and returns the first response frame, or
// io.EOF if the broker closed the connection. It never waits long.
func exchange(t *testing.T, addr string, raw []byte, closeWrite bool) ([]byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(raw)
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(sz[:]))
	_, err = io.ReadFull(c, b)
	return b, err
}

func TestBadInput(t *testing.T) {
	p := startProc(t, t.TempDir(), "")
	good := p.client(kgo.DefaultProduceTopic("bad"), kgo.AllowAutoTopicCreation())
	healthy := func(what string) {
		t.Helper()
		if err := good.ProduceSync(ctxFor(t, 10*time.Second), &kgo.Record{Value: []byte(what)}).FirstErr(); err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
	}
	healthy("start")
	closes := func(what string, raw []byte, closeWrite bool) {
		t.Helper()
		if b, err := exchange(t, p.addr, raw, closeWrite); err != io.EOF {
			t.Fatalf("%s: got %d bytes, %v; want the connection closed", what, len(b), err)
		}
		healthy(what)
	}
	closes("garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false)
	closes("negative size", []byte{0xff, 0xff, 0xff, 0xf0, 1, 2, 3}, false)
	closes("oversized frame", []byte{0x0c, 0x80, 0, 0, 0, 0, 0, 0}, false) // 200 MiB > 100 MiB limit
	closes("truncated frame", frame(3, 1, 1, nil)[:9], true)
	closes("unknown api key", frame(9999, 0, 1, nil), false)
	closes("unsupported version", frame(1, 0, 1, make([]byte, 30)), false)
	closes("negative string length", frame(19, 1, 1, []byte{0, 0, 0, 1, 0xff, 0xfb, 'a'}), false)
	closes("huge array length", frame(19, 1, 1, []byte{0x7f, 0, 0, 5, 0}), false)
	closes("truncated body", frame(19, 1, 1, []byte{0, 0, 0, 9, 0}), false)
	closes("client id beyond frame", []byte{0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff}, false)

	// A bad CRC is a per-partition error code, not a closed connection.
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(7)
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bad"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = buildIdempotentBatch(-1, -1, -1, &kgo.Record{Value: []byte("crc")})
	rp.Records[len(rp.Records)-1] ^= 1
	rt.Partitions = append(rt.Partitions, rp)
	neg := kmsg.NewProduceRequestTopicPartition()
	neg.Partition = 0
	neg.Records = buildIdempotentBatch(-1, -1, -1, &kgo.Record{Value: []byte("neg")})
	binary.BigEndian.PutUint32(neg.Records[8:], 0xfffffff0) // negative batch length
	rt.Partitions = append(rt.Partitions, neg)
	req.Topics = append(req.Topics, rt)
	b, err := exchange(t, p.addr, frame(0, 7, 42, req.AppendTo(nil)), false)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(7)
	if err := resp.ReadFrom(b[4:]); err != nil {
		t.Fatal(err)
	}
	for i, part := range resp.Topics[0].Partitions {
		if part.ErrorCode != kerr.CorruptMessage.Code {
			t.Fatalf("partition entry %d: %v, want CORRUPT_MESSAGE", i, kerr.ErrorForCode(part.ErrorCode))
		}
	}
	healthy("bad crc")

	// ApiVersions beyond ours: a v0 answer with UNSUPPORTED_VERSION.
	b, err = exchange(t, p.addr, frame(18, 99, 5, nil), false)
	if err != nil {
		t.Fatal(err)
	}
	av := kmsg.NewPtrApiVersionsResponse()
	if err := av.ReadFrom(b[4:]); err != nil || av.ErrorCode != kerr.UnsupportedVersion.Code || len(av.ApiKeys) == 0 {
		t.Fatalf("ApiVersions v99: %v %+v", err, av)
	}
}

func TestCommandLine(t *testing.T) {
	out, err := exec.Command(samsaBin, "-version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "samsa ") {
		t.Fatalf("-version: %v %q", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(cfg, []byte("listen = \"127.0.0.1:0\"\n[broker]\nauto_create_topicz = true\n"), 0o644)
	out, err = exec.Command(samsaBin, "-config", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), "broker.auto_create_topicz") {
		t.Fatalf("unknown key: %v %q", err, out)
	}
	out, err = exec.Command(samsaBin, "-config", filepath.Join(t.TempDir(), "none.toml")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "none.toml") {
		t.Fatalf("missing config: %v %q", err, out)
	}
	// -listen and -data-dir override the file; two brokers side by side.
	a, b := startProc(t, t.TempDir(), ""), startProc(t, t.TempDir(), "")
	for _, p := range []*proc{a, b} {
		c := p.client(kgo.DefaultProduceTopic("side"), kgo.AllowAutoTopicCreation())
		if err := c.ProduceSync(ctxFor(t, 10*time.Second), &kgo.Record{Value: []byte(p.addr)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(p.dir, "side-0")); err != nil {
			t.Fatalf("data not in -data-dir: %v", err)
		}
	}
	// A second broker on the same data directory is refused.
	cmd := exec.Command(samsaBin, "-config", configPath(t), "-listen", freeAddr(t), "-data-dir", a.dir)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another broker") {
		t.Fatalf("shared data dir: %v %q", err, out)
	}
}
