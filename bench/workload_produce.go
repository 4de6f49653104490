package bench

import "context"

// runProduce is the produce workload: spec.Records records at full speed
// from spec.Producers clients; throughput over the time from the first
// produce call to the last ack, and per-record ack latency for acks 1 and
// all.
func runProduce(ctx context.Context, e *env) error {
	s := e.spec
	prog := e.progress(s.Records)
	defer prog.stop()
	keepLat := s.Acks != "0"
	var startErr error
	out, t0, err := produceFull(ctx, e.addr, e.topic, s, keepLat, func() { startErr = e.meter.start() }, prog)
	if err != nil {
		return err
	}
	if startErr != nil {
		return startErr
	}
	elapsed := out.last.Sub(t0)
	if out.acked == 0 {
		elapsed = 0
	}
	e.res.Produce = newThroughput(out.acked, out.bytes, elapsed)
	e.res.Latency = summarize(out.lat)
	e.res.TimedOut = out.timedOut
	e.res.Failed = out.failed
	e.fail(out.firstErr)
	return nil
}
