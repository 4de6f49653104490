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

// Compare starts a fresh samsa and a kfake, each in its own process with its
// own port (and, for samsa, its own temp data directory), runs every spec
// against both for cfg.Rounds rounds, one broker at a time, and stops both
// (SIGTERM, then SIGKILL) before it returns, also when ctx is cancelled or
// a run fails.
func Compare(ctx context.Context, cfg CompareConfig) (rep *Report, err error) {
	samsa, err := StartSamsa(ctx, cfg.SamsaBin, cfg.Config)
	if err != nil {
		return nil, err
	}
	kf, err := StartKfake(ctx, cfg.Self)
	if err != nil {
		return nil, errors.Join(err, samsa.Stop())
	}
	var stopErrs []string
	defer func() {
		// Also on a panic: the brokers never outlive the benchmark.
		for _, p := range []*Process{samsa, kf} {
			if err := p.Stop(); err != nil {
				stopErrs = append(stopErrs, err.Error())
			}
		}
		if rep != nil {
			rep.Errors = append(rep.Errors, stopErrs...)
		}
	}()
	procs := map[string]*Process{samsa.Name: samsa, kf.Name: kf}
	alive := func(t Target) error { return procs[t.Name].Alive() }
	rep = Suite(ctx, []Target{samsa.Target(), kf.Target()}, cfg.Specs, cfg.Rounds, cfg.Progress, alive)
	return rep, ctx.Err()
}
