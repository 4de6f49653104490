package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
	"samsa/netio/kclient"
	"samsa/segment"
)

// rawConn speaks the Kafka framing directly, for requests no client sends.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

// send writes a request with header v1 (flexible: v2) and body.
func (rc *rawConn) send(key, version int16, flexibleHeader bool, body []byte) int32 {
	rc.corr++
	if _, err := rc.c.Write(kclient.AppendRawRequest(nil, key, version, rc.corr, "test", flexibleHeader, body)); err != nil {
		rc.t.Fatal(err)
	}
	return rc.corr
}

// recv reads one response frame (after the size) or returns io.EOF once
// the broker closes.
func (rc *rawConn) recv() ([]byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return kclient.ReadFrame(rc.c)
}

func (rc *rawConn) request(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	corr := rc.send(req.Key(), req.GetVersion(), req.IsFlexible(), req.AppendTo(nil))
	b, err := rc.recv()
	if err != nil {
		rc.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if b, err = kclient.ResponseBody(b, corr, resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16()); err != nil {
		rc.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if err := resp.ReadFrom(b); err != nil {
		rc.t.Fatalf("%s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func TestApiVersions(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	rc := dialRaw(t, tb.addr)
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(v)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "samsa-test", "1.0"
		resp := rc.request(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		got := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		for key, a := range apis {
			if got[key] != [2]int16{a.min, a.max} {
				t.Fatalf("v%d: key %d advertised %v, table says %d-%d", v, key, got[key], a.min, a.max)
			}
		}
		if len(got) != len(apis) || got[0][0] != 0 {
			t.Fatalf("v%d: advertised %v", v, got)
		}
	}
	// A version beyond ours gets a v0 answer with UNSUPPORTED_VERSION and
	// the list (KIP-511), header v0.
	rc.send(18, 99, true, []byte{0, 0, 0})
	b, err := rc.recv()
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(b[4:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != len(apis) {
		t.Fatalf("ApiVersions v99: code %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	// The connection still works.
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	rc.request(req)
}

func TestUnsupportedRequestsClose(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	f := func(key, version int16, body []byte) {
		t.Helper()
		rc := dialRaw(t, tb.addr)
		rc.send(key, version, false, body)
		if b, err := rc.recv(); err != io.EOF {
			t.Fatalf("key %d v%d: got %d bytes, %v; want the connection closed", key, version, len(b), err)
		}
	}
	f(9999, 0, nil)               // unknown key
	f(1, 0, make([]byte, 40))     // Fetch v0: below our minimum
	f(0, 99, nil)                 // Produce v99
	f(3, 1, []byte{0, 0, 0, 200}) // Metadata claiming 200 topics, none present
	f(19, 0, []byte{0xff, 0xff, 0xff, 0xfe, 1})
	// The broker still serves.
	c := tb.client(kgo.DefaultProduceTopic("after"), kgo.AllowAutoTopicCreation())
	if err := c.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestMetadataVersions(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	createTopic(t, c, "m1", 3, nil)
	rc := dialRaw(t, tb.addr)
	for v := int16(0); v <= 13; v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		if v == 0 {
			req.Topics = []kmsg.MetadataRequestTopic{} // v0: empty = all
		}
		resp := rc.request(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Port == 0 {
			t.Fatalf("v%d brokers: %+v", v, resp.Brokers)
		}
		if len(resp.Topics) != 1 || *resp.Topics[0].Topic != "m1" || len(resp.Topics[0].Partitions) != 3 {
			t.Fatalf("v%d topics: %+v", v, resp.Topics)
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
				t.Fatalf("v%d partition: %+v", v, p)
			}
		}
		if v >= 10 && resp.Topics[0].TopicID != tb.b.topic("m1").id {
			t.Fatalf("v%d topic id", v)
		}
	}
	// v1+: an empty list means no topics.
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(5)
	req.Topics = []kmsg.MetadataRequestTopic{}
	if resp := rc.request(req).(*kmsg.MetadataResponse); len(resp.Topics) != 0 {
		t.Fatalf("empty list returned %d topics", len(resp.Topics))
	}
	// Auto-creation only when allowed.
	name := "auto1"
	req = kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	req.AllowAutoTopicCreation = false
	if resp := rc.request(req).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	req.AllowAutoTopicCreation = true
	if resp := rc.request(req).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("auto-create: %+v", resp.Topics[0])
	}
	bad := "bad/name"
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &bad}}
	if resp := rc.request(req).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("bad name: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}

	off := startBroker(t, t.TempDir(), func(c *Config) { c.AutoCreateTopics = false })
	rc = dialRaw(t, off.addr)
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	if resp := rc.request(req).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto.create.topics.enable=false: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
}

func TestCreateDeleteTopicsAndConfigs(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	adm := kadm.NewClient(tb.client())
	ctx := testCtx(t)
	ret := "3600000"
	bogus := "x"
	f := func(name string, parts int32, rf int16, cfgs map[string]*string, want error) {
		t.Helper()
		resp, err := adm.CreateTopic(ctx, parts, rf, cfgs, name)
		if err != nil && resp.Err == nil {
			t.Fatal(err)
		}
		if resp.Err != want && !(want != nil && resp.Err != nil && resp.Err.Error() == want.Error()) {
			t.Fatalf("create %s: %v, want %v", name, resp.Err, want)
		}
	}
	f("c1", 4, 1, map[string]*string{"retention.ms": &ret}, nil)
	f("c1", 4, 1, nil, kerr.TopicAlreadyExists)
	// Existence comes first, as Kafka: not the bad replication factor
	// or config of the request.
	f("c1", 1, 3, map[string]*string{"no.such.config": &ret}, kerr.TopicAlreadyExists)
	f("c2", 1, 3, nil, kerr.InvalidReplicationFactor)
	f("c3", 0, 1, nil, kerr.InvalidPartitions)
	f("c4", 1, 1, map[string]*string{"retention.ms": &bogus}, kerr.InvalidConfig)
	f("c5", 1, 1, map[string]*string{"no.such.config": &ret}, kerr.InvalidConfig)
	f("bad name", 1, 1, nil, kerr.InvalidTopicException)
	f("c.1", 1, 1, nil, nil)
	f("c_1", 1, 1, nil, kerr.InvalidTopicException) // collides with c.1
	// validate_only creates nothing.
	vr, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "c6")
	if err != nil || vr.Error() != nil {
		t.Fatal(err, vr.Error())
	}
	if tb.b.topic("c6") != nil {
		t.Fatal("validate_only created the topic")
	}
	// DescribeConfigs for the topic and the broker.
	rcs, err := adm.DescribeTopicConfigs(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("c1", nil)
	if err != nil || rc.Err != nil {
		t.Fatal(err, rc.Err)
	}
	found := 0
	for _, c := range rc.Configs {
		switch c.Key {
		case "retention.ms":
			if c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Fatalf("retention.ms: %+v", c)
			}
			found++
		case "cleanup.policy":
			if c.MaybeValue() != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
				t.Fatalf("cleanup.policy: %+v", c)
			}
			found++
		}
	}
	if found != 2 {
		t.Fatalf("configs: %+v", rc.Configs)
	}
	if _, err := adm.DescribeTopicConfigs(ctx, "missing"); err == nil {
		rcs, _ := adm.DescribeTopicConfigs(ctx, "missing")
		if r, _ := rcs.On("missing", nil); r.Err != kerr.UnknownTopicOrPartition {
			t.Fatalf("missing topic configs: %v", r.Err)
		}
	}
	brcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(brcs) != 1 || len(brcs[0].Configs) < 10 {
		t.Fatalf("broker configs: %+v", brcs)
	}
	// Delete, then restart: c1 stays gone, c.1 stays.
	dr, err := adm.DeleteTopics(ctx, "c1", "nope")
	if err != nil {
		t.Fatal(err)
	}
	if dr["c1"].Err != nil || dr["nope"].Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("delete: %v %v", dr["c1"].Err, dr["nope"].Err)
	}
	if _, err := os.Stat(filepath.Join(dir, "c1-0")); !os.IsNotExist(err) {
		t.Fatalf("c1-0 still on disk: %v", err)
	}
	id := tb.b.topic("c.1").id
	tb.stop()
	tb = startBroker(t, dir, nil)
	if tb.b.topic("c1") != nil || tb.b.topic("c.1") == nil || tb.b.topic("c.1").id != id {
		t.Fatal("catalog did not survive restart")
	}
	// Recreate with the same name gets a new id and empty log.
	adm = kadm.NewClient(tb.client())
	if resp, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "c1"); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
}

func TestFetchLongPollAndLimits(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client(kgo.DefaultProduceTopic("lp"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	createTopic(t, c, "lp", 2, nil)
	id := tb.b.topic("lp").id
	fetch := func(minBytes, maxWait, maxBytes, partMax int32, offsets ...int64) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.MinBytes, req.MaxWaitMillis, req.MaxBytes = minBytes, maxWait, maxBytes
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "lp", id
		for i, off := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = int32(i), off, partMax
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testCtx(t), c)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// Empty partitions: the fetch waits max_wait.
	start := time.Now()
	resp := fetch(1, 300, 1<<20, 1<<20, 0, 0)
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("empty fetch returned after %v", el)
	}
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != 0 {
		t.Fatalf("empty fetch: %d bytes", n)
	}
	// An append wakes a parked fetch long before max_wait.
	go func() {
		time.Sleep(200 * time.Millisecond)
		c.ProduceSync(context.Background(), &kgo.Record{Partition: 1, Value: []byte("wake")})
	}()
	start = time.Now()
	resp = fetch(1, 20000, 1<<20, 1<<20, 0, 0)
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("append did not wake the fetch (%v)", el)
	}
	if n := len(resp.Topics[0].Partitions[1].RecordBatches); n == 0 {
		t.Fatal("woken fetch has no records")
	}
	// Fill partition 0 with 20 batches of ~1 KiB.
	for i := range 20 {
		if err := c.ProduceSync(testCtx(t), &kgo.Record{Partition: 0, Value: bytes.Repeat([]byte{byte(i)}, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	batches := func(b []byte) int {
		n := 0
		for len(b) > 0 {
			h, err := segment.ParseBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[h.Size():]
			n++
		}
		return n
	}
	// partition_max_bytes smaller than one batch still returns one batch.
	resp = fetch(1, 0, 1<<20, 10, 0, 0)
	if n := batches(resp.Topics[0].Partitions[0].RecordBatches); n != 1 {
		t.Fatalf("tiny partition_max_bytes: %d batches", n)
	}
	// partition_max_bytes of ~5 batches.
	resp = fetch(1, 0, 1<<20, 5500, 0, 0)
	if n := batches(resp.Topics[0].Partitions[0].RecordBatches); n < 4 || n > 5 {
		t.Fatalf("partition_max_bytes 5500: %d batches", n)
	}
	// max_bytes caps the total; partition 1's batch does not fit after 0's.
	resp = fetch(1, 0, 3000, 1<<20, 0, 0)
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if n := batches(p0.RecordBatches); n < 2 || n > 3 || len(p0.RecordBatches)+len(p1.RecordBatches) > 3000 {
		t.Fatalf("max_bytes 3000: %d batches, %d+%d bytes", n, len(p0.RecordBatches), len(p1.RecordBatches))
	}
	// Fetching from the middle of the log and out of range.
	resp = fetch(1, 0, 1<<20, 1<<20, 7, 5)
	if p := resp.Topics[0].Partitions[0]; p.HighWatermark != 20 || p.ErrorCode != 0 {
		t.Fatalf("mid fetch: %+v", p)
	}
	if p := resp.Topics[0].Partitions[1]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != -1 || p.LogStartOffset != -1 {
		t.Fatalf("out of range: %v hw %d", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark)
	}
}

// TestFetchEncodingMatchesKmsg checks the hand-written Fetch response
// encoder against kmsg's for every supported version.
func TestFetchEncodingMatchesKmsg(t *testing.T) {
	store, err := segment.OpenStore(segment.StoreOptions{Dir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	l, err := store.Open("t-0", segment.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	recs := rawBatch(-1, -1, -1, "hello", "world")
	for range 2 {
		b := append([]byte(nil), recs...)
		h, _ := segment.ValidateBatch(b)
		done := make(chan error, 1)
		if _, err := l.Append(b, &h, true, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	segment.SetBaseOffset(recs, 2)
	for v := int16(4); v <= 18; v++ {
		for _, rc := range []bool{false, true} {
			topics := []fetchTopicOut{
				{name: "a", id: [16]byte{1, 2}, parts: []fetchPartOut{
					{partition: 0, highWatermark: 10, lastStable: 10, logStart: 0, slice: segment.Slice{}},
					{partition: 1, errCode: 1, highWatermark: -1, lastStable: -1, logStart: -1},
				}},
				{name: "bb", id: [16]byte{3}, parts: []fetchPartOut{{partition: 2, highWatermark: 5, lastStable: 3, logStart: 1}}},
			}
			if rc {
				topics[1].parts[0].aborted = []segment.AbortedTxn{{ProducerID: 7, FirstOffset: 1, LastOffset: 4}, {ProducerID: 1 << 40, FirstOffset: 2, LastOffset: 9}}
			}
			parts := encodeFetchResponse(v, 0, 0, rc, topics)
			// Splice a file part in by hand: re-encode with a fake slice.
			var got []byte
			for _, p := range parts {
				got = append(got, p.B...)
			}
			want := kmsg.NewPtrFetchResponse()
			want.SetVersion(v)
			for _, tt := range topics {
				wt := kmsg.NewFetchResponseTopic()
				wt.Topic, wt.TopicID = tt.name, tt.id
				for _, p := range tt.parts {
					wp := kmsg.NewFetchResponseTopicPartition()
					wp.Partition, wp.ErrorCode, wp.HighWatermark, wp.LastStableOffset, wp.LogStartOffset = p.partition, p.errCode, p.highWatermark, p.lastStable, p.logStart
					if rc {
						wp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
						for _, a := range p.aborted {
							wa := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
							wa.ProducerID, wa.FirstOffset = a.ProducerID, a.FirstOffset
							wp.AbortedTransactions = append(wp.AbortedTransactions, wa)
						}
					}
					wp.RecordBatches = []byte{}
					wt.Partitions = append(wt.Partitions, wp)
				}
				want.Topics = append(want.Topics, wt)
			}
			if wb := want.AppendTo(nil); !bytes.Equal(got, wb) {
				t.Fatalf("v%d read_committed=%v:\n got %x\nwant %x", v, rc, got, wb)
			}
		}
		// With records from a file: the parts decode to kmsg's view.
		sl, err := l.Read(2, 4, 1<<20)
		if err != nil || sl.Len != int64(len(recs)) {
			t.Fatalf("read: %v %d", err, sl.Len)
		}
		parts := encodeFetchResponse(v, 0, 0, false, []fetchTopicOut{{name: "t", id: [16]byte{9}, parts: []fetchPartOut{{partition: 3, highWatermark: 2, lastStable: 2, slice: sl}}}})
		var body []byte
		for _, p := range parts {
			if p.File != nil {
				b := make([]byte, p.Len)
				p.File.ReadAt(b, p.Off)
				body = append(body, b...)
			} else {
				body = append(body, p.B...)
			}
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(v)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		sl.Release()
		if got := resp.Topics[0].Partitions[0].RecordBatches; !bytes.Equal(got, recs) {
			t.Fatalf("v%d: records\n%x\n%x", v, got, recs)
		}
	}
}

var _ = netio.Part{}
var _ = fmt.Sprint

func TestAcksZeroErrorClosesConnection(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	createTopic(t, tb.client(), "a0", 1, nil)
	send := func(topic string) *rawConn {
		rc := dialRaw(t, tb.addr)
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = 0, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = rawBatch(-1, -1, -1, "zero")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		rc.send(0, 9, true, req.AppendTo(nil))
		return rc
	}
	// Success: no response, the connection stays usable.
	rc := send("a0")
	av := kmsg.NewPtrApiVersionsRequest()
	if resp := rc.request(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatal(resp.ErrorCode)
	}
	if end := tb.b.partition("a0", 0).log.EndOffset(); end != 1 {
		t.Fatalf("end offset %d", end)
	}
	// Failure: the connection is closed.
	rc = send("missing")
	if _, err := rc.recv(); err != io.EOF {
		t.Fatalf("acks=0 failure: %v, want EOF", err)
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client(kgo.DefaultProduceTopic("ofle"))
	createTopic(t, c, "ofle", 1, nil)
	for i := range 3 {
		c.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(fmt.Sprint(i))})
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ofle"
	for _, e := range []int32{0, 5} {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.LeaderEpoch, rp.CurrentLeaderEpoch = e, 0
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[0].LeaderEpoch != 0 || ps[0].EndOffset != 3 {
		t.Fatalf("epoch 0: %+v", ps[0])
	}
	if ps[1].ErrorCode != 0 || ps[1].LeaderEpoch != -1 || ps[1].EndOffset != -1 {
		t.Fatalf("epoch 5: %+v", ps[1])
	}
	// Unknown partitions (kgo refuses to send these, so go raw).
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition = 9
	req.Topics[0].Partitions = []kmsg.OffsetForLeaderEpochRequestTopicPartition{rp}
	req.SetVersion(4)
	raw := dialRaw(t, tb.addr).request(req).(*kmsg.OffsetForLeaderEpochResponse)
	if p := raw.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("partition 9: %+v", p)
	}
}

func TestFindCoordinator(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	rc := dialRaw(t, tb.addr)
	adv := tb.b.adv.Load()
	type answer struct {
		node int32
		host string
		port int32
		code int16
	}
	self := answer{tb.b.cfg.NodeID, adv.host, adv.port, 0}
	none := func(code int16) answer { return answer{-1, "", -1, code} }
	cases := []struct {
		typ  int8
		key  string
		want answer
	}{
		{coordinatorGroup, "g1", self},
		{coordinatorTransaction, "txn-1", self},
		{coordinatorTransaction, "", self}, // as Kafka: no check of the key
		{7, "x", none(kerr.InvalidRequest.Code)},
	}
	for v := int16(0); v <= 5; v++ {
		for _, c := range cases {
			if v == 0 && c.typ != coordinatorGroup {
				continue // v0 has no key type: always a group
			}
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.SetVersion(v)
			req.CoordinatorType = c.typ
			req.CoordinatorKey = c.key
			req.CoordinatorKeys = []string{c.key, c.key + "-2"}
			resp := rc.request(req).(*kmsg.FindCoordinatorResponse)
			var got []answer
			if v >= 4 {
				if len(resp.Coordinators) != 2 || resp.Coordinators[0].Key != c.key || resp.Coordinators[1].Key != c.key+"-2" {
					t.Fatalf("v%d type %d: coordinators %+v", v, c.typ, resp.Coordinators)
				}
				got = append(got, answer{resp.Coordinators[0].NodeID, resp.Coordinators[0].Host, resp.Coordinators[0].Port, resp.Coordinators[0].ErrorCode})
			} else {
				got = append(got, answer{resp.NodeID, resp.Host, resp.Port, resp.ErrorCode})
				// Kafka's v1-3 success carries Errors.NONE.message().
				if v >= 1 && resp.ErrorCode == 0 && (resp.ErrorMessage == nil || *resp.ErrorMessage != "NONE") {
					t.Fatalf("v%d type %d: error message %v on success, want NONE", v, c.typ, resp.ErrorMessage)
				}
			}
			if got[0] != c.want {
				t.Fatalf("v%d type %d key %q: %+v, want %+v", v, c.typ, c.key, got[0], c.want)
			}
		}
	}
	// A transactional id found this way gets a producer id, and its
	// transaction commits.
	createTopic(t, tb.client(), "txn-t", 1, nil)
	cl := tb.client(kgo.TransactionalID("txn-1"), kgo.RetryTimeout(5*time.Second))
	ctx := testCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "txn-t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestDescribeConfigsSynonyms: as Kafka, a topic config without a broker
// synonym has no DEFAULT synonym, and the broker reports the hour forms of
// the retention and roll defaults.
func TestDescribeConfigsSynonyms(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	createTopic(t, c, "syn", 1, nil)
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	req.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "syn"},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"},
	}
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, res := range resp.Resources {
		for _, cfg := range res.Configs {
			for _, s := range cfg.ConfigSynonyms {
				if s.Name == "" {
					t.Fatalf("%s: synonym with an empty name", cfg.Name)
				}
			}
			if res.ResourceType == kmsg.ConfigResourceTypeBroker && cfg.Value != nil {
				seen[cfg.Name] = *cfg.Value
			}
		}
	}
	if seen["log.retention.hours"] != "168" || seen["log.roll.hours"] != "168" {
		t.Fatalf("broker configs: log.retention.hours %q, log.roll.hours %q", seen["log.retention.hours"], seen["log.roll.hours"])
	}
}
