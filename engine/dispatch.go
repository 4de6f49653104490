package engine

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
	"samsa/netio/kclient"
)

// api is one row of the dispatch table: the versions samsa implements for a
// key and the function that serves them. ApiVersions advertises exactly this
// table.
type api struct {
	key, min, max int16
	// serve handles a decoded request. It must call req.Respond or req.Done
	// exactly once, possibly later from another goroutine.
	serve func(b *Broker, req *netio.Request, kreq kmsg.Request)
	// raw, when set instead of serve, decodes the body itself (after the
	// request header's tagged fields): the hand-written hot paths.
	raw func(b *Broker, req *netio.Request, body []byte)
	// flexible is the first flexible version, for raw APIs.
	flexible int16
}

var apis = map[int16]*api{}

// regKey registers an API's supported version range and handler. Called from
// the init function of the API's own file, api_<name>.go after
// kmsg.NameForKey in lower case, with the key as its kmsg constant
// (kmsg.Fetch.Int16()); TestDispatchOneFilePerAPI checks both.
func regKey(key, min, max int16, serve func(*Broker, *netio.Request, kmsg.Request)) {
	if _, dup := apis[key]; dup {
		panic(fmt.Sprintf("BUG: api key %d registered twice", key))
	}
	if kmsg.RequestForKey(key).MaxVersion() < max {
		panic(fmt.Sprintf("BUG: api key %d registered above kmsg's max version", key))
	}
	apis[key] = &api{key: key, min: min, max: max, serve: serve}
}

// regRaw registers an API that decodes its own requests. Versions from
// flexible on carry tagged fields in the request header.
func regRaw(key, min, max, flexible int16, raw func(*Broker, *netio.Request, []byte)) {
	regKey(key, min, max, nil)
	apis[key].raw, apis[key].flexible = raw, flexible
}

// sortedAPIs lists the table in key order.
func sortedAPIs() []*api {
	out := make([]*api, 0, len(apis))
	for _, a := range apis {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// Serve routes one request (netio.Handler). It runs on the connection's
// worker goroutine.
func (b *Broker) Serve(req *netio.Request) {
	if !b.saslGate(req) {
		return
	}
	if qs := b.quotas.Load(); qs != nil && len(*qs) > 0 {
		if !b.holdRequests(req) {
			// Muted, and the client went away meanwhile: drop what it
			// had queued, as Kafka drops the bytes left in a closed
			// muted socket (its answers could not be sent either).
			req.Done()
			return
		}
		st := stateOf(req.Conn)
		st.quotaBroker.Store(b)
		st.serving.Store(&servingReq{req: req, start: time.Now()})
		defer b.chargeRequest(st, req, true)
	}
	if k := req.APIKey; k == kmsg.Produce.Int16() || k == kmsg.Fetch.Int16() {
		b.cfg.Metrics.observeQueue(req.APIKey, req.Received)
	}
	a := apis[req.APIKey]
	if a == nil {
		// There is no response format for an unknown key: Kafka closes too.
		b.logWarnLimited(&b.badLog, "unsupported api key; closing connection", "remote", req.Conn.RemoteAddr(), "client", clip(req.ClientID), "key", req.APIKey, "version", req.APIVersion)
		req.Done()
		req.Conn.Close(fmt.Sprintf("unsupported api key %d", req.APIKey))
		return
	}
	if req.APIVersion < a.min || req.APIVersion > a.max {
		if req.APIKey == kmsg.ApiVersions.Int16() {
			// KIP-511: answer with v0 and the supported list so the client
			// can retry with a version both sides know.
			b.respondAPIVersions(req, kerr.UnsupportedVersion.Code, 0)
			return
		}
		b.logWarnLimited(&b.badLog, "unsupported api version; closing connection", "remote", req.Conn.RemoteAddr(), "client", clip(req.ClientID),
			"api", kmsg.NameForKey(req.APIKey), "version", req.APIVersion, "min", a.min, "max", a.max)
		req.Done()
		req.Conn.Close(fmt.Sprintf("unsupported %s version %d", kmsg.NameForKey(req.APIKey), req.APIVersion))
		return
	}
	if a.raw != nil {
		body := req.Body
		if req.APIVersion >= a.flexible {
			var err error
			if body, err = kclient.SkipTags(body); err != nil {
				b.badRequest(req, err)
				return
			}
		}
		a.raw(b, req, body)
		return
	}
	kreq := kmsg.RequestForKey(req.APIKey)
	kreq.SetVersion(req.APIVersion)
	body := req.Body
	if kreq.IsFlexible() {
		var err error
		if body, err = kclient.SkipTags(body); err != nil {
			b.badRequest(req, err)
			return
		}
	}
	if err := kreq.ReadFrom(body); err != nil {
		if req.APIKey == kmsg.ApiVersions.Int16() {
			// Unknown future versions arrive here too; v0 is always safe.
			b.respondAPIVersions(req, kerr.InvalidRequest.Code, req.APIVersion)
			return
		}
		b.badRequest(req, err)
		return
	}
	if !b.gate(req, kreq) {
		return
	}
	a.serve(b, req, kreq)
}

// badRequest closes a connection whose request body does not decode, as
// Kafka does: there is no way to answer a request that cannot be read.
func (b *Broker) badRequest(req *netio.Request, err error) {
	b.logWarnLimited(&b.badLog, "malformed request; closing connection", "remote", req.Conn.RemoteAddr(), "client", clip(req.ClientID),
		"api", kmsg.NameForKey(req.APIKey), "version", req.APIVersion, "err", err)
	req.Done()
	req.Conn.Close("malformed " + kmsg.NameForKey(req.APIKey) + " request")
}

// respond encodes a kmsg response for req.
func respond(req *netio.Request, kresp kmsg.Response) {
	kresp.SetVersion(req.APIVersion)
	if d := requestThrottle(req); d > 0 {
		tr, ok := kresp.(interface {
			kmsg.ThrottleResponse
			kmsg.SetThrottleResponse
		})
		if ok {
			if ms, _ := tr.Throttle(); int64(ms) < d.Milliseconds() {
				tr.SetThrottle(int32(min(d.Milliseconds(), math.MaxInt32)))
			}
		}
	}
	req.Respond(&netio.Response{
		HeaderV1: kresp.IsFlexible() && req.APIKey != kmsg.ApiVersions.Int16(),
		Parts:    []netio.Part{{B: kresp.AppendTo(nil)}},
	})
}

// ConnClosed is called once a connection's last request was served.
func (b *Broker) ConnClosed(c *netio.Conn) {}

// logWarnLimited logs a warning on a hot path at most once a second per
// limiter, with the count of the ones held back.
func (b *Broker) logWarnLimited(l *netio.LogLimiter, msg string, args ...any) {
	if n, ok := l.Allow(); ok {
		b.logger.Warn(msg, append(args, "suppressed", n)...)
	}
}

// clip shortens a client-supplied string for a log line.
func clip(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
