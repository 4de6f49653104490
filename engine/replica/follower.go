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
	for ctx.Err() == nil {
		req := p.fetchRequest()
		// The batches of one response are appended before the next
		// request (applyFetch waits for them), so every response can be
		// read into the same buffer.
		kresp, err := rc.RequestReusing(req, time.Duration(req.MaxWaitMillis)*time.Millisecond+10*time.Second)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.FetchResponse)
		p.lastFollowed.Store(time.Now().UnixNano())
		progress, err := p.applyFetch(resp)
		if err != nil {
			return err
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

// fetchRequest asks for every log from its end.
func (p *Pair) fetchRequest() *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = 13 // topic ids: a topic deleted and created again is not mistaken for the old one
	r.ReplicaID = p.nodeID
	r.MaxWaitMillis = int32(replicaFetchWait.Milliseconds())
	r.MinBytes = 1
	r.MaxBytes = p.cfg.fetchResponseMaxBytes()
	r.SessionID, r.SessionEpoch = 0, -1
	for _, l := range p.cat.Logs() {
		n := len(r.Topics)
		if n == 0 || r.Topics[n-1].TopicID != l.ID {
			t := kmsg.NewFetchRequestTopic()
			t.TopicID = l.ID
			r.Topics = append(r.Topics, t)
			n++
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = l.Index
		rp.FetchOffset = l.Seg.EndOffset()
		rp.LogStartOffset = l.Seg.StartOffset()
		rp.PartitionMaxBytes = p.cfg.fetchMaxBytes()
		r.Topics[n-1].Partitions = append(r.Topics[n-1].Partitions, rp)
	}
	return r
}

// applyFetch appends what the primary sent and waits until it is written
// (and, with standby_fsync, fsynced), so the next fetch acknowledges only
// what this node holds. The appends take the response's batches as they
// are, without a copy: it returns only once every append it started is
// done with them, errors included. progress is false when every partition
// came back with an error.
func (p *Pair) applyFetch(resp *kmsg.FetchResponse) (progress bool, _ error) {
	if resp.ErrorCode != 0 {
		return false, fmt.Errorf("replica fetch: %w", kerr.ErrorForCode(resp.ErrorCode))
	}
	errs, parts := 0, 0
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
			if rp.ErrorCode != 0 {
				errs++
			}
			switch {
			case rp.ErrorCode == kerr.UnknownTopicOrPartition.Code, rp.ErrorCode == kerr.UnknownTopicID.Code:
				continue // deleted on the primary; the metadata log says so
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
						errs++
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
	return parts == 0 || errs < parts, nil
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
