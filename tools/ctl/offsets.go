package ctl

// samsactl offsets (ListOffsets: earliest, latest, by time) and
// delete-records (DeleteRecords: move a partition's log start forward).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetsOptions: Time is "" (earliest and latest), "earliest", "latest",
// an RFC 3339 time or Unix milliseconds.
type OffsetsOptions struct {
	Topic string
	Time  string
	JSON  bool
}

// epochMilli is t in Unix milliseconds for ListOffsets, which gives
// negative timestamps special meanings (-1 latest, -2 earliest, -3 max
// timestamp): a time before 1970 is 0, before every record.
func epochMilli(t time.Time) int64 { return max(0, t.UnixMilli()) }

// ParseTime parses an RFC 3339 time or Unix milliseconds.
func ParseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return time.Time{}, usageErr("time %q is before 1970", s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErr("time %q is neither RFC 3339 (2006-01-02T15:04:05Z) nor Unix milliseconds", s)
	}
	return t, nil
}

// Validate checks the options without asking the broker.
func (o *OffsetsOptions) Validate() error {
	if o.Topic == "" {
		return usageErr("offsets needs a TOPIC")
	}
	switch o.Time {
	case "", "earliest", "latest":
		return nil
	}
	_, err := ParseTime(o.Time)
	return err
}

// PartitionOffsets is one partition in offsets: Earliest and Latest without
// a time, Offset (and for a time, Timestamp: that of the record found, -1
// if no record is that new and Offset is the log end) with one.
type PartitionOffsets struct {
	Partition int32  `json:"partition"`
	Earliest  *int64 `json:"earliest,omitempty"`
	Latest    *int64 `json:"latest,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	Timestamp *int64 `json:"timestamp,omitempty"`
}

// TopicOffsets is what offsets prints as JSON.
type TopicOffsets struct {
	Topic      string             `json:"topic"`
	Time       string             `json:"time,omitempty"`
	Partitions []PartitionOffsets `json:"partitions"`
}

// Offsets prints a topic's offsets per partition: earliest and latest, or
// those at a time (the first record with a timestamp at or after it).
func Offsets(ctx context.Context, adm *kadm.Client, opt OffsetsOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	parts, err := topicPartitions(ctx, adm, opt.Topic)
	if err != nil {
		return err
	}
	get := func(list func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		l, err := list(ctx, opt.Topic)
		if err != nil {
			return nil, requestErr("list offsets", kmsg.ListOffsets, err)
		}
		if o, ok := l.Lookup(opt.Topic, -1); ok && errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return nil, topicNotFound(opt.Topic)
		}
		return l, nil
	}
	one := func(l kadm.ListedOffsets, p int32) (kadm.ListedOffset, error) {
		o, ok := l.Lookup(opt.Topic, p)
		if !ok {
			return o, fmt.Errorf("cannot list offsets of %s-%d: the broker did not answer for it", opt.Topic, p)
		}
		if o.Err != nil {
			return o, fmt.Errorf("cannot list offsets of %s-%d: %w", opt.Topic, p, o.Err)
		}
		return o, nil
	}
	out := TopicOffsets{Topic: opt.Topic, Time: opt.Time, Partitions: []PartitionOffsets{}}
	switch opt.Time {
	case "":
		starts, err := get(adm.ListStartOffsets)
		if err != nil {
			return err
		}
		ends, err := get(adm.ListEndOffsets)
		if err != nil {
			return err
		}
		for _, p := range parts[opt.Topic] {
			s, err := one(starts, p)
			if err != nil {
				return err
			}
			e, err := one(ends, p)
			if err != nil {
				return err
			}
			out.Partitions = append(out.Partitions, PartitionOffsets{Partition: p, Earliest: &s.Offset, Latest: &e.Offset})
		}
	default:
		list := adm.ListStartOffsets
		timed := false
		switch opt.Time {
		case "earliest":
		case "latest":
			list = adm.ListEndOffsets
		default:
			t, _ := ParseTime(opt.Time)
			timed = true
			list = func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctx, epochMilli(t), topics...)
			}
		}
		l, err := get(list)
		if err != nil {
			return err
		}
		for _, p := range parts[opt.Topic] {
			o, err := one(l, p)
			if err != nil {
				return err
			}
			po := PartitionOffsets{Partition: p, Offset: &o.Offset}
			if timed {
				ts := o.Timestamp
				po.Timestamp = &ts
			}
			out.Partitions = append(out.Partitions, po)
		}
	}
	if opt.JSON {
		return writeJSON(w, out)
	}
	tw := newTable(w)
	switch {
	case opt.Time == "":
		fmt.Fprintln(tw, "PARTITION\tEARLIEST\tLATEST")
		for _, p := range out.Partitions {
			fmt.Fprintf(tw, "%d\t%d\t%d\n", p.Partition, *p.Earliest, *p.Latest)
		}
	case opt.Time == "earliest" || opt.Time == "latest":
		fmt.Fprintf(tw, "PARTITION\tOFFSET (%s)\n", opt.Time)
		for _, p := range out.Partitions {
			fmt.Fprintf(tw, "%d\t%d\n", p.Partition, *p.Offset)
		}
	default:
		fmt.Fprintf(tw, "PARTITION\tOFFSET (at or after %s)\tTIMESTAMP\n", opt.Time)
		for _, p := range out.Partitions {
			ts := "- (no newer record: log end)"
			if *p.Timestamp >= 0 {
				ts = time.UnixMilli(*p.Timestamp).UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\n", p.Partition, *p.Offset, ts)
		}
	}
	return tw.Flush()
}

// DeleteRecordsOptions: the records of Partition (-1 with All: every
// partition) before offset Before, or with All every record up to the high
// watermark.
type DeleteRecordsOptions struct {
	Topic     string
	Partition int32
	Before    int64 // -1 if not given
	All       bool
	JSON      bool
}

// Validate checks the options without asking the broker.
func (o *DeleteRecordsOptions) Validate() error {
	switch {
	case o.Topic == "":
		return usageErr("delete-records needs a TOPIC")
	case o.All == (o.Before >= 0):
		return usageErr("give exactly one of --before OFFSET and --all")
	case o.Partition < 0 && !o.All:
		return usageErr("--before needs --partition P")
	}
	return nil
}

// DeletedRecords is one partition's result in delete-records.
type DeletedRecords struct {
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	LowWatermark int64  `json:"low_watermark"`
}

// DeleteRecords moves the log start offset of partitions forward
// (DeleteRecords) and prints the new low watermarks.
func DeleteRecords(ctx context.Context, adm *kadm.Client, opt DeleteRecordsOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	parts, err := topicPartitions(ctx, adm, opt.Topic)
	if err != nil {
		return err
	}
	ps := parts[opt.Topic]
	if opt.Partition >= 0 {
		if int(opt.Partition) >= len(ps) {
			return notFoundErr("topic %q has no partition %d (it has %d)", opt.Topic, opt.Partition, len(ps))
		}
		ps = []int32{opt.Partition}
	}
	at := opt.Before
	if opt.All {
		at = -1 // the high watermark, in DeleteRecords
	}
	os := kadm.Offsets{}
	for _, p := range ps {
		os.AddOffset(opt.Topic, p, at, -1)
	}
	resps, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		return requestErr("delete records", kmsg.DeleteRecords, err)
	}
	out := []DeletedRecords{}
	var errs []error
	for _, p := range ps {
		r, ok := resps.Lookup(opt.Topic, p)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("cannot delete records of %s-%d: the broker did not answer for it", opt.Topic, p))
		case errors.Is(r.Err, kerr.OffsetOutOfRange):
			errs = append(errs, fmt.Errorf("cannot delete records of %s-%d before %d: the offset is past the high watermark (samsactl offsets %s shows it)", opt.Topic, p, at, opt.Topic))
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, topicNotFound(opt.Topic))
		case r.Err != nil:
			errs = append(errs, requestErr(fmt.Sprintf("delete records of %s-%d", opt.Topic, p), kmsg.DeleteRecords, r.Err))
		default:
			out = append(out, DeletedRecords{Topic: opt.Topic, Partition: p, LowWatermark: r.LowWatermark})
		}
	}
	if opt.JSON {
		if err := writeJSON(w, out); err != nil {
			return err
		}
		return firstErr(errs)
	}
	if len(out) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tLOW-WATERMARK")
		for _, d := range out {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", d.Topic, d.Partition, d.LowWatermark)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return firstErr(errs)
}
