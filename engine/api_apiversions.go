package engine

// ApiVersions (key 18), v0-v4.
//
// The list comes from the dispatch table, so samsa advertises exactly what
// it serves. The response always uses response header v0, even for flexible
// versions (KIP-511), and a request for an unknown version is answered in
// the v0 format with UNSUPPORTED_VERSION and the full list, so librdkafka's
// v3-then-v0 probe works. v5 (KIP-1242 cluster/node id checks) is not
// advertised.
//
// Features (v3+): `transaction.version`, supported 0-2 and finalized at
// the configured level (2 by default, as a new Kafka 4 cluster): clients
// that know KIP-890 part 2 (franz-go, the Java 4 producer) then bump the
// epoch at every transaction end and add partitions by producing to them.
// Older clients keep the original protocol whatever the level.

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
	if version >= 3 {
		resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{Name: "transaction.version", MinVersion: 0, MaxVersion: 2}}
		if level := b.cfg.TransactionVersion; level > 0 {
			resp.FinalizedFeaturesEpoch = 1
			resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{{Name: "transaction.version", MaxVersionLevel: level, MinVersionLevel: level}}
		}
	}
	req.Respond(&netio.Response{Parts: []netio.Part{{B: resp.AppendTo(nil)}}})
}
