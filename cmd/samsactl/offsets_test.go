package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"samsa/tools/ctl"
)

func TestOffsets(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	ok(t, b.addr, "topics", "create", "ev", "--partitions", "2")
	produce(t, b.addr, "ev", 2, 10, base)

	out := ok(t, b.addr, "offsets", "ev")
	if want := [][]string{{"PARTITION", "EARLIEST", "LATEST"}, {"0", "0", "10"}, {"1", "0", "10"}}; !equalRows(fields(out), want) {
		t.Errorf("offsets:\n%s", out)
	}
	var to ctl.TopicOffsets
	okJSON(t, b.addr, &to, "offsets", "ev")
	if to.Topic != "ev" || len(to.Partitions) != 2 || *to.Partitions[1].Earliest != 0 || *to.Partitions[1].Latest != 10 || to.Partitions[1].Offset != nil {
		t.Errorf("offsets -o json: %+v", to)
	}
	to = ctl.TopicOffsets{}
	okJSON(t, b.addr, &to, "offsets", "ev", "--time", "latest")
	if len(to.Partitions) != 2 || *to.Partitions[0].Offset != 10 || to.Partitions[0].Earliest != nil || to.Partitions[0].Timestamp != nil {
		t.Errorf("offsets --time latest: %+v", to)
	}
	out = ok(t, b.addr, "offsets", "ev", "--time", "earliest")
	if want := [][]string{{"PARTITION", "OFFSET", "(earliest)"}, {"0", "0"}, {"1", "0"}}; !equalRows(fields(out), want) {
		t.Errorf("offsets --time earliest:\n%s", out)
	}

	// The record at offset i has timestamp base+i s.
	at := base.Add(6 * time.Second)
	for _, arg := range []string{at.Format(time.RFC3339), strconv.FormatInt(at.UnixMilli(), 10)} {
		to = ctl.TopicOffsets{}
		okJSON(t, b.addr, &to, "offsets", "ev", "--time", arg)
		for _, p := range to.Partitions {
			if *p.Offset != 6 || *p.Timestamp != at.UnixMilli() {
				t.Errorf("offsets --time %s: partition %d at %d (timestamp %d), want 6 (%d)", arg, p.Partition, *p.Offset, *p.Timestamp, at.UnixMilli())
			}
		}
	}
	out = ok(t, b.addr, "offsets", "ev", "--time", at.Format(time.RFC3339))
	if !containsRow(fields(out), []string{"0", "6", at.UTC().Format(time.RFC3339Nano)}) {
		t.Errorf("offsets --time:\n%s", out)
	}
	// After the last record: the log end, with no timestamp.
	okJSON(t, b.addr, &to, "offsets", "ev", "--time", base.Add(time.Hour).Format(time.RFC3339))
	if *to.Partitions[0].Offset != 10 || *to.Partitions[0].Timestamp != -1 {
		t.Errorf("offsets --time after the last record: %+v", to.Partitions[0])
	}
	fails(t, b.addr, 2, []string{"offsets", "ev", "--time", "yesterday"}, "neither RFC 3339")
}

// TestDeleteRecords needs DeleteRecords.
func TestDeleteRecords(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ok(t, b.addr, "topics", "create", "ev", "--partitions", "2")
	produce(t, b.addr, "ev", 2, 10, time.Now())

	out := ok(t, b.addr, "delete-records", "ev", "--partition", "1", "--before", "4")
	if want := [][]string{{"TOPIC", "PARTITION", "LOW-WATERMARK"}, {"ev", "1", "4"}}; !equalRows(fields(out), want) {
		t.Errorf("delete-records:\n%s", out)
	}
	var to ctl.TopicOffsets
	okJSON(t, b.addr, &to, "offsets", "ev")
	if *to.Partitions[0].Earliest != 0 || *to.Partitions[1].Earliest != 4 || *to.Partitions[1].Latest != 10 {
		t.Errorf("offsets after delete-records: %+v %+v", *to.Partitions[0].Earliest, *to.Partitions[1].Earliest)
	}
	fails(t, b.addr, 1, []string{"delete-records", "ev", "--partition", "0", "--before", "11"}, "past the high watermark")
	fails(t, b.addr, 4, []string{"delete-records", "ev", "--partition", "2", "--before", "1"}, "no partition 2")
	fails(t, b.addr, 4, []string{"delete-records", "nosuch", "--all"}, `topic "nosuch" does not exist`)

	var del []ctl.DeletedRecords
	okJSON(t, b.addr, &del, "delete-records", "ev", "--all")
	if len(del) != 2 || del[0].LowWatermark != 10 || del[1].LowWatermark != 10 {
		t.Errorf("delete-records --all: %+v", del)
	}
	out = ok(t, b.addr, "offsets", "ev")
	if want := [][]string{{"PARTITION", "EARLIEST", "LATEST"}, {"0", "10", "10"}, {"1", "10", "10"}}; !equalRows(fields(out), want) {
		t.Errorf("offsets after delete-records --all:\n%s", out)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	var c ctl.ClusterDescription
	okJSON(t, b.addr, &c, "cluster")
	if c.ClusterID != b.clusterID || c.ClusterID == "" || c.Controller != b.nodeID || len(c.Brokers) != 1 {
		t.Fatalf("cluster: %+v, want cluster id %s node %d", c, b.clusterID, b.nodeID)
	}
	br := c.Brokers[0]
	if br.NodeID != b.nodeID || br.Host+":"+strconv.Itoa(int(br.Port)) != b.addr || br.Role != "alone" || br.KafkaVersion == "" || br.APIVersions != nil ||
		br.Software != "samsa "+testBrokerVersion {
		t.Errorf("cluster broker: %+v", br)
	}
	out := ok(t, b.addr, "cluster")
	if !strings.Contains(out, "Cluster: "+b.clusterID+"  Controller: "+itoa(b.nodeID)) ||
		!containsRow(fields(out)[2:], append([]string{itoa(b.nodeID), b.addr, "alone", "samsa", testBrokerVersion}, strings.Fields(br.KafkaVersion)...)) {
		t.Errorf("cluster:\n%s", out)
	}

	okJSON(t, b.addr, &c, "cluster", "--api-versions")
	apis := map[string]ctl.APIVersionRange{}
	for _, a := range c.Brokers[0].APIVersions {
		apis[a.Name] = a
	}
	if m := apis["Metadata"]; m.Key != 3 || m.Min != 0 || m.Max < 12 {
		t.Errorf("cluster --api-versions: Metadata is %+v", m)
	}
	if _, ok := apis["ElectLeaders"]; !ok || len(apis) < 20 {
		t.Errorf("cluster --api-versions lists %d APIs: %v", len(apis), apis)
	}
	out = ok(t, b.addr, "cluster", "--api-versions")
	if !containsRow(fields(out), []string{"3", "Metadata", "0-" + strconv.Itoa(int(apis["Metadata"].Max))}) {
		t.Errorf("cluster --api-versions:\n%s", out)
	}

	// A dead address first in -broker: the next one answers.
	if out := ok(t, closedAddr(t)+","+b.addr, "cluster"); !strings.Contains(out, b.clusterID) {
		t.Errorf("cluster with a dead first seed:\n%s", out)
	}

	out = ok(t, b.addr, "status")
	if !strings.HasPrefix(out, "node "+itoa(b.nodeID)+"  "+b.addr+"  alone\n") {
		t.Errorf("status:\n%s", out)
	}
	// A lone broker is no standby.
	fails(t, b.addr, 1, []string{"promote"}, "is not part of a pair")
}
