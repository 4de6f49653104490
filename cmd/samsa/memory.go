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
// memory returner watches for a heap far above what is live while the
// network layer holds little, and then returns it at once.
const (
	returnEvery    = 5 * time.Second
	returnAbove    = 64 << 20 // heap held beyond the live bytes
	returnNetQuiet = 16 << 20 // request bytes held by netio
)

// returnMemory runs until ctx ends. net reads the client listener's
// figures.
func returnMemory(ctx context.Context, net func() netio.Stats, logger *slog.Logger) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	t := time.NewTicker(returnEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		held := samples[0].Value.Uint64() + samples[1].Value.Uint64()
		live := samples[2].Value.Uint64()
		st := net()
		if held < live+returnAbove || st.QueuedBytes+st.IncompleteBytes+st.BufferedBytes > returnNetQuiet {
			continue
		}
		debug.FreeOSMemory()
		metrics.Read(samples)
		logger.Debug("returned free heap to the kernel", "held_before", held,
			"held_after", samples[0].Value.Uint64()+samples[1].Value.Uint64(), "live", samples[2].Value.Uint64())
	}
}
