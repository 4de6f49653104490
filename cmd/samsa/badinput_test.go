package main

// Hostile and broken input over raw sockets. Every case must end in an
// error code or a closed connection, never a hang or a crash, and the
// broker must keep serving normal clients afterwards.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio/kclient"
)

// sendAndDrain writes raw (ignoring write errors: the broker may close
// first), half-closes if asked, then reads until the broker closes. It
// returns the bytes received, and fails the test if the connection is still
// open after 10s.
func sendAndDrain(t *testing.T, addr string, raw []byte, closeWrite bool) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("cannot dial: %v", err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write(raw)
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == nil {
			continue
		}
		if errClosed(err) {
			return got.Bytes()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open 10s later (received %d bytes)", got.Len())
		}
		t.Fatalf("read: %v", err)
	}
}

// firstResponse writes raw and returns the first response frame, or
// closed if the broker closed the connection instead; within 10s.
func firstResponse(t *testing.T, addr string, raw []byte) (frame []byte, closed bool) {
	t.Helper()
	c := dialRaw(t, addr)
	defer c.Close()
	c.c.Write(raw)
	f, err := readFrame(c.c, 10*time.Second)
	switch {
	case err == nil:
		return f, false
	case errClosed(err):
		return nil, true
	}
	t.Fatalf("no response and no close within 10s: %v", err)
	return nil, false
}

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func TestBadInput(t *testing.T) {
	b := startBroker(t)
	b.createTopic("bad", 2, nil)
	good := b.client(kgo.DefaultProduceTopic("bad"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	healthy := func(when string) {
		t.Helper()
		b.checkAlive()
		r := &kgo.Record{Value: []byte("healthy " + when)}
		if err := good.ProduceSync(timeout(t, 15*time.Second), r).FirstErr(); err != nil {
			t.Fatalf("after %s: produce: %v", when, err)
		}
	}
	healthy("start")
	end0 := func() int64 { return dialRaw(t, b.addr).listEnd("bad", 0) }

	closed := []struct {
		name       string
		raw        []byte
		closeWrite bool
	}{
		{"http request", []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), false},
		{"tls client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}, false},
		{"zero size", be32(0), false},
		{"size below a header", append(be32(4), 0, 18, 0, 0), false},
		{"negative size", append(be32(-16), 1, 2, 3, 4), false},
		{"size -1", be32(-1), false},
		{"200 MiB frame", append(be32(200<<20), 0, 0, 0, 0), false},
		{"max_request_bytes + 1", append(be32(100<<20+1), 0, 18, 0, 0), false},
		{"truncated frame, then close", append(be32(100), requestFrame(3, 1, 1, nil)[4:]...), true},
		{"truncated size, then close", []byte{0, 0}, true},
		{"unknown api key 9999", requestFrame(9999, 0, 1, nil), false},
		{"api key -1", requestFrame(-1, 0, 1, nil), false},
		{"Fetch v0 (unsupported)", requestFrame(1, 0, 1, make([]byte, 40)), false},
		{"Produce v99", requestFrame(0, 99, 1, make([]byte, 40)), false},
		{"Metadata v99", requestFrame(3, 99, 1, make([]byte, 40)), false},
		{"negative client id length", []byte{0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xfb, 0, 0}, false},
		{"client id beyond the frame", []byte{0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 7, 0x7f, 0xff, 'a', 'b'}, false},
		{"negative string length in Metadata v1", requestFrame(3, 1, 1, append(be32(1), 0xff, 0xfb, 'a')), false},
		{"array count 2^31-1 in CreateTopics v0", requestFrame(19, 0, 1, append(be32(0x7fffffff), 0, 1, 'a')), false},
		{"truncated Produce v3 body", requestFrame(0, 3, 1, []byte{0xff, 0xff, 0xff}), false},
		{"bytes length beyond the frame in Produce v3", requestFrame(0, 3, 1, produceBody(0x7ffffff0)), false},
		{"flexible header tags truncated (Metadata v9)", requestFrame(3, 9, 1, []byte{5}), false},
	}
	for _, tc := range closed {
		got := sendAndDrain(t, b.addr, tc.raw, tc.closeWrite)
		if len(got) != 0 {
			t.Errorf("%s: got %d bytes (% x), want the connection closed without a response", tc.name, len(got), got[:min(len(got), 32)])
		}
		healthy(tc.name)
	}

	// Errors the protocol can carry: per partition, and nothing appended.
	raw := dialRaw(t, b.addr)
	before := end0()
	produce := func(name string, acks int16, parts ...kmsg.ProduceRequestTopicPartition) []kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = acks, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.Partitions = "bad", parts
		req.Topics = append(req.Topics, rt)
		resp := raw.roundTrip(req, 7).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(parts) {
			t.Fatalf("%s: response shape %+v", name, resp)
		}
		return resp.Topics[0].Partitions
	}
	part := func(p int32, records []byte) kmsg.ProduceRequestTopicPartition {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, records
		return rp
	}
	valid := func(v string) []byte {
		return encodeBatch(batchSpec{producerID: -1, epoch: -1, seq: -1, values: []string{v}})
	}
	wantCode := func(name string, got kmsg.ProduceResponseTopicPartition, codes ...int16) {
		t.Helper()
		for _, c := range codes {
			if got.ErrorCode == c {
				return
			}
		}
		var names []string
		for _, c := range codes {
			names = append(names, kerr.ErrorForCode(c).Error())
		}
		t.Errorf("%s: %v, want %s", name, kerr.ErrorForCode(got.ErrorCode), strings.Join(names, " or "))
	}

	badCRC := valid("bad crc")
	badCRC[len(badCRC)-1] ^= 1
	r := produce("bad crc", -1, part(0, badCRC), part(1, valid("good neighbour")))
	wantCode("bad CRC", r[0], kerr.CorruptMessage.Code)
	if r[1].ErrorCode != 0 || r[1].BaseOffset < 0 {
		t.Errorf("a valid batch beside a corrupt one: %v at %d, want appended", kerr.ErrorForCode(r[1].ErrorCode), r[1].BaseOffset)
	}
	negLen := valid("negative length")
	binary.BigEndian.PutUint32(negLen[8:], 0xfffffff0)
	wantCode("negative batch length", produce("negative batch length", -1, part(0, negLen))[0], kerr.CorruptMessage.Code)
	longLen := valid("length beyond the records")
	binary.BigEndian.PutUint32(longLen[8:], uint32(len(longLen)+100))
	wantCode("batch length beyond the records", produce("long batch length", -1, part(0, longLen))[0], kerr.CorruptMessage.Code, kerr.InvalidRecord.Code)
	wantCode("5 bytes of records", produce("short records", -1, part(0, []byte{1, 2, 3, 4, 5}))[0], kerr.CorruptMessage.Code, kerr.InvalidRecord.Code)
	wantCode("empty records", produce("empty records", -1, part(0, []byte{}))[0], kerr.CorruptMessage.Code, kerr.InvalidRecord.Code)
	wantCode("two batches in one partition", produce("two batches", -1, part(0, append(valid("one"), valid("two")...)))[0], kerr.InvalidRecord.Code)
	magic1 := valid("magic 1")
	magic1[16] = 1
	wantCode("magic 1 batch in Produce v7", produce("magic 1", -1, part(0, magic1))[0], kerr.InvalidRecord.Code, kerr.CorruptMessage.Code, kerr.UnsupportedForMessageFormat.Code)
	countLie := valid("count lie")
	binary.BigEndian.PutUint32(countLie[57:], 1000)
	binary.BigEndian.PutUint32(countLie[17:], crcOf(countLie))
	wantCode("record count 1000 for one record", produce("count lie", -1, part(0, countLie))[0], kerr.CorruptMessage.Code, kerr.InvalidRecord.Code)
	wantCode("acks=5", produce("acks 5", 5, part(0, valid("acks 5")))[0], kerr.InvalidRequiredAcks.Code)
	wantCode("partition 99", produce("partition 99", -1, part(99, valid("p99")))[0], kerr.UnknownTopicOrPartition.Code)
	wantCode("partition -1", produce("partition -1", -1, part(-1, valid("p-1")))[0], kerr.UnknownTopicOrPartition.Code)
	if after := end0(); after != before {
		t.Errorf("refused batches were appended: partition 0 end %d -> %d", before, after)
	}
	healthy("bad produce batches")

	// CreateTopics validation.
	ct := func(name string, partitions int32, rf int16) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		req.Topics = append(req.Topics, rt)
		resp := raw.roundTrip(req, 4).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("create topics response shape: %+v", resp)
		}
		return resp.Topics[0].ErrorCode
	}
	for _, c := range []struct {
		what       string
		name       string
		partitions int32
		rf         int16
		code       int16
	}{
		{"-5 partitions", "neg-parts", -5, 1, kerr.InvalidPartitions.Code},
		{"0 partitions", "zero-parts", 0, 1, kerr.InvalidPartitions.Code},
		{"replication factor 3 on one node", "rf3", 1, 3, kerr.InvalidReplicationFactor.Code},
		{"replication factor -5", "rfneg", 1, -5, kerr.InvalidReplicationFactor.Code},
		{"empty name", "", 1, 1, kerr.InvalidTopicException.Code},
		{"name with a slash", "a/b", 1, 1, kerr.InvalidTopicException.Code},
		{"name ..", "..", 1, 1, kerr.InvalidTopicException.Code},
		{"name of 250 characters", strings.Repeat("x", 250), 1, 1, kerr.InvalidTopicException.Code},
	} {
		if got := ct(c.name, c.partitions, c.rf); got != c.code {
			t.Errorf("CreateTopics %s: %v, want %v", c.what, kerr.ErrorForCode(got), kerr.ErrorForCode(c.code))
		}
	}
	if entries, err := os.ReadDir(b.dataDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "neg-parts") || strings.HasPrefix(e.Name(), "rf") || strings.HasPrefix(e.Name(), "xxxx") {
				t.Errorf("refused topic left %s in the data dir", e.Name())
			}
		}
	}

	// Fetch errors.
	fetch := func(p int32, offset int64) int16 {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 10, 1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "bad"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := raw.roundTrip(req, 4).(*kmsg.FetchResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := fetch(0, 1_000_000); code != kerr.OffsetOutOfRange.Code {
		t.Errorf("fetch beyond the end: %v, want OFFSET_OUT_OF_RANGE", kerr.ErrorForCode(code))
	}
	if code := fetch(0, -7); code != kerr.OffsetOutOfRange.Code {
		t.Errorf("fetch at offset -7: %v, want OFFSET_OUT_OF_RANGE", kerr.ErrorForCode(code))
	}
	if code := fetch(7, 0); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("fetch partition 7 of 2: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}

	// ApiVersions beyond the broker's: a v0 answer with UNSUPPORTED_VERSION
	// and the list, so the client can pick a version (KIP-511).
	conn := dialRaw(t, b.addr)
	conn.c.Write(requestFrame(18, 99, 77, nil))
	frame, err := readFrame(conn.c, 10*time.Second)
	if err != nil {
		t.Fatalf("ApiVersions v99: %v", err)
	}
	body, err := responseBody(frame, 77, false)
	if err != nil {
		t.Fatalf("ApiVersions v99: %v", err)
	}
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(0)
	if err := av.ReadFrom(body); err != nil {
		t.Fatalf("ApiVersions v99 answer is not v0: %v", err)
	}
	if av.ErrorCode != kerr.UnsupportedVersion.Code || len(av.ApiKeys) == 0 {
		t.Fatalf("ApiVersions v99: error %v, %d keys; want UNSUPPORTED_VERSION and the list", kerr.ErrorForCode(av.ErrorCode), len(av.ApiKeys))
	}
	keys := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range av.ApiKeys {
		keys[k.ApiKey] = k
	}
	for _, k := range []int16{0, 1, 2, 3, 18, 19, 20, 22, 32} {
		if _, ok := keys[k]; !ok {
			t.Errorf("ApiVersions does not list key %d (%s)", k, kmsg.NameForKey(k))
		}
	}
	// The connection stays usable: the client retries with a version
	// from the list.
	avr := conn.roundTrip(kmsg.NewPtrApiVersionsRequest(), keys[18].MaxVersion).(*kmsg.ApiVersionsResponse)
	if avr.ErrorCode != 0 || len(avr.ApiKeys) != len(av.ApiKeys) {
		t.Fatalf("ApiVersions v%d after v99: error %d, %d keys", keys[18].MaxVersion, avr.ErrorCode, len(avr.ApiKeys))
	}

	// A request dribbled a byte at a time is still one request.
	slow := dialRaw(t, b.addr)
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(1)
	frameBytes := kclient.AppendRequest(nil, req, 9, "slow")
	for _, c := range frameBytes {
		slow.c.Write([]byte{c})
		time.Sleep(2 * time.Millisecond)
	}
	if f, err := readFrame(slow.c, 10*time.Second); err != nil || int32(binary.BigEndian.Uint32(f)) != 9 {
		t.Fatalf("byte-at-a-time Metadata: %v", err)
	}

	// Pipelined requests are answered in order.
	pipe := dialRaw(t, b.addr)
	var burst []byte
	for i := range 200 {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(int16(i % 10))
		// AppendRequest writes the size at dst[0]: one frame per call.
		burst = append(burst, kclient.AppendRequest(nil, req, int32(1000+i), "")...)
	}
	pipe.c.Write(burst)
	for i := range 200 {
		f, err := readFrame(pipe.c, 10*time.Second)
		if err != nil {
			t.Fatalf("pipelined response %d: %v", i, err)
		}
		if corr := int32(binary.BigEndian.Uint32(f)); corr != int32(1000+i) {
			t.Fatalf("pipelined response %d has correlation id %d, want %d", i, corr, 1000+i)
		}
	}

	// After all of it, a normal client on fresh connections produces and
	// consumes.
	healthy("the end")
	fresh := b.client(kgo.DefaultProduceTopic("after-bad"), kgo.AllowAutoTopicCreation())
	produceSync(t, fresh, &kgo.Record{Value: []byte("still here")})
	if got := b.consumeAll("after-bad")[0]; len(got) != 1 || string(got[0].Value) != "still here" {
		t.Fatalf("consumed %d records after bad input", len(got))
	}
	if got := b.consumeAll("bad"); len(got[0]) == 0 {
		t.Fatal("topic bad is empty")
	}
}

// produceBody is a Produce v3 body whose one partition claims records of
// recordsLen bytes but carries none.
func produceBody(recordsLen int32) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null transactional id
	b = binary.BigEndian.AppendUint16(b, 1)      // acks
	b = binary.BigEndian.AppendUint32(b, 1000)   // timeout
	b = binary.BigEndian.AppendUint32(b, 1)      // topics
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "bad"...)
	b = binary.BigEndian.AppendUint32(b, 1) // partitions
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(recordsLen))
	return append(b, 1, 2, 3)
}

// crcOf computes a v2 batch's CRC32C.
func crcOf(batch []byte) uint32 {
	return crc32.Checksum(batch[21:], castagnoli)
}

// TestNegativeArrayLengths: Kafka reads a negative length of a
// non-nullable array as a malformed request and closes the connection
// (the generated readers throw "non-nullable field ... was serialized as
// null"); a nullable one reads as null. Null records get a per-partition
// error.
func TestNegativeArrayLengths(t *testing.T) {
	b := startBroker(t)
	b.createTopic("bad", 1, nil)
	produceHead := func() []byte {
		var h []byte
		h = binary.BigEndian.AppendUint16(h, 0xffff) // null transactional id
		h = binary.BigEndian.AppendUint16(h, 1)      // acks
		return binary.BigEndian.AppendUint32(h, 1000)
	}
	t.Run("Produce topics -2", func(t *testing.T) {
		body := append(produceHead(), be32(-2)...)
		if got, closed := firstResponse(t, b.addr, requestFrame(0, 3, 1, body)); !closed {
			t.Fatalf("a Produce v3 whose non-nullable topics array has length -2 is answered (%d bytes) instead of closing the connection as Kafka does", len(got))
		}
	})
	t.Run("Produce partitions -3", func(t *testing.T) {
		body := append(produceHead(), be32(1)...)
		body = append(body, 0, 3, 'b', 'a', 'd')
		body = append(body, be32(-3)...)
		if got, closed := firstResponse(t, b.addr, requestFrame(0, 3, 1, body)); !closed {
			t.Fatalf("a Produce v3 whose non-nullable partitions array has length -3 is answered (%d bytes) instead of closing the connection as Kafka does", len(got))
		}
	})
	t.Run("Produce null records", func(t *testing.T) {
		raw := dialRaw(t, b.addr)
		body := produceBody(-1)
		raw.c.Write(requestFrame(0, 3, 5, body[:len(body)-3]))
		f, err := readFrame(raw.c, 10*time.Second)
		if err != nil {
			if errClosed(err) {
				return // closing is fine too
			}
			t.Fatal(err)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(3)
		fb, err := responseBody(f, 5, false)
		if err == nil {
			err = resp.ReadFrom(fb)
		}
		if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("null records: %v %+v", err, resp)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode == 0 || p.BaseOffset != -1 {
			t.Fatalf("null records: %v at %d, want an error", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
		}
	})
	t.Run("Metadata topics -2 means all", func(t *testing.T) {
		raw := dialRaw(t, b.addr)
		raw.c.Write(requestFrame(3, 1, 6, be32(-2)))
		f, err := readFrame(raw.c, 10*time.Second)
		if err != nil {
			t.Fatalf("Metadata v1 with topics -2: %v", err)
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(1)
		fb, err := responseBody(f, 6, false)
		if err == nil {
			err = resp.ReadFrom(fb)
		}
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "bad" {
			t.Fatalf("Metadata v1 with topics -2: %v, %+v; want all topics", err, resp.Topics)
		}
	})
	if end := dialRaw(t, b.addr).listEnd("bad", 0); end != 0 {
		t.Fatalf("something was appended: end offset %d", end)
	}
}
