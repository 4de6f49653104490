package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExecWithoutSyscall runs this test binary under ExecWithoutSyscall
// for cachestat and checks that, in there, cachestat answers ENOSYS while
// other system calls still work.
func TestExecWithoutSyscall(t *testing.T) {
	switch os.Getenv("SAMSA_BENCH_NOSYSCALL") {
	case "exec":
		os.Setenv("SAMSA_BENCH_NOSYSCALL", "child") // for the process exec'd
		err := ExecWithoutSyscall(unix.SYS_CACHESTAT, []string{os.Args[0], "-test.run=^TestExecWithoutSyscall$"})
		fmt.Println("exec failed:", err)
		os.Exit(3)
	case "child":
		var cs unix.Cachestat_t
		err := unix.Cachestat(uint(os.Stdin.Fd()), &unix.CachestatRange{Len: 4096}, &cs, 0)
		fmt.Printf("cachestat: %v enosys=%v getpid=%v\n", err, errors.Is(err, unix.ENOSYS), os.Getpid() > 0)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExecWithoutSyscall$")
	cmd.Env = append(os.Environ(), "SAMSA_BENCH_NOSYSCALL=exec")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "enosys=true getpid=true") {
		t.Fatalf("cachestat under the filter did not answer ENOSYS: %s", out)
	}
}
