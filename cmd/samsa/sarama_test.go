package main

// sarama (IBM/sarama), the Go client many applications use, against the
// binary at three protocol levels: admin (create with configs, duplicate,
// bad config, validate-only, describe, list, describe configs, delete),
// metadata and auto-create, produce with every codec and acks 0/1/all
// (keys, headers, timestamps), broker-side MESSAGE_TOO_LARGE, an
// idempotent producer, offsets (earliest, latest, by timestamp) and
// partition consumers from the oldest, a middle and the newest offset.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestSarama(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	for _, v := range []string{"2.1.0", "3.6.0", "4.0.0"} {
		t.Run(v, func(t *testing.T) {
			b := startBroker(t)
			saramaSweep(t, b.addr, v)
		})
	}
}

func saramaConfig(t *testing.T, version string) *sarama.Config {
	c := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	c.Version = v
	c.ClientID = "itest-sarama"
	c.Metadata.Retry.Max = 3
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Consumer.Return.Errors = true
	c.Producer.Timeout = 5 * time.Second
	c.Net.DialTimeout = 3 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	return c
}

func saramaSweep(t *testing.T, addr, version string) {
	check := func(name string, ok bool, format string, a ...any) {
		t.Helper()
		if !ok {
			t.Errorf("sarama %s: %s: %s", version, name, fmt.Sprintf(format, a...))
		}
	}
	cfg := func() *sarama.Config { return saramaConfig(t, version) }
	topic := "sarama-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	brokers := []string{addr}

	// --- admin: create topic with configs, 3 partitions
	adm, err := sarama.NewClusterAdmin(brokers, cfg())
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer adm.Close()
	ret := "3600000"
	mmb := "2000000"
	err = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &ret, "max.message.bytes": &mmb}}, false)
	check("create-topic", err == nil, "err=%v", err)
	err = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	check("create-topic-dup", err != nil && errorsIs(err, sarama.ErrTopicAlreadyExists), "err=%v", err)
	err = adm.CreateTopic(topic+"-bad", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": strp("abc")}}, false)
	check("create-topic-badconfig", err != nil && errorsIs(err, sarama.ErrInvalidConfig), "err=%v", err)
	err = adm.CreateTopic(topic+"-vo", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, true)
	check("create-topic-validate-only", err == nil, "err=%v", err)

	md, err := adm.DescribeTopics([]string{topic, topic + "-vo"})
	if err == nil && len(md) == 2 {
		check("describe-topics", md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == 3, "err=%v parts=%d", md[0].Err, len(md[0].Partitions))
		check("validate-only-not-created", md[1].Err == sarama.ErrUnknownTopicOrPartition, "err=%v", md[1].Err)
	} else {
		check("describe-topics", false, "err=%v n=%d", err, len(md))
	}
	topics, err := adm.ListTopics()
	td, ok := topics[topic]
	check("list-topics", err == nil && ok && td.NumPartitions == 3 && td.ConfigEntries["retention.ms"] != nil && *td.ConfigEntries["retention.ms"] == "3600000",
		"err=%v ok=%v detail=%+v retention=%v", err, ok, td, derefm(td.ConfigEntries, "retention.ms"))

	// describe configs
	ents, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	got := map[string]sarama.ConfigEntry{}
	for _, e := range ents {
		got[e.Name] = e
	}
	check("describe-config-topic", err == nil && got["retention.ms"].Value == "3600000" && got["max.message.bytes"].Value == "2000000" && !got["retention.ms"].Default,
		"err=%v n=%d retention=%+v cleanup=%+v", err, len(ents), got["retention.ms"], got["cleanup.policy"])
	ents, err = adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"cleanup.policy"}})
	check("describe-config-names", err == nil && len(ents) == 1 && ents[0].Value == "delete", "err=%v %+v", err, ents)
	ents, err = adm.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "1"})
	check("describe-config-broker", err == nil && len(ents) > 0, "err=%v n=%d", err, len(ents))
	_, err = adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "no-such-topic-x"})
	check("describe-config-missing", err != nil, "err=%v", err)

	// --- client metadata
	cl, err := sarama.NewClient(brokers, cfg())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer cl.Close()
	parts, err := cl.Partitions(topic)
	check("metadata-partitions", err == nil && len(parts) == 3, "err=%v parts=%v", err, parts)
	ld, err := cl.Leader(topic, 2)
	check("metadata-leader", err == nil && ld.ID() == 1, "err=%v", err)
	// auto-create through metadata
	auto := topic + "-auto"
	err = cl.RefreshMetadata(auto)
	ap, err2 := cl.Partitions(auto)
	check("metadata-autocreate", err == nil && err2 == nil && len(ap) == 1, "err=%v err2=%v parts=%v", err, err2, ap)

	// --- produce: every codec x acks, keys/headers/timestamps
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	acks := []sarama.RequiredAcks{sarama.NoResponse, sarama.WaitForLocal, sarama.WaitForAll}
	baseTS := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	type sent struct {
		key, val string
		ts       time.Time
	}
	var expect []sent // all on partition 0 in order
	n := 0
	for _, codec := range codecs {
		for _, ack := range acks {
			c := cfg()
			c.Producer.Compression = codec
			c.Producer.RequiredAcks = ack
			c.Producer.Flush.Messages = 5 // batches of several records
			c.Producer.Flush.Frequency = 50 * time.Millisecond
			p, err := sarama.NewSyncProducer(brokers, c)
			if err != nil {
				check("producer-new", false, "%v %v: %v", codec, ack, err)
				continue
			}
			var msgs []*sarama.ProducerMessage
			for i := 0; i < 5; i++ {
				ts := baseTS.Add(time.Duration(n) * time.Second)
				k, v := fmt.Sprintf("k%d", n), fmt.Sprintf("v%d-%s-%d-%s", n, codec, ack, bytes.Repeat([]byte("x"), 200))
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(v),
					Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte(k)}, {Key: []byte("codec"), Value: []byte(codec.String())}}, Timestamp: ts})
				expect = append(expect, sent{k, v, ts})
				n++
			}
			t0 := time.Now()
			err = p.SendMessages(msgs)
			offs := []int64{}
			for _, m := range msgs {
				offs = append(offs, m.Offset)
			}
			check(fmt.Sprintf("produce-%s-acks%d", codec, ack), err == nil, "err=%v offsets=%v took=%v", err, offs, time.Since(t0).Round(time.Millisecond))
			p.Close()
			if ack == sarama.NoResponse {
				// Nothing orders an acks=0 request before the next
				// producer's, on its own connection: wait for it to land,
				// or a busy machine appends it after them.
				hw, err := int64(-1), error(nil)
				for deadline := time.Now().Add(10 * time.Second); hw != int64(n) && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					hw, err = cl.GetOffset(topic, 0, sarama.OffsetNewest)
				}
				check(fmt.Sprintf("produce-%s-acks0-landed", codec), hw == int64(n), "err=%v end offset %d, want %d", err, hw, n)
			}
		}
	}
	// other partitions
	{
		p, _ := sarama.NewSyncProducer(brokers, cfg())
		for part := int32(1); part < 3; part++ {
			_, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder("p" + strconv.Itoa(int(part)))})
			check(fmt.Sprintf("produce-partition-%d", part), err == nil && off == 0, "err=%v off=%d", err, off)
		}
		p.Close()
	}
	// null key, empty value
	{
		p, _ := sarama.NewSyncProducer(brokers, cfg())
		_, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 1, Value: nil})
		check("produce-null-value", err == nil && off == 1, "err=%v off=%d", err, off)
		p.Close()
		c := cfg()
		c.Producer.MaxMessageBytes = 10000000
		p, _ = sarama.NewSyncProducer(brokers, c)
		// too large for the topic's max.message.bytes=2000000 (broker side)
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 2, Value: sarama.ByteEncoder(make([]byte, 2100000))})
		check("produce-too-large", errorsIs(err, sarama.ErrMessageSizeTooLarge), "err=%v", err)
		p.Close()
		// A fresh producer's first request on its leader connection is
		// this Produce (sarama before Kafka 2.4 sends no ApiVersions):
		// above max_preauth_request_bytes, it still gets in.
		c.Producer.Retry.Max = 0 // a retry would come after a Metadata on the new connection
		p, _ = sarama.NewSyncProducer(brokers, c)
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 2, Value: sarama.ByteEncoder(make([]byte, 700000))})
		check("produce-big-first-request", err == nil, "err=%v", err)
		// unknown partition
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 7, Value: sarama.StringEncoder("x")})
		check("produce-bad-partition", err != nil, "err=%v", err)
		p.Close()
	}

	// --- idempotent producer
	idemTopic := topic + "-idem"
	{
		c := cfg()
		c.Producer.Idempotent = true
		c.Producer.RequiredAcks = sarama.WaitForAll
		c.Net.MaxOpenRequests = 1
		c.Producer.Compression = sarama.CompressionZSTD
		c.Producer.Flush.Messages = 10
		c.Producer.Flush.Frequency = 20 * time.Millisecond
		if !c.Version.IsAtLeast(sarama.V0_11_0_0) {
			c.Version = sarama.V0_11_0_0
		}
		t0 := time.Now()
		p, err := sarama.NewSyncProducer(brokers, c)
		if err != nil {
			check("idempotent-new", false, "%v", err)
		} else {
			var msgs []*sarama.ProducerMessage
			for i := 0; i < 100; i++ {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: idemTopic, Partition: 0, Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.StringEncoder(strconv.Itoa(i))})
			}
			err = p.SendMessages(msgs)
			check("idempotent-produce", err == nil && msgs[99].Offset == 99, "err=%v last=%d took=%v", err, msgs[99].Offset, time.Since(t0).Round(time.Millisecond))
			p.Close()
		}
		hw, err := cl.GetOffset(idemTopic, 0, sarama.OffsetNewest)
		check("idempotent-count", err == nil && hw == 100, "err=%v hw=%d", err, hw)
	}

	// --- list offsets
	{
		e, err := cl.GetOffset(topic, 0, sarama.OffsetOldest)
		check("listoffsets-earliest", err == nil && e == 0, "err=%v off=%d", err, e)
		l, err := cl.GetOffset(topic, 0, sarama.OffsetNewest)
		check("listoffsets-latest", err == nil && l == int64(len(expect)), "err=%v off=%d want=%d", err, l, len(expect))
		// by timestamp: record 37 has ts baseTS+37s
		ts := baseTS.Add(37 * time.Second).UnixMilli()
		o, err := cl.GetOffset(topic, 0, ts)
		check("listoffsets-by-ts", err == nil && o == 37, "err=%v off=%d want=37", err, o)
		o, err = cl.GetOffset(topic, 0, ts-500)
		check("listoffsets-by-ts-between", err == nil && o == 37, "err=%v off=%d want=37", err, o)
		o, err = cl.GetOffset(topic, 0, time.Now().Add(time.Hour).UnixMilli())
		check("listoffsets-by-ts-future", err == nil && o == -1, "err=%v off=%d want=-1", err, o)
	}

	// --- consume with assigned partitions
	cons, err := sarama.NewConsumer(brokers, cfg())
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	consume := func(name string, part int32, off int64, want []sent, produceAfter bool) {
		t0 := time.Now()
		pc, err := cons.ConsumePartition(topic, part, off)
		if err != nil {
			check(name, false, "ConsumePartition: %v", err)
			return
		}
		defer pc.Close()
		if produceAfter {
			time.Sleep(300 * time.Millisecond)
			p, _ := sarama.NewSyncProducer(brokers, cfg())
			_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: part, Key: sarama.StringEncoder("late"), Value: sarama.StringEncoder("late")})
			p.Close()
			if err != nil {
				check(name, false, "produce late: %v", err)
				return
			}
		}
		var first time.Duration
		i := 0
		timeout := time.After(10 * time.Second)
		for i < len(want) {
			select {
			case m := <-pc.Messages():
				if i == 0 {
					first = time.Since(t0)
				}
				w := want[i]
				if string(m.Key) != w.key || string(m.Value) != w.val || (!w.ts.IsZero() && !m.Timestamp.Equal(w.ts)) ||
					(!w.ts.IsZero() && (len(m.Headers) != 2 || string(m.Headers[0].Value) != w.key)) {
					check(name, false, "record %d mismatch: got key=%s ts=%v hdrs=%d off=%d; want key=%s ts=%v", i, m.Key, m.Timestamp, len(m.Headers), m.Offset, w.key, w.ts)
					return
				}
				i++
			case e := <-pc.Errors():
				check(name, false, "consumer error: %v", e)
				return
			case <-timeout:
				check(name, false, "timeout after %d/%d records", i, len(want))
				return
			}
		}
		check(name, true, "%d records, first after %v, all after %v", len(want), first.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	}
	consume("consume-from-oldest", 0, sarama.OffsetOldest, expect, false)
	consume("consume-from-middle", 0, 42, expect[42:], false)
	consume("consume-from-newest", 0, sarama.OffsetNewest, []sent{{key: "late", val: "late"}}, true)
	cons.Close()

	// --- delete topic
	err = adm.DeleteTopic(topic)
	check("delete-topic", err == nil, "err=%v", err)
	err = adm.DeleteTopic(topic)
	check("delete-topic-again", err != nil && errorsIs(err, sarama.ErrUnknownTopicOrPartition), "err=%v", err)
	topics, _ = adm.ListTopics()
	_, still := topics[topic]
	check("deleted-not-listed", !still, "still listed=%v", still)
	adm.DeleteTopic(auto)
	adm.DeleteTopic(idemTopic)

}

func strp(s string) *string { return &s }

func derefm(m map[string]*string, k string) string {
	if m[k] == nil {
		return "<nil>"
	}
	return *m[k]
}

func errorsIs(err error, target sarama.KError) bool { return errors.Is(err, target) }
