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
// Fetch sessions (KIP-227, see fetch_session.go) let steady consumers send
// only what changed and get only partitions with news. read_committed
// (isolation level 1) reads up to the last stable offset (the first offset
// of the oldest open transaction, segment/txn.go) and lists the aborted
// transactions whose records the returned batches may hold, exactly for
// the bytes sent, so the client drops them; the records themselves still
// go by sendfile, as Kafka's clients filter them.

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/netio"
)

func init() {
	regKey(kmsg.Fetch.Int16(), 4, 18, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		b.handleFetch(req, kreq.(*kmsg.FetchRequest))
	})
}

// maxFetchWait bounds max_wait_ms so a hostile value cannot park forever.
const maxFetchWait = 5 * time.Minute

// fetchItem is one partition a fetch reads, in response order.
type fetchItem struct {
	key        sessKey
	p          *partition // nil: out.errCode says why
	resolveErr int16
	offset     int64
	maxBytes   int32
	sp         *sessionPart // the session's entry, in a session
	out        fetchPartOut
	lastEpoch  int32 // the epoch of the last batch the client fetched, -1 if not sent
	logStart   int64 // a replica fetch: the standby's log start offset
}

type fetchState struct {
	r           *kmsg.FetchRequest
	items       []fetchItem
	sess        *fetchSession // nil: sessionless
	incremental bool          // respond with changed partitions only
	replica     bool          // the standby's fetch: reads up to the log end
	reuse       bool          // items go back to sess once answered
	// quotaRate, when positive, is the client's consumer_byte_rate,
	// resolved once per fetch (its sensor in quotaSensor). It caps the
	// bytes read at a second's worth, what the quota holds when the
	// client is not throttled (Kafka caps a fetch at its quota window's
	// worth).
	quotaRate   float64
	quotaSensor quotaSensor
	// mayRead, with an authorizer, reports whether the client may READ
	// a topic; the others get TOPIC_AUTHORIZATION_FAILED.
	mayRead func(topic string) bool
}

func (b *Broker) handleFetch(req *netio.Request, r *kmsg.FetchRequest) {
	fs := &fetchState{r: r}
	if b.authz != nil {
		fs.mayRead = func(topic string) bool { return b.allowed(req, acl.OpRead, acl.ResourceTopic, topic) }
	}
	replicaID := r.ReplicaID
	if r.Version >= 15 {
		replicaID = r.ReplicaState.ID
	}
	if replicaID >= 0 {
		b.handleReplicaFetch(req, fs, replicaID)
		return
	}
	if errCode := b.fetchSession(fs); errCode != 0 {
		req.Respond(&netio.Response{HeaderV1: r.Version >= 12,
			Parts: encodeFetchResponse(r.Version, errCode, 0, false, nil)})
		return
	}
	if rate, sensor, ok := b.quotaOf(req, quotaConsume); ok {
		fs.quotaRate, fs.quotaSensor = rate, sensor
	}
	b.serveFetch(req, fs)
}

// serveFetch reads the resolved items and answers, at once or after
// parking for min_bytes.
func (b *Broker) serveFetch(req *netio.Request, fs *fetchState) {
	r := fs.r
	total, hasErr := b.readFetch(fs)
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	if hasErr || total >= int64(r.MinBytes) || wait <= 0 || b.stopping() || req.Conn.Closed() {
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

// fetchKey names a requested partition the way the request's version does.
func fetchKey(version int16, name string, id [16]byte, idx int32) sessKey {
	if version >= 13 {
		return sessKey{id: id, idx: idx}
	}
	return sessKey{name: name, idx: idx}
}

// fetchSession applies the request's session fields (v7+) and fills
// fs.items: the request's partitions for a full fetch, the session's for an
// incremental one. A non-zero result is a top-level error.
func (b *Broker) fetchSession(fs *fetchState) int16 {
	r := fs.r
	if r.Version >= 7 && r.SessionEpoch < -1 {
		return kerr.InvalidFetchSessionEpoch.Code
	}
	full := r.Version < 7 || r.SessionEpoch <= 0
	if full {
		if r.Version >= 7 && r.SessionID != 0 {
			b.sessions.remove(r.SessionID) // epoch -1 closes, 0 replaces
		}
		for _, rt := range r.Topics {
			for _, rp := range rt.Partitions {
				fs.items = append(fs.items, fetchItem{key: fetchKey(r.Version, rt.Topic, rt.TopicID, rp.Partition),
					offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes})
			}
		}
		if r.Version >= 7 && r.SessionEpoch == 0 {
			if s := b.sessions.create(time.Now()); s != nil {
				s.mu.Lock()
				s.topicIDs = r.Version >= 13
				for i := range fs.items {
					it := &fs.items[i]
					s.upsertLocked(it.key, it.offset, it.maxBytes)
					it.sp = s.index[it.key]
				}
				s.mu.Unlock()
				fs.sess = s
			}
		}
		b.resolveFetch(fs)
		return 0
	}
	s := b.sessions.get(r.SessionID)
	if s == nil {
		return kerr.FetchSessionIDNotFound.Code
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.SessionEpoch != s.epoch {
		return kerr.InvalidFetchSessionEpoch.Code
	}
	if s.topicIDs != (r.Version >= 13) {
		// Opened naming topics one way, used the other (v12 vs v13).
		return kerr.FetchSessionTopicIDError.Code
	}
	s.epoch = nextEpoch(s.epoch)
	s.lastUsed = time.Now()
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			s.upsertLocked(fetchKey(r.Version, rt.Topic, rt.TopicID, rp.Partition), rp.FetchOffset, rp.PartitionMaxBytes)
		}
	}
	for _, ft := range r.ForgottenTopics {
		for _, idx := range ft.Partitions {
			s.forgetLocked(fetchKey(r.Version, ft.Topic, ft.TopicID, idx))
		}
	}
	if len(s.parts) == 0 {
		// As Kafka: a session forgotten down to nothing is closed, and
		// the answer is sessionless and empty.
		b.sessions.remove(s.id)
		return 0
	}
	fs.sess, fs.incremental = s, true
	fs.items = make([]fetchItem, len(s.parts))
	for i, sp := range s.parts {
		fs.items[i] = fetchItem{key: sp.key, offset: sp.offset, maxBytes: sp.maxBytes, sp: sp}
	}
	b.resolveFetch(fs)
	return 0
}

// resolveFetch finds each item's partition.
func (b *Broker) resolveFetch(fs *fetchState) {
	r := fs.r
	epochs := map[sessKey]int32{}
	lastFetched := map[sessKey]int32{}
	if r.Version >= 9 {
		for _, rt := range r.Topics {
			for _, rp := range rt.Partitions {
				key := fetchKey(r.Version, rt.Topic, rt.TopicID, rp.Partition)
				if code := b.pair.CheckEpoch(rp.CurrentLeaderEpoch); code != 0 {
					epochs[key] = int32(code)
				}
				if r.Version >= 12 && rp.LastFetchedEpoch >= 0 {
					lastFetched[key] = rp.LastFetchedEpoch
				}
			}
		}
	}
	for i := range fs.items {
		it := &fs.items[i]
		var t *topic
		if r.Version >= 13 {
			t = b.topicByID(it.key.id)
		} else {
			t = b.topic(it.key.name)
		}
		name := it.key.name
		if t != nil {
			name = t.name
		}
		switch {
		case fs.mayRead != nil && (t != nil || r.Version < 13) && !fs.mayRead(name):
			it.resolveErr = kerr.TopicAuthorizationFailed.Code
		case t == nil && r.Version >= 13:
			it.resolveErr = kerr.UnknownTopicID.Code
		case t == nil || it.key.idx < 0 || int(it.key.idx) >= len(t.parts()):
			it.resolveErr = kerr.UnknownTopicOrPartition.Code
		case epochs[it.key] != 0:
			it.resolveErr = int16(epochs[it.key]) // the client's leader epoch is not ours
		case b.pair.IsStandby():
			it.resolveErr = kerr.NotLeaderForPartition.Code
		default:
			it.p = t.parts()[it.key.idx]
		}
		it.out = fetchPartOut{partition: it.key.idx, errCode: it.resolveErr, highWatermark: -1, lastStable: -1, logStart: -1}
		it.lastEpoch = -1
		if e, ok := lastFetched[it.key]; ok {
			it.lastEpoch = e
		}
	}
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
	logs := make([]*partition, 0, len(fs.items))
	for i := range fs.items {
		if p := fs.items[i].p; p != nil {
			p.log.Watch(wake)
			logs = append(logs, p)
		}
	}
	defer func() {
		for _, p := range logs {
			p.log.Unwatch(wake)
		}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	woken := false
	for {
		// Re-read after registering, so an append racing with the first
		// read is not missed.
		fs.release()
		total, hasErr := b.readFetch(fs)
		if hasErr || total >= int64(fs.r.MinBytes) {
			break
		}
		woken = false
		select {
		case <-wake:
			woken = true
			continue
		case <-timer.C:
		case <-b.quit:
		}
		fs.release()
		b.readFetch(fs)
		break
	}
	if woken && b.cfg.Metrics != nil {
		// Answered because records arrived: from the latest wake of a
		// fetched log to here.
		var last int64
		for _, p := range logs {
			last = max(last, p.log.LastWake())
		}
		defer b.cfg.Metrics.observeFetchWake(last)
	}
	b.respondFetch(req, fs)
}

func (fs *fetchState) release() {
	for i := range fs.items {
		fs.items[i].out.slice.Release()
		fs.items[i].out.slice.Len = 0
	}
}

// readFetch fills every resolved partition's slice and returns the bytes
// found and whether any partition failed.
func (b *Broker) readFetch(fs *fetchState) (total int64, hasErr bool) {
	maxBytes := int64(fs.r.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1
	}
	if fs.quotaRate > 0 {
		maxBytes = min(maxBytes, max(1, int64(fs.quotaRate)))
	}
	readCommitted := fs.r.IsolationLevel == 1
	readable := 0
	now := time.Now()
	for i := range fs.items {
		it := &fs.items[i]
		po := &it.out
		p := it.p
		if p == nil {
			// Unknown or not readable: answered with its error, but as in
			// Kafka (its "erroneous" partitions) it does not cut short
			// the wait for the others, or a consumer still assigned a
			// deleted topic would spin.
			continue
		}
		readable++
		l := p.log
		po.errCode = 0
		po.highWatermark = p.replica.HighWatermarkAt(now)
		po.lastStable = l.LastStableOffset(po.highWatermark)
		po.logStart = l.StartOffset()
		po.aborted = po.aborted[:0]
		// Offsets up to the log end are valid (Kafka answers empty between
		// the high watermark and the log end); consumers read only below
		// the high watermark, the standby up to the log end.
		leo := l.EndOffset()
		upTo := po.highWatermark
		if fs.replica {
			upTo = leo
		} else if readCommitted {
			upTo = po.lastStable
		}
		if it.lastEpoch >= 0 {
			// KIP-320: did the epoch of the client's last batch end before
			// its fetch offset here? Then its tail is not ours: tell it
			// where to truncate, send nothing.
			if ep, end := l.EndOffsetForEpoch(it.lastEpoch); ep >= 0 && (ep < it.lastEpoch || end < it.offset) {
				po.diverging, po.divEpoch, po.divEnd = true, ep, end
				hasErr = true // answer now
				continue
			}
		}
		if it.offset < po.logStart || it.offset > leo {
			// Kafka's answer to a consumer's out-of-range fetch carries
			// -1 for the offsets (handleOffsetOutOfRangeError); the
			// standby's keeps the log start it resets to.
			po.errCode = kerr.OffsetOutOfRange.Code
			if !fs.replica {
				po.highWatermark, po.lastStable, po.logStart = -1, -1, -1
			}
			hasErr = true
			continue
		}
		if it.offset >= upTo {
			continue
		}
		limit := min(int64(it.maxBytes), maxBytes-total)
		if limit <= 0 && total > 0 {
			continue
		}
		sl, err := l.Read(it.offset, upTo, max(limit, 1))
		if err != nil {
			po.errCode = errCode(err)
			hasErr = true
			b.logWarnLimited(&b.ioLog, "fetch read failed", "topic", p.t.name, "partition", p.idx, "offset", it.offset, "err", err)
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
		if readCommitted {
			po.aborted = l.AbortedTxns(po.aborted, it.offset, sl.NextOffset)
		}
		total += sl.Len
		if fs.replica {
			p.t.stats.replicaBytesOut.Add(sl.Len)
		} else {
			p.t.stats.bytesOut.Add(sl.Len)
			p.t.stats.recordsOut.Add(sl.NextOffset - max(sl.FirstOffset, it.offset))
		}
	}
	if readable == 0 {
		hasErr = true // nothing to wait for: answer now
	}
	return total, hasErr
}

// respondFetch answers with every item (full fetch) or the items with
// something new (incremental), and records in the session what it told
// the client.
func (b *Broker) respondFetch(req *netio.Request, fs *fetchState) {
	r := fs.r
	var topics []fetchTopicOut
	var returned map[*sessionPart]bool
	if fs.sess != nil {
		fs.sess.mu.Lock()
	}
	for i := range fs.items {
		it := &fs.items[i]
		po := &it.out
		if sp := it.sp; sp != nil {
			changed := po.slice.Len > 0 || po.errCode != 0 || po.diverging || po.highWatermark != sp.hwm || po.lastStable != sp.lso || po.logStart != sp.logStart
			if fs.incremental && !changed {
				continue
			}
			sp.hwm, sp.lso, sp.logStart = po.highWatermark, po.lastStable, po.logStart
			if po.errCode != 0 {
				sp.hwm = -1 // report the partition again once it recovers
			}
			if po.slice.Len > 0 {
				if returned == nil {
					returned = map[*sessionPart]bool{}
				}
				returned[sp] = true
			}
		}
		if n := len(topics); n == 0 || topics[n-1].name != it.key.name || topics[n-1].id != it.key.id {
			topics = append(topics, fetchTopicOut{name: it.key.name, id: it.key.id})
		}
		t := &topics[len(topics)-1]
		t.parts = append(t.parts, *po)
	}
	var sessionID int32
	if fs.sess != nil {
		fs.sess.rotateLocked(returned)
		fs.sess.mu.Unlock()
		sessionID = fs.sess.id
	}
	parts := encodeFetchResponse(r.Version, 0, sessionID, r.IsolationLevel == 1, topics)
	resp := &netio.Response{HeaderV1: r.Version >= 12, Parts: parts, Release: fs.release}
	if fs.replica {
		if fs.reuse {
			resp.Release = func() {
				fs.release()
				fs.sess.giveItems(fs.items)
			}
		}
		req.Respond(resp) // the standby's fetches are not throttled
		return
	}
	// consumer_byte_rate: the bytes read count against the quota; over
	// it, the answer says for how long the client is throttled
	// (throttle_time_ms, the response's first field), as it does for
	// request_percentage.
	var d time.Duration
	if rate, sensor := fs.quotaRate, fs.quotaSensor; rate > 0 {
		var n int64
		for i := range fs.items {
			n += fs.items[i].out.slice.Len
		}
		d = b.quotaUse.record(sensor, rate, n, time.Now(), 0)
		if d > 0 && float64(n) <= rate {
			// As Kafka: a throttled fetch is answered with no records,
			// and its bytes are taken back off the quota; the client
			// reads them once its throttle is over. (A fetch larger
			// than the quota holds, one batch over it, goes out:
			// refused, it would be refused again each time.)
			b.quotaUse.unrecord(sensor, rate, n)
			fs.release()
			parts = encodeFetchResponse(r.Version, 0, sessionID, r.IsolationLevel == 1, nil)
			resp = &netio.Response{HeaderV1: r.Version >= 12, Parts: parts}
		}
	}
	throttle := max(d, requestThrottle(req))
	if throttle > 0 && r.Version >= 1 && len(parts) > 0 && len(parts[0].B) >= 4 { // v0 has no throttle_time_ms
		binary.BigEndian.PutUint32(parts[0].B, uint32(min(throttle/time.Millisecond, math.MaxInt32)))
	}
	if d <= 0 {
		req.Respond(resp)
		return
	}
	if r.Version < 8 {
		// Before KIP-219 the client would not hold off by itself: its
		// answer waits instead.
		b.later(d, func() { req.Respond(resp) })
		return
	}
	b.mute(req, d)
	req.Respond(resp)
}

// handleReplicaFetch serves the standby's fetches (replication.go): every
// log, read up to its end, each fetch offset recorded as acknowledged.
// The standby keeps a fetch session (replicaSession), as Kafka's
// followers do.
func (b *Broker) handleReplicaFetch(req *netio.Request, fs *fetchState, replicaID int32) {
	r := fs.r
	fs.replica = true
	exemptFromRequestQuota(req) // as Kafka: replication is not throttled
	var deny int16
	switch {
	case !b.allowedCluster(req, acl.OpClusterAction):
		// Kafka's answer to a follower without ClusterAction.
		deny = kerr.TopicAuthorizationFailed.Code
	case replicaID != b.cfg.Replication.PeerID:
		deny = kerr.UnknownServerError.Code
	}
	if deny != 0 {
		replicaRequestItems(fs, nil) // and the standby's session stays as it is
	} else if code := b.replicaSession(fs); code != 0 {
		req.Respond(&netio.Response{HeaderV1: r.Version >= 12,
			Parts: encodeFetchResponse(r.Version, code, 0, false, nil)})
		return
	}
	now := time.Now()
	for i := range fs.items {
		it := &fs.items[i]
		it.out = fetchPartOut{partition: it.key.idx, highWatermark: -1, lastStable: -1, logStart: -1}
		switch {
		case deny != 0:
			it.out.errCode = deny
		case !b.pair.IsPrimary():
			it.out.errCode = kerr.NotLeaderForPartition.Code
		default:
			if it.p = b.replicaPartition(r.Version, it.key); it.p == nil {
				it.out.errCode = kerr.UnknownTopicOrPartition.Code
				if r.Version >= 13 {
					it.out.errCode = kerr.UnknownTopicID.Code
				}
				continue
			}
			if it.offset >= it.p.log.StartOffset() && it.offset <= it.p.log.EndOffset() {
				it.p.replica.FetchedAt(it.offset, it.logStart, now)
			}
		}
	}
	b.serveFetch(req, fs)
}

// replicaRequestItems fills fs.items with the partitions a replica fetch
// lists or, with s (whose lock is held), updates s with them.
func replicaRequestItems(fs *fetchState, s *fetchSession) {
	r := fs.r
	n := 0
	for _, rt := range r.Topics {
		n += len(rt.Partitions)
	}
	if s == nil {
		fs.items = slices.Grow(fs.items[:0], n) // no growing by appends
	}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			key := fetchKey(r.Version, rt.Topic, rt.TopicID, rp.Partition)
			last := int32(-1)
			if r.Version >= 12 {
				last = rp.LastFetchedEpoch
			}
			if s != nil {
				s.upsertLocked(key, rp.FetchOffset, rp.PartitionMaxBytes)
				sp := s.index[key]
				sp.followerStart, sp.followerEpoch = rp.LogStartOffset, last
				continue
			}
			fs.items = append(fs.items, fetchItem{key: key, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
				logStart: rp.LogStartOffset, lastEpoch: last})
		}
	}
}

// replicaSession fills fs.items for a replica fetch. Sessionless (epoch
// -1, or before v7), the items are the request's partitions. Epoch 0 opens
// the standby's session with them, replacing the one it had; a later
// epoch updates the session with the partitions the request lists (those
// whose fetch offset or log start moved, and new ones) and drops the
// forgotten ones, and the items are all of the session's partitions: the
// answer then carries only those with something new (KIP-227, as Kafka's
// followers use it). Without a session, every fetch and its answer listed
// every log, on both nodes, at every round trip: with 500 idle partitions
// beside a 10,000 records/s acks=all stream, the pair's e2e p50 went from
// 1.0 to 4.4 ms (docs/BENCHMARKS.md). There is one slot, as there is one
// standby: a full fetch opening a session replaces the one there, so a
// late fetch from a connection that died costs the live standby a full
// fetch (it gets FETCH_SESSION_ID_NOT_FOUND and opens a new session),
// never data. A non-zero result is a top-level error.
func (b *Broker) replicaSession(fs *fetchState) int16 {
	r := fs.r
	fromSession := func(s *fetchSession) {
		fs.items = s.takeItems(len(s.parts))
		fs.reuse = true
		for i, sp := range s.parts {
			fs.items[i] = fetchItem{key: sp.key, offset: sp.offset, maxBytes: sp.maxBytes, sp: sp,
				logStart: sp.followerStart, lastEpoch: sp.followerEpoch}
		}
		fs.sess = s
	}
	b.replicaSessMu.Lock()
	defer b.replicaSessMu.Unlock()
	switch {
	case r.Version < 7 || r.SessionEpoch == -1:
		if r.Version >= 7 && r.SessionID != 0 && b.replicaSess != nil && b.replicaSess.id == r.SessionID {
			b.replicaSess = nil // epoch -1 closes the session
		}
		replicaRequestItems(fs, nil)
		return 0
	case r.SessionEpoch < -1:
		return kerr.InvalidFetchSessionEpoch.Code
	case r.SessionEpoch == 0:
		id := int32(0)
		for id == 0 || b.replicaSess != nil && id == b.replicaSess.id {
			id = rand.Int32()
		}
		s := newFetchSession(id, time.Now())
		s.topicIDs = r.Version >= 13
		s.mu.Lock()
		replicaRequestItems(fs, s)
		fromSession(s)
		s.mu.Unlock()
		b.replicaSess = s
		return 0
	}
	s := b.replicaSess
	if s == nil || s.id != r.SessionID {
		return kerr.FetchSessionIDNotFound.Code
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.SessionEpoch != s.epoch:
		return kerr.InvalidFetchSessionEpoch.Code
	case s.topicIDs != (r.Version >= 13):
		return kerr.FetchSessionTopicIDError.Code
	}
	s.epoch = nextEpoch(s.epoch)
	s.lastUsed = time.Now()
	replicaRequestItems(fs, s)
	for _, ft := range r.ForgottenTopics {
		for _, idx := range ft.Partitions {
			s.forgetLocked(fetchKey(r.Version, ft.Topic, ft.TopicID, idx))
		}
	}
	fromSession(s)
	fs.incremental = true
	return 0
}

// replicaPartition resolves a partition of a replica fetch, the metadata
// log included.
func (b *Broker) replicaPartition(version int16, key sessKey) *partition {
	if key.idx == 0 && (version < 13 && key.name == metadataLogTopic || version >= 13 && key.id == metadataLogID) {
		return b.metaPart
	}
	var t *topic
	if version >= 13 {
		t = b.topicByID(key.id)
	} else {
		t = b.topic(key.name)
	}
	if t == nil || key.idx < 0 || int(key.idx) >= len(t.parts()) {
		return nil
	}
	return t.parts()[key.idx]
}
