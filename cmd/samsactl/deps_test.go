package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNoBrokerPackages keeps samsactl a plain Kafka client: neither the
// binary nor its tests (which run the broker as a separate process) may
// link the engine, netio or gnet. The segment format comes in only through
// tools/logtool, for samsactl log.
func TestNoBrokerPackages(t *testing.T) {
	t.Parallel()
	forbidden := func(pkg string) bool {
		for _, p := range []string{"samsa/engine", "samsa/netio"} {
			if pkg == p || strings.HasPrefix(pkg, p+"/") {
				return true
			}
		}
		return strings.Contains(pkg, "github.com/panjf2000/gnet")
	}
	for _, args := range [][]string{{"list", "-deps", "."}, {"list", "-deps", "-test", "."}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, "go", args...).Output()
		cancel()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var bad []string
		sawCtl := false
		for _, line := range lines {
			// -test names recompiled packages "pkg [samsa/cmd/samsactl.test]".
			pkg, _, _ := strings.Cut(line, " ")
			if forbidden(pkg) {
				bad = append(bad, line)
			}
			sawCtl = sawCtl || pkg == "samsa/tools/ctl"
		}
		if !sawCtl {
			t.Fatalf("go %s does not list samsa/tools/ctl; is this the samsactl package?\n%s", strings.Join(args, " "), out)
		}
		if len(bad) > 0 {
			t.Errorf("go %s: samsactl links broker packages:\n%s", strings.Join(args, " "), strings.Join(bad, "\n"))
		}
	}
}
