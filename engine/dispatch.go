package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

// api is one row of the dispatch table: the versions samsa implements for a
// key and the function that serves them. ApiVersions advertises exactly this
// table.
type api struct {
	key, min, max int16
	// serve handles a decoded request. It must call req.Respond or req.Done
	// exactly once, possibly later from another goroutine.
	serve func(b *Broker, req *netio.Request, kreq kmsg.Request)
}

var apis = map[int16]*api{}

// regKey registers an API's supported version range and handler. Called from
// init functions, one per api_*.go file.
func regKey(key, min, max int16, serve func(*Broker, *netio.Request, kmsg.Request)) {
	if _, dup := apis[key]; dup {
		panic(fmt.Sprintf("BUG: api key %d registered twice", key))
	}
	if kmsg.RequestForKey(key).MaxVersion() < max {
		panic(fmt.Sprintf("BUG: api key %d registered above kmsg's max version", key))
	}
	apis[key] = &api{key: key, min: min, max: max, serve: serve}
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

var errTagsTruncated = errors.New("request header tagged fields truncated")

// skipTags skips a tagged-field section, returning the rest.
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errTagsTruncated
	}
	b = b[w:]
	for ; n > 0; n-- {
		_, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errTagsTruncated
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || size > uint64(len(b)-w) {
			return nil, errTagsTruncated
		}
		b = b[w+int(size):]
	}
	return b, nil
}

// Serve routes one request (netio.Handler). It runs on the connection's
// worker goroutine.
func (b *Broker) Serve(req *netio.Request) {
	a := apis[req.APIKey]
	if a == nil {
		// There is no response format for an unknown key: Kafka closes too.
		b.logger.Warn("unsupported api key; closing connection", "remote", req.Conn.RemoteAddr(), "client", req.ClientID, "key", req.APIKey, "version", req.APIVersion)
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
		b.logger.Warn("unsupported api version; closing connection", "remote", req.Conn.RemoteAddr(), "client", req.ClientID,
			"api", kmsg.NameForKey(req.APIKey), "version", req.APIVersion, "min", a.min, "max", a.max)
		req.Done()
		req.Conn.Close(fmt.Sprintf("unsupported %s version %d", kmsg.NameForKey(req.APIKey), req.APIVersion))
		return
	}
	kreq := kmsg.RequestForKey(req.APIKey)
	kreq.SetVersion(req.APIVersion)
	body := req.Body
	if kreq.IsFlexible() {
		var err error
		if body, err = skipTags(body); err != nil {
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
	a.serve(b, req, kreq)
}

// badRequest closes a connection whose request body does not decode, as
// Kafka does: there is no way to answer a request that cannot be read.
func (b *Broker) badRequest(req *netio.Request, err error) {
	b.logger.Warn("malformed request; closing connection", "remote", req.Conn.RemoteAddr(), "client", req.ClientID,
		"api", kmsg.NameForKey(req.APIKey), "version", req.APIVersion, "err", err)
	req.Done()
	req.Conn.Close("malformed " + kmsg.NameForKey(req.APIKey) + " request")
}

// respond encodes a kmsg response for req.
func respond(req *netio.Request, kresp kmsg.Response) {
	kresp.SetVersion(req.APIVersion)
	req.Respond(&netio.Response{
		HeaderV1: kresp.IsFlexible() && req.APIKey != kmsg.ApiVersions.Int16(),
		Parts:    []netio.Part{{B: kresp.AppendTo(nil)}},
	})
}

// ConnClosed is called once a connection's last request was served.
func (b *Broker) ConnClosed(c *netio.Conn) {}
