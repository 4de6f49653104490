package ctl

// samsactl configs describe / alter, and topics alter-config: topic configs
// and dynamic broker configs through DescribeConfigs and
// IncrementalAlterConfigs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConfigSetting is one name=value from the command line.
type ConfigSetting struct {
	Name, Value string
}

// ParseConfigSetting parses NAME=VALUE (the value may be empty or contain
// '=').
func ParseConfigSetting(s string) (ConfigSetting, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return ConfigSetting{}, usageErr("%q is not NAME=VALUE", s)
	}
	return ConfigSetting{Name: strings.TrimSpace(k), Value: v}, nil
}

// ConfigEntry is one config as DescribeConfigs reports it.
type ConfigEntry struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"` // null when sensitive or unset
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

func (c ConfigEntry) value() string {
	switch {
	case c.Sensitive:
		return "(sensitive)"
	case c.Value == nil:
		return "(null)"
	}
	return *c.Value
}

func configEntry(c kadm.Config) ConfigEntry {
	return ConfigEntry{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive}
}

// ConfigResource is what a config command is about: a topic, one broker
// (by node id), or the cluster-wide broker defaults. Exactly one is set.
type ConfigResource struct {
	Topic          string
	BrokerID       int32 // -1 if none
	BrokerDefaults bool
}

func (r ConfigResource) validate() error {
	n := 0
	if r.Topic != "" {
		n++
	}
	if r.BrokerID >= 0 {
		n++
	}
	if r.BrokerDefaults {
		n++
	}
	if n != 1 {
		return usageErr("name exactly one of --topic TOPIC, --broker-id ID, --broker-defaults")
	}
	return nil
}

func (r ConfigResource) kind() string {
	if r.Topic != "" {
		return "topic"
	}
	return "broker"
}

// String names the resource as the tables print it.
func (r ConfigResource) String() string {
	switch {
	case r.Topic != "":
		return "topic " + r.Topic
	case r.BrokerDefaults:
		return "broker defaults"
	}
	return "broker " + strconv.Itoa(int(r.BrokerID))
}

func (r ConfigResource) name() string {
	switch {
	case r.Topic != "":
		return r.Topic
	case r.BrokerDefaults:
		return ""
	}
	return strconv.Itoa(int(r.BrokerID))
}

// ConfigsDescribeOptions: All prints every config; otherwise only those set
// dynamically on the resource (as kafka-configs --describe does).
type ConfigsDescribeOptions struct {
	Resource ConfigResource
	All      bool
	JSON     bool
}

// ConfigsDescription is what configs describe prints as JSON.
type ConfigsDescription struct {
	ResourceType string        `json:"resource_type"`
	Resource     string        `json:"resource"`
	Configs      []ConfigEntry `json:"configs"`
}

// dynamicSource says whether a config was set at run time (on the topic, the
// broker or the cluster's broker defaults) rather than in a file or code.
// ownSource reports whether a config is set on the resource itself, as
// kafka-configs --describe lists them: a topic's own configs, a broker's
// own dynamic configs, or the cluster-wide dynamic defaults.
func (r ConfigResource) ownSource(s kmsg.ConfigSource) bool {
	switch {
	case r.Topic != "":
		return s == kmsg.ConfigSourceDynamicTopicConfig
	case r.BrokerDefaults:
		return s == kmsg.ConfigSourceDynamicDefaultBrokerConfig
	}
	return s == kmsg.ConfigSourceDynamicBrokerConfig || s == kmsg.ConfigSourceDynamicBrokerLoggerConfig
}

// ConfigsDescribe prints a topic's or a broker's configs with their source.
func ConfigsDescribe(ctx context.Context, adm *kadm.Client, opt ConfigsDescribeOptions, w io.Writer) error {
	if err := opt.Resource.validate(); err != nil {
		return err
	}
	var rcs kadm.ResourceConfigs
	var err error
	switch r := opt.Resource; {
	case r.Topic != "":
		rcs, err = adm.DescribeTopicConfigs(ctx, r.Topic)
	case r.BrokerDefaults:
		rcs, err = adm.DescribeBrokerConfigs(ctx)
	default:
		rcs, err = adm.DescribeBrokerConfigs(ctx, r.BrokerID)
	}
	if err != nil {
		if strings.Contains(err.Error(), "unknown broker") {
			return notFoundErr("broker %d is not in the cluster (samsactl cluster lists the brokers)", opt.Resource.BrokerID)
		}
		return requestErr("describe configs of "+opt.Resource.String(), kmsg.DescribeConfigs, err)
	}
	rc, err := rcs.On(opt.Resource.name(), nil)
	if err != nil {
		return fmt.Errorf("cannot describe configs of %s: the broker did not answer for it", opt.Resource)
	}
	if rc.Err != nil {
		return configResourceErr("describe configs of", opt.Resource, rc.Err, rc.ErrMessage)
	}
	out := ConfigsDescription{ResourceType: opt.Resource.kind(), Resource: opt.Resource.name(), Configs: []ConfigEntry{}}
	for _, c := range rc.Configs {
		if opt.All || opt.Resource.ownSource(c.Source) {
			out.Configs = append(out.Configs, configEntry(c))
		}
	}
	if opt.JSON {
		return writeJSON(w, out)
	}
	if len(out.Configs) == 0 {
		fmt.Fprintf(w, "no configs set on %s (--all shows every config)\n", opt.Resource)
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tVALUE\tSOURCE")
	for _, c := range out.Configs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.value(), c.Source)
	}
	return tw.Flush()
}

func configResourceErr(what string, r ConfigResource, err error, msg string) error {
	if r.Topic != "" && errors.Is(err, kerr.UnknownTopicOrPartition) {
		return topicNotFound(r.Topic)
	}
	return fmt.Errorf("cannot %s %s: %s", what, r, kafkaErrText(err, msg))
}

// ConfigsAlterOptions: Set sets configs, Delete reverts them to their
// defaults (IncrementalAlterConfigs SET and DELETE).
type ConfigsAlterOptions struct {
	Resource ConfigResource
	Set      []ConfigSetting
	Delete   []string
	JSON     bool
}

// Validate checks the options without asking the broker.
func (o *ConfigsAlterOptions) Validate() error {
	if err := o.Resource.validate(); err != nil {
		return err
	}
	if len(o.Set) == 0 && len(o.Delete) == 0 {
		return usageErr("nothing to alter: give --set NAME=VALUE and/or --delete NAME")
	}
	return nil
}

// ConfigsAlter changes a topic's or a broker's configs incrementally.
func ConfigsAlter(ctx context.Context, adm *kadm.Client, opt ConfigsAlterOptions, w io.Writer) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	var alter []kadm.AlterConfig
	set := map[string]string{}
	for _, s := range opt.Set {
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: s.Name, Value: kadm.StringPtr(s.Value)})
		set[s.Name] = s.Value
	}
	for _, d := range opt.Delete {
		alter = append(alter, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: d})
	}
	var resps kadm.AlterConfigsResponses
	var err error
	switch r := opt.Resource; {
	case r.Topic != "":
		resps, err = adm.AlterTopicConfigs(ctx, alter, r.Topic)
	case r.BrokerDefaults:
		resps, err = adm.AlterBrokerConfigs(ctx, alter)
	default:
		resps, err = adm.AlterBrokerConfigs(ctx, alter, r.BrokerID)
	}
	if err != nil {
		if strings.Contains(err.Error(), "unknown broker") {
			return notFoundErr("broker %d is not in the cluster (samsactl cluster lists the brokers)", opt.Resource.BrokerID)
		}
		return requestErr("alter configs of "+opt.Resource.String(), kmsg.IncrementalAlterConfigs, err)
	}
	r, err := resps.On(opt.Resource.name(), nil)
	if err != nil {
		return fmt.Errorf("cannot alter configs of %s: the broker did not answer for it", opt.Resource)
	}
	if r.Err != nil {
		return configResourceErr("alter configs of", opt.Resource, r.Err, r.ErrMessage)
	}
	if opt.JSON {
		del := opt.Delete
		if del == nil {
			del = []string{}
		}
		return writeJSON(w, struct {
			ResourceType string            `json:"resource_type"`
			Resource     string            `json:"resource"`
			Set          map[string]string `json:"set"`
			Deleted      []string          `json:"deleted"`
		}{opt.Resource.kind(), opt.Resource.name(), set, del})
	}
	var parts []string
	for _, s := range opt.Set {
		parts = append(parts, "set "+s.Name+"="+s.Value)
	}
	for _, d := range opt.Delete {
		parts = append(parts, "deleted "+d)
	}
	fmt.Fprintf(w, "altered %s: %s\n", opt.Resource, strings.Join(parts, ", "))
	return nil
}
