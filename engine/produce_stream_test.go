package engine

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"
)

// produceFrame is a whole Produce frame (after its size prefix) as a client
// sends it: request header v1 (v2 with empty tags when flexible) and body.
func produceFrame(v int16, body []byte) []byte {
	f := binary.BigEndian.AppendUint16(nil, 0)
	f = binary.BigEndian.AppendUint16(f, uint16(v))
	f = binary.BigEndian.AppendUint32(f, 7)
	f = binary.BigEndian.AppendUint16(f, 3)
	f = append(f, "cli"...)
	if v >= 9 {
		f = append(f, 0)
	}
	return append(f, body...)
}

// TestStreamedCRC: however a Produce frame arrives in pieces, the CRC
// streamed for each batch is the batch's CRC, found by the worker for the
// batch it decodes from the same buffer.
func TestStreamedCRC(t *testing.T) {
	tb := &Broker{}
	versions, bodies := produceBodies()
	rng := rand.New(rand.NewPCG(3, 4))
	for i, body := range bodies {
		v := versions[i]
		frame := produceFrame(v, body)
		for trial := range 20 {
			// Stream the frame in random pieces, into one buffer as netio
			// does.
			buf := make([]byte, 0, len(frame))
			var state any
			for len(buf) < len(frame) {
				n := 1 + rng.IntN(max(1, len(frame)/(1+trial)))
				n = min(n, len(frame)-len(buf))
				buf = append(buf, frame[len(buf):len(buf)+n]...)
				state = tb.Stream(buf, state)
			}
			if v < 3 {
				if state != nil {
					t.Fatalf("v%d: streamed a version that carries no record batches", v)
				}
				continue
			}
			r := getProduceRequest()
			hdr := len(frame) - len(body)
			if err := decodeProduce(r, v, buf[hdr:]); err != nil {
				t.Fatal(err)
			}
			for _, rt := range r.topics {
				for _, rp := range rt.parts {
					if rp.records == nil {
						continue
					}
					h, err, ok := streamedValidation(state, rp.records)
					wh, werr := segment.ValidateBatch(rp.records)
					if !ok || err != nil || werr != nil || h != wh {
						t.Fatalf("v%d trial %d: streamed %+v, %v (%v); whole %+v, %v", v, trial, h, err, ok, wh, werr)
					}
				}
			}
			putProduceRequest(r)
		}
	}
	// Other APIs and truncated frames are not streamed.
	if st := tb.Stream([]byte{0, 1, 0, 11}, nil); st != nil {
		t.Fatal("streamed a Fetch")
	}
	if st := tb.Stream([]byte{0}, nil); st != nil {
		t.Fatal("streamed a one-byte frame")
	}
}

// TestStreamedCRCCatchesCorruption: a batch whose bytes do not match its
// CRC is refused through the streamed path too.
func TestStreamedCRCCatchesCorruption(t *testing.T) {
	tb := &Broker{}
	versions, bodies := produceBodies()
	v, body := versions[len(versions)-1], bodies[len(bodies)-1]
	frame := produceFrame(v, body)
	// Flip a byte in the last batch's records (the frame's last bytes,
	// before the trailing tags).
	frame[len(frame)-5] ^= 0x40
	state := tb.Stream(frame, nil)
	r := getProduceRequest()
	if err := decodeProduce(r, v, frame[len(frame)-len(body):]); err != nil {
		t.Fatal(err)
	}
	var bad int
	for _, rt := range r.topics {
		for _, rp := range rt.parts {
			if rp.records == nil {
				continue
			}
			_, err, ok := streamedValidation(state, rp.records)
			if !ok {
				t.Fatal("batch not streamed")
			}
			if err != nil {
				if !errors.Is(err, segment.ErrCorruptBatch) {
					t.Fatalf("corrupted batch: %v, want a CRC error", err)
				}
				bad++
			}
		}
	}
	if bad != 1 {
		t.Fatalf("%d batches refused, want the corrupted one", bad)
	}
}

// FuzzStream: arbitrary frames, arriving in pieces, never make Stream
// panic, and what it reports for a batch is what ValidateBatch says of it.
func FuzzStream(f *testing.F) {
	versions, bodies := produceBodies()
	for i := range bodies {
		f.Add(produceFrame(versions[i], bodies[i]), uint8(7))
	}
	tb := &Broker{}
	f.Fuzz(func(t *testing.T, frame []byte, step uint8) {
		var state any
		n := int(step) + 1
		for end := min(n, len(frame)); ; end = min(end+n, len(frame)) {
			state = tb.Stream(frame[:end], state)
			if end == len(frame) {
				break
			}
		}
		st, _ := state.(*crcStream)
		if st == nil {
			return
		}
		for _, sb := range st.batches {
			if !sb.done {
				continue
			}
			for b := 0; b < len(frame); b++ {
				if uintptr(unsafe.Pointer(&frame[b])) != sb.addr {
					continue
				}
				h, err := segment.ValidateBatch(frame[b : b+sb.size])
				if h != sb.h || (err == nil) != (sb.err == nil) {
					t.Fatalf("streamed %+v, %v; ValidateBatch %+v, %v", sb.h, sb.err, h, err)
				}
			}
		}
	})
}

// TestStreamManyPartitions: a frame of many partitions, arriving in small
// pieces, is walked about once (not once per piece), keeps at most
// maxStreamedBatches results, and each partition's batch is found by
// binary search.
func TestStreamManyPartitions(t *testing.T) {
	batch := rawBatch(-1, -1, -1, "x")
	batch[20] ^= 1 // a bad CRC: nothing is appended, so validation is all the cost
	const n = 100000
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rt.Partitions = make([]kmsg.ProduceRequestTopicPartition, n)
	for i := range rt.Partitions {
		rt.Partitions[i] = kmsg.ProduceRequestTopicPartition{Partition: 0, Records: batch}
	}
	req.Topics = append(req.Topics, rt)
	body := req.AppendTo(nil)
	frame := produceFrame(9, body)
	tb := &Broker{}
	start := time.Now()
	buf := make([]byte, 0, len(frame))
	var state any
	for len(buf) < len(frame) {
		buf = append(buf, frame[len(buf):min(len(frame), len(buf)+1448)]...)
		state = tb.Stream(buf, state)
	}
	r := getProduceRequest()
	defer putProduceRequest(r)
	if err := decodeProduce(r, 9, buf[len(frame)-len(body):]); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, p := range r.topics[0].parts {
		_, err, ok := streamedValidation(state, p.records)
		if ok {
			found++
			if !errors.Is(err, segment.ErrCorruptBatch) {
				t.Fatalf("bad CRC not caught: %v", err)
			}
		}
	}
	if found != maxStreamedBatches {
		t.Fatalf("%d batches streamed, want the cap %d", found, maxStreamedBatches)
	}
	// No time limit is asserted (machines are noisy); this takes about
	// 50 ms here, where the quadratic walk and lookup it replaces took
	// minutes: a regression shows as a test that times out.
	t.Logf("streamed and looked up %d partitions in %v", n, time.Since(start))
}
