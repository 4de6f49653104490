// Package ctl owns samsactl's commands (topics, configs, groups, offsets,
// delete-records, transactions, cluster, status, promote). They speak the
// Kafka protocol through franz-go's kadm, so they work against Kafka too;
// the package imports no broker package. cmd/samsactl parses the command
// line and turns the errors into exit codes.
package ctl

// This file holds what the commands share: connecting, the kinds of failure
// the CLI turns into exit codes, and printing tables or JSON.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The kinds of samsactl failure; cmd/samsactl turns them into exit codes.
// Any other error means the operation failed or the broker refused it.
var (
	ErrUsage       = errors.New("usage error")
	ErrUnreachable = errors.New("cannot reach the broker")
	ErrNotFound    = errors.New("not found")
	ErrUnsupported = errors.New("not supported by the broker")
)

// Version is what samsactl reports as its software version (KIP-511).
var Version = "dev"

// ctlError is an error of one of the kinds above, with a message written
// for the operator.
type ctlError struct {
	kind  error
	msg   string
	cause error
}

func (e *ctlError) Error() string        { return e.msg }
func (e *ctlError) Is(target error) bool { return target == e.kind }
func (e *ctlError) Unwrap() error        { return e.cause }

func usageErr(format string, a ...any) error {
	return &ctlError{kind: ErrUsage, msg: fmt.Sprintf(format, a...)}
}

func notFoundErr(format string, a ...any) error {
	return &ctlError{kind: ErrNotFound, msg: fmt.Sprintf(format, a...)}
}

func topicNotFound(topic string) error {
	return notFoundErr("topic %q does not exist (samsactl topics list shows the topics)", topic)
}

func groupNotFound(group string) error {
	return notFoundErr("group %q does not exist (samsactl groups list shows the groups)", group)
}

// dialTimeout bounds one connection attempt: a broker that is down fails
// in seconds even under a long -timeout.
const dialTimeout = 5 * time.Second

// dial opens a franz-go client to the comma-separated addrs and checks that
// one of them answers, so a wrong address fails with ErrUnreachable within
// seconds instead of after the retries of the first real request.
func dial(ctx context.Context, addrs string, extra ...kgo.Opt) (*kgo.Client, error) {
	var seeds []string
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			seeds = append(seeds, a)
		}
	}
	if len(seeds) == 0 {
		return nil, usageErr("no broker address: set -broker HOST:PORT")
	}
	dt, retry := dialTimeout, 30*time.Second
	if dl, ok := ctx.Deadline(); ok {
		retry = time.Until(dl)
		if retry <= 0 {
			return nil, &ctlError{kind: ErrUnreachable, msg: "cannot reach broker " + addrs + ": the -timeout is over before starting"}
		}
		dt = min(dt, retry)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(dt),
		kgo.RetryTimeout(retry),
		// A broker that accepts but never answers must not outlast -timeout.
		kgo.RequestTimeoutOverhead(min(10*time.Second, retry)),
		kgo.ClientID("samsactl"),
		kgo.SoftwareNameAndVersion("samsactl", Version),
	}
	opts = append(opts, connOpts...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, usageErr("bad -broker %q: %v", addrs, err)
	}
	pctx, cancel := context.WithTimeout(ctx, dt)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, unreachable(addrs, err)
	}
	return cl, nil
}

// Connect opens an admin client to the brokers in addrs (host:port, comma
// separated). It fails with ErrUnreachable if none of them answers within
// a few seconds. Close the client when done.
func Connect(ctx context.Context, addrs string) (*kadm.Client, error) {
	cl, err := dial(ctx, addrs)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	if dl, ok := ctx.Deadline(); ok {
		// The broker-side timeout of CreateTopics, DeleteTopics, ... .
		adm.SetTimeoutMillis(int32(min(time.Until(dl), time.Minute) / time.Millisecond))
	}
	return adm, nil
}

func unreachable(addrs string, err error) error {
	return &ctlError{kind: ErrUnreachable, cause: err,
		msg: fmt.Sprintf("cannot reach broker %s (%s): is samsa running? set -broker", addrs, netReason(err))}
}

// netReason says in a few words why a connection failed.
func netReason(err error) string {
	var errno syscall.Errno
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer"
	case errors.Is(err, io.EOF):
		return "connection closed by the other side: is it a Kafka broker?"
	}
	return err.Error()
}

// isNetErr says whether err means the broker could not be reached at all.
func isNetErr(err error) bool {
	var errno syscall.Errno
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &errno) || errors.As(err, &opErr) || errors.As(err, &dnsErr)
}

// requestErr words an error from a request for the operator: what failed,
// why, and what to do. api names the Kafka API, for brokers that lack it.
func requestErr(what string, api kmsg.Key, err error) error {
	if err == nil {
		return nil
	}
	var ce *ctlError
	switch {
	case errors.As(err, &ce):
		return err
	case isUnsupported(err):
		return &ctlError{kind: ErrUnsupported, cause: err,
			msg: fmt.Sprintf("cannot %s: the broker does not support %s (API key %d); upgrade it", what, api.Name(), api)}
	case isNetErr(err):
		return &ctlError{kind: ErrUnreachable, cause: err,
			msg: fmt.Sprintf("cannot %s: lost the broker (%s): is samsa running?", what, netReason(err))}
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot %s: no answer within -timeout: %w", what, err)
	}
	return fmt.Errorf("cannot %s: %w", what, err)
}

// isUnsupported says whether err means the broker does not serve the API
// (or the version franz-go needs). franz-go reports a key missing from
// ApiVersions with an unexported error, hence the text match.
func isUnsupported(err error) bool {
	return errors.Is(err, kerr.UnsupportedVersion) || strings.Contains(err.Error(), "broker is too old")
}

// withMessage appends the broker's own error message, when it sent one.
func withMessage(err error, msg string) error {
	if err == nil || msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// kafkaErrText is a Kafka error as one short line: the code name and the
// broker's message, if any.
func kafkaErrText(err error, msg string) string {
	var ke *kerr.Error
	s := err.Error()
	if errors.As(err, &ke) {
		s = ke.Message
		if msg == "" {
			s += ": " + ke.Description
		}
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}

// firstErr joins errors into one: the first one's kind decides the exit
// code, all the messages are kept on one line.
func firstErr(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &joined{first: errs[0], msg: strings.Join(msgs, "; ")}
}

type joined struct {
	first error
	msg   string
}

func (j *joined) Error() string { return j.msg }
func (j *joined) Unwrap() error { return j.first }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table aligns tab-separated cells into columns, without trailing blanks.
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush writes the table out.
func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var out bytes.Buffer
	for _, l := range strings.SplitAfter(t.buf.String(), "\n") {
		if strings.HasSuffix(l, "\n") {
			out.WriteString(strings.TrimRight(l, " \n"))
			out.WriteByte('\n')
		} else {
			out.WriteString(l)
		}
	}
	t.buf.Reset()
	_, err := t.w.Write(out.Bytes())
	return err
}

// topicID prints a topic id the way Kafka's tools do (URL-safe base64
// without padding); the zero id as "-".
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// plural is "1 partition", "2 partitions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func joinInt32s(s []int32) string {
	if len(s) == 0 {
		return "-"
	}
	b := make([]string, len(s))
	for i, v := range s {
		b[i] = strconv.Itoa(int(v))
	}
	return strings.Join(b, ",")
}

// brokerRole is a node's part in a samsa pair, as Metadata shows it: the
// controller leads every partition.
func brokerRole(node, controller int32, brokers int) string {
	switch {
	case brokers == 1:
		return "alone"
	case node == controller:
		return "primary"
	}
	return "standby"
}
