package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const userHZ = 100

// parseStatCPU returns utime+stime from the contents of /proc/PID/stat. The
// second field (comm) is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("cannot parse /proc stat: no ')' after the process name")
	}
	// After ") " come fields 3 (state) onwards; utime and stime are fields
	// 14 and 15, so indexes 11 and 12 here.
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cannot parse /proc stat: %d fields after the process name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse /proc stat utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse /proc stat stime: %w", err)
	}
	return time.Duration(utime+stime) * (time.Second / userHZ), nil
}

// memStatus is the memory of a process as /proc/PID/status reports it.
type memStatus struct {
	HWM int64 // VmHWM: peak resident set, bytes
	RSS int64 // VmRSS: resident set now, bytes
}

// parseStatus returns VmHWM and VmRSS from the contents of /proc/PID/status.
func parseStatus(status []byte) (memStatus, error) {
	var m memStatus
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("cannot parse /proc status %s: %q", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("cannot parse /proc status %s: %w", key, err)
		}
		if key == "VmHWM" {
			m.HWM = kb << 10
		} else {
			m.RSS = kb << 10
		}
		seen++
	}
	if seen != 2 {
		return m, fmt.Errorf("cannot parse /proc status: VmHWM or VmRSS missing")
	}
	return m, nil
}

func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read broker CPU time: %w", err)
	}
	return parseStatCPU(b)
}

// openFDs is how many file descriptors pid holds open.
func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

func readMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, fmt.Errorf("cannot read broker memory: %w", err)
	}
	return parseStatus(b)
}

// resetPeakRSS resets the process's VmHWM to its current RSS (Linux 4.0+),
// so the next peak read is the peak of one workload.
func resetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("cannot reset broker peak RSS: %w", err)
	}
	return nil
}

// BrokerUsage is what the broker process spent on one workload.
type BrokerUsage struct {
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUSecPerGiB float64 `json:"cpu_sec_per_gib"` // over the bytes in plus the bytes out
	PeakRSS      int64   `json:"peak_rss_bytes"`  // VmHWM; per workload when PeakReset
	RSS          int64   `json:"rss_bytes"`       // VmRSS at the end
	PeakReset    bool    `json:"peak_reset"`      // VmHWM was reset before the workload
}

// meter measures a broker process across the timed part of a workload. A
// zero pid measures nothing. Methods are called from the workload's own
// goroutine only.
type meter struct {
	pid       int
	resetPeak bool

	cpu0    time.Duration
	started bool
	reset   bool
}

// start marks the beginning of the timed part.
func (m *meter) start() error {
	if m.pid == 0 {
		return nil
	}
	if m.resetPeak {
		m.reset = resetPeakRSS(m.pid) == nil
	}
	cpu, err := readCPU(m.pid)
	if err != nil {
		return err
	}
	m.cpu0, m.started = cpu, true
	return nil
}

// stop ends the timed part and returns the broker's usage, given the
// payload bytes moved through it; nil when nothing was measured.
func (m *meter) stop(moved int64) (*BrokerUsage, error) {
	if m.pid == 0 || !m.started {
		return nil, nil
	}
	m.started = false
	cpu, err := readCPU(m.pid)
	if err != nil {
		return nil, err
	}
	mem, err := readMem(m.pid)
	if err != nil {
		return nil, err
	}
	u := &BrokerUsage{
		CPUSeconds: (cpu - m.cpu0).Seconds(),
		PeakRSS:    mem.HWM,
		RSS:        mem.RSS,
		PeakReset:  m.reset,
	}
	if moved > 0 {
		u.CPUSecPerGiB = u.CPUSeconds / (float64(moved) / (1 << 30))
	}
	return u, nil
}
