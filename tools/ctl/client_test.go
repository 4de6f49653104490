package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRequestErr(t *testing.T) {
	f := func(in error, kind error, want string) {
		t.Helper()
		got := requestErr("do it", kmsg.DeleteRecords, in)
		if kind != nil && !errors.Is(got, kind) {
			t.Errorf("requestErr(%v) = %v, not %v", in, got, kind)
		}
		if !strings.Contains(got.Error(), want) {
			t.Errorf("requestErr(%v) = %q, want it to say %q", in, got, want)
		}
	}
	f(errors.New("broker is too old; the broker has already indicated it will not know how to handle the request"), ErrUnsupported,
		"cannot do it: the broker does not support DeleteRecords (API key 21)")
	f(kerr.UnsupportedVersion, ErrUnsupported, "does not support DeleteRecords")
	f(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ErrUnreachable, "lost the broker (connection refused)")
	f(fmt.Errorf("x: %w", context.DeadlineExceeded), nil, "no answer within -timeout")
	f(kerr.PolicyViolation, nil, "cannot do it: POLICY_VIOLATION")
	f(topicNotFound("t"), ErrNotFound, `topic "t" does not exist`)
	if requestErr("x", kmsg.Metadata, nil) != nil {
		t.Error("requestErr(nil) is not nil")
	}
}

func TestFirstErr(t *testing.T) {
	err := firstErr([]error{topicNotFound("a"), errors.New("b failed")})
	if !errors.Is(err, ErrNotFound) || err.Error() != `topic "a" does not exist (samsactl topics list shows the topics); b failed` {
		t.Errorf("firstErr = %v", err)
	}
	if firstErr(nil) != nil {
		t.Error("firstErr(nil) is not nil")
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	tw := newTable(&b)
	fmt.Fprintln(tw, "A\tBB\tC\t")
	fmt.Fprintln(tw, "aaa\tb\t\t")
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "A    BB  C\naaa  b\n"; b.String() != want {
		t.Errorf("table = %q, want %q", b.String(), want)
	}
}

func TestParsers(t *testing.T) {
	if cs, err := ParseConfigSetting("a.b=x=y"); err != nil || cs != (ConfigSetting{"a.b", "x=y"}) {
		t.Errorf("ParseConfigSetting: %+v %v", cs, err)
	}
	if cs, err := ParseConfigSetting("a="); err != nil || cs != (ConfigSetting{"a", ""}) {
		t.Errorf("ParseConfigSetting empty value: %+v %v", cs, err)
	}
	for _, bad := range []string{"a", "=b", ""} {
		if _, err := ParseConfigSetting(bad); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseConfigSetting(%q) = %v, want a usage error", bad, err)
		}
	}
	if tp, err := ParseTopicPartitions("t:2,0"); err != nil || tp.Topic != "t" || fmt.Sprint(tp.Partitions) != "[2 0]" {
		t.Errorf("ParseTopicPartitions: %+v %v", tp, err)
	}
	if tp, err := ParseTopicPartitions("t"); err != nil || tp.Partitions != nil {
		t.Errorf("ParseTopicPartitions all: %+v %v", tp, err)
	}
	for _, bad := range []string{":1", "t:", "t:-1", "t:a"} {
		if _, err := ParseTopicPartitions(bad); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseTopicPartitions(%q) = %v, want a usage error", bad, err)
		}
	}
	if tm, err := ParseTime("1700000000123"); err != nil || tm.UnixMilli() != 1700000000123 {
		t.Errorf("ParseTime ms: %v %v", tm, err)
	}
	if tm, err := ParseTime("2026-01-02T15:04:05+01:00"); err != nil || !tm.Equal(time.Date(2026, 1, 2, 14, 4, 5, 0, time.UTC)) {
		t.Errorf("ParseTime RFC 3339: %v %v", tm, err)
	}
	if _, err := ParseTime("-5"); !errors.Is(err, ErrUsage) {
		t.Errorf("ParseTime(-5) = %v", err)
	}
}

func TestResetOffsetsValidate(t *testing.T) {
	f := func(o ResetOffsetsOptions, want string) {
		t.Helper()
		err := o.Validate()
		if want == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v", o, err)
			}
			return
		}
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want a usage error saying %q", o, err, want)
		}
	}
	tp := []TopicPartition{{Topic: "t"}}
	f(ResetOffsetsOptions{Group: "g", Topics: tp, Mode: ResetEarliest}, "")
	f(ResetOffsetsOptions{Topics: tp, Mode: ResetEarliest}, "needs a GROUP")
	f(ResetOffsetsOptions{Group: "g", Mode: ResetEarliest}, "--all-topics")
	f(ResetOffsetsOptions{Group: "g", Topics: tp, AllTopics: true, Mode: ResetEarliest}, "exclude each other")
	f(ResetOffsetsOptions{Group: "g", AllTopics: true}, "say where to")
	f(ResetOffsetsOptions{Group: "g", AllTopics: true, Mode: ResetToOffset, Offset: -1}, "at least 0")
	f(ResetOffsetsOptions{Group: "g", AllTopics: true, Mode: ResetShiftBy, Offset: -1}, "")
}

func TestConnectUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = Connect(ctx, addr)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Connect to a closed port: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Connect to a closed port took %v", took)
	}
	if _, err := Connect(ctx, " , "); !errors.Is(err, ErrUsage) {
		t.Errorf("Connect without an address: %v", err)
	}
}

func TestSaturatingAddAndEpochMilli(t *testing.T) {
	if got := saturatingAdd(5, math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("5 + MaxInt64 = %d", got)
	}
	if got := saturatingAdd(-5, math.MinInt64); got != math.MinInt64 {
		t.Errorf("-5 + MinInt64 = %d", got)
	}
	if got := saturatingAdd(5, -3); got != 2 {
		t.Errorf("5 - 3 = %d", got)
	}
	// Before 1970 is 0, never one of ListOffsets' negative special values.
	if got := epochMilli(time.Date(1969, 12, 31, 23, 59, 59, 999e6, time.UTC)); got != 0 {
		t.Errorf("1969: %d", got)
	}
	if got := epochMilli(time.UnixMilli(1700000000123)); got != 1700000000123 {
		t.Errorf("2023: %d", got)
	}
}
