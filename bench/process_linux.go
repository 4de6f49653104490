package bench

import (
	"fmt"
	"io/fs"
	"os"
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

// dropPageCache writes back every dirty page (settleDisk) and drops the
// clean ones from the page cache (the whole machine's), so that what is
// read next comes from the disk. As root.
func dropPageCache() error {
	settleDisk()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
		return fmt.Errorf("cannot drop the page cache (-cold needs root): %w", err)
	}
	return nil
}
