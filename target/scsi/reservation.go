package scsi

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/tandem-ha/tandem/target/scsi/pr"
	"github.com/tandem-ha/tandem/target/scsi/pr/prfile"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// Aborter aborts the fabric's outstanding tasks on lun whose nexus
// matches, and returns only when none of them can still touch the medium
// (tasks already executing have finished). They are another nexus's
// tasks, so with TAS set (TaskAbortedStatus) each completes with TASK
// ABORTED status. The fabric registers it once with SetAborter.
type Aborter func(lun uint64, match func(n *Nexus) bool)

// SetAborter registers the fabric's task abort function, which PREEMPT
// AND ABORT calls (SPC-4 5.12.11.2.5).
func (t *Target) SetAborter(a Aborter) {
	if a == nil {
		t.aborter.Store(nil)
		return
	}
	t.aborter.Store(&a)
}

// ResetKind says which reset Target.Reset applies.
type ResetKind int

// Reset kinds, from the iSCSI task management functions (RFC 7143
// 11.5.1).
const (
	// LUReset is LOGICAL UNIT RESET: one LU.
	LUReset ResetKind = iota
	// WarmReset is TARGET WARM RESET: a hard reset of every LU.
	WarmReset
	// ColdReset is TARGET COLD RESET: a power on of every LU.
	ColdReset
)

// Reset applies the SCSI effects of a reset after the fabric has aborted
// the affected tasks: LUReset acts on lun only, WarmReset and ColdReset on
// every LU. SPC-2 reservations are released and persistent reservations
// kept (SPC-4 5.12.1; a cold reset is a power on, which keeps them only
// with APTPL, 5.12.5), the mode pages return to their defaults (nothing
// can be saved), and every nexus gets a unit attention: 29h/03h BUS DEVICE
// RESET FUNCTION OCCURRED, 29h/02h SCSI BUS RESET OCCURRED (hard reset) or
// 29h/01h POWER ON OCCURRED (SAM-5 6.3). by is the nexus that asked; it
// gets the unit attention too, as SAM-5 6.3.3 says "every I_T nexus".
func (t *Target) Reset(lun uint64, kind ResetKind, by *Nexus) {
	switch kind {
	case LUReset:
		if lu := t.lu(lun); lu != nil {
			lu.reset(uaLUReset, false)
		}
	case WarmReset:
		for _, lu := range t.allLUs() {
			lu.reset(uaBusReset, false)
		}
	default:
		for _, lu := range t.allLUs() {
			lu.reset(uaPowerOn, true)
		}
	}
	if by != nil {
		t.logger.Info("reset", "lun", lun, "kind", int(kind), "initiator", by.Initiator)
	}
}

// NexusLoss is called when a session ends (logout, connection drop,
// reinstatement): the nexus's SPC-2 reservation goes, its persistent
// registrations stay, and it gets 29h/07h I_T NEXUS LOSS OCCURRED should
// it come back (SAM-5 6.3.4).
func (t *Target) NexusLoss(n *Nexus) {
	if n == nil {
		return
	}
	p := portOf(n)
	for _, lu := range t.allLUs() {
		lu.mu.Lock()
		lu.pr.NexusLoss(p)
		if ns := lu.findLocked(p); ns != nil {
			ns.push(uaNexusLoss)
		}
		lu.mu.Unlock()
		lu.copies.forget(keyOf(n))
	}
}

// TasksCleared is called after the fabric aborted all tasks of lun (CLEAR
// TASK SET). With TAS=0 every other nexus that lost tasks would get
// 2Fh/00h COMMANDS CLEARED BY ANOTHER INITIATOR (SAM-5 7.4); with TAS=1
// their tasks completed with TASK ABORTED status instead, which tells
// them, and a unit attention on top would fail their next command.
func (t *Target) TasksCleared(lun uint64, by *Nexus, victims []*Nexus) {
	lu := t.lu(lun)
	if lu == nil || t.TaskAbortedStatus(lun) {
		return
	}
	var self pr.Port
	if by != nil {
		self = portOf(by)
	}
	lu.mu.Lock()
	defer lu.mu.Unlock()
	for _, v := range victims {
		if v == nil {
			continue
		}
		p := portOf(v)
		if by != nil && p.Same(self) {
			continue
		}
		if ns := lu.findLocked(p); ns != nil {
			ns.push(uaCommandsCleared)
		}
	}
}

func (t *Target) allLUs() []*LU {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*LU, 0, len(t.lus))
	for _, lu := range t.lus {
		out = append(out, lu)
	}
	return out
}

func (lu *LU) reset(c uaCode, powerOn bool) {
	lu.mu.Lock()
	lu.pr.Reset()
	if powerOn {
		lu.pr.PowerOn()
	}
	lu.queueAllLocked(c, nil)
	lu.mu.Unlock()
	// SPC-4 7.5.1: after a reset the current mode values are the saved
	// ones, and with nothing saved, the defaults.
	lu.wce.Store(lu.cfg.WriteCache)
	lu.dsense.Store(false)
	lu.swp.Store(false)
}

// isPROp reports whether op is a reservation command, which the pr engine
// checks itself and which never touches the medium.
func isPROp(op byte) bool {
	switch op {
	case wscsi.OpPersistentReserveIn, wscsi.OpPersistentReserveOut,
		wscsi.OpReserve6, wscsi.OpRelease6, wscsi.OpReserve10, wscsi.OpRelease10:
		return true
	}
	return false
}

var reservationConflict = Result{Status: wscsi.StatusReservationConflict}

// admit runs the unit attention (SAM-5 5.14) and reservation (SPC-4
// 5.12.3) checks before a command executes. done means r is the answer;
// otherwise the command goes on, and when ns is not nil it was counted as
// executing and Execute must call ns.inflight.Add(-1) once it finished.
// The common case (known nexus, nothing pending) takes a read lock and
// allocates nothing.
func (lu *LU) admit(task *Task, cmd *command, f failure) (ns *nexusState, r Result, done bool) {
	n := task.Nexus
	lu.mu.RLock()
	if n != nil {
		ns = lu.nexuses[nexusKey{name: n.Initiator, isid: n.ISID, tpgt: n.TPGT}]
		if ns == nil || len(ns.pending) > 0 {
			lu.mu.RUnlock()
			return lu.admitSlow(task, cmd, f)
		}
	} else {
		ns = &lu.anon
	}
	defer lu.mu.RUnlock()
	return lu.checkLocked(ns, task, cmd, f)
}

// checkLocked is the reservation check; lu.mu is held either way.
func (lu *LU) checkLocked(ns *nexusState, task *Task, cmd *command, f failure) (*nexusState, Result, bool) {
	if f.failed() || isPROp(cmd.op) {
		return nil, Result{}, false
	}
	if lu.pr.Check(ns.port, task.CDB) {
		return nil, reservationConflict, true
	}
	ns.inflight.Add(1)
	return ns, Result{}, false
}

func (lu *LU) admitSlow(task *Task, cmd *command, f failure) (*nexusState, Result, bool) {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	ns := lu.nexusLocked(task.Nexus)
	if len(ns.pending) > 0 {
		op := byte(0xff) // no CDB: not one of the exceptions
		if len(task.CDB) > 0 {
			op = task.CDB[0]
		}
		switch {
		case op == wscsi.OpInquiry || op == wscsi.OpReportLUNs:
			// SPC-4 5.14: neither reports nor clears the condition.
		case op == wscsi.OpRequestSense && !f.failed():
			// SPC-4 6.39: REQUEST SENSE returns the unit attention as
			// its parameter data and clears it.
			uf := failure{reason: reasonUnitAttention, code: ns.pop()}
			o := respond(task, senseData(uf, task.CDB[1]&0x01 != 0), uint32(task.CDB[4]))
			return nil, Result{Status: wscsi.StatusGood, DataIn: o.data}, true
		default:
			uf := failure{reason: reasonUnitAttention, code: ns.pop()}
			return nil, lu.checkCondition(uf, 0), true
		}
	}
	return lu.checkLocked(ns, task, cmd, f)
}

// prOutcome turns a pr.Result into a handler outcome.
func prOutcome(task *Task, o outcome, r pr.Result) outcome {
	switch r.Status {
	case pr.StatusReservationConflict:
		o.conflict = true
	case pr.StatusCheckCondition:
		o.fail = fail(prReason(r.Sense))
	default:
		if r.Data != nil {
			o.data = append(task.DataIn[:0], r.Data...)
		}
	}
	return o
}

func prReason(r pr.Reason) reason {
	switch r {
	case pr.ReasonInvalidFieldInCDB:
		return reasonInvalidFieldInCDB
	case pr.ReasonInvalidFieldInParameterList:
		return reasonInvalidFieldInParamList
	case pr.ReasonParameterListLengthError:
		return reasonParamListLength
	case pr.ReasonInsufficientRegistrationResources:
		return reasonInsufficientRegistration
	case pr.ReasonInvalidRelease:
		return reasonInvalidRelease
	}
	return reasonInternal
}

func persistentReserveIn(_ *Target, lu *LU, task *Task) outcome {
	p := portOf(task.Nexus)
	lu.mu.RLock()
	r := lu.pr.In(p, task.CDB)
	lu.mu.RUnlock()
	return prOutcome(task, outcome{}, r)
}

// persistentReserveOut performs PERSISTENT RESERVE OUT. A change that
// must survive power loss is on disk before the command completes, and
// when saving fails the command fails with the state as it was: the
// in-memory state never claims what the file does not hold.
func persistentReserveOut(t *Target, lu *LU, task *Task) outcome {
	o := outcome{wanted: get32(task.CDB[5:])}
	p := portOf(task.Nexus)
	lu.mu.Lock()
	before, _ := lu.pr.MarshalBinary()
	r := lu.pr.Out(p, task.CDB, task.DataOut)
	if r.Persist {
		if err := lu.persistLocked(); err != nil {
			if rerr := lu.pr.UnmarshalBinary(before); rerr != nil {
				// Cannot happen: before came from MarshalBinary.
				panic(fmt.Sprintf("scsi: roll back reservation state: %v", rerr))
			}
			lu.mu.Unlock()
			o.fail, o.err = fail(reasonInternal), err
			return o
		}
	}
	lu.queuePRLocked(r.UAs)
	lu.mu.Unlock()
	if len(r.Abort) > 0 {
		t.abort(task.LUN, lu, p, r.Abort)
	}
	return prOutcome(task, o, r)
}

func reserve(_ *Target, lu *LU, task *Task) outcome {
	p := portOf(task.Nexus)
	lu.mu.Lock()
	r := lu.pr.Reserve6(p, task.CDB)
	lu.mu.Unlock()
	return prOutcome(task, outcome{}, r)
}

func release(_ *Target, lu *LU, task *Task) outcome {
	p := portOf(task.Nexus)
	lu.mu.Lock()
	r := lu.pr.Release6(p, task.CDB)
	lu.mu.Unlock()
	return prOutcome(task, outcome{}, r)
}

// persistLocked saves the reservation state; lu.mu is held, so saves
// reach the disk in the order the changes happened.
func (lu *LU) persistLocked() error {
	if lu.cfg.StateFile == "" {
		return fmt.Errorf("scsi: LU %s has no reservation state file (set LUConfig.StateFile)", lu.cfg.Serial)
	}
	b, err := lu.pr.MarshalBinary()
	if err != nil {
		return fmt.Errorf("scsi: encode reservation state: %w", err)
	}
	return lu.saveState(filepath.Dir(lu.cfg.StateFile), filepath.Base(lu.cfg.StateFile), b)
}

// loadState restores the reservation state at NewLU as a power on does
// (SPC-4 5.12.5: registrations survive only with APTPL). A damaged file
// is an error, never a silent reset that would drop a fence.
func (lu *LU) loadState() error {
	path := lu.cfg.StateFile
	b, err := prfile.Load(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return fmt.Errorf("scsi: load reservation state: %w", err)
	}
	if b == nil {
		return nil
	}
	if err := lu.pr.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("scsi: reservation state file %s: %w; it is kept as is: move it away deliberately to start the LU with no registrations (fences recorded in it are then lost)", path, err)
	}
	lu.pr.PowerOn()
	return nil
}

// abort carries out PREEMPT AND ABORT for the nexuses sels select on this
// LU: the fabric's Aborter drops their queued tasks and waits for the
// executing ones, then the LU waits for its own count of their executing
// commands, which also covers a fabric without an Aborter. It runs
// outside every LU lock, since victim tasks may be waiting on them. The
// issuing nexus is left out even when its own key was preempted: its
// PREEMPT AND ABORT is one of its tasks, and waiting for it would never
// end.
func (t *Target) abort(lun uint64, lu *LU, issuer pr.Port, sels []pr.Selector) {
	match := func(p pr.Port) bool {
		if p.Same(issuer) {
			return false
		}
		for _, s := range sels {
			if s.Matches(p) {
				return true
			}
		}
		return false
	}
	if a := t.aborter.Load(); a != nil {
		(*a)(lun, func(n *Nexus) bool { return n != nil && match(portOf(n)) })
	}
	lu.mu.RLock()
	var victims []*nexusState
	for _, ns := range lu.states {
		if match(ns.port) {
			victims = append(victims, ns)
		}
	}
	lu.mu.RUnlock()
	if !drain(victims, abortWait) {
		t.logger.Warn("preempt and abort: commands of preempted nexuses still executing", "lun", lun, "waited", abortWait)
	}
}

// abortWait bounds how long PREEMPT AND ABORT waits for the preempted
// nexuses' executing commands, which finish on their own (backend I/O).
const abortWait = 30 * time.Second

// drain waits until no command of states is executing, up to limit.
func drain(states []*nexusState, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	pause := 50 * time.Microsecond
	for _, ns := range states {
		for ns.inflight.Load() > 0 {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(pause)
			pause = min(2*pause, 5*time.Millisecond)
		}
	}
	return true
}
