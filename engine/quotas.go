package engine

// Client quotas (KIP-13, KIP-55, KIP-546): producer_byte_rate,
// consumer_byte_rate and request_percentage per user, client id, or both,
// with defaults, as records of the metadata log (recQuota). A request
// over its quota is answered with throttle_time_ms, as long as the debt
// takes to drain (request_percentage's bounded by a second, Kafka's quota
// window), and its connection is muted that long (KIP-219; Produce
// before v6 and Fetch before v8 are answered that late instead). As in
// Kafka, a throttled fetch carries no records and its bytes are given
// back to the quota, a fetch reads at most a second of the quota, and
// acks=0 produces and the standby's fetches are not charged to
// request_percentage. A request's time is charged as its answer is made
// (and the rest once it is served), so the answer's throttle_time_ms
// reports a request_percentage mute as it reports a byte rate's.

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"samsa/netio"
)

// Quota keys samsa enforces.
const (
	quotaProduce = "producer_byte_rate"
	quotaConsume = "consumer_byte_rate"
	// quotaRequest is request_percentage: the time the broker spends
	// handling the entity's requests (the synchronous part, on the
	// connection's worker), as a percentage of one thread.
	quotaRequest = "request_percentage"
	// quotaConnRate is an ip entity's connection_creation_rate: new
	// connections a second from the address (netio's per-address bucket).
	quotaConnRate = "connection_creation_rate"
)

// quotaEntity names who a quota applies to: a user, a client id, or both;
// Default* means the <default> entity of that type.
type quotaEntity struct {
	HasUser       bool   `json:"has_user,omitempty"`
	User          string `json:"user,omitempty"`
	UserDefault   bool   `json:"user_default,omitempty"`
	HasClient     bool   `json:"has_client,omitempty"`
	Client        string `json:"client,omitempty"`
	ClientDefault bool   `json:"client_default,omitempty"`
	// An ip entity (connection_creation_rate) stands alone.
	HasIP     bool   `json:"has_ip,omitempty"`
	IP        string `json:"ip,omitempty"`
	IPDefault bool   `json:"ip_default,omitempty"`
}

// metaQuota is a quota record: set Key to Value, or remove it.
type metaQuota struct {
	Entity quotaEntity `json:"entity"`
	Key    string      `json:"key"`
	Value  float64     `json:"value,omitempty"`
	Remove bool        `json:"remove,omitempty"`
}

// quotaSet is every quota by entity (copy on write).
type quotaSet map[quotaEntity]map[string]float64

func (q quotaSet) apply(m metaQuota) {
	if m.Remove {
		delete(q[m.Entity], m.Key)
		if len(q[m.Entity]) == 0 {
			delete(q, m.Entity)
		}
		return
	}
	if q[m.Entity] == nil {
		q[m.Entity] = map[string]float64{}
	}
	q[m.Entity][m.Key] = m.Value
}

func (q quotaSet) clone() quotaSet {
	out := make(quotaSet, len(q))
	for e, kv := range q {
		c := make(map[string]float64, len(kv))
		for k, v := range kv {
			c[k] = v
		}
		out[e] = c
	}
	return out
}

// resolve finds the quota of key for (user, client) in Kafka's order of
// precedence, and the entity the rate is counted for: the matched one
// with its defaults replaced by the actual names.
func (q quotaSet) resolve(user, client, key string) (rate float64, sensor quotaEntity, ok bool) {
	type cand struct{ e, sensor quotaEntity }
	u := func(name string, def bool) quotaEntity {
		return quotaEntity{HasUser: true, User: name, UserDefault: def}
	}
	cands := []cand{
		{quotaEntity{HasUser: true, User: user, HasClient: true, Client: client}, quotaEntity{HasUser: true, User: user, HasClient: true, Client: client}},
		{quotaEntity{HasUser: true, User: user, HasClient: true, ClientDefault: true}, quotaEntity{HasUser: true, User: user, HasClient: true, Client: client}},
		{u(user, false), u(user, false)},
		{quotaEntity{HasUser: true, UserDefault: true, HasClient: true, Client: client}, quotaEntity{HasUser: true, User: user, HasClient: true, Client: client}},
		{quotaEntity{HasUser: true, UserDefault: true, HasClient: true, ClientDefault: true}, quotaEntity{HasUser: true, User: user, HasClient: true, Client: client}},
		{u("", true), u(user, false)},
		{quotaEntity{HasClient: true, Client: client}, quotaEntity{HasClient: true, Client: client}},
		{quotaEntity{HasClient: true, ClientDefault: true}, quotaEntity{HasClient: true, Client: client}},
	}
	for _, c := range cands {
		if v, ok := q[c.e][key]; ok {
			return v, c.sensor, true
		}
	}
	return 0, quotaEntity{}, false
}

// quotaUser is the user part of a principal ("User:alice" -> "alice").
func quotaUser(principal string) string {
	if len(principal) > 5 && principal[:5] == "User:" {
		return principal[5:]
	}
	return principal
}

// bucket is a token bucket of bytes refilled at rate, holding a second's
// worth; it may go below zero, and the debt is the throttle.
type quotaBucket struct {
	tokens float64
	last   time.Time
}

// quotaTracker counts each sensor's bytes against its quota.
type quotaTracker struct {
	mu      sync.Mutex
	buckets map[quotaSensor]*quotaBucket
	// throttled is the throttle time given, by sensor, for /metrics.
	throttled map[quotaSensor]time.Duration
}

type quotaSensor struct {
	key string
	quotaEntity
}

// record charges n bytes to the sensor at rate bytes/s and returns how
// long the response should wait: as long as the debt takes to drain,
// bounded by bound when it is positive (Kafka bounds the request quota's
// throttle by the quota window, never the byte rates').
func (t *quotaTracker) record(s quotaSensor, rate float64, n int64, now time.Time, bound time.Duration) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buckets == nil {
		t.buckets, t.throttled = map[quotaSensor]*quotaBucket{}, map[quotaSensor]time.Duration{}
	}
	b := t.buckets[s]
	if b == nil {
		b = &quotaBucket{tokens: rate, last: now}
		t.buckets[s] = b
	}
	b.tokens = math.Min(rate, b.tokens+rate*now.Sub(b.last).Seconds())
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	d := time.Duration(-b.tokens / rate * float64(time.Second))
	if bound > 0 {
		d = min(d, bound)
	}
	t.throttled[s] += d
	return d
}

// unrecord gives back n bytes charged to the sensor: Kafka takes a
// throttled fetch's bytes back off the quota, since it answers with no
// records.
func (t *quotaTracker) unrecord(s quotaSensor, rate float64, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.buckets[s]; b != nil {
		b.tokens = math.Min(rate, b.tokens+float64(n))
	}
}

// snapshot copies the throttle time given so far, by sensor.
func (t *quotaTracker) snapshot() map[quotaSensor]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[quotaSensor]time.Duration, len(t.throttled))
	for s, d := range t.throttled {
		out[s] = d
	}
	return out
}

// requestQuotaBound bounds a request_percentage throttle: Kafka's quota
// window (quota.window.size.seconds).
const requestQuotaBound = time.Second

// servingReq is a request being served while quotas are on.
type servingReq struct {
	req     *netio.Request
	start   time.Time
	charged atomic.Int64 // nanoseconds since start charged so far
	exempt  atomic.Bool  // not charged: an acks=0 produce, the standby's fetch
}

// exemptFromRequestQuota keeps the request being served off
// request_percentage, as Kafka keeps acks=0 produces and replication.
func exemptFromRequestQuota(req *netio.Request) {
	if st, _ := req.Conn.State.(*connState); st != nil {
		if cur := st.serving.Load(); cur != nil && cur.req == req {
			cur.exempt.Store(true)
		}
	}
}

// chargeRequest charges the time Serve has spent on req since it was last
// charged to its request_percentage quota: when its answer is made within
// Serve (as Kafka charges the handler's time when it sends the response,
// so that the answer can say so), and the rest when Serve returns (done;
// Kafka charges the network thread's time after the send too). Over the
// quota the connection is muted.
func (b *Broker) chargeRequest(st *connState, req *netio.Request, done bool) {
	cur := st.serving.Load()
	if cur == nil || cur.req != req {
		return // served: an answer made later
	}
	if done {
		st.serving.CompareAndSwap(cur, nil)
	}
	if cur.exempt.Load() {
		return
	}
	now := int64(time.Since(cur.start))
	if spent := now - cur.charged.Swap(now); spent > 0 {
		// The bucket counts nanoseconds: the rate is pct/100 of a
		// second each second.
		b.mute(req, b.throttleRate(req, quotaRequest, spent, 1e9/100))
	}
}

// requestThrottle charges req (chargeRequest) as its answer is made and
// returns how long its connection stays muted from now: what the answer's
// throttle_time_ms must say at least, so that the client holds off by
// itself (KIP-219). 0 while no quota was ever set.
func requestThrottle(req *netio.Request) time.Duration {
	st, _ := req.Conn.State.(*connState)
	if st == nil {
		return 0
	}
	b := st.quotaBroker.Load()
	if b == nil {
		return 0
	}
	b.chargeRequest(st, req, false)
	st.mu.Lock()
	d := time.Until(st.holdUntil)
	st.mu.Unlock()
	return max(d, 0)
}

// mute makes req's connection handle no further request for d (Kafka
// mutes the channel: KIP-219). Any goroutine, after Serve's holdRequests
// made the connection's state.
func (b *Broker) mute(req *netio.Request, d time.Duration) {
	st, _ := req.Conn.State.(*connState)
	if d <= 0 || st == nil {
		return
	}
	until := time.Now().Add(d)
	st.mu.Lock()
	if until.After(st.holdUntil) {
		st.holdUntil = until
	}
	st.mu.Unlock()
}

// holdRequests makes a muted connection's next request wait until the
// mute ends (the connection's worker goroutine: later requests queue
// behind it, and past max_inflight its loop stops framing) or the broker
// closes. It reports false if the connection closed while muted: the
// request is not to be served.
func (b *Broker) holdRequests(req *netio.Request) bool {
	st := stateOf(req.Conn)
	st.mu.Lock()
	until, dropping := st.holdUntil, st.dropping
	st.mu.Unlock()
	if dropping {
		return false // the rest of a closed muted connection's queue
	}
	d := time.Until(until)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-t.C:
		case <-b.quit:
			return true
		case <-poll.C:
			if !req.Conn.Closed() {
				continue
			}
		}
		if !req.Conn.Closed() {
			return true
		}
		st.mu.Lock()
		st.dropping = true
		st.mu.Unlock()
		return false
	}
}

// throttle returns how long req's response should wait for n more bytes
// of kind (quotaProduce or quotaConsume), and 0 without a quota.
func (b *Broker) throttle(req *netio.Request, key string, n int64) time.Duration {
	return b.throttleRate(req, key, n, 1)
}

// throttleRate is throttle with the quota's value scaled by unit.
func (b *Broker) throttleRate(req *netio.Request, key string, n int64, unit float64) time.Duration {
	rate, sensor, ok := b.quotaOf(req, key)
	if !ok {
		return 0
	}
	var bound time.Duration
	if key == quotaRequest {
		bound = requestQuotaBound
	}
	return b.quotaUse.record(sensor, rate*unit, n, time.Now(), bound)
}

// quotaOf is the rate of key that applies to req's client and the sensor
// it is counted on; ok is false when none applies.
func (b *Broker) quotaOf(req *netio.Request, key string) (rate float64, sensor quotaSensor, ok bool) {
	qs := b.quotas.Load()
	if qs == nil || len(*qs) == 0 || req == nil || req.Conn == nil {
		return 0, quotaSensor{}, false
	}
	user := ""
	if p := req.Conn.Principal(); p != netio.AnonymousPrincipal {
		user = quotaUser(p)
	} else {
		user = "ANONYMOUS"
	}
	rate, e, ok := (*qs).resolve(user, req.ClientID, key)
	if !ok || rate <= 0 {
		return 0, quotaSensor{}, false
	}
	return rate, quotaSensor{key, e}, true
}

// later runs f after d (now if d is 0), for throttled responses; a
// closing broker runs it at once.
func (b *Broker) later(d time.Duration, f func()) {
	if d <= 0 {
		f()
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.quit:
		}
		f()
	}()
}

// ipConnectionRates is the ip quotas: by address, and the default's.
func (q quotaSet) ipConnectionRates() (perIP map[string]float64, def float64, hasDefault bool) {
	perIP = map[string]float64{}
	for e, kv := range q {
		v, ok := kv[quotaConnRate]
		switch {
		case !ok || !e.HasIP:
		case e.IPDefault:
			def, hasDefault = v, true
		default:
			perIP[e.IP] = v
		}
	}
	return perIP, def, hasDefault
}

// SetIPQuotaHook registers f, called with the ip quotas now and whenever
// they change: the listeners' per-address connection rates.
func (b *Broker) SetIPQuotaHook(f func(perIP map[string]float64, def float64, hasDefault bool)) {
	b.ipHook.Store(&f)
	b.applyIPQuotas()
}

func (b *Broker) applyIPQuotas() {
	f := b.ipHook.Load()
	qs := b.quotas.Load()
	if f == nil || qs == nil {
		return
	}
	(*f)((*qs).ipConnectionRates())
}

// quotaPart is one component of an entity, as Kafka names it.
type quotaPart struct {
	typ, name string
	def       bool // the <default> entity of typ
}

// parts lists the entity's components: user then client-id, or its ip.
func (e quotaEntity) parts() []quotaPart {
	var out []quotaPart
	if e.HasUser {
		out = append(out, quotaPart{entityUser, e.User, e.UserDefault})
	}
	if e.HasClient {
		out = append(out, quotaPart{entityClient, e.Client, e.ClientDefault})
	}
	if e.HasIP {
		out = append(out, quotaPart{entityIP, e.IP, e.IPDefault})
	}
	return out
}

// part is the entity's component of type typ, if it has one.
func (e quotaEntity) part(typ string) (quotaPart, bool) {
	for _, p := range e.parts() {
		if p.typ == typ {
			return p, true
		}
	}
	return quotaPart{}, false
}

// String renders an entity as Kafka's tools print it.
func (e quotaEntity) String() string {
	var s []string
	for _, p := range e.parts() {
		name := p.name
		if p.def {
			name = "<default>"
		}
		s = append(s, p.typ+"="+name)
	}
	return strings.Join(s, ",")
}
