package ctl

// samsactl topics: list, describe, create, delete, add-partitions
// (alter-config is ConfigsAlter on a topic, configs.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicsListOptions: Internal also lists internal topics (and shows the
// column); JSON prints JSON.
type TopicsListOptions struct {
	Internal bool
	JSON     bool
}

// TopicSummary is one row of topics list.
type TopicSummary struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

// TopicsList prints every topic with its partition count and replication
// factor.
func TopicsList(ctx context.Context, adm *kadm.Client, opt TopicsListOptions, w io.Writer) error {
	list := adm.ListTopics
	if opt.Internal {
		list = adm.ListTopicsWithInternal
	}
	tds, err := list(ctx)
	if err != nil {
		return requestErr("list topics", kmsg.Metadata, err)
	}
	out := []TopicSummary{}
	for _, td := range tds.Sorted() {
		out = append(out, TopicSummary{Name: td.Topic, ID: topicID(td.ID), Partitions: len(td.Partitions),
			ReplicationFactor: td.Partitions.NumReplicas(), Internal: td.IsInternal})
	}
	if opt.JSON {
		return writeJSON(w, out)
	}
	tw := newTable(w)
	if opt.Internal {
		fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION-FACTOR\tINTERNAL")
	} else {
		fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION-FACTOR")
	}
	for _, t := range out {
		if opt.Internal {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%v\n", t.Name, t.Partitions, t.ReplicationFactor, t.Internal)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Name, t.Partitions, t.ReplicationFactor)
		}
	}
	return tw.Flush()
}

// TopicsDescribeOptions names the topics to describe.
type TopicsDescribeOptions struct {
	Topics []string
	JSON   bool
}

// TopicDescription is one topic in topics describe.
type TopicDescription struct {
	Name              string                 `json:"name"`
	ID                string                 `json:"id"`
	Internal          bool                   `json:"internal"`
	ReplicationFactor int                    `json:"replication_factor"`
	Partitions        []PartitionDescription `json:"partitions"`
	// Configs are the ones set on the topic itself (DYNAMIC_TOPIC_CONFIG).
	Configs []ConfigEntry `json:"configs"`
}

// PartitionDescription is one partition of a described topic.
type PartitionDescription struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	LogEndOffset   int64   `json:"log_end_offset"`
	Error          string  `json:"error,omitempty"`
}

// TopicsDescribe prints each topic's id, partitions (leader, replicas, ISR,
// leader epoch, log start and end offsets) and the configs set on it. An
// unknown topic is ErrNotFound, after the known ones are printed.
func TopicsDescribe(ctx context.Context, adm *kadm.Client, opt TopicsDescribeOptions, w io.Writer) error {
	if len(opt.Topics) == 0 {
		return usageErr("topics describe needs at least one TOPIC")
	}
	md, err := adm.Metadata(ctx, opt.Topics...)
	if err != nil {
		return requestErr("describe topics", kmsg.Metadata, err)
	}
	var errs []error
	var known []string
	for _, t := range opt.Topics {
		td, ok := md.Topics[t]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, topicNotFound(t))
		case td.Err != nil:
			errs = append(errs, fmt.Errorf("cannot describe topic %q: %w", t, td.Err))
		default:
			known = append(known, t)
		}
	}
	var out []TopicDescription
	if len(known) > 0 {
		starts, err := adm.ListStartOffsets(ctx, known...)
		if err != nil {
			return requestErr("list offsets", kmsg.ListOffsets, err)
		}
		ends, err := adm.ListEndOffsets(ctx, known...)
		if err != nil {
			return requestErr("list offsets", kmsg.ListOffsets, err)
		}
		cfgs, err := adm.DescribeTopicConfigs(ctx, known...)
		if err != nil {
			return requestErr("describe topic configs", kmsg.DescribeConfigs, err)
		}
		for _, t := range known {
			td := md.Topics[t]
			d := TopicDescription{Name: t, ID: topicID(td.ID), Internal: td.IsInternal,
				ReplicationFactor: td.Partitions.NumReplicas(), Configs: []ConfigEntry{}}
			for _, p := range td.Partitions.Sorted() {
				pd := PartitionDescription{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
					Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), LogStartOffset: -1, LogEndOffset: -1}
				var perr []string
				if p.Err != nil {
					perr = append(perr, p.Err.Error())
				}
				if o, ok := starts.Lookup(t, p.Partition); ok && o.Err == nil {
					pd.LogStartOffset = o.Offset
				} else if ok {
					perr = append(perr, "log start: "+o.Err.Error())
				}
				if o, ok := ends.Lookup(t, p.Partition); ok && o.Err == nil {
					pd.LogEndOffset = o.Offset
				} else if ok {
					perr = append(perr, "log end: "+o.Err.Error())
				}
				pd.Error = strings.Join(perr, "; ")
				d.Partitions = append(d.Partitions, pd)
			}
			if rc, err := cfgs.On(t, nil); err == nil && rc.Err == nil {
				for _, c := range rc.Configs {
					if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
						d.Configs = append(d.Configs, configEntry(c))
					}
				}
			}
			out = append(out, d)
		}
	}
	if opt.JSON {
		if out == nil {
			out = []TopicDescription{}
		}
		if err := writeJSON(w, out); err != nil {
			return err
		}
		return firstErr(errs)
	}
	for i, d := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Topic: %s  ID: %s  Partitions: %d  ReplicationFactor: %d", d.Name, d.ID, len(d.Partitions), d.ReplicationFactor)
		if d.Internal {
			fmt.Fprint(w, "  Internal: true")
		}
		fmt.Fprintln(w)
		if len(d.Configs) == 0 {
			fmt.Fprintln(w, "Configs: none set on the topic")
		} else {
			kv := make([]string, len(d.Configs))
			for i, c := range d.Configs {
				kv[i] = c.Name + "=" + c.value()
			}
			fmt.Fprintln(w, "Configs:", strings.Join(kv, ", "))
		}
		tw := newTable(w)
		fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START\tLOG-END\t")
		for _, p := range d.Partitions {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%d\t%d\t%s\n", p.Partition, p.Leader, p.LeaderEpoch,
				joinInt32s(p.Replicas), joinInt32s(p.ISR), p.LogStartOffset, p.LogEndOffset, p.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return firstErr(errs)
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// TopicsCreateOptions: Partitions and ReplicationFactor -1 take the
// broker's defaults; Configs are Kafka topic config names.
type TopicsCreateOptions struct {
	Topics            []string
	Partitions        int32
	ReplicationFactor int16
	Configs           []ConfigSetting
	JSON              bool
}

// CreatedTopic is one topic topics create made.
type CreatedTopic struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int32  `json:"partitions"`
	ReplicationFactor int16  `json:"replication_factor"`
}

// Validate checks the options without asking the broker.
func (o *TopicsCreateOptions) Validate() error {
	switch {
	case len(o.Topics) == 0:
		return usageErr("topics create needs a TOPIC")
	case o.Partitions == 0 || o.Partitions < -1:
		return usageErr("--partitions must be at least 1 (or -1 for the broker's default)")
	case o.ReplicationFactor == 0 || o.ReplicationFactor < -1:
		return usageErr("--replication-factor must be at least 1 (or -1 for the broker's default)")
	}
	return nil
}

// TopicsCreate creates topics.
func TopicsCreate(ctx context.Context, adm *kadm.Client, opt TopicsCreateOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	var configs map[string]*string
	if len(opt.Configs) > 0 {
		configs = map[string]*string{}
		for _, c := range opt.Configs {
			v := c.Value
			configs[c.Name] = &v
		}
	}
	resps, err := adm.CreateTopics(ctx, opt.Partitions, opt.ReplicationFactor, configs, opt.Topics...)
	if err != nil {
		return requestErr("create topics", kmsg.CreateTopics, err)
	}
	var errs []error
	out := []CreatedTopic{}
	for _, t := range opt.Topics {
		r, ok := resps[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("cannot create topic %q: the broker did not answer for it", t))
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			errs = append(errs, fmt.Errorf("cannot create topic %q: it already exists (samsactl topics describe %s)", t, t))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("cannot create topic %q: %s", t, kafkaErrText(r.Err, r.ErrMessage)))
		default:
			out = append(out, CreatedTopic{Name: t, ID: topicID(r.ID), Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor})
		}
	}
	if opt.JSON {
		if err := writeJSON(w, out); err != nil {
			return err
		}
		return firstErr(errs)
	}
	for _, c := range out {
		fmt.Fprintf(w, "created topic %s: %s, replication factor %d, id %s\n", c.Name, plural(int(c.Partitions), "partition"), c.ReplicationFactor, c.ID)
	}
	return firstErr(errs)
}

// TopicsDeleteOptions names the topics to delete.
type TopicsDeleteOptions struct {
	Topics []string
	JSON   bool
}

// TopicsDelete deletes topics; an unknown one is ErrNotFound.
func TopicsDelete(ctx context.Context, adm *kadm.Client, opt TopicsDeleteOptions, w io.Writer) error {
	if len(opt.Topics) == 0 {
		return usageErr("topics delete needs at least one TOPIC")
	}
	resps, err := adm.DeleteTopics(ctx, opt.Topics...)
	if err != nil {
		return requestErr("delete topics", kmsg.DeleteTopics, err)
	}
	var errs []error
	deleted := []string{}
	for _, t := range opt.Topics {
		r, ok := resps[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("cannot delete topic %q: the broker did not answer for it", t))
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, topicNotFound(t))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("cannot delete topic %q: %s", t, kafkaErrText(r.Err, r.ErrMessage)))
		default:
			deleted = append(deleted, t)
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
	for _, t := range deleted {
		fmt.Fprintf(w, "deleted topic %s\n", t)
	}
	return firstErr(errs)
}

// TopicsAddPartitionsOptions: Total is the partition count wanted.
type TopicsAddPartitionsOptions struct {
	Topic string
	Total int
	JSON  bool
}

// TopicsAddPartitions grows a topic to Total partitions (CreatePartitions).
func TopicsAddPartitions(ctx context.Context, adm *kadm.Client, opt TopicsAddPartitionsOptions, w io.Writer) error {
	if opt.Topic == "" {
		return usageErr("topics add-partitions needs a TOPIC")
	}
	if opt.Total < 1 {
		return usageErr("--total must be the new partition count (at least 1)")
	}
	md, err := adm.Metadata(ctx, opt.Topic)
	if err != nil {
		return requestErr("describe topic", kmsg.Metadata, err)
	}
	td, ok := md.Topics[opt.Topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return topicNotFound(opt.Topic)
	}
	if td.Err != nil {
		return fmt.Errorf("cannot describe topic %q: %w", opt.Topic, td.Err)
	}
	was := len(td.Partitions)
	if opt.Total <= was {
		return fmt.Errorf("topic %q already has %s; --total must be more (Kafka cannot remove partitions)", opt.Topic, plural(was, "partition"))
	}
	resps, err := adm.UpdatePartitions(ctx, opt.Total, opt.Topic)
	if err != nil {
		return requestErr("add partitions", kmsg.CreatePartitions, err)
	}
	r, ok := resps[opt.Topic]
	if !ok {
		return fmt.Errorf("cannot add partitions to %q: the broker did not answer for it", opt.Topic)
	}
	if errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		return topicNotFound(opt.Topic)
	}
	if r.Err != nil {
		return fmt.Errorf("cannot add partitions to %q: %s", opt.Topic, kafkaErrText(r.Err, r.ErrMessage))
	}
	if opt.JSON {
		return writeJSON(w, struct {
			Topic      string `json:"topic"`
			Partitions int    `json:"partitions"`
			Previous   int    `json:"previous_partitions"`
		}{opt.Topic, opt.Total, was})
	}
	fmt.Fprintf(w, "topic %s now has %s (was %d)\n", opt.Topic, plural(opt.Total, "partition"), was)
	return nil
}

// topicPartitions returns the partition numbers of the topics, sorted;
// an unknown topic is ErrNotFound.
func topicPartitions(ctx context.Context, adm *kadm.Client, topics ...string) (map[string][]int32, error) {
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, requestErr("describe topics", kmsg.Metadata, err)
	}
	out := map[string][]int32{}
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			return nil, topicNotFound(t)
		}
		if td.Err != nil {
			return nil, fmt.Errorf("cannot describe topic %q: %w", t, td.Err)
		}
		ps := td.Partitions.Numbers()
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[t] = ps
	}
	return out, nil
}
