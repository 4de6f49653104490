package engine

import (
	"encoding/json"
	"errors"
	"testing"
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
	if m := img.topics["a"]; m.Partitions != 1 || img.ids["a"] != ([16]byte{2}) || img.deleted["a"] {
		t.Fatalf("re-created topic a = %+v id %x deleted %v", m, img.ids["a"], img.deleted["a"])
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
