package main

// Transactions driven by clients other than franz-go, each with its own
// implementation of the producer side (txn_test.go and eos_test.go cover
// franz-go): confluent-kafka-python (librdkafka) in
// testdata/confluent_txn.py, sarama in this file, kafkajs in
// testdata/kafkajs/txn.js, and kafka-python as a consumer of a
// transactional topic. The scripts print JSON lines; what they claim is
// checked here against a franz-go read_committed reader (readValues),
// kcat, and the group offsets kadm reads back.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnLine is one JSON line of a transaction script; each kind uses some
// of the fields.
type txnLine struct {
	Kind       string           `json:"kind"`
	OK         *bool            `json:"ok"`
	Error      string           `json:"error"`
	Message    string           `json:"message"`
	Fatal      bool             `json:"fatal"`
	Abortable  bool             `json:"abortable"`
	Producer   string           `json:"producer"`
	Value      string           `json:"value"`
	Key        []byte           `json:"key"`
	ValueBytes []byte           `json:"value_bytes"`
	Mode       string           `json:"mode"`
	Partition  int32            `json:"partition"`
	Offset     int64            `json:"offset"`
	Offsets    map[string]int64 `json:"offsets"`
	Topics     []string         `json:"topics"`
	Count      int              `json:"count"`
}

type txnLines struct {
	t      *testing.T
	out    string
	byKind map[string][]txnLine
}

func parseTxnLines(t *testing.T, out string) *txnLines {
	t.Helper()
	l := &txnLines{t: t, out: out, byKind: map[string][]txnLine{}}
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		var tl txnLine
		if err := json.Unmarshal([]byte(s), &tl); err != nil {
			t.Fatalf("script output line %q: %v\n%s", s, err, out)
		}
		l.byKind[tl.Kind] = append(l.byKind[tl.Kind], tl)
	}
	return l
}

// one is the single line of kind.
func (l *txnLines) one(kind string) txnLine {
	l.t.Helper()
	if n := len(l.byKind[kind]); n != 1 {
		l.t.Fatalf("%d %q lines, want 1; script output:\n%s", n, kind, l.out)
	}
	return l.byKind[kind][0]
}

// succeeded requires each step to have printed ok.
func (l *txnLines) succeeded(steps ...string) {
	l.t.Helper()
	for _, s := range steps {
		if tl := l.one(s); tl.OK == nil || !*tl.OK {
			l.t.Fatalf("step %s failed: %s %s; script output:\n%s", s, tl.Error, tl.Message, l.out)
		}
	}
}

// none requires no line of kind.
func (l *txnLines) none(kind string) {
	l.t.Helper()
	if n := len(l.byKind[kind]); n != 0 {
		l.t.Fatalf("%d %q lines: %+v; script output:\n%s", n, kind, l.byKind[kind], l.out)
	}
}

// values names prefix-0 ... prefix-(n-1).
func values(prefix string, n int) []string {
	var vs []string
	for i := range n {
		vs = append(vs, fmt.Sprintf("%s-%d", prefix, i))
	}
	return vs
}

// produceInput writes n records "in-I" to topic, I to partition I%parts.
func produceInput(t *testing.T, b *broker, topic string, parts int32, n int) {
	t.Helper()
	c := b.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for i, v := range values("in", n) {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: []byte(v)})
	}
	produceSync(t, c, rs...)
}

// groupOffsets is what group committed on topic, by partition.
func (b *broker) groupOffsets(group, topic string) map[int32]int64 {
	b.t.Helper()
	offs, err := b.admin().FetchOffsets(timeout(b.t, 10*time.Second), group)
	if err != nil {
		b.t.Fatalf("cannot fetch the offsets of group %s: %v", group, err)
	}
	got := map[int32]int64{}
	for _, o := range offs[topic] {
		if o.Err != nil {
			b.t.Fatalf("group %s offset of %s/%d: %v", group, topic, o.Partition, o.Err)
		}
		got[o.Partition] = o.At
	}
	return got
}

// kcatCommitted is what librdkafka's read_committed consumer reads of
// topic, sorted.
func kcatCommitted(t *testing.T, b *broker, topic string) []string {
	t.Helper()
	out := runTool(t, "", "kcat", "-C", "-b", b.addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%s\n")
	return sorted(strings.Fields(out)...)
}

// checkCommittedOnly requires readers to see exactly committed with
// read_committed, and committed plus aborted with read_uncommitted.
func checkCommittedOnly(t *testing.T, b *broker, topic string, committed, aborted []string) {
	t.Helper()
	want := sorted(committed...)
	if got := b.readValues(topic, true, len(committed)); !reflect.DeepEqual(got, want) {
		t.Fatalf("franz-go read_committed of %s:\n got %v\nwant %v", topic, got, want)
	}
	all := sorted(append(append([]string(nil), committed...), aborted...)...)
	if got := b.readValues(topic, false, len(all)); !reflect.DeepEqual(got, all) {
		t.Fatalf("franz-go read_uncommitted of %s:\n got %v\nwant %v", topic, got, all)
	}
	if got := kcatCommitted(t, b, topic); !reflect.DeepEqual(got, want) {
		t.Fatalf("kcat read_committed of %s:\n got %v\nwant %v", topic, got, want)
	}
}

func needConfluentKafka(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(pythonWithKafka, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import confluent_kafka (apt-get install python3-confluent-kafka; .ci/run installs it): %v\n%s", pythonWithKafka, err, out)
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is missing (apt-get install kcat; .ci/run installs it)")
	}
}

// TestTxnConfluentKafka: librdkafka's transactional producer (TV1:
// InitProducerId, AddPartitionsToTxn v0, AddOffsetsToTxn v0, EndTxn,
// TxnOffsetCommit with the consumer's group metadata) commits, aborts and
// runs a consume-transform-produce transaction.
func TestTxnConfluentKafka(t *testing.T) {
	needConfluentKafka(t)
	b := startQuickGroupsBroker(t)
	b.createTopic("ck-out", 3, nil)
	b.createTopic("ck-in", 2, nil)
	const n, nin = 10, 8
	produceInput(t, b, "ck-in", 2, nin)

	out := runTool(t, "", pythonWithKafka, "testdata/confluent_txn.py", "flow", b.addr,
		"ck-out", "ck-in", "ck-group", "ck-flow", fmt.Sprint(n), fmt.Sprint(nin))
	l := parseTxnLines(t, out)
	l.one("done")
	l.none("delivery_error")
	l.none("producer_error")
	l.succeeded("init", "begin_commit", "commit", "begin_abort", "abort", "begin_ctp", "send_offsets", "commit_ctp")
	if c := l.one("consumed").Count; c != nin {
		t.Fatalf("the script's consumer read %d input records, want %d", c, nin)
	}

	var xf []string
	for _, v := range values("in", nin) {
		xf = append(xf, "xf-"+v)
	}
	checkCommittedOnly(t, b, "ck-out", append(values("commit", n), xf...), values("abort", n))

	// The positions sent in the transaction are the group's offsets now:
	// every input record consumed, nothing more.
	pos := l.one("positions")
	if !reflect.DeepEqual(pos.Offsets, map[string]int64{"0": nin / 2, "1": nin / 2}) || !reflect.DeepEqual(pos.Topics, []string{"ck-in"}) {
		t.Fatalf("consumer positions sent: %v of %v, want 4 and 4 of ck-in", pos.Offsets, pos.Topics)
	}
	if got, want := b.groupOffsets("ck-group", "ck-in"), map[int32]int64{0: nin / 2, 1: nin / 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ck-group's committed offsets %v, want %v (sent in the transaction)", got, want)
	}
}

// TestTxnConfluentKafkaFencing: a second librdkafka producer with the same
// transactional id fences the first; the first's commit fails with a fatal
// error and its records, written to the log, stay invisible to
// read_committed readers.
func TestTxnConfluentKafkaFencing(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	needConfluentKafka(t)
	b := startQuickGroupsBroker(t)
	b.createTopic("ck-fence", 2, nil)
	const n = 5
	out := runTool(t, "", pythonWithKafka, "testdata/confluent_txn.py", "fence", b.addr, "ck-fence", "ck-zombie", fmt.Sprint(n))
	l := parseTxnLines(t, out)
	l.one("done")
	l.none("delivery_error")
	l.succeeded("a_init", "a_begin", "b_init", "b_begin", "b_commit")
	delivered := map[string]int{}
	for _, d := range l.byKind["delivered"] {
		delivered[d.Producer]++
	}
	if delivered["a"] != n || delivered["b"] != n {
		t.Fatalf("delivered: %v, want %d from each producer", delivered, n)
	}
	// librdkafka maps INVALID_PRODUCER_EPOCH and PRODUCER_FENCED to the
	// fatal _FENCED; either way the zombie must not commit.
	ac := l.one("a_commit")
	if ac.OK == nil || *ac.OK || !ac.Fatal {
		t.Fatalf("the fenced producer's commit: %+v, want a fatal error; script output:\n%s", ac, out)
	}
	t.Logf("fenced producer's commit: %s (%s)", ac.Error, ac.Message)
	checkCommittedOnly(t, b, "ck-fence", values("b", n), values("zombie", n))
}

// TestTxnSarama: sarama's transactional producer at its default protocol
// level (Kafka 2.1.0) and above (2.5.0: InitProducerId v3 with KIP-360;
// 3.6.0: the v2 requests with PRODUCER_FENCED). sarama sends
// TxnOffsetCommit without generation or member id: the broker must take
// transactional offsets from a producer that is not a group member.
func TestTxnSarama(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	b := startQuickGroupsBroker(t)
	for _, v := range []string{"default", "2.5.0", "3.6.0"} {
		t.Run(v, func(t *testing.T) {
			saramaTxn(t, b, v)
			if v != "2.5.0" { // the fenced EndTxn is v1 there, as at the default level
				saramaFence(t, b, v)
			}
		})
	}
}

func saramaTxn(t *testing.T, b *broker, version string) {
	out, in := "sarama-out-"+version, "sarama-in-"+version
	group, group2 := "sarama-g-"+version, "sarama-g2-"+version
	b.createTopic(out, 3, nil)
	b.createTopic(in, 2, nil)
	const n, nin = 10, 6
	produceInput(t, b, in, 2, nin)

	cfg := saramaTxnConfig(t, version, "sarama-txn-"+version)
	t.Logf("sarama protocol level %s", cfg.Version)
	addrs := []string{b.addr}

	p, err := sarama.NewSyncProducer(addrs, cfg) // runs InitProducerId
	if err != nil {
		t.Fatalf("transactional producer: %v", err)
	}
	defer p.Close()
	send := func(vs ...string) {
		t.Helper()
		var ms []*sarama.ProducerMessage
		for _, v := range vs {
			ms = append(ms, &sarama.ProducerMessage{Topic: out, Key: sarama.StringEncoder(v), Value: sarama.StringEncoder(v)})
		}
		if err := p.SendMessages(ms); err != nil {
			t.Fatalf("send in a transaction: %v", err)
		}
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v (transaction status %v)", what, err, p.TxnStatus())
		}
	}

	must("begin", p.BeginTxn())
	send(values("commit", n)...)
	must("commit", p.CommitTxn())
	must("begin", p.BeginTxn())
	send(values("abort", n)...)
	must("abort", p.AbortTxn())

	// Consume-transform-produce: every input record read with a plain
	// consumer, transformed, and its offset added with AddMessageToTxn
	// (for group); the same offsets for group2 through AddOffsetsToTxn.
	cons, err := sarama.NewConsumer(addrs, saramaConfig(t, "2.1.0"))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cons.Close()
	must("begin", p.BeginTxn())
	var xf []string
	next := map[int32]int64{}
	for part := range int32(2) {
		pc, err := cons.ConsumePartition(in, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", in, part, err)
		}
		for range nin / 2 {
			select {
			case m := <-pc.Messages():
				v := "xf-" + string(m.Value)
				send(v)
				xf = append(xf, v)
				must("AddMessageToTxn", p.AddMessageToTxn(m, group, nil))
				next[part] = m.Offset + 1
			case err := <-pc.Errors():
				t.Fatalf("consume %s/%d: %v", in, part, err)
			case <-time.After(15 * time.Second):
				t.Fatalf("consume %s/%d: nothing for 15s", in, part)
			}
		}
		pc.Close()
	}
	var pom []*sarama.PartitionOffsetMetadata
	for part, o := range next {
		pom = append(pom, &sarama.PartitionOffsetMetadata{Partition: part, Offset: o})
	}
	must("AddOffsetsToTxn", p.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{in: pom}, group2))
	must("commit", p.CommitTxn())

	checkCommittedOnly(t, b, out, append(values("commit", n), xf...), values("abort", n))
	want := map[int32]int64{0: nin / 2, 1: nin / 2}
	for _, g := range []string{group, group2} {
		if got := b.groupOffsets(g, in); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s's committed offsets %v, want %v (sent in the transaction)", g, got, want)
		}
	}
}

// TestTxnKafkaJSFencing: a second kafkajs producer with the same
// transactional id fences the first; the first's commit fails and its
// records stay invisible to read_committed readers.
func TestTxnKafkaJSFencing(t *testing.T) {
	needKafkaJS(t)
	b := startQuickGroupsBroker(t)
	b.createTopic("js-fence", 2, nil)
	const n = 5
	out := runTool(t, "", "node", filepath.Join(kafkajsDir, "txn.js"), "fence", b.addr, "js-fence", "js-zombie", fmt.Sprint(n))
	l := parseTxnLines(t, out)
	l.one("done")
	l.succeeded("a_connect", "a_begin", "a_send", "b_connect", "b_begin", "b_send", "b_commit")
	// kafkajs uses EndTxn v0-1: a fenced epoch is INVALID_PRODUCER_EPOCH.
	if ac := l.one("a_commit"); ac.OK == nil || *ac.OK || ac.Error != "INVALID_PRODUCER_EPOCH" {
		t.Fatalf("the fenced producer's commit: %+v, want INVALID_PRODUCER_EPOCH; script output:\n%s", ac, out)
	} else {
		t.Logf("fenced producer's commit: %s: %s", ac.Error, ac.Message)
	}
	checkCommittedOnly(t, b, "js-fence", values("b", n), values("zombie", n))
}

// kafkajsDir holds package.json and package-lock.json pinning kafkajs;
// node_modules is installed there by the test, not committed.
const (
	kafkajsDir     = "testdata/kafkajs"
	kafkajsVersion = "2.2.4"
)

// needKafkaJS checks node and npm and installs the locked kafkajs with
// npm ci unless that version is installed already.
func needKafkaJS(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (apt-get install nodejs npm; .ci/run installs them)", tool)
		}
	}
	var pkg struct{ Version string }
	if raw, err := os.ReadFile(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err == nil {
		_ = json.Unmarshal(raw, &pkg)
	}
	if pkg.Version == kafkajsVersion {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = kafkajsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot install kafkajs %s with npm ci in %s (needs the npm registry; bounded to 2 minutes): %v\n%s", kafkajsVersion, kafkajsDir, err, out)
	}
}

// TestTxnKafkaJS: kafkajs's transactional producer (its own, older
// protocol versions) commits, aborts, and sends a group's offsets in a
// committed transaction and in an aborted one.
func TestTxnKafkaJS(t *testing.T) {
	needKafkaJS(t)
	b := startQuickGroupsBroker(t)
	b.createTopic("js-out", 3, nil)
	b.createTopic("js-in", 2, nil)
	const n, nin = 10, 8
	produceInput(t, b, "js-in", 2, nin)

	out := runTool(t, "", "node", filepath.Join(kafkajsDir, "txn.js"), "flow", b.addr,
		"js-out", "js-in", "js-group", "js-txn", fmt.Sprint(n), fmt.Sprint(nin))
	l := parseTxnLines(t, out)
	l.one("done")
	l.succeeded("connect", "begin_commit", "send_commit", "commit", "begin_abort", "send_abort", "abort",
		"consumer", "begin_ctp", "send_ctp", "send_offsets", "commit_ctp",
		"begin_late", "send_late", "send_offsets_late", "abort_late")
	if c := l.one("consumed").Count; c != nin {
		t.Fatalf("the script's consumer read %d input records, want %d", c, nin)
	}
	var xf []string
	for _, v := range values("in", nin) {
		xf = append(xf, "xf-"+v)
	}
	checkCommittedOnly(t, b, "js-out", append(values("commit", n), xf...), append(values("abort", n), "late-0"))

	// The committed transaction's offsets hold; the aborted one's are gone.
	if pos := l.one("positions"); !reflect.DeepEqual(pos.Offsets, map[string]int64{"0": nin / 2, "1": nin / 2}) {
		t.Fatalf("offsets sent: %v, want 4 and 4", pos.Offsets)
	}
	if got, want := b.groupOffsets("js-group", "js-in"), map[int32]int64{0: nin / 2, 1: nin / 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("js-group's committed offsets %v, want %v (the committed transaction's, not the aborted one's)", got, want)
	}
}

// TestTxnKafkaPython: kafka-python 2.0.2 reads a single-partition topic
// holding two committed transactions, an aborted one and an open one.
// That version cannot read committed only: it has no isolation_level
// setting (the keyword is refused), every Fetch says READ_UNCOMMITTED, and
// it hands the records of control batches to the application. So it must
// see every data record and, where Kafka writes them, the markers, in
// offset order: what a Kafka broker would give it. Should a later
// kafka-python accept isolation_level, its read_committed reading is
// checked too.
func TestTxnKafkaPython(t *testing.T) {
	needKafkaPython(t)
	b := startQuickGroupsBroker(t)
	b.createTopic("kp-tx", 1, nil)
	p := b.txnProducer("kp-txn", kgo.DefaultProduceTopic("kp-tx"))
	for _, tx := range []struct {
		commit bool
		vs     []string
	}{{true, []string{"c1", "c2", "c3"}}, {false, []string{"a1", "a2"}}, {true, []string{"c4"}}} {
		if err := txnRun(t, p, tx.commit, tx.vs...); err != nil {
			t.Fatalf("transaction %v (commit=%v): %v", tx.vs, tx.commit, err)
		}
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, p, &kgo.Record{Key: []byte("o1"), Value: []byte("o1")}) // left open
	checkCommittedOnly(t, b, "kp-tx", []string{"c1", "c2", "c3", "c4"}, []string{"a1", "a2", "o1"})

	out := runTool(t, "", pythonWithKafka, "testdata/kafka_python_txn.py", b.addr, "kp-tx")
	l := parseTxnLines(t, out)
	l.one("done")
	// A control record: key version 0 and type (0 abort, 1 commit); value
	// version 0 and the coordinator epoch.
	describe := func(r txnLine) string {
		if len(r.Key) == 4 && r.Key[0] == 0 && r.Key[1] == 0 && r.Key[2] == 0 && len(r.ValueBytes) == 6 && r.ValueBytes[0] == 0 && r.ValueBytes[1] == 0 {
			return map[byte]string{0: "ABORT", 1: "COMMIT"}[r.Key[3]]
		}
		return string(r.ValueBytes)
	}
	read := map[string][]string{}
	for i, r := range l.byKind["record"] {
		// Reading uncommitted, every offset is a record: dense from 0.
		if r.Partition != 0 || r.Mode == "default" && r.Offset != int64(len(read[r.Mode])) {
			t.Fatalf("record %d (%s): %d/%d, want 0/%d; script output:\n%s", i, r.Mode, r.Partition, r.Offset, len(read[r.Mode]), out)
		}
		read[r.Mode] = append(read[r.Mode], describe(r))
	}
	want := []string{"c1", "c2", "c3", "COMMIT", "a1", "a2", "ABORT", "c4", "COMMIT", "o1"}
	if !reflect.DeepEqual(read["default"], want) {
		t.Fatalf("kafka-python (read_uncommitted) read %q, want %q", read["default"], want)
	}
	if iso := l.one("isolation_level"); iso.OK == nil || !*iso.OK {
		t.Logf("kafka-python cannot read committed only: isolation_level='read_committed' refused (%s: %s)", iso.Error, iso.Message)
	} else if want := []string{"c1", "c2", "c3", "c4"}; !reflect.DeepEqual(read["read_committed"], want) {
		t.Fatalf("kafka-python read_committed read %q, want %q", read["read_committed"], want)
	}
}

// saramaTxnConfig is a transactional producer's configuration at version
// ("default": sarama's own default).
func saramaTxnConfig(t *testing.T, version, id string) *sarama.Config {
	t.Helper()
	cfg := sarama.NewConfig()
	if version != "default" {
		v, err := sarama.ParseKafkaVersion(version)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Version = v
	}
	cfg.ClientID = "itest-sarama-txn"
	cfg.Net.MaxOpenRequests = 1
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Transaction.ID = id
	cfg.Producer.Transaction.Timeout = 10 * time.Second
	cfg.Producer.Transaction.Retry.Max = 20
	cfg.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

// saramaFence: a second sarama producer with the same transactional id
// fences the first, whose open transaction is aborted and whose
// CommitTxn fails (INVALID_PRODUCER_EPOCH, or PRODUCER_FENCED from
// EndTxn v2 at 2.7 and above).
func saramaFence(t *testing.T, b *broker, version string) {
	topic, id := "sarama-fence-"+version, "sarama-fence-"+version
	b.createTopic(topic, 2, nil)
	const n = 5
	newProducer := func() sarama.SyncProducer {
		t.Helper()
		p, err := sarama.NewSyncProducer([]string{b.addr}, saramaTxnConfig(t, version, id))
		if err != nil {
			t.Fatalf("transactional producer: %v", err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	send := func(p sarama.SyncProducer, vs []string) {
		t.Helper()
		var ms []*sarama.ProducerMessage
		for _, v := range vs {
			ms = append(ms, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(v), Value: sarama.StringEncoder(v)})
		}
		if err := p.SendMessages(ms); err != nil {
			t.Fatalf("send in a transaction: %v", err)
		}
	}
	zombie := newProducer()
	if err := zombie.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send(zombie, values("zombie", n))
	p := newProducer() // InitProducerId: fences zombie
	err := zombie.CommitTxn()
	if !errors.Is(err, sarama.ErrInvalidProducerEpoch) && !errors.Is(err, sarama.ErrProducerFenced) {
		t.Fatalf("the fenced producer's CommitTxn: %v, want INVALID_PRODUCER_EPOCH or PRODUCER_FENCED", err)
	}
	t.Logf("fenced producer's CommitTxn: %v", err)
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send(p, values("b", n))
	if err := p.CommitTxn(); err != nil {
		t.Fatalf("the new producer's CommitTxn: %v", err)
	}
	checkCommittedOnly(t, b, topic, values("b", n), values("zombie", n))
}
