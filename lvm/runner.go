package lvm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr []byte
	// ExitCode is the exit status, -1 when the command did not exit.
	ExitCode int
}

// Runner runs one command. Run returns a non-nil error only when the
// command could not start or was stopped (ctx ended); a non-zero exit is
// a Result with its ExitCode. ExecRunner runs real processes; lvmtest.Fake
// is an lvm2 in memory.
type Runner interface {
	Run(ctx context.Context, argv []string) (Result, error)
}

// ExecRunner runs commands as processes, each in its own process group so
// that the deadline also stops whatever lvm started.
type ExecRunner struct {
	// Env is the environment; nil inherits ours. LVM_SUPPRESS_FD_WARNINGS
	// is always added: lvm warns about every inherited descriptor.
	Env []string
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, argv []string) (Result, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	env := r.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env[:len(env):len(env)], "LVM_SUPPRESS_FD_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that keeps the pipes open must not keep us waiting.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && res.ExitCode >= 0 && ctx.Err() == nil {
		return res, nil
	}
	return res, err
}
