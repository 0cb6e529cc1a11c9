// Package lsb runs System V init scripts judged by the exit codes of the
// Linux Standard Base Core Specification, "Init Script Actions" (LSB 5.0
// section 22.2): status 0 running, 1-3 stopped, 4 unknown; start and stop 0
// on success, including start of a running and stop of a stopped service.
package lsb

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/ha/resource/internal/command"
	"github.com/tandem-ha/tandem/ha/resource/script"
)

// Type is the Spec.Type of this package.
const Type = "lsb"

// InitDir is where a bare script name is looked up.
const InitDir = "/etc/init.d"

func init() { resource.Register(Type, Params, New) }

// Params is the lsb type's parameter table.
var Params = []resource.Param{
	{Key: "path", Required: true, Example: "/etc/init.d/nginx", Doc: "the LSB init script"},
}

// Service is a resource.Resource backed by an LSB init script.
type Service struct {
	name, path string
	log        *slog.Logger
}

// New checks spec and returns the resource. params.path is an absolute path
// or a name under /etc/init.d.
func New(spec resource.Spec, log *slog.Logger) (resource.Resource, error) {
	p := resource.NewParams(spec)
	path := p.Required("path")
	if path != "" && !strings.Contains(path, "/") {
		path = filepath.Join(InitDir, path)
	}
	if path != "" {
		if err := script.CheckExecutable(path); err != nil {
			p.Fail("path", err.Error(), "install the service or fix the path, then chmod +x "+path)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{name: spec.Name, path: path, log: log}, nil
}

// Name implements resource.Resource.
func (s *Service) Name() string { return s.name }

func (s *Service) run(ctx context.Context, op string) (int, string, error) {
	res, err := command.Run(ctx, s.path, op)
	s.log.Debug("init script ran", "op", op, "exit", res.ExitCode, "stderr", strings.TrimSpace(string(res.Stderr)))
	if err != nil {
		return -1, "", fmt.Errorf("lsb %s %s: %w", s.name, op, err)
	}
	return res.ExitCode, res.StderrLine(), nil
}

// Start runs "SCRIPT start"; 0 is success (also when already running).
func (s *Service) Start(ctx context.Context) error {
	code, line, err := s.run(ctx, "start")
	if err != nil {
		return err
	}
	return s.actionError("start", code, line)
}

// Stop runs "SCRIPT stop"; 0 is success. Some scripts wrongly fail to stop a
// stopped service; when status then says 3 (not running) the service is
// stopped, which is what the agent asked for, so Stop succeeds with a warning.
func (s *Service) Stop(ctx context.Context) error {
	code, line, err := s.run(ctx, "stop")
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	if st, _, serr := s.run(ctx, "status"); serr == nil && st == 3 {
		s.log.Warn("init script stop failed on a stopped service; LSB wants exit 0", "exit", code)
		return nil
	}
	return s.actionError("stop", code, line)
}

func (s *Service) actionError(op string, code int, line string) error {
	if code == 0 {
		return nil
	}
	msg := fmt.Sprintf("lsb %s: %s %s exited with status %d (%s)", s.name, s.path, op, code, ActionMeaning(code))
	if line != "" {
		msg += ": " + line
	}
	return fmt.Errorf("%s; run it by hand to see why", msg)
}

// Monitor runs "SCRIPT status" and maps its exit code with JudgeStatus.
func (s *Service) Monitor(ctx context.Context) (resource.Status, error) {
	code, line, err := s.run(ctx, "status")
	if err != nil {
		return resource.StatusFailed, err
	}
	st := JudgeStatus(code)
	if st == resource.StatusFailed {
		msg := fmt.Sprintf("lsb %s: status exited with %d (%s)", s.name, code, StatusMeaning(code))
		if line != "" {
			msg += ": " + line
		}
		return st, fmt.Errorf("%s", msg)
	}
	return st, nil
}

// JudgeStatus maps an LSB status exit code: 0 running; 1 (dead, pid file
// exists), 2 (dead, lock file exists) and 3 (not running) stopped; 4
// (unknown) and anything else failed.
func JudgeStatus(code int) resource.Status {
	switch code {
	case 0:
		return resource.StatusRunning
	case 1, 2, 3:
		return resource.StatusStopped
	}
	return resource.StatusFailed
}

// StatusMeaning describes an LSB status exit code.
func StatusMeaning(code int) string {
	switch code {
	case 0:
		return "program is running or service is OK"
	case 1:
		return "program is dead and /var/run pid file exists"
	case 2:
		return "program is dead and /var/lock lock file exists"
	case 3:
		return "program is not running"
	case 4:
		return "program or service status is unknown"
	}
	if code >= 150 && code <= 199 {
		return "reserved for application use"
	}
	return "reserved"
}

// ActionMeaning describes an LSB exit code of any action but status.
func ActionMeaning(code int) string {
	switch code {
	case 0:
		return "success"
	case 1:
		return "generic or unspecified error"
	case 2:
		return "invalid or excess arguments"
	case 3:
		return "unimplemented feature"
	case 4:
		return "user had insufficient privilege"
	case 5:
		return "program is not installed"
	case 6:
		return "program is not configured"
	case 7:
		return "program is not running"
	}
	if code >= 150 && code <= 199 {
		return "reserved for application use"
	}
	return "reserved"
}
