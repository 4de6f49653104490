package engine

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupConfigs: KIP-848 group configs (config resource type GROUP),
// as Kafka 4 serves them (librdkafka's 0081 test sets one on a group that
// does not exist): set, described with their source, checked against
// Kafka's bounds, durable across a restart, and taken by the coordinator
// (the heartbeat interval a consumer-protocol member is told).
func TestGroupConfigs(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	c := tb.client()
	ctx := testCtx(t)
	alter := func(group string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, string) {
		t.Helper()
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeGroupConfig, group, ops
		r.Resources = append(r.Resources, rr)
		resp, err := r.RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		res := resp.Resources[0]
		msg := ""
		if res.ErrorMessage != nil {
			msg = *res.ErrorMessage
		}
		return res.ErrorCode, msg
	}
	set := func(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		v := value
		return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: kmsg.IncrementalAlterConfigOpSet, Value: &v}
	}
	describe := func(group string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		r := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		r.Resources = append(r.Resources, rr)
		resp, err := r.RequestWith(ctx, c)
		if err != nil || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("DescribeConfigs of group %s: %v %+v", group, err, resp)
		}
		out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, cfg := range resp.Resources[0].Configs {
			out[cfg.Name] = cfg
		}
		return out
	}
	want := func(cfgs map[string]kmsg.DescribeConfigsResponseResourceConfig, name, value string, src kmsg.ConfigSource) {
		t.Helper()
		got, ok := cfgs[name]
		if !ok || got.Value == nil || *got.Value != value || got.Source != src {
			t.Fatalf("%s: %+v, want %s from %v", name, got, value, src)
		}
	}

	// A group that does not exist may have configs, as in Kafka.
	if code, msg := alter("my-group", set("consumer.session.timeout.ms", "50000")); code != 0 {
		t.Fatalf("set consumer.session.timeout.ms: %v %s", kerr.ErrorForCode(code), msg)
	}
	cfgs := describe("my-group")
	want(cfgs, "consumer.session.timeout.ms", "50000", kmsg.ConfigSourceGroupConfig)
	want(cfgs, "consumer.heartbeat.interval.ms", msString(tb.b.cfg.Groups.ConsumerHeartbeatInterval), kmsg.ConfigSourceDefaultConfig)
	want(cfgs, "share.auto.offset.reset", "latest", kmsg.ConfigSourceDefaultConfig)
	want(describe("other"), "consumer.session.timeout.ms", msString(tb.b.cfg.Groups.ConsumerSessionTimeout), kmsg.ConfigSourceDefaultConfig)

	// Kafka's checks, each INVALID_CONFIG, and nothing changes.
	for _, bad := range []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		set("consumer.session.timeout.ms", "1000"),     // below group.consumer.min.session.timeout.ms
		set("consumer.heartbeat.interval.ms", "60000"), // above the max
		set("consumer.heartbeat.interval.ms", "x"),
		set("no.such.config", "1"),
		set("share.auto.offset.reset", "sometimes"),
	} {
		if code, msg := alter("my-group", bad); code != kerr.InvalidConfig.Code {
			t.Fatalf("%s=%s: %v %s, want INVALID_CONFIG", bad.Name, *bad.Value, kerr.ErrorForCode(code), msg)
		}
	}
	if code, _ := alter("", set("consumer.session.timeout.ms", "50000")); code != kerr.InvalidRequest.Code {
		t.Fatalf("an empty group name: %v, want INVALID_REQUEST", kerr.ErrorForCode(code))
	}
	want(describe("my-group"), "consumer.session.timeout.ms", "50000", kmsg.ConfigSourceGroupConfig)

	// The coordinator tells the group's members the group's interval.
	if code, msg := alter("hb", set("consumer.heartbeat.interval.ms", "7000")); code != 0 {
		t.Fatalf("set consumer.heartbeat.interval.ms: %v %s", kerr.ErrorForCode(code), msg)
	}
	createTopic(t, c, "gc", 1, nil)
	heartbeat := func(group string) int32 {
		t.Helper()
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberEpoch, r.RebalanceTimeoutMillis = group, 0, 30000
		id := "m-" + group
		r.MemberID = id
		r.SubscribedTopicNames, r.Topics = []string{"gc"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp, err := r.RequestWith(ctx, c)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("ConsumerGroupHeartbeat %s: %v %+v", group, err, resp)
		}
		return resp.HeartbeatIntervalMillis
	}
	if got := heartbeat("hb"); got != 7000 {
		t.Fatalf("a member of hb is told %d ms, want the group's 7000", got)
	}
	if got, def := heartbeat("plain"), int32(tb.b.cfg.Groups.ConsumerHeartbeatInterval.Milliseconds()); got != def {
		t.Fatalf("a member of a group without configs is told %d ms, want the broker's %d", got, def)
	}

	// Durable: a restart replays them from the metadata log.
	tb.stop()
	tb = startBroker(t, dir, nil)
	c = tb.client()
	want(describe("my-group"), "consumer.session.timeout.ms", "50000", kmsg.ConfigSourceGroupConfig)
	if got := heartbeat("hb"); got != 7000 {
		t.Fatalf("after a restart a member of hb is told %d ms, want 7000", got)
	}
	// Deleting the config brings the default back.
	del := kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: "consumer.session.timeout.ms", Op: kmsg.IncrementalAlterConfigOpDelete}
	if code, msg := alter("my-group", del); code != 0 {
		t.Fatalf("delete: %v %s", kerr.ErrorForCode(code), msg)
	}
	want(describe("my-group"), "consumer.session.timeout.ms", msString(tb.b.cfg.Groups.ConsumerSessionTimeout), kmsg.ConfigSourceDefaultConfig)
}

// TestBrokerSecurityConfigsDescribed: a broker's DescribeConfigs lists
// its security, group and transaction settings as Kafka's does (librdkafka's
// 0142 test skips re-authentication unless connections.max.reauth.ms is
// there and non-zero).
func TestBrokerSecurityConfigsDescribed(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.SASL.MaxReauth = 10 * time.Second
		c.ACL = ACLConfig{Enabled: true, SuperUsers: []string{"User:admin", "User:ANONYMOUS"}}
	})
	brc, err := kadm.NewClient(tb.client()).DescribeBrokerConfigs(testCtx(t), 1)
	if err != nil || len(brc) != 1 {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"connections.max.reauth.ms":         "10000",
		"sasl.enabled.mechanisms":           "SCRAM-SHA-256,SCRAM-SHA-512",
		"authorizer.class.name":             "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                       "User:admin;User:ANONYMOUS",
		"group.consumer.session.timeout.ms": msString(tb.b.cfg.Groups.ConsumerSessionTimeout),
		"transaction.max.timeout.ms":        msString(tb.b.cfg.Txn.MaxTimeout),
	} {
		if !hasConfig(brc[0].Configs, name, want, kmsg.ConfigSourceStaticBrokerConfig) {
			t.Errorf("broker configs lack %s=%s", name, want)
		}
	}
}
