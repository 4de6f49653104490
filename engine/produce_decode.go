package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"samsa/segment"
)

// produceRequest is a decoded Produce request. Record batches alias the
// request buffer (no copy: they go from there to the disk writer), so the
// request must not be answered before every append using them completed.
// Decoded requests are pooled; decoding reuses their slices.
type produceRequest struct {
	version  int16
	txnID    []byte // nil when null
	hasTxnID bool
	acks     int16
	timeout  int32
	topics   []produceTopic
}

type produceTopic struct {
	name  []byte   // v0-v12
	id    [16]byte // v13+
	parts []producePartition
}

type producePartition struct {
	idx     int32
	records []byte // nil when null
}

// hasTransactionalBatches reports whether a partition's records start
// with a v2 batch marked transactional (Kafka's
// ProduceRequest.hasTransactionalRecords looks at each partition's first
// batch the same way).
func (r *produceRequest) hasTransactionalBatches() bool {
	for i := range r.topics {
		for _, p := range r.topics[i].parts {
			// magic at 16, the attributes' low byte at 22
			if len(p.records) > 22 && p.records[16] == 2 && p.records[22]&segment.AttrTransactional != 0 {
				return true
			}
		}
	}
	return false
}

var producePool = sync.Pool{New: func() any { return new(produceRequest) }}

func getProduceRequest() *produceRequest { return producePool.Get().(*produceRequest) }

func putProduceRequest(r *produceRequest) {
	for i := range r.topics {
		t := &r.topics[i]
		clear(t.parts)
		t.parts = t.parts[:0]
		t.name = nil
	}
	r.topics = r.topics[:0]
	r.txnID = nil
	producePool.Put(r)
}

var errProduceMalformed = errors.New("malformed produce request")

// produceReader reads Kafka's primitive types, remembering the first error.
type produceReader struct {
	b        []byte
	flexible bool
	err      error
}

func (r *produceReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errProduceMalformed, what)
	}
	r.b = nil
}

func (r *produceReader) int16(what string) int16 {
	if len(r.b) < 2 {
		r.fail(what)
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *produceReader) int32(what string) int32 {
	if len(r.b) < 4 {
		r.fail(what)
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *produceReader) uvarint(what string) uint64 {
	v, n := uvarint32(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return uint64(v)
}

// length reads a length prefix: int16 or int32 before flexible versions,
// uvarint(n+1) after. It returns -1 for null.
func (r *produceReader) length(what string, wide bool) int {
	if r.flexible {
		v := r.uvarint(what)
		if v > uint64(len(r.b))+1 {
			r.fail(what + " longer than the request")
			return 0
		}
		return int(v) - 1
	}
	var v int
	if wide {
		v = int(r.int32(what))
	} else {
		v = int(r.int16(what))
	}
	if v > len(r.b) {
		r.fail(what + " longer than the request")
		return 0
	}
	return v
}

// bytes reads a string or bytes field; nullable ones read any negative
// length as null, as Kafka's readers do, others refuse it.
func (r *produceReader) bytes(what string, wide, nullable bool) (v []byte, null bool) {
	n := r.length(what, wide)
	if r.err != nil {
		return nil, false
	}
	if n < 0 {
		if !nullable {
			r.fail("non-nullable " + what + " is null")
		}
		return nil, true
	}
	v = r.b[:n:n]
	r.b = r.b[n:]
	return v, false
}

// arrayLen reads the length of a non-nullable array of elements at least
// minSize bytes each.
func (r *produceReader) arrayLen(what string, minSize int) int {
	n := r.length(what, true)
	if r.err != nil {
		return 0
	}
	if n < 0 {
		r.fail("non-nullable " + what + " is null")
		return 0
	}
	if n*minSize > len(r.b) {
		r.fail(what + " longer than the request")
		return 0
	}
	return n
}

// skipTags skips a tagged-field section (flexible versions).
func (r *produceReader) skipTags() {
	if !r.flexible || r.err != nil {
		return
	}
	for n := r.uvarint("tagged fields"); n > 0 && r.err == nil; n-- {
		r.uvarint("tag")
		size := r.uvarint("tag size")
		if size > uint64(len(r.b)) {
			r.fail("tag longer than the request")
			return
		}
		r.b = r.b[size:]
	}
}

// decodeProduce decodes a Produce request body (after the request header)
// into r (from getProduceRequest), replacing what r held. It never
// allocates per record batch; batches alias body.
func decodeProduce(r *produceRequest, version int16, body []byte) error {
	rd := produceReader{b: body, flexible: version >= 9}
	r.topics = r.topics[:0]
	r.version, r.txnID, r.hasTxnID = version, nil, false
	if version >= 3 {
		r.txnID, _ = rd.bytes("transactional id", false, true)
		r.hasTxnID = r.txnID != nil
	}
	r.acks = rd.int16("acks")
	r.timeout = rd.int32("timeout")
	// A topic is at least a name length (or id) and a partition count.
	nt := rd.arrayLen("topics", 2)
	for i := 0; i < nt && rd.err == nil; i++ {
		if len(r.topics) < cap(r.topics) {
			r.topics = r.topics[:len(r.topics)+1]
		} else {
			r.topics = append(r.topics, produceTopic{})
		}
		t := &r.topics[len(r.topics)-1]
		t.name, t.id, t.parts = nil, [16]byte{}, t.parts[:0]
		if version >= 13 {
			if len(rd.b) < 16 {
				rd.fail("topic id")
				break
			}
			copy(t.id[:], rd.b)
			rd.b = rd.b[16:]
		} else {
			t.name, _ = rd.bytes("topic name", false, false)
		}
		// A partition is at least an index and a records length.
		np := rd.arrayLen("partitions", 5)
		for j := 0; j < np && rd.err == nil; j++ {
			var p producePartition
			p.idx = rd.int32("partition")
			p.records, _ = rd.bytes("records", true, true)
			rd.skipTags()
			t.parts = append(t.parts, p)
		}
		rd.skipTags()
	}
	rd.skipTags()
	if rd.err != nil {
		return rd.err
	}
	return nil
}

// uvarint32 reads an unsigned varint as Kafka's protocol defines it: at
// most 5 bytes, fitting 32 bits. n <= 0 means it is truncated or too long.
func uvarint32(b []byte) (uint32, int) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n > 5 || v > 0xffffffff {
		return 0, -1
	}
	return uint32(v), n
}
