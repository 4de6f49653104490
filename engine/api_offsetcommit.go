package engine

// OffsetCommit (key 8), v0-v9.
//
// Creates __consumer_offsets on first use, as Kafka does. engine/group
// checks the committer: a classic group's member gives its member id and
// generation, a KIP-848 member its current member epoch or the one before;
// generation -1 without a member id commits for an empty group (standalone
// consumers, admin tools) and creates it. Metadata longer than
// offset.metadata.max.bytes gets OFFSET_METADATA_TOO_LARGE, a partition that
// does not exist UNKNOWN_TOPIC_OR_PARTITION; the leader epoch is kept from
// v6 on. The answer waits until the offsets are in __consumer_offsets and,
// while a standby follows, on the standby too (Kafka's
// offsets.commit.required.acks=-1); when fewer replicas than
// min.insync.replicas are in sync the commit fails with
// COORDINATOR_NOT_AVAILABLE, as Kafka maps NOT_ENOUGH_REPLICAS for commits
// (groupBackend in groups.go). v10 (topic ids instead of names) is not
// advertised.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.OffsetCommit.Int16(), 0, 9, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		r, respond, ok := b.authzOffsetCommit(req, kreq.(*kmsg.OffsetCommitRequest), responder(req))
		if !ok {
			return
		}
		b.ensureOffsetsTopic()
		b.groups.OffsetCommit(r, respond)
	})
}
