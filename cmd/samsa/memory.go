package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"samsa/netio"
)

// After a burst of request memory (a hostile client, a spike of big
// produce requests) the Go runtime keeps the freed heap for reuse and
// gives it back to the kernel only gradually, and an idle process may not
// collect garbage for two minutes: RSS stays at the burst's height. The
// memory returner returns it at once when the network layer holds little
// and either the heap keeps much free memory, or no collection ran for a
// whole tick while much of the heap is garbage. Under steady load
// collections run every tick and the free heap stays small, so it keeps
// out of the way.
const (
	returnEvery    = 5 * time.Second
	returnAbove    = 64 << 20 // heap bytes free, or garbage, worth returning
	returnNetQuiet = 16 << 20 // request bytes held by netio
)

// returnMemory runs until ctx ends. net reads the client listener's
// figures.
func returnMemory(ctx context.Context, net func() netio.Stats, logger *slog.Logger) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"}, // live and not yet collected
		{Name: "/memory/classes/heap/free:bytes"},    // free, not returned
		{Name: "/gc/heap/live:bytes"},                // live at the last collection
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	t := time.NewTicker(returnEvery)
	defer t.Stop()
	var lastCycles uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		objects, free, live, cycles := samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64(), samples[3].Value.Uint64()
		idle := cycles == lastCycles
		lastCycles = cycles
		st := net()
		if st.QueuedBytes+st.IncompleteBytes+st.BufferedBytes > returnNetQuiet ||
			(free < returnAbove && !(idle && objects >= live+returnAbove)) {
			continue
		}
		debug.FreeOSMemory()
		metrics.Read(samples)
		lastCycles = samples[3].Value.Uint64()
		logger.Debug("returned free heap to the kernel", "free_before", free, "objects_before", objects,
			"free_after", samples[1].Value.Uint64(), "live", samples[2].Value.Uint64())
	}
}
