package netio

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// FreeLoopbackAddr returns a 127.0.0.1 address whose port was free a
// moment ago, for a listener started a little later (tests, the
// benchmark's brokers). The port is picked below the kernel's ephemeral
// range (32768 and up on Linux), where a port asked for with ":0" comes
// from too: there, an outgoing connection of any process (a load test
// opening thousands) may take it before the listener binds it.
func FreeLoopbackAddr() (string, error) {
	const lo, hi = 20000, 32768
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use
		}
		l.Close()
		return addr, nil
	}
	return "", errors.New("no free port on 127.0.0.1 between 20000 and 32767")
}
