// Command samsa is the broker.
package main

import (
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"

	"samsa/tools"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var o tools.RunOptions
	flag.StringVar(&o.ConfigPath, "config", "./config.toml", "config file")
	flag.StringVar(&o.Listen, "listen", "", "client listener host:port (overrides the config file)")
	flag.StringVar(&o.DataDir, "data-dir", "", "data directory (overrides the config file)")
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
	if err := tools.Run(o); err != nil {
		fmt.Fprintln(os.Stderr, "samsa:", err)
		os.Exit(1)
	}
}
