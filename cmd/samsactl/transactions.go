package main

// samsactl transactions list / describe / find-hanging / abort: the
// commands of Kafka's kafka-transactions.sh (KIP-664), in
// samsa/tools/ctl/transactions.go.

import (
	"context"
	"errors"
	"flag"
	"math"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/tools/ctl"
)

func init() {
	commands = append(commands,
		&command{"transactions list", "[--state S,...] [--producer-id N,...] [--duration-ms D]",
			"transactional ids with their coordinator, producer id and state", txnList},
		&command{"transactions describe", "TRANSACTIONAL-ID...",
			"a transactional id's coordinator, producer id and epoch, state, timeout, start, duration and partitions", txnDescribe},
		&command{"transactions find-hanging", "[--topic T [--partition P]] [--max-transaction-timeout-ms MS]",
			"open transactions on partitions that no coordinator will finish (KIP-664)", txnFindHanging},
		&command{"transactions abort", "--topic T --partition P (--start-offset O | --producer-id N --producer-epoch E --coordinator-epoch C)",
			"write an abort marker for a hanging transaction on a partition", txnAbort},
	)
}

// withClient connects to the -broker and runs fn within the -timeout.
func (e *env) withClient(fn func(context.Context, *kgo.Client) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	cl, err := ctl.ConnectClient(ctx, e.broker)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl)
}

// splitList is a repeatable flag of comma-separated values.
type splitList []string

func (l *splitList) String() string { return strings.Join(*l, ",") }
func (l *splitList) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			return errEmptyItem
		}
		*l = append(*l, v)
	}
	return nil
}

var errEmptyItem = errors.New("an empty item in a comma-separated list")

func txnList(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	var states, pids splitList
	fs.Var(&states, "state", "only transactions in these `STATES` (comma-separated, repeatable): "+strings.Join(ctl.TxnStates, ", "))
	fs.Var(&pids, "producer-id", "only the transactions of these producer `IDS` (comma-separated, repeatable)")
	duration := fs.Int64("duration-ms", -1, "only transactions running longer than `MS` milliseconds (-1: all)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	opt := ctl.TxnListOptions{States: states, DurationMs: *duration, JSON: e.json()}
	if len(pids) > 0 {
		ids, err := ctl.ParseProducerIDs(strings.Join(pids, ","))
		if err != nil {
			return usagef(c, "%v", err)
		}
		opt.ProducerIDs = ids
	}
	if err := opt.Validate(); err != nil {
		return usagef(c, "%v", err)
	}
	return e.withClient(func(ctx context.Context, cl *kgo.Client) error {
		return ctl.TxnList(ctx, cl, opt, e.stdout)
	})
}

func txnDescribe(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := someArgs(c, pos, "TRANSACTIONAL-ID"); err != nil {
		return err
	}
	return e.withClient(func(ctx context.Context, cl *kgo.Client) error {
		return ctl.TxnDescribe(ctx, cl, ctl.TxnDescribeOptions{IDs: pos, JSON: e.json()}, e.stdout)
	})
}

// partitionFlag is --partition: a partition number, -1 when not given.
func partitionFlag(fs *flag.FlagSet, usage string) *int64 {
	return fs.Int64("partition", -1, usage)
}

func checkPartition(c *command, fs *flag.FlagSet, p int64) error {
	if len(flagsSet(fs, "partition")) == 1 && (p < 0 || p > math.MaxInt32) {
		return usagef(c, "--partition %d is not a partition number", p)
	}
	return nil
}

func txnFindHanging(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	topic := fs.String("topic", "", "search only `TOPIC` (default: every topic, internal ones included)")
	partition := partitionFlag(fs, "search only partition `P` of the --topic")
	maxTimeout := fs.Int64("max-transaction-timeout-ms", ctl.DefaultMaxTxnTimeoutMs,
		"only transactions last written more than `MS` milliseconds ago: the brokers' transaction.max.timeout.ms")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if err := checkPartition(c, fs, *partition); err != nil {
		return err
	}
	if len(flagsSet(fs, "topic")) == 1 && strings.TrimSpace(*topic) == "" {
		return usagef(c, "an empty --topic")
	}
	opt := ctl.FindHangingOptions{Topic: *topic, Partition: int32(*partition), MaxTxnTimeoutMs: *maxTimeout, JSON: e.json()}
	if err := opt.Validate(); err != nil {
		return usagef(c, "%v", err)
	}
	return e.withClient(func(ctx context.Context, cl *kgo.Client) error {
		return ctl.TxnFindHanging(ctx, cl, opt, e.stdout)
	})
}

func txnAbort(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	topic := fs.String("topic", "", "the `TOPIC` of the partition")
	partition := partitionFlag(fs, "the `PARTITION` whose transaction to abort")
	start := fs.Int64("start-offset", -1, "the `OFFSET` the transaction started at (find-hanging's START-OFFSET)")
	pid := fs.Int64("producer-id", -1, "the transaction's producer `ID` (instead of --start-offset)")
	pepoch := fs.Int64("producer-epoch", -1, "the producer's `EPOCH` (with --producer-id)")
	cepoch := fs.Int64("coordinator-epoch", -1, "the coordinator `EPOCH` of the producer's last marker (with --producer-id; -1 counts as 0)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if err := checkPartition(c, fs, *partition); err != nil {
		return err
	}
	set := func(n string) bool { return len(flagsSet(fs, n)) == 1 }
	switch {
	case set("start-offset") && *start < 0:
		return usagef(c, "--start-offset must be at least 0")
	case set("producer-id") && *pid < 0:
		return usagef(c, "--producer-id must be at least 0")
	case set("producer-epoch") && (*pepoch < 0 || *pepoch > math.MaxInt16):
		return usagef(c, "--producer-epoch %d is not an epoch (0 to %d)", *pepoch, math.MaxInt16)
	case *cepoch < -1 || *cepoch > math.MaxInt32:
		return usagef(c, "--coordinator-epoch %d is not an epoch", *cepoch)
	case set("start-offset") && (set("producer-id") || set("producer-epoch") || set("coordinator-epoch")):
		return usagef(c, "give --start-offset, or --producer-id, --producer-epoch and --coordinator-epoch, not both")
	case set("producer-id") && !set("coordinator-epoch"):
		return usagef(c, "--producer-id needs --producer-epoch and --coordinator-epoch")
	}
	opt := ctl.TxnAbortOptions{Topic: *topic, Partition: int32(*partition), StartOffset: *start, ProducerID: *pid,
		ProducerEpoch: int16(*pepoch), CoordinatorEpoch: int32(*cepoch), JSON: e.json()}
	if err := opt.Validate(); err != nil {
		return usagef(c, "%v", err)
	}
	return e.withClient(func(ctx context.Context, cl *kgo.Client) error {
		return ctl.TxnAbort(ctx, cl, opt, e.stdout)
	})
}
