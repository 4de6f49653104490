package ctl

// samsactl groups: list, describe (committed offsets and lag), delete and
// reset-offsets (dry run unless Execute, only for a group without members,
// as kafka-consumer-groups does).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupsListOptions: JSON prints JSON.
type GroupsListOptions struct {
	JSON bool
}

// GroupSummary is one row of groups list.
type GroupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"`
	Coordinator  int32  `json:"coordinator"`
}

// GroupsList prints every group with its state, protocol type and number
// of members.
func GroupsList(ctx context.Context, adm *kadm.Client, opt GroupsListOptions, w io.Writer) error {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return requestErr("list groups", kmsg.ListGroups, err)
	}
	out := []GroupSummary{}
	if len(listed) > 0 {
		described, err := adm.DescribeGroups(ctx, listed.Groups()...)
		if err != nil {
			return requestErr("describe groups", kmsg.DescribeGroups, err)
		}
		for _, g := range listed.Sorted() {
			s := GroupSummary{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator}
			if d, ok := described[g.Group]; ok && d.Err == nil {
				s.Members = len(d.Members)
				if d.State != "" {
					s.State = d.State
				}
			}
			out = append(out, s)
		}
	}
	if opt.JSON {
		return writeJSON(w, out)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tMEMBERS\tCOORDINATOR")
	for _, g := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", g.Group, g.State, dash(g.ProtocolType), g.Members, g.Coordinator)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// GroupsDescribeOptions names the groups to describe.
type GroupsDescribeOptions struct {
	Groups []string
	JSON   bool
}

// GroupDescription is one group in groups describe.
type GroupDescription struct {
	Group        string              `json:"group"`
	State        string              `json:"state"`
	ProtocolType string              `json:"protocol_type"`
	Protocol     string              `json:"protocol"`
	Coordinator  BrokerAddr          `json:"coordinator"`
	Members      []GroupMember       `json:"members"`
	Offsets      []GroupPartitionLag `json:"offsets"`
	TotalLag     int64               `json:"total_lag"`
}

// BrokerAddr is a node id and where it listens.
type BrokerAddr struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
}

// GroupMember is a member of a described group.
type GroupMember struct {
	MemberID   string           `json:"member_id"`
	InstanceID *string          `json:"instance_id"`
	ClientID   string           `json:"client_id"`
	ClientHost string           `json:"client_host"`
	Assigned   []TopicPartition `json:"assigned"`
}

// TopicPartition is a topic and some of its partitions.
type TopicPartition struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// GroupPartitionLag is a group's position in one partition.
type GroupPartitionLag struct {
	Topic           string  `json:"topic"`
	Partition       int32   `json:"partition"`
	CommittedOffset *int64  `json:"committed_offset"` // null: nothing committed
	LogStartOffset  int64   `json:"log_start_offset"`
	LogEndOffset    int64   `json:"log_end_offset"`
	Lag             int64   `json:"lag"`       // -1 if unknown (see error)
	MemberID        *string `json:"member_id"` // null: no member holds it
	Error           string  `json:"error,omitempty"`
}

// GroupsDescribe prints each group's state, coordinator, protocol, members
// and, per partition, the committed offset, log end offset and lag. A
// group that does not exist is ErrNotFound, after the others are printed.
func GroupsDescribe(ctx context.Context, adm *kadm.Client, opt GroupsDescribeOptions, w io.Writer) error {
	if len(opt.Groups) == 0 {
		return usageErr("groups describe needs at least one GROUP")
	}
	lags, err := adm.Lag(ctx, opt.Groups...)
	if err != nil {
		return requestErr("describe groups", kmsg.DescribeGroups, err)
	}
	var errs []error
	out := []GroupDescription{}
	for _, g := range opt.Groups {
		l, ok := lags[g]
		switch {
		case !ok || errors.Is(l.DescribeErr, kerr.GroupIDNotFound) || isDeadAndEmpty(l):
			errs = append(errs, groupNotFound(g))
			continue
		case l.DescribeErr != nil:
			errs = append(errs, requestErr(fmt.Sprintf("describe group %q", g), kmsg.DescribeGroups, l.DescribeErr))
			continue
		case l.FetchErr != nil:
			errs = append(errs, requestErr(fmt.Sprintf("fetch the offsets of group %q", g), kmsg.OffsetFetch, l.FetchErr))
			continue
		}
		d := GroupDescription{Group: g, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
			Coordinator: BrokerAddr{l.Coordinator.NodeID, l.Coordinator.Host, l.Coordinator.Port},
			Members:     []GroupMember{}, Offsets: []GroupPartitionLag{}}
		for _, m := range l.Members {
			gm := GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: []TopicPartition{}}
			if c, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range c.Topics {
					ps := append([]int32(nil), t.Partitions...)
					sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
					gm.Assigned = append(gm.Assigned, TopicPartition{Topic: t.Topic, Partitions: ps})
				}
				sort.Slice(gm.Assigned, func(i, j int) bool { return gm.Assigned[i].Topic < gm.Assigned[j].Topic })
			}
			d.Members = append(d.Members, gm)
		}
		for _, pl := range l.Lag.Sorted() {
			if pl.Commit.At < 0 && pl.Member == nil {
				// kadm lists every partition of a topic the group
				// committed to; as kafka-consumer-groups, show only
				// those committed to or assigned.
				continue
			}
			r := GroupPartitionLag{Topic: pl.Topic, Partition: pl.Partition, LogStartOffset: -1, LogEndOffset: -1, Lag: pl.Lag}
			if pl.Commit.At >= 0 {
				at := pl.Commit.At
				r.CommittedOffset = &at
			}
			if pl.Start.Err == nil {
				r.LogStartOffset = pl.Start.Offset
			}
			if pl.End.Err == nil {
				r.LogEndOffset = pl.End.Offset
			}
			if pl.Member != nil {
				id := pl.Member.MemberID
				r.MemberID = &id
			}
			if pl.Err != nil {
				r.Error = pl.Err.Error()
			}
			if r.Lag > 0 {
				d.TotalLag += r.Lag
			}
			d.Offsets = append(d.Offsets, r)
		}
		out = append(out, d)
	}
	if opt.JSON {
		if err := writeJSON(w, out); err != nil {
			return err
		}
		return firstErr(errs)
	}
	for i, d := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		proto := d.ProtocolType
		if d.Protocol != "" {
			proto += "/" + d.Protocol
		}
		fmt.Fprintf(w, "Group: %s  State: %s  Protocol: %s  Coordinator: %d (%s:%d)  Members: %d\n",
			d.Group, d.State, dash(proto), d.Coordinator.NodeID, d.Coordinator.Host, d.Coordinator.Port, len(d.Members))
		if len(d.Members) > 0 {
			tw := newTable(w)
			fmt.Fprintln(tw, "MEMBER\tCLIENT-ID\tHOST\tASSIGNED")
			for _, m := range d.Members {
				var as []string
				for _, a := range m.Assigned {
					as = append(as, a.Topic+":"+joinInt32s(a.Partitions))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.MemberID, m.ClientID, m.ClientHost, dash(strings.Join(as, " ")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(d.Offsets) == 0 {
			fmt.Fprintln(w, "no committed offsets")
			continue
		}
		tw := newTable(w)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG\tMEMBER\t")
		for _, o := range d.Offsets {
			committed := "-"
			if o.CommittedOffset != nil {
				committed = strconv.FormatInt(*o.CommittedOffset, 10)
			}
			lag := strconv.FormatInt(o.Lag, 10)
			if o.Lag < 0 {
				lag = "?"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", o.Topic, o.Partition, committed, o.LogEndOffset, lag, dash(deref(o.MemberID)), o.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "Total lag: %d\n", d.TotalLag)
	}
	return firstErr(errs)
}

// isDeadAndEmpty: Kafka answers DescribeGroups for an unknown group with
// state Dead and no error (before v6); with no members and no offsets it
// does not exist for the operator either.
func isDeadAndEmpty(l kadm.DescribedGroupLag) bool {
	if l.DescribeErr != nil || l.State != "Dead" || len(l.Members) > 0 {
		return false
	}
	for _, ps := range l.Lag {
		if len(ps) > 0 {
			return false
		}
	}
	return true
}

// GroupsDeleteOptions names the groups to delete.
type GroupsDeleteOptions struct {
	Groups []string
	JSON   bool
}

// GroupsDelete deletes groups (their committed offsets too). A group with
// members cannot be deleted.
func GroupsDelete(ctx context.Context, adm *kadm.Client, opt GroupsDeleteOptions, w io.Writer) error {
	if len(opt.Groups) == 0 {
		return usageErr("groups delete needs at least one GROUP")
	}
	resps, err := adm.DeleteGroups(ctx, opt.Groups...)
	if err != nil {
		return requestErr("delete groups", kmsg.DeleteGroups, err)
	}
	var errs []error
	deleted := []string{}
	for _, g := range opt.Groups {
		r, ok := resps[g]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("cannot delete group %q: the broker did not answer for it", g))
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			errs = append(errs, groupNotFound(g))
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			errs = append(errs, fmt.Errorf("cannot delete group %q: it has active members; stop its consumers first", g))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("cannot delete group %q: %s", g, kafkaErrText(r.Err, r.ErrMessage)))
		default:
			deleted = append(deleted, g)
		}
	}
	if opt.JSON {
		if err := writeJSON(w, struct {
			Deleted []string `json:"deleted"`
		}{deleted}); err != nil {
			return err
		}
		return firstErr(errs)
	}
	for _, g := range deleted {
		fmt.Fprintf(w, "deleted group %s\n", g)
	}
	return firstErr(errs)
}

// ParseTopicPartitions parses TOPIC or TOPIC:P,P,... (nil partitions: all).
func ParseTopicPartitions(s string) (TopicPartition, error) {
	t, ps, ok := strings.Cut(s, ":")
	if t == "" {
		return TopicPartition{}, usageErr("%q: want TOPIC or TOPIC:PARTITION,PARTITION...", s)
	}
	tp := TopicPartition{Topic: t}
	if !ok {
		return tp, nil
	}
	for _, p := range strings.Split(ps, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return TopicPartition{}, usageErr("%q: %q is not a partition number", s, p)
		}
		tp.Partitions = append(tp.Partitions, int32(n))
	}
	return tp, nil
}

// ResetMode is where groups reset-offsets moves a group's offsets.
type ResetMode int

const (
	ResetNone     ResetMode = iota
	ResetEarliest           // the log start offset
	ResetLatest             // the log end offset (high watermark)
	ResetDatetime           // the first offset with a timestamp at or after Time
	ResetToOffset           // Offset
	ResetShiftBy            // the committed offset + Offset (may be negative)
)

// ResetOffsetsOptions: the partitions (Topics, or AllTopics for every
// partition the group has committed to), the target, and whether to commit
// the result (Execute) or only print it.
type ResetOffsetsOptions struct {
	Group     string
	Topics    []TopicPartition
	AllTopics bool
	Mode      ResetMode
	Time      time.Time // ResetDatetime
	Offset    int64     // ResetToOffset, ResetShiftBy
	Execute   bool
	JSON      bool
}

// Validate checks the options without asking the broker.
func (o *ResetOffsetsOptions) Validate() error {
	switch {
	case o.Group == "":
		return usageErr("groups reset-offsets needs a GROUP")
	case len(o.Topics) == 0 && !o.AllTopics:
		return usageErr("say which partitions: --topic TOPIC[:P,P...] (repeatable) or --all-topics")
	case len(o.Topics) > 0 && o.AllTopics:
		return usageErr("--topic and --all-topics exclude each other")
	case o.Mode == ResetNone:
		return usageErr("say where to: one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by")
	case o.Mode == ResetToOffset && o.Offset < 0:
		return usageErr("--to-offset must be at least 0")
	}
	return nil
}

// OffsetReset is one partition's move in groups reset-offsets.
type OffsetReset struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	OldOffset      *int64 `json:"old_offset"` // null: nothing committed
	NewOffset      int64  `json:"new_offset"`
	LogStartOffset int64  `json:"log_start_offset"`
	LogEndOffset   int64  `json:"log_end_offset"`
	Clamped        bool   `json:"clamped"` // the target was outside the log
}

// ResetOffsetsResult is what groups reset-offsets prints as JSON.
type ResetOffsetsResult struct {
	Group      string        `json:"group"`
	Executed   bool          `json:"executed"`
	Partitions []OffsetReset `json:"partitions"`
}

// GroupsResetOffsets computes new committed offsets for a group and prints
// old → new per partition; with Execute it commits them. A group with
// members is refused: they would overwrite the reset with their next commit.
func GroupsResetOffsets(ctx context.Context, adm *kadm.Client, opt ResetOffsetsOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	described, err := adm.DescribeGroups(ctx, opt.Group)
	if err != nil {
		return requestErr(fmt.Sprintf("describe group %q", opt.Group), kmsg.DescribeGroups, err)
	}
	dg, ok := described[opt.Group]
	if !ok {
		return fmt.Errorf("cannot describe group %q: the broker did not answer for it", opt.Group)
	}
	if dg.Err != nil && !errors.Is(dg.Err, kerr.GroupIDNotFound) {
		return requestErr(fmt.Sprintf("describe group %q", opt.Group), kmsg.DescribeGroups, withMessage(dg.Err, dg.ErrMessage))
	}
	if len(dg.Members) > 0 || (dg.State != "Empty" && dg.State != "Dead" && dg.State != "") {
		return fmt.Errorf("group %q has active members (%d, state %s): stop its consumers first, offsets can only be reset in an empty group", opt.Group, len(dg.Members), dg.State)
	}
	committed, err := adm.FetchOffsets(ctx, opt.Group)
	if err != nil {
		return requestErr(fmt.Sprintf("fetch the offsets of group %q", opt.Group), kmsg.OffsetFetch, err)
	}
	if err := committed.Error(); err != nil {
		return fmt.Errorf("cannot fetch the offsets of group %q: %w", opt.Group, err)
	}

	// The partitions to reset.
	want := map[string][]int32{}
	if opt.AllTopics {
		for t, ps := range committed {
			for p, o := range ps {
				if o.At >= 0 {
					want[t] = append(want[t], p)
				}
			}
		}
		if len(want) == 0 {
			if dg.State == "Dead" || errors.Is(dg.Err, kerr.GroupIDNotFound) {
				return groupNotFound(opt.Group)
			}
			return fmt.Errorf("group %q has no committed offsets: name the topics with --topic", opt.Group)
		}
	} else {
		var all []string
		for _, tp := range opt.Topics {
			all = append(all, tp.Topic)
		}
		parts, err := topicPartitions(ctx, adm, all...)
		if err != nil {
			return err
		}
		for _, tp := range opt.Topics {
			if tp.Partitions == nil {
				want[tp.Topic] = append(want[tp.Topic], parts[tp.Topic]...)
				continue
			}
			for _, p := range tp.Partitions {
				if int(p) >= len(parts[tp.Topic]) {
					return notFoundErr("topic %q has no partition %d (it has %d)", tp.Topic, p, len(parts[tp.Topic]))
				}
				want[tp.Topic] = append(want[tp.Topic], p)
			}
		}
	}
	topics := make([]string, 0, len(want))
	for t, ps := range want {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		want[t] = dedup(ps)
		topics = append(topics, t)
	}
	sort.Strings(topics)

	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return requestErr("list offsets", kmsg.ListOffsets, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return requestErr("list offsets", kmsg.ListOffsets, err)
	}
	var byTime kadm.ListedOffsets
	if opt.Mode == ResetDatetime {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, epochMilli(opt.Time), topics...); err != nil {
			return requestErr("list offsets by time", kmsg.ListOffsets, err)
		}
	}
	lookup := func(l kadm.ListedOffsets, what, t string, p int32) (int64, error) {
		o, ok := l.Lookup(t, p)
		switch {
		case !ok:
			return 0, fmt.Errorf("cannot list the %s offset of %s-%d: the broker did not answer for it", what, t, p)
		case o.Err != nil:
			return 0, fmt.Errorf("cannot list the %s offset of %s-%d: %w", what, t, p, o.Err)
		}
		return o.Offset, nil
	}

	res := ResetOffsetsResult{Group: opt.Group, Partitions: []OffsetReset{}}
	commit := kadm.Offsets{}
	for _, t := range topics {
		for _, p := range want[t] {
			r := OffsetReset{Topic: t, Partition: p}
			if r.LogStartOffset, err = lookup(starts, "start", t, p); err != nil {
				return err
			}
			if r.LogEndOffset, err = lookup(ends, "end", t, p); err != nil {
				return err
			}
			if o, ok := committed.Lookup(t, p); ok && o.At >= 0 {
				at := o.At
				r.OldOffset = &at
			}
			var target int64
			switch opt.Mode {
			case ResetEarliest:
				target = r.LogStartOffset
			case ResetLatest:
				target = r.LogEndOffset
			case ResetDatetime:
				if target, err = lookup(byTime, "by-time", t, p); err != nil {
					return err
				}
			case ResetToOffset:
				target = opt.Offset
			case ResetShiftBy:
				if r.OldOffset == nil {
					return fmt.Errorf("%s-%d has no committed offset to shift: use --to-offset, --to-earliest or --to-latest for it", t, p)
				}
				target = saturatingAdd(*r.OldOffset, opt.Offset)
			}
			r.NewOffset = max(r.LogStartOffset, min(target, r.LogEndOffset))
			r.Clamped = r.NewOffset != target
			commit.AddOffset(t, p, r.NewOffset, -1)
			res.Partitions = append(res.Partitions, r)
		}
	}

	if opt.Execute {
		resps, err := adm.CommitOffsets(ctx, opt.Group, commit)
		if err != nil {
			return requestErr(fmt.Sprintf("commit the offsets of group %q", opt.Group), kmsg.OffsetCommit, err)
		}
		var errs []error
		resps.Each(func(r kadm.OffsetResponse) {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("cannot commit %s-%d for group %q: %s", r.Topic, r.Partition, opt.Group, kafkaErrText(r.Err, "")))
			}
		})
		if len(errs) > 0 {
			sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
			return firstErr(errs)
		}
		res.Executed = true
	}

	if opt.JSON {
		return writeJSON(w, res)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tOLD\t\tNEW\tLOG-START\tLOG-END\t")
	for _, r := range res.Partitions {
		old := "-"
		if r.OldOffset != nil {
			old = strconv.FormatInt(*r.OldOffset, 10)
		}
		note := ""
		if r.Clamped {
			note = "(clamped to the log)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t→\t%d\t%d\t%d\t%s\n", r.Topic, r.Partition, old, r.NewOffset, r.LogStartOffset, r.LogEndOffset, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Executed {
		fmt.Fprintf(w, "committed the new offsets of group %s\n", opt.Group)
	} else {
		fmt.Fprintln(w, "dry run: nothing changed; add --execute to commit these offsets")
	}
	return nil
}

func dedup(s []int32) []int32 {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// saturatingAdd adds without wrapping around int64's ends.
func saturatingAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}
