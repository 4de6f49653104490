package engine

// DescribeGroups (key 15), v0-v5.
//
// Each group's state, protocol type and members; the chosen protocol,
// member metadata and assignments only while the group is Stable, as Kafka
// does. A group that does not exist is reported "Dead" without an error. A
// KIP-848 group is described as Kafka describes it to classic clients:
// protocol type "consumer", the assignor as protocol, each assignment in the
// classic consumer encoding. Authorized operations (v3+) are READ, DELETE
// and DESCRIBE: there is no authorizer. v6 (GROUP_ID_NOT_FOUND for unknown
// groups, which engine/group already answers) is not advertised.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeGroups.Int16(), 0, 5, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r := kreq.(*kmsg.DescribeGroupsRequest)
		b.groups.DescribeGroups(r, b.authzDescribeGroups(req, r, responder(req)))
	})
}
