package engine

import (
	"strings"
	"testing"
)

// recovery_threads is checked: negative or absurd counts are refused with
// a message naming the key; 0 (automatic) and a count are accepted.
func TestRecoveryThreadsValidated(t *testing.T) {
	for _, n := range []int{-1, 1025} {
		c := DefaultConfig()
		c.RecoveryThreads = n
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "recovery_threads") {
			t.Errorf("recovery_threads = %d: %v", n, err)
		}
	}
	for _, n := range []int{0, 1, 16} {
		c := DefaultConfig()
		c.RecoveryThreads = n
		if err := c.Validate(); err != nil {
			t.Errorf("recovery_threads = %d: %v", n, err)
		}
	}
}

// open_segment_files: 0 (automatic) or at least 16; anything else refused
// with the setting's name.
func TestOpenSegmentFilesValidated(t *testing.T) {
	for _, n := range []int{-1, 1, 15} {
		c := DefaultConfig()
		c.OpenSegmentFiles = n
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "open_segment_files") {
			t.Errorf("open_segment_files = %d: %v", n, err)
		}
	}
	for _, n := range []int{0, 16, 1 << 20} {
		c := DefaultConfig()
		c.OpenSegmentFiles = n
		if err := c.Validate(); err != nil {
			t.Errorf("open_segment_files = %d: %v", n, err)
		}
	}
}
