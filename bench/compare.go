package bench

import (
	"context"
	"errors"
	"io"
)

// PlanSpecs returns the workloads of compare and all: produce 1 KiB
// acks=all, produce 100 B acks=all, produce 1 KiB acks=1, consume 1 KiB,
// e2e at 10,000 records/s acks=all, mixed 1 KiB; the record counts of
// DefaultSpec (QuickSpec with quick) except 100 B produce, which sends more
// records to move a comparable number of bytes.
func PlanSpecs(quick bool) []Spec {
	spec := DefaultSpec
	if quick {
		spec = QuickSpec
	}
	p1k := spec(KindProduce)
	p100 := spec(KindProduce)
	p100.Size, p100.Records = 100, p100.Records*10/3
	p1kAcks1 := spec(KindProduce)
	p1kAcks1.Acks = "1"
	return []Spec{p1k, p100, p1kAcks1, spec(KindConsume), spec(KindE2E), spec(KindMixed)}
}

// CompareConfig is what Compare starts and runs.
type CompareConfig struct {
	SamsaBin string // the samsa binary
	Config   string // samsa's config file
	Self     string // this benchmark's binary, which runs kfake as a subcommand
	Specs    []Spec
	Rounds   int
	Progress io.Writer // nil for none
}

// Compare runs every spec against samsa and kfake for cfg.Rounds rounds,
// one broker at a time, each run against a broker process started for it
// (samsa with an empty data directory) and stopped after it (SIGTERM, then
// SIGKILL), also when ctx is cancelled or a run fails. A fresh process per
// run keeps one broker's leftovers from weighing on the other's next run:
// with a long-lived kfake holding gigabytes between its runs, samsa's page
// cache writes on the 2-core VM this was built on ran at half speed and
// double CPU per byte.
func Compare(ctx context.Context, cfg CompareConfig) (*Report, error) {
	starters := map[string]func() (*Process, error){
		"samsa": func() (*Process, error) { return StartSamsa(ctx, cfg.SamsaBin, cfg.Config) },
		"kfake": func() (*Process, error) { return StartKfake(ctx, cfg.Self) },
	}
	prepare := func(t Target) (Target, func() error, error) {
		p, err := starters[t.Name]()
		if err != nil {
			return t, nil, err
		}
		return p.Target(), func() error {
			if err := p.Alive(); err != nil {
				return errors.Join(err, p.Stop())
			}
			return p.Stop()
		}, nil
	}
	rep := suite(ctx, []Target{{Name: "samsa"}, {Name: "kfake"}}, cfg.Specs, cfg.Rounds, cfg.Progress, prepare)
	return rep, ctx.Err()
}
