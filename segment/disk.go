package segment

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Disk owns the I/O of one data directory: writer goroutines (lanes) that
// take the pending appends from all partitions on the disk and write each
// segment's contiguous run with one pwritev, and a syncer goroutine that
// group-commits: one fdatasync per dirty file covers every append written
// before it started. Appends never wait for each other's fsync.
//
// Lock order: Log.mu before Disk.mu before Disk.syncMu (LOCKS.md).
type Disk struct {
	dir    string
	logger *slog.Logger

	mu     sync.Mutex
	closed bool // (mu) Close was called
	lanes  [numLanes]lane
	// lanesLeft counts the lanes still running; the last to stop tells
	// the syncer to finish.
	lanesLeft atomic.Int32

	syncMu    sync.Mutex
	syncQueue []*op                 // (syncMu) written ops waiting for fsync
	dirty     map[*Segment]struct{} // (syncMu) files written since their last fsync
	syncWake  chan struct{}
	ring      *syncRing  // syncer goroutine only; nil: fdatasync on goroutines
	syncFDs   []int      // syncer goroutine only: syncOnRing's scratch
	syncErrs  []error    // syncer goroutine only: syncOnRing's scratch
	syncHeld  []*Segment // syncer goroutine only: syncOnRing's scratch

	// starting: the store is opening its logs (OpenStore until MarkOpen),
	// which leave the fsyncs recovery needs to MarkOpen's syncfs.
	starting atomic.Bool

	space         space // free bytes against the reserve (space.go)
	flushInterval time.Duration
	copying       atomic.Bool                         // the logs are a standby's copies (SetCopying)
	pin           func()                              // runs first on the writer and syncer goroutines
	onSync        atomic.Pointer[func(time.Duration)] // observes each group fsync's duration
	onStages      atomic.Pointer[func(Stages)]        // observes each synced append's stages
	quit          chan struct{}
	wg            sync.WaitGroup
}

// A lane is one writer goroutine and its queue. A log's ops go to one
// lane at a time (Log.lane), chosen while the log has none in flight: a
// log that appended bulkRecent bytes or more within its last one or two
// rateWindows, and any append of bulkWrite bytes or more, to the bulk
// lane; the rest to the small lane. Under a 200 MiB/s bulk load on the
// 2-core test VM, copying a bulk partition's batch into the page cache
// took 1-7 ms (0.2-0.3 ms idle: the copy waited for a CPU), and one
// writer for all took each batch's runs in turn, so a 1 KiB acks=all
// append waited p99 56 ms for the writer. With a lane of its own it
// waits for small appends only. A load of only bulk (or only small)
// appends is one writer, batching as before (docs/BENCHMARKS.md, "Bulk
// appends in a lane of their own").
//
// The rate, not the batch's size, says which is which: a producer's
// batches grow with the time its requests wait. Under that bulk load,
// sorted by a 16 KiB size, a 10,000 records/s stream of 1 KiB records
// over 8 partitions sent a third of its batches, half its records, to
// the bulk lane (24-35 KiB on average), where they waited behind the
// bulk's copies and grew more; the bulk producer's own batches (16 KiB
// records, no linger) were 16-192 KiB (p1-p90). The stream's rate stays
// 1.25 MiB/s a partition however it batches; the bulk partitions' was 25.
type lane struct {
	id    int   // smallLane or bulkLane
	queue []*op // (Disk.mu) appends in arrival order
	wake  chan struct{}
	iov   [][]byte // the lane's goroutine only
	// writebacks are the copies written in this batch whose writeback
	// starts once their appends completed (copying; the lane's goroutine
	// only).
	writebacks []writeback
	handed     []handedOps // the lane's goroutine only: the ops the batch hands on, by log
}

// handedOps is n ops of log in a row of a lane's batch: once handed on,
// its laneOps drops by n.
type handedOps struct {
	log *Log
	n   int32
}

const (
	smallLane = iota
	bulkLane
	numLanes
)

// A log whose appends reached bulkRecent bytes within its current and
// previous rateWindow (10 MiB/s and more, sometimes from 5) writes to the
// bulk lane; so does an append of bulkWrite bytes or more, whose copy
// alone would hold a writer for a while.
const (
	rateWindow = 100 * time.Millisecond
	bulkWrite  = 256 << 10
)

// bulkRecent is a variable for the tests (those of the size rule alone).
var bulkRecent int64 = 1 << 20

// beforeWrite, set by tests before a disk starts, runs before each run's
// pwritev with its lane and length.
var beforeWrite func(lane int, n int64)

// laneFor picks the lane for a log's op when the log has none in flight.
func laneFor(o *op) int {
	if o.kind == opWrite && (o.hot || len(o.data) >= bulkWrite) {
		return bulkLane
	}
	return smallLane
}

type opKind uint8

const (
	opWrite   opKind = iota // write data at pos in seg, then publish
	opBarrier               // no data: completes after everything before it
	opSeal                  // seg takes no more appends: fsync it, write its indexes
)

// op is one queued disk operation.
type op struct {
	kind opKind
	log  *Log
	seg  *Segment
	pos  int64
	data []byte
	end  int64 // the log's end offset once this op is written (a Log.Sync barrier: the end it covers)
	sync bool  // complete only after fsync
	hot  bool  // its log appended bulkRecent bytes or more within its current and previous rateWindow
	done func(error)

	// With onStages set, the monotonic times (ns since diskEpoch) it was
	// queued, its write began and ended, and whether the bulk lane wrote it.
	queued, wrote0, wrote1 int64
	bulk                   bool

	// opSeal: the indexes to persist.
	offIdx  offsetIndex
	timeIdx timeIndex
	txnIdx  txnIndex
}

// NewDisk starts the writer and syncer for a data directory. flushInterval
// bounds how long written data may stay unsynced (0: only on demand). pin,
// if not nil, runs first on both goroutines (CPU pinning).
func NewDisk(dir string, flushInterval time.Duration, pin func(), logger *slog.Logger) *Disk {
	d := &Disk{
		dir:           dir,
		logger:        logger.With("subsystem", "disk", "dir", dir),
		syncWake:      make(chan struct{}, 1),
		dirty:         map[*Segment]struct{}{},
		flushInterval: flushInterval,
		pin:           pin,
		quit:          make(chan struct{}),
	}
	d.space.dir = dir
	d.refreshSpace()
	if useSyncRing {
		// Set up here, handed to the syncer by the go statement.
		r, err := newSyncRing(syncRingEntries)
		if err != nil {
			d.logger.Info("io_uring unavailable: group commit fdatasyncs on goroutines", "err", err)
		} else {
			d.ring = r
		}
	}
	d.startWriter()
	d.startSyncer()
	return d
}

// Dir is the data directory this disk owns.
func (d *Disk) Dir() string { return d.dir }

func (d *Disk) startWriter() {
	d.lanesLeft.Store(numLanes)
	for i := range d.lanes {
		l := &d.lanes[i]
		l.id = i
		l.wake = make(chan struct{}, 1)
		l.iov = make([][]byte, 0, 64)
		d.startLoop(func() { d.writeLoop(l) })
	}
}

func (d *Disk) startSyncer() { d.startLoop(d.syncLoop) }

// startLoop runs loop on a goroutine that Close waits for, after pin.
func (d *Disk) startLoop(loop func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if d.pin != nil {
			d.pin()
		}
		loop()
	}()
}

// enqueue adds an op to its log's lane. Log.mu is held so ops of one log
// stay in order. The op holds a reference on its segment until it
// completes, so that retention or Log.Close cannot close the file under
// the writer or syncer.
func (d *Disk) enqueue(o *op) {
	if o.seg != nil && !o.seg.ref() {
		panic("BUG: disk op on a closed segment " + o.seg.path)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		// The writer is gone; nobody would complete the op.
		d.logger.Error("BUG: disk op after Disk.Close; appends must stop first")
		o.finish(ErrLogClosed)
		return
	}
	if o.sync && d.onStages.Load() != nil {
		o.queued = diskNow()
	}
	// The lane's writer decrements laneOps once it handed the op on (to
	// the syncer or done): at zero, every earlier op of the log is written
	// and queued for its sync, so the next may take another lane.
	if o.log.laneOps.Add(1) == 1 {
		o.log.lane = laneFor(o)
	}
	l := &d.lanes[o.log.lane]
	l.queue = append(l.queue, o)
	d.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Stages is where one append that waited for its fsync spent its time
// on the disk, in order.
type Stages struct {
	WriteWait time.Duration // queued until the writer took it
	Write     time.Duration // the pwritev of the run it was part of
	SyncWait  time.Duration // written until the group fsync covering it began
	Fsync     time.Duration // that group fsync (its files synced in parallel)
	Bulk      bool          // written by the bulk lane (laneFor)
}

// diskEpoch is the base of ops' stage times.
var diskEpoch = time.Now()

func diskNow() int64 { return int64(time.Since(diskEpoch)) }

var opPool = sync.Pool{New: func() any { return new(op) }}

// getOp returns a zeroed op; finish recycles it.
func getOp() *op { return opPool.Get().(*op) }

// finish completes an op, drops its segment reference and recycles it: the
// op must not be used afterwards.
func (o *op) finish(err error) {
	done, seg := o.done, o.seg
	*o = op{}
	opPool.Put(o)
	if done != nil {
		done(err)
	}
	if seg != nil {
		seg.unref()
	}
}

// closing reports whether Close has been called.
func (d *Disk) closing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Close drains the queues, syncs everything and stops the goroutines. Appends
// must have stopped; later ones fail with ErrLogClosed.
func (d *Disk) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.mu.Unlock()
	close(d.quit)
	d.wg.Wait()
}

func (d *Disk) writeLoop(l *lane) {
	var batch []*op
	for {
		select {
		case <-l.wake:
		case <-d.quit:
			d.mu.Lock()
			n := len(l.queue)
			d.mu.Unlock()
			if n == 0 {
				if d.lanesLeft.Add(-1) == 0 {
					d.requestSync(nil)
					close(d.syncWake) // tells the syncer to finish
				}
				return
			}
		}
		d.mu.Lock()
		batch, l.queue = l.queue, batch[:0]
		d.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		d.writeBatch(l, batch)
		clear(batch)
		batch = batch[:0]
		select { // more may have arrived while writing
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// writeBatch writes runs of contiguous appends to the same segment with one
// pwritev each, publishes them to readers and completes or forwards the ops.
func (d *Disk) writeBatch(l *lane, batch []*op) {
	var toSync []*op
	timed := d.onStages.Load() != nil
	for _, o := range batch { // the ops are recycled once handed on
		if n := len(l.handed); n > 0 && l.handed[n-1].log == o.log {
			l.handed[n-1].n++
		} else {
			l.handed = append(l.handed, handedOps{o.log, 1})
		}
	}
	for i := 0; i < len(batch); {
		o := batch[i]
		if o.kind != opWrite {
			if o.kind == opBarrier && !o.sync {
				o.finish(o.log.failure())
			} else {
				toSync = append(toSync, o)
			}
			i++
			continue
		}
		// Extend the run while the next op continues this file.
		j := i + 1
		end := o.pos + int64(len(o.data))
		l.iov = append(l.iov[:0], o.data)
		for j < len(batch) && len(l.iov) < 1024 {
			n := batch[j]
			if n.kind != opWrite || n.seg != o.seg || n.pos != end {
				break
			}
			l.iov = append(l.iov, n.data)
			end += int64(len(n.data))
			j++
		}
		err := o.log.failure()
		var wrote0 int64
		if timed {
			wrote0 = diskNow()
		}
		if err == nil {
			if beforeWrite != nil {
				beforeWrite(l.id, end-o.pos)
			}
			d.waitForFiles(o.seg)
			o.seg.preallocate(end)
			err = d.write(l, o.seg, l.iov, o.pos, end)
			if d.space.wrote(end-o.pos) || err != nil {
				d.refreshSpace()
			}
			if err != nil {
				err = fmt.Errorf("cannot write %s: %w", o.seg.path, err)
				if !isNoSpace(err) {
					d.logger.Error("write failed; partition offline", "err", err)
				}
				o.log.failWrite(err)
				err = o.log.failure() // wrapped in ErrStorage
			}
		}
		if err == nil {
			o.seg.size.Store(end)
			o.log.publish(batch[j-1].end)
		}
		clear(l.iov)
		var wrote1 int64
		if timed {
			wrote1 = diskNow()
		}
		for _, w := range batch[i:j] {
			w.data = nil
			w.wrote0, w.wrote1, w.bulk = wrote0, wrote1, l.id == bulkLane
			if err == nil && w.sync {
				toSync = append(toSync, w)
			} else {
				w.finish(err)
			}
		}
		i = j
	}
	if len(toSync) > 0 {
		d.requestSync(toSync)
	}
	for i, h := range l.handed {
		h.log.laneOps.Add(-h.n)
		l.handed[i] = handedOps{}
	}
	l.handed = l.handed[:0]
	d.startWritebacks(l)
}

// writeback is a range written to a standby's copy, whose writeback is
// to start; it holds a reference on seg.
type writeback struct {
	seg    *Segment
	off, n int64
}

// startWritebacks starts the writeback of the copies writeBatch wrote,
// after their appends completed: the standby's follower sends its next
// fetch (which acknowledges them) while the writer starts it, instead of
// waiting for sync_file_range in the round trip.
func (d *Disk) startWritebacks(l *lane) {
	for i, w := range l.writebacks {
		if f, err := w.seg.acquire(); err == nil {
			// Only a hint to start the writeback: an error here (EIO)
			// is the next fsync's to report.
			_ = startWriteback(int(f.Fd()), w.off, w.n)
			w.seg.release()
		}
		w.seg.unref()
		l.writebacks[i] = writeback{}
	}
	l.writebacks = l.writebacks[:0]
}

func (d *Disk) requestSync(ops []*op) {
	d.syncMu.Lock()
	d.syncQueue = append(d.syncQueue, ops...)
	d.syncMu.Unlock()
	select {
	case d.syncWake <- struct{}{}:
	default:
	}
}

// waitForFiles holds the writer back before it reopens a closed segment
// file while the open files are far past open_segment_files: a write load
// spread over more partitions than that keeps reopening files, and a file
// written is closed only once synced. The syncer, woken, syncs every dirty
// file and closes the idle ones (afterSync); the writer goes on after at
// most a second either way.
func (d *Disk) waitForFiles(s *Segment) {
	if s.fp.Load() != nil || !files.full() {
		return
	}
	for deadline := time.Now().Add(time.Second); files.full() && time.Now().Before(deadline); {
		select {
		case d.syncWake <- struct{}{}:
		default:
		}
		time.Sleep(time.Millisecond)
	}
}

// write writes iov at pos of s (up to end) and marks s dirty for the
// syncer, before it lets go of the file: a file with unsynced data is never
// closed while idle (Segment.unsynced).
func (d *Disk) write(l *lane, s *Segment, iov [][]byte, pos, end int64) error {
	f, err := s.acquireWrite()
	if err != nil {
		return err
	}
	defer s.release()
	if err := pwritevFull(int(f.Fd()), iov, pos); err != nil {
		return err
	}
	if d.copying.Load() && s.ref() {
		l.writebacks = append(l.writebacks, writeback{s, pos, end - pos}) // startWritebacks
	}
	d.syncMu.Lock()
	s.unsynced.Store(true)
	if _, ok := d.dirty[s]; !ok && s.ref() {
		d.dirty[s] = struct{}{} // the syncer drops the reference
	}
	d.syncMu.Unlock()
	return nil
}

// synced drops the dirty set's references once its files are synced, and
// lets those not written again since be closed while idle.
func (d *Disk) synced(dirty map[*Segment]struct{}) {
	d.syncMu.Lock()
	for s := range dirty {
		if _, again := d.dirty[s]; !again {
			s.unsynced.Store(false)
		}
	}
	d.syncMu.Unlock()
	for s := range dirty {
		s.unref()
	}
}

func pwritevFull(fd int, iov [][]byte, pos int64) error {
	for len(iov) > 0 {
		n, err := unix.Pwritev(fd, iov, pos)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		pos += int64(n)
		for n > 0 && len(iov) > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
	}
	return nil
}

func (d *Disk) syncLoop() {
	defer func() {
		if d.ring != nil {
			d.ring.close()
			d.ring = nil
		}
	}()
	var tick <-chan time.Time
	if d.flushInterval > 0 {
		t := time.NewTicker(d.flushInterval)
		defer t.Stop()
		tick = t.C
	}
	var ops []*op
	for {
		closing := false
		select {
		case _, ok := <-d.syncWake:
			closing = !ok
		case <-tick:
		}
		d.syncMu.Lock()
		ops, d.syncQueue = d.syncQueue, ops[:0]
		dirty := d.dirty
		d.dirty = make(map[*Segment]struct{}, len(dirty))
		d.syncMu.Unlock()
		d.syncBatch(ops, dirty)
		clear(ops)
		ops = ops[:0]
		if closing {
			return
		}
	}
}

// SetCopying says whether the disk holds a standby's copies, which are
// acknowledged to the primary once written, not once fsynced (standby_fsync
// off). Each write of a copy then starts its own writeback as soon as
// its append completed (sync_file_range: no wait, no journal commit;
// startWritebacks). Left to the flush
// interval's fsync, a second's worth of copies went to the device in one
// burst, and when the pair shares a disk that burst stalled the primary's
// acks=all fsyncs behind it: e2e p99 at 10,000 records/s 46-58 ms against
// 16-24 ms with the writeback started per write (docs/BENCHMARKS.md).
func (d *Disk) SetCopying(on bool) { d.copying.Store(on) }

// startWriteback starts writing out n bytes at off of fd (a variable for
// the tests).
var startWriteback = func(fd int, off, n int64) error {
	return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// maxParallelSyncs bounds the fdatasyncs of one group commit in flight at
// once. Issued together, the device sees one queue of writes and the
// filesystem can fold their journal commits, instead of paying each in
// turn.
const maxParallelSyncs = 16

// syncFSFiles is how many dirty files make a group commit one syncfs of
// the data directory's filesystem rather than an fdatasync each: an
// acks=all load spread over thousands of partitions leaves thousands of
// files dirty, and each fdatasync pays the journal commit and the device
// cache flush that one syncfs pays once. (It also writes out whatever
// else is dirty on that filesystem: on an appliance, samsa's own data.)
const syncFSFiles = 64

// syncAll makes every dirty file and new directory entry durable with one
// syncfs; false, with nothing marked, when it failed (the caller then
// fsyncs file by file, which tells which files failed).
func (d *Disk) syncAll(dirty map[*Segment]struct{}) bool {
	if syncFault.Load() != nil {
		return false // the tests' fault is injected file by file
	}
	start := time.Now()
	if err := syncFS(d.dir); err != nil {
		d.logger.Warn("syncfs failed; fsyncing file by file", "err", err)
		return false
	}
	if f := d.onSync.Load(); f != nil {
		(*f)(time.Since(start))
	}
	syncFSCount.Add(1)
	for s := range dirty {
		s.needDirSync.Store(false)
	}
	d.synced(dirty) // as after syncFiles
	return true
}

// ringSyncCount counts the group commits made through io_uring (tests).
var ringSyncCount atomic.Int64

// syncFSCount counts the group commits made by syncfs (tests).
var syncFSCount atomic.Int64

// syncFiles fdatasyncs every dirty segment, several at a time; a failure
// stays on its segment (failSync).
func (d *Disk) syncFiles(dirty map[*Segment]struct{}) {
	if f := d.onSync.Load(); f != nil {
		defer func(start time.Time) { (*f)(time.Since(start)) }(time.Now())
	}
	if d.ring != nil {
		d.syncOnRing(dirty)
		return
	}
	if len(dirty) == 1 {
		for s := range dirty {
			s.needDirSync.Store(false)
			if err := s.fdatasync(); err != nil {
				s.failSync(err)
			}
		}
		return
	}
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxParallelSyncs)
	)
	for s := range dirty {
		s.needDirSync.Store(false)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.fdatasync(); err != nil {
				s.failSync(err)
			}
		}()
	}
	wg.Wait()
}

// useSyncRing says whether a disk's group commit goes through io_uring
// when the kernel allows it (tests turn it off to cover the fallback).
var useSyncRing = true

// syncRingEntries is the ring's size: the fdatasyncs in flight at once. A
// group commit of syncFSFiles files or more is one syncfs instead.
const syncRingEntries = syncFSFiles

// syncOnRing fdatasyncs the dirty files through the ring. If the ring
// fails it is dropped (later group commits sync on goroutines): a file the
// kernel never took is synced here instead, and a file whose fsync was
// submitted but whose outcome was lost fails as a failed fsync does
// (taking its log offline), since the kernel may have reported, and so
// cleared, a write error nobody read (fsyncgate).
func (d *Disk) syncOnRing(dirty map[*Segment]struct{}) {
	if err := syncFault.Load(); err != nil {
		for s := range dirty {
			s.needDirSync.Store(false)
			s.failSync(*err)
		}
		return
	}
	fds, errs, held := d.syncFDs[:0], d.syncErrs[:0], d.syncHeld[:0]
	for s := range dirty {
		s.needDirSync.Store(false)
		f, err := s.acquireWrite()
		if err != nil {
			s.failSync(err)
			continue
		}
		held = append(held, s)
		fds = append(fds, int(f.Fd()))
		errs = append(errs, nil)
	}
	if len(fds) == 0 {
		return
	}
	err := d.ring.fdatasync(fds, errs)
	if err == nil {
		ringSyncCount.Add(1)
	} else {
		d.logger.Error("io_uring failed: group commit fdatasyncs on goroutines from now on", "err", err)
		d.ring.close()
		d.ring = nil
	}
	for i, s := range held {
		switch {
		case errs[i] == errNotSubmitted:
			if err := fdatasync(fds[i]); err != nil {
				s.failSync(err)
			}
		case errs[i] != nil:
			s.failSync(errs[i])
		}
		s.release()
	}
	clear(errs)
	clear(held)
	d.syncFDs, d.syncErrs, d.syncHeld = fds[:0], errs[:0], held[:0]
}

// syncBatch fsyncs every dirty file, then completes the ops waiting on it.
// Ops are in write order, so every op here was written before the fsyncs.
func (d *Disk) syncBatch(ops []*op, dirty map[*Segment]struct{}) {
	// The fsync stage: the directories' syncs too (new segment files).
	var sync0 int64
	stages := d.onStages.Load()
	if stages != nil {
		sync0 = diskNow()
	}
	if len(dirty) >= syncFSFiles && d.syncAll(dirty) {
		dirty = nil // synced
	}
	dirs := map[string]bool{}
	for s := range dirty {
		if s.needDirSync.Load() {
			dirs[filepath.Dir(s.path)] = true
		}
	}
	for _, o := range ops {
		if o.kind == opSeal && o.seg.needDirSync.Load() {
			dirs[filepath.Dir(o.seg.path)] = true
		}
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			d.logger.Error("dir sync failed", "err", err)
		}
	}
	d.syncFiles(dirty)
	var sync1 int64
	if stages != nil {
		sync1 = diskNow()
	}
	for _, o := range ops {
		var err error
		switch o.kind {
		case opWrite:
			// A failed fsync fails every write it was to cover, also those
			// this round took after the round that synced their file.
			if p := o.seg.syncErr.Load(); p != nil {
				err = *p
			}
		case opBarrier:
			err = o.log.failure()
		case opSeal:
			if o.seg.deleted.Load() {
				break // retention got there first
			}
			// No more writes: give back the blocks past the end.
			o.seg.trimPrealloc(o.seg.size.Load(), 0)
			if _, ok := dirty[o.seg]; !ok {
				if serr := o.seg.fdatasync(); serr != nil {
					err = o.seg.failSync(serr)
				}
			}
			if err == nil {
				if ierr := o.seg.writeIndexes(o.offIdx, o.timeIdx, o.txnIdx); isNoSpace(ierr) {
					// The data is durable; the next start rebuilds
					// the indexes it lacks.
					d.logger.Warn("disk full: segment sealed without its index files", "segment", o.seg.path, "err", ierr)
				} else {
					err = ierr
				}
			}
			if err != nil {
				d.logger.Error("cannot seal segment", "segment", o.seg.path, "err", err)
			}
		}
		if err != nil && o.kind != opBarrier {
			o.log.fail(err)
			err = o.log.failure() // wrapped in ErrStorage
		}
		if err == nil && o.kind == opBarrier && o.end > 0 {
			o.log.publishSynced(o.end) // Log.Sync: everything before it
		}
		if err == nil && o.kind == opWrite {
			o.log.publishSynced(o.end)
			if stages != nil && o.queued != 0 {
				(*stages)(Stages{
					WriteWait: time.Duration(o.wrote0 - o.queued),
					Write:     time.Duration(o.wrote1 - o.wrote0),
					SyncWait:  time.Duration(sync0 - o.wrote1),
					Fsync:     time.Duration(sync1 - sync0),
					Bulk:      o.bulk,
				})
			}
		}
		o.finish(err)
	}
	d.synced(dirty)
	// The files just synced may be closed now: a write load spread over
	// more partitions than open_segment_files reopens files faster than
	// the clock, which runs on opens, can close them while they are dirty.
	files.afterSync()
}

// failSync records that an fdatasync of s failed: no write to s is
// acknowledged from then on (the pages it could not write may be gone).
func (s *Segment) failSync(err error) error {
	err = fmt.Errorf("cannot fsync %s: %w", s.path, err)
	s.syncErr.CompareAndSwap(nil, &err)
	return *s.syncErr.Load()
}

// syncFault, set by tests, is the error every fdatasync fails with
// (fsyncgate tests).
var syncFault atomic.Pointer[error]

// fdatasync makes the segment's data durable.
func (s *Segment) fdatasync() error {
	return s.withFile(func(f *os.File) error { return fdatasync(int(f.Fd())) })
}

func fdatasync(fd int) error {
	if err := syncFault.Load(); err != nil {
		return *err
	}
	return unix.Fdatasync(fd)
}
