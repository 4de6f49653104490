package segment

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Segment files are opened on demand and closed while idle, so a store can
// hold more segments than the process may have files open: 100,000
// partitions under a LimitNOFILE of 65,536, or 50,000 under 20,000. Kafka
// keeps every segment open and asks for a limit above the segment count;
// samsa does that too while the count fits (the default bound is three
// quarters of the limit), and past it the least recently used idle files
// are closed and reopened at their next use.
//
// A use of a segment's file is bracketed by acquire and release. A file is
// closed ("parked") only when no use is in flight and everything written
// to it is synced: a reader's Slice holds a use until Release, and a
// file with data not yet durable is never closed (Segment.unsynced; its
// fsync error, if any, reaches the descriptor that wrote). Queued writes
// and readers between reads only reference the segment: its file is
// reopened when they use it. A segment whose name is about
// to be removed or taken by another file (retention, compaction, a
// truncation, a deleted topic) is retired first: its file stays open until
// the last reader lets go, as when every file was open, and is never
// opened again by a name that may now lead to another file.
//
// The protocol between acquire and park, without a lock on the fast path:
// acquire adds to users, then loads the file; park swaps the file out,
// then loads users and puts the file back if a use began. Go's atomics are
// sequentially consistent, so either park sees the use, or the use's load
// comes after the swap and sees no file, and reopens (under fmu, which
// park holds throughout).

// fileCache bounds the open segment files of the process: descriptors are
// a per-process resource, shared by every store in it.
type fileCache struct {
	limit atomic.Int64 // 0: no bound
	open  atomic.Int64 // len(ring)
	// retry is the open count above which trim sweeps again after a
	// sweep that could not get down to its target (every file busy): a
	// sweep per open would walk the whole ring each time.
	retry    atomic.Int64
	reopened atomic.Int64 // files opened again after being parked
	parked   atomic.Int64 // files closed while idle

	mu   sync.Mutex
	ring []*Segment // segments with an open file (Segment.ringAt)
	hand int        // the clock's hand over ring
}

var files fileCache

// SetOpenFileLimit bounds how many segment files the process keeps open:
// past it, idle ones are closed and reopened when used. 0 removes the
// bound.
func SetOpenFileLimit(n int) {
	files.limit.Store(int64(max(n, 0)))
	files.trim()
}

// DefaultOpenFileLimit is three quarters of the process's open files limit
// (the rest is for connections and everything else), at least 64; 0 (no
// bound) when the limit is unlimited or unknown.
func DefaultOpenFileLimit() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY || lim.Cur > 1<<40 {
		return 0
	}
	return max(int(lim.Cur/4*3), 64)
}

// FileStats is what the segment file cache has done.
type FileStats struct {
	Open     int64 // segment files open now
	Limit    int64 // their bound, 0 if none
	Reopened int64 // files opened again after being closed while idle
	Parked   int64 // files closed while idle
}

// OpenFileStats reports the process's segment files.
func OpenFileStats() FileStats {
	return FileStats{Open: files.open.Load(), Limit: files.limit.Load(), Reopened: files.reopened.Load(), Parked: files.parked.Load()}
}

// add puts s, whose file just opened, in the ring. s.fmu is held.
func (c *fileCache) add(s *Segment) {
	s.used.Store(true) // a second chance before the hand parks it
	c.mu.Lock()
	s.ringAt = len(c.ring)
	c.ring = append(c.ring, s)
	c.open.Store(int64(len(c.ring)))
	c.mu.Unlock()
}

// remove takes s, whose file is closing, out of the ring. s.fmu is held.
func (c *fileCache) remove(s *Segment) {
	c.mu.Lock()
	c.removeLocked(s)
	c.mu.Unlock()
}

func (c *fileCache) removeLocked(s *Segment) {
	i := s.ringAt
	if i < 0 || i >= len(c.ring) || c.ring[i] != s {
		return
	}
	last := len(c.ring) - 1
	c.ring[i] = c.ring[last]
	c.ring[i].ringAt = i
	c.ring[last] = nil
	c.ring = c.ring[:last]
	s.ringAt = -1
	c.open.Store(int64(len(c.ring)))
}

// trim parks idle files while more are open than the bound allows, down to
// 15/16 of it so that the sweep runs once per many opens. The clock gives
// a file used since the hand last passed another turn.
func (c *fileCache) trim() {
	lim := c.limit.Load()
	if lim <= 0 || c.open.Load() <= max(lim, c.retry.Load()) {
		return
	}
	if open := c.park(max(lim-lim/16, 1)); open > lim {
		c.retry.Store(open + lim/16)
	} else {
		c.retry.Store(0)
	}
}

// full reports whether the open files are so far past the bound that a
// writer should wait for the syncer to let some close: an eighth past it
// (the bound leaves a quarter of the limit to everything else).
func (c *fileCache) full() bool {
	lim := c.limit.Load()
	return lim > 0 && c.open.Load() >= lim+max(lim/8, 16)
}

// afterSync trims once files are synced and may be closed: a sweep that
// failed while they were dirty does not hold the next one back.
func (c *fileCache) afterSync() {
	lim := c.limit.Load()
	if lim <= 0 || c.open.Load() <= lim {
		return
	}
	c.retry.Store(0)
	c.trim()
}

// park closes idle files until at most target are open, or every file was
// looked at twice, and returns how many are open.
func (c *fileCache) park(target int64) int64 {
	var closing []*os.File
	c.mu.Lock()
	for steps := 2 * len(c.ring); steps > 0 && int64(len(c.ring)) > target; steps-- {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		s := c.ring[c.hand]
		if s.used.Load() {
			s.used.Store(false)
			c.hand++
			continue
		}
		if f := s.tryPark(); f != nil {
			closing = append(closing, f) // the last in the ring took its place
			continue
		}
		c.hand++
	}
	open := int64(len(c.ring))
	c.mu.Unlock()
	c.parked.Add(int64(len(closing)))
	for _, f := range closing {
		f.Close()
	}
	return open
}

// tryPark takes the file of an idle segment out (the caller closes it), or
// returns nil. Idle: nobody uses the file and all written to it is synced
// (a queued write or a reader's reference does not need the file open). c.mu
// is held; s.fmu is only tried, as its holders may wait for c.mu.
func (s *Segment) tryPark() *os.File {
	if s.users.Load() != 0 || s.unsynced.Load() || !s.fmu.TryLock() {
		return nil
	}
	defer s.fmu.Unlock()
	if s.pinned || s.gone {
		return nil
	}
	f := s.fp.Swap(nil)
	if f == nil {
		return nil
	}
	if s.users.Load() != 0 {
		s.fp.Store(f)
		return nil
	}
	files.removeLocked(s)
	return f
}

var errSegmentGone = errors.New("segment file closed and its name gone")

// acquire returns the segment's file, reopening it if it was parked; the
// caller releases it when done.
func (s *Segment) acquire() (*os.File, error) {
	s.users.Add(1)
	if !s.used.Load() {
		s.used.Store(true)
	}
	if f := s.fp.Load(); f != nil {
		return f, nil
	}
	f, err := s.reopen()
	if err != nil {
		s.users.Add(-1)
		return nil, err
	}
	return f, nil
}

func (s *Segment) release() { s.users.Add(-1) }

// writeFileWait is how long a write or fsync waits for a descriptor when
// the process has none left: a write that cannot open its file takes its
// log offline, so a short shortage (a burst of connections) is waited out.
var writeFileWait = 3 * time.Second

// acquireWrite is acquire for the disk's writer and syncer: out of
// descriptors, it waits for one (up to writeFileWait) instead of failing.
func (s *Segment) acquireWrite() (*os.File, error) {
	f, err := s.acquire()
	for wait, waited := time.Millisecond, time.Duration(0); outOfFiles(err) && waited < writeFileWait; wait = min(wait*2, 100*time.Millisecond) {
		if waited == 0 {
			outOfFilesWaits.Add(1)
		}
		time.Sleep(wait)
		waited += wait
		f, err = s.acquire()
	}
	return f, err
}

// outOfFilesWaits counts writes that had to wait for a descriptor (tests).
var outOfFilesWaits atomic.Int64

func outOfFiles(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)
}

// reopen opens a parked segment's file again.
func (s *Segment) reopen() (*os.File, error) {
	s.fmu.Lock()
	f, err := s.openLocked()
	s.fmu.Unlock()
	if err != nil {
		return nil, err
	}
	files.trim()
	return f, nil
}

// openLocked returns the open file, opening it if needed. s.fmu is held.
func (s *Segment) openLocked() (*os.File, error) {
	if f := s.fp.Load(); f != nil {
		return f, nil
	}
	if s.gone {
		return nil, fmt.Errorf("%s: %w", s.path, errSegmentGone)
	}
	f, err := openSegmentFile(s.path + ".log")
	if outOfFiles(err) {
		// Connections took more than the bound left them: give back an
		// eighth of the idle files and try again.
		open := files.open.Load()
		files.park(open - open/8 - 1)
		f, err = openSegmentFile(s.path + ".log")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reopen segment: %w", err)
	}
	s.fp.Store(f)
	files.add(s)
	files.reopened.Add(1)
	return f, nil
}

// retire is called before the segment's name is removed or given to
// another file, with Log.mu held so that no reader can find the segment
// anew. A segment referenced by more than its log (a reader, a queued disk
// op) keeps its file open until its last reference goes, so that they read
// what they found; its file is reopened for that if it was closed. A file
// that cannot be reopened stays closed, and its readers get an error, never
// the bytes of another file by the same name.
func (s *Segment) retire() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.gone {
		return
	}
	if s.refs.Load() > 1 && s.fp.Load() == nil {
		_, _ = s.openLocked()
	}
	s.gone = true
}

// unpin lets a segment's file be closed while idle (a cleaned segment once
// its name is its own).
func (s *Segment) unpin() {
	s.fmu.Lock()
	s.pinned = false
	s.fmu.Unlock()
}

// closeFile closes the file for good: the last reference went.
func (s *Segment) closeFile() {
	s.fmu.Lock()
	s.gone = true
	f := s.fp.Swap(nil)
	if f != nil {
		files.remove(s)
	}
	s.fmu.Unlock()
	if f != nil {
		f.Close()
	}
}

// withFile runs fn on the segment's file (the disk's goroutines and
// truncations: acquireWrite).
func (s *Segment) withFile(fn func(*os.File) error) error {
	f, err := s.acquireWrite()
	if err != nil {
		return err
	}
	defer s.release()
	return fn(f)
}

// readAt reads from the segment's file at pos.
func (s *Segment) readAt(b []byte, pos int64) (int, error) {
	f, err := s.acquire()
	if err != nil {
		return 0, err
	}
	n, err := f.ReadAt(b, pos)
	s.release()
	return n, err
}
