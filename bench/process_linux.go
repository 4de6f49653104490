package bench

import (
	"io/fs"
	"syscall"
)

// childAttr makes a started broker die with the benchmark, even when the
// benchmark itself is killed.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// allocated is the disk space a file takes: its blocks, not its size
// (segments are allocated ahead of their writes).
func allocated(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}

// settleDisk writes back every dirty page of the machine (sync(2)), so a
// phase does not pay for the writeback of what the one before it wrote.
func settleDisk() { syscall.Sync() }
