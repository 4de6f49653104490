//go:build !linux

package bench

import "fmt"

// ExecWithoutSyscall needs seccomp, which only Linux has.
func ExecWithoutSyscall(nr int, argv []string) error {
	return fmt.Errorf("seccomp needs Linux")
}
