package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeFromStart reads partition 0 from offset 0 until the record at
// end-1, which the test keeps in the active segment.
func consumeFromStart(t *testing.T, tb *testBroker, topic string, end int64) []*kgo.Record {
	t.Helper()
	cl := tb.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) == 0 || out[len(out)-1].Offset < end-1 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// A compacted topic keeps the latest record per key; a consumer from
// offset 0 sees each key once, at its latest value, offsets unchanged;
// tombstones go after delete.retention.ms.
func TestCompactedTopicKeepsLatestPerKey(t *testing.T) {
	tb := startBroker(t, t.TempDir(), nil)
	adm := kadm.NewClient(tb.client())
	topic := "table"
	ret := "2000" // generous: the first pass must come within it on a loaded machine
	cfgs := map[string]*string{"cleanup.policy": ptr("compact"), "segment.bytes": ptr("4096"),
		"delete.retention.ms": &ret, "min.cleanable.dirty.ratio": ptr("0.01")}
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, cfgs, topic); err != nil {
		t.Fatal(err)
	}
	cl := tb.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()))
	latestVal := map[string]string{}
	latestOff := map[string]int64{}
	var rs []*kgo.Record
	for i := 0; i < 2000; i++ {
		k := fmt.Sprintf("key-%02d", i%50)
		v := fmt.Sprintf("value-%d", i)
		r := &kgo.Record{Key: []byte(k), Value: []byte(v)}
		if i%50 == 7 && i >= 1900 {
			r.Value = nil // key-07 is deleted at the end
		}
		rs = append(rs, r)
	}
	res := cl.ProduceSync(testCtx(t), rs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		latestVal[string(r.Record.Key)] = string(r.Record.Value)
		latestOff[string(r.Record.Key)] = r.Record.Offset
	}
	// A record the active segment holds stays: roll past everything. Each
	// filler is a batch of its own bigger than segment.bytes even with lz4
	// (random bytes), so each rolls the segment: 40 compressible records
	// in one batch did not always, as the batch before them varies in size.
	for i := 0; i < 3; i++ {
		v := make([]byte, 5000)
		rand.Read(v)
		r := &kgo.Record{Key: []byte(fmt.Sprintf("filler-%d", i)), Value: v}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := tb.b.partition(topic, 0)
	end := p.log.EndOffset()
	syncAll(t, tb)
	tb.b.store.Compact()

	got := consumeFromStart(t, tb, topic, end)
	seen := map[string]int{}
	last := int64(-1)
	for _, r := range got {
		if r.Offset <= last {
			t.Fatalf("offset %d after %d", r.Offset, last)
		}
		last = r.Offset
		k := string(r.Key)
		if strings.HasPrefix(k, "filler") {
			continue
		}
		seen[k]++
		if r.Offset != latestOff[k] || string(r.Value) != latestVal[k] {
			t.Fatalf("%s at %d = %q, latest is %q at %d", k, r.Offset, r.Value, latestVal[k], latestOff[k])
		}
	}
	if len(seen) != 50 {
		t.Fatalf("%d keys after compaction, want 50 (tombstone of key-07 kept while young)", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", k, n)
		}
	}
	if got[len(got)-1].Offset != end-1 {
		t.Fatalf("last offset %d, want %d", got[len(got)-1].Offset, end-1)
	}
	// After delete.retention.ms, the tombstone itself goes.
	time.Sleep(2100 * time.Millisecond)
	tb.b.store.Compact()
	for _, r := range consumeFromStart(t, tb, topic, end) {
		if string(r.Key) == "key-07" {
			t.Fatalf("key-07 still there after its tombstone expired: %+v", r)
		}
	}
}

func ptr(s string) *string { return &s }

// syncAll waits until every partition's appends are fsynced and sealed
// segments have their indexes.
func syncAll(t *testing.T, tb *testBroker) {
	t.Helper()
	for _, tp := range tb.b.topicList() {
		for _, p := range tp.parts() {
			for i := 0; i < 2; i++ {
				done := make(chan error, 1)
				p.log.Sync(func(err error) { done <- err })
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// 100,000 offset commits leave __consumer_offsets a few segments long,
// and the latest commits survive a restart.
func TestOffsetsTopicStaysBounded(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) {
		fastGroups(c)
		c.OffsetsPartitions = 4
		c.OffsetsSegmentBytes = 64 << 10
		c.CleanerBackoffMs = 100
	}
	tb := startBroker(t, dir, mod)
	adm := kadm.NewClient(tb.client())
	if _, err := adm.CreateTopic(testCtx(t), 100, 1, nil, "tracked"); err != nil {
		t.Fatal(err)
	}
	const rounds, parts = 1000, 100
	for r := 1; r <= rounds; r++ {
		var os kadm.Offsets
		for p := int32(0); p < parts; p++ {
			os.AddOffset("tracked", p, int64(r*1000)+int64(p), -1)
		}
		resp, err := adm.CommitOffsets(testCtx(t), "busy-group", os)
		if err != nil || resp.Error() != nil {
			t.Fatalf("commit round %d: %v %v", r, err, resp.Error())
		}
	}
	syncAll(t, tb)
	tb.b.store.Compact()
	var size int64
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(path, offsetsTopic) && strings.HasSuffix(path, ".log") {
			size += info.Size()
		}
		return nil
	})
	// 100,000 commit records are about 10 MB; compaction leaves the 100
	// latest plus the uncleaned active segment of each partition.
	if size > 4*(64<<10)+(1<<20) {
		t.Fatalf("__consumer_offsets holds %d bytes after 100,000 commits", size)
	}
	tb.stop()
	tb = startBroker(t, dir, mod)
	adm = kadm.NewClient(tb.client())
	var got kadm.OffsetResponses
	var err error
	waitFor(t, "groups loaded", 10*time.Second, func() bool {
		got, err = adm.FetchOffsets(testCtx(t), "busy-group")
		return err == nil
	})
	for p := int32(0); p < parts; p++ {
		o, ok := got.Lookup("tracked", p)
		if !ok || o.At != int64(rounds*1000)+int64(p) {
			t.Fatalf("partition %d after restart: %+v", p, o)
		}
	}
}

// A consumer reading from offset 0 while records are produced and the
// cleaner runs sees offsets only increase and ends with every key's
// latest value.
func TestCompactionWhileConsuming(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.CleanerBackoffMs = 20 })
	adm := kadm.NewClient(tb.client())
	topic := "live-table"
	cfgs := map[string]*string{"cleanup.policy": ptr("compact"), "segment.bytes": ptr("2048"), "min.cleanable.dirty.ratio": ptr("0.01")}
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, cfgs, topic); err != nil {
		t.Fatal(err)
	}
	prod := tb.client(kgo.DefaultProduceTopic(topic))
	latest := map[string]string{}
	done := make(chan struct{})
	var end int64
	go func() {
		defer close(done)
		for i := 0; i < 4000; i += 100 {
			var rs []*kgo.Record
			for j := i; j < i+100; j++ {
				rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("k%02d", j%40)), Value: []byte(fmt.Sprint(j))})
			}
			res := prod.ProduceSync(context.Background(), rs...)
			if err := res.FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			for _, r := range res {
				latest[string(r.Record.Key)] = string(r.Record.Value)
				end = r.Record.Offset + 1
			}
		}
	}()
	cl := tb.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	seen := map[string]string{}
	last := int64(-1)
	ctx := testCtx(t)
	for ctx.Err() == nil {
		select {
		case <-done:
			if last >= end-1 {
				for k, v := range latest {
					if seen[k] != v {
						t.Fatalf("%s: consumer ended with %q, latest is %q", k, seen[k], v)
					}
				}
				return
			}
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollRecords(pctx, 500)
		cancel()
		if err := fs.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			p := tb.b.partition(topic, 0)
			sl, rerr := p.log.Read(last+1, p.log.EndOffset(), 1<<20)
			t.Fatalf("fetch: %v (last %d, log [%d, %d), read at %d: %+v %v)", err, last, p.log.StartOffset(), p.log.EndOffset(), last+1, sl, rerr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			seen[string(r.Key)] = string(r.Value)
		})
	}
	t.Fatalf("consumer at offset %d when the test timed out", last)
}
