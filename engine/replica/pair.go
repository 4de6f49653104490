// Package replica owns the hot standby pair (docs/ARCHITECTURE.md, "The
// pair"): this node's role and the pair's leader epoch; on the primary,
// the standby's progress on every log (ISR, high watermark, the acks=all
// produces waiting for it); on the standby, the follower that copies every
// log from the primary over the replication link; promotion (manual or
// automatic), stepping down, and the truncation of a divergent tail. It
// sees the broker's catalog only through the Catalog interface, and imports
// segment (the logs it appends to) and netio/kclient (the link's request
// framer), never engine.
//
// A standby follows the primary as a Kafka follower does: it sends Fetch
// requests with its replica id for every log (user partitions, internal
// topics, and the metadata log as "__cluster_metadata" partition 0), and
// the fetch offset of each is its acknowledgement of everything below.
// The standby is in a log's ISR while it caught up within
// replica.lag.time.max.ms. acks=all produces wait, after their fsync, for
// the standby's offset to pass them while it is in the ISR; when it drops
// out they complete with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the topic's
// min.insync.replicas is then unmet.
//
// Which node leads, and from which leader epoch, is a "leader" record in
// the metadata log, replicated like everything else. Promotion stops the
// follower, bumps the epoch on every log, writes the record and starts
// serving. A node that starts as primary first asks its peer: if the peer
// leads with a higher epoch, this node becomes its standby. A standby,
// each time it connects, asks the primary where its last epoch ended on
// every log (OffsetForLeaderEpoch) and truncates what it has beyond.
package replica

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio/kclient"
)

// MetadataTopic is the name replica requests give the metadata log, and
// MetadataID its topic id (Kafka's for its own metadata topic).
const MetadataTopic = "__cluster_metadata"

// MetadataID is the metadata log's topic id in replica requests.
var MetadataID = [16]byte{15: 1}

// PeerClientIDPrefix starts the client id of requests one node of a pair
// sends the other.
const PeerClientIDPrefix = "samsa-standby-"

// ErrNotStandby is returned by Promote on a node that is not the standby.
var ErrNotStandby = errors.New("this node is not the standby")

var errStopping = errors.New("the broker is shutting down")

// Catalog is what the pair needs of the broker's catalog.
type Catalog interface {
	// Logs lists every replicated log, the metadata log first.
	Logs() []*Log
	// LogByID finds the log of a topic id's partition (MetadataID, 0:
	// the metadata log), or nil.
	LogByID(id [16]byte, idx int32) *Log
	// ApplyMetadata applies every record of the metadata log that the
	// follower appended and the catalog has not applied yet.
	ApplyMetadata() error
	// Resync makes the catalog match the metadata log again after the
	// follower truncated its tail.
	Resync() error
	// RecordLeader durably records that node leads from epoch on.
	RecordLeader(node, epoch int32) error
	// Lead is called once this node became the primary (promotion), Follow
	// once it became the standby (stepping down).
	Lead()
	Follow()
	// Copying says whether the logs are copies acknowledged once written,
	// not fsynced (a standby without standby_fsync): each write of them
	// then starts its writeback once its append completed
	// (segment.Disk.SetCopying).
	Copying(on bool)
}

// Pair is this node's side of the pair. A standalone node has one too,
// whose role is RoleStandalone.
type Pair struct {
	cfg    Config
	nodeID int32
	logger *slog.Logger
	cat    Catalog

	role           atomic.Pointer[string]
	waiting        atomic.Bool  // a returning primary, standing by until its peer answers (Settle)
	epoch          atomic.Int32 // the leader epoch of the pair (every log's)
	lastFollowed   atomic.Int64 // standby: when the last replica fetch came back (unix ns)
	diskFullWarned atomic.Int64 // standby: when a full disk last stopped a copy (unix ns; warnings rate-limited)

	promoteMu  sync.Mutex    // serializes promotion and stepping down
	followStop chan struct{} // (promoteMu) closed to stop the follower
	followDone chan struct{} // (promoteMu) closed when it stopped

	wg       sync.WaitGroup // every goroutine below
	quit     chan struct{}
	quitOnce sync.Once
}

// NewPair returns this node's side of the pair; nothing runs until Start.
func NewPair(cfg Config, nodeID int32, cat Catalog, logger *slog.Logger) *Pair {
	return &Pair{cfg: cfg, nodeID: nodeID, cat: cat, logger: logger.With("subsystem", "replica"), quit: make(chan struct{})}
}

// Role is this node's current role: the configured one until a leader
// record (a promotion) or the peer says otherwise.
func (p *Pair) Role() string {
	if r := p.role.Load(); r != nil {
		return *r
	}
	return p.cfg.Role
}

// SetRole sets the role, at start-up, from the metadata log's latest
// leader record (the node it names leads).
func (p *Pair) SetRole(leader int32) {
	switch {
	case !p.Replicated():
	case leader == p.nodeID:
		p.setRole(RolePrimary)
	case leader == p.cfg.PeerID:
		p.setRole(RoleStandby)
	}
}

func (p *Pair) setRole(r string) { p.role.Store(&r) }

func (p *Pair) IsPrimary() bool { return p.Role() == RolePrimary }
func (p *Pair) IsStandby() bool { return p.Role() == RoleStandby }

// Replicated reports whether this node is configured as one of a pair.
func (p *Pair) Replicated() bool { return p.cfg.Role != RoleStandalone }

// Epoch is the pair's leader epoch.
func (p *Pair) Epoch() int32 { return p.epoch.Load() }

// ObserveEpoch raises the epoch to e (a leader record); it never goes back.
func (p *Pair) ObserveEpoch(e int32) {
	for {
		cur := p.epoch.Load()
		if e <= cur || p.epoch.CompareAndSwap(cur, e) {
			return
		}
	}
}

// CheckEpoch compares a client's current leader epoch with the pair's:
// newer is UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH (the client
// refreshes its metadata either way). -1 (not sent) always passes.
func (p *Pair) CheckEpoch(clientEpoch int32) int16 {
	switch epoch := p.epoch.Load(); {
	case clientEpoch < 0 || clientEpoch == epoch:
		return 0
	case clientEpoch > epoch:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}

// LeaderID is the node that leads every partition.
func (p *Pair) LeaderID() int32 {
	if p.IsStandby() {
		return p.cfg.PeerID
	}
	return p.nodeID
}

// StandbyID is the standby's node id, or -1.
func (p *Pair) StandbyID() int32 {
	switch p.Role() {
	case RolePrimary:
		return p.cfg.PeerID
	case RoleStandby:
		return p.nodeID
	}
	return -1
}

// Following reports whether this standby fetched from the primary lately.
func (p *Pair) Following() bool {
	last := p.lastFollowed.Load()
	return last != 0 && time.Since(time.Unix(0, last)) <= p.lagTime()
}

func (p *Pair) lagTime() time.Duration {
	return time.Duration(p.cfg.LagTimeMaxMs) * time.Millisecond
}

func (p *Pair) stopping() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

// Settle settles the role once the catalog is loaded: a node configured
// (or recorded) as primary first asks its peer, and becomes its standby
// if the peer leads with a newer epoch; a primary then leads every log at
// the pair's epoch.
//
// The stale primary rule: a primary that restarts with data (restarted
// true) and cannot reach its peer does not lead. Its peer may have been
// promoted while it was down, taken writes, and be down now itself:
// leading from this node's older copy would serve a leader epoch that
// clients saw superseded and hand group consumers offsets below what they
// committed. It waits, answering as a standby whose primary is away,
// until the peer answers (then whichever outranks leads and the other
// follows) or an operator promotes it (samsactl promote: accepting that
// what the peer alone had is lost). A fresh data directory leads at once.
func (p *Pair) Settle(restarted bool) {
	if p.IsPrimary() {
		leader, epoch, ok := p.probePeer()
		switch {
		case ok && p.peerOutranks(leader, epoch):
			// A primary that comes back after a failover must not
			// lead: its peer leads with a newer epoch; follow it.
			p.logger.Warn("the peer leads with a newer epoch; becoming its standby", "peer", leader, "peer_epoch", epoch, "epoch", p.Epoch())
			p.setRole(RoleStandby)
			p.ObserveEpoch(epoch)
		case !ok && restarted:
			p.logger.Warn("not leading until the peer answers: it may have been promoted while this node was down; samsactl promote makes this node lead without it, losing what only the peer has",
				"peer_link", p.cfg.PeerLink, "epoch", p.Epoch())
			p.setRole(RoleStandby)
			p.waiting.Store(true)
		}
	}
	if p.IsPrimary() {
		// Every log leads at the pair's epoch (logs created after a
		// promotion, or whose epoch entry was never written).
		for _, l := range p.cat.Logs() {
			l.Seg.SetLeaderEpoch(p.Epoch())
		}
	}
}

// Start starts the pair's goroutines: a primary checks the ISR and
// watches its peer; a standby follows the primary (and, with
// auto_failover, watches it). Call it after Settle, once the broker can
// serve.
func (p *Pair) Start() {
	p.promoteMu.Lock()
	defer p.promoteMu.Unlock()
	switch p.Role() {
	case RolePrimary:
		p.startPrimary()
	case RoleStandby:
		if p.waiting.Load() {
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.waitForPeer() }()
			return
		}
		p.startFollowerLocked()
	}
}

// Waiting reports whether this node is a returning primary waiting for
// its peer (Settle).
func (p *Pair) Waiting() bool { return p.waiting.Load() }

// Claim is who this node says leads, and at which epoch, when its peer
// asks: a waiting node claims its own recorded leadership, so that two
// returning primaries settle on the one that outranks.
func (p *Pair) Claim() (leader, epoch int32) {
	if p.waiting.Load() {
		return p.nodeID, p.Epoch()
	}
	return p.LeaderID(), p.Epoch()
}

// waitForPeer runs on a waiting node until its peer answers: then this
// node follows the peer if it outranks, or leads. An operator's promotion
// ends the wait too.
func (p *Pair) waitForPeer() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		if !p.waiting.Load() {
			return // promoted
		}
		leader, epoch, ok := p.probePeer()
		if !ok {
			continue
		}
		p.promoteMu.Lock()
		if p.waiting.Load() && !p.stopping() {
			p.waiting.Store(false)
			if p.peerOutranks(leader, epoch) {
				p.logger.Warn("the peer is back and leads with a newer epoch; following it", "peer_epoch", epoch, "epoch", p.Epoch())
				p.ObserveEpoch(epoch)
				p.startFollowerLocked()
			} else {
				p.logger.Warn("the peer is back and does not lead with a newer epoch; leading", "peer_epoch", epoch, "epoch", p.Epoch())
				p.leadLocked()
			}
		}
		p.promoteMu.Unlock()
		return
	}
}

// Stop stops the pair's goroutines (it does not wait: see Wait). Waiters
// for the standby are released with NOT_ENOUGH_REPLICAS_AFTER_APPEND.
func (p *Pair) Stop() { p.quitOnce.Do(func() { close(p.quit) }) }

// Wait waits for the goroutines Stop stopped.
func (p *Pair) Wait() { p.wg.Wait() }

// startPrimary starts the primary's goroutines.
func (p *Pair) startPrimary() {
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.checkISR() }()
	go func() { defer p.wg.Done(); p.watchPeer() }()
}

// checkISR runs on the primary until the pair stops or this node steps
// down: a standby that stopped fetching leaves the ISR, which releases
// the produces waiting for it.
func (p *Pair) checkISR() {
	t := time.NewTicker(max(p.lagTime()/4, 10*time.Millisecond))
	defer t.Stop()
	release := func() {
		// Stopping or stepping down: nobody will acknowledge these now.
		for _, l := range p.cat.Logs() {
			l.release()
		}
	}
	for {
		select {
		case <-p.quit:
			release()
			return
		case <-t.C:
		}
		if !p.IsPrimary() {
			release()
			return // stepped down
		}
		now := time.Now()
		for _, l := range p.cat.Logs() {
			l.advance(now)
		}
	}
}

// Promote makes the standby the primary, with the next leader epoch.
func (p *Pair) Promote(reason string) error {
	p.promoteMu.Lock()
	defer p.promoteMu.Unlock()
	if !p.IsStandby() {
		return ErrNotStandby
	}
	if p.stopping() {
		return errStopping
	}
	if p.followStop != nil {
		close(p.followStop)
		<-p.followDone
		p.followStop = nil
	}
	if p.waiting.Load() {
		reason += "; promoted while waiting for the peer: what only the peer had is lost"
	}
	p.cat.Copying(false)
	p.syncLogs()
	epoch := p.Epoch() + 1
	for _, l := range p.cat.Logs() {
		l.Seg.SetLeaderEpoch(epoch)
		l.reset()
	}
	if err := p.cat.RecordLeader(p.nodeID, epoch); err != nil {
		if !p.waiting.Load() {
			p.startFollowerLocked() // still the standby: keep following
		}
		return err
	}
	p.waiting.Store(false)
	p.ObserveEpoch(epoch)
	p.logger.Warn("promoted to primary", "epoch", epoch, "reason", reason)
	p.leadLocked()
	return nil
}

// syncLogs fsyncs every log's copy. Without standby_fsync, what the
// standby copied may be only in its page cache (flush_interval_ms bounds
// how long): once it leads, every record the pair acknowledged must be on
// its disk, as an acks=all record is on the primary's.
func (p *Pair) syncLogs() {
	start := time.Now()
	logs := p.cat.Logs()
	var wg sync.WaitGroup
	wg.Add(len(logs))
	for _, l := range logs {
		l.Seg.Sync(func(err error) {
			if err != nil {
				p.logger.Warn("promotion: cannot fsync a copied log", "topic", l.Topic, "partition", l.Index, "err", err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	p.logger.Info("promotion: copied logs fsynced", "logs", len(logs), "took", time.Since(start).Round(time.Millisecond))
}

// leadLocked makes this node the primary at the pair's epoch.
// p.promoteMu is held.
func (p *Pair) leadLocked() {
	for _, l := range p.cat.Logs() {
		l.Seg.SetLeaderEpoch(p.Epoch())
	}
	p.setRole(RolePrimary)
	p.cat.Lead()
	p.startPrimary()
}

// startFollowerLocked starts following the primary. p.promoteMu must be
// held.
func (p *Pair) startFollowerLocked() {
	p.cat.Copying(!p.cfg.StandbyFsync)
	p.followStop, p.followDone = make(chan struct{}), make(chan struct{})
	stop, done := p.followStop, p.followDone
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		p.follow(stop)
	}()
	if p.cfg.AutoFailover {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.watchPrimary(stop) }()
	}
}

// watchPrimary promotes this standby once the primary has given no sign
// of life for the failover timeout: no replica fetch came back, and it
// answered on neither its replication link nor its client address (a
// broken link alone never makes two primaries). The time counts from the
// last sign of life, not from when the silence was noticed, so promotion
// comes within the timeout plus a tick and a probe (at most 750 ms) of
// the primary's death, whatever replica.lag.time.max.ms is. It stops with
// the follower (stop) or the pair.
func (p *Pair) watchPrimary(stop chan struct{}) {
	timeout := time.Duration(p.cfg.FailoverTimeoutMs) * time.Millisecond
	tick := min(max(timeout/20, 20*time.Millisecond), 250*time.Millisecond)
	// One probe's budget, dial included: a primary that cannot answer an
	// ApiVersions request within it is as good as gone for clients, and
	// only a whole timeout of failed probes promotes.
	budget := min(max(timeout/5, 100*time.Millisecond), 500*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastAlive := time.Now() // alive when watching starts
	warned := false
	for {
		select {
		case <-p.quit:
			return
		case <-stop:
			return
		case <-t.C:
		}
		if last := time.Unix(0, p.lastFollowed.Load()); last.After(lastAlive) {
			lastAlive = last
		}
		// A replica fetch comes back at least every replicaFetchWait
		// while the primary lives: probe only once they stop.
		if time.Since(lastAlive) < 2*replicaFetchWait {
			warned = false
			continue
		}
		if p.answersEither(budget) {
			lastAlive, warned = time.Now(), false
			continue
		}
		if !warned {
			warned = true
			p.logger.Warn("primary unreachable on its link and client address", "link", p.cfg.PeerLink, "client", p.cfg.PeerClient,
				"silent_for", time.Since(lastAlive).Round(time.Millisecond), "failover_in", (timeout - time.Since(lastAlive)).Round(time.Millisecond))
		}
		if time.Since(lastAlive) < timeout {
			continue
		}
		if behind := p.behindHighWatermark(); behind != "" {
			p.logger.Error("not promoting automatically: this standby lacks records the primary had committed; promote by hand to accept losing them",
				"partition", behind)
			lastAlive = time.Now() // say it again after another timeout
			continue
		}
		// Promote waits for this goroutine's follower to stop, so it runs
		// on a goroutine of its own (owned by the pair too).
		silent := time.Since(lastAlive).Round(time.Millisecond)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.Promote("primary silent for " + silent.String() + " (failover_timeout_ms " + timeout.String() + ")"); err != nil && !errors.Is(err, ErrNotStandby) {
				p.logger.Error("automatic promotion failed", "err", err)
			}
		}()
		return
	}
}

// answersEither reports whether the peer answers an ApiVersions request
// on its link or its client address within budget; both are asked at
// once. A TCP handshake alone proves nothing (the kernel of a stopped or
// hung process still accepts connections).
func (p *Pair) answersEither(budget time.Duration) bool {
	ok := make(chan bool, 2)
	for _, a := range []struct {
		addr string
		link bool
	}{{p.cfg.PeerLink, true}, {p.cfg.PeerClient, false}} {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ok <- p.answers(a.addr, a.link, budget)
		}()
	}
	return <-ok || <-ok
}

// answers reports whether the peer answers an ApiVersions request at addr
// within budget, dial included.
func (p *Pair) answers(addr string, link bool, budget time.Duration) bool {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	deadline := time.Now().Add(budget)
	c, err := net.DialTimeout("tcp", addr, budget)
	if err != nil {
		return false
	}
	defer c.Close()
	switch {
	case link:
		c = p.linkConn(c)
	case p.cfg.ClientTLS != nil:
		c = tls.Client(c, p.cfg.ClientTLS)
	}
	_, err = p.conn(c).Request(req, time.Until(deadline))
	return err == nil
}

// ask sends one request to addr on a connection of its own (through the
// link codec if link) and returns the response.
func (p *Pair) ask(addr string, link bool, req kmsg.Request, dial, timeout time.Duration) (kmsg.Response, error) {
	c, err := net.DialTimeout("tcp", addr, dial)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if link {
		c = p.linkConn(c)
	}
	return p.conn(c).Request(req, timeout)
}

// conn is a request connection to the peer over c.
func (p *Pair) conn(c net.Conn) *kclient.Conn {
	return kclient.New(c, PeerClientIDPrefix+strconv.Itoa(int(p.nodeID)))
}

// probePeer asks the peer who leads and at which epoch (Metadata for the
// metadata log). ok is false when the peer cannot be reached.
func (p *Pair) probePeer() (leader, epoch int32, ok bool) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	name := MetadataTopic
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	kresp, err := p.ask(p.cfg.PeerLink, true, req, 2*time.Second, 3*time.Second)
	if err != nil {
		return 0, 0, false
	}
	resp := kresp.(*kmsg.MetadataResponse)
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == MetadataTopic && len(t.Partitions) == 1 {
			return t.Partitions[0].Leader, t.Partitions[0].LeaderEpoch, true
		}
	}
	return resp.ControllerID, -1, true
}

// behindHighWatermark names a log whose end is below the high watermark
// the primary last reported for it, or returns "".
func (p *Pair) behindHighWatermark() string {
	for _, l := range p.cat.Logs() {
		if l.Seg.EndOffset() < l.PrimaryHWM() {
			return l.Topic + "-" + strconv.Itoa(int(l.Index))
		}
	}
	return ""
}

// watchPeer runs on a primary: if the peer leads with a newer epoch (it
// was promoted while this node was away or cut off), this node steps
// down and follows it, so two primaries never stay.
func (p *Pair) watchPeer() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		if !p.IsPrimary() {
			return
		}
		if leader, epoch, ok := p.probePeer(); ok && p.peerOutranks(leader, epoch) {
			p.stepDown(epoch)
			return
		}
	}
}

// peerOutranks reports whether a peer claiming leadership at epoch wins
// over this node: a newer epoch, or the same one and a lower node id (two
// nodes both configured as primary).
func (p *Pair) peerOutranks(leader, epoch int32) bool {
	if leader != p.cfg.PeerID {
		return false
	}
	mine := p.Epoch()
	return epoch > mine || epoch == mine && leader < p.nodeID
}

// stepDown turns a primary into the standby of a peer that leads at epoch.
func (p *Pair) stepDown(epoch int32) {
	p.promoteMu.Lock()
	defer p.promoteMu.Unlock()
	if !p.IsPrimary() {
		return
	}
	p.logger.Warn("the peer leads with a newer epoch; stepping down to follow it", "peer_epoch", epoch, "epoch", p.Epoch())
	p.ObserveEpoch(epoch)
	p.setRole(RoleStandby)
	p.cat.Follow()
	p.startFollowerLocked()
}

// AskPeer sends req to the peer over the replication link, on a connection
// of its own, and returns the response: a standby forwards admin requests
// to the primary this way, as Kafka's brokers forward to the controller.
func (p *Pair) AskPeer(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	return p.ask(p.cfg.PeerLink, true, req, 2*time.Second, timeout)
}
