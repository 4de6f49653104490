package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/netio"
)

// testBroker is an in-process broker on a loopback port.
type testBroker struct {
	t    testing.TB
	b    *Broker
	srv  *netio.Server
	dir  string
	addr string
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startBroker(t testing.TB, dir string, mod func(*Config)) *testBroker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.NumLoops = 2
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg, testLogger())
	if err != nil {
		t.Fatalf("cannot start broker: %v", err)
	}
	srv := netio.NewServer(netio.Options{Addr: cfg.Listen, NumLoops: cfg.NumLoops, Limits: netio.Limits{MaxRequestBytes: cfg.MaxRequestBytes},
		MaxInflight: cfg.MaxInflight, Logger: testLogger()}, b)
	if err := srv.Start(); err != nil {
		b.Close()
		t.Fatalf("cannot listen: %v", err)
	}
	b.SetAddr(srv.Addr())
	tb := &testBroker{t: t, b: b, srv: srv, dir: dir, addr: srv.Addr()}
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBroker) stop() {
	if tb.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tb.b.StopWaiting()
	tb.srv.Drain(ctx)
	tb.srv.Stop(ctx)
	if err := tb.b.Close(); err != nil {
		tb.t.Errorf("close: %v", err)
	}
	tb.srv = nil
}

func (tb *testBroker) client(opts ...kgo.Opt) *kgo.Client {
	tb.t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(tb.addr), kgo.RetryTimeout(10 * time.Second)}, opts...)
	c, err := kgo.NewClient(opts...)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
