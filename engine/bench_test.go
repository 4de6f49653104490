package engine

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"samsa/engine/acl"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"

	"samsa/netio/kclient"
)

// benchConn sends pre-encoded requests and reads responses into a reused
// buffer, so the client side allocates nothing per request: allocs/op is
// what the broker allocates to serve one request.
type benchConn struct {
	c   net.Conn
	buf []byte
}

// dialBench connects to addr for the length of the benchmark.
func dialBench(b *testing.B, addr string) *benchConn {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &benchConn{c: c}
}

func (bc *benchConn) roundTrip(b *testing.B, frame []byte) []byte {
	if _, err := bc.c.Write(frame); err != nil {
		b.Fatal(err)
	}
	var sz [4]byte
	if _, err := io.ReadFull(bc.c, sz[:]); err != nil {
		b.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(sz[:]))
	if cap(bc.buf) < n {
		bc.buf = make([]byte, n)
	}
	bc.buf = bc.buf[:n]
	if _, err := io.ReadFull(bc.c, bc.buf); err != nil {
		b.Fatal(err)
	}
	return bc.buf
}

func frameOf(req kmsg.Request) []byte { return kclient.AppendRequest(nil, req, 1, "bench") }

// BenchmarkProduceRequest: one Produce request (acks=1) of one batch of n
// 100-byte records per op, over a socket. allocs/op does not grow with n:
// the produce path allocates per request, never per record.
func BenchmarkProduceRequest(b *testing.B) { benchProduceRequest(b, false) }

// BenchmarkProduceRequestAuthorized is BenchmarkProduceRequest with the
// authorizer on and an ACL that lets the (anonymous) client write: what
// the checks cost a request, against the benchmark above.
func BenchmarkProduceRequestAuthorized(b *testing.B) { benchProduceRequest(b, true) }

func benchProduceRequest(b *testing.B, authz bool) {
	tb := startBroker(b, b.TempDir(), func(c *Config) {
		c.Durability = DurabilityNever
		c.ACL.Enabled = authz
	})
	if authz {
		tb.b.authz.Set([]acl.Binding{{ResourceType: acl.ResourceTopic, ResourceName: "bench-", Pattern: acl.PatternPrefixed,
			Principal: "User:ANONYMOUS", Host: acl.Wildcard, Operation: acl.OpWrite, Permission: acl.PermAllow}})
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(tb.addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n, "records"), func(b *testing.B) {
			topic := fmt.Sprint("bench-produce-", n)
			if tb.b.topic(topic) == nil { // b.Run calls this again as N grows
				if _, err := tb.b.createTopic(topic, 1, -1, nil, false); err != nil {
					b.Fatal(err)
				}
			}
			vals := make([]string, n)
			for i := range vals {
				vals[i] = string(make([]byte, 100))
			}
			batch := rawBatch(-1, -1, -1, vals...)
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(9)
			req.Acks, req.TimeoutMillis = 1, 5000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = batch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			frame := frameOf(req)
			bc := dialBench(b, tb.addr)
			bc.roundTrip(b, frame)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				bc.roundTrip(b, frame)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkFetchRequest: one Fetch request reading n records (in batches
// of 100) per op, over a socket. allocs/op does not grow with n: record
// bytes go from the segment file to the socket without passing through a
// Go object.
func BenchmarkFetchRequest(b *testing.B) {
	tb := startBroker(b, b.TempDir(), func(c *Config) { c.Durability = DurabilityNever })
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n, "records"), func(b *testing.B) {
			topic := fmt.Sprint("bench-fetch-", n)
			t, terr := tb.b.createTopic(topic, 1, -1, nil, false)
			if terr != nil {
				b.Fatal(terr)
			}
			vals := make([]string, 100)
			for i := range vals {
				vals[i] = string(make([]byte, 100))
			}
			for range n / 100 {
				batch := rawBatch(-1, -1, -1, vals...)
				h, err := segment.ValidateBatch(batch)
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan error, 1)
				if _, err := t.parts()[0].log.Append(batch, &h, false, func(err error) { done <- err }); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(11)
			req.MaxBytes, req.MinBytes = 64<<20, 1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 64 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			frame := frameOf(req)
			bc := dialBench(b, tb.addr)
			resp := bc.roundTrip(b, frame)
			b.SetBytes(int64(len(resp)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				bc.roundTrip(b, frame)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
