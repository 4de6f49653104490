package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func strp(s string) *string { return &s }

// describedConfig returns the value and source of one topic config.
func describedConfig(t *testing.T, adm *kadm.Client, topic, name string) (string, kmsg.ConfigSource) {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c.MaybeValue(), c.Source
		}
	}
	t.Fatalf("%s: no config %s", topic, name)
	return "", 0
}

// alterErr is the error of a one-resource alter.
func alterErr(resps kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	if len(resps) != 1 {
		return fmt.Errorf("%d responses", len(resps))
	}
	return resps[0].Err
}

func TestIncrementalAlterTopicConfigs(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	c := tb.client()
	adm := kadm.NewClient(c)
	ctx := testCtx(t)
	createTopic(t, c, "cfg", 1, map[string]*string{"segment.bytes": strp("100000")})

	set := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("3600000")}}
	if err := alterErr(adm.AlterTopicConfigs(ctx, set, "cfg")); err != nil {
		t.Fatal(err)
	}
	if v, src := describedConfig(t, adm, "cfg", "retention.ms"); v != "3600000" || src != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms after SET: %s (%v)", v, src)
	}
	if v, _ := describedConfig(t, adm, "cfg", "segment.bytes"); v != "100000" {
		t.Fatalf("incremental SET dropped segment.bytes: %s", v)
	}
	// The log itself runs with the new value.
	if got := tb.b.partition("cfg", 0).log.Config().RetentionMs; got != 3600000 {
		t.Fatalf("log retention.ms = %d", got)
	}

	// APPEND and SUBTRACT on the list config cleanup.policy start from the
	// value in force ("delete").
	app := []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("compact")}}
	if err := alterErr(adm.AlterTopicConfigs(ctx, app, "cfg")); err != nil {
		t.Fatal(err)
	}
	if v, _ := describedConfig(t, adm, "cfg", "cleanup.policy"); v != "delete,compact" {
		t.Fatalf("cleanup.policy after APPEND: %q", v)
	}
	if !tb.b.partition("cfg", 0).log.Config().Compact {
		t.Fatal("log not compacted after APPEND compact")
	}
	sub := []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: strp("delete")}}
	if err := alterErr(adm.AlterTopicConfigs(ctx, sub, "cfg")); err != nil {
		t.Fatal(err)
	}
	if v, _ := describedConfig(t, adm, "cfg", "cleanup.policy"); v != "compact" {
		t.Fatalf("cleanup.policy after SUBTRACT: %q", v)
	}

	// Errors: a bad value, an unknown config, APPEND on a non-list, an
	// unknown topic; none changes anything.
	for _, tc := range []struct {
		cfg   kadm.AlterConfig
		topic string
		want  error
	}{
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("soon")}, "cfg", kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: strp("1")}, "cfg", kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: strp("1")}, "cfg", kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("1")}, "nope", kerr.UnknownTopicOrPartition},
	} {
		err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{tc.cfg}, tc.topic))
		if !errors.Is(err, tc.want) {
			t.Errorf("%v %s=%v on %s: %v, want %v", tc.cfg.Op, tc.cfg.Name, tc.cfg.Value, tc.topic, err, tc.want)
		}
	}
	// validate_only checks without changing.
	resps, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("5")}}, "cfg")
	if err := alterErr(resps, err); err != nil {
		t.Fatal(err)
	}
	if v, _ := describedConfig(t, adm, "cfg", "retention.ms"); v != "3600000" {
		t.Fatalf("validate_only changed retention.ms to %s", v)
	}
	// DELETE returns the config to the broker default.
	del := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}
	if err := alterErr(adm.AlterTopicConfigs(ctx, del, "cfg")); err != nil {
		t.Fatal(err)
	}
	if v, src := describedConfig(t, adm, "cfg", "retention.ms"); v != "604800000" || src != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms after DELETE: %s (%v)", v, src)
	}

	// The legacy AlterConfigs replaces the whole set.
	if err := alterErr(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: strp("123456")}}, "cfg")); err != nil {
		t.Fatal(err)
	}
	if v, _ := describedConfig(t, adm, "cfg", "retention.bytes"); v != "123456" {
		t.Fatalf("retention.bytes after AlterConfigs: %s", v)
	}
	if v, src := describedConfig(t, adm, "cfg", "segment.bytes"); v == "100000" || src != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("AlterConfigs kept segment.bytes: %s (%v)", v, src)
	}

	// Durable: a restart keeps the last state.
	tb.stop()
	tb = startBroker(t, dir, nil)
	adm = kadm.NewClient(tb.client())
	if v, _ := describedConfig(t, adm, "cfg", "retention.bytes"); v != "123456" {
		t.Fatalf("retention.bytes after restart: %s", v)
	}
	if v, _ := describedConfig(t, adm, "cfg", "cleanup.policy"); v != "delete" {
		t.Fatalf("cleanup.policy after restart: %s", v)
	}
}

func TestDynamicBrokerConfigs(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, func(c *Config) { c.TopicDefaults = map[string]string{"retention.bytes": "999999"} })
	c := tb.client()
	adm := kadm.NewClient(c)
	ctx := testCtx(t)
	createTopic(t, c, "dyn", 1, nil)
	createTopic(t, c, "own", 1, map[string]*string{"retention.ms": strp("1000")})

	// Cluster default.
	set := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("7200000")}}
	if err := alterErr(adm.AlterBrokerConfigs(ctx, set)); err != nil {
		t.Fatal(err)
	}
	if v, src := describedConfig(t, adm, "dyn", "retention.ms"); v != "7200000" || src != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("retention.ms under a dynamic default: %s (%v)", v, src)
	}
	if v, _ := describedConfig(t, adm, "own", "retention.ms"); v != "1000" {
		t.Fatalf("a topic's own value lost to the dynamic default: %s", v)
	}
	if got := tb.b.partition("dyn", 0).log.Config().RetentionMs; got != 7200000 {
		t.Fatalf("log retention.ms = %d", got)
	}
	// This node's own value wins over the cluster default.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("60000")}}, 1)); err != nil {
		t.Fatal(err)
	}
	if v, src := describedConfig(t, adm, "dyn", "retention.ms"); v != "60000" || src != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("retention.ms under a node config: %s (%v)", v, src)
	}
	// Static topic_defaults still show through where nothing dynamic is set.
	if v, src := describedConfig(t, adm, "dyn", "retention.bytes"); v != "999999" || src != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("retention.bytes: %s (%v)", v, src)
	}
	// The broker's own view lists it as dynamic and writable.
	brc, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cfg := range brc[0].Configs {
		if cfg.Key == "log.retention.ms" {
			found = cfg.MaybeValue() == "60000" && cfg.Source == kmsg.ConfigSourceDynamicBrokerConfig && len(cfg.Synonyms) >= 2
		}
	}
	if !found {
		t.Fatalf("broker 1 configs do not show log.retention.ms=60000 as dynamic: %+v", brc[0].Configs)
	}
	for _, cfg := range brc[0].Configs {
		if (cfg.Key == "listeners" || cfg.Key == "advertised.listeners") && cfg.MaybeValue() != "PLAINTEXT://"+tb.addr {
			t.Errorf("%s = %s, want the bound address %s", cfg.Key, cfg.MaybeValue(), tb.addr)
		}
	}
	// Read-only and unknown broker configs are refused.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.dirs", Value: strp("/x")}})); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("altering log.dirs: %v", err)
	}
	// A bad broker value is INVALID_REQUEST in Kafka (KAFKA-13609).
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("-5")}})); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("log.retention.ms=-5: %v", err)
	}
	// Custom and other Kafka broker configs are kept, as Kafka keeps them.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.cleaner.threads", Value: strp("2")}})); err != nil {
		t.Fatalf("log.cleaner.threads: %v", err)
	}
	brc, err = adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := brc.On("", nil); err != nil || !hasConfig(v.Configs, "log.cleaner.threads", "2", kmsg.ConfigSourceDynamicDefaultBrokerConfig) {
		t.Fatalf("cluster defaults lack log.cleaner.threads=2: %+v %v", v, err)
	}

	// Durable across a restart.
	tb.stop()
	tb = startBroker(t, dir, func(c *Config) { c.TopicDefaults = map[string]string{"retention.bytes": "999999"} })
	adm = kadm.NewClient(tb.client())
	if v, src := describedConfig(t, adm, "dyn", "retention.ms"); v != "60000" || src != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("retention.ms after restart: %s (%v)", v, src)
	}
	// Deleting the node's value falls back to the cluster default.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "log.retention.ms"}}, 1)); err != nil {
		t.Fatal(err)
	}
	if v, _ := describedConfig(t, adm, "dyn", "retention.ms"); v != "7200000" {
		t.Fatalf("retention.ms after deleting the node value: %s", v)
	}
}

// TestDynamicRetentionTakesEffect: lowering log.retention.ms for the
// cluster makes the retention check delete old segments of topics that
// do not set retention.ms.
func TestDynamicRetentionTakesEffect(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client(kgo.DefaultProduceTopic("old"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(c)
	ctx := testCtx(t)
	createTopic(t, c, "old", 1, map[string]*string{"segment.bytes": strp("2000")})
	old := time.Now().Add(-2 * time.Hour)
	for i := range 20 {
		r := &kgo.Record{Value: bytes.Repeat([]byte{byte(i)}, 400), Timestamp: old}
		if err := c.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tb.b.store.EnforceRetention()
	if s := tb.b.partition("old", 0).log.StartOffset(); s != 0 {
		t.Fatalf("retention deleted under the 7-day default: start %d", s)
	}
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("3600000")}})); err != nil {
		t.Fatal(err)
	}
	tb.b.store.EnforceRetention()
	if s := tb.b.partition("old", 0).log.StartOffset(); s == 0 {
		t.Fatal("a 1-hour dynamic retention left 2-hour-old segments")
	}
}

func TestCreatePartitions(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	c := tb.client()
	adm := kadm.NewClient(c)
	ctx := testCtx(t)
	createTopic(t, c, "grow", 1, map[string]*string{"retention.ms": strp("86400000")})

	resps, err := adm.UpdatePartitions(ctx, 3, "grow")
	if err != nil || resps["grow"].Err != nil {
		t.Fatalf("grow to 3: %v %v", err, resps["grow"].Err)
	}
	// The new partitions take records and keep the topic's configs.
	for p := range int32(3) {
		r := &kgo.Record{Topic: "grow", Partition: p, Value: []byte("v" + strconv.Itoa(int(p)))}
		pc := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := pc.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}
	if got := tb.b.partition("grow", 2).log.Config().RetentionMs; got != 86400000 {
		t.Fatalf("new partition's retention.ms = %d", got)
	}
	for _, tc := range []struct {
		set  int
		want error
	}{{3, kerr.InvalidPartitions}, {2, kerr.InvalidPartitions}, {maxPartitions + 1, kerr.InvalidPartitions}} {
		resps, err := adm.UpdatePartitions(ctx, tc.set, "grow")
		if err != nil || !errors.Is(resps["grow"].Err, tc.want) {
			t.Errorf("set %d partitions: %v %v, want %v", tc.set, err, resps["grow"].Err, tc.want)
		}
	}
	resps, err = adm.UpdatePartitions(ctx, 2, "missing")
	if err != nil || !errors.Is(resps["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v %v", err, resps["missing"].Err)
	}
	resps, err = adm.ValidateUpdatePartitions(ctx, 5, "grow")
	if err != nil || resps["grow"].Err != nil {
		t.Fatalf("validate 5: %v %v", err, resps["grow"].Err)
	}
	if n := len(tb.b.topic("grow").parts()); n != 3 {
		t.Fatalf("validate_only changed partitions to %d", n)
	}

	tb.stop()
	tb = startBroker(t, dir, nil)
	got := consumeAll(t, tb, "grow", 3)
	seen := map[int32]string{}
	for _, r := range got {
		seen[r.Partition] = string(r.Value)
	}
	if len(seen) != 3 || seen[2] != "v2" {
		t.Fatalf("after restart: %v", seen)
	}
}

func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	c := tb.client(kgo.DefaultProduceTopic("del"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	adm := kadm.NewClient(c)
	ctx := testCtx(t)
	createTopic(t, c, "del", 1, map[string]*string{"segment.bytes": strp("3000")})
	base := time.Now().Add(-time.Hour)
	for i := range 100 {
		r := &kgo.Record{Value: bytes.Repeat([]byte{byte(i)}, 100), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := c.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	segsBefore := countSegments(t, filepath.Join(dir, "del-0"))

	del := func(offset int64) (int64, error) {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "del", Partition: 0, At: offset})
		resps, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := resps.Lookup("del", 0)
		return r.LowWatermark, r.Err
	}
	low, err := del(40)
	if err != nil || low != 40 {
		t.Fatalf("delete before 40: low %d, %v", low, err)
	}
	if segsAfter := countSegments(t, filepath.Join(dir, "del-0")); segsAfter >= segsBefore {
		t.Fatalf("no segment deleted: %d before, %d after", segsBefore, segsAfter)
	}
	// Lower is a no-op; beyond the high watermark is out of range.
	if low, err := del(10); err != nil || low != 40 {
		t.Fatalf("delete before 10 after 40: low %d, %v", low, err)
	}
	if _, err := del(101); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete beyond the end: %v", err)
	}
	checkStart := func(tb *testBroker, want int64) {
		t.Helper()
		adm := kadm.NewClient(tb.client())
		start, err := adm.ListStartOffsets(testCtx(t), "del")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := start.Lookup("del", 0); o.Offset != want {
			t.Fatalf("log start %d, want %d", o.Offset, want)
		}
		// A timestamp before everything finds the log start, not a
		// deleted record that still sits in its segment.
		byTime, err := adm.ListOffsetsAfterMilli(testCtx(t), base.Add(-time.Minute).UnixMilli(), "del")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := byTime.Lookup("del", 0); o.Offset != want {
			t.Fatalf("offset by time %d, want %d", o.Offset, want)
		}
		got := consumeAll(t, tb, "del", int(100-want))
		if got[0].Offset != want || got[0].Value[0] != byte(want) {
			t.Fatalf("first record read from the start: offset %d", got[0].Offset)
		}
	}
	checkStart(tb, 40)
	// Reading below the log start is out of range.
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes = 10, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "del", tb.b.topic("del").id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 20, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	kresp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// As Kafka: the out-of-range answer carries -1, not the offsets.
	if rp := kresp.Topics[0].Partitions[0]; rp.ErrorCode != kerr.OffsetOutOfRange.Code || rp.LogStartOffset != -1 || rp.HighWatermark != -1 {
		t.Fatalf("fetch at 20: error %d, log start %d", rp.ErrorCode, rp.LogStartOffset)
	}

	// Durable across a restart; -1 deletes up to the high watermark.
	tb.stop()
	tb = startBroker(t, dir, nil)
	checkStart(tb, 40)
	adm = kadm.NewClient(tb.client())
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "del", Partition: 0, At: -1})
	resps, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resps.Lookup("del", 0); r.Err != nil || r.LowWatermark != 100 {
		t.Fatalf("delete to the high watermark: low %d, %v", r.LowWatermark, r.Err)
	}
	// The log goes on from there.
	p := tb.client(kgo.DefaultProduceTopic("del"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{200}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, tb, "del", 1); got[0].Offset != 100 {
		t.Fatalf("record after deleting everything at offset %d", got[0].Offset)
	}
	// A compact-only topic's records go by compaction, not DeleteRecords.
	createTopic(t, p, "compacted", 1, map[string]*string{"cleanup.policy": strp("compact")})
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "compacted", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	os = kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "compacted", Partition: 0, At: 1})
	resps, err = adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resps.Lookup("compacted", 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("delete records of a compact-only topic: %v", r.Err)
	}
}

func countSegments(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestDescribeLogDirsAndCluster(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	c := tb.client(kgo.DefaultProduceTopic("sized"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(c)
	ctx := testCtx(t)
	createTopic(t, c, "sized", 2, nil)
	for i := range 10 {
		if err := c.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: bytes.Repeat([]byte{'x'}, 1000), Key: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[1]
	if len(dirs) != 1 {
		t.Fatalf("log dirs: %+v", all)
	}
	for path, d := range dirs {
		want, _ := filepath.Abs(dir)
		if path != want || d.Err != nil {
			t.Fatalf("log dir %q (%v), want %q", path, d.Err, want)
		}
		if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			t.Fatalf("total %d, usable %d", d.TotalBytes, d.UsableBytes)
		}
		var total int64
		for _, p := range []int32{0, 1} {
			ps, ok := d.Topics["sized"][p]
			if !ok {
				t.Fatalf("no partition %d in %+v", p, d.Topics)
			}
			total += ps.Size
		}
		var files int64
		for _, p := range []string{"sized-0", "sized-1"} {
			st, err := os.Stat(filepath.Join(dir, p, "00000000000000000000.log"))
			if err != nil {
				t.Fatal(err)
			}
			files += st.Size()
		}
		if total != files || total < 10000 {
			t.Fatalf("sizes add up to %d, segments hold %d bytes", total, files)
		}
	}

	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeClusterAuthorizedOperations = true
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.ClusterID != tb.b.ClusterID() || resp.ControllerID != 1 || len(resp.Brokers) != 1 ||
		resp.Brokers[0].NodeID != 1 || fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != tb.addr {
		t.Fatalf("DescribeCluster: %+v", resp)
	}
	if resp.ClusterAuthorizedOperations&(1<<kmsg.ACLOperationAlterConfigs) == 0 {
		t.Fatalf("authorized operations %b lack ALTER_CONFIGS", resp.ClusterAuthorizedOperations)
	}
}

// TestAdminChangesReachTheStandby: config changes (topic and dynamic
// broker), added partitions and DeleteRecords on the primary hold on the
// standby too, and the standby refuses to make them itself.
func TestAdminChangesReachTheStandby(t *testing.T) {
	p := startPair(t)
	cl := p.primary.client(kgo.SeedBrokers(p.primaryAddr, p.standbyAddr), kgo.DefaultProduceTopic("adm"), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 1, 2, map[string]*string{"segment.bytes": strp("2000")}, "adm"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: bytes.Repeat([]byte{byte(i)}, 100)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("5000000")}}, "adm")); err != nil {
		t.Fatal(err)
	}
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.bytes", Value: strp("7777777")}})); err != nil {
		t.Fatal(err)
	}
	if resps, err := adm.UpdatePartitions(ctx, 2, "adm"); err != nil || resps["adm"].Err != nil {
		t.Fatalf("add a partition: %v %v", err, resps["adm"].Err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "adm", Partition: 0, At: 30})
	if resps, err := adm.DeleteRecords(ctx, offs); err != nil {
		t.Fatal(err)
	} else if r, _ := resps.Lookup("adm", 0); r.Err != nil || r.LowWatermark != 30 {
		t.Fatalf("delete records: %d %v", r.LowWatermark, r.Err)
	}
	// As Kafka's DelayedDeleteRecords, the answer came once the standby's
	// log start had moved too.
	sb := p.standby.b
	if s := sb.partition("adm", 0).log.StartOffset(); s != 30 {
		t.Fatalf("DeleteRecords answered while the standby's log start is %d", s)
	}
	p.waitCaughtUp(t)
	st := sb.topic("adm")
	if st == nil || len(st.parts()) != 2 {
		t.Fatalf("standby partitions: %v", st)
	}
	if v, src := sb.topicConfigValue(st, "retention.ms"); v != "5000000" || src != sourceDynamicTopic {
		t.Fatalf("standby retention.ms %s (%d)", v, src)
	}
	if v, src := sb.topicConfigValue(st, "retention.bytes"); v != "7777777" || src != sourceDynamicDefaultBroker {
		t.Fatalf("standby retention.bytes %s (%d)", v, src)
	}
	if got := sb.partition("adm", 1).log.Config().RetentionMs; got != 5000000 {
		t.Fatalf("standby's new partition has retention.ms %d", got)
	}
	// A config change sent to the standby (clients send them to any
	// broker) is forwarded to the primary, as Kafka's brokers forward to
	// the controller.
	sadm := kadm.NewClient(p.standby.client(kgo.SeedBrokers(p.standbyAddr)))
	if err := alterErr(sadm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("3600000")}}, 2)); err != nil {
		t.Fatalf("config change through the standby: %v", err)
	}
	if v := p.primary.b.dynamicConfigs()["2"]["log.retention.ms"]; v != "3600000" {
		t.Fatalf("primary did not record the forwarded change: %q", v)
	}
	// Node 2's value is the standby's default, not the primary's.
	if _, src := p.primary.b.brokerDefault("retention.ms"); src == sourceDynamicBroker {
		t.Fatal("node 2's config applies to node 1")
	}
	waitFor(t, "the standby to apply its own node config", 10*time.Second, func() bool {
		v, src := sb.brokerDefault("retention.ms")
		return v == "3600000" && src == sourceDynamicBroker
	})
}

// TestDeleteRecordsMidBatchStandbyRejoins: after DeleteRecords puts the
// log start inside a batch, a standby that was away (its copy wholly below
// the new start) starts its copy at that batch and catches up.
func TestDeleteRecordsMidBatchStandbyRejoins(t *testing.T) {
	p := startPairWith(t, 1)
	cl := p.primary.client(kgo.DefaultProduceTopic("mb"), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 1, 2, nil, "mb"); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(t)
	p.standby.stop()
	rs := make([]*kgo.Record, 10)
	for i := range rs {
		rs[i] = &kgo.Record{Value: []byte{byte(i)}}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil { // one batch, offsets 0..9
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "mb", Partition: 0, At: 5})
	if resps, err := adm.DeleteRecords(ctx, offs); err != nil {
		t.Fatal(err)
	} else if r, _ := resps.Lookup("mb", 0); r.Err != nil || r.LowWatermark != 5 {
		t.Fatalf("delete records: %d %v", r.LowWatermark, r.Err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Wipe the standby's copy of the partition: it rejoins wholly below
	// the primary's log start.
	if err := os.RemoveAll(filepath.Join(p.standbyDir, "mb-0")); err != nil {
		t.Fatal(err)
	}
	p.startStandby(t)
	p.waitCaughtUp(t)
	sp := p.standby.b.partition("mb", 0)
	if sp.log.StartOffset() != 5 || sp.log.EndOffset() != 11 {
		t.Fatalf("standby copy: start %d end %d, want 5 and 11", sp.log.StartOffset(), sp.log.EndOffset())
	}
	p.sameLogs(t)
}

// TestAlterConfigsRequestChecks: duplicate resources and other brokers'
// configs get Kafka's INVALID_REQUEST.
func TestAlterConfigsRequestChecks(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "dup", 1, nil)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for range 2 {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "dup"
		rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: strp("1000")}}
		req.Resources = append(req.Resources, rr)
	}
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Resources {
		if r.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicate resource: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if v, _ := tb.b.topicConfigValue(tb.b.topic("dup"), "retention.ms"); v == "1000" {
		t.Fatal("a request with duplicate resources changed the config")
	}
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeBroker, "7"
	dreq.Resources = append(dreq.Resources, dr)
	kresp, err := c.SeedBrokers()[0].Request(ctx, dreq) // kgo would route it to node 7
	if err != nil {
		t.Fatal(err)
	}
	dresp := kresp.(*kmsg.DescribeConfigsResponse)
	if dresp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("describe broker 7 on node 1: %v", kerr.ErrorForCode(dresp.Resources[0].ErrorCode))
	}
}

func hasConfig(cs []kadm.Config, name, value string, src kmsg.ConfigSource) bool {
	for _, c := range cs {
		if c.Key == name {
			return c.MaybeValue() == value && c.Source == src
		}
	}
	return false
}

// TestKafkaConfigForms: what Kafka accepts, samsa accepts: its other topic
// configs, an empty cleanup.policy, padded values, TRUE, log.retention.hours
// as a dynamic default; and it refuses what Kafka refuses the same way.
func TestKafkaConfigForms(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	c := tb.client()
	adm := kadm.NewClient(c)
	ctx := testCtx(t)
	createTopic(t, c, "forms", 1, map[string]*string{"preallocate": strp("TRUE"), "retention.ms": strp(" 100000 ")})
	if v, _ := describedConfig(t, adm, "forms", "retention.ms"); v != "100000" {
		t.Fatalf("padded retention.ms: %q", v)
	}
	if v, _ := describedConfig(t, adm, "forms", "preallocate"); v != "true" {
		t.Fatalf("preallocate=TRUE: %q", v)
	}
	for name, value := range map[string]string{
		"compression.gzip.level": "5", "compression.zstd.level": "-3", "compression.lz4.level": "12",
		"leader.replication.throttled.replicas": "0:1,1:1", "follower.replication.throttled.replicas": "*",
		"message.downconversion.enable": "false", "message.format.version": "2.8", "message.timestamp.difference.max.ms": "1000",
	} {
		if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: strp(value)}}, "forms")); err != nil {
			t.Errorf("%s=%s: %v", name, value, err)
		} else if v, src := describedConfig(t, adm, "forms", name); v != value || src != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("%s after SET %s: %q (%v)", name, value, v, src)
		}
	}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "compression.gzip.level", Value: strp("10")}}, "forms")); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("gzip level 10: %v", err)
	}
	// SUBTRACT of the last policy leaves an empty list: nothing is deleted
	// or compacted.
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: strp("delete")}}, "forms")); err != nil {
		t.Fatalf("subtract delete: %v", err)
	}
	if v, _ := describedConfig(t, adm, "forms", "cleanup.policy"); v != "" {
		t.Fatalf("cleanup.policy after subtracting delete: %q", v)
	}
	if cfg := tb.b.partition("forms", 0).log.Config(); cfg.Delete || cfg.Compact {
		t.Fatalf("empty cleanup.policy: delete %v compact %v", cfg.Delete, cfg.Compact)
	}
	// APPEND starts from the config's own default, not a broker value.
	createTopic(t, c, "appended", 1, nil)
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.cleanup.policy", Value: strp("compact")}})); err != nil {
		t.Fatal(err)
	}
	if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("compact")}}, "appended")); err != nil {
		t.Fatal(err)
	}
	if v, _ := describedConfig(t, adm, "appended", "cleanup.policy"); v != "delete,compact" {
		t.Fatalf("APPEND compact under a broker default of compact: %q", v)
	}
	// APPEND on a non-list broker config is INVALID_REQUEST.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "log.retention.ms", Value: strp("1")}})); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("APPEND log.retention.ms: %v", err)
	}
	// log.retention.hours set dynamically is a retention.ms default.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.hours", Value: strp("2")}})); err != nil {
		t.Fatal(err)
	}
	if v, src := describedConfig(t, adm, "appended", "retention.ms"); v != "7200000" || src != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("retention.ms under log.retention.hours=2: %s (%v)", v, src)
	}
	// The legacy AlterConfigs refuses null values.
	req := kmsg.NewPtrAlterConfigsRequest()
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "forms"
	rr.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "segment.ms", Value: nil}}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, c)
	if err != nil || resp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("AlterConfigs with a null value: %v %+v", err, resp)
	}
	// DescribeCluster for controllers on a broker endpoint.
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.EndpointType = 2
	dresp, err := dc.RequestWith(ctx, c)
	if err != nil || dresp.ErrorCode != kerr.MismatchedEndpointType.Code {
		t.Fatalf("DescribeCluster endpoint type 2: %v %+v", err, dresp)
	}
}

// gathered reads one sample from a metrics registry (a histogram's: its
// count).
func gathered(t *testing.T, m *Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			switch {
			case s.Gauge != nil:
				return s.Gauge.GetValue(), true
			case s.Counter != nil:
				return s.Counter.GetValue(), true
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// TestReplicationMetrics: with a standby, the primary reports it in sync
// and its lag, and the standby its own lag, role, replicated bytes and
// the phases of its replica fetches.
func TestReplicationMetrics(t *testing.T) {
	p := &pair{primaryAddr: reserveAddr(t), standbyAddr: reserveAddr(t), primaryDir: t.TempDir(), standbyDir: t.TempDir(), minISR: 2,
		metrics: [2]*Metrics{NewMetrics(), NewMetrics()}}
	p.startPrimary(t)
	p.startStandby(t)
	cl := p.primary.client(kgo.DefaultProduceTopic("rm"))
	if _, err := kadm.NewClient(cl).CreateTopic(testCtx(t), 1, 2, nil, "rm"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.waitCaughtUp(t)
	part := map[string]string{"topic": "rm", "partition": "0"}
	waitFor(t, "the primary to report the standby in sync with no lag", 10*time.Second, func() bool {
		in, ok1 := gathered(t, p.metrics[0], "samsa_partition_standby_in_sync", part)
		lag, ok2 := gathered(t, p.metrics[0], "samsa_partition_replication_lag_records", part)
		return ok1 && ok2 && in == 1 && lag == 0
	})
	if v, ok := gathered(t, p.metrics[0], "samsa_topic_replication_bytes_out_total", map[string]string{"topic": "rm"}); !ok || v <= 0 {
		t.Fatalf("replication bytes out %v (%v)", v, ok)
	}
	if v, ok := gathered(t, p.metrics[1], "samsa_role", map[string]string{"role": "standby"}); !ok || v != 1 {
		t.Fatalf("standby role metric %v (%v)", v, ok)
	}
	if v, ok := gathered(t, p.metrics[1], "samsa_partition_log_end_offset", part); !ok || v != 20 {
		t.Fatalf("standby log end %v (%v)", v, ok)
	}
	// The standby times its fetches that brought records (at least one per
	// acks=all record above, as each waited for it), the primary none.
	wait, ok1 := gathered(t, p.metrics[1], "samsa_replica_fetch_seconds", map[string]string{"phase": "wait"})
	apply, ok2 := gathered(t, p.metrics[1], "samsa_replica_fetch_seconds", map[string]string{"phase": "apply"})
	if !ok1 || !ok2 || apply < 20 || wait != apply {
		t.Fatalf("standby replica fetches timed: wait %v (%v), apply %v (%v); want the same count, at least 20", wait, ok1, apply, ok2)
	}
	if v, _ := gathered(t, p.metrics[0], "samsa_replica_fetch_seconds", map[string]string{"phase": "apply"}); v != 0 {
		t.Fatalf("the primary timed %v replica fetches of its own", v)
	}
	// The standby gone: out of sync, lag grows with acks=1 writes.
	p.standby.stop()
	waitFor(t, "the primary to report the standby out of sync", 20*time.Second, func() bool {
		in, _ := gathered(t, p.metrics[0], "samsa_partition_standby_in_sync", part)
		return in == 0
	})
	one := p.primary.client(kgo.DefaultProduceTopic("rm"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	for range 5 {
		if err := one.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if lag, _ := gathered(t, p.metrics[0], "samsa_partition_replication_lag_records", part); lag != 5 {
		t.Fatalf("lag with the standby gone after 5 records: %v", lag)
	}
}

// TestStandbyForwardsIdempotentInitProducerID: an idempotent producer's
// InitProducerId sent to the standby is answered with a producer id the
// primary allocated (every Kafka broker answers it; NOT_COORDINATOR
// stalled librdkafka, which asks again where it asked first), distinct
// from the primary's own; a transactional one still gets NOT_COORDINATOR.
func TestStandbyForwardsIdempotentInitProducerID(t *testing.T) {
	p := startPair(t)
	rc := dialRaw(t, p.standbyAddr)
	ids := map[int64]bool{}
	for range 2 {
		r := kmsg.NewPtrInitProducerIDRequest()
		r.TransactionTimeoutMillis = -1
		resp := rc.request(r).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || ids[resp.ProducerID] {
			t.Fatalf("idempotent InitProducerId on the standby: %v %+v", kerr.ErrorForCode(resp.ErrorCode), resp)
		}
		ids[resp.ProducerID] = true
	}
	pr := kmsg.NewPtrInitProducerIDRequest()
	pr.TransactionTimeoutMillis = -1
	if resp := dialRaw(t, p.primaryAddr).request(pr).(*kmsg.InitProducerIDResponse); resp.ErrorCode != 0 || ids[resp.ProducerID] {
		t.Fatalf("the primary's own id %d (%v) after the standby's %v", resp.ProducerID, kerr.ErrorForCode(resp.ErrorCode), ids)
	}
	id := "tx"
	tr := kmsg.NewPtrInitProducerIDRequest()
	tr.TransactionalID, tr.TransactionTimeoutMillis = &id, 60000
	if resp := rc.request(tr).(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("transactional InitProducerId on the standby: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}
