package netio

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DialSelf connects to the server's own listener from a local port it
// registers first, so the connection is let in even when MaxConnections
// is reached: a health check (systemd's watchdog) must not fail, and get
// the broker restarted, because clients fill the limit.
func (s *Server) DialSelf(timeout time.Duration) (net.Conn, error) {
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return nil, errors.New("the listener address is not an IP address")
	case ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	var local int
	d := net.Dialer{Timeout: timeout, Control: func(_, _ string, c syscall.RawConn) error {
		var berr error
		err := c.Control(func(fd uintptr) {
			// Bind before connecting, to know the source port the
			// listener will see.
			var sa unix.Sockaddr
			if v4 := ip.To4(); v4 != nil {
				sa4 := &unix.SockaddrInet4{}
				copy(sa4.Addr[:], v4)
				sa = sa4
			} else {
				sa6 := &unix.SockaddrInet6{}
				copy(sa6.Addr[:], ip.To16())
				sa = sa6
			}
			if berr = unix.Bind(int(fd), sa); berr != nil {
				return
			}
			var got unix.Sockaddr
			if got, berr = unix.Getsockname(int(fd)); berr != nil {
				return
			}
			switch a := got.(type) {
			case *unix.SockaddrInet4:
				local = a.Port
			case *unix.SockaddrInet6:
				local = a.Port
			}
			s.selfPorts.Store(local, struct{}{})
		})
		return errors.Join(err, berr)
	}}
	c, err := d.Dial("tcp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		if local != 0 {
			s.selfPorts.Delete(local)
		}
		return nil, err
	}
	return &selfConn{Conn: c, srv: s, port: local}, nil
}

type selfConn struct {
	net.Conn
	srv  *Server
	port int
}

func (c *selfConn) Close() error {
	c.srv.selfPorts.Delete(c.port)
	return c.Conn.Close()
}

// isSelf reports whether a connection comes from DialSelf.
func (s *Server) isSelf(remote net.Addr) bool {
	a, ok := remote.(*net.TCPAddr)
	if !ok {
		return false
	}
	_, self := s.selfPorts.Load(a.Port)
	return self && (a.IP.IsLoopback() || s.isLocalIP(a.IP))
}

// isLocalIP reports whether ip is the listener's own address.
func (s *Server) isLocalIP(ip net.IP) bool {
	host, _, err := net.SplitHostPort(s.Addr())
	return err == nil && net.ParseIP(host).Equal(ip)
}
