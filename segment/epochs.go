package segment

// Leader epochs and truncation, for replication failover.
//
// Every batch carries the leader epoch of the node that appended it. A log
// keeps, in its leader-epoch-checkpoint file (Kafka's format: a version
// line "0", a count line, then "epoch start_offset" lines), the first
// offset of each epoch. A follower whose leader changed asks the new
// leader where its last epoch ended (OffsetForLeaderEpoch, answered with
// EndOffsetForEpoch) and truncates its log there (TruncateTo), dropping a
// divergent tail.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const epochCheckpoint = EpochCheckpointFile

// EpochCheckpointFile is the name of a partition's leader epoch checkpoint.
const EpochCheckpointFile = "leader-epoch-checkpoint"

type epochEntry struct {
	epoch int32
	start int64
}

// loadEpochs reads the checkpoint; entries past the log end are dropped.
// Without a file, data already in the log is of epoch 0 (samsa wrote
// epoch 0 before it had epochs).
func (l *Log) loadEpochs(exists bool) {
	l.epochs = nil
	var data []byte
	err := os.ErrNotExist
	if exists { // the directory listing has it: no failed open otherwise
		data, err = os.ReadFile(filepath.Join(l.dir, epochCheckpoint))
	}
	if err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for i := 0; sc.Scan(); i++ {
			if i < 2 {
				continue // version and count
			}
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				break
			}
			e, err1 := strconv.ParseInt(f[0], 10, 32)
			s, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil || s > l.next || (len(l.epochs) > 0 && int32(e) <= l.epochs[len(l.epochs)-1].epoch) {
				break
			}
			l.epochs = append(l.epochs, epochEntry{int32(e), s})
		}
	}
	if len(l.epochs) == 0 && l.next > l.start.Load() {
		l.epochs = []epochEntry{{0, l.start.Load()}}
	}
	if n := len(l.epochs); n > 0 {
		l.leaderEpoch = max(l.leaderEpoch, l.epochs[n-1].epoch)
	}
}

// writeEpochsLocked persists the epoch list. l.mu is held.
func (l *Log) writeEpochsLocked() {
	var b strings.Builder
	fmt.Fprintf(&b, "0\n%d\n", len(l.epochs))
	for _, e := range l.epochs {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	if err := writeFileSync(filepath.Join(l.dir, epochCheckpoint), []byte(b.String())); err != nil {
		l.logger.Warn("cannot write leader epoch checkpoint", "err", err)
	}
}

// noteEpochLocked records that epoch starts at start, if it is new.
func (l *Log) noteEpochLocked(epoch int32, start int64) {
	if n := len(l.epochs); n > 0 && l.epochs[n-1].epoch >= epoch {
		return
	}
	l.epochs = append(l.epochs, epochEntry{epoch, start})
	if epoch > 0 {
		// Without a file the log is of epoch 0: no write until an epoch
		// changes (a new log's first append needs no fsync for it).
		l.writeEpochsLocked()
	}
}

// SetLeaderEpoch makes this log's node the leader from epoch on: appends
// carry it, and the epoch starts at the log end now (recorded and
// persisted at once, as Kafka does on becoming leader, so a follower that
// asks about an older epoch learns where it ended even before the next
// append).
func (l *Log) SetLeaderEpoch(epoch int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if epoch > l.leaderEpoch {
		l.leaderEpoch = epoch
	}
	if epoch > 0 {
		l.noteEpochLocked(epoch, l.next)
	}
}

// ResetTo empties the log and starts it again at offset: for a follower
// whose copy is wholly below the leader's log start.
func (l *Log) ResetTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLogClosed
	}
	for _, old := range l.segs {
		old.retire() // readers keep what they found; the names go or are reused
		old.deleted.Store(true)
		if old.base == offset {
			// Unlinked, not truncated by the create: its readers keep
			// its bytes.
			old.removeFiles()
		}
	}
	s, err := createSegment(l.dir, offset)
	if err != nil {
		l.fail(err)
		return err
	}
	for _, old := range l.segs {
		if old.base != offset {
			old.removeFiles()
		}
		old.unref()
	}
	s.idxFiles = true // old ones of the same base may be left
	l.segs = []*Segment{s}
	for _, off := range listSnapshots(l.dir) {
		os.Remove(snapshotPath(l.dir, off))
	}
	l.hasSnapshot.Store(false)
	l.producers = producerState{}
	l.rebuildOngoingLocked()
	l.next = offset
	l.changed = true
	l.start.Store(offset)
	l.end.Store(offset)
	l.synced.Store(offset)
	l.epochs = nil
	os.Remove(filepath.Join(l.dir, epochCheckpoint))
	os.Remove(filepath.Join(l.dir, startCheckpoint))
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.logger.Warn("log reset", "start", offset)
	return nil
}

// LeaderEpoch is the epoch of the log's latest appends.
func (l *Log) LeaderEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leaderEpoch
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as Kafka's leader epoch
// cache does: for the latest epoch, the log end; for an older one, the
// largest epoch not above it and the offset where the next epoch starts;
// for one newer than any, -1, -1.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.epochs)
	if n == 0 {
		if epoch == l.leaderEpoch {
			return epoch, l.next
		}
		return -1, -1
	}
	if epoch == l.epochs[n-1].epoch {
		return epoch, l.next
	}
	if epoch > l.epochs[n-1].epoch {
		return -1, -1
	}
	for i := n - 1; i >= 0; i-- {
		if l.epochs[i].epoch <= epoch {
			return l.epochs[i].epoch, l.epochs[i+1].start
		}
	}
	return epoch, l.epochs[0].start
}

// TruncateTo removes every batch at or after offset (rounded down to a
// batch boundary), and returns the new log end. The log must not be taking
// appends meanwhile (a follower truncates before it fetches).
func (l *Log) TruncateTo(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrLogClosed
	}
	if offset >= l.next {
		return l.next, nil
	}
	offset = max(offset, l.start.Load())
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].base > offset {
		i--
	}
	// Later segments go whole.
	for _, s := range l.segs[i+1:] {
		s.drop()
	}
	l.segs = l.segs[:i+1]
	seg := l.segs[i]
	// Find the first batch that ends at or after offset.
	var hb [BatchHeaderSize]byte
	pos, size := int64(0), seg.size.Load()
	for pos < size {
		h, err := seg.readHeader(pos, &hb)
		if err != nil {
			return 0, fmt.Errorf("cannot truncate %s: %w", seg.path, err)
		}
		if h.LastOffset() >= offset {
			break
		}
		pos += h.Size()
	}
	if err := seg.withFile(func(f *os.File) error {
		if err := f.Truncate(pos); err != nil {
			return fmt.Errorf("cannot truncate %s: %w", seg.path, err)
		}
		return f.Sync()
	}); err != nil {
		l.fail(err)
		return 0, err
	}
	seg.size.Store(pos)
	if _, err := seg.recoverScan(l.cfg.Load().IndexIntervalBytes, true); err != nil {
		return 0, err
	}
	seg.reserved = pos
	seg.sealed = false
	seg.indexed.Store(false)
	kept := seg.txnIdx[:0]
	for _, e := range seg.txnIdx {
		if e.LastOffset <= seg.lastOffset {
			kept = append(kept, e)
		}
	}
	seg.txnIdx = kept
	// The file must not keep entries for offsets that will be written
	// again.
	if err := seg.writeTxnIndex(seg.txnIdx); err != nil {
		l.fail(err)
		return 0, err
	}
	for _, ext := range []string{".index", ".timeindex"} {
		os.Remove(seg.path + ext)
	}
	seg.idxFiles = false
	l.changed = true
	if err := syncDir(l.dir); err != nil {
		return 0, err
	}
	l.next = seg.lastOffset + 1
	if pos == 0 {
		l.next = seg.base
	}
	if l.next < l.start.Load() {
		// The start was inside the batch that went (DeleteRecords): the
		// log is empty now and starts at its end.
		l.start.Store(l.next)
		os.Remove(filepath.Join(l.dir, startCheckpoint))
	}
	l.end.Store(l.next)
	if l.synced.Load() > l.next {
		l.synced.Store(l.next)
	}
	// Producer state and epochs as of the new end.
	for _, off := range listSnapshots(l.dir) {
		if off > l.next {
			os.Remove(snapshotPath(l.dir, off))
		}
	}
	l.producers = producerState{}
	if _, err := l.loadProducers(listSnapshots(l.dir)); err != nil {
		return 0, err
	}
	keptEpochs := l.epochs[:0]
	for _, e := range l.epochs {
		if e.start < l.next {
			keptEpochs = append(keptEpochs, e)
		}
	}
	l.epochs = keptEpochs
	l.writeEpochsLocked()
	l.logger.Warn("log truncated", "offset", offset, "end", l.next)
	return l.next, nil
}
