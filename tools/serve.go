package tools

import (
	"context"
	"fmt"
	"log/slog"

	"samsa/engine"
	"samsa/netio"
)

// Server is a running broker: the engine behind a netio listener.
type Server struct {
	Broker *engine.Broker
	Net    *netio.Server
	logger *slog.Logger
}

// Start opens the data directory (recovering it) and starts listening
// with the network options nopts (FileConfig.NetOptions).
func Start(cfg engine.Config, nopts netio.Options, logger *slog.Logger) (*Server, error) {
	b, err := engine.New(cfg, logger)
	if err != nil {
		return nil, err
	}
	nopts.Logger = logger
	srv := netio.NewServer(nopts, b)
	if err := srv.Start(); err != nil {
		b.Close()
		return nil, err
	}
	b.SetAddr(srv.Addr())
	logger.Info("samsa listening", "addr", srv.Addr(), "data_dir", cfg.DataDir, "node_id", cfg.NodeID, "cluster_id", b.ClusterID())
	return &Server{Broker: b, Net: srv, logger: logger}, nil
}

// Addr is the bound client address.
func (s *Server) Addr() string { return s.Net.Addr() }

// Shutdown stops accepting, drains in-flight requests, flushes and closes
// every log and marks the shutdown clean.
func (s *Server) Shutdown(ctx context.Context) error {
	s.logger.Info("shutting down: draining requests")
	s.Broker.StopWaiting()
	s.Net.Drain(ctx)
	stopErr := s.Net.Stop(ctx)
	if err := s.Broker.Close(); err != nil {
		return fmt.Errorf("cannot close logs cleanly: %w", err)
	}
	st := s.Net.Stats()
	s.logger.Info("shutdown complete", "sendfile_bytes", st.SendfileBytes, "copied_bytes", st.CopiedBytes)
	return stopErr
}
