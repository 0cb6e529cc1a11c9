package scsi

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// Target is one iSCSI target's LUN map; it is safe for concurrent use.
type Target struct {
	name   string
	logger *slog.Logger
	mu     sync.RWMutex
	lus    map[uint64]*LU
	// aborter is the fabric's task abort function (SetAborter).
	aborter atomic.Pointer[Aborter]
	// flog rate-limits the log of backend faults; clock drives it.
	flog  faultLog
	clock clock
}

// NewTarget returns an empty target. A nil logger discards.
func NewTarget(name string, logger *slog.Logger) *Target {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if testNoTAS {
		logger.Warn("BROKEN BUILD FOR TESTS: tasks aborted by another nexus end without TASK ABORTED status", "env", "TANDEM_TEST_NO_TAS")
	}
	return &Target{name: name, logger: logger.With("target", name), lus: map[uint64]*LU{},
		flog: faultLog{every: FaultLogInterval}, clock: realClock}
}

// AddLU maps lu at lun.
func (t *Target) AddLU(lun uint64, lu *LU) error {
	if lu == nil {
		return errors.New("scsi: add LU: nil LU")
	}
	if lun > 16383 {
		return fmt.Errorf("scsi: LUN %d beyond flat addressing (use 0..16383)", lun)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.lus[lun]; dup {
		return fmt.Errorf("scsi: LUN %d already mapped in %s (remove it first)", lun, t.name)
	}
	t.lus[lun] = lu
	return nil
}

// RemoveLU unmaps lun and returns its LU for the caller to close.
func (t *Target) RemoveLU(lun uint64) (*LU, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lu, found := t.lus[lun]
	if !found {
		return nil, fmt.Errorf("scsi: LUN %d not mapped in %s", lun, t.name)
	}
	delete(t.lus, lun)
	return lu, nil
}

// LUNs lists the mapped LUNs in ascending order.
func (t *Target) LUNs() []uint64 {
	t.mu.RLock()
	luns := make([]uint64, 0, len(t.lus))
	for n := range t.lus {
		luns = append(luns, n)
	}
	t.mu.RUnlock()
	slices.Sort(luns)
	return luns
}

func (t *Target) lu(lun uint64) *LU {
	t.mu.RLock()
	lu := t.lus[lun]
	t.mu.RUnlock()
	return lu
}

// Execute runs one command to completion; it is called concurrently from
// many goroutines.
func (t *Target) Execute(task *Task) Result {
	lu := t.lu(task.LUN)
	cmd, f := lookup(task.CDB)
	if lu == nil {
		return t.noLU(task, cmd)
	}
	if box := lu.auditor.Load(); box != nil && cmd != nil && audited(cmd) {
		return t.executeAudited(lu, box.a, task, cmd, f)
	}
	return t.executeAdmitted(lu, task, cmd, f)
}

// executeAdmitted admits a command and runs it.
func (t *Target) executeAdmitted(lu *LU, task *Task, cmd *command, f failure) Result {
	ns, r, done := lu.admit(task, cmd, f)
	if done {
		lu.io.note(cmd, &r, 0)
		return r
	}
	start := t.clock.now()
	r = t.execute(lu, task, cmd, f)
	lu.io.note(cmd, &r, t.clock.now().Sub(start))
	if ns != nil {
		ns.inflight.Add(-1)
	}
	return r
}

// execute runs an admitted command.
func (t *Target) execute(lu *LU, task *Task, cmd *command, f failure) Result {
	if f.failed() {
		return lu.checkCondition(f, 0)
	}
	if !cmd.supported(lu) {
		if cmd.hasSA {
			// Another service action of the opcode exists (SPC-4 4.2.5.1).
			return lu.checkCondition(badCDB(1, 4), 0)
		}
		return lu.checkCondition(fail(reasonInvalidOpcode), 0)
	}
	if f := lu.sanitizeGate(cmd); f.failed() {
		return lu.checkCondition(f, 0)
	}
	start := t.clock.now()
	o := cmd.handler(t, lu, task)
	took := t.clock.now().Sub(start)
	if cmd.op == wscsi.OpSanitize {
		took = 0 // takes minutes by design (SBC-4 4.11): not a slow disk
	}
	t.noteFault(lu, task.LUN, cmd.name, o.fail, o.err, took)
	if o.modeChanged {
		lu.modeChanged(task.Nexus)
	}
	if o.fail.failed() {
		if o.fail.reason == reasonInternal {
			t.logger.Warn("command failed", "lun", task.LUN, "op", cmd.name, "err", o.err)
		}
		return lu.checkCondition(o.fail, o.wanted)
	}
	if o.conflict {
		return Result{Status: wscsi.StatusReservationConflict, DataOutWanted: o.wanted}
	}
	return Result{Status: wscsi.StatusGood, DataIn: o.data, DataOutWanted: o.wanted}
}

func (lu *LU) checkCondition(f failure, wanted uint32) Result {
	desc := lu != nil && lu.dsense.Load()
	return Result{Status: wscsi.StatusCheckCondition, Sense: senseData(f, desc), DataOutWanted: wanted}
}

// noLU answers a command to a LUN that is not mapped (SPC-4 section
// 5.10): INQUIRY reports peripheral qualifier 3, REPORT LUNS and REQUEST
// SENSE work, anything else is LOGICAL UNIT NOT SUPPORTED.
func (t *Target) noLU(task *Task, cmd *command) Result {
	if cmd != nil {
		switch cmd.op {
		case wscsi.OpInquiry, wscsi.OpReportLUNs, wscsi.OpRequestSense:
			o := cmd.handler(t, nil, task)
			if o.fail.failed() {
				return (*LU)(nil).checkCondition(o.fail, o.wanted)
			}
			return Result{Status: wscsi.StatusGood, DataIn: o.data}
		}
	}
	return (*LU)(nil).checkCondition(fail(reasonLUNotSupported), 0)
}

// ReplaceLU maps lu at lun in place of the LU there, for a resize that
// reopens the backend: lu takes over the reservation state, the mode
// pages and the unit attentions of the old LU, every nexus gets 2Ah/09h
// CAPACITY DATA HAS CHANGED (SBC-3 4.6), and the old LU is returned once
// none of its commands is executing, for the caller to close.
func (t *Target) ReplaceLU(lun uint64, lu *LU) (*LU, error) {
	if lu == nil {
		return nil, errors.New("scsi: replace LU: nil LU")
	}
	t.mu.Lock()
	old, found := t.lus[lun]
	if !found {
		t.mu.Unlock()
		return nil, fmt.Errorf("scsi: LUN %d not mapped in %s", lun, t.name)
	}
	if err := lu.inherit(old); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	t.lus[lun] = lu
	t.mu.Unlock()
	old.mu.RLock()
	states := append([]*nexusState{&old.anon}, old.states...)
	old.mu.RUnlock()
	if !drain(states, abortWait) {
		t.logger.Warn("replace LU: commands of the old LU still executing", "lun", lun)
	}
	return old, nil
}
