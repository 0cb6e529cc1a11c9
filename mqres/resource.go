package mqres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Exit codes of the MQ control commands the resource branches on (IBM's
// strmqm/endmqm/dspmq return-code tables).
const (
	codeOK            = 0
	codeRunning       = 5  // strmqm: queue manager running
	codeNotExist      = 16 // queue manager does not exist
	codeStandby       = 30 // strmqm -x: started as standby
	codeNotAvailable  = 40 // endmqm: queue manager not available (not running)
	codeActiveStandby = 31 // strmqm: already active elsewhere, standby permitted
	codeActiveNoSb    = 43 // strmqm: already active elsewhere
	codeNameError     = 72 // queue manager name error
)

// Resource drives one queue manager. Its method set is ha/resource.Resource
// and Forcer, with State in place of resource.Status.
type Resource struct {
	cfg   Config
	run   Runner
	procs ProcTable
	log   *slog.Logger
}

// New validates cfg, fills defaults and wires the production adapters.
func New(cfg Config) (*Resource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Resource{cfg: cfg, run: cfg.Runner, procs: cfg.Procs, log: cfg.Log}
	if r.run == nil {
		r.run = ExecRunner{Dir: cfg.BinDir, User: cfg.User}
	}
	if r.procs == nil {
		r.procs = ProcFS{}
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.log = r.log.With("qmgr", cfg.QMgr)
	return r, nil
}

// Name is the queue manager name.
func (r *Resource) Name() string { return r.cfg.QMgr }

// Config returns the effective configuration (defaults filled).
func (r *Resource) Config() Config { return r.cfg }

// Status runs `dspmq -n -m QM` under MonitorTimeout and parses it.
func (r *Resource) Status(ctx context.Context) (QMStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.MonitorTimeout)
	defer cancel()
	res, err := r.run.Run(ctx, "dspmq", "-n", "-m", r.cfg.QMgr)
	if err != nil {
		return QMUnknown, fmt.Errorf("dspmq for %s: %w (a hung dspmq counts as a failure)", r.cfg.QMgr, err)
	}
	if res.Code != codeOK {
		return QMUnknown, fmt.Errorf("dspmq -m %s exited %d: %s", r.cfg.QMgr, res.Code, msg(res))
	}
	return ParseDspmq(res.Stdout, r.cfg.QMgr)
}

// MonitorState refines a status with the process sweep's finding: a crashed
// queue manager with no processes left is simply stopped (a start may
// follow); with processes left it is failed (a stop must sweep them first).
func MonitorState(st QMStatus, leftovers int) State {
	if st == QMEndedUnexpectedly && leftovers == 0 {
		return StateStopped
	}
	return st.State()
}

// Monitor reports running, stopped or failed. An error always comes with
// StateFailed: the monitor could not tell, or MQ said something undocumented.
func (r *Resource) Monitor(ctx context.Context) (State, error) {
	st, err := r.Status(ctx)
	if err != nil {
		return StateFailed, err
	}
	left := 0
	if st == QMEndedUnexpectedly {
		procs, err := r.procs.Find(r.cfg.QMgr)
		if err != nil {
			return StateFailed, err
		}
		left = len(procs)
	}
	s := MonitorState(st, left)
	r.log.Debug("monitor", "status", st.String(), "state", s.String())
	return s, nil
}

// Start runs strmqm and waits for RUNNING, tolerating STARTING, within
// StartTimeout. It succeeds at once when the queue manager already runs.
func (r *Resource) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StartTimeout)
	defer cancel()
	if r.cfg.SharedMount != "" {
		if err := r.CheckShared(ctx); err != nil {
			return err
		}
	}
	st, err := r.Status(ctx)
	switch {
	case err != nil && !errors.Is(err, ErrUnparsable):
		// dspmq failing or hanging before a start means MQ itself is broken;
		// strmqm would fail or hang the same way.
		return fmt.Errorf("start %s: %w", r.cfg.QMgr, err)
	case st == QMRunning:
		r.log.Info("already running")
		return nil
	case st == QMStarting:
		return r.waitRunning(ctx)
	case st.State() == StateFailed && err == nil:
		// Crashed or ending on its own: strmqm would refuse while old
		// processes hold the queue manager (strmqm 24), so clean up first.
		r.log.Warn("cleaning up before start", "status", st.String())
		if err := r.Stop(ctx); err != nil {
			return fmt.Errorf("start %s: clean up %s first: %w", r.cfg.QMgr, st, err)
		}
	}
	r.log.Info("strmqm")
	res, err := r.run.Run(ctx, "strmqm", r.cfg.QMgr)
	if err != nil {
		return fmt.Errorf("strmqm %s did not return within the start timeout %s: %w", r.cfg.QMgr, r.cfg.StartTimeout, err)
	}
	switch res.Code {
	case codeOK, codeRunning:
	case codeStandby, codeActiveStandby, codeActiveNoSb:
		return fmt.Errorf("strmqm %s exited %d: the queue manager is active on another node: stop it there first (%s)", r.cfg.QMgr, res.Code, msg(res))
	case codeNotExist, codeNameError:
		return fmt.Errorf("strmqm %s exited %d: unknown queue manager on this node: run crtmqm (first node) or the addmqinf line from `mq %s setup` (second node) (%s)", r.cfg.QMgr, res.Code, r.cfg.QMgr, msg(res))
	default:
		return fmt.Errorf("strmqm %s exited %d: %s", r.cfg.QMgr, res.Code, msg(res))
	}
	return r.waitRunning(ctx)
}

// waitRunning polls dspmq until RUNNING; STARTING keeps waiting, anything
// else (it crashed during log replay) fails the start.
func (r *Resource) waitRunning(ctx context.Context) error {
	last := QMUnknown
	for {
		st, err := r.Status(ctx)
		if err == nil {
			last = st
		}
		switch {
		case err == nil && st == QMRunning:
			r.log.Info("running")
			return nil
		case err == nil && st == QMStarting:
		case ctx.Err() != nil:
		case err != nil:
			// One failed dspmq during a start is not fatal: keep polling
			// until the start timeout decides.
			r.log.Warn("dspmq while starting", "err", err)
		default:
			return fmt.Errorf("start %s: status became %s while waiting for RUNNING", r.cfg.QMgr, st)
		}
		if err := sleep(ctx, r.cfg.PollInterval); err != nil {
			return fmt.Errorf("start %s: not RUNNING within the start timeout %s (last status %s): %w", r.cfg.QMgr, r.cfg.StartTimeout, last, err)
		}
	}
}

// Stop ends the queue manager: endmqm -i under EndTimeout, then endmqm -p,
// then kills what is left in KillOrder. A stopped queue manager is success.
func (r *Resource) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StopTimeout)
	defer cancel()
	st, serr := r.Status(ctx)
	procs, err := r.procs.Find(r.cfg.QMgr)
	if err != nil {
		return err
	}
	if serr == nil && st.State() == StateStopped && len(procs) == 0 {
		r.log.Info("already stopped", "status", st.String())
		return nil
	}
	if serr != nil {
		r.log.Warn("status unknown, ending anyway", "err", serr)
	}
	if serr != nil || st != QMEndedUnexpectedly {
		if ended := r.end(ctx, "-i"); !ended {
			// endmqm -p returns before the queue manager is gone: give it
			// EndTimeout to end on its own before the sweep kills it.
			r.end(ctx, "-p")
			r.waitGone(ctx)
		}
	}
	return r.sweep(ctx)
}

// ForceStop skips the polite endmqm -i: endmqm -p, then the kill sweep.
func (r *Resource) ForceStop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StopTimeout)
	defer cancel()
	r.end(ctx, "-p")
	r.waitGone(ctx)
	return r.sweep(ctx)
}

// end runs endmqm mode under EndTimeout; true when MQ says it has ended or
// was not running.
func (r *Resource) end(ctx context.Context, mode string) bool {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.EndTimeout)
	defer cancel()
	r.log.Info("endmqm", "mode", mode)
	res, err := r.run.Run(ctx, "endmqm", mode, r.cfg.QMgr)
	if err != nil {
		r.log.Warn("endmqm did not return, escalating", "mode", mode, "timeout", r.cfg.EndTimeout, "err", err)
		return false
	}
	switch res.Code {
	case codeOK, codeNotAvailable:
		return true
	}
	r.log.Warn("endmqm failed, escalating", "mode", mode, "code", res.Code, "output", msg(res))
	return false
}

// waitGone polls for the queue manager's processes to exit, up to EndTimeout.
func (r *Resource) waitGone(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.EndTimeout)
	defer cancel()
	for {
		if procs, err := r.procs.Find(r.cfg.QMgr); err != nil || len(procs) == 0 {
			return
		}
		if sleep(ctx, r.cfg.PollInterval) != nil {
			return
		}
	}
}

// sweep kills the queue manager's remaining processes in KillOrder until
// none is left, as IBM's HA stop script does after endmqm.
func (r *Resource) sweep(ctx context.Context) error {
	for {
		procs, err := r.procs.Find(r.cfg.QMgr)
		if err != nil {
			return err
		}
		if len(procs) == 0 {
			r.log.Info("stopped")
			return nil
		}
		for _, p := range SortKillOrder(procs) {
			r.log.Warn("killing leftover process", "pid", p.PID, "program", p.Name)
			if err := r.procs.Kill(p.PID); err != nil {
				return err
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("stop %s: processes %v survive SIGKILL: %w", r.cfg.QMgr, procs, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// msg is the command's message for an error: MQ prints AMQ codes on stdout.
func msg(res Result) string {
	s := strings.TrimSpace(string(res.Stdout) + " " + string(res.Stderr))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
