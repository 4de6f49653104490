package replica

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"
)

// oneLog is a Catalog of one log, for testing a Pair without a broker.
type oneLog struct{ l *Log }

func (c oneLog) Logs() []*Log                         { return []*Log{c.l} }
func (c oneLog) LogByID(id [16]byte, idx int32) *Log  { return c.l }
func (c oneLog) ApplyMetadata() error                 { return nil }
func (c oneLog) Resync() error                        { return nil }
func (c oneLog) RecordLeader(node, epoch int32) error { return nil }
func (c oneLog) Copying(bool)                         {}
func (c oneLog) Lead()                                {}
func (c oneLog) Follow()                              {}

func primaryLog(t *testing.T, lag time.Duration) (*Pair, *Log) {
	t.Helper()
	return testLog(t, Config{Role: RolePrimary, PeerID: 2, LagTimeMaxMs: lag.Milliseconds(), MinInsyncReplicas: 2}, 1)
}

// testLog is one log "t-0" on a fresh store, in a pair of cfg as node.
func testLog(t *testing.T, cfg Config, node int32) (*Pair, *Log) {
	t.Helper()
	store, err := segment.OpenStore(segment.StoreOptions{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	seg, err := store.Open("t-0", segment.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	l := &Log{}
	p := NewPair(cfg, node, oneLog{l}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.Init(p, "t", [16]byte{1}, 0, seg)
	return p, l
}

// acks=all waiters complete when the standby's fetch offset passes them,
// and, when it leaves the ISR, with NOT_ENOUGH_REPLICAS_AFTER_APPEND only
// if min.insync.replicas asked for two.
func TestLogWaitersAndISR(t *testing.T) {
	const lag = 200 * time.Millisecond
	_, l := primaryLog(t, lag)
	if l.InSync() {
		t.Fatal("in the ISR before any fetch")
	}
	// Out of the ISR, a waiter completes at once: with min ISR 2 it fails.
	codes := make(chan int16, 4)
	l.WaitForStandby(1, 2, func(c int16) { codes <- c })
	if c := <-codes; c != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("waiter with the standby out of the ISR: code %d", c)
	}
	l.FetchedAt(0, 0, time.Now()) // caught up with the (empty) log: joins the ISR
	if !l.InSync() {
		t.Fatal("a standby that caught up is not in the ISR")
	}
	l.WaitForStandby(5, 2, func(c int16) { codes <- c })
	select {
	case c := <-codes:
		t.Fatalf("waiter completed (code %d) before the standby held its records", c)
	default:
	}
	l.FetchedAt(5, 0, time.Now())
	if c := <-codes; c != 0 {
		t.Fatalf("waiter the standby passed: code %d", c)
	}
	// The standby stops fetching: after the lag time it leaves the ISR,
	// which releases the waiters.
	l.WaitForStandby(9, 2, func(c int16) { codes <- c })
	l.WaitForStandby(9, 1, func(c int16) { codes <- c })
	time.Sleep(lag + 50*time.Millisecond)
	if l.InSync() {
		t.Fatal("a standby that stopped fetching is still in the ISR")
	}
	got := map[int16]int{}
	for range 2 {
		got[<-codes]++
	}
	if got[kerr.NotEnoughReplicasAfterAppend.Code] != 1 || got[0] != 1 {
		t.Fatalf("released waiters' codes %v, want one NOT_ENOUGH_REPLICAS_AFTER_APPEND (min ISR 2) and one success (min ISR 1)", got)
	}
	if lagged, in := l.Standby(); in || lagged != 0 {
		t.Fatalf("Standby() = %d, %v", lagged, in)
	}
}

// The high watermark follows the standby while it is in the ISR and never
// goes back.
func TestLogHighWatermark(t *testing.T) {
	_, l := primaryLog(t, time.Minute)
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("empty log: high watermark %d", hw)
	}
	l.FetchedAt(0, 0, time.Now())
	l.reset() // promotion: the high watermark starts at the log end
	if hw, in := l.HighWatermark(), l.InSync(); hw != 0 || in {
		t.Fatalf("after reset: high watermark %d, in ISR %v", hw, in)
	}
}

// A Pair's epoch only grows; CheckEpoch fences older clients and asks
// newer ones to refresh.
func TestPairEpoch(t *testing.T) {
	p, _ := primaryLog(t, time.Minute)
	p.ObserveEpoch(3)
	p.ObserveEpoch(2)
	if p.Epoch() != 3 {
		t.Fatalf("epoch %d, want 3", p.Epoch())
	}
	f := func(client int32, want int16) {
		t.Helper()
		if got := p.CheckEpoch(client); got != want {
			t.Errorf("CheckEpoch(%d) = %d, want %d", client, got, want)
		}
	}
	f(-1, 0)
	f(3, 0)
	f(2, kerr.FencedLeaderEpoch.Code)
	f(4, kerr.UnknownLeaderEpoch.Code)
	if p.LeaderID() != 1 || p.StandbyID() != 2 || !p.IsPrimary() || !p.Replicated() {
		t.Fatalf("leader %d standby %d primary %v", p.LeaderID(), p.StandbyID(), p.IsPrimary())
	}
	if err := p.Promote("test"); err != ErrNotStandby {
		t.Fatalf("Promote on a primary: %v, want ErrNotStandby", err)
	}
}

// A follower whose connection the primary drops returns with the error
// (and so retries) instead of hanging on its own connection closers.
func TestFollowOnceReturnsWhenTheLinkDrops(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close() // the primary goes away mid-request
		}
	}()
	_, rl := primaryLog(t, time.Minute)
	p := NewPair(Config{Role: RoleStandby, PeerID: 1, PeerLink: l.Addr().String(), PeerClient: l.Addr().String(), LagTimeMaxMs: 1000, MinInsyncReplicas: 1},
		2, oneLog{rl}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan error, 1)
	go func() { done <- p.followOnce(make(chan struct{})) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("followOnce returned no error on a dropped link")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("followOnce hung after the primary dropped the link")
	}
}

// On a primary, retention deletes only what is below the high watermark
// (Kafka's deletableSegments): records the standby in the ISR does not
// hold yet stay, and go once it has fetched them.
func TestRetentionBelowHighWatermark(t *testing.T) {
	store, err := segment.OpenStore(segment.StoreOptions{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	one := func(i int) []byte {
		rb := kmsg.RecordBatch{ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}
		return encodeBatch(rb, fmt.Sprint("record ", i))
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = int64(2 * len(one(0))) // two records a segment
	cfg.RetentionBytes = 0
	seg, err := store.Open("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &Log{}
	p := NewPair(Config{Role: RolePrimary, PeerID: 2, LagTimeMaxMs: time.Minute.Milliseconds(), MinInsyncReplicas: 1}, 1, oneLog{l}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.Init(p, "t", [16]byte{1}, 0, seg)
	l.FetchedAt(0, 0, time.Now()) // the standby is in the ISR
	for i := range 9 {
		b := one(i)
		h, err := segment.ValidateBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		if _, err := seg.Append(b, &h, true, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	l.FetchedAt(5, 0, time.Now())
	store.EnforceRetention()
	if start := seg.StartOffset(); start != 4 {
		t.Fatalf("log start %d with the standby at 5, want 4 (the segments below it)", start)
	}
	l.FetchedAt(9, 0, time.Now())
	store.EnforceRetention()
	if start := seg.StartOffset(); start != 8 {
		t.Fatalf("log start %d with the standby at the end, want 8 (all but the active segment)", start)
	}
}

// TestLSOWaitsForStandbyToHoldMarker: on a primary, a transaction whose
// marker the standby in the ISR does not hold yet is not decided for a
// read_committed reader (Kafka's unreplicatedTxns): the LSO stays at its
// first offset until the high watermark passes the marker, so a failover
// before then cannot take back what a reader saw as decided.
func TestLSOWaitsForStandbyToHoldMarker(t *testing.T) {
	_, l := testLog(t, Config{Role: RolePrimary, PeerID: 2, LagTimeMaxMs: time.Minute.Milliseconds(), MinInsyncReplicas: 1}, 1)
	seg := l.Seg
	l.FetchedAt(0, 0, time.Now()) // the standby is in the ISR
	// A transactional batch (attribute bit 4) of producer 7.
	b := encodeBatch(kmsg.RecordBatch{Attributes: 0x10, ProducerID: 7}, "a", "b", "c")
	h, err := segment.ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	if _, err := seg.Append(b, &h, true, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	marker, err := seg.AppendMarker(7, 0, 0, true, true, func(err error) { done <- err })
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	lso := func() int64 { return seg.LastStableOffset(l.HighWatermark()) }
	l.FetchedAt(marker, 0, time.Now()) // the standby holds the records, not the marker
	if got := lso(); got != 0 {
		t.Fatalf("LSO %d with the standby short of the commit marker at %d, want 0", got, marker)
	}
	l.FetchedAt(marker+1, 0, time.Now())
	if got := lso(); got != marker+1 {
		t.Fatalf("LSO %d with the standby past the marker, want %d", got, marker+1)
	}
}

// encodeBatch fills in rb (magic, counts, timestamps, length, CRC) for
// one record per value and encodes it.
func encodeBatch(rb kmsg.RecordBatch, values ...string) []byte {
	rb.Magic, rb.NumRecords, rb.LastOffsetDelta = 2, int32(len(values)), int32(len(values)-1)
	rb.FirstTimestamp = time.Now().UnixMilli()
	rb.MaxTimestamp = rb.FirstTimestamp
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		rb.Records = r.AppendTo(rb.Records)
	}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
