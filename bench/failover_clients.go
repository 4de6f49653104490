package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// This file holds what the failover and soak workloads share: records
// carrying a sequence id, the ledger of what was acknowledged and what was
// read, a paced idempotent producer, and a tally of the errors the
// clients met.

// idHeader is the bytes a sequenced record's value starts with: its id
// and the unix nanoseconds of its produce call, both big endian.
const idHeader = 16

// seqValue returns a record value of size bytes (at least idHeader) for
// id, produced at sent.
func seqValue(id uint64, sent time.Time, pad []byte, size int) []byte {
	v := make([]byte, max(size, idHeader))
	binary.BigEndian.PutUint64(v, id)
	binary.BigEndian.PutUint64(v[8:], uint64(sent.UnixNano()))
	copy(v[idHeader:], pad)
	return v
}

// parseSeqValue returns the id and produce time a sequenced value carries.
func parseSeqValue(v []byte) (id uint64, sent time.Time, ok bool) {
	if len(v) < idHeader {
		return 0, time.Time{}, false
	}
	return binary.BigEndian.Uint64(v), time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))), true
}

// Record fates in a ledger.
const (
	fateSent   = 0
	fateAcked  = 1
	fateFailed = 2
)

// ledger is, by record id, what the producer learned of each record and
// how many times a consumer read it, with running counts so that a
// snapshot costs nothing. Any goroutine.
type ledger struct {
	mu        sync.Mutex
	fate      []uint8  // (mu) by id
	seen      []uint16 // (mu) by id: times a consumer read it
	acked     int64    // (mu)
	failed    int64    // (mu)
	read      int64    // (mu) ids read at least once
	ackedRead int64    // (mu) ids acked and read
	dups      int64    // (mu) reads of an id already read
	firstErr  error    // (mu) the first error a record failed with
}

// sent registers the next id; ids are handed out in order from 0.
func (l *ledger) sent() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fate = append(l.fate, fateSent)
	l.seen = append(l.seen, 0)
	return uint64(len(l.fate) - 1)
}

func (l *ledger) settle(id uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.fate[id] = fateAcked
		l.acked++
		if l.seen[id] > 0 {
			l.ackedRead++
		}
		return
	}
	l.fate[id] = fateFailed
	l.failed++
	if l.firstErr == nil {
		l.firstErr = err
	}
}

// saw records that a consumer read id.
func (l *ledger) saw(id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id >= uint64(len(l.fate)) {
		return // not one of ours
	}
	if l.seen[id] < math.MaxUint16 {
		l.seen[id]++
	}
	if l.seen[id] > 1 {
		l.dups++
		return
	}
	l.read++
	if l.fate[id] == fateAcked {
		l.ackedRead++
	}
}

// ledgerCounts is a snapshot of a ledger.
type ledgerCounts struct {
	sent, acked, failed, pending int64
	readDistinct, dups           int64
	missing                      int64 // acked and never read
	firstErr                     error
}

func (l *ledger) counts() ledgerCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := ledgerCounts{sent: int64(len(l.fate)), acked: l.acked, failed: l.failed, dups: l.dups, firstErr: l.firstErr,
		readDistinct: l.read, missing: l.acked - l.ackedRead}
	c.pending = c.sent - c.acked - c.failed
	return c
}

// readCounter counts the reads of ids by consumers that may read an id
// more than once. Any goroutine.
type readCounter struct {
	mu       sync.Mutex
	seen     []uint16 // (mu) by id
	distinct int64    // (mu)
	dups     int64    // (mu)
}

func (c *readCounter) saw(id uint64) {
	if id > 1<<32 {
		return // not one of ours
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for uint64(len(c.seen)) <= id {
		c.seen = append(c.seen, 0)
	}
	if c.seen[id] < math.MaxUint16 {
		c.seen[id]++
	}
	if c.seen[id] == 1 {
		c.distinct++
	} else {
		c.dups++
	}
}

// counts returns the distinct ids read and the reads of ids read before.
func (c *readCounter) counts() (distinct, dups int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.distinct, c.dups
}

// ackedIDs returns every acked id.
func (l *ledger) ackedIDs() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []uint64
	for id, f := range l.fate {
		if f == fateAcked {
			ids = append(ids, uint64(id))
		}
	}
	return ids
}

// pacedProducer produces sequenced records to one topic at a steady rate
// from its own goroutine, which it owns: start it with start, end it
// with stop.
type pacedProducer struct {
	cl    *kgo.Client
	topic string
	rate  int
	size  int
	keyed int // >0: records keyed by id modulo keyed (compaction)
	led   *ledger
	// recCtx is the context every record is produced with: it ends only
	// when the run is abandoned, since a record whose context ends while
	// buffered fails and resets the idempotent producer.
	recCtx context.Context
	// onAck, when not nil, is called for every acknowledged record (from
	// kgo's promise goroutine).
	onAck func(r *kgo.Record, id uint64, sent time.Time)

	maxAck  atomic.Int64 // the longest wait for an ack, ns
	lastAck atomic.Int64 // unix ns of the last ack
	maxGap  atomic.Int64 // the longest time between two acks, ns
	quit    chan struct{}
	wg      sync.WaitGroup
}

func (p *pacedProducer) start() {
	p.quit = make(chan struct{})
	p.wg.Add(1)
	go p.run()
}

// run paces records: every tick it produces those due since the start.
// A producer blocked for longer than a second (its buffer full) does not
// burst to catch up: it starts counting again.
func (p *pacedProducer) run() {
	defer p.wg.Done()
	pad := payload(max(p.size-idHeader, 0))
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	base, done := time.Now(), int64(0)
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		due := int64(time.Since(base).Seconds() * float64(p.rate))
		if due-done > int64(p.rate) {
			base, done, due = time.Now(), 0, 0
		}
		for ; done < due; done++ {
			select {
			case <-p.quit:
				return
			default:
			}
			id := p.led.sent()
			sent := time.Now()
			r := &kgo.Record{Topic: p.topic, Value: seqValue(id, sent, pad, p.size)}
			if p.keyed > 0 {
				r.Key = []byte(fmt.Sprintf("key-%d", id%uint64(p.keyed)))
			}
			p.cl.Produce(p.recCtx, r, func(r *kgo.Record, err error) {
				if err == nil {
					now := time.Now().UnixNano()
					storeMax(&p.maxAck, now-sent.UnixNano())
					if last := p.lastAck.Swap(now); last != 0 {
						storeMax(&p.maxGap, now-last)
					}
					if p.onAck != nil {
						p.onAck(r, id, sent)
					}
				}
				p.led.settle(id, err)
			})
		}
	}
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// stop ends producing and waits for the pacing goroutine; records already
// handed to the client are still in flight (Flush them).
func (p *pacedProducer) stop() {
	close(p.quit)
	p.wg.Wait()
}

// producerOpts are the options of the failover and soak producers:
// acks=all, idempotent, seeded with both nodes, with retries and a
// delivery timeout long enough to ride out a failover.
func pairProducerOpts(seeds []string, delivery, metadataMinAge time.Duration, extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(delivery),
		kgo.RetryTimeout(delivery),
		kgo.MaxBufferedRecords(200_000),
	}
	if metadataMinAge > 0 {
		opts = append(opts, kgo.MetadataMinAge(metadataMinAge))
	}
	return append(opts, extra...)
}

// errorTally is a kgo logger that counts the errors the client met, by
// kind. It reads them off kgo's log, debug level included: failed reads
// and writes on a connection are logged at debug with an "err", and a
// partition's retried produce error (NOT_ENOUGH_REPLICAS,
// NOT_LEADER_OR_FOLLOWER) only in the debug line "produced", as
// "partition{retrying@-1,3(CODE: message)}". Fetch errors are added by
// the consumer itself (add). Any goroutine.
type errorTally struct {
	prefix string
	mu     *sync.Mutex
	counts map[string]int // (mu)
}

func newErrorTally() *errorTally {
	return &errorTally{mu: &sync.Mutex{}, counts: map[string]int{}}
}

// named returns a logger adding to the same tally under prefix.
func (t *errorTally) named(prefix string) *errorTally {
	return &errorTally{prefix: prefix, mu: t.mu, counts: t.counts}
}

func (t *errorTally) Level() kgo.LogLevel { return kgo.LogLevelDebug }

// producedCode finds the error codes in kgo's "produced" debug line.
var producedCode = regexp.MustCompile(`\(([A-Z_]+)[:)]`)

func (t *errorTally) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, _ := keyvals[i].(string)
		switch {
		case k == "err":
			if err, ok := keyvals[i+1].(error); ok {
				t.add(err)
			}
		case k == "to" && msg == "produced":
			s, _ := keyvals[i+1].(string)
			for _, m := range producedCode.FindAllStringSubmatch(s, -1) {
				t.addKind(m[1])
			}
		}
	}
}

// add counts err, unless it is nil or only says the client stopped.
func (t *errorTally) add(err error) {
	if err == nil || isStop(err) {
		return
	}
	t.addKind(errKind(err))
}

func (t *errorTally) addKind(kind string) {
	t.mu.Lock()
	t.counts[t.prefix+kind]++
	t.mu.Unlock()
}

// snapshot returns the counts so far.
func (t *errorTally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.counts))
	for k, v := range t.counts {
		out[k] = v
	}
	return out
}

var addrPattern = regexp.MustCompile(`(\d{1,3}\.){3}\d{1,3}:\d+`)

// errKind names an error for the tally: a Kafka error by its code name,
// a network error without its addresses.
func errKind(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	switch s := err.Error(); {
	case errors.Is(err, io.EOF) || strings.HasSuffix(s, "EOF"):
		return "EOF (connection closed)"
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "connection reset"):
		return "connection reset"
	case strings.Contains(s, "broken pipe"):
		return "broken pipe"
	case strings.Contains(s, "i/o timeout"):
		return "i/o timeout"
	default:
		s = addrPattern.ReplaceAllString(s, "ADDR")
		if len(s) > 100 {
			s = s[:100] + "..."
		}
		return s
	}
}

// formatTally writes counts as "kind x n" sorted by count, most first.
func formatTally(counts map[string]int) string {
	type kv struct {
		k string
		n int
	}
	var kvs []kv
	for k, n := range counts {
		kvs = append(kvs, kv{k, n})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].n != kvs[j].n {
			return kvs[i].n > kvs[j].n
		}
		return kvs[i].k < kvs[j].k
	})
	var parts []string
	for _, x := range kvs {
		parts = append(parts, fmt.Sprintf("%s x%d", x.k, x.n))
	}
	return strings.Join(parts, ", ")
}
