package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// aclBroker is a SASL broker with the authorizer on: admin is a super
// user, alice has only what each test grants.
func startACLBroker(t *testing.T) *saslBroker {
	t.Helper()
	return startSASLBroker(t, "\n[acl]\nenabled = true\nsuper_users = \"User:admin\"")
}

func (sb *saslBroker) as(t *testing.T, user, pass string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return sb.client(t, sb.saslAddr, scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), opts...)
}

// TestACLs: with the authorizer on, a principal gets exactly what ACLs
// grant, each refusal with Kafka's code, through franz-go and kcat; ACLs
// are created, described and deleted with the admin API and survive a
// restart.
func TestACLs(t *testing.T) {
	kcat := needKcat(t)
	sb := startACLBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	admin := sb.as(t, "admin", "admin-secret")
	adm := kadm.NewClient(admin)
	for _, topic := range []string{"orders", "logs-app", "secret"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatalf("admin creates %s: %v", topic, err)
		}
	}
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("o1")}, &kgo.Record{Topic: "secret", Value: []byte("s1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	alice := sb.as(t, "alice", "alice-secret")
	// Nothing granted: Metadata lists nothing, produce and fetch are
	// refused, groups and transactional ids too.
	if got := metadataNames(ctx, t, alice); got != "" {
		t.Fatalf("alice sees topics %q with no ACL", got)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without WRITE: %v", err)
	}

	// Grant: READ orders, WRITE on the prefix logs-, the group g-alice,
	// the transactional id tx-alice; DENY READ secret for everyone.
	b := kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpRead)
	res, err := adm.CreateACLs(ctx, b)
	mustACL(t, res, err)
	res, err = adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite))
	mustACL(t, res, err)
	res, err = adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Groups("g-alice").Operations(kadm.OpRead))
	mustACL(t, res, err)
	res, err = adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").TransactionalIDs("tx-alice").Operations(kadm.OpWrite))
	mustACL(t, res, err)
	res, err = adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:*").Topics("secret").Operations(kadm.OpDescribe))
	mustACL(t, res, err)
	res, err = adm.CreateACLs(ctx, kadm.NewACLs().Deny("User:*").Topics("secret").Operations(kadm.OpRead))
	mustACL(t, res, err)

	// Metadata: the topics alice may describe (orders by READ, logs-app
	// by WRITE, secret by DESCRIBE).
	if got := metadataNames(ctx, t, alice); got != "logs-app,orders,secret" {
		t.Fatalf("alice sees %q", got)
	}
	// Produce: logs-app yes, orders no.
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "logs-app", Value: []byte("l1")}).FirstErr(); err != nil {
		t.Fatalf("produce with a prefixed WRITE: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to orders (READ only): %v", err)
	}
	// Fetch: orders yes; secret no (DENY wins over anything).
	if got := fetchOne(ctx, t, sb, "orders"); got != nil {
		t.Fatalf("fetch orders: %v", got)
	}
	if got := fetchOne(ctx, t, sb, "secret"); !errors.Is(got, kerr.TopicAuthorizationFailed) {
		t.Fatalf("fetch secret (DENY READ): %v", got)
	}
	// Groups: g-alice may join and commit; g-other may not.
	if err := groupCommit(ctx, t, sb, "g-alice", "orders"); err != nil {
		t.Fatalf("group g-alice: %v", err)
	}
	if err := groupCommit(ctx, t, sb, "g-other", "orders"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("group g-other: %v", err)
	}
	// KIP-848: a subscription naming a topic alice may not describe.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "g-alice", "m-1", 0, 30000
	hb.SubscribedTopicNames = []string{"orders", "hidden"}
	if hbr, err := hb.RequestWith(ctx, alice); err != nil || hbr.ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("heartbeat subscribing to hidden: %v %+v", err, hbr)
	}
	// Offset commit to a topic without READ in an allowed group.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g-alice", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "logs-app"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Offset = 1
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	ocr, err := oc.RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if code := ocr.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("offset commit to logs-app (no READ): code %d", code)
	}
	// Topic admin: create, delete, alter configs.
	aadm := kadm.NewClient(alice)
	if r, err := aadm.CreateTopics(ctx, 1, 1, nil, "alice-new"); err != nil || !errors.Is(r["alice-new"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("create topic without CREATE: %v %v", err, r["alice-new"].Err)
	}
	// With CREATE (on a prefix) alice creates, but may not see the
	// configs without DESCRIBE_CONFIGS.
	res, err = adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("alice-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate))
	mustACL(t, res, err)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "alice-made", 1, 1
	ct.Topics = append(ct.Topics, ctt)
	if ctr, err := ct.RequestWith(ctx, alice); err != nil || ctr.Topics[0].ErrorCode != 0 ||
		ctr.Topics[0].ConfigErrorCode != kerr.TopicAuthorizationFailed.Code || len(ctr.Topics[0].Configs) != 0 {
		t.Fatalf("create with CREATE only: %v %+v", err, ctr)
	}
	if r, err := aadm.DeleteTopics(ctx, "orders"); err != nil || !errors.Is(r["orders"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("delete topic without DELETE: %v %v", err, r["orders"].Err)
	}
	v := "1000"
	if r, err := aadm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &v}}, "orders"); err != nil || len(r) != 1 || !errors.Is(r[0].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alter configs without ALTER_CONFIGS: %v %+v", err, r)
	}
	// Transactions: tx-alice may, tx-other may not.
	if err := initTxn(ctx, sb, "tx-alice"); err != nil {
		t.Fatalf("transactional id tx-alice: %v", err)
	}
	if err := initTxn(ctx, sb, "tx-other"); !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("transactional id tx-other: %v", err)
	}
	// ACL admin itself needs the cluster: alice is refused.
	ar, err := aadm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("*").Operations(kadm.OpAll))
	if err != nil || len(ar) != 1 || !errors.Is(ar[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice creating ACLs: %v %+v", err, ar)
	}

	// kcat (librdkafka) as alice: refused on orders with Kafka's message.
	kc := []string{"-b", sb.saslAddr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
		"-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"}
	if out, err := runToolErr("x\n", kcat, append(kc, "-P", "-t", "orders", "-p", "0")...); err == nil || !strings.Contains(out, "Topic authorization failed") {
		t.Fatalf("kcat producing to orders as alice: %v\n%s", err, out)
	}

	// Describe, then delete with a filter; the decision follows at once.
	desc, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow("User:alice").AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(desc) != 1 || len(desc[0].Described) != 5 {
		t.Fatalf("describe alice's ACLs: %v %+v", err, desc)
	}
	del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAny))
	if err != nil || len(del) != 1 || len(del[0].Deleted) != 1 {
		t.Fatalf("delete the prefixed ACL: %v %+v", err, del)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "logs-app", Value: []byte("l2")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce after the ACL was deleted: %v", err)
	}

	// ACLs are in the metadata log: a restart keeps them.
	sb.kill()
	sb.restart()
	sb.waitListeners()
	if got := fetchOne(ctx, t, sb, "orders"); got != nil {
		t.Fatalf("fetch orders after a restart: %v", got)
	}
	if got := fetchOne(ctx, t, sb, "secret"); !errors.Is(got, kerr.TopicAuthorizationFailed) {
		t.Fatalf("fetch secret after a restart: %v", got)
	}
}

// metadataNames is the topics a Metadata request for all topics lists,
// sorted and comma-separated, each with no error.
func metadataNames(ctx context.Context, t *testing.T, cl *kgo.Client) string {
	t.Helper()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mt := range resp.Topics {
		if mt.ErrorCode != 0 {
			t.Fatalf("metadata lists %v with code %d", mt.Topic, mt.ErrorCode)
		}
		names = append(names, *mt.Topic)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

func mustACL(t *testing.T, res kadm.CreateACLsResults, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
}

// fetchOne reads partition 0 of topic from the start as alice and
// returns the first fetch error, or nil once a record came.
func fetchOne(ctx context.Context, t *testing.T, sb *saslBroker, topic string) error {
	t.Helper()
	cl := sb.as(t, "alice", "alice-secret", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(fctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		if fs.NumRecords() > 0 {
			return nil
		}
		if fctx.Err() != nil {
			return fctx.Err()
		}
	}
}

// groupCommit joins group as alice, consuming topic, and commits.
func groupCommit(ctx context.Context, t *testing.T, sb *saslBroker, group, topic string) error {
	t.Helper()
	cl := sb.as(t, "alice", "alice-secret", kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(fctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		if fs.NumRecords() > 0 {
			return cl.CommitUncommittedOffsets(fctx)
		}
		if fctx.Err() != nil {
			return fctx.Err()
		}
	}
}

// initTxn starts a transactional producer as alice (InitProducerId).
func initTxn(ctx context.Context, sb *saslBroker, id string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.saslAddr), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()),
		kgo.TransactionalID(id), kgo.DefaultProduceTopic("logs-app"), kgo.RequestRetries(1))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return cl.ProduceSync(tctx, &kgo.Record{Value: []byte("t")}).FirstErr()
}

// TestSamsactlSecurity: samsactl over SASL_SSL (-command-config) manages
// SCRAM users and ACLs, and what it sets takes effect for a client.
func TestSamsactlSecurity(t *testing.T) {
	sb := startACLBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	props := func(user, pass string) string {
		p := filepath.Join(t.TempDir(), "client.properties")
		body := "# samsactl over SASL_SSL\nsecurity.protocol=SASL_SSL\nssl.ca.location=" + sb.ca.file +
			"\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=" + user + "\nsasl.password=" + pass + "\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	adminProps := props("admin", "admin-secret")
	ctl := func(stdin string, args ...string) (string, error) {
		return runToolErr(stdin, samsactl, append([]string{"-broker", sb.saslSSLAddr, "-command-config", adminProps}, args...)...)
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := ctl(stdin, args...)
		if err != nil {
			t.Fatalf("samsactl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	must("bob-secret\n", "users", "set", "bob", "--password-stdin")
	if out := must("", "users", "list", "-o", "json"); !strings.Contains(out, `"user": "bob"`) || !strings.Contains(out, `"mechanism": "SCRAM-SHA-512"`) {
		t.Fatalf("users list lacks bob:\n%s", out)
	}
	must("", "topics", "create", "orders")
	admin := sb.as(t, "admin", "admin-secret")
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("o1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	bob := func() error {
		cl := sb.client(t, sb.saslAddr, scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism(),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders": {0: kgo.NewOffset().AtStart()}}))
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for {
			fs := cl.PollFetches(fctx)
			if err := fs.Err0(); err != nil {
				return err
			}
			if fs.NumRecords() > 0 {
				return nil
			}
		}
	}
	if err := bob(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob before any ACL: %v", err)
	}
	must("", "acls", "create", "--allow", "User:bob", "--operation", "read,describe", "--topic", "orders")
	if out := must("", "acls", "list", "--principal", "User:bob", "-o", "json"); strings.Count(out, `"principal": "User:bob"`) != 2 {
		t.Fatalf("acls list for bob:\n%s", out)
	}
	if err := bob(); err != nil {
		t.Fatalf("bob with READ on orders: %v", err)
	}
	if out := must("", "acls", "delete", "--principal", "User:bob", "--topic", "orders"); strings.Count(out, "User:bob") != 2 {
		t.Fatalf("acls delete listed:\n%s", out)
	}
	must("", "users", "delete", "bob")
	if err := sb.client(t, sb.saslAddr, scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism()).Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("bob after users delete: %v", err)
	}
	// Quotas.
	must("", "quotas", "set", "--user", "bob", "--producer-byte-rate", "1048576", "--consumer-byte-rate", "2097152")
	if out := must("", "quotas", "list", "-o", "json"); !strings.Contains(out, `"entity": "user=bob"`) || !strings.Contains(out, `"producer_byte_rate": 1048576`) {
		t.Fatalf("quotas list:\n%s", out)
	}
	must("", "quotas", "set", "--ip", "10.1.2.3", "--connection-creation-rate", "5")
	if out := must("", "quotas", "list", "--ip", "10.1.2.3"); !strings.Contains(out, "ip=10.1.2.3") || !strings.Contains(out, "connection_creation_rate") {
		t.Fatalf("quotas list --ip:\n%s", out)
	}
	must("", "quotas", "set", "--user", "bob", "--delete", "producer_byte_rate,consumer_byte_rate")
	if out := must("", "quotas", "list", "--user", "bob", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("quotas list after delete:\n%s", out)
	}
	// A wrong password in -command-config fails with the broker's reason.
	bad := props("admin", "wrong")
	out, err := runToolErr("", samsactl, "-broker", sb.saslSSLAddr, "-command-config", bad, "topics", "list")
	if err == nil || !strings.Contains(out, "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("samsactl with a wrong password: %v\n%s", err, out)
	}
	// An unknown property is a usage error (exit 2).
	junk := filepath.Join(t.TempDir(), "junk.properties")
	if err := os.WriteFile(junk, []byte("ssl.truststore.location=/x.jks\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runToolErr("", samsactl, "-broker", sb.saslSSLAddr, "-command-config", junk, "topics", "list"); err == nil {
		t.Fatal("an unknown property was accepted")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("an unknown property: %v, want exit 2", err)
	}
}
