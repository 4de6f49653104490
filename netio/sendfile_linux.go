package netio

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

var pageSize = int64(os.Getpagesize())

// cached reports whether every page of a file range is in the page cache,
// so sendfile of it will not wait for the disk. It asks cachestat (Linux
// 6.5); where that is missing (Debian 12's 6.1, Ubuntu 22.04's 5.15, RHEL
// 9's 5.14) or refused (a seccomp filter), mincore on a mapping of the
// range, which every Linux has: a mapping costs two more syscalls, still
// far less than copying the range. A range that is not all cached has its
// missing chunks read into the cache off the loop first (fill).
func cached(f *os.File, off, n int64) bool {
	if !noCachestat.Load() {
		ok, err := cachedCachestat(f, off, n)
		if err == nil {
			return ok
		}
		if err != unix.ENOSYS && err != unix.EPERM {
			return false
		}
		noCachestat.Store(true) // from now on, mincore
	}
	return cachedMincore(f, off, n)
}

// fillChunk is how much of a range fill checks and reads at a time: a
// residency check per chunk is cheap, and a chunk with a missing page is
// read whole (readahead would read around it anyway).
const fillChunk = 256 << 10

// fill reads into the page cache the chunks of a file range that are not
// all there, through a pooled scratch buffer, and reports whether the whole
// range is cached after it, so that sendfile can send it without the event
// loop waiting for the disk. It returns the bytes it read. A range with a
// few pages missing (a kernel short of memory took a folio or two, or a
// consumer catching up reads data that has left the cache) thus costs a
// read of those chunks, not a copy of the whole range through memory. Off
// the loop.
func fill(f *os.File, off, n int64) (ok bool, read int64) {
	bb := filePool.Get()
	defer filePool.Put(bb)
	if cap(bb.B) < fillChunk {
		bb.B = make([]byte, fillChunk)
	}
	buf := bb.B[:fillChunk]
	// Chunks aligned to fillChunk, so that neighbouring ranges of one file
	// check the same chunks.
	for pos, end := off/fillChunk*fillChunk, off+n; pos < end; pos += fillChunk {
		from, to := max(pos, off), min(pos+fillChunk, end)
		if cached(f, from, to-from) {
			continue
		}
		m, err := f.ReadAt(buf[:to-pos], pos)
		read += int64(m)
		if err != nil {
			return false, read // the caller's copy reports it
		}
	}
	return cached(f, off, n), read
}

// noCachestat is set once cachestat turned out to be missing; tests set it
// to run the mincore path on any kernel.
var noCachestat atomic.Bool

func cachedCachestat(f *os.File, off, n int64) (bool, error) {
	first := off / pageSize
	last := (off + n - 1) / pageSize
	var cs unix.Cachestat_t
	crange := unix.CachestatRange{Off: uint64(first * pageSize), Len: uint64((last - first + 1) * pageSize)}
	if err := unix.Cachestat(uint(f.Fd()), &crange, &cs, 0); err != nil {
		return false, err
	}
	return int64(cs.Cache) >= last-first+1, nil
}

// cachedMincore maps the range (never touching it, so nothing is read)
// and asks mincore which of its pages are resident.
func cachedMincore(f *os.File, off, n int64) bool {
	start := off / pageSize * pageSize
	length := off + n - start
	m, err := unix.Mmap(int(f.Fd()), start, int(length), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return false
	}
	defer unix.Munmap(m)
	pages := (length + pageSize - 1) / pageSize
	var small [256]byte // 1 MiB of 4 KiB pages: a fetch's usual range
	vec := small[:0]
	if pages <= int64(len(small)) {
		vec = small[:pages]
	} else {
		vec = make([]byte, pages)
	}
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return false // x/sys/unix has no Mincore for Linux
	}
	for _, v := range vec {
		if v&1 == 0 {
			return false
		}
	}
	return true
}

// sendfile sends up to n bytes of f from off to the non-blocking socket fd
// and returns how many it sent. It stops without error at EAGAIN; a file
// that ends before the range does is an error.
func sendfile(fd int, f *os.File, off, n int64) (int64, error) {
	var sent int64
	for sent < n {
		o := off + sent
		m, err := unix.Sendfile(fd, int(f.Fd()), &o, int(min(n-sent, 1<<30)))
		if m > 0 {
			sent += int64(m)
		}
		switch {
		case err == unix.EAGAIN:
			return sent, nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return sent, err
		case m == 0:
			return sent, errFileShort
		}
	}
	return sent, nil
}
