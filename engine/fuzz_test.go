package engine

import (
	"encoding/binary"
	"io"
	"net"
	"samsa/engine/acl"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedRequests returns a valid request body for every API and version in
// the dispatch table, with small waits so the fuzzer stays fast.
func seedRequests() []kmsg.Request {
	var out []kmsg.Request
	for _, a := range sortedAPIs() {
		for v := a.min; v <= a.max; v++ {
			req := kmsg.RequestForKey(a.key)
			req.SetVersion(v)
			topic := "fuzz"
			switch r := req.(type) {
			case *kmsg.MetadataRequest:
				r.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
				r.AllowAutoTopicCreation = true
			case *kmsg.ProduceRequest:
				r.Acks, r.TimeoutMillis = 1, 1000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Records = rawBatch(-1, -1, -1, "fuzz")
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
			case *kmsg.FetchRequest:
				r.MaxWaitMillis, r.MinBytes, r.MaxBytes = 1, 1, 1<<20
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.PartitionMaxBytes = 1 << 20
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
			case *kmsg.ListOffsetsRequest:
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = 0
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
			case *kmsg.CreateTopicsRequest:
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "fuzz2", 2, 1
				r.Topics = append(r.Topics, rt)
			case *kmsg.JoinGroupRequest:
				r.Group, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis, r.ProtocolType = "fg", 10000, 10000, "consumer"
				r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
			case *kmsg.OffsetCommitRequest:
				r.Group, r.Generation = "fg", -1
				r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1}}}}
			case *kmsg.ConsumerGroupHeartbeatRequest:
				r.Group, r.MemberID, r.RebalanceTimeoutMillis = "fg848", "fm", 10000
				r.SubscribedTopicNames = []string{topic}
				r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			case *kmsg.DeleteTopicsRequest:
				r.TopicNames = []string{"fuzz2"}
				r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &topic}}
			case *kmsg.DescribeConfigsRequest:
				r.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic}}
			case *kmsg.AlterConfigsRequest:
				r.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic,
					Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &topic}}}}
			case *kmsg.IncrementalAlterConfigsRequest:
				v := "compact"
				r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "",
					Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: &v}}}}
			case *kmsg.CreatePartitionsRequest:
				r.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: topic, Count: 3}}
			case *kmsg.DeleteRecordsRequest:
				r.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: topic, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
			case *kmsg.InitProducerIDRequest:
				id := "ftx"
				r.TransactionalID, r.TransactionTimeoutMillis = &id, 60000
			case *kmsg.AddPartitionsToTxnRequest:
				r.TransactionalID, r.ProducerID = "ftx", 0
				r.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: []int32{0}}}
				r.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: "ftx", VerifyOnly: true,
					Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: topic, Partitions: []int32{0}}}}}
			case *kmsg.EndTxnRequest:
				r.TransactionalID, r.Commit = "ftx", true
			case *kmsg.TxnOffsetCommitRequest:
				r.TransactionalID, r.Group, r.Generation = "ftx", "fg", -1
				r.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Offset: 1}}}}
			case *kmsg.WriteTxnMarkersRequest:
				r.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: 0, Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{0}}}}}
			case *kmsg.DescribeProducersRequest:
				r.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: topic, Partitions: []int32{0, 9}}}
			case *kmsg.DescribeLogDirsRequest:
				r.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: topic, Partitions: []int32{0, 5, -1}}}
			}
			out = append(out, req)
		}
	}
	return out
}

// FuzzRequest sends arbitrary request bodies for every API key through a
// real socket. The broker must answer or close the connection, never
// crash or stop serving others.
func FuzzRequest(f *testing.F) { fuzzRequest(f, nil) }

// FuzzRequestAuthorized is FuzzRequest with the authorizer on and a few
// ACLs (literal, prefixed, deny) for the anonymous client, so every API's
// authorization path (and the ACL and quota APIs themselves) take the
// arbitrary input.
func FuzzRequestAuthorized(f *testing.F) {
	fuzzRequest(f, func(tb *testBroker) {
		anon := "User:ANONYMOUS"
		tb.b.authz.Set([]acl.Binding{
			{ResourceType: acl.ResourceTopic, ResourceName: "fuzz", Pattern: acl.PatternPrefixed, Principal: anon, Host: acl.Wildcard, Operation: acl.OpAll, Permission: acl.PermAllow},
			{ResourceType: acl.ResourceTopic, ResourceName: "fuzz-denied", Pattern: acl.PatternLiteral, Principal: anon, Host: acl.Wildcard, Operation: acl.OpRead, Permission: acl.PermDeny},
			{ResourceType: acl.ResourceGroup, ResourceName: "*", Pattern: acl.PatternLiteral, Principal: anon, Host: acl.Wildcard, Operation: acl.OpRead, Permission: acl.PermAllow},
			{ResourceType: acl.ResourceCluster, ResourceName: acl.ClusterName, Pattern: acl.PatternLiteral, Principal: anon, Host: acl.Wildcard, Operation: acl.OpAlter, Permission: acl.PermAllow},
		})
	})
}

func fuzzRequest(f *testing.F, authz func(*testBroker)) {
	for _, req := range seedRequests() {
		body := req.AppendTo(nil)
		if req.IsFlexible() {
			body = append([]byte{0}, body...) // empty header tags
		}
		f.Add(req.Key(), req.GetVersion(), body)
	}
	f.Add(int16(0), int16(9), []byte{0, 0xff, 0xff, 0xff, 0xff, 0x80})
	f.Add(int16(1), int16(12), []byte{0x80, 0x80, 0x80, 0x80, 0x80})
	var cfg func(*Config)
	if authz != nil {
		cfg = func(c *Config) { c.ACL.Enabled = true }
	}
	tb := startBroker(f, f.TempDir(), cfg)
	if authz != nil {
		authz(tb)
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		c, err := net.DialTimeout("tcp", tb.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var frame []byte
		frame = binary.BigEndian.AppendUint32(frame, uint32(10+len(body)))
		frame = binary.BigEndian.AppendUint16(frame, uint16(key))
		frame = binary.BigEndian.AppendUint16(frame, uint16(version))
		frame = binary.BigEndian.AppendUint32(frame, 7)
		frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
		frame = append(frame, body...)
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		// Read the answer (or EOF); a parked fetch may take its max wait,
		// so give up after a while: the point is the broker's survival.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err == nil {
			if got := binary.BigEndian.Uint32(hdr[4:]); got != 7 {
				t.Fatalf("correlation id %d", got)
			}
		}
		// The broker still answers a fresh client.
		rc := &rawConn{t: t}
		rc.c, err = net.DialTimeout("tcp", tb.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.c.Close()
		av := kmsg.NewPtrApiVersionsRequest()
		rc.request(av)
	})
}
