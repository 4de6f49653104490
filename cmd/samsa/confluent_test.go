package main

// librdkafka (confluent-kafka-python) behaviour that depends on the
// broker's exact answers, from testdata/confluent_client.py: KIP-467
// record errors, and offsets committed asynchronously many at a time.
// Both were found failing by librdkafka's own test suite (its 0011 and
// 0030 tests) run against samsa.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func confluentClient(t *testing.T, v any, args ...string) {
	t.Helper()
	out := runTool(t, "", pythonWithKafka, append([]string{"testdata/confluent_client.py"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("confluent_client.py %v printed %q: %v", args, out, err)
	}
}

// TestConfluentRecordErrors: a batch to a compacted topic with records
// without a key is refused naming them, so librdkafka 2.4+ fails those
// (INVALID_RECORD) and reports the others as refused for them
// (_INVALID_DIFFERENT_RECORD, the application may resend them; Debian's
// 2.0 fails them all, engine's TestProduceRecordErrors checks the answer
// itself); sent one per batch, only the keyless ones fail. Nothing
// refused reaches the log.
func TestConfluentRecordErrors(t *testing.T) {
	needConfluentKafka(t)
	b := startBroker(t)
	compact := "compact"
	b.createTopic("rec-errs", 1, map[string]*string{"cleanup.policy": &compact})
	var got struct {
		Counts      map[string]int `json:"counts"`
		Undelivered int            `json:"undelivered"`
		Librdkafka  int            `json:"librdkafka"` // 0xMMmmrrxx
	}
	confluentClient(t, &got, "recorderrors", b.addr, "rec-errs", "1")
	want := map[string]int{"INVALID_RECORD": 4, "_INVALID_DIFFERENT_RECORD": 16}
	if got.Librdkafka < 0x02040000 {
		// Before 2.4 librdkafka fails a refused batch whole.
		want = map[string]int{"INVALID_RECORD": 20}
	}
	if !reflect.DeepEqual(got.Counts, want) || got.Undelivered != 0 {
		t.Fatalf("one batch (librdkafka %#x): delivery reports %v (%d undelivered), want %v", got.Librdkafka, got.Counts, got.Undelivered, want)
	}
	confluentClient(t, &got, "recorderrors", b.addr, "rec-errs", "0")
	if want := map[string]int{"INVALID_RECORD": 4, "OK": 16}; !reflect.DeepEqual(got.Counts, want) || got.Undelivered != 0 {
		t.Fatalf("one record per batch: delivery reports %v (%d undelivered), want %v", got.Counts, got.Undelivered, want)
	}
	c := b.client(kgo.ConsumeTopics("rec-errs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var keys []string
	for len(keys) < 16 {
		fs := c.PollFetches(timeout(t, 10*time.Second))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Key == nil {
				t.Fatalf("a keyless record reached the compacted topic at offset %d", r.Offset)
			}
			keys = append(keys, string(r.Key))
		})
	}
	if end := b.endOffsets("rec-errs")[0]; end != 16 {
		t.Fatalf("log end %d, want 16 (the keyed records sent one per batch)", end)
	}
}

// TestConfluentAsyncCommits: 200 commits in flight at once from one
// consumer, each of the next offset; the group keeps the last one. They
// used to complete in any order, and an earlier one could be kept.
func TestConfluentAsyncCommits(t *testing.T) {
	needConfluentKafka(t)
	b := startBroker(t)
	b.createTopic("async-commits", 1, nil)
	const n = 200
	produceInput(t, b, "async-commits", 1, n)
	var got struct {
		Read, Callbacks int
		Errors          []string
		HighestAcked    int64 `json:"highest_acked"`
		Committed       int64
	}
	for round := range 3 {
		group := fmt.Sprintf("async-%d", round)
		confluentClient(t, &got, "asynccommits", b.addr, "async-commits", group, fmt.Sprint(n))
		if got.Read != n || got.Callbacks != n || len(got.Errors) != 0 || got.HighestAcked != n {
			t.Fatalf("round %d: %+v, want %d read, %d commit callbacks, no errors, %d acknowledged", round, got, n, n, n)
		}
		if got.Committed != n {
			t.Fatalf("round %d: committed offset read back %d, want %d (every commit acknowledged)", round, got.Committed, n)
		}
		if offs := b.groupOffsets(group, "async-commits"); offs[0] != n {
			t.Fatalf("round %d: the group's offset is %d, want %d", round, offs[0], n)
		}
	}
}
