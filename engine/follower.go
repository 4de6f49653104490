package engine

// Hot standby replication, the standby's side: one goroutine fetches every
// log from the primary's replication listener (replica Fetch v12, replica
// id = this node) and appends the batches as they are, so the standby's
// logs are byte-identical copies. Batches of the metadata log are applied
// to the catalog as they arrive: topics created on the primary are created
// here and followed from the next fetch.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"samsa/segment"
)

// Replica fetch sizes: Kafka's replica.fetch.max.bytes and
// replica.fetch.response.max.bytes.
const (
	replicaFetchPartitionBytes = 1 << 20
	replicaFetchMaxBytes       = 10 << 20
	replicaFetchWait           = 500 * time.Millisecond
)

func splitHostPort(addr string) (string, int32) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, -1
	}
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

// following reports whether the standby fetched from the primary lately.
func (b *Broker) following() bool {
	last := b.lastFollowed.Load()
	return last != 0 && time.Since(time.Unix(0, last)) <= time.Duration(b.cfg.Replication.LagTimeMaxMs)*time.Millisecond
}

// follow runs on a standby until the broker stops or stop is closed.
func (b *Broker) follow(stop chan struct{}) {
	backoff := 100 * time.Millisecond
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return b.stopping()
		}
	}
	for !stopped() {
		err := b.followOnce(stop)
		if stopped() {
			return
		}
		b.logger.Warn("replication from the primary interrupted; retrying", "primary", b.cfg.Replication.PeerLink, "err", err, "in", backoff)
		select {
		case <-b.quit:
			return
		case <-stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// followOnce connects to the primary and fetches until an error.
func (b *Broker) followOnce(stop chan struct{}) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if dev := b.cfg.Replication.BindDevice; dev != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
			})
			return errors.Join(err, serr)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-b.quit:
			cancel()
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := d.DialContext(ctx, "tcp", b.cfg.Replication.PeerLink)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()
	rc := newReplicaConn(b.linkConn(conn), b.cfg.NodeID)
	if err := b.truncateToLeader(rc); err != nil {
		return fmt.Errorf("cannot check for a divergent tail: %w", err)
	}
	b.logger.Info("following the primary", "primary", b.cfg.Replication.PeerLink)
	for ctx.Err() == nil {
		req := b.replicaFetchRequest()
		kresp, err := rc.request(req, time.Duration(req.MaxWaitMillis)*time.Millisecond+10*time.Second)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.FetchResponse)
		b.lastFollowed.Store(time.Now().UnixNano())
		progress, err := b.applyReplicaFetch(resp)
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

// replicaFetchRequest asks for every log from its end.
func (b *Broker) replicaFetchRequest() *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = 13 // topic ids: a topic deleted and created again is not mistaken for the old one
	r.ReplicaID = b.cfg.NodeID
	r.MaxWaitMillis = int32(replicaFetchWait.Milliseconds())
	r.MinBytes = 1
	r.MaxBytes = replicaFetchMaxBytes
	r.SessionID, r.SessionEpoch = 0, -1
	add := func(id [16]byte, idx int32, l *segment.Log) {
		n := len(r.Topics)
		if n == 0 || r.Topics[n-1].TopicID != id {
			t := kmsg.NewFetchRequestTopic()
			t.TopicID = id
			r.Topics = append(r.Topics, t)
			n++
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = idx
		p.FetchOffset = l.EndOffset()
		p.LogStartOffset = l.StartOffset()
		p.PartitionMaxBytes = replicaFetchPartitionBytes
		r.Topics[n-1].Partitions = append(r.Topics[n-1].Partitions, p)
	}
	add(metadataLogID, 0, b.meta)
	for _, t := range b.topicList() {
		for _, p := range t.parts() {
			add(t.id, p.idx, p.log)
		}
	}
	return r
}

// applyReplicaFetch appends what the primary sent and waits until it is
// written, so the next fetch acknowledges only what this node holds.
// progress is false when every partition came back with an error.
func (b *Broker) applyReplicaFetch(resp *kmsg.FetchResponse) (progress bool, _ error) {
	if resp.ErrorCode != 0 {
		return false, fmt.Errorf("replica fetch: %w", kerr.ErrorForCode(resp.ErrorCode))
	}
	errs, parts := 0, 0
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	var metaBatches [][]byte
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			parts++
			var part *partition
			if rt.TopicID == metadataLogID && rp.Partition == 0 {
				part = b.metaPart
			} else if t := b.topicByID(rt.TopicID); t != nil && rp.Partition >= 0 && int(rp.Partition) < len(t.parts()) {
				part = t.parts()[rp.Partition]
			}
			if part == nil {
				continue // created by a metadata record not applied yet
			}
			l := part.log
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
			case rp.ErrorCode != 0:
				b.logger.Warn("replica fetch partition error", "topic", part.t.name, "partition", rp.Partition,
					"err", kerr.ErrorForCode(rp.ErrorCode), "log_end", l.EndOffset())
				continue
			}
			// What the primary has committed: this node may only promote
			// itself automatically when it holds at least that.
			part.replica.mu.Lock()
			part.replica.hwm = max(part.replica.hwm, rp.HighWatermark)
			part.replica.mu.Unlock()
			for batches := rp.RecordBatches; len(batches) > 0; {
				h, err := segment.ParseBatchHeader(batches)
				if err != nil || h.Size() > int64(len(batches)) {
					break // a partial batch at the end of the response
				}
				batch := append([]byte(nil), batches[:h.Size()]...)
				batches = batches[h.Size():]
				if segment.BatchCRC(batch) != h.CRC {
					return false, fmt.Errorf("replica fetch: %s-%d: batch at %d fails its CRC", part.t.name, rp.Partition, h.BaseOffset)
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
				if err := l.AppendReplica(batch, &h, func(err error) {
					if err != nil {
						setErr(err)
					}
					wg.Done()
				}); err != nil {
					wg.Done()
					return false, fmt.Errorf("replica append to %s-%d: %w", part.t.name, rp.Partition, err)
				}
				if l == b.meta {
					metaBatches = append(metaBatches, batch)
				}
			}
			if ls := rp.LogStartOffset; ls > l.StartOffset() {
				// DeleteRecords (or retention) on the primary: follow its
				// log start, as Kafka's followers do.
				if _, err := l.DeleteBefore(ls); err != nil && !errors.Is(err, segment.ErrOffsetOutOfRange) {
					b.logger.Warn("cannot follow the primary's log start", "topic", part.t.name, "partition", rp.Partition, "log_start", ls, "err", err)
				}
			}
		}
	}
	wg.Wait()
	if firstErr != nil {
		return false, firstErr
	}
	if len(metaBatches) > 0 {
		if err := b.applyMetaBatches(metaBatches); err != nil {
			return false, err
		}
	}
	return parts == 0 || errs < parts, nil
}

// peerClientIDPrefix starts the client id of requests one node of a pair
// sends the other.
const peerClientIDPrefix = "samsa-standby-"

// replicaConn is a minimal Kafka client connection between the nodes of
// a pair.
type replicaConn struct {
	c    net.Conn
	r    *bufio.Reader
	id   int32
	corr int32
}

func newReplicaConn(c net.Conn, id int32) *replicaConn {
	return &replicaConn{c: c, r: bufio.NewReaderSize(c, 64<<10), id: id}
}

// request sends req and reads its response.
func (rc *replicaConn) request(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	rc.corr++
	var frame []byte
	frame = append(frame, 0, 0, 0, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, uint32(rc.corr))
	clientID := peerClientIDPrefix + strconv.Itoa(int(rc.id))
	frame = binary.BigEndian.AppendUint16(frame, uint16(len(clientID)))
	frame = append(frame, clientID...)
	if req.IsFlexible() {
		frame = append(frame, 0) // header tagged fields
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	rc.c.SetDeadline(time.Now().Add(timeout))
	if _, err := rc.c.Write(frame); err != nil {
		return nil, err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(rc.r, hdr[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:4]))
	if size < 4 || size > 1<<30 {
		return nil, fmt.Errorf("replica fetch: response of %d bytes", size)
	}
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != rc.corr {
		return nil, fmt.Errorf("replica fetch: correlation id %d, want %d", corr, rc.corr)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		return nil, err
	}
	if req.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}
