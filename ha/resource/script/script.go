// Package script runs heartbeat resource.d style scripts: SCRIPT [ARGS]
// start|stop|status. start and stop are judged by their exit code, status by
// its standard output exactly as heartbeat's ResourceManager does (see
// JudgeStatus), because classic heartbeat scripts often exit 0 either way.
package script

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/ha/resource/internal/command"
)

// Type is the Spec.Type of this package.
const Type = "script"

func init() { resource.Register(Type, Params, New) }

// Params is the script type's parameter table.
var Params = []resource.Param{
	{Key: "path", Required: true, Example: "/etc/ha.d/resource.d/myservice", Doc: "the executable, called with start, stop or status"},
	{Key: "args", Example: "QM1 /srv/mq", Doc: "arguments before the action, space separated"},
}

// Script is a resource.Resource backed by a heartbeat-style script.
type Script struct {
	name string
	path string
	args []string
	log  *slog.Logger
}

// New checks spec (path exists and is executable) and returns the resource.
func New(spec resource.Spec, log *slog.Logger) (resource.Resource, error) {
	p := resource.NewParams(spec)
	path := p.Required("path")
	args := strings.Fields(p.String("args", ""))
	if path != "" {
		if err := CheckExecutable(path); err != nil {
			p.Fail("path", err.Error(), "create it or fix the path, then chmod +x "+path)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Script{name: spec.Name, path: path, args: args, log: log}, nil
}

// CheckExecutable returns an error unless path is an absolute path to a
// regular file with an execute bit.
func CheckExecutable(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%q is not a regular file", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%q is not executable", path)
	}
	return nil
}

// Name implements resource.Resource.
func (s *Script) Name() string { return s.name }

func (s *Script) run(ctx context.Context, op string) (command.Result, error) {
	args := append(append([]string(nil), s.args...), op)
	res, err := command.Run(ctx, s.path, args...)
	s.log.Debug("script ran", "op", op, "exit", res.ExitCode,
		"stdout", strings.TrimSpace(string(res.Stdout)), "stderr", strings.TrimSpace(string(res.Stderr)))
	if err != nil {
		return res, fmt.Errorf("script %s %s: %w", s.name, op, err)
	}
	return res, nil
}

// Start runs "SCRIPT [ARGS] start"; exit 0 is success.
func (s *Script) Start(ctx context.Context) error {
	return s.judgeExit(s.run(ctx, "start"))
}

// Stop runs "SCRIPT [ARGS] stop"; exit 0 is success. Like heartbeat it calls
// stop even when status would say stopped, so a script that must clean up
// after a crash gets the chance; stopping a stopped resource must exit 0.
func (s *Script) Stop(ctx context.Context) error {
	return s.judgeExit(s.run(ctx, "stop"))
}

func (s *Script) judgeExit(res command.Result, err error) error {
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		msg := fmt.Sprintf("script %s: %s exited with status %d", s.name, s.path, res.ExitCode)
		if l := res.StderrLine(); l != "" {
			msg += ": " + l
		}
		return fmt.Errorf("%s (run it by hand to see why)", msg)
	}
	return nil
}

// Monitor runs "SCRIPT [ARGS] status" and judges its stdout; the exit code is
// ignored, as heartbeat ignores it.
func (s *Script) Monitor(ctx context.Context) (resource.Status, error) {
	res, err := s.run(ctx, "status")
	if err != nil {
		return resource.StatusFailed, err
	}
	return JudgeStatus(string(res.Stdout)), nil
}

// JudgeStatus maps the stdout of "status" the way heartbeat's ResourceManager
// does with a shell case statement: output matching *not *running* means
// stopped, then *running* or *OK* means running, anything else stopped. The
// words "not" and "running" match in any case, "OK" only in upper case.
func JudgeStatus(stdout string) resource.Status {
	lower := strings.ToLower(stdout)
	// *not *running*: "not " somewhere, "running" anywhere after it. The first
	// "not " leaves the longest tail, so checking it alone is enough.
	if i := strings.Index(lower, "not "); i >= 0 && strings.Contains(lower[i+len("not "):], "running") {
		return resource.StatusStopped
	}
	if strings.Contains(lower, "running") || strings.Contains(stdout, "OK") {
		return resource.StatusRunning
	}
	return resource.StatusStopped
}
