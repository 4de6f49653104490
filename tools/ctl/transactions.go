package ctl

// samsactl transactions: list, describe, find-hanging and abort, as
// Kafka's kafka-transactions.sh does them (KIP-664). list and describe ask
// the transaction coordinators; find-hanging asks the partition leaders
// which producers have a transaction open (DescribeProducers) and then the
// coordinators whether they still know of it; abort writes an abort marker
// for one producer on one partition (WriteTxnMarkers, sent to the leader).
//
// These take a *kgo.Client rather than a *kadm.Client: kadm has no
// DurationFilter for ListTransactions and no way to send WriteTxnMarkers
// to one chosen broker, so those go out as kmsg requests.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnStates are the transaction states a coordinator reports, spelled as
// ListTransactions and DescribeTransactions spell them.
var TxnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// ParseTxnState returns the state named s, in any case ("ongoing" is
// Ongoing).
func ParseTxnState(s string) (string, error) {
	for _, st := range TxnStates {
		if strings.EqualFold(st, strings.TrimSpace(s)) {
			return st, nil
		}
	}
	return "", usageErr("%q is not a transaction state (one of %s)", s, strings.Join(TxnStates, ", "))
}

// ConnectClient is Connect for the commands that send kmsg requests
// themselves: a franz-go client, checked to reach one of addrs. Close it
// when done.
func ConnectClient(ctx context.Context, addrs string) (*kgo.Client, error) {
	return dial(ctx, addrs)
}

// TxnListOptions filters transactions list. A zero filter lists every
// transaction: States and ProducerIDs empty, DurationMs negative.
type TxnListOptions struct {
	States      []string // e.g. Ongoing; see TxnStates
	ProducerIDs []int64
	DurationMs  int64 // only transactions running longer than this; < 0: all (ListTransactions v1+)
	JSON        bool
}

// Validate checks the filters without asking a broker; it puts the states
// into their canonical spelling.
func (o *TxnListOptions) Validate() error {
	for i, s := range o.States {
		st, err := ParseTxnState(s)
		if err != nil {
			return err
		}
		o.States[i] = st
	}
	for _, id := range o.ProducerIDs {
		if id < 0 {
			return usageErr("producer id %d: producer ids are not negative", id)
		}
	}
	return nil
}

// TxnListing is one row of transactions list.
type TxnListing struct {
	TransactionalID string `json:"transactional_id"`
	Coordinator     int32  `json:"coordinator"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
}

// TxnList prints the transactions every coordinator knows, with their
// producer id and state, filtered as opt says.
func TxnList(ctx context.Context, cl *kgo.Client, opt TxnListOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	out, err := listTransactions(ctx, cl, opt)
	if out == nil {
		return err
	}
	if perr := printTxnList(w, out, opt.JSON); perr != nil {
		return perr
	}
	return err
}

func printTxnList(w io.Writer, out []TxnListing, asJSON bool) error {
	if asJSON {
		return writeJSON(w, out)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tSTATE")
	for _, t := range out {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.TransactionalID, t.Coordinator, t.ProducerID, t.State)
	}
	return tw.Flush()
}

// listTransactions asks every broker (ListTransactions is answered by each
// coordinator for the ids it owns). It returns what the brokers that
// answered listed, sorted by id, and an error for those that did not; a
// nil slice means nothing could be listed.
func listTransactions(ctx context.Context, cl *kgo.Client, opt TxnListOptions) ([]TxnListing, error) {
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters = opt.States
	req.ProducerIDFilters = opt.ProducerIDs
	req.DurationFilterMillis = -1
	if opt.DurationMs >= 0 {
		req.DurationFilterMillis = opt.DurationMs
	}
	out := []TxnListing{}
	var errs []error
	answered := 0
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			errs = append(errs, requestErr(fmt.Sprintf("list transactions on node %d", sh.Meta.NodeID), kmsg.ListTransactions, sh.Err))
			continue
		}
		resp := sh.Resp.(*kmsg.ListTransactionsResponse)
		if opt.DurationMs >= 0 && resp.Version < 1 {
			errs = append(errs, &ctlError{kind: ErrUnsupported,
				msg: fmt.Sprintf("cannot filter transactions by duration on node %d: it serves ListTransactions v%d, the filter needs v1 (KIP-994)", sh.Meta.NodeID, resp.Version)})
			continue
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("cannot list transactions on node %d: %s", sh.Meta.NodeID, kafkaErrText(err, "")))
			continue
		}
		if len(resp.UnknownStateFilters) > 0 {
			errs = append(errs, fmt.Errorf("cannot list transactions on node %d: it does not know the state(s) %s", sh.Meta.NodeID, strings.Join(resp.UnknownStateFilters, ", ")))
			continue
		}
		answered++
		for _, t := range resp.TransactionStates {
			out = append(out, TxnListing{TransactionalID: t.TransactionalID, Coordinator: sh.Meta.NodeID, ProducerID: t.ProducerID, State: t.TransactionState})
		}
	}
	if answered == 0 && len(errs) > 0 {
		return nil, firstErr(errs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TransactionalID < out[j].TransactionalID })
	return out, firstErr(errs)
}

// TxnDescribeOptions names the transactional ids to describe.
type TxnDescribeOptions struct {
	IDs  []string
	JSON bool
	Now  time.Time // for the duration; zero: the current time
}

// TxnDescription is one transactional id in transactions describe.
type TxnDescription struct {
	TransactionalID string           `json:"transactional_id"`
	Coordinator     int32            `json:"coordinator"`
	ProducerID      int64            `json:"producer_id"`
	ProducerEpoch   int16            `json:"producer_epoch"`
	State           string           `json:"state"`
	TimeoutMs       int32            `json:"timeout_ms"`
	StartTimeMs     *int64           `json:"start_time_ms"` // of the open or last transaction; null: none
	DurationMs      *int64           `json:"duration_ms"`   // since StartTimeMs
	Partitions      []TopicPartition `json:"partitions"`    // in the transaction (once prepared: those still without a marker)
}

// TxnDescribe prints each transactional id's coordinator, producer id and
// epoch, state, timeout, the start and duration of its open transaction
// and the partitions in it. An id no coordinator knows is ErrNotFound,
// after the others are printed.
func TxnDescribe(ctx context.Context, cl *kgo.Client, opt TxnDescribeOptions, w io.Writer) error {
	if len(opt.IDs) == 0 {
		return usageErr("transactions describe needs a TRANSACTIONAL-ID")
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	described, err := kadm.NewClient(cl).DescribeTransactions(ctx, opt.IDs...)
	var errs []error
	if err != nil {
		if described == nil {
			return requestErr("describe transactions", kmsg.DescribeTransactions, err)
		}
		errs = append(errs, requestErr("describe transactions", kmsg.DescribeTransactions, err))
	}
	out := []TxnDescription{}
	for _, id := range opt.IDs {
		d, ok := described[id]
		switch {
		case !ok && err != nil:
			continue // said above
		case !ok || errors.Is(d.Err, kerr.TransactionalIDNotFound):
			errs = append(errs, notFoundErr("transactional id %q does not exist (samsactl transactions list shows them)", id))
			continue
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("cannot describe transactional id %q: %s", id, kafkaErrText(d.Err, "")))
			continue
		}
		out = append(out, describedTxn(d, now))
	}
	if err := printTxnDescriptions(w, out, opt.JSON); err != nil {
		return err
	}
	return firstErr(errs)
}

// printTxnDescriptions prints a table (nothing if there is no row: the
// errors say why) or JSON.
func printTxnDescriptions(w io.Writer, out []TxnDescription, asJSON bool) error {
	if asJSON {
		return writeJSON(w, out)
	}
	if len(out) == 0 {
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tEPOCH\tSTATE\tTIMEOUT\tSTARTED\tDURATION\tPARTITIONS")
	for _, d := range out {
		started, dur := "-", "-"
		if d.StartTimeMs != nil {
			started = msTime(*d.StartTimeMs)
			dur = msDuration(*d.DurationMs)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", d.TransactionalID, d.Coordinator, d.ProducerID, d.ProducerEpoch,
			d.State, msDuration(int64(d.TimeoutMs)), started, dur, partitionsText(d.Partitions))
	}
	return tw.Flush()
}

// msTime prints Unix milliseconds as UTC RFC 3339 with milliseconds.
func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

func describedTxn(d kadm.DescribedTransaction, now time.Time) TxnDescription {
	td := TxnDescription{TransactionalID: d.TxnID, Coordinator: d.Coordinator, ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch,
		State: d.State, TimeoutMs: d.TimeoutMillis, Partitions: []TopicPartition{}}
	if d.StartTimestamp >= 0 {
		start, dur := d.StartTimestamp, now.UnixMilli()-d.StartTimestamp
		td.StartTimeMs, td.DurationMs = &start, &dur
	}
	for _, t := range d.Topics.Sorted() {
		td.Partitions = append(td.Partitions, TopicPartition{Topic: t.Topic, Partitions: t.Partitions})
	}
	return td
}

// partitionsText is "orders:0,1 payments:3", or "-" for none.
func partitionsText(tps []TopicPartition) string {
	if len(tps) == 0 {
		return "-"
	}
	s := make([]string, len(tps))
	for i, tp := range tps {
		s[i] = tp.Topic + ":" + joinInt32s(tp.Partitions)
	}
	return strings.Join(s, " ")
}

// msDuration prints milliseconds as a duration: "1m0s", "1.5s", "12ms".
func msDuration(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).String()
}

// DefaultMaxTxnTimeoutMs is Kafka's transaction.max.timeout.ms default:
// no transaction may stay open longer, so one older than this that no
// coordinator knows is hanging.
const DefaultMaxTxnTimeoutMs = 900000

// FindHangingOptions limits find-hanging to a topic or one partition
// (Partition < 0: every partition; Topic empty: every topic, internal ones
// included), and to transactions open longer than MaxTxnTimeoutMs.
type FindHangingOptions struct {
	Topic           string
	Partition       int32
	MaxTxnTimeoutMs int64
	JSON            bool
	Now             time.Time // zero: the current time
}

// Validate checks the options without asking a broker.
func (o FindHangingOptions) Validate() error {
	if o.Partition >= 0 && o.Topic == "" {
		return usageErr("--partition needs --topic")
	}
	if o.MaxTxnTimeoutMs < 0 {
		return usageErr("--max-transaction-timeout-ms must be at least 0")
	}
	return nil
}

// HangingTxn is an open transaction on a partition that no coordinator
// will finish: find-hanging prints these.
type HangingTxn struct {
	Topic            string  `json:"topic"`
	Partition        int32   `json:"partition"`
	ProducerID       int64   `json:"producer_id"`
	ProducerEpoch    int16   `json:"producer_epoch"`
	CoordinatorEpoch int32   `json:"coordinator_epoch"`
	StartOffset      int64   `json:"start_offset"`
	LastTimestampMs  int64   `json:"last_timestamp_ms"`
	DurationMs       int64   `json:"duration_ms"`      // since LastTimestampMs, as Kafka counts it
	TransactionalID  *string `json:"transactional_id"` // the id that has this producer id now, null if none
	Reason           string  `json:"reason"`
}

// FindHangingResult is what find-hanging prints.
type FindHangingResult struct {
	PartitionsSearched int          `json:"partitions_searched"`
	MaxTxnTimeoutMs    int64        `json:"max_transaction_timeout_ms"`
	OpenTransactions   int          `json:"open_transactions"` // open longer than the timeout, checked with the coordinators
	Hanging            []HangingTxn `json:"hanging"`
}

// describeProducersBatch bounds one DescribeProducers request, as
// kafka-transactions.sh does.
const describeProducersBatch = 500

// TxnFindHanging finds hanging transactions as KIP-664 defines them: a
// producer with a transaction open on a partition (DescribeProducers:
// CurrentTxnStartOffset >= 0), last written longer than the maximum
// transaction timeout ago, whose producer id no coordinator lists
// (ListTransactions), or whose transactional id's coordinator does not
// know it (DescribeTransactions) or does not have the partition in its
// transaction. A partition whose producers cannot be described is an
// error, after the others are printed.
func TxnFindHanging(ctx context.Context, cl *kgo.Client, opt FindHangingOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	adm := kadm.NewClient(cl)
	tps, err := hangingSearchPartitions(ctx, adm, opt)
	if err != nil {
		return err
	}
	var errs []error
	var open []openTxn
	for start := 0; start < len(tps); start += describeProducersBatch {
		batch := kadm.TopicsSet{}
		for _, tp := range tps[start:min(start+describeProducersBatch, len(tps))] {
			batch.Add(tp.topic, tp.partition)
		}
		described, err := adm.DescribeProducers(ctx, batch)
		if err != nil && len(described) == 0 {
			return requestErr("describe producers", kmsg.DescribeProducers, err)
		}
		if err != nil {
			errs = append(errs, requestErr("describe producers", kmsg.DescribeProducers, err))
		}
		for _, p := range described.SortedPartitions() {
			if p.Err != nil {
				errs = append(errs, fmt.Errorf("cannot describe the producers of %s-%d: %s", p.Topic, p.Partition, kafkaErrText(p.Err, p.ErrMessage)))
				continue
			}
			for _, dp := range p.ActiveProducers.Sorted() {
				open = append(open, openTxn{dp})
			}
		}
	}
	cands := candidateTxns(open, now, opt.MaxTxnTimeoutMs)
	hanging := []HangingTxn{}
	if len(cands) > 0 {
		ids, descs, err := coordinatorView(ctx, cl, adm, cands)
		if err != nil {
			return err
		}
		hanging = hangingTxns(cands, ids, descs, now)
	}
	res := FindHangingResult{PartitionsSearched: len(tps), MaxTxnTimeoutMs: opt.MaxTxnTimeoutMs, OpenTransactions: len(cands), Hanging: hanging}
	if err := printHanging(w, res, opt.JSON); err != nil {
		return err
	}
	return firstErr(errs)
}

type topicPartition struct {
	topic     string
	partition int32
}

// hangingSearchPartitions lists the partitions find-hanging searches.
func hangingSearchPartitions(ctx context.Context, adm *kadm.Client, opt FindHangingOptions) ([]topicPartition, error) {
	var topics []string
	if opt.Topic != "" {
		topics = []string{opt.Topic}
	}
	m, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, requestErr("list the partitions", kmsg.Metadata, err)
	}
	var tps []topicPartition
	for _, t := range m.Topics.Sorted() {
		if t.Err != nil {
			if errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
				return nil, topicNotFound(t.Topic)
			}
			return nil, fmt.Errorf("cannot list the partitions of topic %s: %s", t.Topic, kafkaErrText(t.Err, ""))
		}
		found := false
		for _, p := range t.Partitions.Sorted() {
			if opt.Partition < 0 || p.Partition == opt.Partition {
				tps = append(tps, topicPartition{t.Topic, p.Partition})
				found = true
			}
		}
		if opt.Partition >= 0 && !found {
			return nil, notFoundErr("topic %s has no partition %d (it has %s)", t.Topic, opt.Partition, plural(len(t.Partitions), "partition"))
		}
	}
	return tps, nil
}

// openTxn is a producer that DescribeProducers reported on a partition.
type openTxn struct {
	kadm.DescribedProducer
}

// candidateTxns keeps the producers with a transaction open whose last
// write is more than maxTimeoutMs old: Kafka's test (now - LastTimestamp >
// max), so a timeout of 0 keeps every open transaction not written to in
// this very millisecond.
func candidateTxns(open []openTxn, now time.Time, maxTimeoutMs int64) []openTxn {
	var out []openTxn
	for _, o := range open {
		if o.CurrentTxnStartOffset >= 0 && now.UnixMilli()-o.LastTimestamp > maxTimeoutMs {
			out = append(out, o)
		}
	}
	return out
}

// coordinatorView asks the coordinators which transactional id has each
// candidate's producer id (ListTransactions, filtered by producer id) and
// how they describe those ids (DescribeTransactions; a nil description:
// the coordinator does not know the id).
func coordinatorView(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cands []openTxn) (map[int64]string, map[string]*kadm.DescribedTransaction, error) {
	pidSet := map[int64]bool{}
	var pids []int64
	for _, c := range cands {
		if !pidSet[c.ProducerID] {
			pidSet[c.ProducerID] = true
			pids = append(pids, c.ProducerID)
		}
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	listed, err := listTransactions(ctx, cl, TxnListOptions{ProducerIDs: pids, DurationMs: -1})
	if err != nil {
		// A coordinator that did not answer may own the producer's id:
		// calling its transaction hanging would be a guess.
		return nil, nil, err
	}
	ids := map[int64]string{}
	var txnIDs []string
	for _, l := range listed {
		if pidSet[l.ProducerID] { // a broker that ignores the filter lists others
			ids[l.ProducerID] = l.TransactionalID
			txnIDs = append(txnIDs, l.TransactionalID)
		}
	}
	descs := map[string]*kadm.DescribedTransaction{}
	if len(txnIDs) == 0 {
		return ids, descs, nil
	}
	described, err := adm.DescribeTransactions(ctx, txnIDs...)
	if err != nil {
		return nil, nil, requestErr("describe transactions", kmsg.DescribeTransactions, err)
	}
	for _, id := range txnIDs {
		d, ok := described[id]
		switch {
		case !ok || errors.Is(d.Err, kerr.TransactionalIDNotFound):
			descs[id] = nil
		case d.Err != nil:
			return nil, nil, fmt.Errorf("cannot describe transactional id %q: %s", id, kafkaErrText(d.Err, ""))
		default:
			descs[id] = &d
		}
	}
	return ids, descs, nil
}

// hangingTxns is KIP-664's test, given what the coordinators said: an
// open transaction hangs if no transactional id has its producer id, if
// the id's coordinator does not know it, or if the coordinator's
// transaction does not include the partition (the coordinator then will
// never write its marker there).
func hangingTxns(cands []openTxn, ids map[int64]string, descs map[string]*kadm.DescribedTransaction, now time.Time) []HangingTxn {
	out := []HangingTxn{}
	for _, c := range cands {
		h := HangingTxn{Topic: c.Topic, Partition: c.Partition, ProducerID: c.ProducerID, ProducerEpoch: c.ProducerEpoch,
			CoordinatorEpoch: c.CoordinatorEpoch, StartOffset: c.CurrentTxnStartOffset, LastTimestampMs: c.LastTimestamp,
			DurationMs: now.UnixMilli() - c.LastTimestamp}
		id, ok := ids[c.ProducerID]
		if !ok {
			h.Reason = "no coordinator has a transactional id with this producer id"
			out = append(out, h)
			continue
		}
		h.TransactionalID = &id
		d := descs[id]
		switch {
		case d == nil:
			h.Reason = fmt.Sprintf("the coordinator does not know transactional id %q", id)
		case !d.Topics.Lookup(c.Topic, c.Partition):
			h.Reason = fmt.Sprintf("transactional id %q (%s, producer %d) does not include this partition", id, d.State, d.ProducerID)
		default:
			continue // the coordinator will write the marker
		}
		out = append(out, h)
	}
	sort.SliceStable(out, func(i, j int) bool {
		l, r := out[i], out[j]
		return l.Topic < r.Topic || l.Topic == r.Topic && (l.Partition < r.Partition || l.Partition == r.Partition && l.ProducerID < r.ProducerID)
	})
	return out
}

func printHanging(w io.Writer, res FindHangingResult, asJSON bool) error {
	if asJSON {
		return writeJSON(w, res)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tPRODUCER-ID\tEPOCH\tCOORDINATOR-EPOCH\tSTART-OFFSET\tLAST-WRITE\tAGE\tTRANSACTIONAL-ID\tWHY")
	for _, h := range res.Hanging {
		id := "-"
		if h.TransactionalID != nil {
			id = *h.TransactionalID
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", h.Topic, h.Partition, h.ProducerID, h.ProducerEpoch, h.CoordinatorEpoch,
			h.StartOffset, msTime(h.LastTimestampMs),
			(time.Duration(h.DurationMs) * time.Millisecond).Round(time.Second), id, h.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d hanging of %s open longer than %s, in %s searched\n",
		len(res.Hanging), plural(res.OpenTransactions, "transaction"), msDuration(res.MaxTxnTimeoutMs), plural(res.PartitionsSearched, "partition"))
	if err == nil && len(res.Hanging) > 0 {
		h := res.Hanging[0]
		_, err = fmt.Fprintf(w, "abort one with: samsactl transactions abort --topic %s --partition %d --start-offset %d\n", h.Topic, h.Partition, h.StartOffset)
	}
	return err
}

// TxnAbortOptions names the transaction to abort on one partition: by the
// offset it started at (StartOffset >= 0; the producer is found with
// DescribeProducers), or by its producer id, epoch and coordinator epoch
// (ProducerID >= 0), for brokers without DescribeProducers.
type TxnAbortOptions struct {
	Topic            string
	Partition        int32
	StartOffset      int64 // -1: none
	ProducerID       int64 // -1: none
	ProducerEpoch    int16 // -1: none
	CoordinatorEpoch int32 // -1 (or any negative): 0, as Kafka does
	JSON             bool
}

// Validate checks the options without asking a broker.
func (o TxnAbortOptions) Validate() error {
	switch {
	case o.Topic == "":
		return usageErr("--topic TOPIC is required")
	case o.Partition < 0:
		return usageErr("--partition P is required")
	case o.StartOffset >= 0 && (o.ProducerID >= 0 || o.ProducerEpoch >= 0):
		return usageErr("give --start-offset, or --producer-id, --producer-epoch and --coordinator-epoch, not both")
	case o.StartOffset >= 0:
		return nil
	case o.ProducerID < 0:
		return usageErr("name the transaction with --start-offset OFFSET, or with --producer-id, --producer-epoch and --coordinator-epoch")
	case o.ProducerEpoch < 0:
		return usageErr("--producer-id needs --producer-epoch (and --coordinator-epoch)")
	}
	return nil
}

// TxnAbortResult is what transactions abort did.
type TxnAbortResult struct {
	Topic            string `json:"topic"`
	Partition        int32  `json:"partition"`
	ProducerID       int64  `json:"producer_id"`
	ProducerEpoch    int16  `json:"producer_epoch"`
	CoordinatorEpoch int32  `json:"coordinator_epoch"`
	StartOffset      *int64 `json:"start_offset"` // null: named by producer id
	Leader           int32  `json:"leader"`       // the broker that wrote the marker
}

// TxnAbort writes an abort marker for one producer's transaction on one
// partition (WriteTxnMarkers to the partition's leader, with the
// producer's epoch as it is and the coordinator epoch, as Kafka's
// Admin.abortTransaction does). The partition's error, if any, is the
// command's error.
func TxnAbort(ctx context.Context, cl *kgo.Client, opt TxnAbortOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	res := TxnAbortResult{Topic: opt.Topic, Partition: opt.Partition, ProducerID: opt.ProducerID, ProducerEpoch: opt.ProducerEpoch, CoordinatorEpoch: opt.CoordinatorEpoch}
	if opt.StartOffset >= 0 {
		p, err := producerAt(ctx, adm, opt.Topic, opt.Partition, opt.StartOffset)
		if err != nil {
			return err
		}
		start := opt.StartOffset
		res.ProducerID, res.ProducerEpoch, res.CoordinatorEpoch, res.StartOffset = p.ProducerID, p.ProducerEpoch, p.CoordinatorEpoch, &start
	}
	// A producer whose transaction hung before any marker has coordinator
	// epoch -1; 0 is no more than any coordinator's epoch.
	res.CoordinatorEpoch = max(res.CoordinatorEpoch, 0)
	leader, err := writeAbortMarker(ctx, cl, adm, &res)
	if err != nil {
		return err
	}
	res.Leader = leader
	if opt.JSON {
		return writeJSON(w, res)
	}
	_, err = fmt.Fprintf(w, "aborted the transaction of producer %d (epoch %d, coordinator epoch %d) on %s-%d: node %d wrote the abort marker\n",
		res.ProducerID, res.ProducerEpoch, res.CoordinatorEpoch, res.Topic, res.Partition, res.Leader)
	return err
}

// producerAt finds the producer whose open transaction on the partition
// starts at offset.
func producerAt(ctx context.Context, adm *kadm.Client, topic string, partition int32, offset int64) (kadm.DescribedProducer, error) {
	if _, err := leaderOf(ctx, adm, topic, partition); err != nil {
		return kadm.DescribedProducer{}, err
	}
	s := kadm.TopicsSet{}
	s.Add(topic, partition)
	described, err := adm.DescribeProducers(ctx, s)
	if err != nil {
		return kadm.DescribedProducer{}, requestErr(fmt.Sprintf("describe the producers of %s-%d", topic, partition), kmsg.DescribeProducers, err)
	}
	p, ok := described[topic].Partitions[partition]
	switch {
	case !ok:
		return kadm.DescribedProducer{}, fmt.Errorf("cannot describe the producers of %s-%d: the broker did not answer for it", topic, partition)
	case p.Err != nil:
		return kadm.DescribedProducer{}, fmt.Errorf("cannot describe the producers of %s-%d: %s", topic, partition, kafkaErrText(p.Err, p.ErrMessage))
	}
	for _, dp := range p.ActiveProducers.Sorted() {
		if dp.CurrentTxnStartOffset == offset {
			return dp, nil
		}
	}
	return kadm.DescribedProducer{}, notFoundErr("no open transaction starts at offset %d of %s-%d (samsactl transactions find-hanging --topic %s --partition %d shows the open ones)",
		offset, topic, partition, topic, partition)
}

// leaderOf returns the partition's leader; an unknown topic or partition
// is ErrNotFound.
func leaderOf(ctx context.Context, adm *kadm.Client, topic string, partition int32) (int32, error) {
	m, err := adm.Metadata(ctx, topic)
	if err != nil {
		return 0, requestErr("look up topic "+topic, kmsg.Metadata, err)
	}
	t, ok := m.Topics[topic]
	switch {
	case !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition):
		return 0, topicNotFound(topic)
	case t.Err != nil:
		return 0, fmt.Errorf("cannot look up topic %s: %s", topic, kafkaErrText(t.Err, ""))
	}
	p, ok := t.Partitions[partition]
	switch {
	case !ok:
		return 0, notFoundErr("topic %s has no partition %d (it has %s)", topic, partition, plural(len(t.Partitions), "partition"))
	case p.Leader < 0:
		return 0, fmt.Errorf("%s-%d has no leader: %s", topic, partition, kafkaErrText(p.Err, ""))
	}
	return p.Leader, nil
}

// abortRetries bounds the retries of a marker whose leader moved, as the
// Java admin retries them (within the -timeout either way).
const abortRetries = 5

// writeAbortMarker sends the abort marker to the partition's leader and
// returns that leader.
func writeAbortMarker(ctx context.Context, cl *kgo.Client, adm *kadm.Client, r *TxnAbortResult) (int32, error) {
	what := fmt.Sprintf("abort the transaction of producer %d (epoch %d, coordinator epoch %d) on %s-%d",
		r.ProducerID, r.ProducerEpoch, r.CoordinatorEpoch, r.Topic, r.Partition)
	for attempt := 0; ; attempt++ {
		leader, err := leaderOf(ctx, adm, r.Topic, r.Partition)
		if err != nil {
			return 0, err
		}
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.Committed = r.ProducerID, r.ProducerEpoch, r.CoordinatorEpoch, false
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = r.Topic, []int32{r.Partition}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
		kresp, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			return 0, requestErr(what, kmsg.WriteTxnMarkers, err)
		}
		code, err := markerResult(kresp.(*kmsg.WriteTxnMarkersResponse), r)
		if err != nil {
			return 0, fmt.Errorf("cannot %s: %w", what, err)
		}
		kerrv := kerr.ErrorForCode(code)
		switch {
		case kerrv == nil:
			return leader, nil
		case attempt < abortRetries && (errors.Is(kerrv, kerr.NotLeaderForPartition) || errors.Is(kerrv, kerr.ReplicaNotAvailable) ||
			errors.Is(kerrv, kerr.BrokerNotAvailable) || errors.Is(kerrv, kerr.UnknownTopicOrPartition)):
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("cannot %s: %s, and no answer within -timeout", what, kafkaErrText(kerrv, ""))
			case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
			}
			continue
		}
		return 0, fmt.Errorf("cannot %s: node %d refused it: %s%s", what, leader, kafkaErrText(kerrv, ""), abortHint(kerrv))
	}
}

// markerResult finds the partition's error code in the response, which
// must hold exactly the one marker sent.
func markerResult(resp *kmsg.WriteTxnMarkersResponse, r *TxnAbortResult) (int16, error) {
	if len(resp.Markers) != 1 || resp.Markers[0].ProducerID != r.ProducerID ||
		len(resp.Markers[0].Topics) != 1 || resp.Markers[0].Topics[0].Topic != r.Topic ||
		len(resp.Markers[0].Topics[0].Partitions) != 1 || resp.Markers[0].Topics[0].Partitions[0].Partition != r.Partition {
		return 0, errors.New("the broker's WriteTxnMarkers answer is not about the one marker sent")
	}
	return resp.Markers[0].Topics[0].Partitions[0].ErrorCode, nil
}

// abortHint says what a refused abort most likely means.
func abortHint(err error) string {
	switch {
	case errors.Is(err, kerr.InvalidProducerEpoch):
		return " (the producer has a newer epoch: its transaction is no longer the one named)"
	case errors.Is(err, kerr.TransactionCoordinatorFenced):
		return " (a coordinator with a newer epoch wrote this producer's last marker: pass that --coordinator-epoch)"
	}
	return ""
}

// parseInt64s parses "1,2,3".
func parseInt64s(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", strings.TrimSpace(f))
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseProducerIDs parses a --producer-id value: ids separated by commas.
func ParseProducerIDs(s string) ([]int64, error) {
	ids, err := parseInt64s(s)
	if err != nil {
		return nil, usageErr("--producer-id: %v", err)
	}
	return ids, nil
}
