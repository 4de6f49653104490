package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	f := func(stat string, want time.Duration) {
		t.Helper()
		got, err := parseStatCPU([]byte(stat))
		if err != nil {
			t.Fatalf("parseStatCPU(%q): %v", stat, err)
		}
		if got != want {
			t.Errorf("parseStatCPU(%q) = %v, want %v", stat, got, want)
		}
	}
	// utime 1234 and stime 56 ticks of 10ms.
	f("4242 (samsa) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 9 0 123 456789 1024 18446744073709551615",
		12900*time.Millisecond)
	// A process name with spaces and parentheses, even ") S 1 2": fields are
	// counted from the last ')'.
	f("77 (my (odd) name) S 1 2) R 1 77 77 0 -1 4194560 5 0 0 0 7 3 0 0 20 0 1 0 1 1 1 1",
		100*time.Millisecond)

	for _, bad := range []string{
		"",
		"12 samsa S 1",
		"12 (samsa) S 1 2 3",
		"12 (samsa) S 1 12 12 0 -1 0 0 0 0 0 x 3 0 0",
		"12 (samsa) S 1 12 12 0 -1 0 0 0 0 0 1 -3 0 0",
	} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) did not fail", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tsamsa\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1300000 kB\nVmSize:\t 1200000 kB\n" +
		"VmHWM:\t   65536 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	m, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.HWM != 64<<20 || m.RSS != 40<<20 {
		t.Errorf("parseStatus = %+v, want HWM 64 MiB, RSS 40 MiB", m)
	}
	for _, bad := range []string{
		"Name:\tx\n",                      // a kernel thread has neither
		"VmHWM:\t1 kB\n",                  // VmRSS missing
		"VmHWM:\tlots kB\nVmRSS:\t1 kB\n", // not a number
		"VmHWM:\t1 MB\nVmRSS:\t1 kB\n",    // not kB
		"VmHWM:\t1 kB\nVmRSS:\t1 2 kB\n",  // extra field
	} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) did not fail", bad)
		}
	}
}

func TestReadSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	pid := os.Getpid()
	if _, err := readCPU(pid); err != nil {
		t.Fatal(err)
	}
	m, err := readMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("own memory = %+v, want 0 < RSS <= HWM", m)
	}
}

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel([]byte(info)); got != "Intel(R) Xeon(R) CPU @ 2.20GHz" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel([]byte("processor : 0\n")); got != "" {
		t.Errorf("cpuModel without a model = %q, want empty", got)
	}
}
