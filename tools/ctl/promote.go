package ctl

// samsactl promote and status: a samsa pair's failover and who leads it.

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Promote asks the broker at addr, which must be the standby of a pair,
// to become the primary (ElectLeaders, sent to that broker itself rather
// than to the controller a client would pick).
func Promote(ctx context.Context, addr string, out io.Writer) error {
	cl, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return errors.New("no broker to ask")
	}
	// A lone broker answers ElectLeaders for no partitions with no error,
	// which would read as a promotion.
	mreq := kmsg.NewPtrMetadataRequest() // every topic
	mresp, err := mreq.RequestWith(ctx, seeds[0])
	if err != nil {
		return requestErr("ask "+addr+" for metadata", kmsg.Metadata, err)
	}
	if len(mresp.Brokers) == 1 {
		return fmt.Errorf("%s is not part of a pair (no [replication] peer): there is nothing to promote", addr)
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.TimeoutMillis = 30000
	// The partitions named: asked for all (null), a broker leaves out
	// those that need no election, as Kafka does, and a primary would
	// answer with nothing.
	for _, t := range mresp.Topics {
		if t.Topic == nil || len(t.Partitions) == 0 {
			continue
		}
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic = *t.Topic
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, p.Partition)
		}
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := seeds[0].Request(ctx, req)
	if err != nil {
		return requestErr("ask "+addr+" to promote itself", kmsg.ElectLeaders, err)
	}
	resp := kresp.(*kmsg.ElectLeadersResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	n := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			switch err := kerr.ErrorForCode(p.ErrorCode); {
			case errors.Is(err, kerr.ElectionNotNeeded):
				return fmt.Errorf("%s is already the primary", addr)
			case err != nil:
				msg := ""
				if p.ErrorMessage != nil {
					msg = ": " + *p.ErrorMessage
				}
				return fmt.Errorf("%s-%d: %w%s", t.Topic, p.Partition, err, msg)
			}
			n++
		}
	}
	fmt.Fprintf(out, "%s is the primary now (%d partitions)\n", addr, n)
	return nil
}

// Status prints who leads the pair at addr, at which epoch, and each
// partition's in-sync replicas.
func Status(ctx context.Context, addr string, out io.Writer) error {
	cl, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return requestErr("ask "+addr+" for metadata", kmsg.Metadata, err)
	}
	resp := kresp.(*kmsg.MetadataResponse)
	paired := false // partitions with two replicas: a primary lists its standby only while it is in sync
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			paired = paired || len(p.Replicas) > 1
		}
	}
	for _, b := range resp.Brokers {
		role := brokerRole(b.NodeID, resp.ControllerID, len(resp.Brokers))
		if role == "alone" && paired {
			role = "primary (standby not in sync)"
		}
		fmt.Fprintf(out, "node %d  %s:%d  %s\n", b.NodeID, b.Host, b.Port, role)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			fmt.Fprintf(out, "%s-%d  leader %d  epoch %d  replicas %v  isr %v\n", *t.Topic, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
		}
	}
	return nil
}
