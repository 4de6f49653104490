package engine

// Produce (key 0), advertised v0-v13, served v3-v13.
//
// Only record batch v2 is stored, so v0-v2 requests (message sets v0/v1)
// get UNSUPPORTED_FOR_MESSAGE_FORMAT per partition; v0 stays advertised
// because librdkafka stops compressing when it is missing. Each partition
// takes exactly one batch (as Kafka requires from v3), validated for
// framing, CRC32C, magic, record count, timestamps and max.message.bytes;
// errors are per partition and leave the other partitions of the request
// unaffected. The batch bytes go to the log as received, with offsets
// assigned by rewriting the header. The response is sent when every
// partition's write completed: after the page cache write for acks=1, after
// fsync for acks=all (per the durability policy). acks=0 gets no response;
// if any partition failed the connection is closed, as Kafka does.
// Transactional batches (KIP-98) need the request's transactional id and
// their partition in the producer's open transaction, as the transaction
// coordinator knows it (KIP-890 part 1; Produce v12+ adds the partition
// itself, part 2): else INVALID_TXN_STATE (v10 and older) or
// TRANSACTION_ABORTABLE (v11+). Clients may not write control batches
// (INVALID_RECORD).
//
// Topic policy, as Kafka applies it: acks=all fails with
// NOT_ENOUGH_REPLICAS while fewer than min.insync.replicas replicas are in
// sync (one, this node, until a standby exists); compacted topics refuse
// records without a key (INVALID_RECORD), and a CreateTime timestamp
// outside message.timestamp.before.max.ms / after.max.ms, or a producer's
// LogAppendTime, is refused (INVALID_TIMESTAMP): from v8 the answer names
// each record refused (KIP-467). A topic compression.type other than
// "producer" re-encodes batches sent with another codec. A compressed batch
// is inflated and its records checked as an uncompressed one's (Kafka's
// LogValidator does the same): a payload that does not inflate, or not to
// the records its header counts, is INVALID_RECORD; one inflating past 256
// MiB is MESSAGE_TOO_LARGE (clients split the batch). It is stored as sent.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
	"samsa/engine/txn"
	"samsa/netio"
	"samsa/segment"
)

func init() {
	regRaw(kmsg.Produce.Int16(), 0, 13, 9, func(b *Broker, req *netio.Request, body []byte) {
		r := getProduceRequest()
		if err := decodeProduce(r, req.APIVersion, body); err != nil {
			putProduceRequest(r)
			b.badRequest(req, err)
			return
		}
		b.handleProduce(req, r)
	})
}

// handleProduce appends every partition's batch and answers once all
// appends completed. It owns r and returns it to the pool.
func (b *Broker) handleProduce(req *netio.Request, r *produceRequest) {
	reqBytes := int64(len(req.Body)) // producer_byte_rate counts the request
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(r.version)
	acks := r.acks
	if acks == 0 {
		exemptFromRequestQuota(req) // as Kafka: acks=0 is not throttled for its time
	}
	// producer_byte_rate: the request's bytes are charged as it arrives.
	// Over the quota the connection is muted now, on the worker, before
	// its next request is taken (the appends finish later), from Produce
	// v6 (KIP-219) and for acks=0, which has no answer to delay; the
	// answer says for how long (throttle_time_ms).
	throttle := b.throttle(req, quotaProduce, reqBytes)
	kip219 := r.version >= 6 // r goes back to its pool before the answer
	if throttle > 0 && (acks == 0 || kip219) {
		b.mute(req, throttle)
	}
	var (
		mu      sync.Mutex // guards partition responses written by callbacks
		pending atomic.Int32
	)
	pending.Store(1)
	finish := func() {
		if pending.Add(-1) != 0 {
			return
		}
		// Every append is done with the request's batches.
		putProduceRequest(r)
		if acks == 0 {
			req.Done()
			// There is no response to carry an error: like Kafka, close the
			// connection so the client notices and refreshes metadata.
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 {
						req.Conn.Close("acks=0 produce failed: " + kerr.ErrorForCode(p.ErrorCode).Error())
						return
					}
				}
			}
			return
		}
		if throttle > 0 {
			resp.ThrottleMillis = int32(throttle / time.Millisecond)
			if !kip219 {
				// Before KIP-219 the client would not hold off by
				// itself: its answer waits instead.
				b.later(throttle, func() { respond(req, resp) })
				return
			}
		}
		respond(req, resp) // no closure: none is allocated unthrottled
	}
	sync := b.syncFor(acks)
	badAcks := acks != 0 && acks != 1 && acks != -1
	setErr := func(sp *kmsg.ProduceResponseTopicPartition, code int16, msg string) {
		sp.ErrorCode = code
		if msg != "" && r.version >= 8 {
			sp.ErrorMessage = &msg
		}
	}
	// refuseRecords answers a batch refused for some of its records:
	// from v8 the answer names them (KIP-467).
	refuseRecords := func(sp *kmsg.ProduceResponseTopicPartition, err error) bool {
		var refused *recordsRefused
		if !errors.As(err, &refused) {
			return false
		}
		setErr(sp, errCode(err), err.Error())
		if r.version >= 8 {
			sp.ErrorRecords = refused.records
		}
		return true
	}
	// appendPart appends one partition's checked batch. A request's
	// partitions are independent: each goes as soon as it is checked,
	// except those waiting for their transaction to take them (below).
	appendPart := func(t *topic, p *partition, sp *kmsg.ProduceResponseTopicPartition, batch []byte, h *segment.BatchHeader, pol *topicPolicy, guard int64) {
		pending.Add(1)
		appendFn := p.log.Append
		if guard >= 0 {
			appendFn = func(batch []byte, h *segment.BatchHeader, sync bool, done func(error)) (segment.AppendResult, error) {
				return p.log.AppendVerified(batch, h, uint64(guard), sync, done)
			}
		}
		res, err := appendFn(batch, h, sync, func(err error) {
			if err != nil {
				mu.Lock()
				sp.ErrorCode = errCode(err)
				sp.BaseOffset = -1
				mu.Unlock()
				if n, ok := b.ioLog.Allow(); ok {
					b.logger.Error("produce write failed", "topic", t.name, "partition", p.idx, "err", err, "suppressed", n)
				}
			}
			finish()
		})
		if err != nil {
			pending.Add(-1)
			code := errCode(err)
			if errors.Is(err, segment.ErrTxnNotVerified) {
				code = verifyCode(code, r.version, 11, 12, kerr.NotEnoughReplicas.Code)
			}
			setErr(sp, code, err.Error())
			return
		}
		t.stats.bytesIn.Add(int64(len(batch)))
		t.stats.recordsIn.Add(int64(h.NumRecords))
		mu.Lock()
		if sp.ErrorCode == 0 {
			sp.BaseOffset = res.BaseOffset
		}
		sp.LogAppendTime = res.LogAppendTime
		sp.LogStartOffset = res.LogStartOffset
		mu.Unlock()
		if acks == -1 && b.pair.Replicated() {
			// acks=all also waits for the standby while it is in sync.
			pending.Add(1)
			var asked time.Time
			if b.cfg.Metrics != nil {
				asked = time.Now()
			}
			p.replica.WaitForStandby(res.BaseOffset+int64(h.LastOffsetDelta)+1, pol.minISR, func(code int16) {
				if !asked.IsZero() {
					b.cfg.Metrics.observeStandby(time.Since(asked))
				}
				if code != 0 {
					mu.Lock()
					sp.ErrorCode = code
					mu.Unlock()
				}
				finish()
			})
		}
	}
	// The partitions a transactional producer's Produce v12+ adds to its
	// transaction: added all in one coordinator write, then appended.
	type waiting struct {
		t     *topic
		p     *partition
		sp    *kmsg.ProduceResponseTopicPartition
		batch []byte
		h     segment.BatchHeader
		pol   *topicPolicy
	}
	var toAdd []txn.TopicPartition
	var waits []waiting
	var txnPID int64
	var txnEpoch int16
	// Authorization, as Kafka's handleProduceRequest: a request with
	// transactional batches needs a transactional id the principal may
	// WRITE (without one, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, with or
	// without an authorizer); each topic needs WRITE (Kafka answers
	// TOPIC_AUTHORIZATION_FAILED whether or not the topic exists).
	// (The batches are looked at last: most requests are settled before.)
	txnDenied := (!r.hasTxnID || b.authz != nil && !b.allowed(req, acl.OpWrite, acl.ResourceTransactionalID, string(r.txnID))) &&
		r.hasTransactionalBatches()
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(r.topics))
	for ti := range r.topics {
		rt := &r.topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewProduceResponseTopic()
		var t *topic
		if r.version >= 13 {
			st.TopicID = rt.id
			t = b.topicByID(rt.id)
		} else {
			st.Topic = string(rt.name)
			t = b.topic(st.Topic)
		}
		name := st.Topic
		if t != nil {
			name = t.name
		}
		topicDenied := b.authz != nil && (t != nil || r.version < 13) && !b.allowed(req, acl.OpWrite, acl.ResourceTopic, name)
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.parts))
		for pi := range rt.parts {
			rp := &rt.parts[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.idx
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			fail := func(code int16, msg string) { setErr(sp, code, msg) }
			switch {
			case badAcks:
				fail(kerr.InvalidRequiredAcks.Code, "acks must be 0, 1 or -1")
				continue
			case txnDenied:
				fail(kerr.TransactionalIDAuthorizationFailed.Code, "")
				continue
			case topicDenied:
				fail(kerr.TopicAuthorizationFailed.Code, "")
				continue
			case t == nil && r.version >= 13:
				fail(kerr.UnknownTopicID.Code, "")
				continue
			case t == nil || rp.idx < 0 || int(rp.idx) >= len(t.parts()):
				fail(kerr.UnknownTopicOrPartition.Code, "")
				continue
			case b.pair.IsStandby():
				fail(kerr.NotLeaderForPartition.Code, "this node is the standby")
				continue
			case t.internal:
				fail(kerr.InvalidTopicException.Code, "cannot append to internal topic "+t.name)
				continue
			case r.version < 3:
				fail(kerr.UnsupportedForMessageFormat.Code, "samsa stores record batch v2 only; use Produce v3 or later")
				continue
			case rp.records == nil:
				fail(kerr.InvalidRecord.Code, "null records")
				continue
			case len(rp.records) < segment.BatchHeaderSize || rp.records[16] != 2:
				// As Kafka: v3+ must carry exactly one batch of magic 2.
				fail(kerr.InvalidRecord.Code, "produce v3+ needs exactly one record batch of magic 2")
				continue
			case r.version < 7 && rp.records[22]&segment.AttrCompressionMask == 4:
				fail(kerr.UnsupportedCompressionType.Code, "zstd needs Produce v7 or later")
				continue
			}
			p := t.parts()[rp.idx]
			h, err, streamed := streamedValidation(req.Prepared, rp.records)
			if !streamed {
				h, err = segment.ValidateBatch(rp.records)
			}
			if err != nil {
				if len(rp.records) > int(h.Size()) && h.Size() > segment.BatchHeaderSize {
					if _, err2 := segment.ValidateBatch(rp.records[:h.Size()]); err2 == nil {
						fail(kerr.InvalidRecord.Code, "a produce request must hold exactly one record batch per partition")
						continue
					}
				}
				fail(errCode(err), err.Error())
				continue
			}
			if h.IsControl() {
				fail(kerr.InvalidRecord.Code, "clients may not write control batches")
				continue
			}
			if h.HasProducer() && h.BaseSequence < 0 {
				// As LogValidator.validateBatch: with no sequence the
				// producer's state could not dedupe or order it.
				fail(kerr.InvalidRecord.Code, fmt.Sprintf("Invalid sequence number %d in record batch with producerId %d in topic partition %s-%d",
					h.BaseSequence, h.ProducerID, t.name, p.idx))
				continue
			}
			pol := t.policy.Load()
			if acks == -1 && pol.minISR > b.inSyncReplicas(p) {
				fail(kerr.NotEnoughReplicas.Code, fmt.Sprintf("min.insync.replicas is %d, %d in sync", pol.minISR, b.inSyncReplicas(p)))
				continue
			}
			// The batch as sent is measured, before any recompression
			// and before its records are checked, as Kafka's
			// analyzeAndValidateRecords.
			if max := p.log.MaxMessageBytes(); int64(len(rp.records)) > max {
				fail(kerr.MessageTooLarge.Code, fmt.Sprintf("the batch is %d bytes, max.message.bytes is %d", len(rp.records), max))
				continue
			}
			batch, err := prepareBatch(pol, t.name, p.idx, rp.records, &h)
			if err != nil {
				if !refuseRecords(sp, err) {
					fail(errCode(err), err.Error())
				}
				continue
			}
			if !h.IsTransactional() {
				appendPart(t, p, sp, batch, &h, pol, -1)
				continue
			}
			// KIP-890: a transactional batch gets in only if its partition
			// is in the producer's open transaction (Produce v12+ adds it),
			// so no transaction the coordinator does not know of can hold
			// the partition's last stable offset back.
			if !r.hasTxnID {
				fail(kerr.InvalidTxnState.Code, "a transactional batch needs the request's transactional id")
				continue
			}
			// Read before the verification: a marker written after it
			// fails the append (Log.TxnGuard).
			guard := int64(p.log.TxnGuard())
			code := b.verifyTxnProduce(r, p, &h)
			if code == 0 {
				if f := b.afterTxnVerify.Load(); f != nil {
					(*f)(p, h.ProducerID, h.ProducerEpoch)
				}
				appendPart(t, p, sp, batch, &h, pol, guard)
				continue
			}
			addable := code == kerr.TransactionAbortable.Code || code == kerr.InvalidTxnState.Code || code == kerr.ConcurrentTransactions.Code
			if r.version < 12 || !addable || (len(toAdd) > 0 && (h.ProducerID != txnPID || h.ProducerEpoch != txnEpoch)) {
				fail(verifyCode(code, r.version, 11, 12, kerr.NotEnoughReplicas.Code), "the partition is not in the producer's transaction: "+kerr.ErrorForCode(code).Error())
				continue
			}
			txnPID, txnEpoch = h.ProducerID, h.ProducerEpoch
			toAdd = append(toAdd, txn.TopicPartition{Topic: t.name, Partition: p.idx})
			waits = append(waits, waiting{t, p, sp, batch, h, pol})
		}
	}
	if len(toAdd) > 0 {
		// The connection's next request waits for the add (one
		// __transaction_state write): its batches must follow these in
		// the log, or their sequence numbers would arrive out of order.
		// The guard is read before the add, as Kafka's; but when the
		// add waited for the producer's previous transaction to end, its
		// markers came after that read, and the guard is read again once
		// the add is answered (no marker of this transaction can come
		// before, but for a fence, which the epoch check refuses anyway).
		type addResult struct {
			code   int16
			waited bool
		}
		guards := make([]int64, len(waits))
		for i := range waits {
			guards[i] = int64(waits[i].p.log.TxnGuard())
		}
		added := make(chan addResult, 1)
		b.txns.AddImplicitWaiting(string(r.txnID), txnPID, txnEpoch, toAdd, func(code int16, waited bool) { added <- addResult{code, waited} })
		res := <-added
		code := res.code
		for i := range waits {
			w := &waits[i]
			if code != 0 {
				setErr(w.sp, verifyCode(code, r.version, 11, 12, kerr.NotEnoughReplicas.Code), "cannot add the partition to the transaction: "+kerr.ErrorForCode(code).Error())
				continue
			}
			if res.waited {
				guards[i] = int64(w.p.log.TxnGuard())
			}
			if f := b.afterTxnVerify.Load(); f != nil {
				(*f)(w.p, w.h.ProducerID, w.h.ProducerEpoch)
			}
			appendPart(w.t, w.p, w.sp, w.batch, &w.h, w.pol, guards[i])
		}
	}
	finish()
}

// verifyTxnProduce asks the transaction coordinator whether a
// transactional batch's partition is in its producer's open transaction;
// a producer already in a transaction on the partition needs no asking.
func (b *Broker) verifyTxnProduce(r *produceRequest, p *partition, h *segment.BatchHeader) int16 {
	if p.log.InTransaction(h.ProducerID, h.ProducerEpoch) {
		return 0
	}
	return b.txns.Verify(string(r.txnID), h.ProducerID, h.ProducerEpoch, txn.TopicPartition{Topic: p.t.name, Partition: p.idx})
}
