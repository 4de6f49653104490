package replica

// The standby's side: one goroutine fetches every log from the primary's
// replication listener (replica Fetch v13, replica id = this node) and
// appends the batches as they are, so the standby's logs are
// byte-identical copies. Once records of the metadata log are written the
// catalog applies them: topics created on the primary are created here
// and followed from the next fetch.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"samsa/netio/kclient"
	"samsa/segment"
)

// replicaFetchWait is how long the primary parks a replica fetch that finds
// nothing new.
const replicaFetchWait = 500 * time.Millisecond

// follow runs on a standby until the pair stops or stop is closed.
func (p *Pair) follow(stop chan struct{}) {
	backoff := 100 * time.Millisecond
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return p.stopping()
		}
	}
	for !stopped() {
		err := p.followOnce(stop)
		if stopped() {
			return
		}
		p.logger.Warn("replication from the primary interrupted; retrying", "primary", p.cfg.PeerLink, "err", err, "in", backoff)
		select {
		case <-p.quit:
			return
		case <-stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// followOnce connects to the primary and fetches until an error.
func (p *Pair) followOnce(stop chan struct{}) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if dev := p.cfg.BindDevice; dev != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
			})
			return errors.Join(err, serr)
		}
	}
	// Closing the connection is how a blocked request ends: the goroutines
	// below do it when the pair or the follower stops, and end when
	// followOnce returns.
	ctx, cancel := context.WithCancel(context.Background())
	var closer sync.WaitGroup
	defer func() {
		cancel()
		closer.Wait()
	}()
	closer.Add(1)
	go func() {
		defer closer.Done()
		select {
		case <-p.quit:
			cancel()
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := d.DialContext(ctx, "tcp", p.cfg.PeerLink)
	if err != nil {
		return err
	}
	defer conn.Close()
	closer.Add(1)
	go func() { defer closer.Done(); <-ctx.Done(); conn.Close() }()
	rc := p.conn(p.linkConn(conn))
	if err := p.truncateToLeader(rc); err != nil {
		return fmt.Errorf("cannot check for a divergent tail: %w", err)
	}
	// Records a failed fetch appended but did not get to apply.
	if err := p.cat.ApplyMetadata(); err != nil {
		return err
	}
	p.logger.Info("following the primary", "primary", p.cfg.PeerLink)
	var sess fetchSession // one per connection: the primary's ends with it
	for ctx.Err() == nil {
		req := p.fetchRequest(&sess)
		// The batches of one response are appended before the next
		// request (applyFetch waits for them), so every response can be
		// read into the same buffer.
		sent := time.Now()
		kresp, err := rc.RequestReusing(req, time.Duration(req.MaxWaitMillis)*time.Millisecond+10*time.Second)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.FetchResponse)
		answered := time.Now()
		p.lastFollowed.Store(answered.UnixNano())
		switch resp.ErrorCode {
		case kerr.FetchSessionIDNotFound.Code, kerr.InvalidFetchSessionEpoch.Code, kerr.FetchSessionTopicIDError.Code:
			// The primary lost the session (it restarted, or replaced
			// it): start a new one.
			p.logger.Info("replica fetch session lost; fetching every log again", "primary", p.cfg.PeerLink,
				"err", kerr.ErrorForCode(resp.ErrorCode))
			sess.reset()
			continue
		case 0:
			sess.answered(resp)
		}
		progress, err := p.applyFetch(resp, &sess)
		if err != nil {
			return err
		}
		if p.cfg.ObserveFetch != nil && hasRecords(resp) {
			p.cfg.ObserveFetch(answered.Sub(sent), time.Since(answered))
		}
		if !progress {
			// Only errors came back (the primary answers those at once):
			// do not spin on them.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// fetchSession is the standby's side of its fetch session with the
// primary (KIP-227, as Kafka's followers keep one). The first fetch of a
// connection lists every log and asks for a session; the later ones list
// only the logs whose end or start moved (and new ones), name the logs
// gone since (forgotten), and the primary answers only the logs with
// something new. Without it each fetch and its answer listed every log:
// with hundreds of partitions that was most of both nodes' work at each
// round trip. One goroutine (the follower's) uses it.
type fetchSession struct {
	id, epoch int32 // id 0: none; the next fetch is full and asks for one
	sent      map[sessionKey]*sentLog
	gen       uint32 // marks the logs the fetch being built found
	asked     bool   // the fetch in flight asked for a new session
	// backoff holds logs whose last answer was an error, left out of the
	// fetches (forgotten in the session) until their time: the primary
	// answers an error at once, and one failing log must not make every
	// fetch return at once or pause the others (Kafka's
	// replica.fetch.backoff.ms, per partition).
	backoff map[sessionKey]time.Time
}

// replicaFetchBackoff is how long a log whose fetch failed is left out
// (Kafka's replica.fetch.backoff.ms).
const replicaFetchBackoff = time.Second

// backOff leaves the log out of the fetches for replicaFetchBackoff; the
// metadata log never is (there is always a log to wait on). It reports
// whether the log was left out.
func (s *fetchSession) backOff(l *Log) bool {
	if s == nil || l.ID == MetadataID {
		return false
	}
	if s.backoff == nil {
		s.backoff = map[sessionKey]time.Time{}
	}
	s.backoff[sessionKey{l.ID, l.Index}] = time.Now().Add(replicaFetchBackoff)
	return true
}

type sessionKey struct {
	id  [16]byte
	idx int32
}

// sentLog is what the primary's session holds for a log.
type sentLog struct {
	offset, logStart int64
	gen              uint32
}

// reset forgets the session: the next fetch is full.
func (s *fetchSession) reset() {
	s.id, s.epoch = 0, 0
	clear(s.sent)
}

// answered moves the session on after an answer with no top-level error
// to the fetch fetchRequest built.
func (s *fetchSession) answered(resp *kmsg.FetchResponse) {
	switch {
	case s.asked && resp.SessionID != 0:
		s.id, s.epoch = resp.SessionID, 1
	case s.asked || resp.SessionID != s.id:
		// The primary keeps no session for this node: go on with full
		// fetches, each asking for one again.
		s.reset()
	default:
		s.epoch = nextSessionEpoch(s.epoch)
	}
}

// nextSessionEpoch is the epoch after e, wrapping to 1 as Kafka's does.
func nextSessionEpoch(e int32) int32 {
	if e == 0x7fffffff {
		return 1
	}
	return e + 1
}

// fetchRequest asks for every log from its end: all of them in a full
// fetch, those that moved in an incremental one (s).
func (p *Pair) fetchRequest(s *fetchSession) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = 13 // topic ids: a topic deleted and created again is not mistaken for the old one
	r.ReplicaID = p.nodeID
	r.MaxWaitMillis = int32(replicaFetchWait.Milliseconds())
	r.MinBytes = 1
	r.MaxBytes = p.cfg.fetchResponseMaxBytes()
	full := s.id == 0
	s.asked = full
	r.SessionID, r.SessionEpoch = s.id, s.epoch
	if full {
		clear(s.sent)
		r.SessionEpoch = 0 // a full fetch that opens a session
	}
	if s.sent == nil {
		s.sent = map[sessionKey]*sentLog{}
	}
	s.gen++
	now := time.Now()
	for _, l := range p.cat.Logs() {
		k := sessionKey{l.ID, l.Index}
		if until, ok := s.backoff[k]; ok {
			if now.Before(until) {
				continue // left out: forgotten below if the session has it
			}
			delete(s.backoff, k)
		}
		end, start := l.Seg.EndOffset(), l.Seg.StartOffset()
		sl := s.sent[k]
		if sl == nil {
			sl = &sentLog{offset: -1}
			s.sent[k] = sl
		}
		sl.gen = s.gen
		if sl.offset == end && sl.logStart == start {
			continue // the primary's session has it as it is
		}
		sl.offset, sl.logStart = end, start
		n := len(r.Topics)
		if n == 0 || r.Topics[n-1].TopicID != l.ID {
			t := kmsg.NewFetchRequestTopic()
			t.TopicID = l.ID
			r.Topics = append(r.Topics, t)
			n++
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = l.Index
		rp.FetchOffset = end
		rp.LogStartOffset = start
		rp.PartitionMaxBytes = p.cfg.fetchMaxBytes()
		r.Topics[n-1].Partitions = append(r.Topics[n-1].Partitions, rp)
	}
	for k, sl := range s.sent {
		if sl.gen == s.gen {
			continue
		}
		// A log this node no longer has (its topic deleted), or one
		// backing off.
		delete(s.sent, k)
		n := len(r.ForgottenTopics)
		if n == 0 || r.ForgottenTopics[n-1].TopicID != k.id {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.TopicID = k.id
			r.ForgottenTopics = append(r.ForgottenTopics, ft)
			n++
		}
		r.ForgottenTopics[n-1].Partitions = append(r.ForgottenTopics[n-1].Partitions, k.idx)
	}
	return r
}

// hasRecords reports whether a fetch answer carried record batches.
func hasRecords(resp *kmsg.FetchResponse) bool {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if len(p.RecordBatches) > 0 {
				return true
			}
		}
	}
	return false
}

// applyFetch appends what the primary sent and waits until it is written
// (and, with standby_fsync, fsynced), so the next fetch acknowledges only
// what this node holds. The appends take the response's batches as they
// are, without a copy: it returns only once every append it started is
// done with them, errors included. progress is false when every partition
// came back with an error.
// A log that failed (a partition error, or this disk full for a user
// log) backs off in sess (nil: none); progress is false only when every
// partition of the answer failed and one of them could not back off.
func (p *Pair) applyFetch(resp *kmsg.FetchResponse, sess *fetchSession) (progress bool, _ error) {
	if resp.ErrorCode != 0 {
		return false, fmt.Errorf("replica fetch: %w", kerr.ErrorForCode(resp.ErrorCode))
	}
	errs, parts, backedOff := 0, 0, 0
	fail := func(rl *Log) {
		errs++
		if sess.backOff(rl) {
			backedOff++
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var errMu sync.Mutex
	var firstErr error
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	metaAppended := false
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			parts++
			rl := p.cat.LogByID(rt.TopicID, rp.Partition)
			if rl == nil {
				continue // created by a metadata record not applied yet
			}
			l := rl.Seg
			switch {
			case rp.ErrorCode == kerr.UnknownTopicOrPartition.Code, rp.ErrorCode == kerr.UnknownTopicID.Code:
				// Deleted on the primary; the metadata log says so. Not
				// counted as an error: in a session the primary names the
				// partition in each answer until this node forgets it, and
				// an answer that names only such partitions (max wait over,
				// nothing new) must not make this node pause.
				continue
			}
			switch {
			case rp.ErrorCode == kerr.OffsetOutOfRange.Code && rp.LogStartOffset > l.EndOffset():
				// All this copy holds is gone from the primary (retention):
				// start again where the primary's log starts.
				if err := l.ResetTo(rp.LogStartOffset); err != nil {
					return false, err
				}
				continue
			case rp.ErrorCode == kerr.OffsetOutOfRange.Code:
				// Past the primary's end: a tail it does not have,
				// written where the truncation on connecting could not
				// see it. Connect again, which truncates first.
				return false, fmt.Errorf("replica fetch: %s-%d: this copy ends at %d, past the primary's log: %w",
					rl.Topic, rp.Partition, l.EndOffset(), kerr.ErrorForCode(rp.ErrorCode))
			case rp.ErrorCode != 0:
				p.logger.Warn("replica fetch partition error", "topic", rl.Topic, "partition", rp.Partition,
					"err", kerr.ErrorForCode(rp.ErrorCode), "log_end", l.EndOffset())
				fail(rl)
				continue
			}
			// What the primary has committed: this node may only promote
			// itself automatically when it holds at least that.
			rl.observePrimaryHWM(rp.HighWatermark)
		batches:
			for batches := rp.RecordBatches; len(batches) > 0; {
				h, err := segment.ParseBatchHeader(batches)
				if err != nil || h.Size() > int64(len(batches)) {
					break // a partial batch at the end of the response
				}
				batch := batches[:h.Size():h.Size()]
				batches = batches[h.Size():]
				if segment.BatchCRC(batch) != h.CRC {
					return false, fmt.Errorf("replica fetch: %s-%d: batch at %d fails its CRC", rl.Topic, rp.Partition, h.BaseOffset)
				}
				if h.LastOffset() < l.EndOffset() {
					continue // already held
				}
				if h.BaseOffset < l.EndOffset() && l.StartOffset() == l.EndOffset() {
					// An empty copy starting inside this batch (the
					// primary's log start is mid-batch, after
					// DeleteRecords): start at the batch, as Kafka's
					// followers do; the log start follows below.
					if err := l.ResetTo(h.BaseOffset); err != nil {
						return false, err
					}
				}
				wg.Add(1)
				if err := l.AppendReplica(batch, &h, p.cfg.StandbyFsync, func(err error) {
					if err != nil {
						setErr(err)
					}
					wg.Done()
				}); err != nil {
					wg.Done()
					if errors.Is(err, segment.ErrDiskFull) {
						// This disk is below its reserve: user logs wait
						// (and leave the ISR) while internal ones go on.
						fail(rl)
						if now := time.Now().UnixNano(); now-p.diskFullWarned.Load() > int64(30*time.Second) {
							p.diskFullWarned.Store(now)
							p.logger.Warn("disk full: not copying user partitions until space is freed", "topic", rl.Topic, "partition", rp.Partition)
						}
						break batches
					}
					return false, fmt.Errorf("replica append to %s-%d: %w", rl.Topic, rp.Partition, err)
				}
				metaAppended = metaAppended || rl.ID == MetadataID
			}
			if ls := rp.LogStartOffset; ls > l.StartOffset() {
				// DeleteRecords (or retention) on the primary: follow its
				// log start, as Kafka's followers do.
				if _, err := l.DeleteBefore(ls); err != nil && !errors.Is(err, segment.ErrOffsetOutOfRange) {
					p.logger.Warn("cannot follow the primary's log start", "topic", rl.Topic, "partition", rp.Partition, "log_start", ls, "err", err)
				}
			}
		}
	}
	wg.Wait()
	if firstErr != nil {
		return false, firstErr
	}
	if metaAppended {
		if err := p.cat.ApplyMetadata(); err != nil {
			return false, err
		}
	}
	return parts == 0 || errs < parts || errs == backedOff, nil
}

// truncateToLeader asks the primary where each log's latest epoch ended
// and drops anything beyond it here.
func (p *Pair) truncateToLeader(rc *kclient.Conn) error {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 3
	req.ReplicaID = p.nodeID
	logs := map[string][]*Log{}
	var names []string
	for _, l := range p.cat.Logs() {
		if _, ok := logs[l.Topic]; !ok {
			names = append(names, l.Topic)
		}
		logs[l.Topic] = append(logs[l.Topic], l)
	}
	for _, name := range names {
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = name
		for _, l := range logs[name] {
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition = l.Index
			rp.CurrentLeaderEpoch = -1
			rp.LeaderEpoch = l.Seg.LeaderEpoch()
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := rc.Request(req, 10*time.Second)
	if err != nil {
		return err
	}
	metaTruncated := false
	for _, rt := range kresp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
		ps := logs[rt.Topic]
		for _, rp := range rt.Partitions {
			switch rp.ErrorCode {
			case 0:
			case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code:
				// The peer does not lead (yet): it cannot say what to
				// keep, and fetching before it has is how a divergent
				// tail survives.
				return fmt.Errorf("%s-%d: %w", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			default:
				continue
			}
			if rp.Partition < 0 || int(rp.Partition) >= len(ps) {
				continue
			}
			l := ps[rp.Partition].Seg
			if rp.LeaderEpoch < 0 || rp.EndOffset < 0 {
				p.logger.Warn("the primary knows no epoch as old as this log's; not truncating", "topic", rt.Topic, "partition", rp.Partition,
					"epoch", l.LeaderEpoch())
				continue
			}
			// KIP-279: the primary answered the largest epoch it has not
			// above ours and where it ended; we keep no more than that,
			// and no more than our own records of that epoch.
			target := rp.EndOffset
			if _, own := l.EndOffsetForEpoch(rp.LeaderEpoch); own >= 0 && own < target {
				target = own
			}
			if target < l.EndOffset() {
				end, err := l.TruncateTo(target)
				if err != nil {
					return err
				}
				p.logger.Warn("dropped a divergent tail the primary does not have", "topic", rt.Topic, "partition", rp.Partition,
					"epoch", rp.LeaderEpoch, "end", end)
				metaTruncated = metaTruncated || rt.Topic == MetadataTopic
			}
		}
	}
	if metaTruncated {
		return p.cat.Resync()
	}
	return nil
}
