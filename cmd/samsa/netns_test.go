package main

// Network namespaces for tests that cut a broker off the network: a
// namespace joined to this one by a veth pair, and an nftables table that
// drops every packet to and from it (a blackhole: connections hang, as
// when a cable is pulled or a switch dies, rather than being refused).
// Needs root, iproute2 and nftables (.ci/run installs them).

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

type netns struct {
	t              *testing.T
	name           string
	hostIP, nsIP   string // the veth pair's addresses, host side and namespace side
	blackholeTable string // the nftables table while the namespace is cut off
}

func runCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newNetns creates a namespace with a veth pair to this one, on a /24 of
// its own, removed when the test ends.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates network namespaces and needs root (CI runs as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (apt-get install iproute2 nftables; .ci/run installs them)", tool)
		}
	}
	id := rand.IntN(1 << 20)
	n := &netns{t: t, name: fmt.Sprintf("samsa-%05x", id)}
	a, b := 100+id%100, (id/100)%250+1
	n.hostIP, n.nsIP = fmt.Sprintf("10.%d.%d.1", a, b), fmt.Sprintf("10.%d.%d.2", a, b)
	hostDev, nsDev := fmt.Sprintf("sh%05x", id), fmt.Sprintf("sn%05x", id)
	runCmd(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		n.heal()
		exec.Command("ip", "netns", "del", n.name).Run() // the veth pair goes with it
	})
	runCmd(t, "ip", "link", "add", hostDev, "type", "veth", "peer", "name", nsDev)
	runCmd(t, "ip", "link", "set", nsDev, "netns", n.name)
	runCmd(t, "ip", "addr", "add", n.hostIP+"/24", "dev", hostDev)
	runCmd(t, "ip", "link", "set", hostDev, "up")
	runCmd(t, "ip", "-n", n.name, "addr", "add", n.nsIP+"/24", "dev", nsDev)
	runCmd(t, "ip", "-n", n.name, "link", "set", nsDev, "up")
	runCmd(t, "ip", "-n", n.name, "link", "set", "lo", "up")
	return n
}

// hostAddr is a free address on the host side of the pair.
func (n *netns) hostAddr() string {
	n.t.Helper()
	l, err := net.Listen("tcp", n.hostIP+":0")
	if err != nil {
		n.t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nsAddr is an address in the namespace; nothing else listens there.
func (n *netns) nsAddr() string {
	return fmt.Sprintf("%s:%d", n.nsIP, 20000+rand.IntN(40000))
}

// blackhole drops every packet to and from the namespace.
func (n *netns) blackhole() {
	n.t.Helper()
	n.blackholeTable = strings.ReplaceAll(n.name, "-", "_")
	rules := fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -10; ip saddr %[2]s drop; }
	chain out { type filter hook output priority -10; ip daddr %[2]s drop; }
}
`, n.blackholeTable, n.nsIP)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("nft: %v\n%s", err, out)
	}
}

// heal lets packets through again.
func (n *netns) heal() {
	if n.blackholeTable != "" {
		exec.Command("nft", "delete", "table", "inet", n.blackholeTable).Run()
		n.blackholeTable = ""
	}
}
