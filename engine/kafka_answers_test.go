package engine

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/engine/acl"
)

// Answers where Kafka's own (KafkaApis, ControllerApis, AuthHelper,
// ConfigHelper) differ from the obvious reading, each as a client sees
// it: the authorizer first, then the data path and admin APIs. The
// client is anonymous (User:ANONYMOUS, from 127.0.0.1); each
// authorizer case sets the ACLs it needs.

func allow(rt acl.ResourceType, name string, pat acl.PatternType, op acl.Operation) acl.Binding {
	return acl.Binding{ResourceType: rt, ResourceName: name, Pattern: pat, Principal: "User:ANONYMOUS",
		Host: acl.Wildcard, Operation: op, Permission: acl.PermAllow}
}

func startAuthzBroker(t *testing.T, allowNoACL bool) (*testBroker, *kgo.Client) {
	t.Helper()
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.ACL.Enabled = true
		c.ACL.AllowEveryoneIfNoACL = allowNoACL
		c.AutoCreateTopics = true
	})
	return tb, tb.client(kgo.RequestRetries(0))
}

func TestKafkaAuthzAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("auto-create without CREATE is refused", func(t *testing.T) {
		tb, cl := startAuthzBroker(t, false)
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceTopic, "auto-", acl.PatternPrefixed, acl.OpDescribe),
			allow(acl.ResourceTopic, "auto-yes", acl.PatternLiteral, acl.OpCreate)})
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = true
		for _, name := range []string{"auto-no", "auto-yes"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.Topics[0].ErrorCode; c != kerr.TopicAuthorizationFailed.Code {
			t.Errorf("auto-no: code %d, want TOPIC_AUTHORIZATION_FAILED", c)
		}
		if c := resp.Topics[1].ErrorCode; c != 0 || tb.b.topic("auto-yes") == nil {
			t.Errorf("auto-yes (CREATE granted): code %d", c)
		}
		// Without auto-creation asked for, a missing topic is unknown.
		req.AllowAutoTopicCreation = false
		req.Topics = req.Topics[:1]
		if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("auto-no without auto-creation: %v %+v", err, resp)
		}
	})

	t.Run("cluster operations need DESCRIBE; DescribeCluster needs no ACL", func(t *testing.T) {
		tb, cl := startAuthzBroker(t, false)
		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.IncludeClusterAuthorizedOperations = true
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(9)
		md.IncludeClusterAuthorizedOperations = true
		md.Topics = []kmsg.MetadataRequestTopic{}
		r, err := dc.RequestWith(ctx, cl)
		if err != nil || r.ErrorCode != 0 || r.ClusterAuthorizedOperations != 0 || len(r.Brokers) == 0 {
			t.Fatalf("DescribeCluster with no ACL: %v %+v", err, r)
		}
		rc := dialRaw(t, tb.addr)
		mdOps := func() int32 { return rc.request(md).(*kmsg.MetadataResponse).AuthorizedOperations }
		if ops := mdOps(); ops != 0 {
			t.Fatalf("Metadata v9 with no ACL: ops %b", ops)
		}
		// IDEMPOTENT_WRITE alone: still nothing without DESCRIBE.
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, acl.OpIdempotentWrite)})
		if ops := mdOps(); ops != 0 {
			t.Fatalf("Metadata v9 with IDEMPOTENT_WRITE only: ops %b", ops)
		}
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, acl.OpDescribe)})
		if r, err := dc.RequestWith(ctx, cl); err != nil || r.ClusterAuthorizedOperations != 1<<acl.OpDescribe {
			t.Fatalf("DescribeCluster with DESCRIBE: %v ops %b, want DESCRIBE only", err, r.ClusterAuthorizedOperations)
		}
		if ops := mdOps(); ops != 1<<acl.OpDescribe {
			t.Fatalf("Metadata v9 with DESCRIBE: ops %b", ops)
		}
	})

	t.Run("idempotent producer under allow.everyone.if.no.acl.found", func(t *testing.T) {
		tb, cl := startAuthzBroker(t, true)
		tb.b.authz.Set([]acl.Binding{{ResourceType: acl.ResourceTopic, ResourceName: "secret", Pattern: acl.PatternLiteral,
			Principal: "User:admin", Host: acl.Wildcard, Operation: acl.OpAll, Permission: acl.PermAllow}})
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.TransactionTimeoutMillis = -1
		if r, err := ip.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 || r.ProducerID < 0 {
			t.Fatalf("InitProducerId: %v %+v", err, r)
		}
	})

	t.Run("group answers", func(t *testing.T) {
		tb, cl := startAuthzBroker(t, false)
		// OffsetFetch of a group the principal may not describe: no
		// offsets, in either shape.
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceTopic, "*", acl.PatternLiteral, acl.OpAll),
			allow(acl.ResourceGroup, "g-all", acl.PatternLiteral, acl.OpAll)})
		for _, v := range []int16{1, 5} {
			of := kmsg.NewPtrOffsetFetchRequest()
			of.SetVersion(v)
			of.Group = "g-denied"
			ft := kmsg.NewOffsetFetchRequestTopic()
			ft.Topic, ft.Partitions = "t", []int32{0, 1}
			of.Topics = append(of.Topics, ft)
			r := dialRaw(t, tb.addr).request(of).(*kmsg.OffsetFetchResponse)
			switch {
			case v < 2:
				if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 {
					t.Fatalf("OffsetFetch v%d: %+v, want each partition asked for", v, r.Topics)
				}
				for _, p := range r.Topics[0].Partitions {
					if p.ErrorCode != kerr.GroupAuthorizationFailed.Code || p.Offset != -1 || p.Metadata != nil && *p.Metadata != "" {
						t.Fatalf("OffsetFetch v%d partition %+v", v, p)
					}
				}
			case r.ErrorCode != kerr.GroupAuthorizationFailed.Code || len(r.Topics) != 0:
				t.Fatalf("OffsetFetch v%d: code %d, %d topics", v, r.ErrorCode, len(r.Topics))
			}
		}
		// DescribeGroups with ALL: the five group operations.
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups, dg.IncludeAuthorizedOperations = []string{"g-all"}, true
		r, err := dg.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		want := int32(1<<acl.OpRead | 1<<acl.OpDelete | 1<<acl.OpDescribe | 1<<acl.OpDescribeConfigs | 1<<acl.OpAlterConfigs)
		if got := r.Groups[0].AuthorizedOperations; r.Groups[0].ErrorCode != 0 || got != want {
			t.Fatalf("DescribeGroups ops %b, want %b (code %d)", got, want, r.Groups[0].ErrorCode)
		}
		// JoinGroup refused: no member id echoed.
		jg := kmsg.NewPtrJoinGroupRequest()
		jg.Group, jg.MemberID, jg.ProtocolType = "g-denied", "m-1", "consumer"
		jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = 10000, 10000
		jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		jg.SetVersion(5)
		if r := dialRaw(t, tb.addr).request(jg).(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.GroupAuthorizationFailed.Code || r.MemberID != "" {
			t.Fatalf("JoinGroup refused: %+v", r)
		}
	})

	t.Run("DeleteTopics", func(t *testing.T) {
		tb, cl := startAuthzBroker(t, false)
		for _, name := range []string{"keep", "gone-1", "gone-2"} {
			if _, err := tb.b.createTopic(name, 1, -1, nil, false); err != nil {
				t.Fatal(err)
			}
		}
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceTopic, "*", acl.PatternLiteral, acl.OpDescribe)})
		dt := kmsg.NewPtrDeleteTopicsRequest()
		dt.SetVersion(6)
		keepID := tb.b.topic("keep").id
		dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("missing")}, {TopicID: keepID}}
		r, err := dt.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if c := r.Topics[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("describable, missing: code %d, want UNKNOWN_TOPIC_OR_PARTITION", c)
		}
		if c, n := r.Topics[1].ErrorCode, r.Topics[1].Topic; c != kerr.TopicAuthorizationFailed.Code || n == nil || *n != "keep" {
			t.Errorf("by id, describable, not deletable: code %d name %v, want TOPIC_AUTHORIZATION_FAILED and its name", c, n)
		}
		// DELETE on the cluster deletes any topic.
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, acl.OpDelete)})
		dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("gone-1")}}
		if r, err := dt.RequestWith(ctx, cl); err != nil || r.Topics[0].ErrorCode != 0 || tb.b.topic("gone-1") != nil {
			t.Fatalf("DeleteTopics with cluster DELETE: %v %+v", err, r)
		}
	})

	t.Run("DeleteAcls filters each list every match", func(t *testing.T) {
		tb, cl := startAuthzBroker(t, false)
		// Through CreateAcls, so that the bindings are in the metadata
		// log that DeleteAcls works on.
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, acl.OpAlter)})
		ca := kmsg.NewPtrCreateACLsRequest()
		for _, bd := range []acl.Binding{allow(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, acl.OpAlter),
			allow(acl.ResourceTopic, "x", acl.PatternLiteral, acl.OpRead)} {
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceType(bd.ResourceType), bd.ResourceName, kmsg.ACLResourcePatternType(bd.Pattern)
			c.Principal, c.Host, c.Operation, c.PermissionType = bd.Principal, bd.Host, kmsg.ACLOperation(bd.Operation), kmsg.ACLPermissionType(bd.Permission)
			ca.Creations = append(ca.Creations, c)
		}
		if r, err := ca.RequestWith(ctx, cl); err != nil || r.Results[0].ErrorCode != 0 || r.Results[1].ErrorCode != 0 {
			t.Fatalf("CreateAcls: %v %+v", err, r)
		}
		da := kmsg.NewPtrDeleteACLsRequest()
		da.SetVersion(2)
		for range 2 {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("x"), kmsg.ACLResourcePatternTypeLiteral
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			da.Filters = append(da.Filters, f)
		}
		r, err := da.RequestWith(ctx, cl)
		if err != nil || len(r.Results) != 2 || len(r.Results[0].MatchingACLs) != 1 || len(r.Results[1].MatchingACLs) != 1 {
			t.Fatalf("overlapping filters: %v %+v", err, r)
		}
		if n := len(tb.b.authz.Bindings()); n != 1 {
			t.Fatalf("%d bindings left, want the cluster one", n)
		}
	})

	t.Run("cluster-level requests", func(t *testing.T) {
		tb, cl := startAuthzBroker(t, false)
		// BROKER_LOGGER configs need DESCRIBE_CONFIGS on the cluster.
		dcf := kmsg.NewPtrDescribeConfigsRequest()
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, "1"
		dcf.Resources = append(dcf.Resources, res)
		if r, err := dcf.RequestWith(ctx, cl); err != nil || r.Resources[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Fatalf("DescribeConfigs BROKER_LOGGER: %v %+v", err, r)
		}
		// AddPartitionsToTxn v4+ is the brokers' form: CLUSTER_ACTION.
		ap := kmsg.NewPtrAddPartitionsToTxnRequest()
		ap.SetVersion(4)
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch = "tx", 1, 0
		ap.Transactions = append(ap.Transactions, tx)
		if r := dialRaw(t, tb.addr).request(ap).(*kmsg.AddPartitionsToTxnResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Fatalf("AddPartitionsToTxn v4 without CLUSTER_ACTION: %+v", r)
		}
		// WriteTxnMarkers: ALTER on the cluster will do.
		wm := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch = 1, 0
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = "nope", []int32{0}
		m.Topics = append(m.Topics, mt)
		wm.Markers = append(wm.Markers, m)
		wm.SetVersion(1)
		rc := dialRaw(t, tb.addr)
		code := func() int16 {
			return rc.request(wm).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode
		}
		if c := code(); c != kerr.ClusterAuthorizationFailed.Code {
			t.Fatalf("WriteTxnMarkers with no ACL: code %d", c)
		}
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, acl.OpAlter)})
		if c := code(); c == kerr.ClusterAuthorizationFailed.Code {
			t.Fatal("WriteTxnMarkers with cluster ALTER still refused")
		}
		// OffsetForLeaderEpoch: CLUSTER_ACTION or topic DESCRIBE, from
		// anyone.
		if _, err := tb.b.createTopic("t", 1, -1, nil, false); err != nil {
			t.Fatal(err)
		}
		ofl := kmsg.NewPtrOffsetForLeaderEpochRequest()
		ofl.SetVersion(3)
		ofl.ReplicaID = -1
		ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
		ot.Topic = "t"
		op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		op.LeaderEpoch = 0
		ot.Partitions = append(ot.Partitions, op)
		ofl.Topics = append(ofl.Topics, ot)
		tb.b.authz.Set([]acl.Binding{allow(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, acl.OpClusterAction)})
		if r := dialRaw(t, tb.addr).request(ofl).(*kmsg.OffsetForLeaderEpochResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("OffsetForLeaderEpoch with CLUSTER_ACTION: %+v", r)
		}
	})
}

// TestListOffsetsSpecialTimestamps: each special timestamp from the
// version that defines it (Kafka's isListOffsetsTimestampUnsupported),
// UNSUPPORTED_VERSION before it and for unknown negative ones; nothing is
// tiered, so LATEST_TIERED answers -1 and epoch -1.
func TestListOffsetsSpecialTimestamps(t *testing.T) {
	_, rc := startWithTopic(t, "lo", nil)
	ask := func(v int16, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(v)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch, rp.MaxNumOffsets = ts, -1, 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return rc.request(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	}
	for _, c := range []struct {
		ts       int64
		from     int16
		unsuppOK bool // known at some version
	}{{-3, 7, true}, {-4, 8, true}, {-5, 9, true}, {-6, 11, true}, {-7, 0, false}} {
		for _, v := range []int16{1, 6, 7, 8, 9, 10, 11} {
			p := ask(v, c.ts)
			want := int16(0)
			if !c.unsuppOK || v < c.from {
				want = kerr.UnsupportedVersion.Code
			}
			if p.ErrorCode != want {
				t.Errorf("timestamp %d at v%d: code %d, want %d", c.ts, v, p.ErrorCode, want)
			}
		}
	}
	if p := ask(9, -5); p.Offset != -1 || p.LeaderEpoch != -1 {
		t.Errorf("LATEST_TIERED: offset %d epoch %d, want -1 -1", p.Offset, p.LeaderEpoch)
	}
	if p := ask(1, -1); p.ErrorCode != 0 || p.Offset != 0 {
		t.Errorf("LATEST at v1: %+v", p)
	}
}

// TestFetchUnknownTopicStillWaits: a partition of an unknown topic is
// answered with its error, but the fetch still waits max_wait for the
// others (Kafka's erroneous partitions), so a consumer still assigned a
// deleted topic does not spin; with nothing else to read it is answered
// at once.
func TestFetchUnknownTopicStillWaits(t *testing.T) {
	_, rc := startWithTopic(t, "w", nil)
	fetch := func(topics ...string) (*kmsg.FetchResponse, time.Duration) {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		req.ReplicaID, req.MaxBytes, req.MinBytes, req.MaxWaitMillis, req.SessionEpoch = -1, 1<<20, 1, 2000, -1
		for _, name := range topics {
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = name
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
		}
		t0 := time.Now()
		return rc.request(req).(*kmsg.FetchResponse), time.Since(t0)
	}
	resp, took := fetch("w", "gone")
	if took < 1500*time.Millisecond {
		t.Errorf("an unknown topic beside an empty one: answered after %v, want the 2 s wait", took)
	}
	var codes []int16
	for _, rt := range resp.Topics {
		codes = append(codes, rt.Partitions[0].ErrorCode)
	}
	if len(codes) != 2 || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("partition codes %v, want the unknown topic's error", codes)
	}
	if _, took := fetch("gone"); took > 1500*time.Millisecond {
		t.Errorf("only an unknown topic: answered after %v, want at once", took)
	}
}

// TestAdminAnswersAsKafka: DescribeConfigs with an empty (not null) list
// of names describes every config (ConfigHelper); ElectLeaders for every
// partition (null topics) leaves out those needing no election (here all
// of them, on a lone node); an existing topic is TOPIC_ALREADY_EXISTS
// before its request's other faults.
func TestAdminAnswersAsKafka(t *testing.T) {
	_, rc := startWithTopic(t, "cfg", nil)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.SetVersion(4)
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, "cfg", []string{}
	dc.Resources = append(dc.Resources, res)
	if r := rc.request(dc).(*kmsg.DescribeConfigsResponse); r.Resources[0].ErrorCode != 0 || len(r.Resources[0].Configs) < 10 {
		t.Fatalf("DescribeConfigs with an empty list: code %d, %d configs", r.Resources[0].ErrorCode, len(r.Resources[0].Configs))
	}
	el := kmsg.NewPtrElectLeadersRequest()
	el.SetVersion(2)
	if r := rc.request(el).(*kmsg.ElectLeadersResponse); r.ErrorCode != 0 || len(r.Topics) != 0 {
		t.Fatalf("ElectLeaders for every partition: %+v, want none listed", r)
	}
	el.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "cfg", Partitions: []int32{0}}}
	if r := rc.request(el).(*kmsg.ElectLeadersResponse); len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != kerr.ElectionNotNeeded.Code {
		t.Fatalf("ElectLeaders for a named partition: %+v, want ELECTION_NOT_NEEDED", r)
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(5)
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "cfg", 1, 3
	ct.Topics = append(ct.Topics, ctt)
	if r := rc.request(ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("CreateTopics of an existing topic with a bad replication factor: code %d", r.Topics[0].ErrorCode)
	}
}

// TestMaxMessageBytesBeforeRecompression: max.message.bytes applies to
// the batch as the producer sent it, before the topic's compression
// shrinks it (Kafka's analyzeAndValidateRecords).
func TestMaxMessageBytesBeforeRecompression(t *testing.T) {
	_, rc := startWithTopic(t, "gz", map[string]string{"compression.type": "gzip", "max.message.bytes": "1000"})
	vals := make([]string, 30)
	for i := range vals {
		vals[i] = string(make([]byte, 100)) // 3 KB, compresses to little
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = 1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "gz", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: rawBatch(-1, -1, -1, vals...)}}}}
	r := rc.request(req).(*kmsg.ProduceResponse)
	if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.MessageTooLarge.Code {
		t.Fatalf("a 3 KB batch for a 1000-byte topic that gzip would shrink: code %d, want MESSAGE_TOO_LARGE", c)
	}
}

// startWithTopic starts a broker with one topic of one partition (with
// configs) and dials it raw.
func startWithTopic(t *testing.T, name string, configs map[string]string) (*testBroker, *rawConn) {
	t.Helper()
	tb := startBroker(t, t.TempDir(), nil)
	if _, err := tb.b.createTopic(name, 1, -1, configs, false); err != nil {
		t.Fatal(err)
	}
	return tb, dialRaw(t, tb.addr)
}
