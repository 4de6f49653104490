package ctl

// samsactl cluster: the cluster id, the controller and every broker with its
// role in a samsa pair and the API versions it serves.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// ClusterOptions: APIVersions also lists every API each broker serves.
type ClusterOptions struct {
	APIVersions bool
	JSON        bool
}

// ClusterDescription is what cluster prints as JSON.
type ClusterDescription struct {
	ClusterID  string          `json:"cluster_id"`
	Controller int32           `json:"controller"`
	Brokers    []ClusterBroker `json:"brokers"`
}

// ClusterBroker is one broker of the cluster. Kafka's ApiVersions names
// the client's software (KIP-511) but not the broker's, so KafkaVersion is
// franz-go's guess from the API versions served.
type ClusterBroker struct {
	NodeID       int32             `json:"node_id"`
	Host         string            `json:"host"`
	Port         int32             `json:"port"`
	Rack         *string           `json:"rack"`
	Role         string            `json:"role"`
	Software     string            `json:"software"` // "samsa VERSION", or "unknown" (Kafka)
	KafkaVersion string            `json:"kafka_version"`
	APIVersions  []APIVersionRange `json:"api_versions,omitempty"`
	Error        string            `json:"error,omitempty"`
}

// APIVersionRange is one API a broker serves, with its version range.
type APIVersionRange struct {
	Key  int16  `json:"key"`
	Name string `json:"name"`
	Min  int16  `json:"min"`
	Max  int16  `json:"max"`
}

// Cluster prints the cluster id, the controller and the brokers with their
// role: primary and standby in a samsa pair, or alone.
func Cluster(ctx context.Context, adm *kadm.Client, opt ClusterOptions, w io.Writer) error {
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return requestErr("describe the cluster", kmsg.Metadata, err)
	}
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return requestErr("ask the brokers' API versions", kmsg.ApiVersions, err)
	}
	out := ClusterDescription{ClusterID: md.Cluster, Controller: md.Controller, Brokers: []ClusterBroker{}}
	for _, b := range md.Brokers {
		cb := ClusterBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack,
			Role: brokerRole(b.NodeID, md.Controller, len(md.Brokers)), KafkaVersion: "unknown", Software: software(ctx, adm, b.NodeID)}
		if v, ok := vs[b.NodeID]; ok && v.Err != nil {
			cb.Error = "cannot ask its API versions: " + v.Err.Error()
		} else if ok {
			cb.KafkaVersion = kafkaVersionGuess(v)
			if opt.APIVersions {
				v.EachKeySorted(func(key, lo, hi int16) {
					cb.APIVersions = append(cb.APIVersions, APIVersionRange{Key: key, Name: kmsg.NameForKey(key), Min: lo, Max: hi})
				})
			}
		}
		out.Brokers = append(out.Brokers, cb)
	}
	if opt.JSON {
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "Cluster: %s  Controller: %d\n", dash(out.ClusterID), out.Controller)
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tADDRESS\tROLE\tSOFTWARE\tKAFKA-API (guess)\t")
	for _, b := range out.Brokers {
		fmt.Fprintf(tw, "%d\t%s:%d\t%s\t%s\t%s\t%s\n", b.NodeID, b.Host, b.Port, b.Role, b.Software, b.KafkaVersion, b.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, b := range out.Brokers {
		if len(b.APIVersions) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nnode %d serves %d APIs:\n", b.NodeID, len(b.APIVersions))
		tw := newTable(w)
		fmt.Fprintln(tw, "KEY\tAPI\tVERSIONS")
		for _, a := range b.APIVersions {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", a.Key, a.Name, versionRange(a.Min, a.Max))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// software is a broker's software and version: samsa reports it as the
// read-only broker config samsa.version; Kafka has none ("unknown").
func software(ctx context.Context, adm *kadm.Client, node int32) string {
	rcs, err := adm.DescribeBrokerConfigs(ctx, node)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		return "unknown"
	}
	for _, c := range rcs[0].Configs {
		if c.Key == "samsa.version" {
			return strings.TrimSpace("samsa " + c.MaybeValue())
		}
	}
	return "unknown"
}

func versionRange(lo, hi int16) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return strings.Join([]string{fmt.Sprint(lo), fmt.Sprint(hi)}, "-")
}

// kafkaVersionGuess is the Kafka release whose API versions match those the
// broker serves, judged on the APIs it serves: samsa serves no inter-broker
// or transaction APIs, and judged on those too every guess would be 0.9.
func kafkaVersionGuess(v kadm.BrokerApiVersions) string {
	var missing []int16
	kversion.Tip().EachMaxKeyVersion(func(k, _ int16) {
		if _, _, ok := v.KeyVersions(k); !ok {
			missing = append(missing, k)
		}
	})
	return v.VersionGuess(kversion.SkipKeys(missing...))
}
