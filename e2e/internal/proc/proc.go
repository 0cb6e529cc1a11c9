// Package proc is the one process wrapper of the e2e labs: a child whose
// stdout and stderr are appended to a log file, optionally started inside
// a network namespace, stopped by its own PID (SIGTERM, a grace, then
// SIGKILL), never by name.
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// KillWait bounds the wait for an exit after SIGKILL: a process stuck in
// the kernel (D state) is reported, not waited for forever.
const KillWait = 10 * time.Second

// Options configure Start.
type Options struct {
	// Log is the file stdout and stderr are appended to; created if missing.
	Log string
	// Netns, when set, runs the program in that named network namespace
	// through `ip netns exec`, which execs the program after setns: the
	// PID is still the program's own.
	Netns string
	// Setpgid puts the child in its own process group, so a terminal's
	// SIGINT reaches only the lab, which then tears it down in order.
	Setpgid bool
}

// Process is a running (or exited) child.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts bin with args. The child gets PDEATHSIG SIGKILL so that a
// lab killed hard takes its processes along.
func Start(bin string, args []string, o Options) (*Process, error) {
	if o.Log == "" {
		return nil, fmt.Errorf("proc: start %s: no log file: set Options.Log", bin)
	}
	logf, err := os.OpenFile(o.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("proc: open log of %s: %w", bin, err)
	}
	// The child holds its own copy of the descriptor.
	defer logf.Close()
	argv := append([]string{bin}, args...)
	if o.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", o.Netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: o.Setpgid}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", strings.Join(argv, " "), err)
	}
	p := &Process{name: bin, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the exit status, valid after Done.
func (p *Process) Err() error { return p.err }

// Running reports whether the process is alive; false for a nil Process.
func (p *Process) Running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process (its own PID) and waits up to wait for
// it to exit; it reports whether the process is gone. A nil or exited
// Process is gone.
func (p *Process) Signal(sig syscall.Signal, wait time.Duration) bool {
	if !p.Running() {
		return true
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(wait):
		return false
	}
}

// Kill sends SIGKILL (a crash: nothing cleaned up) and waits up to KillWait.
func (p *Process) Kill() error {
	if !p.Signal(syscall.SIGKILL, KillWait) {
		return fmt.Errorf("proc: %s (pid %d) did not exit %s after SIGKILL: look for it in D state (ps -o stat,wchan -p %d)",
			p.name, p.PID(), KillWait, p.PID())
	}
	return nil
}

// Stop sends SIGTERM, waits up to grace for an orderly exit, then kills.
func (p *Process) Stop(grace time.Duration) error {
	if p.Signal(syscall.SIGTERM, grace) {
		return nil
	}
	return p.Kill()
}

// Tail returns the last n lines of the file at path under a header, for
// error messages; "" when the file cannot be read.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + path + " (last lines) ---\n" + strings.Join(lines, "\n")
}
