package bench

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The soak's samples (each node's RSS, open fds, goroutines and disk)
// and the trends computed from them.

// sampleLoop takes a sample every SampleEvery until quit is closed.
func (k *soak) sampleLoop(quit chan struct{}) {
	t := time.NewTicker(k.s.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		k.sample()
	}
}

// sample records both nodes' figures and the load's counts, and prints
// them as a line. Any goroutine.
func (k *soak) sample() {
	smp := SoakSample{Elapsed: k.elapsed()}
	for i, n := range k.pair.Nodes {
		pid := int(k.pid[i].Load())
		if pid == 0 {
			continue
		}
		ns := NodeSample{PID: pid, Goroutines: -1}
		mem, err := readMem(pid)
		if err != nil {
			continue // died since: down
		}
		ns.Up, ns.RSS = true, mem.RSS
		if fds, err := openFDs(pid); err == nil {
			ns.FDs = fds
		}
		ns.Goroutines = k.goroutines(n)
		ns.Disk, ns.DiskOther = diskUse(n.DataDir(), k.topics[soakPlain]+"-")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if l, err := n.Leader(ctx); err == nil {
			ns.Role = "standby"
			if l == n.ID {
				ns.Role = "primary"
			}
		}
		cancel()
		smp.Nodes[i] = ns
	}
	for i, l := range k.leds {
		c := l.counts()
		smp.Acked[i], smp.Failed[i] = c.acked, c.failed
	}
	smp.GroupRead, _ = k.groupRead.counts()
	k.mu.Lock()
	defer k.mu.Unlock()
	smp.Members = k.members
	k.rep.Samples = append(k.rep.Samples, smp)
	if k.cfg.Lines != nil {
		fmt.Fprintln(k.cfg.Lines, smp.line())
	}
}

// goroutines reads go_goroutines from the node's /metrics, or -1.
func (k *soak) goroutines(n *PairNode) int {
	if n.AdminAddr == "" {
		return -1
	}
	resp, err := k.http.Get("http://" + n.AdminAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// diskUse is the space allocated to the files under dir, and the same
// without the directories whose names start with skip.
func diskUse(dir, skip string) (all, other int64) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file deleted under the walk, or a directory
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		n := allocated(info)
		all += n
		if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, skip) {
			other += n
		}
		return nil
	})
	return all, other
}

func (smp SoakSample) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak %s:", fmtElapsed(smp.Elapsed))
	for i, n := range smp.Nodes {
		if i > 0 {
			b.WriteString(" |")
		}
		if !n.Up {
			fmt.Fprintf(&b, " node%d down", i+1)
			continue
		}
		fmt.Fprintf(&b, " node%d %s rss %s fds %d gor %d disk %s (%s w/o plain)",
			i+1, orDash(n.Role), fmtBytes(n.RSS), n.FDs, n.Goroutines, fmtBytes(n.Disk), fmtBytes(n.DiskOther))
	}
	fmt.Fprintf(&b, " | acked %s/%s/%s failed %d group read %s (%d members)",
		fmtCount(float64(smp.Acked[0])), fmtCount(float64(smp.Acked[1])), fmtCount(float64(smp.Acked[2])),
		smp.Failed[0]+smp.Failed[1]+smp.Failed[2], fmtCount(float64(smp.GroupRead)), smp.Members)
	return b.String()
}

// soakTrend computes node i's trend over samples taken after `after`
// seconds while it was up.
func soakTrend(samples []SoakSample, i int, after float64, restarts []float64) *SoakTrend {
	t := &SoakTrend{Restarts: restarts}
	var xs []float64
	var rss, fds, gor, disk, other []float64
	gorOK := true
	for _, s := range samples {
		n := s.Nodes[i]
		if !n.Up || s.Elapsed < after {
			continue
		}
		xs = append(xs, s.Elapsed/3600)
		rss, fds, disk, other = append(rss, float64(n.RSS)), append(fds, float64(n.FDs)), append(disk, float64(n.Disk)), append(other, float64(n.DiskOther))
		gor = append(gor, float64(n.Goroutines))
		gorOK = gorOK && n.Goroutines >= 0
		t.LastRSS, t.LastFDs, t.LastGorouts, t.LastDisk = n.RSS, n.FDs, n.Goroutines, n.Disk
	}
	t.Samples = len(xs)
	t.RSSPerHour, t.FDsPerHour, t.DiskPerHour, t.DiskOtherPerHour = slope(xs, rss), slope(xs, fds), slope(xs, disk), slope(xs, other)
	if gorOK {
		t.GoroutinesPerHour = slope(xs, gor)
	}
	// The longest stretch of one process (one pid) after `after`.
	var best, cur []SoakSample
	pid := 0
	for _, s := range samples {
		n := s.Nodes[i]
		if !n.Up || s.Elapsed < after {
			pid, cur = 0, nil
			continue
		}
		if n.PID != pid {
			pid, cur = n.PID, nil
		}
		cur = append(cur, s)
		if len(cur) > len(best) {
			best = cur
		}
	}
	if len(best) >= 2 {
		var x, r, f, g []float64
		for _, s := range best {
			x = append(x, s.Elapsed/3600)
			r, f, g = append(r, float64(s.Nodes[i].RSS)), append(f, float64(s.Nodes[i].FDs)), append(g, float64(s.Nodes[i].Goroutines))
		}
		t.StretchSamples = len(best)
		t.StretchSec = best[len(best)-1].Elapsed - best[0].Elapsed
		t.StretchRSSPerHour, t.StretchFDsPerHour, t.StretchGorPerHour = slope(x, r), slope(x, f), slope(x, g)
	}
	return t
}

// slope is the least squares slope of ys over xs, 0 for fewer than two
// distinct xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var cov, vx float64
	for i := range xs {
		cov += (xs[i] - mx) * (ys[i] - my)
		vx += (xs[i] - mx) * (xs[i] - mx)
	}
	if vx == 0 {
		return 0
	}
	return cov / vx
}

// fmtElapsed formats seconds as 1m05s.
func fmtElapsed(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	m := int(d / time.Minute)
	return fmt.Sprintf("%dm%02ds", m, int((d%time.Minute)/time.Second))
}

// fmtBytes formats a byte count in MiB (GiB above 10 GiB).
func fmtBytes(n int64) string {
	if n >= 10<<30 {
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
}
