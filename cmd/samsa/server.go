package main

// The broker's wiring: the engine behind netio's client listener, and the
// replication listener of a pair.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"samsa/engine"
	"samsa/engine/replica"
	"samsa/netio"
)

// server is a running broker: the engine behind a netio listener.
type server struct {
	broker    *engine.Broker
	clients   *netio.Server   // the client listener
	extra     []*netio.Server // the other client listeners (listeners)
	tls       *tlsSource      // the SSL listeners' certificates, reloaded on SIGHUP
	link      *netio.Server   // the replication listener, if configured
	linkRelay net.Listener    // the lz4 replication listener, if configured
	relayDone chan struct{}   // closed when the relay's goroutines have ended
	stopMem   context.CancelFunc
	memDone   chan struct{}
	logger    *slog.Logger
}

// extraListener is a client listener besides the first.
type extraListener struct {
	spec listenerSpec
	opts netio.Options
}

// startServer opens the data directory (recovering it) and starts
// listening with the network options nopts (fileConfig.netOptions), and on
// the extra listeners.
func startServer(cfg engine.Config, nopts netio.Options, extra []extraListener, linkTLS *netio.TLSOptions, logger *slog.Logger) (*server, error) {
	b, err := engine.New(cfg, logger)
	if err != nil {
		return nil, err
	}
	nopts.Logger = logger
	if cfg.Metrics != nil {
		nopts.Observe = cfg.Metrics.ObserveRequest
	}
	srv := netio.NewServer(nopts, b)
	if err := srv.Start(); err != nil {
		b.Close()
		return nil, err
	}
	b.SetAddr(srv.Addr())
	if cfg.Metrics != nil {
		cfg.Metrics.SetNetStats(srv.Stats)
	}
	s := &server{broker: b, clients: srv, logger: logger}
	for _, l := range extra {
		l.opts.Logger, l.opts.Observe = logger, nopts.Observe
		es := netio.NewServer(l.opts, b)
		if err := es.Start(); err != nil {
			s.stopListeners()
			b.Close()
			return nil, fmt.Errorf("cannot listen on %s (%s): %w", l.spec.Addr, l.spec.Name, err)
		}
		b.SetListener(l.spec.Name, l.spec.Protocol, es.Addr(), l.spec.Advertised)
		logListener(logger, l.spec, es.Addr())
		s.extra = append(s.extra, es)
	}
	// An lz4 link in plaintext is relayed to the first listener (gnet has
	// no codec seam); under TLS the link's own listener decodes it
	// (linkTLS.Wrap).
	if rc := cfg.Replication; rc.Role != replica.RoleStandalone && rc.Listen != "" && rc.LinkCompression == replica.LinkLZ4 && linkTLS == nil {
		if nopts.TLS != nil {
			s.stopListeners()
			b.Close()
			return nil, errors.New("cannot relay the lz4 replication link to an SSL listener: list a PLAINTEXT listener first")
		}
		l, err := net.Listen("tcp", rc.Listen)
		if err != nil {
			s.stopListeners()
			b.Close()
			return nil, fmt.Errorf("cannot listen for replication on %s: %w", rc.Listen, err)
		}
		s.linkRelay, s.relayDone = l, make(chan struct{})
		go func() {
			defer close(s.relayDone)
			replica.ServeCompressedLink(l, srv.Addr(), logger)
		}()
		logger.Info("replication listener (lz4)", "addr", l.Addr(), "peer", rc.PeerID)
	} else if rc := cfg.Replication; rc.Role != replica.RoleStandalone && rc.Listen != "" {
		lopts := nopts
		lopts.Addr, lopts.BindDevice, lopts.ReusePort, lopts.PinLoop = rc.Listen, rc.BindDevice, false, nil
		lopts.NumLoops = 1
		lopts.TLS, lopts.Listener = linkTLS, engine.LinkListener
		s.link = netio.NewServer(lopts, b)
		if err := s.link.Start(); err != nil {
			s.stopListeners()
			b.Close()
			return nil, fmt.Errorf("cannot listen for replication on %s: %w", rc.Listen, err)
		}
		logger.Info("replication listener", "addr", s.link.Addr(), "peer", rc.PeerID, "device", rc.BindDevice, "tls", linkTLS != nil, "compression", cmp.Or(rc.LinkCompression, "none"))
	}
	// Kafka's ip quotas (connection_creation_rate) on every client
	// listener.
	b.SetIPQuotaHook(func(perIP map[string]float64, def float64, hasDefault bool) {
		srv.SetIPConnectionRates(perIP, def, hasDefault)
		for _, es := range s.extra {
			es.SetIPConnectionRates(perIP, def, hasDefault)
		}
	})
	memCtx, stopMem := context.WithCancel(context.Background())
	s.stopMem, s.memDone = stopMem, make(chan struct{})
	go func() {
		defer close(s.memDone)
		returnMemory(memCtx, srv.Stats, logger)
	}()
	role, epoch, _ := b.Status() // as settled: a returning primary may follow or wait
	logger.Info("samsa listening", "addr", srv.Addr(), "data_dir", cfg.DataDir, "node_id", cfg.NodeID, "cluster_id", b.ClusterID(), "role", role, "epoch", epoch)
	return s, nil
}

// stopListeners stops the client listeners (a start that failed).
func (s *server) stopListeners() {
	for _, o := range s.extra {
		o.Stop(context.Background())
	}
	s.clients.Stop(context.Background())
}

// addr is the bound client address.
func (s *server) addr() string { return s.clients.Addr() }

// shutdown stops accepting, drains in-flight requests, flushes and closes
// every log and marks the shutdown clean.
func (s *server) shutdown(ctx context.Context) error {
	s.logger.Info("shutting down: draining requests")
	s.stopMem()
	<-s.memDone
	s.broker.StopWaiting()
	if s.link != nil {
		s.link.Drain(ctx)
		s.link.Stop(ctx)
	}
	if s.linkRelay != nil {
		s.linkRelay.Close() // ends every relayed connection
		<-s.relayDone
	}
	for _, es := range s.extra {
		es.Drain(ctx)
	}
	s.clients.Drain(ctx)
	stopErr := s.clients.Stop(ctx)
	for _, es := range s.extra {
		if err := es.Stop(ctx); stopErr == nil {
			stopErr = err
		}
	}
	if err := s.broker.Close(); err != nil {
		return fmt.Errorf("cannot close logs cleanly: %w", err)
	}
	st := s.clients.Stats()
	s.logger.Info("shutdown complete", "sendfile_bytes", st.SendfileBytes, "copied_bytes", st.CopiedBytes, "filled_bytes", st.FilledBytes)
	return stopErr
}
