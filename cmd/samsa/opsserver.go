package main

// The ops HTTP listener ([admin] listen in config.toml): Prometheus
// /metrics, /healthz and /readyz.

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"samsa/engine"
)

// opsServer is the ops HTTP listener: Prometheus /metrics, /healthz (the
// process serves HTTP) and /readyz (clients can connect and it is not
// shutting down).
type opsServer struct {
	logger   *slog.Logger
	tls      *tls.Config // HTTPS when set
	token    string      // the bearer token /metrics requires; "" = none
	metrics  *engine.Metrics
	srv      atomic.Pointer[server] // nil until the broker serves
	stopping atomic.Bool
	http     *http.Server
	addr     string
}

func (a *opsServer) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen for HTTP ([admin] listen) on %s: %w", addr, err)
	}
	a.addr = l.Addr().String()
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(a.metrics.Registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
	if a.token != "" {
		// /metrics names topics, groups and clients: it takes the token.
		// /healthz and /readyz say only whether the broker serves, for
		// probes that carry none.
		want := []byte("Bearer " + a.token)
		inner := metrics
		metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="samsa"`)
				http.Error(w, "a bearer token is required ([admin] token_file)", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if a.tls != nil {
		a.http.TLSConfig = a.tls
		l = tls.NewListener(l, a.tls)
	}
	go func() {
		if err := a.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("HTTP listener failed", "err", err)
		}
	}()
	a.logger.Info("HTTP listener", "addr", a.addr, "paths", "/metrics /healthz /readyz", "tls", a.tls != nil, "token", a.token != "")
	return nil
}

func (a *opsServer) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	s := a.srv.Load()
	if s == nil || a.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		state := "starting"
		if a.stopping.Load() {
			state = "stopping"
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": false, "state": state})
		return
	}
	role, epoch, topics := s.broker.Status()
	space, offline := s.broker.Storage()
	out := map[string]any{"ready": true, "state": "serving", "role": role, "epoch": epoch, "topics": topics, "listen": s.addr(),
		"disk_free_bytes": space.Free, "min_free_bytes": space.Reserve, "offline_logs": offline}
	if space.Low || offline > 0 {
		// Reads go on, but data cannot come in: not ready for producers.
		w.WriteHeader(http.StatusServiceUnavailable)
		out["ready"], out["state"] = false, "storage_error"
		if space.Low {
			out["state"] = "disk_full"
		}
	}
	json.NewEncoder(w).Encode(out)
}

func (a *opsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.http.Shutdown(ctx)
}
