package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Workload kinds.
const (
	KindProduce = "produce"
	KindConsume = "consume"
	KindE2E     = "e2e"
	KindMixed   = "mixed"
)

// Spec is one workload's parameters.
type Spec struct {
	Kind        string `json:"kind"`
	Records     int64  `json:"records"`     // records produced (and, for consume/mixed, read by each consumer)
	Size        int    `json:"size"`        // value bytes per record
	Partitions  int32  `json:"partitions"`  // partitions of the fresh topic
	Producers   int    `json:"producers"`   // separate kgo clients producing
	Consumers   int    `json:"consumers"`   // mixed: independent consumers reading every partition
	Acks        string `json:"acks"`        // "0", "1" or "all"
	Compression string `json:"compression"` // none, lz4, zstd, snappy, gzip
	Keys        string `json:"keys"`        // none, random or set:N
	Rate        int    `json:"rate"`        // e2e: records per second
	// Bulk is, for e2e, the MiB/s a second producer pushes to a topic of
	// its own while a consumer reads it from its start (workload_bulk.go):
	// the tail under load. 0: none.
	Bulk int `json:"bulk_mib_s,omitempty"`
	// BulkAcks is the bulk producer's acks ("": the workload's).
	BulkAcks string `json:"bulk_acks,omitempty"`
	// Cold is, for consume, a page cache dropped between filling the
	// topic and reading it: the consumer reads from the disk.
	Cold    bool          `json:"cold,omitempty"`
	Timeout time.Duration `json:"timeout_ns"` // the workload stops by itself after this
	// Conn are options every client of the workload adds: TLS, SASL.
	Conn []kgo.Opt `json:"-"`
	// BulkProcess, if set, is the command that runs the bulk load in a
	// process of its own: samsa-bench itself with its arguments, which
	// with BulkChildEnv set runs RunBulkChild. nil: in this process.
	BulkProcess []string `json:"-"`
}

// DefaultSpec returns the defaults for kind: 1 KiB records, 8 partitions,
// one producer, two consumers for mixed, acks=all, no compression, no keys,
// 10,000 records/s for e2e, a one-minute time limit; record counts sized so
// that `make bench` (two brokers, two rounds) takes a few minutes on a
// 2-core machine.
func DefaultSpec(kind string) Spec {
	s := Spec{
		Kind:        kind,
		Records:     1_500_000,
		Size:        1024,
		Partitions:  8,
		Producers:   1,
		Consumers:   2,
		Acks:        "all",
		Compression: "none",
		Keys:        "none",
		Rate:        10_000,
		Timeout:     60 * time.Second,
	}
	switch kind {
	case KindE2E:
		s.Records = 100_000 // ten seconds at 10,000 records/s
	case KindMixed:
		s.Records = 1_000_000
	}
	return s
}

// QuickSpec is DefaultSpec scaled down to a run of a second or two.
func QuickSpec(kind string) Spec {
	s := DefaultSpec(kind)
	s.Timeout = 20 * time.Second
	switch kind {
	case KindE2E:
		s.Records = 3_000
	case KindMixed:
		s.Records = 3_000
	default:
		s.Records = 5_000
	}
	return s
}

// Name is the spec's short human name, e.g. "produce 1KiB acks=all".
func (s Spec) Name() string {
	var b strings.Builder
	b.WriteString(s.Kind)
	b.WriteString(" ")
	b.WriteString(sizeName(s.Size))
	if s.Kind != KindConsume {
		b.WriteString(" acks=")
		b.WriteString(s.Acks)
	}
	if s.Kind == KindE2E {
		fmt.Fprintf(&b, " %s/s", countName(int64(s.Rate)))
		if s.Bulk > 0 {
			fmt.Fprintf(&b, " under %d MiB/s", s.Bulk)
			if s.BulkAcks != "" && s.BulkAcks != s.Acks {
				fmt.Fprintf(&b, " acks=%s", s.BulkAcks)
			}
		}
	}
	if s.Cold {
		b.WriteString(" cold")
	}
	if s.Compression != "" && s.Compression != "none" {
		b.WriteString(" " + s.Compression)
	}
	if s.Keys != "" && s.Keys != "none" {
		b.WriteString(" keys=" + s.Keys)
	}
	if s.Producers > 1 && s.Kind != KindConsume {
		fmt.Fprintf(&b, " x%d", s.Producers)
	}
	return b.String()
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func countName(n int64) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.FormatInt(n/1000, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

// Validate reports the first thing wrong with s.
func (s Spec) Validate() error {
	switch s.Kind {
	case KindProduce, KindConsume, KindE2E, KindMixed:
	default:
		return fmt.Errorf("cannot run workload %q: not produce, consume, e2e or mixed", s.Kind)
	}
	if s.Records <= 0 {
		return fmt.Errorf("cannot run %s: records must be positive, not %d", s.Kind, s.Records)
	}
	if s.Kind == KindE2E && s.Size < e2eHeader {
		return fmt.Errorf("cannot run e2e: size must be at least %d bytes to hold the timestamp, not %d", e2eHeader, s.Size)
	}
	if s.Size <= 0 {
		return fmt.Errorf("cannot run %s: size must be positive, not %d", s.Kind, s.Size)
	}
	if s.Partitions <= 0 {
		return fmt.Errorf("cannot run %s: partitions must be positive, not %d", s.Kind, s.Partitions)
	}
	if s.Producers <= 0 || int64(s.Producers) > s.Records {
		return fmt.Errorf("cannot run %s: producers must be between 1 and the record count, not %d", s.Kind, s.Producers)
	}
	if s.Kind == KindMixed && s.Consumers <= 0 {
		return fmt.Errorf("cannot run mixed: consumers must be positive, not %d", s.Consumers)
	}
	if s.Kind == KindE2E && s.Rate <= 0 {
		return fmt.Errorf("cannot run e2e: rate must be positive, not %d", s.Rate)
	}
	if s.Bulk < 0 || s.Bulk > 0 && s.Kind != KindE2E {
		return fmt.Errorf("cannot run %s: a bulk load (%d MiB/s) goes with e2e only, and is not negative", s.Kind, s.Bulk)
	}
	if s.Cold && s.Kind != KindConsume {
		return fmt.Errorf("cannot run %s: -cold goes with consume only", s.Kind)
	}
	if s.Timeout <= 0 {
		return fmt.Errorf("cannot run %s: timeout must be positive, not %v", s.Kind, s.Timeout)
	}
	if _, err := s.acks(); err != nil {
		return err
	}
	if s.BulkAcks != "" {
		if s.Bulk == 0 {
			return fmt.Errorf("cannot run %s: bulk acks %q without a bulk load", s.Kind, s.BulkAcks)
		}
		if _, err := s.bulkSpec().acks(); err != nil {
			return err
		}
	}
	if _, err := s.codec(); err != nil {
		return err
	}
	if _, err := parseKeys(s.Keys); err != nil {
		return err
	}
	return nil
}

// acks returns the kgo acks and whether idempotent writes stay on (kgo allows
// them only with acks=all).
func (s Spec) acks() (kgo.Acks, error) {
	switch s.Acks {
	case "0":
		return kgo.NoAck(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	}
	return kgo.Acks{}, fmt.Errorf("cannot use acks %q: not 0, 1 or all", s.Acks)
}

func (s Spec) codec() (kgo.CompressionCodec, error) {
	switch s.Compression {
	case "", "none":
		return kgo.NoCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("cannot use compression %q: not none, lz4, zstd, snappy or gzip", s.Compression)
}

// bulkSpec is the spec the bulk load's producer uses: s with its
// BulkAcks.
func (s Spec) bulkSpec() Spec {
	if s.BulkAcks != "" {
		s.Acks = s.BulkAcks
	}
	return s
}

// producerOpts are the kgo options every producer of s uses.
func (s Spec) producerOpts(addr, topic string) []kgo.Opt {
	acks, _ := s.acks()
	codec, _ := s.codec()
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		// No record outlives the workload's time limit and flush grace.
		kgo.RecordDeliveryTimeout(max(s.Timeout+flushGrace, time.Second)),
	}
	opts = append(opts, s.Conn...)
	if s.Acks != "all" && s.Acks != "-1" {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

// keyMode is how records are keyed: none (nil keys: kgo's sticky
// partitioner), random (a fresh random key per record) or a fixed set of n
// keys chosen at random.
type keyMode struct {
	random bool
	set    [][]byte
}

func parseKeys(s string) (keyMode, error) {
	switch {
	case s == "" || s == "none":
		return keyMode{}, nil
	case s == "random":
		return keyMode{random: true}, nil
	case strings.HasPrefix(s, "set:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "set:"))
		if err != nil || n <= 0 || n > 1<<20 {
			return keyMode{}, fmt.Errorf("cannot use keys %q: set:N needs 1 <= N <= 1048576", s)
		}
		set := make([][]byte, n)
		for i := range set {
			set[i] = []byte("key-" + strconv.Itoa(i))
		}
		return keyMode{set: set}, nil
	}
	return keyMode{}, fmt.Errorf("cannot use keys %q: not none, random or set:N", s)
}
