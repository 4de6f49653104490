package segment

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// On-disk index formats are Kafka's, so Kafka's dump tools read them:
// .index holds 8-byte entries (relative offset int32, position int32) and
// .timeindex 12-byte entries (timestamp int64, relative offset int32), all
// big-endian. Unlike Kafka the files are not preallocated: samsa keeps the
// indexes of every segment in memory and writes a sealed segment's indexes
// once, after the segment's data is fsynced; the active segment's indexes are
// rebuilt from the log on start.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	rel uint32 // offset - segment base
	pos uint32 // byte position of the batch in the segment
}

type timeEntry struct {
	ts  int64  // largest timestamp seen up to and including this batch
	rel uint32 // relative offset of the batch
}

// offsetIndex is a sparse index from offsets to batch positions.
type offsetIndex []offsetEntry

// lookup returns the position of the last indexed batch whose base offset is
// <= rel, or 0.
func (x offsetIndex) lookup(rel uint32) uint32 {
	i := sort.Search(len(x), func(i int) bool { return x[i].rel > rel })
	if i == 0 {
		return 0
	}
	return x[i-1].pos
}

func (x offsetIndex) marshal(dst []byte) []byte {
	for _, e := range x {
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
		dst = binary.BigEndian.AppendUint32(dst, e.pos)
	}
	return dst
}

func unmarshalOffsetIndex(src []byte, logSize int64) (offsetIndex, error) {
	if len(src)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("cannot load offset index: size %d is not a multiple of %d", len(src), offsetEntrySize)
	}
	x := make(offsetIndex, 0, len(src)/offsetEntrySize)
	for len(src) > 0 {
		e := offsetEntry{rel: binary.BigEndian.Uint32(src), pos: binary.BigEndian.Uint32(src[4:])}
		if n := len(x); n > 0 && (e.rel <= x[n-1].rel || e.pos <= x[n-1].pos) {
			return nil, fmt.Errorf("cannot load offset index: entries out of order")
		}
		if int64(e.pos) >= logSize {
			return nil, fmt.Errorf("cannot load offset index: position %d beyond log size %d", e.pos, logSize)
		}
		x = append(x, e)
		src = src[offsetEntrySize:]
	}
	return x, nil
}

// timeIndex is a sparse index from timestamps to offsets; timestamps are
// non-decreasing.
type timeIndex []timeEntry

// lookup returns the relative offset of the last entry whose timestamp is
// < ts, so that scanning from there finds the first batch with a timestamp
// >= ts, or 0.
func (x timeIndex) lookup(ts int64) uint32 {
	i := sort.Search(len(x), func(i int) bool { return x[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return x[i-1].rel
}

func (x timeIndex) marshal(dst []byte) []byte {
	for _, e := range x {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
	}
	return dst
}

func unmarshalTimeIndex(src []byte) (timeIndex, error) {
	if len(src)%timeEntrySize != 0 {
		return nil, fmt.Errorf("cannot load time index: size %d is not a multiple of %d", len(src), timeEntrySize)
	}
	x := make(timeIndex, 0, len(src)/timeEntrySize)
	for len(src) > 0 {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(src)), rel: binary.BigEndian.Uint32(src[8:])}
		if n := len(x); n > 0 && (e.ts < x[n-1].ts || e.rel < x[n-1].rel) {
			return nil, fmt.Errorf("cannot load time index: entries out of order")
		}
		x = append(x, e)
		src = src[timeEntrySize:]
	}
	return x, nil
}

// writeFileSync writes data to path through a temporary file, fsyncs it,
// renames it into place and fsyncs the directory.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot rename %s: %w", tmp, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeInPlace writes data over path (creating it if needed) and cuts the
// file to its length, without fsync, a temporary file or O_TRUNC: for a
// clean stop's index files, trusted only once a syncfs and the clean
// marker follow. Replacing a file by rename, or truncating it to zero and
// writing it again, makes ext4 (auto_da_alloc) write its data out at once:
// about 0.2 ms a file, seconds for a stop of 10,000 partitions, against
// 4 µs for this.
func writeInPlace(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer unix.Close(fd)
	for off := 0; off < len(data); {
		n, err := unix.Pwrite(fd, data[off:], int64(off))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("cannot write %s: %w", path, err)
		}
		off += n
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("cannot stat %s: %w", path, err)
	}
	if st.Size > int64(len(data)) {
		if err := unix.Ftruncate(fd, int64(len(data))); err != nil {
			return fmt.Errorf("cannot truncate %s: %w", path, err)
		}
	}
	return nil
}

// syncDir fsyncs a directory so that entries created in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync dir %s: %w", dir, err)
	}
	return nil
}
