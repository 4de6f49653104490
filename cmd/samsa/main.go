// Command samsa is the broker.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"samsa/tools"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	configPath := flag.String("config", "./config.toml", "config file")
	listen := flag.String("listen", "", "client listener host:port (overrides the config file)")
	dataDir := flag.String("data-dir", "", "data directory (overrides the config file)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this host:port (for profiling; keep it on loopback)")
	flag.Parse()
	if *showVersion {
		fmt.Println("samsa", version)
		return
	}
	if *pprofAddr != "" {
		go func() {
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				fmt.Fprintln(os.Stderr, "samsa: pprof:", err)
			}
		}()
	}
	if err := run(*configPath, *listen, *dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "samsa:", err)
		os.Exit(1)
	}
}

func run(configPath, listen, dataDir string) error {
	fc, err := tools.LoadConfig(configPath)
	if err != nil {
		return err
	}
	if listen != "" {
		fc.Listen = listen
	}
	if dataDir != "" {
		fc.DataDir = dataDir
	}
	logger, err := fc.Logger()
	if err != nil {
		return err
	}
	cfg, err := fc.Engine()
	if err != nil {
		return err
	}
	nopts, err := fc.NetOptions(cfg)
	if err != nil {
		return err
	}
	srv, err := tools.Start(cfg, nopts, logger)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	logger.Info("signal received", "signal", s.String())
	signal.Stop(sig)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}
