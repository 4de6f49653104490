package engine

import (
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"
)

// txnBatch is rawBatch marked transactional (or control).
func txnBatch(pid int64, epoch int16, seq int32, attrs int16, values ...string) []byte {
	b := rawBatch(pid, epoch, seq, values...)
	b[22] |= byte(attrs)
	return setBatchCRC(b)
}

// txnSetup starts a broker with a topic "tp" of the given partitions and
// returns it, a client, and the InitProducerId request (60 s timeout) for
// transactional id id with its answer.
func txnSetup(t *testing.T, partitions int32, id string) (*testBroker, *kgo.Client, *kmsg.InitProducerIDRequest, *kmsg.InitProducerIDResponse) {
	t.Helper()
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	createTopic(t, c, "tp", partitions, nil)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ipr, err := init.RequestWith(testCtx(t), c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, ipr)
	}
	return tb, c, init, ipr
}

// TestTransactionalProduceRules: what a transactional batch needs to get
// in (KIP-890 part 1), per Produce version, and that clients cannot write
// control batches.
func TestTransactionalProduceRules(t *testing.T) {
	id := "rules"
	tb, c, init, ipr := txnSetup(t, 2, id)
	ctx := testCtx(t)
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch
	rc := dialRaw(t, tb.addr)
	produce := func(version int16, txnID *string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = version, -1, 5000, txnID
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "tp", tb.b.topic("tp").id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = partition, batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return rc.request(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	want := func(what string, got kmsg.ProduceResponseTopicPartition, code int16) {
		t.Helper()
		if got.ErrorCode != code {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(code))
		}
	}
	// Not added to the transaction: refused, as Kafka per version.
	want("v9, partition not added", produce(9, &id, 0, txnBatch(pid, epoch, 0, segment.AttrTransactional, "a")), kerr.InvalidTxnState.Code)
	want("v11, partition not added", produce(11, &id, 0, txnBatch(pid, epoch, 0, segment.AttrTransactional, "a")), kerr.TransactionAbortable.Code)
	want("no transactional id", produce(11, nil, 0, txnBatch(pid, epoch, 0, segment.AttrTransactional, "a")), kerr.TransactionalIDAuthorizationFailed.Code) // Kafka refuses the whole request
	// A control batch from a client.
	want("a client's control batch", produce(11, &id, 0, txnBatch(pid, epoch, 0, segment.AttrTransactional|segment.AttrControl, "x")), kerr.InvalidRecord.Code)
	if end := tb.b.partition("tp", 0).log.EndOffset(); end != 0 {
		t.Fatalf("refused batches reached the log: end %d", end)
	}
	// Added: accepted; a later batch of the same transaction too.
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "tp", Partitions: []int32{0}}}
	ar, err := add.RequestWith(ctx, c)
	if err != nil || ar.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, ar)
	}
	want("v9, added", produce(9, &id, 0, txnBatch(pid, epoch, 0, segment.AttrTransactional, "a")), 0)
	want("v11, added", produce(11, &id, 0, txnBatch(pid, epoch, 1, segment.AttrTransactional, "b")), 0)
	// v12 adds partition 1 itself (KIP-890 part 2).
	want("v12, not added yet", produce(12, &id, 1, txnBatch(pid, epoch, 0, segment.AttrTransactional, "c")), 0)
	// A non-transactional batch of the producer inside its transaction.
	want("outside the transaction", produce(11, &id, 0, txnBatch(pid, epoch, 2, 0, "d")), kerr.InvalidTxnState.Code)
	// An older epoch after a fence.
	ipr2, err := init.RequestWith(ctx, c)
	if err != nil || ipr2.ErrorCode != 0 {
		t.Fatalf("second InitProducerId: %v %v", err, ipr2)
	}
	want("the fenced epoch", produce(11, &id, 0, txnBatch(pid, epoch, 2, segment.AttrTransactional, "e")), kerr.InvalidProducerEpoch.Code)
	// The fence aborted the open transaction on both partitions: nothing
	// of it is below the last stable offset but aborted records.
	for p := int32(0); p < 2; p++ {
		l := tb.b.partition("tp", p).log
		if lso := l.LastStableOffset(l.EndOffset()); lso != l.EndOffset() {
			t.Fatalf("partition %d: LSO %d, end %d: the fenced transaction still holds it", p, lso, l.EndOffset())
		}
		if a := l.AbortedTxns(nil, 0, l.EndOffset()); len(a) != 1 || a[0].ProducerID != pid {
			t.Fatalf("partition %d: aborted %+v", p, a)
		}
	}
}

// TestTxnRequestsRefuseWhatKafkaRefuses: a client may not add an
// internal topic's partition to its transaction (TOPIC_AUTHORIZATION_FAILED,
// the others OPERATION_NOT_ATTEMPTED, as KafkaApis without an authorizer
// too), a TxnOffsetCommit for the empty group id is INVALID_GROUP_ID
// even after AddOffsetsToTxn added it, as Kafka's
// commitTransactionalOffsets, and DescribeProducers of an illegal topic
// name is INVALID_TOPIC_EXCEPTION.
func TestTxnRequestsRefuseWhatKafkaRefuses(t *testing.T) {
	id := "refused"
	tb, c, _, ipr := txnSetup(t, 1, id)
	ctx := testCtx(t)
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ipr.ProducerID, ipr.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "__consumer_offsets", Partitions: []int32{0}}, {Topic: "tp", Partitions: []int32{0}}}
	ar, err := add.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int16{}
	for _, rt := range ar.Topics {
		got[rt.Topic] = rt.Partitions[0].ErrorCode
	}
	if got["__consumer_offsets"] != kerr.TopicAuthorizationFailed.Code || got["tp"] != kerr.OperationNotAttempted.Code {
		t.Fatalf("AddPartitionsToTxn of an internal topic: %v", got)
	}

	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.Version = 3
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = id, ipr.ProducerID, ipr.ProducerEpoch, ""
	if r, err := ao.RequestWith(ctx, c); err != nil || r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %+v", err, r)
	}
	tc := kmsg.NewPtrTxnOffsetCommitRequest()
	tc.Version = 3
	tc.TransactionalID, tc.ProducerID, tc.ProducerEpoch, tc.Group, tc.Generation = id, ipr.ProducerID, ipr.ProducerEpoch, "", -1
	tc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "tp", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	tr, err := tc.RequestWith(ctx, c)
	if err != nil || tr.Topics[0].Partitions[0].ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("TxnOffsetCommit for the empty group: %v %+v", err, tr)
	}

	// DescribeProducers checks the topic's name first, as Kafka.
	dp := kmsg.NewPtrDescribeProducersRequest()
	dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "bad name!", Partitions: []int32{0}}, {Topic: "tp", Partitions: []int32{0}}}
	dr := dialRaw(t, tb.addr).request(dp).(*kmsg.DescribeProducersResponse) // kgo would ask Metadata first
	if len(dr.Topics) != 2 {
		t.Fatalf("DescribeProducers: %+v", dr)
	}
	if p := dr.Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidTopicException.Code || p.ErrorMessage == nil {
		t.Fatalf("DescribeProducers of an illegal name: %v %v", kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage)
	}
	if p := dr.Topics[1].Partitions[0]; p.ErrorCode != 0 {
		t.Fatalf("DescribeProducers of tp: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

// A transactional batch verified before its transaction's marker and
// appended after it is refused (INVALID_TXN_STATE, TRANSACTION_ABORTABLE
// from v11), as Kafka's verification guard refuses it: appended, it would
// open a transaction the coordinator has already ended and hold the
// partition's last stable offset. The test writes the marker in that
// window, which in production is a race of microseconds.
func TestTxnProduceVerifiedBeforeItsMarker(t *testing.T) {
	id := "guard"
	tb, c, _, ipr := txnSetup(t, 2, id)
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "tp", Partitions: []int32{0}}}
	if ar, err := add.RequestWith(testCtx(t), c); err != nil || ar.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, ar)
	}
	l := tb.b.partition("tp", 0).log
	var markers atomic.Int32
	hook := func(p *partition, hpid int64, hepoch int16) {
		done := make(chan error, 1)
		if _, err := p.log.AppendMarker(hpid, hepoch, 0, false, true, func(err error) { done <- err }); err != nil {
			t.Errorf("marker: %v", err)
			return
		}
		if err := <-done; err != nil {
			t.Errorf("marker: %v", err)
		}
		markers.Add(1)
	}
	tb.b.afterTxnVerify.Store(&hook)
	rc := dialRaw(t, tb.addr)
	produceTo := func(version int16, partition int32) int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = version, -1, 5000, &id
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "tp", tb.b.topic("tp").id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = partition, txnBatch(pid, epoch, 0, segment.AttrTransactional, "late")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return rc.request(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	produce := func(version int16) int16 { t.Helper(); return produceTo(version, 0) }
	if got := produce(9); got != kerr.InvalidTxnState.Code {
		t.Fatalf("v9, marker between verification and append: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(got))
	}
	if got := produce(11); got != kerr.TransactionAbortable.Code {
		t.Fatalf("v11, marker between verification and append: %v, want TRANSACTION_ABORTABLE", kerr.ErrorForCode(got))
	}
	end := l.EndOffset()
	if markers.Load() != 2 || end != 2 || l.InTransaction(pid, epoch) || l.LastStableOffset(end) != end {
		t.Fatalf("after the refused batches: %d markers written, log end %d (want the 2 markers only), open transaction %v, LSO %d",
			markers.Load(), end, l.InTransaction(pid, epoch), l.LastStableOffset(end))
	}
	// v12 adds partition 1 itself (KIP-890 part 2); a marker between
	// the add and the append (an operator's abort, which bumps no epoch)
	// refuses the batch the same way.
	if got := produceTo(12, 1); got != kerr.TransactionAbortable.Code {
		t.Fatalf("v12, marker between the add and the append: %v, want TRANSACTION_ABORTABLE", kerr.ErrorForCode(got))
	}
	l1 := tb.b.partition("tp", 1).log
	if end1 := l1.EndOffset(); markers.Load() != 3 || end1 != 1 || l1.InTransaction(pid, epoch) || l1.LastStableOffset(end1) != end1 {
		t.Fatalf("partition 1 after the refused batch: %d markers written, log end %d (want the marker only), open transaction %v",
			markers.Load(), end1, l1.InTransaction(pid, epoch))
	}
	// With nothing in between, the same batch goes in.
	tb.b.afterTxnVerify.Store(nil)
	if got := produce(11); got != 0 {
		t.Fatalf("no marker in between: %v", kerr.ErrorForCode(got))
	}
}
