package txn

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// __transaction_state records use Kafka's own schemas (TransactionLogKey
// v0 {transactional id}, TransactionLogValue v0/v1), so Kafka's tools can
// read the topic. samsa writes value version 1 (what Kafka writes at
// transaction.version >= 1) and reads 0 and 1; a nil value deletes the
// id. One record per transition, as in Kafka.

const (
	keyVersion   = 0
	valueVersion = 1
)

func txnKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: keyVersion, TransactionalID: id}
	return k.AppendTo(nil)
}

// txnRecord is d as the record of id.
func txnRecord(id string, d *txnData) Record {
	return Record{Key: txnKey(id), Value: encodeValue(valueVersion, d)}
}

func encodeValue(version int16, d *txnData) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = version
	v.ProducerID = d.pid
	v.ProducerEpoch = d.epoch
	v.TimeoutMillis = d.timeoutMs
	v.State = kmsg.TransactionState(d.state)
	// Kafka writes null partitions in Empty and a (possibly empty) list
	// otherwise (TransactionLog.valueToBytes).
	if d.state != Empty {
		v.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range d.sortedParts() {
			if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
				v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			}
			last := &v.Topics[len(v.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
	}
	v.LastUpdateTimestamp = d.updateMs
	v.StartTimestamp = d.startMs
	v.PreviousProducerID = d.prevPid
	v.NextProducerID = d.nextPid
	v.ClientTransactionVersion = d.tv
	return v.AppendTo(nil)
}

// decodeValue reads a TransactionLogValue v0 or v1.
func decodeValue(b []byte) (txnData, error) {
	if err := checkTagCounts(b); err != nil {
		return txnData{}, fmt.Errorf("cannot decode transaction value: %w", err)
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(b); err != nil {
		return txnData{}, fmt.Errorf("cannot decode transaction value: %w", err)
	}
	if v.Version < 0 || v.Version > 1 {
		return txnData{}, fmt.Errorf("cannot decode transaction value: version %d", v.Version)
	}
	if v.State < 0 || int(v.State) >= len(stateNames) {
		return txnData{}, fmt.Errorf("cannot decode transaction value: state %d", v.State)
	}
	d := txnData{
		pid:       v.ProducerID,
		prevPid:   v.PreviousProducerID,
		nextPid:   v.NextProducerID,
		epoch:     v.ProducerEpoch,
		lastEpoch: noEpoch,
		timeoutMs: v.TimeoutMillis,
		state:     State(v.State),
		parts:     map[TopicPartition]struct{}{},
		startMs:   v.StartTimestamp,
		updateMs:  v.LastUpdateTimestamp,
		tv:        v.ClientTransactionVersion,
	}
	// As Kafka's readTxnRecordValue: partitions count only outside Empty.
	if d.state != Empty {
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				d.parts[TopicPartition{t.Topic, p}] = struct{}{}
			}
		}
	}
	return d, nil
}

// checkTagCounts bounds the tagged-field counts of a flexible (v1+)
// value before kmsg decodes it: kmsg v1.15.0 loops once per claimed tag
// even after the input ran out, so a 40-byte value claiming 2^32 tags
// takes a minute to reject (found by FuzzReplay). This walks the layout
// only far enough to find the counts; the decoding stays kmsg's.
func checkTagCounts(b []byte) error {
	if len(b) < 2 || int16(binary.BigEndian.Uint16(b)) < 1 {
		return nil // v0 has no tagged fields
	}
	const fixed = 2 + 8 + 2 + 4 + 1 // version, pid, epoch, timeout, state
	if len(b) < fixed {
		return nil // kmsg reports the short value
	}
	b = b[fixed:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	skip := func(n uint64) bool {
		if n > uint64(len(b)) {
			return false
		}
		b = b[n:]
		return true
	}
	tags := func() bool {
		n, ok := uv()
		if !ok || n > uint64(len(b)) {
			return false
		}
		for ; n > 0; n-- {
			if _, ok := uv(); !ok {
				return false
			}
			size, ok := uv()
			if !ok || !skip(size) {
				return false
			}
		}
		return true
	}
	topics, ok := uv()
	if !ok || topics > uint64(len(b))+1 {
		return fmt.Errorf("topic count %d past the end", int64(topics)-1)
	}
	for i := uint64(1); i < topics; i++ {
		l, ok := uv() // compact string: length+1
		if !ok || l == 0 || !skip(l-1) {
			return fmt.Errorf("bad topic")
		}
		parts, ok := uv()
		if !ok || parts == 0 || parts-1 > uint64(len(b))/4 || !skip(4*(parts-1)) {
			return fmt.Errorf("bad partition list")
		}
		if !tags() {
			return fmt.Errorf("bad tagged fields in a topic")
		}
	}
	if !skip(16) || !tags() {
		return fmt.Errorf("bad tagged fields")
	}
	return nil
}

// Replay applies one record of __transaction_state while loading, in log
// order (value nil = tombstone). The last record of an id wins. A record
// with a key version other than 0 is skipped, as Kafka does; malformed
// records return an error and change nothing.
func (c *Coordinator) Replay(key, value []byte) error { return c.replay(nil, key, value) }

// ReplayIn is Replay for the load that Generation returned gen to: once
// the coordinator was unloaded (the node stepped down) it changes nothing
// and returns ErrStaleLoad.
func (c *Coordinator) ReplayIn(gen uint64, key, value []byte) error {
	return c.replay(&gen, key, value)
}

func (c *Coordinator) replay(gen *uint64, key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("cannot replay transaction record: key of %d bytes", len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v != keyVersion {
		c.logger.Warn("skipping __transaction_state record with an unknown key version", "version", v)
		return nil
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("cannot replay transaction record: key: %w", err)
	}
	var d txnData
	if value != nil {
		var err error
		if d, err = decodeValue(value); err != nil {
			return fmt.Errorf("cannot replay transaction record of %q: %w", k.TransactionalID, err)
		}
	}
	c.lock()
	defer c.unlock()
	if gen != nil && *gen != c.gen {
		return ErrStaleLoad
	}
	// Dead is never written as a value (the log gets a tombstone), but
	// mean the same if it were.
	if value == nil || d.state == Dead {
		delete(c.txns, k.TransactionalID)
		return nil
	}
	t := c.txns[k.TransactionalID]
	if t == nil {
		t = &txn{id: k.TransactionalID, p: c.cfg.PartitionFor(k.TransactionalID, c.parts)}
		c.txns[k.TransactionalID] = t
	}
	t.txnData = d
	// Who aborted is not in the log: assume the coordinator did, so a
	// late commit gets the recoverable PRODUCER_FENCED.
	t.fencedAbort = true
	return nil
}
