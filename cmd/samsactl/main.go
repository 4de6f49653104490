// Command samsactl administers a samsa broker or pair.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"samsa/tools"
)

func main() {
	broker := flag.String("broker", "127.0.0.1:9092", "the broker to talk to (host:port)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `samsactl: administer samsa.

Usage:
  samsactl [-broker HOST:PORT] status    who leads the pair, each partition's ISR
  samsactl [-broker HOST:PORT] promote   make this standby the primary

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var err error
	switch flag.Arg(0) {
	case "status":
		err = tools.Status(ctx, *broker, os.Stdout)
	case "promote":
		err = tools.Promote(ctx, *broker, os.Stdout)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "samsactl:", err)
		os.Exit(1)
	}
}
