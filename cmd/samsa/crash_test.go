package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ackedRecord is where the broker said a record was stored.
type ackedRecord struct {
	partition int32
	offset    int64
}

// TestCrashUnderLoadLosesNothingAcknowledged SIGKILLs the broker while
// three idempotent acks=all producers write to four partitions (the last
// at about 15 MiB/s to the last partition alone, which the disk's bulk
// writer lane then writes, while the other partitions' small batches go
// to the small lane: /metrics must show both lanes wrote), restarts it on
// the same data directory and checks that every acknowledged record is at
// its acknowledged offset with its value, with dense offsets and no
// record stored twice; over several cycles, so earlier cycles' records
// must survive later crashes and recoveries too.
func TestCrashUnderLoadLosesNothingAcknowledged(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	if testing.Short() {
		t.Skip("slow: SIGKILL cycles under load")
	}
	const (
		topic      = "crash"
		partitions = 4
		producers  = 3
		cycles     = 4
	)
	httpAddr := freeAddr(t)
	cfg := writeConfig(t, t.TempDir(), "[admin]\n# HTTP admin", "[admin]\nlisten = \""+httpAddr+"\"\n# HTTP admin", "\nlisten = \"\"\n\n[topic_defaults]", "\n\n[topic_defaults]")
	b := &broker{t: t, addr: freeAddr(t), dataDir: t.TempDir(), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	b.createTopic(topic, partitions, nil)
	// The bulk producer's values end in pad; acked and the checks keep
	// them without it.
	pad := "-" + strings.Repeat("x", 800)
	acked := map[ackedRecord]string{}
	var laneWrites [2]float64 // small, bulk: summed over the cycles' scrapes
	start := time.Now()
	for cycle := range cycles {
		var (
			mu       sync.Mutex
			wg       sync.WaitGroup
			pending  sync.WaitGroup // promises not yet called
			failures atomic.Int64
			cycleAck atomic.Int64
		)
		ctx, cancel := context.WithCancel(context.Background())
		var clients []*kgo.Client
		for prod := range producers {
			opts := []kgo.Opt{
				kgo.SeedBrokers(b.addr),
				kgo.DefaultProduceTopic(topic),
				kgo.RequiredAcks(kgo.AllISRAcks()), // the default, stated: this test is about acks=all
				kgo.ProducerLinger(2 * time.Millisecond),
				kgo.MaxBufferedRecords(5000),
			}
			bulk := prod == producers-1
			if bulk {
				// Its values of about 830 bytes, uncompressed, all to
				// the last partition.
				opts = append(opts, kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()),
					kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			c, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// About 20k records/s per producer: load enough to be
				// mid-write at the kill, small enough to check quickly.
				for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
					if i%20 == 19 {
						time.Sleep(time.Millisecond)
					}
					v := fmt.Sprintf("cycle%d-producer%d-%07d", cycle, prod, i)
					rec := &kgo.Record{Key: []byte(fmt.Sprint(i % 23)), Value: []byte(v)}
					if bulk {
						rec.Value, rec.Partition = []byte(v+pad), partitions-1
					}
					pending.Add(1)
					c.Produce(ctx, rec, func(r *kgo.Record, err error) {
						defer pending.Done()
						if err != nil {
							failures.Add(1)
							return
						}
						cycleAck.Add(1)
						mu.Lock()
						acked[ackedRecord{r.Partition, r.Offset}] = v
						mu.Unlock()
					})
				}
			}()
		}
		time.Sleep(time.Duration(500+rand.IntN(1000)) * time.Millisecond)
		fams, serr := scrapeErr(httpAddr)
		for i, lane := range []string{"small", "bulk"} {
			v, _ := metricValue(fams, "samsa_produce_stage_seconds", map[string]string{"stage": "write", "lane": lane})
			laneWrites[i] += v
		}
		b.kill()
		cancel()
		wg.Wait()
		for _, c := range clients {
			c.Close() // fails whatever is still buffered: never acknowledged
		}
		if serr != nil {
			t.Fatalf("cycle %d: %v", cycle, serr)
		}
		if !waitGroupTimeout(&pending, 20*time.Second) {
			t.Fatalf("cycle %d: produce promises still pending 20s after the clients closed", cycle)
		}
		if cycleAck.Load() == 0 {
			t.Fatalf("cycle %d: nothing acknowledged before the kill", cycle)
		}

		b.restart()
		got := b.consumeAll(topic) // fails on holes or repeats
		stored := map[ackedRecord]string{}
		values := map[string]ackedRecord{}
		for p, rs := range got {
			for _, r := range rs {
				at := ackedRecord{p, r.Offset}
				var c, pr, i int
				if n, _ := fmt.Sscanf(string(r.Value), "cycle%d-producer%d-%d", &c, &pr, &i); n != 3 || c > cycle || pr >= producers {
					t.Fatalf("cycle %d: %d/%d holds %q, which no producer sent", cycle, p, r.Offset, r.Value)
				}
				v := string(r.Value)
				if pr == producers-1 {
					if !strings.HasSuffix(v, pad) || p != partitions-1 {
						t.Fatalf("cycle %d: %d/%d holds %.40q..., not as the bulk producer sent it", cycle, p, r.Offset, r.Value)
					}
					v = strings.TrimSuffix(v, pad)
				}
				if prev, dup := values[v]; dup {
					t.Fatalf("cycle %d: %q stored twice, at %v and %v", cycle, v, prev, at)
				}
				values[v] = at
				stored[at] = v
			}
		}
		lost := 0
		for at, v := range acked {
			if s, ok := stored[at]; !ok || s != v {
				if lost < 10 {
					t.Errorf("cycle %d: acknowledged %q at %d/%d, found %q (present: %v)", cycle, v, at.partition, at.offset, s, ok)
				}
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("cycle %d: %d of %d acknowledged records lost or changed", cycle, lost, len(acked))
		}
		t.Logf("cycle %d: %d acknowledged (%d failed by the kill), all %d acknowledged so far present among %d stored",
			cycle, cycleAck.Load(), failures.Load(), len(acked), len(stored))
		if time.Since(start) > 60*time.Second {
			t.Logf("stopping after %d cycles: over 60s", cycle+1)
			break
		}
	}
	t.Logf("appends written before the kills: %.0f by the small lane, %.0f by the bulk lane", laneWrites[0], laneWrites[1])
	if laneWrites[0] == 0 || laneWrites[1] == 0 {
		t.Fatalf("appends written before the kills: %.0f by the small lane, %.0f by the bulk lane; want both lanes to have written under the load", laneWrites[0], laneWrites[1])
	}
}

// waitGroupTimeout waits for wg, at most d.
func waitGroupTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
