package engine

// Fetch (key 1), v4-v18.
//
// Each partition returns whole batches from the one holding the fetch
// offset, up to partition_max_bytes and the request's max_bytes, and at
// least one batch for the first partition with data even if it is larger
// (as Kafka does), so consumers never stall on a big batch. When fewer than
// min_bytes are available the fetch parks, without holding the connection's
// worker, until an append to one of its partitions or max_wait_ms. Record
// bytes are handed to netio as file ranges of the segment (zero copy).
// Fetch sessions (KIP-227) are not yet kept: session id 0 tells clients to
// send full fetches. read_committed reads up to the high watermark, which is
// also the last stable offset while transactions are not implemented.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(1, 4, 18, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.handleFetch(req, kreq.(*kmsg.FetchRequest))
	})
}

// maxFetchWait bounds max_wait_ms so a hostile value cannot park forever.
const maxFetchWait = 5 * time.Minute

type fetchState struct {
	r      *kmsg.FetchRequest
	topics []fetchTopicOut
	parts  [][]*partition // resolved partitions, nil on error
}

func (b *Broker) handleFetch(req *netio.Request, r *kmsg.FetchRequest) {
	if r.Version >= 7 && r.SessionID != 0 {
		// We never hand out sessions, so a client naming one is confused;
		// this error makes it start over with a full fetch.
		req.Respond(&netio.Response{HeaderV1: r.Version >= 12,
			Parts: encodeFetchResponse(r.Version, kerr.FetchSessionIDNotFound.Code, 0, false, nil)})
		return
	}
	fs := &fetchState{r: r}
	fs.topics = make([]fetchTopicOut, len(r.Topics))
	fs.parts = make([][]*partition, len(r.Topics))
	for ti, rt := range r.Topics {
		var t *topic
		if r.Version >= 13 {
			t = b.topicByID(rt.TopicID)
		} else {
			t = b.topic(rt.Topic)
		}
		out := &fs.topics[ti]
		out.name, out.id = rt.Topic, rt.TopicID
		out.parts = make([]fetchPartOut, len(rt.Partitions))
		fs.parts[ti] = make([]*partition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			po := &out.parts[pi]
			po.partition = rp.Partition
			po.highWatermark, po.lastStable, po.logStart = -1, -1, -1
			switch {
			case t == nil && r.Version >= 13:
				po.errCode = kerr.UnknownTopicID.Code
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts):
				po.errCode = kerr.UnknownTopicOrPartition.Code
			case r.Version >= 9 && rp.CurrentLeaderEpoch > 0:
				// samsa's leader epoch is 0; a newer one is from elsewhere.
				po.errCode = kerr.UnknownLeaderEpoch.Code
			default:
				fs.parts[ti][pi] = t.parts[rp.Partition]
			}
		}
	}
	total, hasErr := b.readFetch(fs)
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	if hasErr || total >= int64(r.MinBytes) || wait <= 0 || b.stopping() {
		b.respondFetch(req, fs)
		return
	}
	// Park: wake on any append to a fetched partition, or at max_wait.
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.parkFetch(req, fs, min(wait, maxFetchWait))
	}()
}

func (b *Broker) stopping() bool {
	select {
	case <-b.quit:
		return true
	default:
		return false
	}
}

func (b *Broker) parkFetch(req *netio.Request, fs *fetchState, wait time.Duration) {
	wake := make(chan struct{}, 1)
	var logs []*partition
	for _, ps := range fs.parts {
		for _, p := range ps {
			if p != nil {
				p.log.Watch(wake)
				logs = append(logs, p)
			}
		}
	}
	defer func() {
		for _, p := range logs {
			p.log.Unwatch(wake)
		}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Re-read after registering, so an append racing with the first
		// read is not missed.
		fs.release()
		total, hasErr := b.readFetch(fs)
		if hasErr || total >= int64(fs.r.MinBytes) {
			break
		}
		select {
		case <-wake:
			continue
		case <-timer.C:
		case <-b.quit:
		}
		fs.release()
		b.readFetch(fs)
		break
	}
	b.respondFetch(req, fs)
}

func (fs *fetchState) release() {
	for ti := range fs.topics {
		for pi := range fs.topics[ti].parts {
			fs.topics[ti].parts[pi].slice.Release()
			fs.topics[ti].parts[pi].slice.Len = 0
		}
	}
}

// readFetch fills every resolved partition's slice and returns the bytes
// found and whether any partition failed.
func (b *Broker) readFetch(fs *fetchState) (total int64, hasErr bool) {
	r := fs.r
	maxBytes := int64(r.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1
	}
	for ti, rt := range r.Topics {
		for pi, rp := range rt.Partitions {
			po := &fs.topics[ti].parts[pi]
			p := fs.parts[ti][pi]
			if p == nil {
				hasErr = true
				continue
			}
			l := p.log
			po.errCode = 0
			po.highWatermark = l.EndOffset()
			po.lastStable = po.highWatermark
			po.logStart = l.StartOffset()
			if rp.FetchOffset < po.logStart || rp.FetchOffset > po.highWatermark {
				po.errCode = kerr.OffsetOutOfRange.Code
				hasErr = true
				continue
			}
			limit := min(int64(rp.PartitionMaxBytes), maxBytes-total)
			if limit <= 0 && total > 0 {
				continue
			}
			sl, err := l.Read(rp.FetchOffset, po.highWatermark, max(limit, 1))
			if err != nil {
				po.errCode = errCode(err)
				hasErr = true
				b.logger.Warn("fetch read failed", "topic", p.t.name, "partition", p.idx, "offset", rp.FetchOffset, "err", err)
				continue
			}
			if sl.Len == 0 {
				sl.Release()
				continue
			}
			if total > 0 && sl.Len > limit {
				sl.Release() // only the first partition with data may overshoot
				continue
			}
			po.slice = sl
			total += sl.Len
		}
	}
	return total, hasErr
}

func (b *Broker) respondFetch(req *netio.Request, fs *fetchState) {
	r := fs.r
	parts := encodeFetchResponse(r.Version, 0, 0, r.IsolationLevel == 1, fs.topics)
	req.Respond(&netio.Response{HeaderV1: r.Version >= 12, Parts: parts, Release: fs.release})
}
