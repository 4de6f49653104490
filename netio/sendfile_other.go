//go:build !linux

package netio

import (
	"errors"
	"os"
)

// cached is false where samsa has no residency check: file ranges are read
// off the loop.
func cached(*os.File, int64, int64) bool { return false }

// fill cannot tell what is cached here: nothing is filled.
func fill(*os.File, int64, int64) (bool, int64) { return false, 0 }

func sendfile(int, *os.File, int64, int64) (int64, error) {
	return 0, errors.New("sendfile is not supported here")
}
