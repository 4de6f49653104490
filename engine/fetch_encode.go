package engine

import (
	"encoding/binary"

	"samsa/netio"
	"samsa/segment"
)

// fetchPartOut is one partition of a Fetch response. Its records are a
// segment slice, so the encoder can hand file ranges to netio (zero copy).
type fetchPartOut struct {
	partition     int32
	errCode       int16
	highWatermark int64
	lastStable    int64
	logStart      int64
	slice         segment.Slice // Len 0 = no records
	// aborted (read_committed): transactions the slice may hold records of.
	aborted []segment.AbortedTxn
	// diverging, v12+: the consumer's last fetched epoch ended before its
	// fetch offset here (a leader change cut its tail); it must truncate
	// to divEnd (KIP-320 via Fetch's DivergingEpoch).
	diverging bool
	divEpoch  int32
	divEnd    int64
}

type fetchTopicOut struct {
	name  string
	id    [16]byte
	parts []fetchPartOut
}

// encodeFetchResponse frames a Fetch response body (v4-v18) as netio parts:
// encoded fields as byte parts and record bytes as file parts. kmsg cannot
// do this without copying records into memory, which is why the fetch path
// is hand-written (tests compare it with kmsg's encoding).
func encodeFetchResponse(version int16, errCode int16, sessionID int32, readCommitted bool, topics []fetchTopicOut) []netio.Part {
	flex := version >= 12
	be := binary.BigEndian
	buf := make([]byte, 0, 64+len(topics)*64)
	type cut struct {
		end int // bytes before the file part
		sl  *segment.Slice
	}
	var cuts []cut
	arrayLen := func(n int) {
		if flex {
			buf = binary.AppendUvarint(buf, uint64(n)+1)
		} else {
			buf = be.AppendUint32(buf, uint32(n))
		}
	}
	buf = be.AppendUint32(buf, 0) // throttle_time_ms
	if version >= 7 {
		buf = be.AppendUint16(buf, uint16(errCode))
		buf = be.AppendUint32(buf, uint32(sessionID))
	}
	arrayLen(len(topics))
	for ti := range topics {
		t := &topics[ti]
		if version >= 13 {
			buf = append(buf, t.id[:]...)
		} else if flex {
			buf = binary.AppendUvarint(buf, uint64(len(t.name))+1)
			buf = append(buf, t.name...)
		} else {
			buf = be.AppendUint16(buf, uint16(len(t.name)))
			buf = append(buf, t.name...)
		}
		arrayLen(len(t.parts))
		for pi := range t.parts {
			p := &t.parts[pi]
			buf = be.AppendUint32(buf, uint32(p.partition))
			buf = be.AppendUint16(buf, uint16(p.errCode))
			buf = be.AppendUint64(buf, uint64(p.highWatermark))
			buf = be.AppendUint64(buf, uint64(p.lastStable))
			if version >= 5 {
				buf = be.AppendUint64(buf, uint64(p.logStart))
			}
			// Aborted transactions: null unless read_committed.
			switch {
			case !readCommitted && flex:
				buf = append(buf, 0)
			case !readCommitted:
				buf = be.AppendUint32(buf, 0xffffffff)
			default:
				arrayLen(len(p.aborted))
				for _, a := range p.aborted {
					buf = be.AppendUint64(buf, uint64(a.ProducerID))
					buf = be.AppendUint64(buf, uint64(a.FirstOffset))
					if flex {
						buf = append(buf, 0) // its tags
					}
				}
			}
			if version >= 11 {
				buf = be.AppendUint32(buf, 0xffffffff) // preferred_read_replica -1
			}
			n := p.slice.Len
			if flex {
				buf = binary.AppendUvarint(buf, uint64(n)+1)
			} else {
				buf = be.AppendUint32(buf, uint32(n))
			}
			if n > 0 {
				cuts = append(cuts, cut{end: len(buf), sl: &p.slice})
			}
			if flex && p.diverging {
				buf = append(buf, 1, 0, 13) // one tag: 0, DivergingEpoch, 13 bytes
				buf = be.AppendUint32(buf, uint32(p.divEpoch))
				buf = be.AppendUint64(buf, uint64(p.divEnd))
				buf = append(buf, 0) // its tags
			} else if flex {
				buf = append(buf, 0) // partition tags
			}
		}
		if flex {
			buf = append(buf, 0) // topic tags
		}
	}
	if flex {
		buf = append(buf, 0) // response tags
	}
	parts := make([]netio.Part, 0, 2*len(cuts)+1)
	start := 0
	for _, c := range cuts {
		parts = append(parts, netio.Part{B: buf[start:c.end]})
		parts = append(parts, netio.Part{File: c.sl.File(), Off: c.sl.Pos, Len: c.sl.Len})
		start = c.end
	}
	return append(parts, netio.Part{B: buf[start:]})
}
