//go:build !linux

package bench

import (
	"errors"
	"io/fs"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

// allocated is the disk space a file takes; here its size.
func allocated(info fs.FileInfo) int64 { return info.Size() }

// settleDisk: the phases' order alone decides here.
func settleDisk() {}

func dropPageCache() error {
	return errors.New("cannot drop the page cache: -cold needs Linux")
}
