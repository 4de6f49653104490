package segment

import (
	"math"
	"time"
)

// enforceRetention deletes whole segments that are past retention.ms or
// beyond retention.bytes, and wholly below the retention bound
// (SetRetentionBound). The active segment is rolled first when it alone
// is expired. It returns the number of segments deleted.
func (l *Log) enforceRetention(now time.Time) int {
	cfg := l.cfg.Load()
	if !cfg.Delete {
		return 0
	}
	bound := int64(math.MaxInt64)
	if f := l.retentionBound.Load(); f != nil {
		bound = (*f)() // only grows: read before the lock, it errs on keeping
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.failure() != nil {
		return 0
	}
	nowMs := now.UnixMilli()
	var total int64
	for _, s := range l.segs {
		total += s.reserved
	}
	n := 0
	for i, s := range l.segs {
		isActive := i == len(l.segs)-1
		if s.reserved == 0 {
			break
		}
		expired := cfg.RetentionMs >= 0 && s.maxTs >= 0 && nowMs-s.maxTs > cfg.RetentionMs
		oversize := cfg.RetentionBytes >= 0 && total-s.reserved >= cfg.RetentionBytes
		if !expired && !oversize {
			break
		}
		upper := l.next // the offsets s holds are below upper
		if !isActive {
			upper = l.segs[i+1].base
		}
		if upper > bound {
			break // it holds offsets the bound has not passed
		}
		if isActive {
			if !expired || s.size.Load() != s.reserved {
				break // only roll a fully written, wholly expired segment
			}
			if _, err := l.rollLocked(); err != nil {
				break
			}
			// The new, empty segment now carries the log's start and end
			// offsets: its name must be durable before the files that
			// held them go, or a power loss could restart the log at 0.
			if err := syncDir(l.dir); err != nil {
				l.logger.Warn("cannot sync log dir", "err", err)
			}
		}
		total -= s.reserved
		n++
	}
	if n == 0 {
		return 0
	}
	for _, s := range l.segs[:n] {
		s.drop()
	}
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.start.Store(max(l.start.Load(), l.segs[0].base))
	l.logger.Info("retention deleted segments", "count", n, "log_start_offset", l.start.Load())
	return n
}
