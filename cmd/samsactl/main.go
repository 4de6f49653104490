// Command samsactl administers samsa, or any Kafka cluster, over the Kafka
// protocol: topics, configs, consumer groups, offsets, transactions, the
// cluster and a samsa pair's failover. The commands live in
// samsa/tools/ctl; this file is flags, dispatch and exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"samsa/tools/ctl"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes; usage() lists them for the operator.
const (
	exitOK          = 0
	exitFailed      = 1 // the operation failed or the broker refused it
	exitUsage       = 2
	exitUnreachable = 3
	exitNotFound    = 4
)

func main() {
	ctl.Version = version
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one samsactl command, e.g. "topics create".
type command struct {
	name  string
	args  string // the positional arguments, for the usage line
	brief string
	run   func(e *env, c *command, args []string) error
}

// commands is filled in init (the run functions print usage, which reads
// the table). log.go adds the log commands.
var commands []*command

func init() {
	commands = append(commands,
		&command{"topics list", "[--internal]", "topics with partitions and replication factor", topicsList},
		&command{"topics describe", "TOPIC...", "partitions (leader, replicas, ISR, epoch, log start/end) and configs set on the topic", topicsDescribe},
		&command{"topics create", "TOPIC... [--partitions N] [--replication-factor R] [--config K=V]...", "create topics", topicsCreate},
		&command{"topics delete", "TOPIC...", "delete topics", topicsDelete},
		&command{"topics alter-config", "TOPIC [--set K=V]... [--delete K]...", "change a topic's configs (IncrementalAlterConfigs)", topicsAlterConfig},
		&command{"topics add-partitions", "TOPIC --total N", "grow a topic to N partitions", topicsAddPartitions},
		&command{"configs describe", "--topic T | --broker-id ID | --broker-defaults [--all]", "configs set on a topic or broker (--all: every config)", configsDescribe},
		&command{"configs alter", "--topic T | --broker-id ID | --broker-defaults [--set K=V]... [--delete K]...", "change topic or dynamic broker configs", configsAlter},
		&command{"groups list", "", "consumer groups with state, protocol type and members", groupsList},
		&command{"groups describe", "GROUP...", "members, committed offsets, log end offsets and lag", groupsDescribe},
		&command{"groups delete", "GROUP...", "delete groups (and their offsets); they must have no members", groupsDelete},
		&command{"groups reset-offsets", "GROUP (--topic T[:P,P]... | --all-topics) --to-earliest|--to-latest|--to-datetime T|--to-offset N|--shift-by N [--execute]",
			"move a group's committed offsets (a dry run unless --execute)", groupsResetOffsets},
		&command{"offsets", "TOPIC [--time earliest|latest|RFC3339|UNIX-MS]", "offsets per partition: earliest and latest, or at a time", offsets},
		&command{"delete-records", "TOPIC (--partition P --before OFFSET | [--partition P] --all)", "delete a partition's records before an offset", deleteRecords},
		&command{"cluster", "[--api-versions]", "cluster id, controller, brokers with their role and API versions", cluster},
		&command{"status", "", "who leads the pair, each partition's ISR", status},
		&command{"promote", "", "make this standby (the -broker) the primary", promote},
	)
}

// env is one run of samsactl: where to print and the global flags.
type env struct {
	stdout, stderr io.Writer
	broker         string
	timeout        time.Duration
	output         string
	commandConfig  string // -command-config: TLS and SASL settings
}

func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.broker, "broker", e.broker, "the broker(s) to talk to, `host:port[,host:port]`")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "give up after this long")
	fs.StringVar(&e.output, "o", e.output, "output `format`: table or json")
	fs.StringVar(&e.commandConfig, "command-config", e.commandConfig, "client properties `file` for TLS and SASL (security.protocol, ssl.ca.location, sasl.mechanism, sasl.username, sasl.password, ...)")
}

func (e *env) json() bool { return e.output == "json" }

// flagSet is a command's flags, the global ones included, so they may come
// after the command too.
func (e *env) flagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("samsactl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e.globalFlags(fs)
	return fs
}

// helpError asks run to print a command's usage and exit 0.
type helpError struct {
	c  *command
	fs *flag.FlagSet
}

func (h *helpError) Error() string { return "help requested" }

// usageError is a usage mistake: exit code 2.
type usageError struct{ msg string }

func (u *usageError) Error() string        { return u.msg }
func (u *usageError) Is(target error) bool { return target == ctl.ErrUsage }

func usagef(c *command, format string, a ...any) error {
	return &usageError{fmt.Sprintf("%s: %s (samsactl %s -h shows the usage)", c.name, fmt.Sprintf(format, a...), c.name)}
}

// parse parses flags wherever they are among the arguments and returns the
// positional ones ("--" ends the flags).
func (e *env) parse(fs *flag.FlagSet, c *command, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpError{c, fs}
			}
			return nil, usagef(c, "%v", err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if e.output != "table" && e.output != "json" {
		return nil, usagef(c, "-o must be table or json, not %q", e.output)
	}
	if e.timeout <= 0 {
		return nil, usagef(c, "-timeout must be positive")
	}
	if e.commandConfig != "" {
		opts, err := ctl.LoadCommandConfig(e.commandConfig)
		if err != nil {
			return nil, err
		}
		ctl.SetConnection(opts)
	}
	return pos, nil
}

// withAdmin connects to the -broker and runs fn within the -timeout.
func (e *env) withAdmin(fn func(context.Context, *kadm.Client) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	adm, err := ctl.Connect(ctx, e.broker)
	if err != nil {
		return err
	}
	defer adm.Close()
	return fn(ctx, adm)
}

// run is samsactl with its arguments (without the program name); it
// returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, broker: "127.0.0.1:9092", timeout: 30 * time.Second, output: "table"}
	top := flag.NewFlagSet("samsactl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	e.globalFlags(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, top)
			return exitOK
		}
		fmt.Fprintf(stderr, "samsactl: %v (samsactl -h shows the usage)\n", err)
		return exitUsage
	}
	rest := top.Args()
	if len(rest) == 0 {
		usage(stderr, top)
		return exitUsage
	}
	if rest[0] == "help" {
		usage(stdout, top)
		return exitOK
	}
	if rest[0] == "version" || rest[0] == "-version" {
		fmt.Fprintln(stdout, "samsactl", version)
		return exitOK
	}
	c, n := lookup(rest)
	if c == nil {
		if subs := subcommands(rest[0]); len(subs) > 0 {
			what := "needs a subcommand"
			if len(rest) > 1 {
				what = fmt.Sprintf("has no subcommand %q", rest[1])
			}
			fmt.Fprintf(stderr, "samsactl: %s %s: one of %s\n", rest[0], what, strings.Join(subs, ", "))
		} else {
			fmt.Fprintf(stderr, "samsactl: unknown command %q (samsactl -h lists the commands)\n", rest[0])
		}
		return exitUsage
	}
	err := c.run(e, c, rest[n:])
	if err == nil {
		return exitOK
	}
	var h *helpError
	if errors.As(err, &h) {
		commandUsage(stdout, h.c, h.fs)
		return exitOK
	}
	fmt.Fprintf(stderr, "samsactl: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	return exitCode(err)
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, ctl.ErrUsage):
		return exitUsage
	case errors.Is(err, ctl.ErrUnreachable):
		return exitUnreachable
	case errors.Is(err, ctl.ErrNotFound):
		return exitNotFound
	}
	return exitFailed
}

// lookup finds the command named by the first one or two arguments and
// says how many it used.
func lookup(args []string) (*command, int) {
	if len(args) >= 2 {
		for _, c := range commands {
			if c.name == args[0]+" "+args[1] {
				return c, 2
			}
		}
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c, 1
		}
	}
	return nil, 0
}

func subcommands(group string) []string {
	var subs []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			subs = append(subs, sub)
		}
	}
	return subs
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `samsactl administers samsa (or any Kafka cluster) over the Kafka protocol.

Usage:
  samsactl [flags] COMMAND [arguments] [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.brief)
	}
	fmt.Fprint(w, `
Flags (before or after the command):
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Exit codes:
  0  ok
  1  the operation failed or the broker refused it (log verify: damage found)
  2  usage error
  3  cannot reach the broker
  4  not found (unknown topic, partition, group, broker, transactional id or open transaction)

"samsactl COMMAND -h" shows a command's flags; docs/samsactl.md has examples.
`)
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n  samsactl %s\n\n%s.\n\nFlags:\n", strings.TrimSpace(c.name+" "+c.args), c.brief)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// settingsFlag is a repeatable NAME=VALUE flag.
type settingsFlag []ctl.ConfigSetting

func (l *settingsFlag) String() string { return "" }
func (l *settingsFlag) Set(s string) error {
	cs, err := ctl.ParseConfigSetting(s)
	if err != nil {
		return err
	}
	*l = append(*l, cs)
	return nil
}

// flagsSet says which of the named flags were given.
func flagsSet(fs *flag.FlagSet, names ...string) []string {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			if f.Name == n {
				set = append(set, "--"+n)
			}
		}
	})
	return set
}

func noArgs(c *command, pos []string) error {
	if len(pos) > 0 {
		return usagef(c, "unexpected argument %q", pos[0])
	}
	return nil
}

func oneArg(c *command, pos []string, what string) error {
	switch {
	case len(pos) == 0:
		return usagef(c, "needs a %s", what)
	case len(pos) > 1:
		return usagef(c, "takes one %s, got %d arguments", what, len(pos))
	}
	return noEmpty(c, pos, what)
}

// noEmpty refuses an empty name ("" on the command line).
func noEmpty(c *command, pos []string, what string) error {
	for _, p := range pos {
		if strings.TrimSpace(p) == "" {
			return usagef(c, "an empty %s", what)
		}
	}
	return nil
}

func someArgs(c *command, pos []string, what string) error {
	if len(pos) == 0 {
		return usagef(c, "needs at least one %s", what)
	}
	return noEmpty(c, pos, what)
}

func topicsList(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	internal := fs.Bool("internal", false, "also list internal topics (and show the column)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.TopicsList(ctx, adm, ctl.TopicsListOptions{Internal: *internal, JSON: e.json()}, e.stdout)
	})
}

func topicsDescribe(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := someArgs(c, pos, "TOPIC"); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.TopicsDescribe(ctx, adm, ctl.TopicsDescribeOptions{Topics: pos, JSON: e.json()}, e.stdout)
	})
}

func topicsCreate(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	partitions := fs.Int("partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	rf := fs.Int("replication-factor", -1, "replicas per partition (-1: the broker's default)")
	var configs settingsFlag
	fs.Var(&configs, "config", "a topic config `NAME=VALUE` (repeatable)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := someArgs(c, pos, "TOPIC"); err != nil {
		return err
	}
	if *partitions > 1<<31-1 || *rf > 1<<15-1 {
		return usagef(c, "--partitions or --replication-factor too large")
	}
	opt := ctl.TopicsCreateOptions{Topics: pos, Partitions: int32(*partitions), ReplicationFactor: int16(*rf), Configs: configs, JSON: e.json()}
	if err := opt.Validate(); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.TopicsCreate(ctx, adm, opt, e.stdout)
	})
}

func topicsDelete(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := someArgs(c, pos, "TOPIC"); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.TopicsDelete(ctx, adm, ctl.TopicsDeleteOptions{Topics: pos, JSON: e.json()}, e.stdout)
	})
}

func alterFlags(fs *flag.FlagSet) (*settingsFlag, *listFlag) {
	var set settingsFlag
	var del listFlag
	fs.Var(&set, "set", "set a config, `NAME=VALUE` (repeatable)")
	fs.Var(&del, "delete", "revert a config to its default, `NAME` (repeatable)")
	return &set, &del
}

func topicsAlterConfig(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	set, del := alterFlags(fs)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "TOPIC"); err != nil {
		return err
	}
	opt := ctl.ConfigsAlterOptions{Resource: ctl.ConfigResource{Topic: pos[0], BrokerID: -1}, Set: *set, Delete: *del, JSON: e.json()}
	if err := opt.Validate(); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.ConfigsAlter(ctx, adm, opt, e.stdout)
	})
}

func topicsAddPartitions(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	total := fs.Int("total", 0, "the partition count wanted (more than now)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "TOPIC"); err != nil {
		return err
	}
	if *total < 1 {
		return usagef(c, "--total N, the new partition count, is required")
	}
	if *total > math.MaxInt32 {
		return usagef(c, "--total %d is more partitions than a topic can have (at most %d)", *total, math.MaxInt32)
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.TopicsAddPartitions(ctx, adm, ctl.TopicsAddPartitionsOptions{Topic: pos[0], Total: *total, JSON: e.json()}, e.stdout)
	})
}

func resourceFlags(fs *flag.FlagSet) *ctl.ConfigResource {
	r := &ctl.ConfigResource{BrokerID: -1}
	fs.StringVar(&r.Topic, "topic", "", "the `TOPIC` whose configs to show or change")
	fs.Func("broker-id", "the broker (by node `ID`) whose configs to show or change", func(s string) error {
		var id int32
		if _, err := fmt.Sscan(s, &id); err != nil || id < 0 {
			return fmt.Errorf("%q is not a node id", s)
		}
		r.BrokerID = id
		return nil
	})
	fs.BoolVar(&r.BrokerDefaults, "broker-defaults", false, "the cluster-wide broker defaults")
	return r
}

func configsDescribe(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	r := resourceFlags(fs)
	all := fs.Bool("all", false, "show every config, not only those set dynamically")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if set := flagsSet(fs, "topic", "broker-id", "broker-defaults"); len(set) != 1 {
		return usagef(c, "name exactly one of --topic TOPIC, --broker-id ID, --broker-defaults")
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.ConfigsDescribe(ctx, adm, ctl.ConfigsDescribeOptions{Resource: *r, All: *all, JSON: e.json()}, e.stdout)
	})
}

func configsAlter(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	r := resourceFlags(fs)
	set, del := alterFlags(fs)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if set := flagsSet(fs, "topic", "broker-id", "broker-defaults"); len(set) != 1 {
		return usagef(c, "name exactly one of --topic TOPIC, --broker-id ID, --broker-defaults")
	}
	opt := ctl.ConfigsAlterOptions{Resource: *r, Set: *set, Delete: *del, JSON: e.json()}
	if err := opt.Validate(); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.ConfigsAlter(ctx, adm, opt, e.stdout)
	})
}

func groupsList(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.GroupsList(ctx, adm, ctl.GroupsListOptions{JSON: e.json()}, e.stdout)
	})
}

func groupsDescribe(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := someArgs(c, pos, "GROUP"); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.GroupsDescribe(ctx, adm, ctl.GroupsDescribeOptions{Groups: pos, JSON: e.json()}, e.stdout)
	})
}

func groupsDelete(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := someArgs(c, pos, "GROUP"); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.GroupsDelete(ctx, adm, ctl.GroupsDeleteOptions{Groups: pos, JSON: e.json()}, e.stdout)
	})
}

func groupsResetOffsets(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	var topics []ctl.TopicPartition
	fs.Func("topic", "reset `TOPIC` or TOPIC:P,P... (repeatable)", func(s string) error {
		tp, err := ctl.ParseTopicPartitions(s)
		if err == nil {
			topics = append(topics, tp)
		}
		return err
	})
	allTopics := fs.Bool("all-topics", false, "reset every partition the group has committed to")
	fs.Bool("to-earliest", false, "to the log start offset")
	fs.Bool("to-latest", false, "to the log end offset")
	datetime := fs.String("to-datetime", "", "to the first record at or after `TIME` (RFC 3339, e.g. 2026-01-02T15:04:05Z)")
	toOffset := fs.Int64("to-offset", 0, "to `OFFSET`")
	shiftBy := fs.Int64("shift-by", 0, "by `N` from the committed offset (negative: back)")
	execute := fs.Bool("execute", false, "commit the new offsets (without it, only print them)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "GROUP"); err != nil {
		return err
	}
	opt := ctl.ResetOffsetsOptions{Group: pos[0], Topics: topics, AllTopics: *allTopics, Execute: *execute, JSON: e.json()}
	modes := flagsSet(fs, "to-earliest", "to-latest", "to-datetime", "to-offset", "shift-by")
	if len(modes) > 1 {
		return usagef(c, "give one of %s", strings.Join(modes, ", "))
	}
	if len(modes) == 1 {
		switch modes[0] {
		case "--to-earliest":
			opt.Mode = ctl.ResetEarliest
		case "--to-latest":
			opt.Mode = ctl.ResetLatest
		case "--to-datetime":
			opt.Mode = ctl.ResetDatetime
			t, err := time.Parse(time.RFC3339, *datetime)
			if err != nil {
				return usagef(c, "--to-datetime %q is not RFC 3339 (2006-01-02T15:04:05Z or with an offset, +01:00)", *datetime)
			}
			opt.Time = t
		case "--to-offset":
			opt.Mode, opt.Offset = ctl.ResetToOffset, *toOffset
		case "--shift-by":
			opt.Mode, opt.Offset = ctl.ResetShiftBy, *shiftBy
		}
	}
	if err := opt.Validate(); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.GroupsResetOffsets(ctx, adm, opt, e.stdout)
	})
}

func offsets(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	at := fs.String("time", "", "earliest, latest, an RFC 3339 `TIME` or Unix milliseconds (default: earliest and latest)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "TOPIC"); err != nil {
		return err
	}
	opt := ctl.OffsetsOptions{Topic: pos[0], Time: *at, JSON: e.json()}
	if err := opt.Validate(); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.Offsets(ctx, adm, opt, e.stdout)
	})
}

func deleteRecords(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	partition := fs.Int("partition", -1, "the `PARTITION` (with --all and without it: every partition)")
	before := fs.Int64("before", -1, "delete the records before `OFFSET`")
	all := fs.Bool("all", false, "delete every record up to the high watermark")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "TOPIC"); err != nil {
		return err
	}
	if *partition > 1<<31-1 {
		return usagef(c, "--partition too large")
	}
	if len(flagsSet(fs, "before")) == 1 && *before < 0 {
		return usagef(c, "--before must be at least 0")
	}
	opt := ctl.DeleteRecordsOptions{Topic: pos[0], Partition: int32(*partition), Before: *before, All: *all, JSON: e.json()}
	if err := opt.Validate(); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.DeleteRecords(ctx, adm, opt, e.stdout)
	})
}

func cluster(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	apis := fs.Bool("api-versions", false, "also list the APIs each broker serves, with their versions")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.Cluster(ctx, adm, ctl.ClusterOptions{APIVersions: *apis, JSON: e.json()}, e.stdout)
	})
}

// textOnly runs status or promote, which print text only.
func textOnly(e *env, c *command, args []string, fn func(context.Context, string, io.Writer) error) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if e.json() {
		return usagef(c, "prints text only; -o json is not supported")
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	return fn(ctx, e.broker, e.stdout)
}

func status(e *env, c *command, args []string) error {
	return textOnly(e, c, args, ctl.Status)
}

func promote(e *env, c *command, args []string) error {
	return textOnly(e, c, args, ctl.Promote)
}
