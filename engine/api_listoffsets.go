package engine

// ListOffsets (key 2), v0-v11.
//
// Timestamps: -2 earliest (log start), -1 latest (the high watermark, or
// for read_committed (v2+) the last stable offset), -3 the record with the
// largest timestamp (v7+), -4 earliest local (v8+, = earliest: no tiered
// storage), -5 latest tiered (v9+, none: offset -1), and t >= 0 the first
// record with timestamp >= t (offset -1 if none). As Kafka, lookups by time
// find nothing at or past the latest offset the isolation level allows.
// v0 answers with the old-style offsets list.
// Leader epoch checks: samsa's epoch is 0.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.ListOffsets.Int16(), 0, 11, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleListOffsets(req, kreq.(*kmsg.ListOffsetsRequest)))
	})
}

func (b *Broker) handleListOffsets(req *netio.Request, r *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := kmsg.NewPtrListOffsetsResponse()
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := b.topic(rt.Topic)
		denied := !b.allowed(req, acl.OpDescribe, acl.ResourceTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			switch {
			case denied:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts()):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case b.pair.IsStandby():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case r.Version >= 4 && b.pair.CheckEpoch(rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = b.pair.CheckEpoch(rp.CurrentLeaderEpoch)
			case listOffsetsUnsupported(rp.Timestamp, r.Version):
				sp.ErrorCode = kerr.UnsupportedVersion.Code
			default:
				b.listOffset(t.parts()[rp.Partition], rp.Timestamp, r.Version >= 2 && r.IsolationLevel == 1, &sp)
				if r.Version == 0 && sp.ErrorCode == 0 {
					if sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
						sp.OldStyleOffsets = []int64{sp.Offset}
					} else {
						sp.OldStyleOffsets = []int64{}
					}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// listOffsetsUnsupported reports a special timestamp the request's
// version does not know (Kafka's isListOffsetsTimestampUnsupported):
// MAX_TIMESTAMP (-3) from v7, EARLIEST_LOCAL (-4) from v8, LATEST_TIERED
// (-5) from v9, EARLIEST_PENDING_UPLOAD (-6) from v11; any other negative
// one never.
func listOffsetsUnsupported(ts int64, version int16) bool {
	switch ts {
	case -1, -2:
		return false
	case -3:
		return version < 7
	case -4:
		return version < 8
	case -5:
		return version < 9
	case -6:
		return version < 11
	}
	return ts < 0
}

func (b *Broker) listOffset(p *partition, ts int64, readCommitted bool, sp *kmsg.ListOffsetsResponseTopicPartition) {
	l := p.log
	sp.LeaderEpoch = b.pair.Epoch()
	// Consumers never see past the high watermark; read_committed ones
	// not past the last stable offset.
	fetchable := p.replica.HighWatermark()
	if readCommitted {
		fetchable = l.LastStableOffset(fetchable)
	}
	switch ts {
	case -2, -4:
		sp.Offset = l.StartOffset()
	case -1:
		sp.Offset = fetchable
	case -5, -6:
		// Nothing is tiered: as Kafka without tiered storage.
		sp.Offset, sp.LeaderEpoch = -1, -1
	case -3:
		off, rts, found, err := l.MaxTimestamp()
		switch {
		case err != nil:
			sp.ErrorCode = errCode(err)
		case found && off < fetchable:
			sp.Offset, sp.Timestamp = off, rts
		}
	default:
		if ts < 0 {
			sp.ErrorCode = kerr.InvalidRequest.Code
			return
		}
		off, rts, found, err := l.OffsetForTime(ts)
		switch {
		case err != nil:
			sp.ErrorCode = errCode(err)
			b.logger.Warn("cannot look up offset by time", "topic", p.t.name, "partition", p.idx, "err", err)
		case found && off < fetchable:
			sp.Offset, sp.Timestamp = off, rts
		}
	}
}
