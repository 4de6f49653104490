//go:build !linux

package netio

import (
	"errors"
	"os"
)

// cached is false where samsa has no residency check: file ranges are read
// off the loop.
func cached(*os.File, int64, int64) bool { return false }

func sendfile(int, *os.File, int64, int64) (int64, error) {
	return 0, errors.New("sendfile is not supported here")
}
