package mqres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// Result is what a control command left behind.
type Result struct {
	Stdout, Stderr []byte
	// Code is the exit code; -1 when the command was killed (timeout).
	Code int
}

// Runner runs one MQ control command. It returns an error only when the
// command could not run to an exit code (not found, killed by ctx); a
// non-zero exit is a Result, because MQ's exit codes carry meaning
// (endmqm 40 = not available, strmqm 5 = already running).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (Result, error)
}

// ExecRunner runs commands from Dir as User. It is the production Runner.
type ExecRunner struct {
	// Dir holds the MQ binaries (Config.BinDir).
	Dir string
	// User to run as; "" or the current user means no switch. Switching needs
	// root, as IBM's HA scripts do with su mqm.
	User string
	// Env, when non-nil, replaces the inherited environment.
	Env []string
}

// Run implements Runner. A ctx deadline kills the command's whole process
// group: a hung dspmq may have children that would keep the pipes open.
func (r ExecRunner) Run(ctx context.Context, name string, args ...string) (Result, error) {
	path := name
	if r.Dir != "" {
		path = r.Dir + "/" + name
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = r.Env
	attr := &syscall.SysProcAttr{Setpgid: true}
	cred, err := credential(r.User)
	if err != nil {
		return Result{Code: -1}, err
	}
	attr.Credential = cred
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// strmqm leaves daemons that inherit nothing from us, but a misbehaving
	// child holding stdout must not block the agent past the kill.
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Code: -1}
	if cmd.ProcessState != nil {
		res.Code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s %v: %w", name, args, ctx.Err())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, fmt.Errorf("run %s: %w (check the MQ install path)", path, err)
	}
	return res, nil
}

// credential returns the switch to name, or nil when none is needed.
func credential(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, nil
	}
	cur, err := user.Current()
	if err == nil && cur.Username == name {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("look up run-as user %q: %w (create it, or set user to \"\" to run as the agent's user)", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid/gid", name)
	}
	var groups []uint32
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}
