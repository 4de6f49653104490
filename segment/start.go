package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The log start offset is normally the first segment's base offset.
// DeleteRecords moves it into a segment; it is then kept in the file
// log-start-offset of the partition directory (Kafka keeps one
// log-start-offset-checkpoint per data directory; one file per log needs no
// coordination between logs).
const startCheckpoint = StartOffsetFile

// StartOffsetFile is the name of a partition's log start offset file.
const StartOffsetFile = "log-start-offset"

// loadStart raises the log start offset to the checkpoint, if there is one
// above the first segment. Called by OpenLog.
func (l *Log) loadStart() {
	raw, err := os.ReadFile(filepath.Join(l.dir, startCheckpoint))
	if err != nil {
		return
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		l.logger.Warn("ignoring unreadable log start offset", "file", startCheckpoint, "err", err)
		return
	}
	// A crash can cut the tail below a checkpoint written just before it.
	l.start.Store(min(max(v, l.start.Load()), l.next))
}

// DeleteBefore makes offsets below offset unreadable (DeleteRecords): it
// advances the log start offset durably and deletes the segments wholly
// below it. It returns the new log start offset, which stays where it is if
// offset is not above it. offset may be at most the end offset.
func (l *Log) DeleteBefore(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrLogClosed
	}
	if err := l.failure(); err != nil {
		return 0, err
	}
	if offset > l.next {
		return 0, fmt.Errorf("cannot delete records before %d: the log ends at %d: %w", offset, l.next, ErrOffsetOutOfRange)
	}
	if offset <= l.start.Load() {
		return l.start.Load(), nil
	}
	if err := writeFileSync(filepath.Join(l.dir, startCheckpoint), []byte(strconv.FormatInt(offset, 10)+"\n")); err != nil {
		return 0, err
	}
	l.start.Store(offset)
	if active := l.segs[len(l.segs)-1]; offset == l.next && active.reserved > 0 && active.size.Load() == active.reserved {
		// Everything goes: roll so that the active segment can too.
		if _, err := l.rollLocked(); err == nil {
			if err := syncDir(l.dir); err != nil {
				l.logger.Warn("cannot sync log dir", "err", err)
			}
		}
	}
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].base <= offset {
		n++
	}
	for _, s := range l.segs[:n] {
		s.drop()
	}
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.logger.Info("deleted records", "log_start_offset", offset, "segments_deleted", n)
	return offset, nil
}
