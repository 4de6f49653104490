package netio

import (
	"net"
	"time"
)

// bucket is a token bucket: limit tokens a second, at most limit (one
// second's worth, at least one) saved up. A zero limit lets everything
// through.
type bucket struct {
	limit  float64
	tokens float64
	last   time.Time
}

// take reports whether a token was there, and takes it.
func (b *bucket) take(now time.Time, limit float64) bool {
	if limit <= 0 {
		return true
	}
	burst := max(limit, 1)
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*limit)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether the bucket has refilled completely by now: it then
// holds nothing worth keeping.
func (b *bucket) full(now time.Time, limit float64) bool {
	return limit <= 0 || b.tokens+now.Sub(b.last).Seconds()*limit >= max(limit, 1)
}

// bucketMap keeps a bucket per client address.
type bucketMap struct {
	limit float64
	// quota, set by SetIPConnectionRates (Kafka's ip quotas,
	// connection_creation_rate), overrides limit: per address, and for
	// the others hasDefault's def.
	quota      map[string]float64
	def        float64
	hasDefault bool
	m          map[string]*bucket
}

// limitFor is the rate for ip.
func (bm *bucketMap) limitFor(ip string) float64 {
	if v, ok := bm.quota[ip]; ok {
		return v
	}
	if bm.hasDefault {
		return bm.def
	}
	return bm.limit
}

func (bm *bucketMap) take(ip string, now time.Time) bool {
	limit := bm.limitFor(ip)
	if limit <= 0 {
		return true
	}
	if bm.m == nil {
		bm.m = map[string]*bucket{}
	}
	b := bm.m[ip]
	if b == nil {
		b = &bucket{}
		bm.m[ip] = b
	}
	return b.take(now, limit)
}

// prune drops the buckets that have refilled, so addresses seen once do
// not stay.
func (bm *bucketMap) prune(now time.Time) {
	for ip, b := range bm.m {
		if b.full(now, bm.limitFor(ip)) {
			delete(bm.m, ip)
		}
	}
}

// hostOf is the address part of a remote address.
func hostOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// admitConn decides whether a new connection from ip may open, under
// connMu, and counts it if so; it returns why not otherwise.
func (s *Server) admitConnLocked(ip string, self bool, now time.Time) (reason string, limit float64) {
	l := s.limits.Load()
	if self {
		return "", 0 // not counted: the broker's own connections pass every limit
	}
	if l.MaxConnections > 0 && len(s.conns) >= l.MaxConnections {
		return "connection limit reached", float64(l.MaxConnections)
	}
	perIP := l.MaxConnectionsPerIP
	if n, ok := l.ConnectionsPerIP[ip]; ok {
		perIP = n
	}
	if perIP > 0 && s.perIP[ip] >= perIP {
		return "connection limit per address reached", float64(perIP)
	}
	if !s.rate.take(now, s.rate.limit) {
		return "connection rate limit reached", s.rate.limit
	}
	if !s.ipRate.take(ip, now) {
		return "connection rate limit per address reached", s.ipRate.limitFor(ip)
	}
	s.perIP[ip]++
	return "", 0
}

// SetIPConnectionRates sets Kafka's ip quotas (connection_creation_rate)
// over Limits.MaxConnectionRatePerIP: perIP by address, def (when
// hasDefault) for every other address. Any goroutine.
func (s *Server) SetIPConnectionRates(perIP map[string]float64, def float64, hasDefault bool) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.ipRate.quota, s.ipRate.def, s.ipRate.hasDefault = perIP, def, hasDefault
}

// connGoneLocked uncounts a closed connection from ip. connMu held.
func (s *Server) connGoneLocked(ip string) {
	if n := s.perIP[ip]; n > 1 {
		s.perIP[ip] = n - 1
	} else {
		delete(s.perIP, ip)
	}
}
