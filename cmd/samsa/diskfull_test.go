package main

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// TestFullDisk runs the broker on a real 48 MiB filesystem (a tmpfs) and
// fills it under produce load. Producers get KAFKA_STORAGE_ERROR, never a
// hang; the broker stays up and says so (/metrics, /readyz, its log);
// consumers (franz-go and librdkafka) read everything stored; offset
// commits either land or fail with a retriable coordinator error. Writes
// resume without a restart once DeleteRecords and the operator free
// space. Filled again past the reserve to a real ENOSPC and SIGKILLed,
// the broker restarts with every acknowledged record, and `samsactl log
// verify` finds no damage.
func TestFullDisk(t *testing.T) {
	t.Parallel() // its own broker and data dir; mostly waits on clients
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount a size-limited tmpfs (CI runs as root)")
	}
	data := t.TempDir()
	if err := unix.Mount("tmpfs", data, "tmpfs", 0, "size=48m"); err != nil {
		t.Fatalf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(data, unix.MNT_DETACH) })
	httpAddr := freeAddr(t)
	cfg := writeConfig(t, t.TempDir(),
		"[admin]\n# HTTP admin", "[admin]\nlisten = \""+httpAddr+"\"\n# HTTP admin", "\nlisten = \"\"\n\n[topic_defaults]", "\n\n[topic_defaults]",
		"min_free_bytes = -1", "min_free_bytes = 8388608")
	b := &broker{t: t, addr: freeAddr(t), dataDir: filepath.Join(data, "d"), config: cfg, log: &logBuffer{}}
	t.Cleanup(b.cleanup)
	b.start()
	segBytes := "1048576"
	b.createTopic("full", 1, map[string]*string{"segment.bytes": &segBytes})

	// An acks=all producer that retries once: storage errors are
	// retriable, and it reports the broker's error after the retry (an
	// idempotent franz-go producer keeps retrying for its delivery
	// timeout instead, which says nothing about the broker). A retriable
	// error makes franz-go refresh metadata, at most every MetadataMinAge.
	prod := b.client(kgo.DefaultProduceTopic("full"), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	defer prod.Close()
	value := make([]byte, 8<<10) // incompressible: the client compresses
	rand.Read(value)
	var acked []string
	next := 0
	fillUp := func() error {
		t.Helper()
		for i := 0; i < 10000; i++ {
			id := "r" + strconv.Itoa(next)
			start := time.Now()
			err := prod.ProduceSync(timeout(t, 30*time.Second), &kgo.Record{Key: []byte(id), Value: value}).FirstErr()
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("a produce took %v on a full disk", took) // a hang, not noise
			}
			if err != nil {
				return err
			}
			acked = append(acked, id)
			next++
		}
		t.Fatal("48 MiB never filled")
		return nil
	}
	err := fillUp()
	if !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("produce on a full disk: %v, want KAFKA_STORAGE_ERROR", err)
	}
	b.checkAlive()
	if !b.logged("disk nearly full") {
		t.Fatalf("no log line says the disk is full:\n%s", b.log.tail())
	}
	fams := scrape(t, httpAddr)
	if v, ok := metricValue(fams, "samsa_disk_full", nil); !ok || v != 1 {
		t.Fatalf("samsa_disk_full = %v (%v), want 1", v, ok)
	}
	if code, body := httpGet(t, "http://"+httpAddr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"disk_full"`) {
		t.Fatalf("/readyz on a full disk: %d %s", code, body)
	}

	// Everything acknowledged reads, by franz-go and by librdkafka.
	checkRecords(t, b, acked, 0)
	out := runTool(t, "", "kcat", "-C", "-b", b.addr, "-t", "full", "-o", "beginning", "-e", "-q", "-f", "%k\n")
	if n := strings.Count(out, "\n"); n != len(acked) {
		t.Fatalf("kcat read %d records, %d were acknowledged", n, len(acked))
	}

	// Offset commits go into the reserve; past it (a real ENOSPC, the
	// rest of the disk taken by another file) they fail cleanly.
	adm := b.admin()
	commit := func(off int64) error {
		t.Helper()
		os := kadm.Offsets{}
		os.AddOffset("full", 0, off, -1)
		start := time.Now()
		resp, err := adm.CommitOffsets(timeout(t, 30*time.Second), "g", os)
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("an offset commit took %v on a full disk", took)
		}
		if err != nil {
			return err
		}
		return resp.Error()
	}
	if err := commit(1); err != nil {
		t.Fatalf("offset commit within the reserve: %v", err)
	}
	filler := fillDisk(t, data)
	for i := int64(2); i < 40; i++ { // one partition's preallocated blocks take a few
		err := commit(i)
		if err == nil {
			continue
		}
		if !errors.Is(err, kerr.NotCoordinator) && !errors.Is(err, kerr.CoordinatorNotAvailable) {
			t.Fatalf("offset commit on a full disk: %v, want a retriable coordinator error", err)
		}
		break
	}
	// A produce may still land in a segment's preallocated blocks until
	// the disk monitor's next look; it is acknowledged, so it counts.
	if err := fillUp(); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("produce on a full disk: %v", err)
	}
	b.checkAlive()
	checkRecords(t, b, acked, 0)

	// Quotas and SCRAM users are metadata-log records too: on the full
	// disk each change is answered in bounded time, applied or refused
	// with a code, and the broker stays up. Once space is back they go
	// through, and a restart keeps the last one applied.
	lastQuota := 0.0
	alterQuota := func(v float64) error {
		t.Helper()
		user := "q"
		start := time.Now()
		res, err := adm.AlterClientQuotas(timeout(t, 30*time.Second), []kadm.AlterClientQuotaEntry{{
			Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
			Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: v}},
		}})
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("a quota change took %v on a full disk", took)
		}
		if err == nil && len(res) == 1 {
			err = res[0].Err
		}
		if err == nil {
			lastQuota = v
		}
		return err
	}
	upsertUser := func() error {
		t.Helper()
		start := time.Now()
		res, err := adm.AlterUserSCRAMs(timeout(t, 30*time.Second), nil, []kadm.UpsertSCRAM{{
			User: "u", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "p",
		}})
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("a SCRAM change took %v on a full disk", took)
		}
		if err == nil {
			err = res.Error()
		}
		return err
	}
	for i := 1; i <= 20; i++ {
		if err := alterQuota(float64(1000 * i)); err != nil {
			t.Logf("quota change %d on a full disk: %v", i, err)
		}
		if err := upsertUser(); err != nil {
			t.Logf("SCRAM change %d on a full disk: %v", i, err)
		}
	}
	b.checkAlive()

	// Space back without a restart: the file goes, DeleteRecords drops
	// the first half of the topic.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	half := int64(len(acked) / 2)
	del := kadm.Offsets{}
	del.AddOffset("full", 0, half, -1)
	if _, err := adm.DeleteRecords(timeout(t, 30*time.Second), del); err != nil {
		t.Fatalf("DeleteRecords on a full disk: %v", err)
	}
	resumed := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		id := "r" + strconv.Itoa(next)
		if prod.ProduceSync(timeout(t, 30*time.Second), &kgo.Record{Key: []byte(id), Value: value}).FirstErr() == nil {
			acked = append(acked, id)
			next++
			resumed = true
			break
		}
	}
	if !resumed {
		t.Fatalf("produce did not resume within 20 s of space coming back:\n%s", b.log.tail())
	}
	if err := commit(100); err != nil {
		t.Fatalf("offset commit with space back: %v", err)
	}
	if err := alterQuota(123456); err != nil {
		t.Fatalf("quota change with space back: %v", err)
	}
	if err := upsertUser(); err != nil {
		t.Fatalf("SCRAM change with space back: %v", err)
	}
	if code, body := httpGet(t, "http://"+httpAddr+"/readyz"); code != 200 {
		t.Fatalf("/readyz with space back: %d %s", code, body)
	}

	// Full again, to a real ENOSPC, then SIGKILL: a restart with space
	// has every acknowledged record and no damage.
	if err := fillUp(); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("produce on a full disk: %v", err)
	}
	filler = fillDisk(t, data)
	prod.ProduceSync(timeout(t, 30*time.Second), &kgo.Record{Value: []byte("lost")}) // fails; must leave no trace
	b.kill()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	b.restart()
	checkRecords(t, b, acked, half)
	if out, err := exec.Command(samsactl, "log", "verify", b.dataDir).CombinedOutput(); err != nil {
		t.Fatalf("log verify after a full disk and SIGKILL: %v\n%s", err, out)
	}
	offs, err := adm.FetchOffsets(timeout(t, 30*time.Second), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("full", 0); !ok || o.At != 100 {
		t.Fatalf("committed offset after restart: %+v, want 100", o)
	}
	quotas, err := adm.DescribeClientQuotas(timeout(t, 30*time.Second), false, nil)
	if err != nil || len(quotas) != 1 || len(quotas[0].Values) != 1 || quotas[0].Values[0].Value != lastQuota {
		t.Fatalf("quotas after restart: %v %+v, want producer_byte_rate %v", err, quotas, lastQuota)
	}
	users, err := adm.DescribeUserSCRAMs(timeout(t, 30*time.Second))
	if err != nil || len(users["u"].CredInfos) != 1 {
		t.Fatalf("SCRAM users after restart: %v %+v", err, users)
	}
}

// checkRecords reads topic "full" and checks that it holds exactly the
// acknowledged ids from index from on, in order.
func checkRecords(t *testing.T, b *broker, acked []string, from int64) {
	t.Helper()
	c := b.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"full": {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxWait(200*time.Millisecond))
	defer c.Close()
	ctx := timeout(t, 30*time.Second)
	want := acked[from:]
	var got []string
	for len(got) < len(want) {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d acknowledged records in 30 s", len(got), len(want))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Key) == 0 {
				t.Fatalf("offset %d holds a record that was never acknowledged (%q)", r.Offset, r.Value)
			}
			got = append(got, string(r.Key))
		})
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d is %s, want %s", i, got[i], want[i])
		}
	}
}

// fillDisk writes a file in dir until the filesystem is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for range 1 << 12 {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the filesystem never filled")
	return ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestStandbyDiskFull: the standby's disk goes below its reserve. It stops
// copying user partitions (so it leaves their ISR and acks=all fails with
// a retriable NOT_ENOUGH_REPLICAS) but keeps copying the metadata log, so
// topic changes still work; once space is back it catches up by itself.
func TestStandbyDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount a size-limited tmpfs (CI runs as root)")
	}
	sdata := t.TempDir()
	if err := unix.Mount("tmpfs", sdata, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(sdata, unix.MNT_DETACH) })
	pAddr, sAddr, pLink, sLink := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	sconf := pairConfig(t, 2, 1, "standby", sLink, pAddr, pLink)
	raw, err := os.ReadFile(sconf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sconf, []byte(strings.Replace(string(raw), "min_free_bytes = -1", "min_free_bytes = 16777216", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	P := &broker{t: t, addr: pAddr, dataDir: t.TempDir(), log: &logBuffer{}, config: pairConfig(t, 1, 2, "primary", pLink, sAddr, sLink)}
	S := &broker{t: t, addr: sAddr, dataDir: filepath.Join(sdata, "d"), log: &logBuffer{}, config: sconf}
	t.Cleanup(P.cleanup)
	t.Cleanup(S.cleanup)
	P.start()
	S.start()
	waitInSync(t, P.addr)
	P.createTopic("sf", 1, nil)
	prod := P.client(kgo.DefaultProduceTopic("sf"), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1), kgo.MetadataMinAge(100*time.Millisecond))
	defer prod.Close()
	produceUntil := func(ok bool) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			err = prod.ProduceSync(timeout(t, 30*time.Second), &kgo.Record{Value: []byte("v")}).FirstErr()
			if (err == nil) == ok {
				// franz-go reports a retriable error it gave up on
				// as ErrRecordRetries.
				if !ok && !errors.Is(err, kerr.NotEnoughReplicas) && !errors.Is(err, kerr.NotEnoughReplicasAfterAppend) && !errors.Is(err, kgo.ErrRecordRetries) {
					t.Fatalf("acks=all with the standby's disk full: %v, want NOT_ENOUGH_REPLICAS", err)
				}
				return
			}
		}
		t.Fatalf("acks=all never %s in 20 s (last: %v):\n%s", map[bool]string{true: "succeeded", false: "failed"}[ok], err, S.log.tail())
	}
	produceUntil(true)
	var st unix.Statfs_t
	if err := unix.Statfs(sdata, &st); err != nil {
		t.Fatal(err)
	}
	ballast := filepath.Join(sdata, "ballast")
	if err := os.WriteFile(ballast, make([]byte, int64(st.Bavail)*st.Bsize-8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	produceUntil(false)
	// The metadata log still replicates: a topic can be created (it needs
	// the standby in the metadata log's ISR).
	P.createTopic("sf-meta", 1, nil)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	produceUntil(true)
	if !S.logged("not copying user partitions") {
		t.Fatalf("the standby never said why it stopped copying:\n%s", S.log.tail())
	}
}
