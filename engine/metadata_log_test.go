package engine

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestCatalogImageApply: the one decoder of the metadata log's records
// (start-up replay, a standby's live follow and its resync all use it).
func TestCatalogImageApply(t *testing.T) {
	img := newCatalogImage()
	apply := func(typ string, v any) {
		t.Helper()
		value, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := img.apply(typ, value); err != nil {
			t.Fatalf("apply %s: %v", typ, err)
		}
	}
	id1, id2 := hexID([16]byte{1}), hexID([16]byte{2})
	apply(recCluster, metaCluster{ClusterID: "c1"})
	apply(recTopic, metaTopic{Name: "a", ID: id1, Partitions: 3, Configs: map[string]string{"retention.ms": "1"}})
	// A later record of the same topic replaces its configs; partitions
	// only grow.
	apply(recTopic, metaTopic{Name: "a", ID: id1, Partitions: 2, Configs: map[string]string{"segment.ms": "5"}})
	if m := img.topics["a"]; m.Partitions != 3 || len(m.Configs) != 1 || m.Configs["segment.ms"] != "5" {
		t.Fatalf("topic a = %+v, want 3 partitions and configs {segment.ms: 5}", m)
	}
	apply(recDeleteTopic, metaTopic{Name: "a", ID: id1})
	if _, ok := img.topics["a"]; ok || !img.deleted["a"] {
		t.Fatalf("deleted topic still held (%v) or not marked deleted (%v)", img.topics, img.deleted)
	}
	// Created again under another id: a new topic, not a grown old one.
	apply(recTopic, metaTopic{Name: "a", ID: id2, Partitions: 1})
	if m := img.topics["a"]; m.Partitions != 1 || m.id != ([16]byte{2}) || img.deleted["a"] {
		t.Fatalf("re-created topic a = %+v deleted %v", m, img.deleted["a"])
	}
	apply(recProducerIDs, metaProducerIDs{End: 2000})
	apply(recProducerIDs, metaProducerIDs{End: 1000}) // never goes back
	apply(recLeader, metaLeader{Node: 2, Epoch: 3})
	apply(recLeader, metaLeader{Node: 1, Epoch: 2})
	apply(recBrokerConfigs, metaBrokerConfigs{Resource: "", Configs: map[string]string{"log.retention.ms": "10"}})
	apply(recBrokerConfigs, metaBrokerConfigs{Resource: "1", Configs: map[string]string{"log.segment.bytes": "2048"}})
	apply(recBrokerConfigs, metaBrokerConfigs{Resource: ""}) // removes the cluster default
	if img.clusterID != "c1" || img.pidEnd != 2000 || img.epoch != 3 || img.leader.Node != 1 {
		t.Fatalf("image: cluster %q pidEnd %d epoch %d leader %+v", img.clusterID, img.pidEnd, img.epoch, img.leader)
	}
	if len(img.dyn) != 1 || img.dyn["1"]["log.segment.bytes"] != "2048" {
		t.Fatalf("dynamic configs %v", img.dyn)
	}
	if err := img.apply("from_the_future", []byte(`{}`)); !errors.Is(err, errUnknownRecord) {
		t.Fatalf("unknown record type: %v, want errUnknownRecord", err)
	}
	for _, typ := range []string{recCluster, recTopic, recDeleteTopic, recProducerIDs, recLeader, recBrokerConfigs} {
		if err := img.apply(typ, []byte("{not json")); err == nil || errors.Is(err, errUnknownRecord) {
			t.Errorf("%s with a bad value: %v, want a decode error", typ, err)
		}
	}
	if err := img.apply(recTopic, []byte(`{"name":"b","id":"zz"}`)); err == nil {
		t.Error("topic record with a bad id applied")
	}
}

// catalogState is what a catalog holds, for comparing nodes.
type catalogState struct {
	Topics  map[string]topicState
	Dynamic map[string]map[string]string
	PIDEnd  int64
	Cluster string
}

type topicState struct {
	ID         [16]byte
	Partitions int
	Configs    map[string]string
	Logs       int // partitions with an open log
}

func catalogOf(b *Broker) catalogState {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	s := catalogState{Topics: map[string]topicState{}, Dynamic: b.dynamicConfigs(), PIDEnd: b.pidEnd, Cluster: b.ClusterID()}
	if len(s.Dynamic) == 0 {
		s.Dynamic = nil
	}
	for _, t := range b.topicList() {
		ts := topicState{ID: t.id, Partitions: len(t.parts()), Configs: t.configs()}
		if len(ts.Configs) == 0 {
			ts.Configs = nil
		}
		for _, p := range t.parts() {
			if p.log != nil {
				ts.Logs++
			}
		}
		s.Topics[t.name] = ts
	}
	return s
}

// The three ways records of the metadata log reach a catalog agree: the
// primary's own changes (commitMeta), a standby's live follow, and a
// restart's replay of the log.
func TestCatalogPathsAgree(t *testing.T) {
	p := startPair(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(p.primary.client())
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := adm.CreateTopics(ctx, 2, -1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "a", "b", "c")
	must("create", err)
	_, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kadm.StringPtr("3600000")}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}, "a")
	must("alter topic configs", err)
	_, err = adm.UpdatePartitions(ctx, 5, "b")
	must("add partitions", err)
	_, err = adm.DeleteTopics(ctx, "c")
	must("delete", err)
	_, err = adm.CreateTopics(ctx, 1, -1, nil, "c") // the same name, a new id
	must("create again", err)
	_, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kadm.StringPtr("7200000")}})
	must("alter broker configs", err)
	if _, err := p.primary.b.allocProducerID(); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(t)

	want := catalogOf(p.primary.b)
	if tc := want.Topics["c"]; len(want.Topics) != 3 || want.Topics["b"].Partitions != 5 || tc.Partitions != 1 || want.Topics["a"].Configs["segment.ms"] != "3600000" {
		t.Fatalf("primary's catalog: %+v", want)
	}
	check := func(who string, got catalogState) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s's catalog differs from the primary's:\n got %+v\nwant %+v", who, got, want)
		}
	}
	check("the following standby", catalogOf(p.standby.b))
	p.standby.stop()
	p.startStandby(t)
	check("the restarted standby", catalogOf(p.standby.b))
	p.primary.stop()
	p.startPrimary(t)
	check("the restarted primary", catalogOf(p.primary.b))
}

// A topic whose logs do not all open (a bad directory) is not listed and
// its creation fails; it does not fail later, unrelated catalog changes,
// and the next change after the directory is repaired opens it.
func TestCatalogSyncOpenFailure(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	b := tb.b
	// A file where partition 1's directory would be.
	if err := os.WriteFile(filepath.Join(dir, "bad-1"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, terr := b.createTopic("bad", 3, -1, nil, false); terr == nil || terr.code != kerr.KafkaStorageError.Code {
		t.Fatalf("creating a topic whose directory is a file: %v, want KAFKA_STORAGE_ERROR", terr)
	}
	if b.topic("bad") != nil {
		t.Fatal("a topic with logs that did not open is listed")
	}
	if _, terr := b.createTopic("good", 1, -1, nil, false); terr != nil {
		t.Fatalf("an unrelated topic after the failure: %v", terr)
	}
	before := b.pidEnd
	for range 3 {
		if _, err := b.allocProducerID(); err != nil {
			t.Fatalf("a producer id after the failure: %v", err)
		}
	}
	if b.pidEnd != before && b.pidEnd != before+producerIDBlock {
		t.Fatalf("producer id blocks: end %d, then %d", before, b.pidEnd)
	}
	if err := os.Remove(filepath.Join(dir, "bad-1")); err != nil {
		t.Fatal(err)
	}
	if _, terr := b.createTopic("another", 1, -1, nil, false); terr != nil {
		t.Fatal(terr)
	}
	if bad := b.topic("bad"); bad == nil || len(bad.parts()) != 3 {
		t.Fatalf("the repaired topic after the next change: %v", bad)
	}
}

// A metadata log record of any content is applied or refused with an
// error, never a panic; a topic applied carries the id its record named.
func FuzzCatalogImageApply(f *testing.F) {
	f.Add("topic", []byte(`{"name":"a","id":"01000000000000000000000000000000","partitions":3}`))
	f.Add("delete_topic", []byte(`{"name":"a"}`))
	f.Add("broker_configs", []byte(`{"resource":"","configs":{"log.retention.ms":"1"}}`))
	f.Add("leader", []byte(`{"node":2,"epoch":-5}`))
	f.Add("producer_ids", []byte(`{"end":-1}`))
	f.Add("cluster", []byte(`null`))
	f.Add("scram", []byte(`{"user":"a","mechanism":"SCRAM-SHA-256","iterations":4096,"salt":"c2FsdA==","stored_key":"AA==","server_key":"AA=="}`))
	f.Add("delete_scram", []byte(`{"user":"a","mechanism":"SCRAM-SHA-512"}`))
	f.Fuzz(func(t *testing.T, typ string, value []byte) {
		img := newCatalogImage()
		if err := img.apply(typ, value); err != nil {
			return
		}
		for name, m := range img.topics {
			if id, err := parseTopicID(m.ID); err != nil || id != m.id {
				t.Fatalf("topic %q: id %x, its record says %q", name, m.id, m.ID)
			}
		}
	})
}
