package main

// kafka-go (segmentio/kafka-go) against the binary: Client.CreateTopics
// (configs, unknown config, replication 3 refused), Conn.CreateTopics,
// metadata, DescribeConfigs with synonyms, Writer produce with codecs and
// acks, auto-create, unknown topics, Client.Produce, InitProducerID,
// ListOffsets, Conn.ReadOffsets, readers on a fixed partition from the
// first, a middle and the last offset, Conn.ReadBatch, DeleteTopics.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

func TestKafkaGo(t *testing.T) {
	b := startBroker(t)
	kafkaGoSweep(t, b.addr)
}

type fixedBalancer int

func (f fixedBalancer) Balance(kafka.Message, ...int) int { return int(f) }

func kafkaGoSweep(t *testing.T, broker string) {
	check := func(name string, ok bool, format string, a ...any) {
		t.Helper()
		if !ok {
			t.Errorf("kafka-go: %s: %s", name, fmt.Sprintf(format, a...))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addr := kafka.TCP(broker)
	cl := &kafka.Client{Addr: addr, Timeout: 10 * time.Second}
	topic := "kgo-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	var logger kafka.Logger

	// --- create topics
	cr, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}, {ConfigName: "cleanup.policy", ConfigValue: "delete"}}},
		{Topic: topic + "-bad", NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: []kafka.ConfigEntry{{ConfigName: "no.such.config", ConfigValue: "1"}}},
		{Topic: topic + "-rf3", NumPartitions: 1, ReplicationFactor: 3},
	}})
	if err != nil {
		check("create-topics", false, "err=%v", err)
	} else {
		check("create-topics", cr.Errors[topic] == nil, "err=%v", cr.Errors[topic])
		check("create-topics-unknown-config", cr.Errors[topic+"-bad"] != nil, "err=%v", cr.Errors[topic+"-bad"])
		check("create-topics-rf3", errors.Is(cr.Errors[topic+"-rf3"], kafka.InvalidReplicationFactor), "err=%v", cr.Errors[topic+"-rf3"])
	}
	// Conn.CreateTopics (the older API, CreateTopics v0)
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.CreateTopics(kafka.TopicConfig{Topic: topic + "-conn", NumPartitions: 2, ReplicationFactor: 1})
	check("conn-create-topics", err == nil, "err=%v", err)
	ps, err := conn.ReadPartitions(topic + "-conn")
	check("conn-read-partitions", err == nil && len(ps) == 2, "err=%v n=%d", err, len(ps))

	// --- metadata
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		check("metadata", false, "err=%v", err)
	} else {
		t := md.Topics[0]
		check("metadata", t.Error == nil && len(t.Partitions) == 3 && t.Partitions[2].Leader.ID == 1, "err=%v parts=%d brokers=%v ctrl=%v", t.Error, len(t.Partitions), md.Brokers, md.Controller)
	}
	md, err = cl.Metadata(ctx, &kafka.MetadataRequest{})
	// (kafka-go's Transport answers this from its metadata cache, so the count depends on its refresh timing)
	found := false
	if err == nil {
		for _, t := range md.Topics {
			found = found || t.Name == topic
		}
	}
	check("metadata-all", err == nil && found, "err=%v n=%d", err, len(md.Topics))

	// --- describe configs
	dc, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic},
		{ResourceType: kafka.ResourceTypeBroker, ResourceName: "1", ConfigNames: []string{"log.retention.hours", "num.partitions"}},
	}, IncludeSynonyms: true, IncludeDocumentation: true})
	if err != nil || len(dc.Resources) != 2 {
		check("describe-configs", false, "err=%v", err)
	} else {
		// kafka-go splits broker/topic resources into separate requests; order is not kept
		if dc.Resources[0].ResourceName != topic {
			dc.Resources[0], dc.Resources[1] = dc.Resources[1], dc.Resources[0]
		}
		var ret string
		for _, e := range dc.Resources[0].ConfigEntries {
			if e.ConfigName == "retention.ms" {
				ret = e.ConfigValue
			}
		}
		check("describe-configs-topic", dc.Resources[0].Error == nil && ret == "3600000", "err=%v n=%d retention.ms=%q", dc.Resources[0].Error, len(dc.Resources[0].ConfigEntries), ret)
		var names []string
		for _, e := range dc.Resources[1].ConfigEntries {
			names = append(names, e.ConfigName+"="+e.ConfigValue)
		}
		check("describe-configs-broker", dc.Resources[1].Error == nil && len(names) > 0, "err=%v %v", dc.Resources[1].Error, names)
	}

	// --- produce: every codec x acks with keys/headers/timestamps to partition 0
	codecs := []compress.Codec{nil, kafka.Gzip.Codec(), kafka.Snappy.Codec(), kafka.Lz4.Codec(), kafka.Zstd.Codec()}
	acks := []kafka.RequiredAcks{kafka.RequireNone, kafka.RequireOne, kafka.RequireAll}
	baseTS := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	lastOffset := func(p int) int64 {
		lc, err := kafka.DialLeader(ctx, "tcp", broker, topic, p)
		if err != nil {
			return -1
		}
		defer lc.Close()
		o, err := lc.ReadLastOffset()
		if err != nil {
			return -1
		}
		return o
	}
	var expect []kafka.Message
	n := 0
	for _, codec := range codecs {
		for _, ack := range acks {
			w := &kafka.Writer{Addr: addr, Topic: topic, Balancer: fixedBalancer(0), RequiredAcks: ack, BatchSize: 5, BatchTimeout: 20 * time.Millisecond, Logger: logger, ErrorLogger: logger}
			cname := "none"
			if codec != nil {
				w.Compression = kafka.Compression(codec.Code())
				cname = codec.Name()
			}
			var msgs []kafka.Message
			for i := 0; i < 5; i++ {
				k := fmt.Sprintf("k%d", n)
				msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(fmt.Sprintf("v%d-%s-%d-%s", n, cname, ack, strings.Repeat("x", 200))),
					Headers: []kafka.Header{{Key: "h", Value: []byte(k)}}, Time: baseTS.Add(time.Duration(n) * time.Second)})
				n++
			}
			expect = append(expect, msgs...)
			t0 := time.Now()
			err := w.WriteMessages(ctx, msgs...)
			check(fmt.Sprintf("produce-%s-acks%d", cname, ack), err == nil, "err=%v took=%v", err, time.Since(t0).Round(time.Millisecond))
			if ack == kafka.RequireNone {
				// acks=0 returns before the request has surely left the
				// client; closing the writer at once can drop it (one run
				// in a loaded make test lost a batch that never reached
				// the broker). Wait for the records, as an acks=0
				// application reads them back rather than trusting the
				// write.
				for deadline := time.Now().Add(10 * time.Second); lastOffset(0) < int64(n) && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
			}
			w.Close()
		}
	}
	// auto-create via writer
	{
		w := &kafka.Writer{Addr: addr, Topic: topic + "-auto", AllowAutoTopicCreation: true, BatchTimeout: 10 * time.Millisecond}
		t0 := time.Now()
		err := w.WriteMessages(ctx, kafka.Message{Value: []byte("a")})
		check("produce-autocreate", err == nil, "err=%v took=%v", err, time.Since(t0).Round(time.Millisecond))
		w.Close()
	}
	// unknown topic without auto-create
	{
		w := &kafka.Writer{Addr: addr, Topic: topic + "-nope", BatchTimeout: 10 * time.Millisecond, MaxAttempts: 2}
		c2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
		t0 := time.Now()
		err := w.WriteMessages(c2, kafka.Message{Value: []byte("a")})
		cancel2()
		check("produce-unknown-topic", err != nil, "err=%v took=%v", err, time.Since(t0).Round(time.Millisecond))
		w.Close()
	}

	// --- low-level Client.Produce with headers to partition 1 (returns base offset)
	{
		pr, err := cl.Produce(ctx, &kafka.ProduceRequest{Topic: topic, Partition: 1, RequiredAcks: kafka.RequireAll,
			Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes([]byte("a")), Value: kafka.NewBytes([]byte("b")), Time: baseTS}), Compression: kafka.Zstd})
		check("client-produce", err == nil && pr.Error == nil && pr.BaseOffset == 0, "err=%v perr=%v base=%d", err, errOf(pr), baseOf(pr))
	}

	// --- InitProducerID (no transactional id)
	{
		r, err := cl.InitProducerID(ctx, &kafka.InitProducerIDRequest{TransactionTimeoutMs: 10000})
		if err != nil {
			check("init-producer-id", false, "err=%v", err)
		} else {
			check("init-producer-id", r.Error == nil && r.Producer != nil && r.Producer.ProducerID >= 0, "err=%v producer=%+v", r.Error, r.Producer)
		}
	}

	// --- list offsets
	lo := func(name string, req kafka.OffsetRequest, want int64) {
		r, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {req}}})
		if err != nil || len(r.Topics[topic]) != 1 {
			check(name, false, "err=%v", err)
			return
		}
		p := r.Topics[topic][0]
		var got int64 = -99
		switch req.Timestamp {
		case kafka.FirstOffset:
			got = p.FirstOffset
		case kafka.LastOffset:
			got = p.LastOffset
		default:
			for o := range p.Offsets {
				got = o
			}
		}
		check(name, p.Error == nil && got == want, "err=%v got=%d want=%d (first=%d last=%d offsets=%v)", p.Error, got, want, p.FirstOffset, p.LastOffset, p.Offsets)
	}
	lo("listoffsets-earliest", kafka.FirstOffsetOf(0), 0)
	lo("listoffsets-latest", kafka.LastOffsetOf(0), int64(len(expect)))
	lo("listoffsets-by-ts", kafka.TimeOffsetOf(0, baseTS.Add(37*time.Second)), 37)
	lo("listoffsets-by-ts-between", kafka.TimeOffsetOf(0, baseTS.Add(36500*time.Millisecond)), 37)
	lo("listoffsets-by-ts-future", kafka.TimeOffsetOf(0, time.Now().Add(time.Hour)), -1)
	// Conn-level offsets (ListOffsets v1)
	lconn, err := kafka.DialLeader(ctx, "tcp", broker, topic, 0)
	if err != nil {
		check("dial-leader", false, "err=%v", err)
	} else {
		f, l, err := lconn.ReadOffsets()
		check("conn-read-offsets", err == nil && f == 0 && l == int64(len(expect)), "err=%v first=%d last=%d", err, f, l)
		o, err := lconn.ReadOffset(baseTS.Add(37 * time.Second))
		check("conn-read-offset-ts", err == nil && o == 37, "err=%v off=%d", err, o)
		lconn.Close()
	}

	// --- consume with assigned partitions (Reader without GroupID)
	consume := func(name string, off int64, want []kafka.Message, produceAfter bool) {
		t0 := time.Now()
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond, Logger: logger, ErrorLogger: logger})
		defer r.Close()
		if err := r.SetOffset(off); err != nil {
			check(name, false, "SetOffset: %v", err)
			return
		}
		if produceAfter {
			go func() {
				time.Sleep(500 * time.Millisecond)
				w := &kafka.Writer{Addr: addr, Topic: topic, Balancer: fixedBalancer(0), BatchTimeout: time.Millisecond}
				w.WriteMessages(ctx, kafka.Message{Key: []byte("late"), Value: []byte("late")})
				w.Close()
			}()
		}
		var first time.Duration
		c2, cancel2 := context.WithTimeout(ctx, 15*time.Second)
		defer cancel2()
		for i := range want {
			m, err := r.ReadMessage(c2)
			if err != nil {
				check(name, false, "after %d/%d: %v", i, len(want), err)
				return
			}
			if i == 0 {
				first = time.Since(t0)
			}
			w := want[i]
			if string(m.Key) != string(w.Key) || string(m.Value) != string(w.Value) || (!w.Time.IsZero() && !m.Time.Equal(w.Time)) ||
				len(m.Headers) != len(w.Headers) {
				check(name, false, "record %d mismatch: got key=%s ts=%v hdrs=%d off=%d; want key=%s ts=%v", i, m.Key, m.Time, len(m.Headers), m.Offset, w.Key, w.Time)
				return
			}
		}
		check(name, true, "%d records, first after %v, all after %v", len(want), first.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	}
	consume("consume-from-first", kafka.FirstOffset, expect, false)
	consume("consume-from-middle", 42, expect[42:], false)
	consume("consume-from-last", kafka.LastOffset, []kafka.Message{{Key: []byte("late"), Value: []byte("late")}}, true)

	// Conn.ReadBatch from the middle
	{
		c, err := kafka.DialLeader(ctx, "tcp", broker, topic, 0)
		if err == nil {
			c.Seek(10, kafka.SeekAbsolute)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := c.ReadBatch(1, 1<<20)
			m, err := b.ReadMessage()
			check("conn-readbatch-middle", err == nil && string(m.Key) == "k10" && m.Offset == 10, "err=%v key=%s off=%d", err, m.Key, m.Offset)
			b.Close()
			c.Close()
		}
	}

	// --- delete topics
	dr, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic, topic + "-conn", topic + "-auto", topic + "-nothere"}})
	if err != nil {
		check("delete-topics", false, "err=%v", err)
	} else {
		check("delete-topics", dr.Errors[topic] == nil && dr.Errors[topic+"-conn"] == nil, "errs=%v", dr.Errors)
		check("delete-topics-missing", errors.Is(dr.Errors[topic+"-nothere"], kafka.UnknownTopicOrPartition), "err=%v", dr.Errors[topic+"-nothere"])
	}
	// fresh transport: the default one caches metadata
	cl2 := &kafka.Client{Addr: addr, Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	md, err = cl2.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err == nil && len(md.Topics) == 1 {
		check("deleted-metadata", md.Topics[0].Error != nil, "err=%v parts=%d", md.Topics[0].Error, len(md.Topics[0].Partitions))
	}
	conn.Close()
	_ = net.IPv4len
}

func errOf(p *kafka.ProduceResponse) error {
	if p == nil {
		return nil
	}
	return p.Error
}
func baseOf(p *kafka.ProduceResponse) int64 {
	if p == nil {
		return -1
	}
	return p.BaseOffset
}
