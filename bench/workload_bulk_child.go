package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BulkChildEnv, set to a broker's address, makes samsa-bench run only the
// bulk load of its e2e workload against it (RunBulkChild): the process
// Spec.BulkProcess starts.
const BulkChildEnv = "SAMSA_BENCH_BULK"

// bulkOutcome is what a bulk load process writes on its stdout once
// stopped.
type bulkOutcome struct {
	Figures *BulkFigures `json:"figures"`
	Error   string       `json:"error,omitempty"`
}

// RunBulkChild runs s's bulk load against addr: it writes "ready" on out
// once the load runs, stops it when in ends (its parent closed it, or
// died), then writes the load's figures as JSON on out.
func RunBulkChild(ctx context.Context, addr string, s Spec, in io.Reader, out io.Writer) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(3)}, s.Conn...)...)
	if err != nil {
		return fmt.Errorf("cannot create admin client: %w", err)
	}
	defer cl.Close()
	e := &env{addr: addr, spec: s, adm: kadm.NewClient(cl)}
	b, err := startBulkHere(ctx, e)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, in)
		close(eof)
	}()
	select {
	case <-eof: // the parent is done with the load, or gone
	case <-ctx.Done():
	}
	f, err := b.stop(context.WithoutCancel(ctx), e)
	o := bulkOutcome{Figures: f}
	if err != nil {
		o.Error = err.Error()
	}
	return json.NewEncoder(out).Encode(o)
}

// bulkChild is a bulk load in a process of its own (Spec.BulkProcess).
type bulkChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startBulkChild starts the bulk load process and waits until its load
// runs.
func startBulkChild(ctx context.Context, e *env) (*bulkChild, error) {
	argv := e.spec.BulkProcess
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), BulkChildEnv+"="+e.addr)
	cmd.Stderr = os.Stderr // its log lines
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stdin.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the bulk load process: %w", err)
	}
	c := &bulkChild{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	ready := make(chan error, 1)
	go func() {
		line, err := c.out.ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	var rerr error
	select {
	case rerr = <-ready:
	case <-time.After(setupTimeout):
		rerr = errors.New("not ready in time")
	case <-ctx.Done():
		rerr = ctx.Err()
	}
	if rerr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bulk load process: %w", rerr)
	}
	return c, nil
}

// stop ends the load (its stdin closes) and reads its figures.
func (c *bulkChild) stop(ctx context.Context, _ *env) (*BulkFigures, error) {
	_ = c.stdin.Close()
	type decoded struct {
		o   bulkOutcome
		err error
	}
	done := make(chan decoded, 1)
	go func() {
		var d decoded
		d.err = json.NewDecoder(c.out).Decode(&d.o)
		done <- d
	}()
	var d decoded
	select {
	case d = <-done:
	case <-time.After(2*bulkDrain + setupTimeout):
		_ = c.cmd.Process.Kill()
		d = <-done // the pipe ends with the process
		d.err = errors.Join(errors.New("no figures in time"), d.err)
	}
	werr := c.cmd.Wait() // once the reads are done, as os/exec asks
	switch {
	case d.err != nil:
		return nil, fmt.Errorf("bulk load process: %w", errors.Join(d.err, werr))
	case d.o.Error != "":
		return d.o.Figures, errors.New(d.o.Error)
	}
	return d.o.Figures, nil
}
