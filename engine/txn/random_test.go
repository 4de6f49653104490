package txn

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Random request sequences against the fake backend, with failing
// appends, retriable and fencing marker codes, timeouts, expiry and
// restarts (Unload, replay of the log, Loaded). Invariants: no panic,
// every request answered exactly once, and in the log of every id the
// epoch of a producer id never goes down and each CompleteX matches the
// PrepareX before it.

func TestRandomRequests(t *testing.T) {
	n := 40
	if testing.Short() {
		n = 5
	}
	for seed := int64(1); seed <= int64(n); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runRandom(t, seed, 150) })
	}
}

func FuzzRequests(f *testing.F) {
	f.Add(int64(1), uint8(50))
	f.Add(int64(99), uint8(200))
	f.Fuzz(func(t *testing.T, seed int64, steps uint8) { runRandom(t, seed, int(steps)) })
}

// tracker counts the answers to each request.
type tracker struct {
	mu      sync.Mutex
	sent    int
	answers map[int]int
	t       *testing.T
}

func (tr *tracker) respond() (Respond, func(int16)) {
	tr.mu.Lock()
	n := tr.sent
	tr.sent++
	tr.mu.Unlock()
	mark := func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.answers[n]++
		if tr.answers[n] > 1 {
			tr.t.Errorf("request %d answered %d times", n, tr.answers[n])
		}
	}
	return func(kmsg.Response) { mark() }, func(int16) { mark() }
}

// wait waits until every request sent so far has an answer.
func (tr *tracker) wait() {
	tr.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.mu.Lock()
		done := len(tr.answers) == tr.sent
		tr.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			tr.mu.Lock()
			var missing []int
			for i := 0; i < tr.sent; i++ {
				if tr.answers[i] == 0 {
					missing = append(missing, i)
				}
			}
			tr.mu.Unlock()
			tr.t.Fatalf("requests never answered: %v", missing)
		}
		time.Sleep(time.Millisecond)
	}
}

func runRandom(t *testing.T, seed int64, steps int) {
	rng := rand.New(rand.NewSource(seed))
	e := newEnv(t)
	e.c.initWait, e.c.endWait, e.c.implicitWait = 20*time.Millisecond, 20*time.Millisecond, 5*time.Millisecond
	tr := &tracker{answers: map[int]int{}, t: t}
	ids := []string{"a", "b", "c", ""}
	epochs := []int16{-1, 0, 1, 2, 3, 32766}
	// known producer ids (the fake hands out 1001, 1002, ...).
	pidOf := func() int64 {
		if rng.Intn(8) == 0 {
			return -1
		}
		return 1001 + int64(rng.Intn(4))
	}
	// Marker codes come from the backend's goroutines: their own source.
	var markerMu sync.Mutex
	mrng := rand.New(rand.NewSource(seed + 1))
	markerCodes := []int16{0, 0, 0, 0, 0, 0, kerr.NotEnoughReplicas.Code, kerr.UnknownTopicOrPartition.Code}
	e.be.markerCode = func(int, TopicPartition) int16 {
		markerMu.Lock()
		defer markerMu.Unlock()
		c := markerCodes[mrng.Intn(len(markerCodes))]
		if mrng.Intn(200) == 0 {
			c = kerr.TransactionCoordinatorFenced.Code
		}
		return c
	}
	coordEpoch := int32(coordEpoch)
	parts := []TopicPartition{tp("t", 0), tp("t", 1), tp("u", 0)}
	for step := 0; step < steps; step++ {
		op := rng.Intn(14)
		id := ids[rng.Intn(len(ids))]
		pid, epoch := pidOf(), epochs[rng.Intn(len(epochs))]
		part := parts[rng.Intn(len(parts))]
		e.be.mu.Lock()
		e.be.appendErr = nil
		if rng.Intn(10) == 0 {
			e.be.appendErr = errors.New("random failure")
		}
		e.be.mu.Unlock()
		switch op {
		case 0, 1:
			r := kmsg.NewPtrInitProducerIDRequest()
			r.Version = int16(rng.Intn(6))
			r.TransactionalID = &id
			r.TransactionTimeoutMillis = 1000
			r.ProducerID, r.ProducerEpoch = pid, epoch
			if (pid == -1) != (epoch == -1) {
				r.ProducerID, r.ProducerEpoch = -1, -1
			}
			rf, _ := tr.respond()
			e.c.InitProducerID(r, rf)
		case 2, 3:
			r := kmsg.NewPtrAddPartitionsToTxnRequest()
			r.Version = int16(rng.Intn(6))
			if r.Version <= 3 {
				r.TransactionalID, r.ProducerID, r.ProducerEpoch = id, pid, epoch
				r.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: part.Topic, Partitions: []int32{part.Partition}}}
			} else {
				r.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, VerifyOnly: rng.Intn(3) == 0,
					Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: part.Topic, Partitions: []int32{part.Partition}}}}}
			}
			rf, _ := tr.respond()
			e.c.AddPartitionsToTxn(r, rf)
		case 4:
			r := kmsg.NewPtrAddOffsetsToTxnRequest()
			r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = int16(rng.Intn(5)), id, pid, epoch, "g"
			rf, _ := tr.respond()
			e.c.AddOffsetsToTxn(r, rf)
		case 5, 6:
			r := kmsg.NewPtrEndTxnRequest()
			r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = int16(rng.Intn(6)), id, pid, epoch, rng.Intn(2) == 0
			rf, _ := tr.respond()
			e.c.EndTxn(r, rf)
		case 7:
			_, done := tr.respond()
			e.c.AddImplicit(id, pid, epoch, []TopicPartition{part}, done)
		case 8:
			e.c.Verify(id, pid, epoch, part)
			r := kmsg.NewPtrDescribeTransactionsRequest()
			r.TransactionalIDs = []string{id}
			rf, _ := tr.respond()
			e.c.DescribeTransactions(r, rf)
		case 9:
			r := kmsg.NewPtrListTransactionsRequest()
			r.Version = 1
			r.DurationFilterMillis = int64(rng.Intn(3000)) - 1
			rf, _ := tr.respond()
			e.c.ListTransactions(r, rf)
		case 10:
			e.clock.advance(time.Duration(rng.Intn(1500)) * time.Millisecond)
			e.c.abortTimedOut()
		case 11:
			if rng.Intn(4) == 0 {
				e.clock.advance(8 * 24 * time.Hour)
			}
			e.c.expireIDs()
		case 12:
			e.c.TopicDeleted("u")
		case 13:
			if rng.Intn(3) == 0 {
				// Restart: wait for the appends in flight, then load the log again.
				tr.wait()
				e.c.Unload()
				e.be.setHold(false)
				time.Sleep(2 * time.Millisecond)
				e.be.mu.Lock()
				e.be.appendErr = nil
				var recs []Record
				for p := int32(0); p < 4; p++ {
					recs = append(recs, e.be.recs[p]...)
				}
				e.be.mu.Unlock()
				for _, r := range recs {
					if err := e.c.Replay(r.Key, r.Value); err != nil {
						t.Fatalf("replay of our own record: %v", err)
					}
				}
				coordEpoch++
				e.c.Loaded(coordEpoch)
			}
		}
		if rng.Intn(3) == 0 {
			tr.wait()
		}
	}
	tr.wait()
	time.Sleep(5 * time.Millisecond)
	checkLog(t, e.be.allRecords(t))
}

// checkLog checks, per id in log order: a producer id's epoch never goes
// down, and CompleteCommit/CompleteAbort follow PrepareCommit/PrepareAbort
// respectively.
func checkLog(t *testing.T, recs []decoded) {
	t.Helper()
	type last struct {
		pid     int64
		epoch   int16
		prepare State
		has     bool
	}
	seen := map[string]*last{}
	for i, r := range recs {
		l := seen[r.id]
		if r.tombstone {
			delete(seen, r.id)
			continue
		}
		d := r.data
		if l == nil {
			l = &last{prepare: -1}
			seen[r.id] = l
		}
		if l.has && d.pid == l.pid && d.epoch < l.epoch {
			t.Fatalf("record %d (%s): epoch %d after %d for producer id %d", i, r.id, d.epoch, l.epoch, d.pid)
		}
		switch d.state {
		case PrepareCommit, PrepareAbort:
			l.prepare = d.state
		case CompleteCommit, CompleteAbort:
			if want := map[State]State{PrepareCommit: CompleteCommit, PrepareAbort: CompleteAbort}[l.prepare]; d.state != want {
				t.Fatalf("record %d (%s): %v after %v", i, r.id, d.state, l.prepare)
			}
			l.prepare = -1
		default:
			if l.prepare >= 0 {
				t.Fatalf("record %d (%s): %v before the %v completed", i, r.id, d.state, l.prepare)
			}
		}
		l.pid, l.epoch, l.has = d.pid, d.epoch, true
	}
}
