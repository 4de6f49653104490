package bench

import "syscall"

// childAttr makes a started broker die with the benchmark, even when the
// benchmark itself is killed.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
