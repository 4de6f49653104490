package engine

// ApiVersions (key 18), v0-v4.
//
// The list comes from the dispatch table, so samsa advertises exactly what
// it serves. The response always uses response header v0, even for flexible
// versions (KIP-511), and a request for an unknown version is answered in
// the v0 format with UNSUPPORTED_VERSION and the full list, so librdkafka's
// v3-then-v0 probe works. v5 (KIP-1242 cluster/node id checks) is not
// advertised.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.ApiVersions.Int16(), 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.respondAPIVersions(req, 0, req.APIVersion)
	})
}

func (b *Broker) respondAPIVersions(req *netio.Request, code int16, version int16) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(version)
	resp.ErrorCode = code
	for _, a := range sortedAPIs() {
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max})
	}
	req.Respond(&netio.Response{Parts: []netio.Part{{B: resp.AppendTo(nil)}}})
}
