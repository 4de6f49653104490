package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"samsa/netio/kclient"
)

// saslBroker is a broker with a PLAINTEXT listener (b.addr), a
// SASL_PLAINTEXT and a SASL_SSL one, every mechanism enabled, and two
// users made at start with -add-scram: admin (SCRAM-SHA-256 and -512,
// password admin-secret) and alice (SCRAM-SHA-512, alice-secret).
type saslBroker struct {
	*broker
	saslAddr, saslSSLAddr string
	ca                    *testCA
}

func startSASLBroker(t *testing.T, extraConfig string) *saslBroker {
	t.Helper()
	ca := newTestCA(t)
	certFile, keyFile := ca.issue("broker", 10, pkix.Name{CommonName: "broker"}, true)
	addr, saslAddr, sslAddr, data := freeAddr(t), freeAddr(t), freeAddr(t), t.TempDir()
	cfg := writeConfig(t, t.TempDir(),
		`listen = "127.0.0.1:9092"`, fmt.Sprintf(`listeners = "PLAINTEXT://%s,SASL_PLAINTEXT://%s,SASL_SSL://%s"`, addr, saslAddr, sslAddr),
		`data_dir = "./data"`, fmt.Sprintf("data_dir = %q", data),
		"[admin]", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n\n[sasl]\nenabled_mechanisms = \"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\"\n%s\n\n[admin]",
			certFile, keyFile, extraConfig))
	b := &broker{t: t, addr: addr, dataDir: data, config: cfg, log: &logBuffer{}, fileOnly: true, args: []string{
		"-add-scram", "SCRAM-SHA-256=[name=admin,password=admin-secret]",
		"-add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret,iterations=8192]",
		"-add-scram", "SCRAM-SHA-512=[name=alice,password=alice-secret]",
	}}
	t.Cleanup(b.cleanup)
	b.start()
	sb := &saslBroker{broker: b, saslAddr: saslAddr, saslSSLAddr: sslAddr, ca: ca}
	sb.waitListeners()
	return sb
}

// waitListeners waits until the SASL listeners accept too (they open
// after the first one, which is what broker.start waits for).
func (sb *saslBroker) waitListeners() {
	sb.t.Helper()
	waitListening(sb.t, sb.saslAddr)
	waitListening(sb.t, sb.saslSSLAddr)
}

// waitListening waits up to 10s for addr to accept a connection.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 10s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client connects franz-go to addr with mech (and TLS to the SASL_SSL
// listener).
func (sb *saslBroker) client(t *testing.T, addr string, mech sasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append(opts, kgo.SeedBrokers(addr), kgo.SASL(mech), kgo.RequestRetries(1))
	if addr == sb.saslSSLAddr {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{RootCAs: sb.ca.pool}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestSASLFranz: franz-go with SCRAM-SHA-256 over TLS and SCRAM-SHA-512
// and PLAIN over plaintext produces and consumes; a wrong password gets
// SASL_AUTHENTICATION_FAILED and no data; credentials made with
// AlterUserScramCredentials work at once, show in
// DescribeUserScramCredentials (never their keys), and survive a restart.
func TestSASLFranz(t *testing.T) {
	sb := startSASLBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin256 := scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism()
	cl := sb.client(t, sb.saslSSLAddr, admin256, kgo.DefaultProduceTopic("sasl-t"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over SASL_SSL")}).FirstErr(); err != nil {
		t.Fatalf("SCRAM-SHA-256 over TLS: %v", err)
	}
	alice := sb.client(t, sb.saslAddr, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
		kgo.ConsumeTopics("sasl-t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := alice.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("SCRAM-SHA-512 consumer: %v", err)
	}
	if fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "over SASL_SSL" {
		t.Fatalf("SCRAM-SHA-512 consumer read %d records", fs.NumRecords())
	}
	plainCl := sb.client(t, sb.saslAddr, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())
	if err := plainCl.Ping(ctx); err != nil {
		t.Fatalf("PLAIN against a SCRAM credential: %v", err)
	}

	// Wrong password, unknown user: SASL_AUTHENTICATION_FAILED.
	for _, mech := range []sasl.Mechanism{
		scram.Auth{User: "alice", Pass: "wrong"}.AsSha512Mechanism(),
		scram.Auth{User: "nobody", Pass: "x"}.AsSha256Mechanism(),
		plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism(),
	} {
		bad := sb.client(t, sb.saslAddr, mech, kgo.ConsumeTopics("sasl-t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		err := bad.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("%s with bad credentials: %v, want SASL_AUTHENTICATION_FAILED", mech.Name(), err)
		}
	}

	// AlterUserScramCredentials, then Describe, then use it.
	adm := kadm.NewClient(cl)
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-secret"}})
	if err != nil || res.AllFailed() {
		t.Fatalf("AlterUserScramCredentials: %v %+v", err, res)
	}
	bob := sb.client(t, sb.saslSSLAddr, scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism())
	if err := bob.Ping(ctx); err != nil {
		t.Fatalf("a credential made by AlterUserScramCredentials: %v", err)
	}
	desc, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := desc["admin"]; d.Err != nil || len(d.CredInfos) != 2 || d.CredInfos[1].Iterations != 8192 {
		t.Errorf("admin described as %+v", d)
	}
	if d := desc["bob"]; d.Err != nil || len(d.CredInfos) != 1 || d.CredInfos[0].Mechanism != kadm.ScramSha256 {
		t.Errorf("bob described as %+v", d)
	}
	// Refusals (kadm checks iterations itself, so a raw request): a
	// deletion of nothing, too few iterations, a user twice, an unknown
	// mechanism.
	areq := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "carol", 1
	up := func(name string, mech int8, iters int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iters, []byte("salt"), []byte("salted")
		return u
	}
	areq.Deletions = append(areq.Deletions, del)
	areq.Upsertions = append(areq.Upsertions, up("dave", 2, 100), up("erin", 1, 4096), up("erin", 1, 4096), up("frank", 7, 4096))
	aresp, err := areq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int16{"carol": kerr.ResourceNotFound.Code, "dave": kerr.UnacceptableCredential.Code,
		"erin": kerr.DuplicateResource.Code, "frank": kerr.UnsupportedSaslMechanism.Code}
	if len(aresp.Results) != len(want) {
		t.Errorf("%d results, want %d: %+v", len(aresp.Results), len(want), aresp.Results)
	}
	for _, r := range aresp.Results {
		if r.ErrorCode != want[r.User] {
			t.Errorf("user %s: code %d, want %d", r.User, r.ErrorCode, want[r.User])
		}
	}
	// Remove bob's; he is refused from then on.
	if res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha256}}, nil); err != nil || res.AllFailed() {
		t.Fatalf("delete: %v %+v", err, res)
	}
	if err := sb.client(t, sb.saslAddr, scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism()).Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a deleted credential: %v", err)
	}

	// The credentials are in the metadata log: a restart (SIGKILL) keeps
	// them, and no password is on disk.
	sb.kill()
	sb.restart()
	sb.waitListeners()
	if err := sb.client(t, sb.saslAddr, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()).Ping(ctx); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	for _, secret := range []string{"alice-secret", "admin-secret", "bob-secret"} {
		if grepDir(t, sb.dataDir, secret) {
			t.Errorf("the password %q is in the data directory", secret)
		}
	}
}

// TestSASLRefusesBeforeAuth: on a SASL listener, a request other than
// ApiVersions and the SASL ones closes the connection before any answer;
// the plaintext listener next to it serves without SASL.
func TestSASLRefusesBeforeAuth(t *testing.T) {
	sb := startSASLBroker(t, "")
	c, err := net.DialTimeout("tcp", sb.saslAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Metadata v1, no topics (null array): correlation id 7.
	req := []byte{0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(req)))
	if _, err := c.Write(append(frame, req...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
		t.Fatalf("Metadata before SASL: read %d bytes, err %v; want the connection closed", n, err)
	}
	waitLog(t, sb.broker, "request before SASL authentication")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	plainCl, err := kgo.NewClient(kgo.SeedBrokers(sb.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer plainCl.Close()
	if err := plainCl.Ping(ctx); err != nil {
		t.Fatalf("the PLAINTEXT listener: %v", err)
	}
	// A SASL client against the plaintext listener: ILLEGAL_SASL_STATE.
	mis := sb.client(t, sb.addr, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())
	if err := mis.Ping(ctx); !errors.Is(err, kerr.IllegalSaslState) {
		t.Fatalf("SASL on the plaintext listener: %v, want ILLEGAL_SASL_STATE", err)
	}
}

// TestSASLReauthentication: with connections_max_reauth_ms, franz-go
// re-authenticates (KIP-368) and keeps producing past the session's end.
func TestSASLReauthentication(t *testing.T) {
	sb := startSASLBroker(t, "connections_max_reauth_ms = 1500")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := sb.client(t, sb.saslAddr, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
		kgo.DefaultProduceTopic("reauth"), kgo.AllowAutoTopicCreation())
	for i := range 8 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce %d, %v into the session: %v", i, time.Duration(i)*500*time.Millisecond, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if strings.Contains(sb.log.String(), "SASL session expired") {
		t.Fatalf("franz-go's connection expired instead of re-authenticating:\n%s", sb.log.tail())
	}
}

// grepDir reports whether any file under dir contains s.
func grepDir(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		found = bytes.Contains(data, []byte(s))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// clientRun is a SASL client script's last JSON line.
type clientRun struct {
	Kind     string   `json:"kind"`
	Error    string   `json:"error"`
	Type     string   `json:"type"`
	Produced int      `json:"produced"`
	Read     []string `json:"read"`
}

func parseClientRun(t *testing.T, what, out string) clientRun {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r clientRun
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("%s printed no JSON result: %v\n%s", what, err, out)
	}
	return r
}

// checkOwnRecords checks that a client read back its own n records, in
// order.
func checkOwnRecords(t *testing.T, what, prefix string, n int, r clientRun) {
	t.Helper()
	if r.Kind != "done" {
		t.Fatalf("%s failed: %s %s", what, r.Error, r.Type)
	}
	var own []string
	for _, v := range r.Read {
		if strings.HasPrefix(v, prefix+"-") {
			own = append(own, v)
		}
	}
	if !reflect.DeepEqual(own, values(prefix, n)) {
		t.Fatalf("%s read back %v, want %v", what, own, values(prefix, n))
	}
}

// TestSASLClients: every other client this box has, over the listener
// and mechanism the issue names for it: kcat (librdkafka) SASL_SSL with
// SCRAM-SHA-512, confluent-kafka SASL_PLAINTEXT with PLAIN, kafka-python
// SASL_SSL with PLAIN (its bare tokens after SaslHandshake v0), kafkajs
// and sarama with SCRAM; and kcat with a wrong password gets nothing.
func TestSASLClients(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	kcat := needKcat(t)
	needConfluentKafka(t)
	needKafkaPython(t)
	needKafkaJS(t)
	sb := startSASLBroker(t, "")
	sb.createTopic("sasl-clients", 1, nil)
	const n = 5

	kc := []string{"-b", sb.saslSSLAddr, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + sb.ca.file,
		"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"}
	runTool(t, strings.Join(values("kcat", n), "\n")+"\n", kcat, append(kc, "-P", "-t", "sasl-clients", "-p", "0")...)
	got := runTool(t, "", kcat, append(kc, "-C", "-t", "sasl-clients", "-p", "0", "-o", "beginning", "-e", "-q")...)
	if want := strings.Join(values("kcat", n), "\n") + "\n"; got != want {
		t.Fatalf("kcat over SASL_SSL SCRAM-SHA-512 read %q, want %q", got, want)
	}
	bad := append(slices.Clone(kc[:len(kc)-1]), "sasl.password=wrong", "-L", "-m", "5")
	if out, err := runToolErr("", kcat, bad...); err == nil || !strings.Contains(out, "Authentication failed") {
		t.Fatalf("kcat with a wrong password: err %v, output:\n%s", err, out)
	}

	script := filepath.Join("testdata", "sasl_clients.py")
	out := runTool(t, "", pythonWithKafka, script, "confluent", sb.saslAddr, "SASL_PLAINTEXT", "PLAIN", "admin", "admin-secret", "-", "sasl-clients", fmt.Sprint(n))
	checkOwnRecords(t, "confluent-kafka SASL_PLAINTEXT PLAIN", "confluent", n, parseClientRun(t, "confluent-kafka", out))
	out = runTool(t, "", pythonWithKafka, script, "kafkapython", sb.saslSSLAddr, "SASL_SSL", "PLAIN", "alice", "alice-secret", sb.ca.file, "sasl-clients", fmt.Sprint(n))
	checkOwnRecords(t, "kafka-python SASL_SSL PLAIN", "kafkapython", n, parseClientRun(t, "kafka-python", out))
	// kafka-python's SCRAM, bare tokens after SaslHandshake v0 too.
	out = runTool(t, "", pythonWithKafka, script, "kafkapython", sb.saslAddr, "SASL_PLAINTEXT", "SCRAM-SHA-256", "admin", "admin-secret", "-", "sasl-clients", fmt.Sprint(n))
	if r := parseClientRun(t, "kafka-python", out); r.Kind != "done" {
		t.Fatalf("kafka-python SASL_PLAINTEXT SCRAM-SHA-256: %s", r.Error)
	} else if want := append(values("kafkapython", n), values("kafkapython", n)...); len(r.Read) < 2*n || !reflect.DeepEqual(r.Read[len(r.Read)-2*n:], want) {
		t.Fatalf("kafka-python SCRAM read back %v, ending with both runs' %v", r.Read, want)
	}

	out = runTool(t, "", "node", filepath.Join(kafkajsDir, "sasl.js"), sb.saslAddr, "scram-sha-256", "admin", "admin-secret", "sasl-clients", fmt.Sprint(n))
	checkOwnRecords(t, "kafkajs SCRAM-SHA-256", "kafkajs", n, parseClientRun(t, "kafkajs", out))
	out = runTool(t, "", "node", filepath.Join(kafkajsDir, "sasl.js"), sb.saslAddr, "scram-sha-512", "alice", "wrong", "sasl-clients", "1")
	if r := parseClientRun(t, "kafkajs", out); r.Kind != "error" || !strings.Contains(r.Type+r.Error, "SASL_AUTHENTICATION_FAILED") && !strings.Contains(r.Error, "SASL SCRAM SHA512 authentication failed") {
		t.Fatalf("kafkajs with a wrong password: %+v", r)
	}

	// sarama, SCRAM-SHA-512 with the usual xdg-go client.
	cfg := saramaConfig(t, "3.6.0")
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	cfg.Net.SASL.User, cfg.Net.SASL.Password = "alice", "alice-secret"
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{gen: xscram.SHA512} }
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer([]string{sb.saslAddr}, cfg)
	if err != nil {
		t.Fatalf("sarama SCRAM-SHA-512: %v", err)
	}
	for _, v := range values("sarama", n) {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "sasl-clients", Partition: 0, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatalf("sarama produce over SASL: %v", err)
		}
	}
	prod.Close()
	got = runTool(t, "", kcat, append(kc, "-C", "-t", "sasl-clients", "-p", "0", "-o", "beginning", "-e", "-q")...)
	for _, v := range append(values("confluent", n), append(values("kafkapython", n), append(values("kafkajs", n), values("sarama", n)...)...)...) {
		if !strings.Contains(got, v+"\n") {
			t.Fatalf("kcat does not read %q back:\n%s", v, got)
		}
	}
}

// xdgSCRAM is sarama's SCRAMClient on xdg-go/scram (sarama's own example).
type xdgSCRAM struct {
	gen  xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, pass, authzID string) error {
	cl, err := x.gen.NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	x.conv = cl.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

// TestSASLFranzOwnTests runs franz-go's own SCRAM tests (pkg/kgo
// TestSCRAMAuth and TestSCRAMAuthBadCredentials, from the module this
// repository pins) against the SASL_PLAINTEXT listener, with the
// environment they read.
func TestSASLFranzOwnTests(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles franz-go's kgo tests")
	}
	sb := startSASLBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "^TestSCRAMAuth", "github.com/twmb/franz-go/pkg/kgo")
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+sb.addr, "KGO_TEST_SCRAM_SEEDS="+sb.saslAddr, "KGO_TEST_SCRAM=admin:admin-secret:256")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("franz-go's SCRAM tests: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestSCRAMAuth ", "--- PASS: TestSCRAMAuthBadCredentials "} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("franz-go's output lacks %q (skipped?):\n%s", want, out)
		}
	}
}

// TestSASLShortTokensAndLifetime: a PLAIN token of fewer than 8 bytes
// after SaslHandshake v0 (kafka-python 2.0 with short credentials) logs
// in; SaslAuthenticate reports connections.max.reauth.ms exactly as the
// session lifetime, as Kafka.
func TestSASLShortTokensAndLifetime(t *testing.T) {
	sb := startSASLBroker(t, "connections_max_reauth_ms = 60000")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := sb.client(t, sb.saslAddr, scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism())
	if _, err := kadm.NewClient(admin).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bo", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw"}}); err != nil {
		t.Fatal(err)
	}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", sb.saslAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	roundTrip := func(c net.Conn, r *bufio.Reader, req kmsg.Request, corr int32) kmsg.Response {
		t.Helper()
		if _, err := c.Write(kclient.AppendRequest(nil, req, corr, "short")); err != nil {
			t.Fatal(err)
		}
		b, err := kclient.ReadFrame(r)
		if err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if b, err = kclient.ResponseBody(b, corr, resp.IsFlexible()); err != nil {
			t.Fatal(err)
		}
		if err := resp.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	token := []byte("\x00bo\x00pw") // 6 bytes
	// v0: the token goes bare, and so does the (empty) answer.
	c, r := dial()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	if resp := roundTrip(c, r, hs, 1).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("handshake v0: %d", resp.ErrorCode)
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(token))), token...)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
		t.Fatalf("the 6-byte PLAIN token: %v, answer size %d", err, binary.BigEndian.Uint32(size[:]))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(1)
	if resp := roundTrip(c, r, md, 2).(*kmsg.MetadataResponse); len(resp.Brokers) == 0 {
		t.Fatal("Metadata after the short token: no brokers")
	}
	// v1: SaslAuthenticate's session lifetime.
	c, r = dial()
	hs.SetVersion(1)
	if resp := roundTrip(c, r, hs, 1).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("handshake v1: %d", resp.ErrorCode)
	}
	sa := kmsg.NewPtrSASLAuthenticateRequest()
	sa.SetVersion(1)
	sa.SASLAuthBytes = token
	resp := roundTrip(c, r, sa, 2).(*kmsg.SASLAuthenticateResponse)
	if resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 60000 {
		t.Fatalf("SaslAuthenticate: code %d, session lifetime %d ms, want 60000", resp.ErrorCode, resp.SessionLifetimeMillis)
	}
	// Another SaslAuthenticate with no handshake before it: Kafka's
	// ILLEGAL_SASL_STATE, and the connection stays open.
	if resp := roundTrip(c, r, sa, 3).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("SaslAuthenticate after authentication: code %d", resp.ErrorCode)
	}
	if resp := roundTrip(c, r, md, 4).(*kmsg.MetadataResponse); len(resp.Brokers) == 0 {
		t.Fatal("Metadata after the refused SaslAuthenticate: no brokers")
	}
	// A re-authentication (handshake, then authenticate) goes through.
	if resp := roundTrip(c, r, hs, 5).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("re-authentication handshake: %d", resp.ErrorCode)
	}
	if resp := roundTrip(c, r, sa, 6).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 {
		t.Fatalf("re-authentication: %d", resp.ErrorCode)
	}
	// Describing a user with no credential: Kafka's message names it.
	dr, err := kadm.NewClient(admin).DescribeUserSCRAMs(ctx, "nobody")
	if err != nil || dr["nobody"].Err == nil || dr["nobody"].ErrMessage != "Attempt to describe a user credential that does not exist: nobody" {
		t.Fatalf("describe a missing user: %v %+v", err, dr["nobody"])
	}
	// PLAIN's refusals in Kafka's words (PlainSaslServer).
	for tok, want := range map[string]string{
		"\x00bo\x00nope": "Authentication failed: Invalid username or password",
		"\x00\x00pw":     "Authentication failed: username not specified",
		"\x00bo\x00":     "Authentication failed: password not specified",
		"x\x00bo\x00pw":  "Authentication failed: Client requested an authorization id that is different from username",
		"bo":             "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN",
	} {
		c, r = dial()
		if resp := roundTrip(c, r, hs, 1).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
			t.Fatalf("handshake v1: %d", resp.ErrorCode)
		}
		sa.SASLAuthBytes = []byte(tok)
		resp := roundTrip(c, r, sa, 2).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != want {
			t.Errorf("PLAIN %q: code %d, message %v; want %q", tok, resp.ErrorCode, resp.ErrorMessage, want)
		}
	}
}
