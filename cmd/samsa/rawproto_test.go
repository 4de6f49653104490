package main

// A minimal Kafka client over a plain socket, for exact control over
// versions, sequence numbers and malformed input.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio/kclient"
)

type rawConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("cannot dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) Close() { r.c.Close() }

// roundTrip sends req at version and decodes the response; it fails the
// test on any transport or decode error.
func (r *rawConn) roundTrip(req kmsg.Request, version int16) kmsg.Response {
	r.t.Helper()
	req.SetVersion(version)
	r.corr++
	corr := r.corr
	frame := kclient.AppendRequest(nil, req, corr, "itest-raw")
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Write(frame); err != nil {
		r.t.Fatalf("cannot send %s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	b, err := readFrame(r.c, 15*time.Second)
	if err != nil {
		r.t.Fatalf("no response to %s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	body, err := responseBody(b, corr, resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16())
	if err != nil {
		r.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("cannot decode %s v%d response: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return resp
}

// responseBody checks a response frame's correlation id and strips the
// response header (v1 has a tagged-field section, which samsa leaves
// empty).
func responseBody(b []byte, corr int32, headerV1 bool) ([]byte, error) {
	if headerV1 && len(b) > 4 && b[4] != 0 {
		return nil, fmt.Errorf("response header has %d tagged fields, want none", b[4])
	}
	return kclient.ResponseBody(b, corr, headerV1)
}

// readFrame reads one size-prefixed frame within d.
func readFrame(c net.Conn, d time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	return kclient.ReadFrame(c)
}

// errClosed reports whether err means the peer closed the connection.
func errClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// requestFrame frames a request by hand (header v1, client id "x"), for
// bodies kmsg would not encode.
func requestFrame(key, version int16, corr int32, body []byte) []byte {
	return kclient.AppendRawRequest(nil, key, version, corr, "x", false, body)
}

// batchSpec describes a v2 record batch to encode.
type batchSpec struct {
	producerID int64 // -1: not idempotent
	epoch      int16
	seq        int32
	values     []string
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeBatch encodes an uncompressed v2 record batch the way a producer
// does (base offset 0, one record per value, no keys or headers).
func encodeBatch(s batchSpec) []byte {
	now := time.Now().UnixMilli()
	b := make([]byte, 61)
	for i, v := range s.values {
		var rec []byte
		rec = append(rec, 0)                          // attributes
		rec = binary.AppendVarint(rec, 0)             // timestamp delta
		rec = binary.AppendVarint(rec, int64(i))      // offset delta
		rec = binary.AppendVarint(rec, -1)            // null key
		rec = binary.AppendVarint(rec, int64(len(v))) // value
		rec = append(rec, v...)                       //
		rec = binary.AppendVarint(rec, 0)             // no headers
		b = binary.AppendVarint(b, int64(len(rec)))   //
		b = append(b, rec...)                         //
	}
	be := binary.BigEndian
	be.PutUint64(b[0:], 0)                        // base offset
	be.PutUint32(b[8:], uint32(len(b)-12))        // batch length
	be.PutUint32(b[12:], 0xffffffff)              // partition leader epoch
	b[16] = 2                                     // magic
	be.PutUint16(b[21:], 0)                       // attributes
	be.PutUint32(b[23:], uint32(len(s.values)-1)) // last offset delta
	be.PutUint64(b[27:], uint64(now))             // first timestamp
	be.PutUint64(b[35:], uint64(now))             // max timestamp
	be.PutUint64(b[43:], uint64(s.producerID))
	be.PutUint16(b[51:], uint16(s.epoch))
	be.PutUint32(b[53:], uint32(s.seq))
	be.PutUint32(b[57:], uint32(len(s.values)))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// produceRaw sends one batch to topic/partition with acks=all and returns
// the partition's response.
func (r *rawConn) produceRaw(version int16, topic string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
	r.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.roundTrip(req, version).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		r.t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// listEnd returns the log end offset of topic/partition via ListOffsets.
func (r *rawConn) listEnd(topic string, partition int32) int64 {
	r.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.roundTrip(req, 5).(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		r.t.Fatalf("list offsets response shape: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		r.t.Fatalf("list offsets %s/%d: error %d", topic, partition, p.ErrorCode)
	}
	return p.Offset
}
