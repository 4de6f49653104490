package netio

import (
	"os"

	"golang.org/x/sys/unix"
)

var pageSize = int64(os.Getpagesize())

// cached reports whether every page of a file range is in the page cache,
// so sendfile of it will not wait for the disk. Kernels without cachestat
// (before 6.5) answer false: the range is then read off the loop.
func cached(f *os.File, off, n int64) bool {
	first := off / pageSize
	last := (off + n - 1) / pageSize
	var cs unix.Cachestat_t
	crange := unix.CachestatRange{Off: uint64(first * pageSize), Len: uint64((last - first + 1) * pageSize)}
	if err := unix.Cachestat(uint(f.Fd()), &crange, &cs, 0); err != nil {
		return false
	}
	return int64(cs.Cache) >= last-first+1
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
