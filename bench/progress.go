package bench

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress reports a running workload's record count to w at most once a
// second. The workload's goroutines add to done; the reporting goroutine is
// owned by the progress and ends in stop.
type progress struct {
	done atomic.Int64

	w     io.Writer
	label string
	total int64
	quit  chan struct{}
	wg    sync.WaitGroup
}

// startProgress starts reporting; a nil w reports nothing.
func startProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: total, quit: make(chan struct{})}
	if w == nil {
		return p
	}
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *progress) run() {
	defer p.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			fmt.Fprintf(p.w, "  %s: %d/%d records (%.0fs)\n", p.label, p.done.Load(), p.total, time.Since(start).Seconds())
		}
	}
}

// stop ends the reporting goroutine and waits for it. Call it once.
func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
}
