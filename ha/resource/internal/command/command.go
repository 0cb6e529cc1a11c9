// Package command runs the external programs of resource agents (scripts,
// init scripts, fsck) with a deadline, in their own process group so that a
// timeout kills everything they started.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxOutput caps how much of stdout and stderr is kept.
const maxOutput = 64 << 10

// Result is how a program ended.
type Result struct {
	// ExitCode is the exit status, or -1 when the program did not exit
	// normally (killed, timed out, failed to start).
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// StderrLine returns the last non-empty line of stderr (or stdout when stderr
// is empty), for error messages.
func (r Result) StderrLine() string {
	for _, b := range [][]byte{r.Stderr, r.Stdout} {
		s := strings.TrimSpace(string(b))
		if s == "" {
			continue
		}
		if i := strings.LastIndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		return s
	}
	return ""
}

// Error is returned when a program could not be run to completion: it failed
// to start, was killed by a signal, or ran past its deadline.
type Error struct {
	Cmd    string
	Result Result
	Err    error
}

func (e *Error) Error() string {
	msg := e.Cmd + ": " + e.Err.Error()
	if l := e.Result.StderrLine(); l != "" {
		msg += ": " + l
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs name with args and waits for it. A non-zero exit status is not an
// error: callers judge Result.ExitCode. When ctx is done first, the whole
// process group gets SIGKILL and the error wraps ctx.Err().
//
// stdout and stderr go to unlinked temporary files rather than pipes: a
// start script that leaves a daemon behind, still holding its stdout, must
// neither block Run nor have the daemon killed by SIGPIPE later.
func Run(ctx context.Context, name string, args ...string) (Result, error) {
	res := Result{ExitCode: -1}
	desc := strings.Join(append([]string{name}, args...), " ")
	outF, err := tempFile()
	if err != nil {
		return res, &Error{Cmd: desc, Result: res, Err: err}
	}
	defer outF.Close()
	errF, err := tempFile()
	if err != nil {
		return res, &Error{Cmd: desc, Result: res, Err: err}
	}
	defer errF.Close()

	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Negative pid: the process group created by Setpgid.
		return unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	res.Stdout = readBack(outF)
	res.Stderr = readBack(errF)
	if ctx.Err() != nil {
		// The program may have exited on its own just before the deadline, but
		// its descendants were killed with the group: report the timeout.
		return res, &Error{Cmd: desc, Result: res, Err: fmt.Errorf("killed after the deadline: %w", ctx.Err())}
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		res.ExitCode = 0
	case errors.As(runErr, &ee) && ee.Exited():
		res.ExitCode = ee.ExitCode()
	default:
		return res, &Error{Cmd: desc, Result: res, Err: runErr}
	}
	return res, nil
}

func tempFile() (*os.File, error) {
	f, err := os.CreateTemp("", "tandem-res-*")
	if err != nil {
		return nil, fmt.Errorf("create output file: %w (is $TMPDIR writable?)", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlink output file: %w", err)
	}
	return f, nil
}

func readBack(f *os.File) []byte {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxOutput))
	return b
}
