//go:build !linux

package bench

import (
	"io/fs"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

// allocated is the disk space a file takes; here its size.
func allocated(info fs.FileInfo) int64 { return info.Size() }

// settleDisk: the phases' order alone decides here.
func settleDisk() {}
