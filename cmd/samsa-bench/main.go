// Command samsa-bench is samsa's bundled benchmark: a thin main over
// package bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"samsa/bench"
)

const usage = `samsa-bench: load generator and peer comparison for samsa.

Usage:
  samsa-bench produce|consume|e2e|mixed [flags]   one workload against -target
  samsa-bench all [flags]                         the compare workloads against -target
  samsa-bench compare [flags]                     start samsa and kfake, run the
                                                  compare workloads on each, and
                                                  print them side by side (make bench)
  samsa-bench failover [flags]                    start a hot standby pair, SIGKILL the
                                                  primary under load, promote the standby
                                                  (-promote manual, auto or both) and
                                                  measure the outage and any loss
  samsa-bench soak [flags]                        a pair with auto_failover under mixed load
                                                  for -duration, primary and standby killed
                                                  in turn; leak trends and a loss check
                                                  (make soak DURATION=30m)
  samsa-bench hostile [flags]                     raw-socket clients break the framing
                                                  (-attacks) while franz-go clients keep
                                                  producing and consuming: their latency
                                                  and errors, the broker's RSS and fds
  samsa-bench txn [flags]                         start a fresh samsa per round: an idempotent
                                                  and a transactional producer, read_committed
                                                  against read_uncommitted, consume-transform-
                                                  produce, read_committed e2e latency (make bench-txn)
  samsa-bench tls [flags]                         start samsa with PLAINTEXT, SSL (and with -sasl
                                                  SASL_SSL) listeners; produce and consume on each:
                                                  MiB/s, broker CPU s/GiB, ratios to plaintext
  samsa-bench partitions [flags]                  a fresh samsa per -counts partition count:
                                                  create, RSS and fds, Metadata, produce and
                                                  consume over every partition, clean stop,
                                                  start after it and after SIGKILL, loss check
  samsa-bench without-syscall NR CMD [ARGS]       run CMD with system call NR answering
                                                  ENOSYS (seccomp), as an older kernel
                                                  would: cachestat is 451 on x86-64 and
                                                  arm64 (docs/BENCHMARKS.md)

Workloads (each on a fresh topic created with P partitions, RF 1; each stops
at its record count or its -timeout, whichever comes first):
  produce  N records of S bytes from K producers at full speed: records/s,
           MiB/s, per-record ack latency (acks 1 and all)
  consume  N records produced first (not timed), then read from offset 0 of
           every partition by one consumer (assigned partitions, no group);
           -cold drops the page cache in between (root)
  e2e      N records at -rate records/s (ticker-paced, no linger); a consumer
           from the end measures produce call to receipt: p50/p99/p99.9/max
  mixed    N records at full speed while 2 consumers (no group) each read
           every partition from offset 0

compare runs: produce 1KiB acks=all, produce 100B acks=all, produce 1KiB
acks=1, consume 1KiB, e2e 10k/s acks=all, mixed 1KiB; -rounds rounds each,
medians reported. Broker CPU seconds (utime+stime) and peak RSS (VmHWM) are
read from /proc for brokers it starts, or for -target with -target-pid.
Results go to stdout (a table, or JSON with -json); progress to stderr.

failover (docs/BENCHMARKS.md, "Failover"): a pair of -samsa-bin processes
from -config (node 1 primary, node 2 standby, free loopback ports, temp
data dirs); a topic of -partitions (default 4) with the pair's defaults;
an acks=all idempotent producer at -rate (default 2,000/s) of -size byte
records carrying sequence ids, and a group consumer, both seeded with
both nodes. After -warmup the primary is SIGKILLed; manual promotion
sends the standby ElectLeaders (as samsactl promote does), auto leaves
it to auto_failover (-failover-timeout). With -rejoin the killed node is
restarted once the standby leads. It reports kill -> standby leads,
writes acked, consumer reads; records acknowledged, lost (acked, never
read: must be 0), duplicates. -timeout (default 90s) bounds each run.
Exits 1 if an acknowledged record was lost or a run failed.

soak (docs/BENCHMARKS.md, "Soak"): a pair from -config with auto_failover
and an [admin] listener on each node; acks=all idempotent producers at
-rate (default 500/s each) to a plain, a compacted and a small-retention
topic; group members on the plain topic joining and leaving every
-churn-every; every -kill-every the primary (then, next time, the
standby) SIGKILLed and restarted after -restart-delay. Every
-sample-every a line: each node's RSS, open fds, goroutines, disk. At the
end the slopes per hour, and the plain topic read back (every acked id)
and the compacted one (every key's latest acked value). Exits 1 on loss,
an unexpected exit or a failed check.

hostile (docs/BENCHMARKS.md, "Hostile clients"): against -target (with
-target-pid for RSS and fds), or a broker it starts from -samsa-bin and
-config when -samsa-bin is given. After -warmup of legitimate clients
alone, each of -attacks for -attack-duration, from -attack-from:
  declare100m  2 connections send a frame size of 100 MiB and 2 bytes, stall
  declare1m    -conns connections (1,000) declare 1 MiB frames, stall
  random       4 connections at a time write random bytes (1 to 4,096 a write)
  dribble      one frame (1 KiB declared) sent one byte per second
  mixed        64 goroutines: random bytes, lying lengths, truncated frames,
               garbage bodies for every API key, idle declarers
Throughout, an acks=all producer (a record every 20 ms) and a consumer of
one fresh topic, and an ApiVersions round trip on a fresh connection every
500 ms. Per attack: produce ack and produce->read latency, ApiVersions,
records stalled (slower than -stall-bound) or unread, the broker's RSS
and fds before, peak during, and -settle after. Exits 1 when the
legitimate clients did not keep working through an attack.

txn (docs/BENCHMARKS.md, "Transactions"): each of -rounds rounds (default
3) on a fresh samsa from -samsa-bin and -config (or on -target when it is
given, -target-pid for its CPU), fresh topics of -partitions: an acks=all
idempotent producer of -size byte records and the same with a
transactional id, a transaction committed every -commit-interval
(default 100ms), taking turns of 1s (ABBA) until each has run for
-duration (default 5s): committed records/s, the ratio to the idempotent
producer, EndTransaction p50/p99/max; a read_uncommitted and a
read_committed consumer of that topic from offset 0 (MiB/s each, the
ratio; read_committed must read exactly the committed records); a
GroupTransactSession copying the idempotent topic to another, committing
every -commit-interval; a transactional producer at -rate (default
1,000/s) and a read_committed consumer: receipt minus produce call
p50/p99/p99.9/max, which includes waiting for the commit. Medians, min and
max over the rounds. The 0.9x targets are printed, not enforced: exits 1
only when a round failed.

partitions: for each of -counts (default 1000,10000), -rounds times
(default 1), a fresh samsa from -samsa-bin and -config: the partitions
created as topics of 100 (10 topics to a CreateTopics request), a 100 B
record written to each (acks=all); the broker's RSS and open fds, and the
median of 5 Metadata requests for all topics; -records (default 200,000)
records of -size bytes round robin over every partition (acks=all),
records/s and MiB/s, then one consumer reading every partition from
offset 0, MiB/s. Then SIGTERM, timed until the process is reaped; a start
on the same data, timed from exec until it accepts a TCP connection and
until it answers ApiVersions; idle RSS and fds 2 s later; SIGKILL and a
start timed the same way; the end offsets must add up to every
acknowledged record; a clean stop after that start. -timeout (default 2m)
bounds each step. Exits 1 when a run failed or lost records.

Flags:
`

// options are the command line flags.
type options struct {
	args           []string // the command line, for the bulk load's process
	stderr         io.Writer
	target         string
	targetPID      int
	metrics        string
	standbyMetrics string
	records        int64
	size           int
	partitions     int
	producers      int
	acks           string
	compression    string
	keys           string
	rate           int
	bulk           int
	bulkAcks       string
	cold           bool
	rounds         int
	timeout        time.Duration
	json           bool
	quick          bool
	sasl           bool
	samsaBin       string
	config         string
	listen         string
	// failover
	promote         string
	failoverTimeout time.Duration
	warmup          time.Duration
	after           time.Duration
	drain           time.Duration
	rejoin          bool
	minInsync       int
	metadataMinAge  time.Duration
	keepLogs        string
	// soak
	duration     time.Duration
	killEvery    time.Duration
	sampleEvery  time.Duration
	churnEvery   time.Duration
	trendAfter   time.Duration
	restartDelay time.Duration
	// hostile
	attacks        string
	attackDuration time.Duration
	attackFrom     string
	settle         time.Duration
	stallBound     time.Duration
	conns          int
	rssLimitMiB    int64
	// partitions
	counts string
	// txn
	commitInterval time.Duration
	set            map[string]bool // flags given on the command line
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "without-syscall" {
		return withoutSyscall(args[1:], stderr)
	}
	fs := flag.NewFlagSet("samsa-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	o := options{args: args, stderr: stderr}
	fs.StringVar(&o.target, "target", "127.0.0.1:9092", "broker `host:port` for produce, consume, e2e, mixed and all")
	fs.IntVar(&o.targetPID, "target-pid", 0, "process id of the -target broker, for its CPU and memory figures")
	fs.StringVar(&o.metrics, "metrics", "", "`host:port` of the -target samsa's /metrics ([admin] listen): report where the broker's time went (produce and fetch stages)")
	fs.StringVar(&o.standbyMetrics, "standby-metrics", "", "`host:port` of the /metrics of the -target primary's standby: the stages include the standby's replica fetches (its wait for records, and its apply until they are written)")
	fs.Int64Var(&o.records, "records", 0, "records per workload (default: per workload, 1,500,000 for 1 KiB produce; fewer with -quick; partitions: 200,000)")
	fs.IntVar(&o.size, "size", 1024, "record value `bytes` (soak: default 512)")
	fs.IntVar(&o.partitions, "partitions", 8, "partitions of each fresh topic (failover, soak: default 4)")
	fs.IntVar(&o.producers, "producers", 1, "producers (separate clients)")
	fs.StringVar(&o.acks, "acks", "all", "producer acks: 0, 1 or all")
	fs.StringVar(&o.compression, "compression", "none", "none, lz4, zstd, snappy or gzip")
	fs.StringVar(&o.keys, "keys", "none", "record keys: none (sticky partitioning), random, or set:N (N fixed keys)")
	fs.IntVar(&o.bulk, "bulk", 0, "e2e: `MiB/s` a second producer pushes to a topic of its own while a consumer reads it from the start, both in a samsa-bench process of their own: the tail under load")
	fs.StringVar(&o.bulkAcks, "bulk-acks", "", "e2e with -bulk: the bulk producer's acks, 0, 1 or all (default: -acks)")
	fs.BoolVar(&o.cold, "cold", false, "consume: drop the page cache (sync, then /proc/sys/vm/drop_caches; root) after filling the topic, so the consumer reads from the disk, as one catching up on old data does")
	fs.IntVar(&o.rate, "rate", 10_000, "e2e records per second (failover: default 2,000; soak: to each topic, default 500; txn: its e2e phase, default 1,000)")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds of each workload, medians reported (default 3 for compare and txn, 1 otherwise)")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "time limit of each workload (failover: of each run, default 90s; partitions: of each step, default 2m)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	fs.BoolVar(&o.quick, "quick", false, "a much smaller run (a few thousand records per workload)")
	fs.BoolVar(&o.sasl, "sasl", false, "tls: also a SASL_SSL listener with SCRAM-SHA-512")
	fs.StringVar(&o.samsaBin, "samsa-bin", "./bin/samsa", "compare, failover, soak: the samsa binary to start")
	fs.StringVar(&o.config, "config", "config.toml", "compare, failover, soak: samsa's config file")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "kfake: `host:port` to listen on")
	fs.StringVar(&o.promote, "promote", "both", "failover: how the standby is promoted: manual (ElectLeaders), auto (auto_failover) or both")
	fs.DurationVar(&o.failoverTimeout, "failover-timeout", 0, "failover, soak: failover_timeout_ms of both nodes (default: the config's, 5s as shipped)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "failover: producing and consuming before the kill; hostile: the legitimate clients alone before the first attack")
	fs.DurationVar(&o.after, "after", 5*time.Second, "failover: producing after writes resume")
	fs.DurationVar(&o.drain, "drain", 30*time.Second, "failover: at most this long after the producer stops for the consumer to read every acked record")
	fs.BoolVar(&o.rejoin, "rejoin", true, "failover: restart the killed node once the standby leads (without it, acks=all with min.insync.replicas 2 cannot resume)")
	fs.IntVar(&o.minInsync, "min-insync", 0, "failover: the topic's min.insync.replicas, 1 or 2 (default: the pair's, 2 as shipped)")
	fs.DurationVar(&o.metadataMinAge, "metadata-min-age", 100*time.Millisecond, "failover, soak: the clients' kgo MetadataMinAge, how soon they may look for a new leader (kgo's default: 5s)")
	fs.StringVar(&o.keepLogs, "keep-logs", "", "failover, soak: copy the broker logs into this `dir`")
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "soak: how long the load runs; txn: how long each producer runs, in turns (default 5s)")
	fs.DurationVar(&o.commitInterval, "commit-interval", 100*time.Millisecond, "txn: a transaction is committed this often")
	fs.DurationVar(&o.killEvery, "kill-every", 3*time.Minute, "soak: SIGKILL the primary, next time the standby, this often")
	fs.DurationVar(&o.sampleEvery, "sample-every", 30*time.Second, "soak: a line of node figures this often")
	fs.DurationVar(&o.churnEvery, "churn-every", 30*time.Second, "soak: a group member joins or leaves this often")
	fs.DurationVar(&o.trendAfter, "trend-after", 2*time.Minute, "soak: samples before this are left out of the trends")
	fs.DurationVar(&o.restartDelay, "restart-delay", 2*time.Second, "soak: a killed node is restarted this long after (the primary: after the standby took over)")
	fs.StringVar(&o.attacks, "attacks", strings.Join(bench.HostileAttacks, ","), "hostile: the attacks, in order, comma separated")
	fs.DurationVar(&o.attackDuration, "attack-duration", 20*time.Second, "hostile: how long each attack lasts")
	fs.StringVar(&o.attackFrom, "attack-from", "127.0.0.1", "hostile: the attack sockets' source `address` (any 127.x.y.z on Linux)")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "hostile: the broker's \"after\" figures are read this long after each attack")
	fs.DurationVar(&o.stallBound, "stall-bound", 5*time.Second, "hostile: a produce ack, read after ack or ApiVersions slower than this fails the attack")
	fs.IntVar(&o.conns, "conns", 1000, "hostile: connections of the declare1m attack")
	fs.StringVar(&o.counts, "counts", "1000,10000", "partitions: the partition counts, comma separated, a fresh broker each")
	fs.Int64Var(&o.rssLimitMiB, "rss-limit-mib", 0, "hostile: stop an attack (and fail it) once the broker's RSS passes this many MiB (default: 8 GiB or half the memory, whichever is less; -1: none)")

	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fs.Usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "samsa-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cmd == "kfake" {
		if err := bench.RunKfake(ctx, o.listen); err != nil {
			fmt.Fprintln(stderr, "samsa-bench:", err)
			return 1
		}
		return 0
	}

	switch cmd {
	case "failover":
		return runFailover(ctx, &o, stdout, stderr)
	case "soak":
		return runSoak(ctx, &o, stdout, stderr)
	case "hostile":
		return runHostile(ctx, &o, stdout, stderr)
	case "txn":
		return runTxn(ctx, &o, stdout, stderr)
	case "tls":
		return runTLS(ctx, &o, stdout, stderr)
	case "partitions":
		return runPartitions(ctx, &o, stdout, stderr)
	}

	var specs []bench.Spec
	switch cmd {
	case bench.KindProduce, bench.KindConsume, bench.KindE2E, bench.KindMixed:
		s := bench.DefaultSpec(cmd)
		if o.quick {
			s = bench.QuickSpec(cmd)
		}
		specs = []bench.Spec{s}
	case "all", "compare":
		specs = bench.PlanSpecs(o.quick)
	default:
		fmt.Fprintf(stderr, "samsa-bench: unknown command %q (run samsa-bench -h)\n", cmd)
		return 2
	}
	for i := range specs {
		o.apply(&specs[i])
		if err := specs[i].Validate(); err != nil {
			fmt.Fprintln(stderr, "samsa-bench:", err)
			return 2
		}
	}
	if addr := os.Getenv(bench.BulkChildEnv); addr != "" {
		// A bulk load for the e2e run of the samsa-bench that started
		// this process (Spec.BulkProcess).
		for _, s := range specs {
			if s.Bulk > 0 {
				if err := bench.RunBulkChild(ctx, addr, s, os.Stdin, stdout); err != nil {
					fmt.Fprintln(stderr, "samsa-bench bulk load:", err)
					return 1
				}
				return 0
			}
		}
		fmt.Fprintln(stderr, "samsa-bench:", bench.BulkChildEnv, "set without -bulk")
		return 2
	}
	rounds := o.rounds
	if rounds <= 0 {
		rounds = 1
		if cmd == "compare" {
			rounds = 3
		}
	}

	var rep *bench.Report
	var err error
	if cmd == "compare" {
		self, serr := os.Executable()
		if serr != nil {
			fmt.Fprintln(stderr, "samsa-bench: cannot find its own binary:", serr)
			return 1
		}
		rep, err = bench.Compare(ctx, bench.CompareConfig{
			SamsaBin: o.samsaBin,
			Config:   o.config,
			Self:     self,
			Specs:    specs,
			Rounds:   rounds,
			Progress: stderr,
		})
	} else {
		name := o.target
		t := bench.Target{Name: name, Addr: o.target, PID: o.targetPID, Metrics: o.metrics, StandbyMetrics: o.standbyMetrics}
		rep = bench.Suite(ctx, []bench.Target{t}, specs, rounds, stderr, nil)
		err = ctx.Err()
	}
	if rep != nil {
		if !writeReport(rep, o.json, stdout, stderr) {
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 1
	}
	if rep.Failed() {
		fmt.Fprintln(stderr, "samsa-bench: some runs failed; see the notes")
		return 1
	}
	return 0
}

// apply sets on s every workload flag given on the command line.
func (o *options) apply(s *bench.Spec) {
	if o.set["records"] {
		s.Records = o.records
	}
	if o.set["size"] {
		s.Size = o.size
	}
	if o.set["partitions"] {
		s.Partitions = int32(o.partitions)
	}
	if o.set["producers"] {
		s.Producers = o.producers
	}
	if o.set["acks"] {
		s.Acks = o.acks
	}
	if o.set["compression"] {
		s.Compression = o.compression
	}
	if o.set["keys"] {
		s.Keys = o.keys
	}
	if o.set["rate"] {
		s.Rate = o.rate
	}
	if o.set["bulk"] {
		s.Bulk = o.bulk
	}
	if o.set["bulk-acks"] {
		s.BulkAcks = o.bulkAcks
	}
	if o.set["cold"] {
		s.Cold = o.cold
	}
	if s.Bulk > 0 {
		// The bulk load's clients in a process of their own: in this
		// one, their 400 MiB/s of garbage and goroutines would delay the
		// e2e clients whose latency is measured.
		if self, err := os.Executable(); err == nil {
			s.BulkProcess = append([]string{self}, o.args...)
		} else {
			fmt.Fprintln(o.stderr, "samsa-bench: cannot find its own binary, so the bulk load runs in the e2e clients' process:", err)
		}
	}
	if o.set["timeout"] {
		s.Timeout = o.timeout
	}
}

// runFailover runs the failover command: -rounds rounds (default 1) of
// each promotion mode, a fresh pair each.
func runFailover(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	var modes []string
	switch o.promote {
	case "both":
		modes = []string{bench.PromoteManual, bench.PromoteAuto}
	case bench.PromoteManual, bench.PromoteAuto:
		modes = []string{o.promote}
	default:
		fmt.Fprintf(stderr, "samsa-bench: -promote %q: not manual, auto or both\n", o.promote)
		return 2
	}
	s := bench.DefaultFailoverSpec(modes[0])
	if o.set["rate"] {
		s.Rate = o.rate
	}
	if o.set["size"] {
		s.Size = o.size
	}
	if o.set["partitions"] {
		s.Partitions = int32(o.partitions)
	}
	if o.set["timeout"] {
		s.Timeout = o.timeout
	}
	s.FailoverTimeout, s.Warmup, s.After, s.Drain = o.failoverTimeout, o.warmup, o.after, o.drain
	s.Rejoin, s.MinInsync, s.MetadataMinAge = o.rejoin, o.minInsync, o.metadataMinAge
	for _, m := range modes {
		s.Promote = m
		if err := s.Validate(); err != nil {
			fmt.Fprintln(stderr, "samsa-bench:", err)
			return 2
		}
	}
	rounds := max(o.rounds, 1)
	rep := bench.FailoverSuite(ctx, bench.FailoverSuiteConfig{
		SamsaBin: o.samsaBin,
		Config:   o.config,
		Spec:     s,
		Modes:    modes,
		Rounds:   rounds,
		Progress: stderr,
		KeepLogs: o.keepLogs,
	})
	if !writeReport(rep, o.json, stdout, stderr) {
		return 1
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 1
	}
	if n := rep.Lost(); n > 0 {
		fmt.Fprintf(stderr, "samsa-bench: %d acknowledged records lost\n", n)
		return 1
	}
	if rep.Failed() {
		fmt.Fprintln(stderr, "samsa-bench: some runs failed; see the notes")
		return 1
	}
	return 0
}

// runSoak runs the soak command. Samples and events go to stdout as they
// come, then the summary; with -json the lines go to stderr and the
// report, every sample included, to stdout.
func runSoak(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	s := bench.DefaultSoakSpec()
	s.Duration, s.KillEvery, s.SampleEvery, s.ChurnEvery = o.duration, o.killEvery, o.sampleEvery, o.churnEvery
	s.TrendAfter, s.RestartDelay, s.FailoverTimeout, s.MetadataMinAge = o.trendAfter, o.restartDelay, o.failoverTimeout, o.metadataMinAge
	if o.set["rate"] {
		s.Rate = o.rate
	}
	if o.set["size"] {
		s.Size = o.size
	}
	if o.set["partitions"] {
		s.Partitions = int32(o.partitions)
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 2
	}
	lines := stdout
	if o.json {
		lines = stderr
	}
	rep, err := bench.RunSoak(ctx, bench.SoakConfig{SamsaBin: o.samsaBin, Config: o.config, Spec: s, Lines: lines, KeepLogs: o.keepLogs})
	if err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 1
	}
	if !writeReport(rep, o.json, stdout, stderr) {
		return 1
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// runHostile runs the hostile command: the report to stdout, progress to
// stderr.
func runHostile(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	cfg := bench.DefaultHostileConfig(o.target, o.targetPID)
	if o.set["samsa-bin"] {
		cfg.Addr, cfg.PID, cfg.SamsaBin, cfg.Config = "", 0, o.samsaBin, o.config
	}
	cfg.Attacks = nil
	for _, a := range strings.Split(o.attacks, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Attacks = append(cfg.Attacks, a)
		}
	}
	if len(cfg.Attacks) == 0 {
		fmt.Fprintln(stderr, "samsa-bench: -attacks names no attack")
		return 2
	}
	cfg.Duration, cfg.AttackFrom, cfg.Settle, cfg.StallBound = o.attackDuration, o.attackFrom, o.settle, o.stallBound
	cfg.Warmup, cfg.Declare1MConns, cfg.Progress = o.warmup, o.conns, stderr
	if o.rssLimitMiB > 0 {
		cfg.RSSLimit = o.rssLimitMiB << 20
	} else if o.rssLimitMiB < 0 {
		cfg.RSSLimit = -1
	}
	if cfg.Duration <= 0 || cfg.StallBound <= 0 || o.conns <= 0 {
		fmt.Fprintln(stderr, "samsa-bench: -attack-duration, -stall-bound and -conns must be positive")
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 2
	}
	rep, err := bench.RunHostile(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 1
	}
	if !writeReport(rep, o.json, stdout, stderr) {
		return 1
	}
	if rep.Failed() {
		fmt.Fprintln(stderr, "samsa-bench: the legitimate clients did not keep working through every attack; see the notes")
		return 1
	}
	return 0
}

// runTxn runs the txn command: the report to stdout, progress to stderr.
func runTxn(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	s := bench.DefaultTxnSpec()
	if o.set["duration"] {
		s.Duration = o.duration
	}
	if o.set["size"] {
		s.Size = o.size
	}
	if o.set["partitions"] {
		s.Partitions = int32(o.partitions)
	}
	if o.set["rate"] {
		s.Rate = o.rate
	}
	if o.set["timeout"] {
		s.Timeout = o.timeout
	}
	s.CommitInterval = o.commitInterval
	if err := s.Validate(); err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 2
	}
	cfg := bench.TxnConfig{SamsaBin: o.samsaBin, Config: o.config, Spec: s, Rounds: o.rounds, Progress: stderr}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if o.set["target"] {
		cfg.Target = bench.Target{Name: o.target, Addr: o.target, PID: o.targetPID}
	}
	return finish(ctx, bench.TxnSuite(ctx, cfg), o, stdout, stderr, "some rounds failed; see the notes")
}

// runTLS is the tls subcommand.
func runTLS(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	cfg := bench.TLSConfig{SamsaBin: o.samsaBin, Config: o.config, Rounds: o.rounds, SASL: o.sasl, Progress: stderr,
		Produce: bench.DefaultSpec(bench.KindProduce), Consume: bench.DefaultSpec(bench.KindConsume)}
	if o.quick {
		cfg.Produce, cfg.Consume = bench.QuickSpec(bench.KindProduce), bench.QuickSpec(bench.KindConsume)
	}
	o.apply(&cfg.Produce)
	o.apply(&cfg.Consume)
	for _, s := range []bench.Spec{cfg.Produce, cfg.Consume} {
		if err := s.Validate(); err != nil {
			fmt.Fprintln(stderr, "samsa-bench:", err)
			return 2
		}
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	rep := bench.TLSSuite(ctx, cfg)
	if !writeReport(rep, o.json, stdout, stderr) {
		return 1
	}
	if ctx.Err() != nil || rep.Failed() {
		fmt.Fprintln(stderr, "samsa-bench: some rounds failed")
		return 1
	}
	return 0
}

// runPartitions runs the partitions command: the report to stdout,
// progress to stderr.
func runPartitions(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	s := bench.DefaultPartitionsSpec()
	counts, err := bench.ParseCounts(o.counts)
	if err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 2
	}
	s.Counts = counts
	if o.set["records"] {
		s.Records = o.records
	}
	if o.set["size"] {
		s.Size = o.size
	}
	if o.set["rounds"] {
		s.Rounds = o.rounds
	}
	if o.set["timeout"] {
		s.Timeout = o.timeout
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 2
	}
	rep := bench.PartitionsSuite(ctx, bench.PartitionsConfig{SamsaBin: o.samsaBin, Config: o.config, Spec: s, Progress: stderr})
	return finish(ctx, rep, o, stdout, stderr, "some runs failed or lost records; see the notes")
}

// withoutSyscall is the without-syscall subcommand: NR CMD [ARGS].
func withoutSyscall(args []string, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: samsa-bench without-syscall NR CMD [ARGS]")
		return 2
	}
	nr, err := strconv.Atoi(args[0])
	if err != nil || nr < 0 {
		fmt.Fprintf(stderr, "samsa-bench: without-syscall: %q is not a system call number\n", args[0])
		return 2
	}
	err = bench.ExecWithoutSyscall(nr, args[1:])
	fmt.Fprintln(stderr, "samsa-bench: without-syscall:", err)
	return 1
}

// report is what every command's result can do.
type report interface {
	WriteJSON(io.Writer) error
	WriteText(io.Writer) error
}

// finish writes rep and makes the exit status: 1 when it could not be
// written, the run was interrupted, or rep failed (failed says how).
func finish(ctx context.Context, rep interface {
	report
	Failed() bool
}, o *options, stdout, stderr io.Writer, failed string) int {
	if !writeReport(rep, o.json, stdout, stderr) {
		return 1
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return 1
	}
	if rep.Failed() {
		fmt.Fprintln(stderr, "samsa-bench:", failed)
		return 1
	}
	return 0
}

// writeReport writes rep to stdout as JSON or text; false if it could not.
func writeReport(rep report, asJSON bool, stdout, stderr io.Writer) bool {
	write := rep.WriteText
	if asJSON {
		write = rep.WriteJSON
	}
	if err := write(stdout); err != nil {
		fmt.Fprintln(stderr, "samsa-bench:", err)
		return false
	}
	return true
}
