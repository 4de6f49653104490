package segment

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A full disk is a state a log recovers from; a failed fsync is not.
//
// Free space is watched against a reserve (min_free_bytes): below it,
// appends to user logs are refused with ErrDiskFull before any offset is
// assigned, while internal logs (the metadata log, committed offsets) keep
// writing into the reserve, so that deleting a topic or committing offsets
// still works on a full box. A write that fails with ENOSPC or EDQUOT
// anyway (another process filled the disk) takes its log offline with a
// full-disk failure: once space is back, the store's space check truncates
// the log to what was written before the failure and lifts it. A failed
// fsync, or any other write error, takes the log offline until a restart,
// which recovers it from what is on disk (the fsyncgate rule: after a
// failed fsync the kernel may have dropped the dirty pages, so retrying it
// could report a success for data that is gone).

// ErrDiskFull is returned, wrapped in ErrStorage, by appends to a log while
// the data directory's filesystem is below its reserve or full.
var ErrDiskFull = errors.New("disk full")

// failure is why a log is offline.
type failure struct {
	err  error
	full bool // ENOSPC/EDQUOT: lifted once space is back (recoverSpace)
}

// Err is why the log is offline (wrapped in ErrStorage), or nil.
func (l *Log) Err() error { return l.failure() }

func (l *Log) failure() error {
	if f := l.err.Load(); f != nil {
		return f.err
	}
	return nil
}

// fail takes the log offline until a restart. It replaces a full-disk
// failure: what failed now is not cured by space.
func (l *Log) fail(err error) {
	f := &failure{err: fmt.Errorf("%w: %w", ErrStorage, err)}
	for {
		cur := l.err.Load()
		if cur != nil && !cur.full {
			return
		}
		if l.err.CompareAndSwap(cur, f) {
			return
		}
	}
}

// failWrite takes the log offline after a failed write: until space is
// back if the disk was full, else until a restart.
func (l *Log) failWrite(err error) {
	if !isNoSpace(err) {
		l.fail(err)
		return
	}
	f := &failure{err: fmt.Errorf("%w: %w: %w", ErrStorage, ErrDiskFull, err), full: true}
	if l.err.CompareAndSwap(nil, f) {
		l.logger.Error("disk full; partition offline until space is freed", "err", err)
	}
}

func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}

// recoverSpace brings a log that a full disk took offline back: it waits
// until the writer has failed every op queued before, truncates what those
// may have left past the last published offset, and lifts the failure. It
// reports whether it did.
func (l *Log) recoverSpace() bool {
	f := l.err.Load()
	if f == nil || !f.full {
		return false
	}
	passed := make(chan struct{})
	l.mu.Lock()
	if l.closed || l.disk.closing() {
		l.mu.Unlock()
		return false
	}
	l.disk.enqueue(&op{kind: opBarrier, log: l, done: func(error) { close(passed) }})
	l.mu.Unlock()
	<-passed
	// Appends are refused while the failure stands, so the log is still
	// where the failed writes left it: roll back to the published end (a
	// batch boundary; offsets past it were never acknowledged).
	end := l.end.Load()
	if _, err := l.TruncateTo(end); err != nil {
		l.fail(fmt.Errorf("cannot roll back after a full disk: %w", err))
		return false
	}
	if !l.err.CompareAndSwap(f, nil) {
		return false // failed for good meanwhile
	}
	l.logger.Info("space is back; partition online", "end", end)
	return true
}

// space tracks the free bytes of a disk's filesystem against its reserve.
// The writer keeps an estimate (free at the last statfs, less what it wrote
// since) and asks the filesystem again whenever the estimate crosses the
// reserve or it is older than spaceRefresh.
type space struct {
	dir     string
	reserve atomic.Int64 // min_free_bytes
	free    atomic.Int64 // estimate
	size    atomic.Int64 // filesystem size
	low     atomic.Bool  // free < reserve: user appends refused
	checked atomic.Int64 // unix ns of the last statfs
}

const spaceRefresh = 100 * time.Millisecond

// statfs reads the filesystem's free space and updates low; it returns
// whether low changed and the new free bytes.
func (s *space) statfs() (changed bool, free int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return false, 0, err
	}
	free = int64(st.Bavail) * st.Bsize
	s.free.Store(free)
	s.size.Store(int64(st.Blocks) * st.Bsize)
	s.checked.Store(time.Now().UnixNano())
	low := free < s.reserve.Load()
	return s.low.Swap(low) != low, free, nil
}

// wrote accounts for n bytes written and reports whether the filesystem
// should be asked again.
func (s *space) wrote(n int64) bool {
	free := s.free.Add(-n)
	return (free < s.reserve.Load()) != s.low.Load() ||
		time.Since(time.Unix(0, s.checked.Load())) >= spaceRefresh
}

// DiskSpace is a data directory's free space and reserve.
type DiskSpace struct {
	Free, Size, Reserve int64
	Low                 bool // below the reserve: produce is refused
}

// Space reports the disk's free space as last measured.
func (d *Disk) Space() DiskSpace {
	return DiskSpace{Free: d.space.free.Load(), Size: d.space.size.Load(), Reserve: d.space.reserve.Load(), Low: d.space.low.Load()}
}

// SetReserve sets min_free_bytes: below it, appends to user logs are
// refused. A negative value picks min(256 MiB, 5% of the filesystem).
func (d *Disk) SetReserve(n int64) {
	if n < 0 {
		d.refreshSpace()
		n = min(256<<20, d.space.size.Load()/20)
	}
	d.space.reserve.Store(n)
	d.refreshSpace()
}

// refreshSpace asks the filesystem for its free space and logs crossings
// of the reserve.
func (d *Disk) refreshSpace() {
	changed, free, err := d.space.statfs()
	if err != nil {
		d.logger.Warn("cannot read free space", "err", err)
		return
	}
	if !changed {
		return
	}
	if d.space.low.Load() {
		d.logger.Error("disk nearly full: produce refused with KAFKA_STORAGE_ERROR until space is freed",
			"free_bytes", free, "min_free_bytes", d.space.reserve.Load())
	} else {
		d.logger.Info("disk space back above the reserve: produce accepted again",
			"free_bytes", free, "min_free_bytes", d.space.reserve.Load())
	}
}

// checkSpace refuses an append to a user log while the disk is below its
// reserve. l.mu is held.
func (l *Log) checkSpace(cfg *Config) error {
	if cfg.Internal || !l.disk.space.low.Load() {
		return nil
	}
	return fmt.Errorf("%w: %w: %s has %d bytes free, below min_free_bytes %d", ErrStorage, ErrDiskFull,
		l.disk.dir, l.disk.space.free.Load(), l.disk.space.reserve.Load())
}

// checkSpace runs on the store's ticker: it refreshes the free space and,
// with space back, brings logs a full disk took offline online again.
// Internal logs come back as soon as a preallocation chunk fits; user logs
// once the disk is above its reserve too.
func (s *Store) checkSpace() {
	s.disk.refreshSpace()
	free := s.disk.space.free.Load()
	for _, l := range s.snapshot() {
		need := int64(preallocChunk)
		if !l.cfg.Load().Internal {
			need = max(need, s.disk.space.reserve.Load())
		}
		if free >= need {
			l.recoverSpace()
		}
	}
}
