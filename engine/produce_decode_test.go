package engine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceBodies encodes sample Produce requests with kmsg for every
// version, as clients send them.
func produceBodies() (versions []int16, bodies [][]byte) {
	txn := "txn"
	for v := int16(0); v <= 13; v++ {
		for _, shape := range []int{0, 1, 2} {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(v)
			req.Acks, req.TimeoutMillis = -1, 1234
			if shape == 1 {
				req.TransactionID = &txn
			}
			for ti := range shape + 1 {
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = fmt.Sprint("topic-", ti)
				rt.TopicID = [16]byte{byte(ti + 1), 2, 3}
				for pi := range shape + 2 {
					rp := kmsg.NewProduceRequestTopicPartition()
					rp.Partition = int32(pi * 3)
					if !(shape == 2 && pi == 1) {
						rp.Records = rawBatch(-1, -1, -1, fmt.Sprint(ti, pi))
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
			}
			versions = append(versions, v)
			bodies = append(bodies, req.AppendTo(nil))
		}
	}
	return versions, bodies
}

// sameAsKmsg checks a decoded request against kmsg's decoding of body.
func sameAsKmsg(t *testing.T, v int16, body []byte, got *produceRequest) {
	t.Helper()
	want := kmsg.NewPtrProduceRequest()
	want.SetVersion(v)
	if err := want.ReadFrom(body); err != nil {
		t.Fatalf("v%d: samsa decodes what kmsg refuses (%v)", v, err)
	}
	if got.acks != want.Acks || got.timeout != want.TimeoutMillis || (got.txnID != nil) != (want.TransactionID != nil) ||
		(want.TransactionID != nil && string(got.txnID) != *want.TransactionID) || len(got.topics) != len(want.Topics) {
		t.Fatalf("v%d: header %+v, kmsg %+v", v, got, want)
	}
	for i, wt := range want.Topics {
		gt := got.topics[i]
		if (v < 13 && string(gt.name) != wt.Topic) || (v >= 13 && gt.id != wt.TopicID) || len(gt.parts) != len(wt.Partitions) {
			t.Fatalf("v%d topic %d: %q %x %d parts, kmsg %q %x %d", v, i, gt.name, gt.id, len(gt.parts), wt.Topic, wt.TopicID, len(wt.Partitions))
		}
		for j, wp := range wt.Partitions {
			gp := gt.parts[j]
			if gp.idx != wp.Partition || !bytes.Equal(gp.records, wp.Records) || (gp.records == nil) != (wp.Records == nil) {
				t.Fatalf("v%d topic %d partition %d: %d %x, kmsg %d %x", v, i, j, gp.idx, gp.records, wp.Partition, wp.Records)
			}
		}
	}
}

func TestDecodeProduceMatchesKmsg(t *testing.T) {
	versions, bodies := produceBodies()
	for i, body := range bodies {
		r := getProduceRequest()
		if err := decodeProduce(r, versions[i], body); err != nil {
			t.Fatalf("v%d: %v", versions[i], err)
		}
		sameAsKmsg(t, versions[i], body, r)
		putProduceRequest(r)
	}
	// A request decodes the next one from scratch.
	r := getProduceRequest()
	defer putProduceRequest(r)
	last := len(bodies) - 1
	for _, i := range []int{last, 0, last - 1, 2} {
		if err := decodeProduce(r, versions[i], bodies[i]); err != nil {
			t.Fatal(err)
		}
		sameAsKmsg(t, versions[i], bodies[i], r)
	}
}

func TestDecodeProduceRefusesMalformed(t *testing.T) {
	_, bodies := produceBodies()
	v9 := bodies[9*3+2] // flexible, three topics
	f := func(name string, v int16, body []byte) {
		t.Helper()
		r := getProduceRequest()
		defer putProduceRequest(r)
		if err := decodeProduce(r, v, body); err == nil {
			t.Fatalf("%s: decoded %+v", name, r)
		}
	}
	head := []byte{0xff, 0xff, 0, 1, 0, 0, 0, 100} // null txn id, acks 1, timeout
	f("topics -1", 3, append(head, 0xff, 0xff, 0xff, 0xff))
	f("topics -2", 3, append(head, 0xff, 0xff, 0xff, 0xfe))
	f("topics too many", 3, append(head, 0, 0, 1, 0))
	f("topic name null", 3, append(head, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0))
	f("partitions -3", 3, append(head, 0, 0, 0, 1, 0, 1, 'x', 0xff, 0xff, 0xff, 0xfd))
	f("records too long", 3, append(head, 0, 0, 0, 1, 0, 1, 'x', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0))
	f("flexible topics null", 9, []byte{0, 0, 1, 0, 0, 0, 100, 0})
	f("flexible bad varint", 9, []byte{0, 0, 1, 0, 0, 0, 100, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80})
	for cut := 1; cut < len(v9); cut += 7 {
		f(fmt.Sprint("v9 cut at ", cut), 9, v9[:cut])
	}
	f("v13 short topic id", 13, append([]byte{0, 0, 1, 0, 0, 0, 100, 2}, 1, 2, 3))
}

func BenchmarkDecodeProduce(b *testing.B) {
	versions, bodies := produceBodies()
	v, body := versions[len(versions)-1], bodies[len(bodies)-1]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := getProduceRequest()
		if err := decodeProduce(r, v, body); err != nil {
			b.Fatal(err)
		}
		putProduceRequest(r)
	}
}

// FuzzDecodeProduce: whatever the hand-written decoder accepts, kmsg
// decodes the same way; nothing panics.
func FuzzDecodeProduce(f *testing.F) {
	versions, bodies := produceBodies()
	for i := range bodies {
		f.Add(versions[i], bodies[i])
	}
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		if v < 0 || v > 13 {
			return
		}
		r := getProduceRequest()
		defer putProduceRequest(r)
		if err := decodeProduce(r, v, body); err != nil {
			return
		}
		sameAsKmsg(t, v, body, r)
	})
}
