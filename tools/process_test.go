package tools_test

// Tests against the real broker binary: started, SIGKILLed and restarted
// like a user would, and driven by real clients (franz-go, kcat,
// kafka-python).

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var samsaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "samsa-bin")
	if err != nil {
		panic(err)
	}
	samsaBin = filepath.Join(dir, "samsa")
	args := []string{"build", "-o", samsaBin}
	if raceBuild {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "samsa/cmd/samsa")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build samsa: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a broker process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	dir    string
	stderr *syncBuffer
	done   chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func configPath(t *testing.T) string {
	p, err := filepath.Abs("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProc starts the broker on dir (and addr, if set) and waits until it
// accepts connections.
func startProc(t *testing.T, dir, addr string, extra ...string) *proc {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	p := &proc{t: t, addr: addr, dir: dir, stderr: &syncBuffer{}, done: make(chan error, 1)}
	args := append([]string{"-config", configPath(t), "-listen", addr, "-data-dir", dir}, extra...)
	p.cmd = exec.Command(samsaBin, args...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.kill()
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("race detected in the broker %s", p.addr)
		}
		if t.Failed() {
			t.Logf("broker %s log:\n%s", p.addr, p.stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("broker exited at start: %v\n%s", err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not listen on %s:\n%s", addr, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the process and waits for it.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Fatalf("broker exited with %v after SIGTERM:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("broker did not stop after SIGTERM:\n%s", p.stderr.String())
	}
}

func (p *proc) client(opts ...kgo.Opt) *kgo.Client {
	p.t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(p.addr), kgo.RetryTimeout(20 * time.Second)}, opts...)
	c, err := kgo.NewClient(opts...)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(c.Close)
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
