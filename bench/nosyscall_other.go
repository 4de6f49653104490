//go:build !linux

package bench

import (
	"errors"
	"fmt"
)

// ExecWithoutSyscall needs seccomp, which only Linux has.
func ExecWithoutSyscall(nr int, argv []string) error {
	return fmt.Errorf("seccomp needs Linux")
}

func dropPageCache() error {
	return errors.New("cannot drop the page cache: -cold needs Linux")
}
