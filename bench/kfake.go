package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// RunKfake runs a one-broker kfake cluster on listen (which must be on
// 127.0.0.1, where kfake listens) until ctx is done. Topics are created by
// the workloads, so none are seeded.
func RunKfake(ctx context.Context, listen string) error {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("cannot parse -listen %q: %w", listen, err)
	}
	if host != "127.0.0.1" {
		return fmt.Errorf("cannot listen on %q: kfake listens on 127.0.0.1 only", listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("cannot parse -listen %q: bad port", listen)
	}
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("cannot start kfake: %w", err)
	}
	slog.Info("kfake listening", "subsystem", "bench", "addr", c.ListenAddrs())
	<-ctx.Done()
	c.Close()
	return nil
}
