package main

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCPUList(t *testing.T) {
	f := func(in string, want []int, ok bool) {
		t.Helper()
		got, err := parseCPUList(in)
		if (err == nil) != ok || !slices.Equal(got, want) {
			t.Fatalf("ParseCPUList(%q) = %v, %v; want %v (ok %v)", in, got, err, want, ok)
		}
	}
	f("", nil, true)
	f("0", []int{0}, true)
	f("0-3,6", []int{0, 1, 2, 3, 6}, true)
	f(" 1 , 2-2 ", []int{1, 2}, true)
	f("3-1", nil, false)
	f("a", nil, false)
	f("-1", nil, false)
	f("0-5000", nil, false)
}

func TestPinThread(t *testing.T) {
	// The first CPU this process may use (a cpuset may exclude CPU 0).
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for !allowed.IsSet(cpu) {
		cpu++
	}
	done := make(chan error)
	go func() {
		// No UnlockOSThread: the pinned thread exits with the goroutine
		// instead of going back to the scheduler restricted to one CPU.
		if err := pinThread([]int{cpu}); err != nil {
			done <- err
			return
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			done <- err
			return
		}
		if set.Count() != 1 || !set.IsSet(cpu) {
			t.Errorf("affinity has %d CPUs, want only CPU %d", set.Count(), cpu)
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
