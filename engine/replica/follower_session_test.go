package replica

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"
)

// logsCatalog is a Catalog of several logs (its Logs order).
type logsCatalog struct {
	oneLog
	logs *[]*Log
}

func (c logsCatalog) Logs() []*Log { return *c.logs }

func (c logsCatalog) LogByID(id [16]byte, idx int32) *Log {
	for _, l := range *c.logs {
		if l.ID == id && l.Index == idx {
			return l
		}
	}
	return nil
}

// standbyWithLogs is a standby's Pair whose catalog holds a log per id,
// partition i of ids[i], on a fresh store; the catalog's slice is returned
// for the test to change.
func standbyWithLogs(t *testing.T, ids ...[16]byte) (*Pair, *[]*Log) {
	t.Helper()
	store, err := segment.OpenStore(segment.StoreOptions{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logs := new([]*Log)
	p := NewPair(Config{Role: RoleStandby, PeerID: 1, LagTimeMaxMs: 1000, MinInsyncReplicas: 1}, 2,
		logsCatalog{logs: logs}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i, id := range ids {
		seg, err := store.Open(fmt.Sprintf("l-%d", i), segment.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		l := &Log{}
		l.Init(p, "t", id, int32(i), seg)
		*logs = append(*logs, l)
	}
	return p, logs
}

// listed is what a fetch request lists: partition -> fetch offset, and
// the forgotten partitions.
func listed(r *kmsg.FetchRequest) (map[int32]int64, []int32) {
	got := map[int32]int64{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			got[p.Partition] = p.FetchOffset
		}
	}
	var forgotten []int32
	for _, t := range r.ForgottenTopics {
		forgotten = append(forgotten, t.Partitions...)
	}
	return got, forgotten
}

// The standby's fetch session: a full fetch asking for a session, then
// fetches listing only the logs that moved and forgetting those gone; a
// primary that keeps no session, or loses it, gets full fetches again.
func TestFetchRequestSession(t *testing.T) {
	p, logsp := standbyWithLogs(t, [16]byte{1}, [16]byte{1}, [16]byte{1})
	logs := *logsp
	var s fetchSession

	r := p.fetchRequest(&s)
	got, forgotten := listed(r)
	if r.SessionID != 0 || r.SessionEpoch != 0 || len(got) != 3 || len(forgotten) != 0 {
		t.Fatalf("first fetch: session %d epoch %d, listed %v, forgotten %v; want a full fetch opening a session", r.SessionID, r.SessionEpoch, got, forgotten)
	}
	s.answered(&kmsg.FetchResponse{SessionID: 77})

	r = p.fetchRequest(&s)
	got, forgotten = listed(r)
	if r.SessionID != 77 || r.SessionEpoch != 1 || len(got) != 0 || len(forgotten) != 0 {
		t.Fatalf("nothing moved: session %d epoch %d, listed %v, forgotten %v; want an empty incremental fetch at epoch 1", r.SessionID, r.SessionEpoch, got, forgotten)
	}
	s.answered(&kmsg.FetchResponse{SessionID: 77})

	// A log whose end moved is listed at its new end; one gone is forgotten.
	b := replicaBatch(0, "x")
	h, err := segment.ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if _, err := logs[1].Seg.Append(b, &h, false, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	*logsp = logs[:2]
	r = p.fetchRequest(&s)
	got, forgotten = listed(r)
	if r.SessionEpoch != 2 || len(got) != 1 || got[1] != 1 || len(forgotten) != 1 || forgotten[0] != 2 {
		t.Fatalf("log 1 moved, log 2 gone: epoch %d, listed %v, forgotten %v", r.SessionEpoch, got, forgotten)
	}
	s.answered(&kmsg.FetchResponse{SessionID: 77})
	if r = p.fetchRequest(&s); len(r.Topics) != 0 || len(r.ForgottenTopics) != 0 || r.SessionEpoch != 3 {
		t.Fatalf("after that, nothing moved: epoch %d, %d topics listed, %d forgotten", r.SessionEpoch, len(r.Topics), len(r.ForgottenTopics))
	}

	// The primary lost the session (the follower resets on its error
	// code): the next fetch is full again.
	s.reset()
	r = p.fetchRequest(&s)
	if got, _ = listed(r); r.SessionID != 0 || r.SessionEpoch != 0 || len(got) != 2 {
		t.Fatalf("after a reset: session %d epoch %d, listed %v; want a full fetch", r.SessionID, r.SessionEpoch, got)
	}
	// A primary that keeps no session answers session id 0: full
	// fetches go on, each asking again.
	s.answered(&kmsg.FetchResponse{SessionID: 0})
	r = p.fetchRequest(&s)
	if got, _ = listed(r); r.SessionID != 0 || r.SessionEpoch != 0 || len(got) != 2 {
		t.Fatalf("no session kept: session %d epoch %d, listed %v; want a full fetch", r.SessionID, r.SessionEpoch, got)
	}
	// An incremental answer under another session id: the primary closed
	// ours.
	s.answered(&kmsg.FetchResponse{SessionID: 5})
	p.fetchRequest(&s)
	s.answered(&kmsg.FetchResponse{SessionID: 6})
	if r = p.fetchRequest(&s); r.SessionID != 0 || r.SessionEpoch != 0 {
		t.Fatalf("session closed by the primary: session %d epoch %d; want a full fetch", r.SessionID, r.SessionEpoch)
	}
	// The epoch wraps to 1, as Kafka's.
	if nextSessionEpoch(0x7fffffff) != 1 {
		t.Fatal("the session epoch does not wrap to 1")
	}
}

// A log whose answer is an error backs off (Kafka's
// replica.fetch.backoff.ms, per partition): it is forgotten in the
// session, the others go on without a pause, and it is listed again once
// its time is up; the metadata log never backs off, and an answer where it
// fails too pauses the follower.
func TestFetchBackoffPerLog(t *testing.T) {
	p, logsp := standbyWithLogs(t, MetadataID, [16]byte{1}, [16]byte{1})
	logs := *logsp
	var s fetchSession
	p.fetchRequest(&s)
	s.answered(&kmsg.FetchResponse{SessionID: 9})

	answer := func(codes map[int32]int16) *kmsg.FetchResponse {
		resp := &kmsg.FetchResponse{SessionID: 9}
		for _, l := range logs {
			code, ok := codes[l.Index]
			if !ok {
				continue
			}
			rt := kmsg.FetchResponseTopic{TopicID: l.ID}
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode = l.Index, code
			rt.Partitions = append(rt.Partitions, rp)
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	// Log 1 alone fails: no pause, and it is forgotten.
	progress, err := p.applyFetch(answer(map[int32]int16{1: kerr.KafkaStorageError.Code}), &s)
	if err != nil || !progress {
		t.Fatalf("one user log failing: progress %v, err %v; want progress", progress, err)
	}
	r := p.fetchRequest(&s)
	if got, forgotten := listed(r); len(got) != 0 || len(forgotten) != 1 || forgotten[0] != 1 {
		t.Fatalf("log 1 backing off: listed %v, forgotten %v; want log 1 forgotten", got, forgotten)
	}
	s.answered(&kmsg.FetchResponse{SessionID: 9})
	// Its time up, it is listed again.
	s.backoff[sessionKey{[16]byte{1}, 1}] = time.Now().Add(-time.Millisecond)
	r = p.fetchRequest(&s)
	if got, _ := listed(r); len(got) != 1 || got[1] != 0 {
		t.Fatalf("log 1 back: listed %v; want log 1 at 0", got)
	}
	s.answered(&kmsg.FetchResponse{SessionID: 9})
	// Every log failing, the metadata log among them (the primary is no
	// longer one): a pause, and the metadata log stays in.
	progress, err = p.applyFetch(answer(map[int32]int16{0: kerr.NotLeaderForPartition.Code, 1: kerr.NotLeaderForPartition.Code, 2: kerr.NotLeaderForPartition.Code}), &s)
	if err != nil || progress {
		t.Fatalf("every log failing: progress %v, err %v; want a pause", progress, err)
	}
	if _, ok := s.backoff[sessionKey{MetadataID, 0}]; ok {
		t.Fatal("the metadata log backed off")
	}
}
