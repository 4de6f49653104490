package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// stopTimeout is how long a started broker has to exit after SIGTERM before
// it gets SIGKILL.
const stopTimeout = 10 * time.Second

// Process is a broker process the benchmark started: its own temp
// directory (data and log), its own free port on 127.0.0.1. The goroutine
// waiting for the process is owned by the Process and ends with it. A
// Process may be killed and started again on the same port and data (a
// pair's node); one goroutine drives it: its methods are not safe for
// concurrent use.
type Process struct {
	Name string
	Addr string

	command func() *exec.Cmd // the command of each start
	dir     string
	logPath string        // every start's output, appended
	cmd     *exec.Cmd     // the current start
	exited  chan struct{} // closed once the current start has been waited for
	waitErr error         // valid after exited is closed
	killed  bool          // Kill or Terminate ended it: no complaint from Stop
	started time.Time     // when the current start began
}

// Target returns the process as a workload target with process metrics.
func (p *Process) Target() Target {
	return Target{Name: p.Name, Addr: p.Addr, PID: p.cmd.Process.Pid, ResetPeak: true}
}

// PID is the process id of the current start.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Dir is the process's temp directory (its data and its log).
func (p *Process) Dir() string { return p.dir }

// LogPath is the file every start of the process writes its output to.
func (p *Process) LogPath() string { return p.logPath }

// StartSamsa starts the samsa binary bin with the config file config, a
// fresh data directory and a free port on 127.0.0.1, and waits until it
// answers Kafka requests.
func StartSamsa(ctx context.Context, bin, config string, args ...string) (*Process, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("cannot find the samsa binary (build it with make build): %w", err)
	}
	if _, err := os.Stat(config); err != nil {
		return nil, fmt.Errorf("cannot find the samsa config: %w", err)
	}
	return startProcess(ctx, "samsa", func(addr, dir string) *exec.Cmd {
		return exec.Command(bin, append([]string{"-config", config, "-listen", addr, "-data-dir", filepath.Join(dir, "data")}, args...)...)
	})
}

// StartKfake starts franz-go's kfake in its own process, as the hidden
// "kfake" subcommand of self (this benchmark's own binary), on a free port
// on 127.0.0.1, and waits until it answers Kafka requests.
func StartKfake(ctx context.Context, self string) (*Process, error) {
	return startProcess(ctx, "kfake", func(addr, _ string) *exec.Cmd {
		return exec.Command(self, "kfake", "-listen", addr)
	})
}

func startProcess(ctx context.Context, name string, command func(addr, dir string) *exec.Cmd) (_ *Process, err error) {
	dir, err := os.MkdirTemp("", "samsa-bench-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("cannot create temp dir for %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := newProcess(name, addr, dir, func() *exec.Cmd { return command(addr, dir) })
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// newProcess returns a process, not started, that runs command on each
// start, in dir (which Stop removes), answering on addr.
func newProcess(name, addr, dir string, command func() *exec.Cmd) *Process {
	return &Process{Name: name, Addr: addr, dir: dir, logPath: filepath.Join(dir, name+".log"), command: command}
}

// start starts the process and waits until it answers Kafka requests; a
// process that does not is killed.
func (p *Process) start(ctx context.Context) error {
	if err := p.launch(); err != nil {
		return err
	}
	if err := p.waitReady(ctx); err != nil {
		p.Kill()
		return err
	}
	return nil
}

// launch starts the process and returns once it runs.
func (p *Process) launch() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create %s log: %w", p.Name, err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	cmd := p.command()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.killed, p.started = cmd, exited, false, time.Now()
	go func() {
		p.waitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.killed = true
}

// Restart starts a process that has exited (or was killed) again, on the
// same port, data directory and log, and waits until it answers.
func (p *Process) Restart(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("cannot restart %s: it is still running", p.Name)
	}
	return p.start(ctx)
}

// Relaunch is Restart without the wait: it returns once the process runs,
// for a caller that times how soon it accepts connections and answers.
func (p *Process) Relaunch() error {
	if p.Running() {
		return fmt.Errorf("cannot restart %s: it is still running", p.Name)
	}
	return p.launch()
}

// Running reports whether the current start has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Ports handed out by freePort, so that no two brokers of this process get
// the same one.
var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freePort returns a port that was free on every address a moment ago. It
// comes from below Linux's ephemeral range (32768-60999 by default), so that
// no client connection made meanwhile takes it as its local port before the
// broker binds it.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := 10000 + rand.IntN(22000)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return port, nil
	}
	return 0, errors.New("cannot find a free port below the ephemeral range")
}

// waitReady waits, bounded by setupTimeout, until the broker answers a
// Kafka request.
func (p *Process) waitReady(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr))
	if err != nil {
		return fmt.Errorf("cannot create client for %s: %w", p.Name, err)
	}
	defer cl.Close()
	deadline := time.Now().Add(setupTimeout)
	for attempt := 0; time.Now().Before(deadline) && attempt < 300; attempt++ {
		select {
		case <-p.exited:
			return fmt.Errorf("cannot start %s: exited (%v): %s", p.Name, p.waitErr, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("cannot start %s: %w", p.Name, ctx.Err())
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err = cl.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-p.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("cannot start %s: no answer on %s after %v (last error: %v): %s", p.Name, p.Addr, setupTimeout, err, p.logTail())
}

// logTail returns the end of the process's log, for error messages.
func (p *Process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(bytes.TrimSpace(b))
}

// Alive reports an error when the process has exited (Kill included).
func (p *Process) Alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v): %s", p.Name, p.waitErr, p.logTail())
	default:
		return nil
	}
}

// Stop ends the process as Terminate does, unless Kill or Terminate
// already ended it, and removes its temp directory. It reports how the
// process ended when that was not a clean exit after SIGTERM.
func (p *Process) Stop() error {
	var err error
	if p.cmd == nil { // never started
		return os.RemoveAll(p.dir)
	}
	select {
	case <-p.exited:
		if !p.killed {
			err = fmt.Errorf("%s had exited before it was stopped (%v): %s", p.Name, p.waitErr, p.logTail())
		}
	default:
		err = p.Terminate()
	}
	if rerr := os.RemoveAll(p.dir); rerr != nil && err == nil {
		err = fmt.Errorf("cannot remove %s temp dir: %w", p.Name, rerr)
	}
	return err
}

// Terminate sends SIGTERM, then SIGKILL after stopTimeout, and waits for
// the process. It keeps the temp directory: Restart starts the process
// again on the same data. It reports how the process ended when that was
// not a clean exit after SIGTERM.
func (p *Process) Terminate() error {
	if p.cmd == nil {
		return nil
	}
	var err error
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			var ee *exec.ExitError
			if !errors.As(p.waitErr, &ee) || !ee.Exited() || ee.ExitCode() != 0 {
				err = fmt.Errorf("%s did not exit cleanly on SIGTERM (%v): %s", p.Name, p.waitErr, p.logTail())
			}
		}
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		err = fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, stopTimeout)
	}
	p.killed = true
	return err
}
