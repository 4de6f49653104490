package tools

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"samsa/engine"
	"samsa/engine/replica"
	"samsa/netio"
)

// Server is a running broker: the engine behind a netio listener.
type Server struct {
	Broker    *engine.Broker
	Net       *netio.Server
	Link      *netio.Server // the replication listener, if configured
	linkRelay net.Listener  // the lz4 replication listener, if configured
	logger    *slog.Logger
}

// Start opens the data directory (recovering it) and starts listening
// with the network options nopts (FileConfig.NetOptions).
func Start(cfg engine.Config, nopts netio.Options, logger *slog.Logger) (*Server, error) {
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
	s := &Server{Broker: b, Net: srv, logger: logger}
	if rc := cfg.Replication; rc.Role != replica.RoleStandalone && rc.Listen != "" && rc.LinkCompression == replica.LinkLZ4 {
		l, err := net.Listen("tcp", rc.Listen)
		if err != nil {
			srv.Stop(context.Background())
			b.Close()
			return nil, fmt.Errorf("cannot listen for replication on %s: %w", rc.Listen, err)
		}
		s.linkRelay = l
		go replica.ServeCompressedLink(l, srv.Addr(), logger)
		logger.Info("replication listener (lz4)", "addr", l.Addr(), "role", rc.Role, "peer", rc.PeerID)
	} else if rc := cfg.Replication; rc.Role != replica.RoleStandalone && rc.Listen != "" {
		lopts := nopts
		lopts.Addr, lopts.BindDevice, lopts.ReusePort, lopts.PinLoop = rc.Listen, rc.BindDevice, false, nil
		lopts.NumLoops = 1
		s.Link = netio.NewServer(lopts, b)
		if err := s.Link.Start(); err != nil {
			srv.Stop(context.Background())
			b.Close()
			return nil, fmt.Errorf("cannot listen for replication on %s: %w", rc.Listen, err)
		}
		logger.Info("replication listener", "addr", s.Link.Addr(), "role", rc.Role, "peer", rc.PeerID, "device", rc.BindDevice)
	}
	logger.Info("samsa listening", "addr", srv.Addr(), "data_dir", cfg.DataDir, "node_id", cfg.NodeID, "cluster_id", b.ClusterID(), "role", cfg.Replication.Role)
	return s, nil
}

// Addr is the bound client address.
func (s *Server) Addr() string { return s.Net.Addr() }

// Shutdown stops accepting, drains in-flight requests, flushes and closes
// every log and marks the shutdown clean.
func (s *Server) Shutdown(ctx context.Context) error {
	s.logger.Info("shutting down: draining requests")
	s.Broker.StopWaiting()
	if s.Link != nil {
		s.Link.Drain(ctx)
		s.Link.Stop(ctx)
	}
	if s.linkRelay != nil {
		s.linkRelay.Close()
	}
	s.Net.Drain(ctx)
	stopErr := s.Net.Stop(ctx)
	if err := s.Broker.Close(); err != nil {
		return fmt.Errorf("cannot close logs cleanly: %w", err)
	}
	st := s.Net.Stats()
	s.logger.Info("shutdown complete", "sendfile_bytes", st.SendfileBytes, "copied_bytes", st.CopiedBytes)
	return stopErr
}
