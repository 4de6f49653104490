// Command samsa is the broker. main parses the command line; the rest of
// the package runs the broker as a service: config.toml (config.go), CPU
// pinning (cpu.go), the engine behind netio's listeners (server.go),
// signals, reloads and systemd's notify protocol (service.go), and the ops
// HTTP listener for /metrics, /healthz and /readyz (opsserver.go).
package main

import (
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"

	"samsa/engine"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var o options
	flag.StringVar(&o.ConfigPath, "config", "./config.toml", "config file")
	flag.StringVar(&o.Listen, "listen", "", "client listener host:port (overrides the config file)")
	flag.StringVar(&o.DataDir, "data-dir", "", "data directory (overrides the config file)")
	flag.Func("add-scram", "write a SCRAM credential at start, Kafka's form: 'SCRAM-SHA-256=[name=admin,password=secret]' (repeatable; the first admin user of a fresh box)", func(s string) error {
		u, err := engine.ParseScramUser(s)
		if err == nil {
			o.ScramUsers = append(o.ScramUsers, u)
		}
		return err
	})
	showVersion := flag.Bool("version", false, "print the version and exit")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this host:port (for profiling; keep it on loopback)")
	flag.Parse()
	o.Version = version
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
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "samsa:", err)
		os.Exit(1)
	}
}
