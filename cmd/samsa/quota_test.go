package main

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// throttleHook sums the throttle times the broker reports, and counts
// those it applies after the response (KIP-219: the client holds off by
// itself; the broker muted the connection) and before it (the response
// itself was held back).
type throttleHook struct{ ms, after, before atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, afterResp bool) {
	h.ms.Add(d.Milliseconds())
	if afterResp {
		h.after.Add(1)
	} else {
		h.before.Add(1)
	}
}

// TestQuotas: a user's producer_byte_rate and consumer_byte_rate, set
// with AlterClientQuotas and read back with DescribeClientQuotas, hold
// its producer and consumer near the rate (with throttle_time_ms in the
// responses), while another principal keeps its throughput; the quota
// lives in the metadata log.
func TestQuotas(t *testing.T) {
	t.Parallel() // its own broker and ports; mostly waits, so it overlaps the other long one
	sb := startSASLBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// No compression: quotas count the bytes on the wire.
	admin := sb.as(t, "admin", "admin-secret", kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "q"); err != nil {
		t.Fatal(err)
	}
	const rate = 256 << 10 // bytes/s
	alice := "alice"
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}, {Key: "consumer_byte_rate", Value: rate}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("alter quotas: %v %s", r.Err, r.ErrMessage)
		}
	}
	desc, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: &alice}})
	if err != nil || len(desc) != 1 || len(desc[0].Values) != 2 {
		t.Fatalf("describe quotas: %v %+v", err, desc)
	}

	// produceFor produces 10 KiB records for d and returns bytes/s.
	value := make([]byte, 10<<10)
	produceFor := func(cl *kgo.Client, d time.Duration) float64 {
		var acked atomic.Int64
		start := time.Now()
		for time.Since(start) < d {
			cl.Produce(ctx, &kgo.Record{Topic: "q", Value: value}, func(r *kgo.Record, err error) {
				if err == nil {
					acked.Add(int64(len(r.Value)))
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return float64(acked.Load()) / time.Since(start).Seconds()
	}
	hook := &throttleHook{}
	ac := sb.client(t, sb.saslAddr, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
		kgo.WithHooks(hook), kgo.MaxBufferedBytes(1<<20), kgo.ProducerBatchMaxBytes(64<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	got := produceFor(ac, 4*time.Second)
	other := produceFor(admin, 1*time.Second)
	t.Logf("alice produced %.0f KiB/s under a %d KiB/s quota (throttled %d ms); admin %.0f KiB/s", got/1024, rate>>10, hook.ms.Load(), other/1024)
	if got > 2*rate {
		t.Fatalf("alice produced %.0f B/s, over twice her quota of %d B/s", got, rate)
	}
	if hook.ms.Load() == 0 {
		t.Fatal("no throttle_time_ms reached alice's client")
	}
	if hook.after.Load() == 0 || hook.before.Load() != 0 {
		t.Fatalf("Produce v6+ throttles after the response (KIP-219): %d throttles after, %d before", hook.after.Load(), hook.before.Load())
	}
	if other < 4*rate {
		t.Fatalf("admin (no quota) produced only %.0f B/s while alice was throttled", other)
	}

	// acks=0 has no response to carry a throttle: the broker mutes the
	// connection instead, so what lands stays near the rate although the
	// client never hears of the quota.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "q0"); err != nil {
		t.Fatal(err)
	}
	a0 := sb.client(t, sb.saslAddr, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
		kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("q0"),
		kgo.MaxBufferedBytes(1<<20), kgo.ProducerBatchMaxBytes(64<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	start0 := time.Now()
	for time.Since(start0) < 4*time.Second {
		a0.Produce(ctx, &kgo.Record{Value: value}, nil)
	}
	// What lands while the client sends as fast as it can: the rest
	// waits in the muted connection's queue (in Kafka, in the socket).
	ends, err := adm.ListEndOffsets(ctx, "q0")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("q0", 0)
	took := time.Since(start0)
	a0rate := float64(end.Offset*int64(len(value))) / took.Seconds()
	t.Logf("alice's acks=0 producer: %d records landed in %v, %.0f KiB/s, under a %d KiB/s quota", end.Offset, took.Round(time.Millisecond), a0rate/1024, rate>>10)
	if end.Offset == 0 || a0rate > 2*rate {
		t.Fatalf("acks=0 over the quota: %d records landed, %.0f B/s, quota %d B/s", end.Offset, a0rate, rate)
	}
	a0.Close()
	// What the muted connection still holds lands no faster than the
	// quota after the client has gone. If the broker read it into memory
	// (the event loops read on), the close is seen and the rest dropped.
	// If the connection moved to a transport that stops reading (it got
	// 8 MiB ahead), the rest waits in the socket's buffers, TCP pushing
	// back, and lands at the quota's pace, as from Kafka's muted channel,
	// which is not read either until the mute ends.
	endAt := func() int64 {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, "q0")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup("q0", 0)
		return o.Offset
	}
	time.Sleep(500 * time.Millisecond)
	e1, t1 := endAt(), time.Now()
	time.Sleep(2 * time.Second)
	e2 := endAt()
	if after := float64((e2-e1)*int64(len(value))) / time.Since(t1).Seconds(); after > 2*rate {
		t.Fatalf("the closed acks=0 client's queue lands at %.0f B/s (%d records, then %d), over its %d B/s quota", after, e1, e2, rate)
	}
	if other := produceFor(admin, time.Second); other < 4*rate {
		t.Fatalf("admin (no quota) produced only %.0f B/s after alice's acks=0 flood", other)
	}

	// Consumer: read what is there from the start as alice.
	hook.ms.Store(0)
	hook.after.Store(0)
	cc := sb.client(t, sb.saslAddr, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), kgo.WithHooks(hook),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"q": {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxBytes(256<<10))
	start := time.Now()
	var read int64
	for time.Since(start) < 3*time.Second {
		fs := cc.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { read += int64(len(r.Value)) })
	}
	crate := float64(read) / time.Since(start).Seconds()
	t.Logf("alice consumed %.0f KiB/s under a %d KiB/s quota (throttled %d ms)", crate/1024, rate>>10, hook.ms.Load())
	if crate > 2*rate || hook.ms.Load() == 0 || hook.after.Load() == 0 {
		t.Fatalf("consumer: %.0f B/s, throttled %d ms (%d after the response), quota %d B/s", crate, hook.ms.Load(), hook.after.Load(), rate)
	}

	// The quota is in the metadata log: still there after a restart.
	sb.kill()
	sb.restart()
	sb.waitListeners()
	admin2 := sb.as(t, "admin", "admin-secret")
	desc, err = kadm.NewClient(admin2).DescribeClientQuotas(ctx, false, nil)
	if err != nil || len(desc) != 1 || len(desc[0].Entity) != 1 || desc[0].Entity[0].Type != "user" ||
		desc[0].Entity[0].Name == nil || *desc[0].Entity[0].Name != "alice" || len(desc[0].Values) != 2 {
		t.Fatalf("quotas after a restart: %v %+v", err, desc)
	}
}

// TestRequestPercentage: a user over request_percentage has its requests
// held back: in the same time it gets far fewer handled than a user
// without the quota, and its answers say for how long (throttle_time_ms,
// as Kafka's sendResponseMaybeThrottle), so a KIP-219 client holds off by
// itself.
func TestRequestPercentage(t *testing.T) {
	sb := startSASLBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(sb.as(t, "admin", "admin-secret"))
	alice := "alice"
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 0.5}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, res)
	}
	count := func(cl *kgo.Client) (n, throttled int) {
		for start := time.Now(); time.Since(start) < 2*time.Second; n++ {
			req := kmsg.NewPtrMetadataRequest()
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ThrottleMillis > 0 {
				throttled++
			}
		}
		return n, throttled
	}
	limited, said := count(sb.as(t, "alice", "alice-secret"))
	free, saidFree := count(sb.as(t, "admin", "admin-secret"))
	t.Logf("in 2 s: %d Metadata requests under request_percentage 0.5 (%d answers with a throttle), %d without (%d)", limited, said, free, saidFree)
	if limited*2 > free {
		t.Fatalf("request_percentage held nothing back: %d requests against %d", limited, free)
	}
	if said == 0 || saidFree != 0 {
		t.Fatalf("throttle_time_ms: %d of alice's %d answers say she is throttled, %d of admin's", said, limited, saidFree)
	}
}

// TestIPConnectionQuota: an ip entity's connection_creation_rate bounds
// new connections from that address (the rest are closed at once), not
// from others; DescribeClientQuotas lists it.
func TestIPConnectionQuota(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := b.admin()
	ip := "127.0.0.3"
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &ip}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 2}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, res)
	}
	desc, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "ip", MatchName: &ip}})
	if err != nil || len(desc) != 1 || len(desc[0].Values) != 1 || desc[0].Values[0].Value != 2 {
		t.Fatalf("describe: %v %+v", err, desc)
	}
	_, port, _ := net.SplitHostPort(b.addr)
	served := func(from string) int {
		n := 0
		for range 10 {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.Dial("tcp", "127.0.0.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			// ApiVersions v0: a served connection answers.
			_, _ = c.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 8)); err == nil {
				n++
			}
			c.Close()
		}
		return n
	}
	if n := served(ip); n > 4 {
		t.Fatalf("%d of 10 quick connections from %s served under a rate of 2/s", n, ip)
	}
	if n := served("127.0.0.4"); n != 10 {
		t.Fatalf("only %d of 10 connections from another address served", n)
	}
}
