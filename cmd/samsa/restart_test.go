package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idempotentProducer models what the broker must remember about one
// producer id on one partition.
type idempotentProducer struct {
	pid     int64
	epoch   int16
	nextSeq int32
	batches []sentBatch
}

type sentBatch struct {
	epoch  int16
	seq    int32
	values []string
	base   int64
}

func (s sentBatch) encode(pid int64) []byte {
	return encodeBatch(batchSpec{producerID: pid, epoch: s.epoch, seq: s.seq, values: s.values})
}

// initProducerID asks for a new idempotent producer id.
func initProducerID(t *testing.T, raw *rawConn) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp := raw.roundTrip(req, 1).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 || resp.ProducerID < 0 {
		t.Fatalf("InitProducerID: error %v, id %d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// TestRestartKeepsState: topics with their configs, records and idempotent
// producer state survive SIGKILL and SIGTERM restarts, in every order. After
// a restart, a retry of any of the producer's last five batches is
// acknowledged as a duplicate (original offset, nothing appended), an older
// one and a sequence gap get OUT_OF_ORDER_SEQUENCE_NUMBER, a fenced epoch
// stays fenced, and new producer ids never reuse old ones.
func TestRestartKeepsState(t *testing.T) {
	const topic, other = "state", "state-other"
	b := startBroker(t)
	cfg := map[string]string{"retention.ms": "3600000", "max.message.bytes": "300000", "segment.bytes": "1048576"}
	ptrs := map[string]*string{}
	for k, v := range cfg {
		ptrs[k] = &v
	}
	b.createTopic(topic, 2, ptrs)
	b.createTopic(other, 1, nil)

	raw := dialRaw(t, b.addr)
	pids := map[int64]bool{}
	pid, epoch := initProducerID(t, raw)
	pids[pid] = true
	p := &idempotentProducer{pid: pid, epoch: epoch}
	leo := int64(0)  // partition 0's log end offset
	var log []string // partition 0's values, in offset order

	// appendNext sends the producer's next batch, which must be appended
	// at the log end.
	appendNext := func(raw *rawConn, version int16, values ...string) {
		t.Helper()
		s := sentBatch{epoch: p.epoch, seq: p.nextSeq, values: values}
		r := raw.produceRaw(version, topic, 0, s.encode(p.pid))
		if r.ErrorCode != 0 || r.BaseOffset != leo {
			t.Fatalf("produce seq %d: error %v, base offset %d; want appended at %d", s.seq, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset, leo)
		}
		s.base = leo
		leo += int64(len(values))
		log = append(log, values...)
		p.nextSeq += int32(len(values))
		p.batches = append(p.batches, s)
	}
	batchNo := 0
	values := func(n int) []string {
		var vs []string
		for i := range n {
			vs = append(vs, fmt.Sprintf("batch%02d-%d", batchNo, i))
		}
		batchNo++
		return vs
	}
	for _, n := range []int{3, 2, 1, 4, 1, 2} {
		appendNext(raw, 9, values(n)...)
	}
	kc := b.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 5 {
		produceSync(t, kc, &kgo.Record{Partition: 1, Value: []byte(fmt.Sprintf("p1-%d", i))})
	}
	produceSync(t, kc, &kgo.Record{Topic: other, Value: []byte("other-0")})
	kc.Close()

	check := func(when string) {
		t.Helper()
		raw := dialRaw(t, b.addr)
		defer raw.Close()

		// Topics, partition counts and configs.
		topics, err := b.admin().ListTopics(timeout(t, 10*time.Second))
		if err != nil {
			t.Fatalf("%s: list topics: %v", when, err)
		}
		if td := topics[topic]; len(td.Partitions) != 2 || td.Err != nil {
			t.Fatalf("%s: topic %s: %d partitions, %v", when, topic, len(td.Partitions), td.Err)
		}
		if td := topics[other]; len(td.Partitions) != 1 || td.Err != nil {
			t.Fatalf("%s: topic %s: %d partitions, %v", when, other, len(td.Partitions), td.Err)
		}
		rcs, err := b.admin().DescribeTopicConfigs(timeout(t, 10*time.Second), topic)
		if err != nil {
			t.Fatalf("%s: describe configs: %v", when, err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("%s: describe configs: %v %v", when, err, rc.Err)
		}
		seen := map[string]bool{}
		for _, c := range rc.Configs {
			if want, ok := cfg[c.Key]; ok {
				seen[c.Key] = true
				if c.MaybeValue() != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
					t.Fatalf("%s: %s = %q (source %v), want %q set on the topic", when, c.Key, c.MaybeValue(), c.Source, want)
				}
			}
			if c.Key == "cleanup.policy" && (c.MaybeValue() != "delete" || c.Source == kmsg.ConfigSourceDynamicTopicConfig) {
				t.Fatalf("%s: cleanup.policy = %q (source %v), want the default delete", when, c.MaybeValue(), c.Source)
			}
		}
		if len(seen) != len(cfg) {
			t.Fatalf("%s: configs %v missing from %+v", when, cfg, rc.Configs)
		}
		// max.message.bytes is in force, not just reported.
		big := sentBatch{epoch: -1, seq: -1, values: []string{strings.Repeat("x", 310000)}}
		if r := raw.produceRaw(9, topic, 1, big.encode(-1)); r.ErrorCode != kerr.MessageTooLarge.Code {
			t.Fatalf("%s: a 310 kB batch with max.message.bytes=300000: %v, want MESSAGE_TOO_LARGE", when, kerr.ErrorForCode(r.ErrorCode))
		}

		// Producer state.
		if end := raw.listEnd(topic, 0); end != leo {
			t.Fatalf("%s: log end offset %d, want %d", when, end, leo)
		}
		dup := func(i int, version int16) {
			t.Helper()
			s := p.batches[i]
			r := raw.produceRaw(version, topic, 0, s.encode(p.pid))
			if r.ErrorCode != 0 || r.BaseOffset != s.base {
				t.Fatalf("%s: retry of seq %d (v%d): error %v, base offset %d; want the duplicate acknowledged at %d",
					when, s.seq, version, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset, s.base)
			}
			if end := raw.listEnd(topic, 0); end != leo {
				t.Fatalf("%s: retry of seq %d appended: log end %d, want %d", when, s.seq, end, leo)
			}
		}
		refused := func(what string, s sentBatch, code int16) {
			t.Helper()
			r := raw.produceRaw(9, topic, 0, s.encode(p.pid))
			if r.ErrorCode != code {
				t.Fatalf("%s: %s: %v, want %v", when, what, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(code))
			}
			if end := raw.listEnd(topic, 0); end != leo {
				t.Fatalf("%s: %s appended: log end %d, want %d", when, what, end, leo)
			}
		}
		last := len(p.batches) - 1
		dup(last, 9)
		dup(last, 3) // the Produce version kafka-python-era clients use
		dup(last-2, 9)
		dup(last-4, 7)
		refused("retry of the 6th batch back (older than the 5 Kafka keeps)", p.batches[last-5], kerr.OutOfOrderSequenceNumber.Code)
		refused("sequence gap", sentBatch{epoch: p.epoch, seq: p.nextSeq + 2, values: []string{"gap"}}, kerr.OutOfOrderSequenceNumber.Code)
		if p.epoch > 0 {
			refused("fenced epoch", sentBatch{epoch: p.epoch - 1, seq: p.nextSeq, values: []string{"zombie"}}, kerr.InvalidProducerEpoch.Code)
		}
		appendNext(raw, 9, values(2)...)

		// Records, read back by a consumer.
		got := b.consumeAll(topic)
		if len(got[0]) != len(log) {
			t.Fatalf("%s: partition 0 has %d records, want %d", when, len(got[0]), len(log))
		}
		for i, r := range got[0] {
			if string(r.Value) != log[i] {
				t.Fatalf("%s: partition 0 offset %d = %q, want %q", when, i, r.Value, log[i])
			}
			if r.ProducerID != p.pid {
				t.Fatalf("%s: partition 0 offset %d has producer id %d, want %d", when, i, r.ProducerID, p.pid)
			}
		}
		if len(got[1]) != 5 || string(got[1][4].Value) != "p1-4" {
			t.Fatalf("%s: partition 1 holds %d records", when, len(got[1]))
		}
		if o := b.consumeAll(other)[0]; len(o) != 1 || string(o[0].Value) != "other-0" {
			t.Fatalf("%s: %s holds %d records", when, other, len(o))
		}

		// A new producer id is new: reusing one would tie a fresh producer
		// to another's sequence numbers.
		id, _ := initProducerID(t, raw)
		if pids[id] {
			t.Fatalf("%s: InitProducerID returned %d again", when, id)
		}
		pids[id] = true
	}

	check("before any restart")
	b.kill()
	b.restart()
	check("after SIGKILL (no snapshot yet)")
	b.stop()
	b.restart()
	check("after SIGTERM")
	b.kill()
	b.restart()
	check("after SIGTERM then SIGKILL")

	// A bumped epoch fences the old one, across restarts too.
	raw = dialRaw(t, b.addr)
	p.epoch++
	p.nextSeq = 0
	p.batches = nil
	appendNext(raw, 9, values(1)...)
	for range 4 {
		appendNext(raw, 9, values(1)...)
	}
	appendNext(raw, 9, values(3)...)
	checkEpoch := func(when string) {
		t.Helper()
		raw := dialRaw(t, b.addr)
		defer raw.Close()
		if end := raw.listEnd(topic, 0); end != leo {
			t.Fatalf("%s: log end offset %d, want %d", when, end, leo)
		}
		zombie := sentBatch{epoch: p.epoch - 1, seq: 1000, values: []string{"zombie"}}
		if r := raw.produceRaw(9, topic, 0, zombie.encode(p.pid)); r.ErrorCode != kerr.InvalidProducerEpoch.Code {
			t.Fatalf("%s: old epoch: %v, want INVALID_PRODUCER_EPOCH", when, kerr.ErrorForCode(r.ErrorCode))
		}
		last := p.batches[len(p.batches)-1]
		if r := raw.produceRaw(9, topic, 0, last.encode(p.pid)); r.ErrorCode != 0 || r.BaseOffset != last.base {
			t.Fatalf("%s: retry of the new epoch's last batch: %v at %d, want %d", when, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset, last.base)
		}
		if end := raw.listEnd(topic, 0); end != leo {
			t.Fatalf("%s: log end offset %d after refused and duplicate batches, want %d", when, end, leo)
		}
		appendNext(raw, 9, values(1)...)
	}
	checkEpoch("after an epoch bump")
	b.kill()
	b.restart()
	checkEpoch("epoch bump, after SIGKILL")
	b.stop()
	b.restart()
	checkEpoch("epoch bump, after SIGTERM")
	check("at the end")
}

// TestIdempotentProducerAcrossRestarts keeps one franz-go idempotent
// producer writing while the broker is SIGKILLed and SIGTERMed and
// restarted under it. The client retries what was in flight with the same
// sequence numbers; the broker, with its producer state rebuilt, must
// acknowledge what it already had as duplicates: in the end every record
// is acknowledged, stored exactly once, in send order.
func TestIdempotentProducerAcrossRestarts(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	const topic = "idem"
	b := startBroker(t)
	b.createTopic(topic, 2, nil)
	c := b.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))

	type result struct {
		err  error
		part int32
		off  int64
	}
	var (
		mu      sync.Mutex
		results = map[int]result{}
		pending sync.WaitGroup
	)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		i := 0
		defer func() { done <- i }()
		for ; i < 200_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%10 == 9 {
				time.Sleep(time.Millisecond)
			}
			i := i
			pending.Add(1)
			c.Produce(context.Background(), &kgo.Record{Key: []byte(fmt.Sprint(i % 5)), Value: []byte(fmt.Sprintf("v%06d", i))},
				func(r *kgo.Record, err error) {
					mu.Lock()
					results[i] = result{err, r.Partition, r.Offset}
					mu.Unlock()
					pending.Done()
				})
		}
	}()
	pause := func() { time.Sleep(time.Duration(200+rand.IntN(200)) * time.Millisecond) }
	pause()
	b.kill()
	b.restart()
	pause()
	b.stop()
	b.restart()
	pause()
	b.kill()
	b.restart()
	pause()
	close(stop)
	sent := <-done
	if err := c.Flush(timeout(t, 30*time.Second)); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if !waitGroupTimeout(&pending, 10*time.Second) {
		t.Fatal("promises pending after flush")
	}
	mu.Lock()
	defer mu.Unlock()
	failed := 0
	for i := range sent {
		if r := results[i]; r.err != nil {
			if failed < 5 {
				t.Errorf("record %d: %v", i, r.err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d records failed across restarts", failed, sent)
	}

	got := b.consumeAll(topic)
	stored := 0
	for p, rs := range got {
		last := -1
		for _, r := range rs {
			var i int
			if _, err := fmt.Sscanf(string(r.Value), "v%d", &i); err != nil {
				t.Fatalf("%d/%d: value %q", p, r.Offset, r.Value)
			}
			if i <= last {
				t.Fatalf("partition %d: record %d at offset %d after record %d: duplicate or reordered", p, i, r.Offset, last)
			}
			last = i
			if want := results[i]; want.part != p || want.off != r.Offset {
				t.Fatalf("record %d acknowledged at %d/%d, stored at %d/%d", i, want.part, want.off, p, r.Offset)
			}
		}
		stored += len(rs)
	}
	if stored != sent {
		t.Fatalf("%d records stored, %d sent and acknowledged", stored, sent)
	}
	t.Logf("%d records through 3 restarts, each stored once", sent)
}
