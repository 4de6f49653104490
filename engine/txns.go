package engine

// The transaction coordinator's wiring. engine/txn holds the semantics of
// the transaction APIs (api_initproducerid.go, api_addpartitionstotxn.go,
// ...); this file gives it its log, the internal topic __transaction_state
// (Kafka's TransactionLog records, compacted, replicated to the standby
// like every partition), and its marker writer (txn_markers.go). The topic
// is created on first use, as Kafka does, and replayed on start and on
// promotion; until the replay is done transactional requests get
// COORDINATOR_LOAD_IN_PROGRESS, and the coordinator then completes the
// transactions the log left in PrepareCommit or PrepareAbort. The
// coordinator epoch stamped on markers is the pair's epoch, which rises at
// every promotion, so a deposed primary's markers are fenced.

import (
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/engine/group"
	"samsa/engine/txn"
	"samsa/segment"
)

const txnStateTopic = "__transaction_state"

// ensureTxnTopic creates __transaction_state if it does not exist yet.
func (b *Broker) ensureTxnTopic() (*topic, *topicError) {
	return b.ensureInternalTopic(txnStateTopic, b.txns.Partitions(), b.cfg.TxnStateSegmentBytes, "the primary coordinates transactions")
}

// txnBackend gives the transaction coordinator its log and markers.
type txnBackend struct{ b *Broker }

func (tb txnBackend) AppendErrorCode(err error) int16 {
	switch {
	case errors.Is(err, errNotEnoughReplicas):
		return kerr.CoordinatorNotAvailable.Code
	case errors.Is(err, segment.ErrBatchTooLarge):
		// As Kafka's appendTransactionToLog: not the client's record.
		return kerr.UnknownServerError.Code
	}
	return kerr.NotCoordinator.Code
}

// Append writes recs as one batch, acknowledged as acks=all records are.
func (tb txnBackend) Append(p int32, recs []txn.Record, done func(error)) {
	kvs := make([][2][]byte, len(recs))
	for i, r := range recs {
		kvs[i] = [2][]byte{r.Key, r.Value}
	}
	tb.b.appendInternal(txnStateTopic, tb.b.ensureTxnTopic, p, kvs, true, -1, -1, done)
}

// WriteMarkers writes the markers of one transaction end, one partition
// at a time in parallel, and reports each partition's code.
func (tb txnBackend) WriteMarkers(pid int64, epoch int16, coordEpoch int32, commit bool, parts []txn.TopicPartition, done func(codes []int16)) {
	b := tb.b
	codes := make([]int16, len(parts))
	var wg sync.WaitGroup
	for i, tp := range parts {
		p := b.partition(tp.Topic, tp.Partition)
		if p == nil {
			codes[i] = kerr.UnknownTopicOrPartition.Code
			continue
		}
		wg.Add(1)
		b.writeMarker(p, pid, epoch, coordEpoch, commit, func(code int16) {
			codes[i] = code
			wg.Done()
		})
	}
	go func() {
		wg.Wait()
		done(codes)
	}()
}

func (tb txnBackend) NewProducerID() (int64, error) { return tb.b.allocProducerID() }

func (tb txnBackend) PartitionExists(topic string, partition int32) bool {
	return tb.b.partition(topic, partition) != nil
}

func (tb txnBackend) InternalTopic(topic string) bool { return isInternalTopic(topic) }

func (tb txnBackend) OffsetsPartition(g string) txn.TopicPartition {
	return txn.TopicPartition{Topic: offsetsTopic, Partition: group.PartitionFor(g, tb.b.groups.Partitions())}
}

// startTxns creates the coordinator and, if __transaction_state exists,
// loads it in the background.
func (b *Broker) startTxns() {
	parts := b.cfg.TxnStatePartitions
	if t := b.topic(txnStateTopic); t != nil {
		parts = int32(len(t.parts()))
	}
	cfg := b.cfg.Txn
	cfg.PartitionFor = group.PartitionFor
	b.txns = txn.New(cfg, txnBackend{b}, parts, b.logger)
	if b.pair.IsStandby() {
		b.txns.SetNotCoordinator() // until promoted
		return
	}
	b.loadTxns()
}

// loadTxns replays __transaction_state into the coordinator in the
// background, then serves transactions and completes the ones the log
// left half-way.
func (b *Broker) loadTxns() {
	t := b.topic(txnStateTopic)
	epoch := b.pair.Epoch()
	if t == nil {
		b.txns.Loaded(epoch)
		return
	}
	// A node that steps down meanwhile (Unload) makes this load stale:
	// it stops, and serves nothing.
	gen := b.txns.Generation()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		start := time.Now()
		n := 0
		for _, p := range t.parts() {
			err := readLog(p.log, func(key, value []byte) error {
				select {
				case <-b.quit:
					return errShuttingDown
				default:
				}
				n++
				return b.txns.ReplayIn(gen, key, value)
			})
			if errors.Is(err, errShuttingDown) {
				return
			}
			if errors.Is(err, txn.ErrStaleLoad) {
				b.logger.Info("transaction load abandoned: this node stepped down")
				return
			}
			if err != nil {
				b.logger.Error("cannot load transactions; skipping the rest of the partition", "partition", p.idx, "err", err)
			}
		}
		if !b.txns.LoadedIn(gen, epoch) {
			b.logger.Info("transaction load abandoned: this node stepped down")
			return
		}
		b.logger.Info("transactions loaded", "records", n, "took", time.Since(start).Round(time.Millisecond))
	}()
}
