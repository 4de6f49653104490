package engine

// Prometheus metrics. The hot paths only add to atomic counters (a topic's
// bytes and records) or observe a histogram picked by API key from an
// array; everything per partition and per group is read when /metrics is
// scraped, by a collector, so an idle metrics endpoint costs nothing.

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
	"samsa/segment"
)

// topicStats counts a topic's traffic.
type topicStats struct {
	bytesIn, recordsIn atomic.Int64 // appended by produce
	bytesOut           atomic.Int64 // sent to consumers
	recordsOut         atomic.Int64 // offsets sent to consumers, from their fetch offsets
	replicaBytesOut    atomic.Int64 // sent to the standby
}

const maxAPIKey = 127

// Metrics are a broker's Prometheus metrics. Make them with NewMetrics,
// pass them in Config.Metrics and serve Registry.
type Metrics struct {
	Registry *prometheus.Registry

	requests [maxAPIKey + 1]prometheus.Observer // by API key
	queue    [maxAPIKey + 1]prometheus.Observer // produce and fetch only
	fsync    prometheus.Histogram
	// stages: where acks=all appends spend their time on the disk, by
	// writer lane (small, bulk) and stage (stage*); standby: waiting for
	// the standby.
	stages    [2][numStages]prometheus.Observer
	standby   prometheus.Observer
	fetchWake prometheus.Histogram
	replFetch [2]prometheus.Observer // wait, apply
	net       atomic.Pointer[func() netio.Stats]
}

// NewMetrics makes the metrics, with Go runtime and process metrics
// registered.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "samsa_request_duration_seconds",
		Help:    "Time from reading a request to answering it, by API (its count is the request count).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18), // 50µs .. 6.5s
	}, []string{"api"})
	queue := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "samsa_request_queue_seconds",
		Help:    "Time a produce or fetch request waited between being read and being handled.",
		Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18),
	}, []string{"api"})
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "samsa_fsync_duration_seconds",
		Help:    "Duration of each group fsync of the data directory's logs.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
	})
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "samsa_produce_stage_seconds",
		Help: "Where each acks=all append spent its time, in order: write_wait (queued for the disk's writer), write (its pwritev), " +
			"sync_wait (written until the group fsync covering it began), fsync (that group fsync), by the writer lane that wrote it (small, or bulk: partitions appending 1 MiB or more per 100-200 ms, and batches of 256 KiB or more); " +
			"standby (from the append until the standby held it, when paired; overlaps the others; no lane).",
		Buckets: stageBuckets,
	}, []string{"stage", "lane"})
	m.fetchWake = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "samsa_fetch_wake_seconds",
		Help:    "From new records (or a high watermark move) waking a parked fetch to its answer being handed to the connection.",
		Buckets: stageBuckets,
	})
	replFetch := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "samsa_replica_fetch_seconds",
		Help: "On a standby, each replica fetch that brought records: wait (from sending the fetch to its answer, the primary's wait for new records included) " +
			"and apply (from the answer until its records were written, and fsynced with standby_fsync: the next fetch acknowledges them).",
		Buckets: stageBuckets,
	}, []string{"phase"})
	m.replFetch = [2]prometheus.Observer{replFetch.WithLabelValues("wait"), replFetch.WithLabelValues("apply")}
	m.Registry.MustRegister(latency, queue, m.fsync, stages, m.fetchWake, replFetch)
	for i, name := range stageNames {
		m.stages[0][i] = stages.WithLabelValues(name, "small")
		m.stages[1][i] = stages.WithLabelValues(name, "bulk")
	}
	m.standby = stages.WithLabelValues("standby", "")
	for key := int16(0); key <= maxAPIKey; key++ {
		if name := kmsg.NameForKey(key); name != "" && name != "Unknown" {
			m.requests[key] = latency.WithLabelValues(name)
		}
	}
	m.queue[kmsg.Produce] = queue.WithLabelValues("Produce")
	m.queue[kmsg.Fetch] = queue.WithLabelValues("Fetch")
	return m
}

// ObserveRequest records an answered request (netio.Options.Observe).
func (m *Metrics) ObserveRequest(key int16, received time.Time) {
	if key >= 0 && key <= maxAPIKey {
		if o := m.requests[key]; o != nil {
			o.Observe(time.Since(received).Seconds())
		}
	}
}

func (m *Metrics) observeQueue(key int16, received time.Time) {
	if m == nil || key < 0 || key > maxAPIKey {
		return
	}
	if o := m.queue[key]; o != nil {
		o.Observe(time.Since(received).Seconds())
	}
}

func (m *Metrics) observeSync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// The disk stages of an acks=all append (samsa_produce_stage_seconds).
const (
	stageWriteWait = iota
	stageWrite
	stageSyncWait
	stageFsync
	numStages
)

var stageNames = [numStages]string{"write_wait", "write", "sync_wait", "fsync"}

// stageBuckets resolve the sub-millisecond tail: 5 µs to about 1.5 s, by
// half again each.
var stageBuckets = prometheus.ExponentialBuckets(5e-6, 1.5, 32)

// observeStages records one synced append's disk stages.
func (m *Metrics) observeStages(s segment.Stages) {
	lane := &m.stages[0]
	if s.Bulk {
		lane = &m.stages[1]
	}
	lane[stageWriteWait].Observe(s.WriteWait.Seconds())
	lane[stageWrite].Observe(s.Write.Seconds())
	lane[stageSyncWait].Observe(s.SyncWait.Seconds())
	lane[stageFsync].Observe(s.Fsync.Seconds())
}

// observeStandby records how long an acks=all append waited for the
// standby; nil-safe.
func (m *Metrics) observeStandby(d time.Duration) {
	if m != nil {
		m.standby.Observe(d.Seconds())
	}
}

// ObserveReplicaFetch records a standby's replica fetch that brought
// records (replica.Config.ObserveFetch).
func (m *Metrics) ObserveReplicaFetch(wait, apply time.Duration) {
	m.replFetch[0].Observe(wait.Seconds())
	m.replFetch[1].Observe(apply.Seconds())
}

// observeFetchWake records a parked fetch's answer woken at the Unix ns
// woke; nil-safe.
func (m *Metrics) observeFetchWake(woke int64) {
	if m != nil && woke > 0 {
		m.fetchWake.Observe(time.Since(time.Unix(0, woke)).Seconds())
	}
}

// SetNetStats tells the metrics where to read connection counts.
func (m *Metrics) SetNetStats(f func() netio.Stats) { m.net.Store(&f) }

// collector reads per-topic, per-partition and per-group state at scrape
// time.
type collector struct {
	b *Broker
	m *Metrics
}

var (
	descBytesIn      = prometheus.NewDesc("samsa_topic_bytes_in_total", "Record batch bytes appended by producers.", []string{"topic"}, nil)
	descRecordsIn    = prometheus.NewDesc("samsa_topic_records_in_total", "Records appended by producers.", []string{"topic"}, nil)
	descBytesOut     = prometheus.NewDesc("samsa_topic_bytes_out_total", "Record batch bytes sent to consumers.", []string{"topic"}, nil)
	descRecordsOut   = prometheus.NewDesc("samsa_topic_records_out_total", "Records sent to consumers, counted by offset from each fetch offset to the end of the batches sent (offsets removed by compaction count too).", []string{"topic"}, nil)
	descReplBytesOut = prometheus.NewDesc("samsa_topic_replication_bytes_out_total", "Record batch bytes sent to the standby.", []string{"topic"}, nil)
	descStart        = prometheus.NewDesc("samsa_partition_log_start_offset", "First offset of the partition's log.", []string{"topic", "partition"}, nil)
	descEnd          = prometheus.NewDesc("samsa_partition_log_end_offset", "Next offset the partition's log will assign.", []string{"topic", "partition"}, nil)
	descHW           = prometheus.NewDesc("samsa_partition_high_watermark", "Offsets below are committed and readable by consumers.", []string{"topic", "partition"}, nil)
	descLSOLag       = prometheus.NewDesc("samsa_partition_last_stable_lag_records", "High watermark minus the last stable offset: records read_committed consumers wait for because a transaction is open.", []string{"topic", "partition"}, nil)
	descTxns         = prometheus.NewDesc("samsa_transactions", "Transactional ids the coordinator knows, by the state of their transaction.", []string{"state"}, nil)
	descTxnOldest    = prometheus.NewDesc("samsa_transaction_oldest_open_seconds", "Age of the oldest ongoing transaction (0: none).", nil, nil)
	descTxnTimedOut  = prometheus.NewDesc("samsa_transactions_timed_out_total", "Transactions the coordinator aborted because they ran past transaction.timeout.ms.", nil, nil)
	descTxnMarkers   = prometheus.NewDesc("samsa_transaction_markers_total", "Commit and abort markers written (one per partition per transaction end).", nil, nil)
	descSize         = prometheus.NewDesc("samsa_partition_size_bytes", "Bytes of the partition's segments.", []string{"topic", "partition"}, nil)
	descReplLag      = prometheus.NewDesc("samsa_partition_replication_lag_records", "Records the standby lacks (on the primary) or this standby lacks (on a standby).", []string{"topic", "partition"}, nil)
	descInSync       = prometheus.NewDesc("samsa_partition_standby_in_sync", "1 while the standby is in the partition's ISR (primary only).", []string{"topic", "partition"}, nil)
	descGroupLag     = prometheus.NewDesc("samsa_group_lag_records", "High watermark minus the group's committed offset.", []string{"group", "topic", "partition"}, nil)
	descGroupOffset  = prometheus.NewDesc("samsa_group_committed_offset", "The group's committed offset.", []string{"group", "topic", "partition"}, nil)
	descGroupMembers = prometheus.NewDesc("samsa_group_members", "Members of the group.", []string{"group", "state"}, nil)
	descConns        = prometheus.NewDesc("samsa_connections", "Open client connections.", nil, nil)
	descSendfile     = prometheus.NewDesc("samsa_fetch_sendfile_bytes_total", "Fetched bytes sent by sendfile (zero copy).", nil, nil)
	descCopied       = prometheus.NewDesc("samsa_fetch_copied_bytes_total", "Fetched bytes read into memory and then written.", nil, nil)
	descFilled       = prometheus.NewDesc("samsa_fetch_filled_bytes_total", "Fetched file bytes read into the page cache off the event loops before sendfile (evicted or never cached).", nil, nil)
	descReqBytes     = prometheus.NewDesc("samsa_request_bytes", "Request memory: complete requests not yet answered (queued), buffers of frames still arriving (incomplete), input paused connections left unframed (buffered), free frame buffers kept for reuse (pooled). All but pooled count against max_queued_bytes.", []string{"state"}, nil)
	descRefused      = prometheus.NewDesc("samsa_connections_refused_total", "Connections refused by max_connections, the per-address limits or the connection rate.", nil, nil)
	descClosedBy     = prometheus.NewDesc("samsa_connections_closed_total", "Connections closed by the broker to protect it: a frame that stalled or took too long (slow), to make room in max_queued_bytes (budget), bad framing or a bad request header (bad), unread input past the flood bound, a client sending without reading its answers (flood).", []string{"reason"}, nil)
	descMoved        = prometheus.NewDesc("samsa_connections_moved_total", "Connections moved off the event loops to a transport that stops reading while they wait, so TCP pushes back: clients that pipeline requests faster than they are served.", nil, nil)
	descRole         = prometheus.NewDesc("samsa_role", "1 for this node's role.", []string{"role"}, nil)
	descEpoch        = prometheus.NewDesc("samsa_leader_epoch", "The pair's leader epoch.", nil, nil)
	descTopics       = prometheus.NewDesc("samsa_topics", "Topics, internal ones included.", nil, nil)
	descDiskFree     = prometheus.NewDesc("samsa_disk_free_bytes", "Free bytes of the data directory's filesystem (for unprivileged users).", nil, nil)
	descDiskReserve  = prometheus.NewDesc("samsa_disk_min_free_bytes", "The free-space reserve (min_free_bytes): below it produce is refused.", nil, nil)
	descDiskFull     = prometheus.NewDesc("samsa_disk_full", "1 while free space is below min_free_bytes and produce is refused with KAFKA_STORAGE_ERROR.", nil, nil)
	descThrottle     = prometheus.NewDesc("samsa_quota_throttle_seconds_total", "Throttle time given to a quota's entity for exceeding it: its connections muted, or its answers held back for clients before KIP-219 (quota: producer_byte_rate or consumer_byte_rate; user and client_id: the entity the rate is counted for, empty when not part of it).", []string{"quota", "user", "client_id"}, nil)
	descAuthFailed   = prometheus.NewDesc("samsa_sasl_authentication_failures_total", "SASL authentications refused (bad credentials or messages).", nil, nil)
	descSegFiles     = prometheus.NewDesc("samsa_segment_files_open", "Segment files open now (bounded by open_segment_files: idle ones past it are closed).", nil, nil)
	descSegReopened  = prometheus.NewDesc("samsa_segment_files_reopened_total", "Segment files opened again after being closed while idle (open_segment_files).", nil, nil)
	descSegParked    = prometheus.NewDesc("samsa_segment_files_closed_idle_total", "Segment files closed while idle to stay within open_segment_files.", nil, nil)
	descOffline      = prometheus.NewDesc("samsa_offline_logs", "Partition logs (the metadata log included) a storage failure took offline: a full disk until space is freed, a failed write or fsync until a restart.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBytesIn, descRecordsIn, descBytesOut, descRecordsOut, descReplBytesOut, descStart, descEnd, descHW, descSize,
		descLSOLag, descTxns, descTxnOldest, descTxnTimedOut, descTxnMarkers,
		descReplLag, descInSync, descGroupLag, descGroupOffset, descGroupMembers, descConns, descSendfile, descCopied, descFilled, descReqBytes, descRefused, descClosedBy, descMoved, descRole, descEpoch, descTopics,
		descDiskFree, descDiskReserve, descDiskFull, descOffline, descSegFiles, descSegReopened, descSegParked, descThrottle, descAuthFailed} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	topics := b.topicList()
	gauge(descTopics, float64(len(topics)))
	hws := map[string][]int64{}
	for _, t := range topics {
		counter(descBytesIn, float64(t.stats.bytesIn.Load()), t.name)
		counter(descRecordsIn, float64(t.stats.recordsIn.Load()), t.name)
		counter(descBytesOut, float64(t.stats.bytesOut.Load()), t.name)
		counter(descRecordsOut, float64(t.stats.recordsOut.Load()), t.name)
		if b.pair.Replicated() {
			counter(descReplBytesOut, float64(t.stats.replicaBytesOut.Load()), t.name)
		}
		parts := t.parts()
		hw := make([]int64, len(parts))
		for i, p := range parts {
			idx := strconv.Itoa(i)
			leo := p.log.EndOffset()
			hw[i] = p.replica.HighWatermark()
			gauge(descStart, float64(p.log.StartOffset()), t.name, idx)
			gauge(descEnd, float64(leo), t.name, idx)
			gauge(descHW, float64(hw[i]), t.name, idx)
			gauge(descLSOLag, float64(hw[i]-p.log.LastStableOffset(hw[i])), t.name, idx)
			gauge(descSize, float64(p.log.Size()), t.name, idx)
			switch {
			case b.pair.IsPrimary():
				lag, in := p.replica.Standby()
				gauge(descReplLag, float64(lag), t.name, idx)
				gauge(descInSync, boolf(in), t.name, idx)
			case b.pair.IsStandby():
				gauge(descReplLag, float64(max(0, p.replica.PrimaryHWM()-leo)), t.name, idx)
			}
		}
		hws[t.name] = hw
	}
	if b.groups != nil && (b.pair.IsPrimary() || !b.pair.Replicated()) {
		for _, g := range b.groups.Stats() {
			gauge(descGroupMembers, float64(g.Members), g.Group, g.State)
			for topic, parts := range g.Committed {
				for p, off := range parts {
					idx := strconv.Itoa(int(p))
					gauge(descGroupOffset, float64(off), g.Group, topic, idx)
					if hw := hws[topic]; int(p) < len(hw) {
						gauge(descGroupLag, float64(max(0, hw[p]-off)), g.Group, topic, idx)
					}
				}
			}
		}
	}
	if b.txns != nil && (b.pair.IsPrimary() || !b.pair.Replicated()) {
		st := b.txns.Stats()
		for state, n := range st.States {
			gauge(descTxns, float64(n), state)
		}
		gauge(descTxnOldest, st.OldestOngoing.Seconds())
		counter(descTxnTimedOut, float64(st.TimedOut))
		counter(descTxnMarkers, float64(st.Markers))
	}
	if f := c.m.net.Load(); f != nil {
		st := (*f)()
		gauge(descConns, float64(st.Connections))
		counter(descSendfile, float64(st.SendfileBytes))
		counter(descCopied, float64(st.CopiedBytes))
		counter(descFilled, float64(st.FilledBytes))
		gauge(descReqBytes, float64(st.QueuedBytes), "queued")
		gauge(descReqBytes, float64(st.IncompleteBytes), "incomplete")
		gauge(descReqBytes, float64(st.BufferedBytes), "buffered")
		gauge(descReqBytes, float64(st.PooledBytes), "pooled")
		counter(descRefused, float64(st.Refused))
		counter(descClosedBy, float64(st.ClosedSlow), "slow")
		counter(descClosedBy, float64(st.ClosedBudget), "budget")
		counter(descClosedBy, float64(st.ClosedBad), "bad")
		counter(descClosedBy, float64(st.ClosedFlood), "flood")
		counter(descMoved, float64(st.Moved))
	}
	space, offline := b.Storage()
	gauge(descDiskFree, float64(space.Free))
	gauge(descDiskReserve, float64(space.Reserve))
	gauge(descDiskFull, boolf(space.Low))
	gauge(descOffline, float64(offline))
	files := segment.OpenFileStats()
	gauge(descSegFiles, float64(files.Open))
	counter(descSegReopened, float64(files.Reopened))
	counter(descSegParked, float64(files.Parked))
	for s, d := range b.quotaUse.snapshot() {
		counter(descThrottle, d.Seconds(), s.key, s.User, s.Client)
	}
	counter(descAuthFailed, float64(b.authFailures.Load()))
	role, _, _ := b.Status()
	gauge(descRole, 1, role)
	gauge(descEpoch, float64(b.pair.Epoch()))
}

func boolf(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
