package tools_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type acked struct {
	partition int32
	offset    int64
}

// consumeAllPartitions reads every record of topic up to its end offsets.
func consumeAllPartitions(t *testing.T, p *proc, topic string) map[acked]string {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	adm := kadm.NewClient(p.client())
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset %d: %v", o.Partition, o.Err)
		}
		want += int(o.Offset)
		parts[o.Partition] = kgo.NewOffset().AtStart()
	})
	c := p.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	got := map[acked]string{}
	next := map[int32]int64{}
	for len(got) < want {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(got), want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d (hole or repeat)", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition]++
			got[acked{r.Partition, r.Offset}] = string(r.Value)
		})
	}
	return got
}

// TestCrashLosesNothingAcknowledged SIGKILLs the broker under an acks=all
// load from several producers, restarts it, and checks that every
// acknowledged record is there at its offset, for several cycles on the
// same data.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, dir, addr)
	adm := kadm.NewClient(p.client())
	if r, err := adm.CreateTopic(ctxFor(t, 10*time.Second), 4, 1, nil, "crash"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	all := map[acked]string{}
	const cycles = 4
	for cycle := range cycles {
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var clients []*kgo.Client
		for prod := range 3 {
			c, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("crash"),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
				kgo.RecordRetries(3), kgo.RetryTimeout(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					v := fmt.Sprintf("c%d-p%d-%d", cycle, prod, i)
					c.Produce(ctxFor(t, 30*time.Second), &kgo.Record{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(v)}, func(r *kgo.Record, err error) {
						if err == nil {
							mu.Lock()
							all[acked{r.Partition, r.Offset}] = v
							mu.Unlock()
						}
					})
				}
			}()
		}
		time.Sleep(time.Duration(500+rand.IntN(1000)) * time.Millisecond)
		p.kill()
		close(stop)
		wg.Wait()
		for _, c := range clients {
			c.Close() // fails what is still buffered: not acknowledged
		}
		mu.Lock()
		n := len(all)
		mu.Unlock()
		if n == 0 {
			t.Fatalf("cycle %d: nothing was acknowledged", cycle)
		}
		p = startProc(t, dir, addr)
		got := consumeAllPartitions(t, p, "crash")
		mu.Lock()
		for k, v := range all {
			if got[k] != v {
				t.Fatalf("cycle %d: acknowledged %q at partition %d offset %d, found %q", cycle, v, k.partition, k.offset, got[k])
			}
		}
		mu.Unlock()
		seen := map[string]bool{}
		for _, v := range got {
			if seen[v] {
				t.Fatalf("cycle %d: %q stored twice", cycle, v)
			}
			seen[v] = true
		}
		t.Logf("cycle %d: %d acknowledged records all present (%d stored)", cycle, n, len(got))
	}
}

// TestTornTail damages the end of the active segment; the broker truncates
// to the last valid batch and carries on from there.
func TestTornTail(t *testing.T) {
	for _, damage := range []string{"truncate", "garbage", "flip"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			p := startProc(t, dir, addr)
			c := p.client(kgo.DefaultProduceTopic("torn"), kgo.AllowAutoTopicCreation())
			for i := range 20 {
				if err := c.ProduceSync(ctxFor(t, 10*time.Second), &kgo.Record{Value: []byte(fmt.Sprintf("record-%02d", i))}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
			p.kill()
			seg := filepath.Join(dir, "torn-0", "00000000000000000000.log")
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "truncate":
				data = data[:len(data)-7]
			case "garbage":
				data = append(data, []byte("\x00\x00\x00\x00\x00\x00\x00\x14\x00\x00\x01\x00garbage garbage")...)
			case "flip":
				data[len(data)-3] ^= 0x55
			}
			if err := os.WriteFile(seg, data, 0o644); err != nil {
				t.Fatal(err)
			}
			p = startProc(t, dir, addr)
			c = p.client(kgo.DefaultProduceTopic("torn"))
			want := 19 // the damaged last batch is gone
			if damage == "garbage" {
				want = 20 // only bytes after the last batch were bad
			}
			got := consumeAllPartitions(t, p, "torn")
			if len(got) != want {
				t.Fatalf("%d records after recovery, want %d", len(got), want)
			}
			for i := range want {
				if v := got[acked{0, int64(i)}]; v != fmt.Sprintf("record-%02d", i) {
					t.Fatalf("offset %d = %q", i, v)
				}
			}
			if err := c.ProduceSync(ctxFor(t, 10*time.Second), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got = consumeAllPartitions(t, p, "torn")
			if got[acked{0, int64(want)}] != "after" {
				t.Fatalf("append after recovery not at offset %d: %v", want, got)
			}
		})
	}
}
