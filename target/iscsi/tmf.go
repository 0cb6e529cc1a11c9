package iscsi

import (
	tscsi "github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// Task states (command.state). A task moves forward only; task
// management ors in taskAborted, which stops it at the next step, and
// with it taskAbortStatus when the task must still complete with TASK
// ABORTED status (see abortWhere).
const (
	taskRecv   uint32 = iota // arriving: data phase or CmdSN queue (reader-owned)
	taskQueued               // handed to a worker
	taskExec                 // in Executor.Execute
	taskResp                 // response queued: past the point of abort
	taskDone                 // an aborted task finished executing

	taskAborted     uint32 = 0x100
	taskAbortStatus uint32 = 0x200
	taskFlags              = taskAborted | taskAbortStatus
)

// opPersistentReserveOut is never aborted by the scsi Aborter: the
// PREEMPT AND ABORT that calls it is one (SPC-4 5.9.11.5 excludes the
// task containing the PERSISTENT RESERVE OUT from the abort), and waiting
// for it would deadlock.
const opPersistentReserveOut = 0x5f

// opSanitize is waited for by no abort: a sanitize operation, once
// started, goes on through task management functions and resets (SBC-4
// 4.11), so the aborted SANITIZE only loses its response.
const opSanitize = 0x48

func (cmd *command) aborted() bool { return cmd.state.Load()&taskAborted != 0 }

// abortedWhile reports whether cmd was aborted in state s (taskRecv..).
func abortedWhile(state, s uint32) bool { return state&taskAborted != 0 && state&^taskFlags == s }

// finishAborted records that an aborted task left Execute and wakes the
// aborters waiting for it. A task that owes TASK ABORTED status has it
// queued before the aborters wake, so the status precedes whatever they
// answer (a TMF response on the same connection, a PERSISTENT RESERVE
// OUT response); it leaves the task table first, so that the initiator,
// once it has the status, may reuse the ITT.
func (c *conn) finishAborted(cmd *command) {
	c.mu.Lock()
	if c.tasks[cmd.itt] == cmd {
		delete(c.tasks, cmd.itt)
	}
	c.mu.Unlock()
	if cmd.state.Load()&taskAbortStatus != 0 {
		c.send(outMsg{kind: outAborted, cmd: cmd})
	}
	c.mu.Lock()
	cmd.state.Store(taskDone | cmd.state.Load()&taskFlags)
	c.aborted.Broadcast()
	c.mu.Unlock()
}

// abortWhere aborts the tasks of c that match and returns how many it
// aborted and those still executing (see waitAborted). A task whose
// response is already queued is complete and left alone. Aborted tasks
// that do not execute leave the task table at once, so Data-Out that
// still arrives for them is discarded and their ITT is free; executing
// ones leave it when Execute returns (a SANITIZE at once: nobody waits
// for it). Their memory goes to the garbage collector, not the pools:
// other goroutines may still hold them.
//
// status, when not nil, says which aborted tasks complete with TASK
// ABORTED status (SAM-5 5.6: aborted from another I_T nexus with TAS=1
// on their LU) instead of ending silently; a task waiting for Data-Out
// gets it at once, an executing one when Execute returns.
func (c *conn) abortWhere(match, status func(cmd *command) bool) (n int, executing []*command) {
	var answer []*command
	c.mu.Lock()
	for itt, cmd := range c.tasks {
		if !match(cmd) {
			continue
		}
		for {
			s := cmd.state.Load()
			if s == taskResp {
				break
			}
			if s&taskAborted != 0 {
				// Aborted by someone else; wait for it all the same.
				if abortedWhile(s, taskExec) && cmd.task.CDB[0] != opSanitize && !c.readOnly(cmd) {
					executing = append(executing, cmd)
				}
				break
			}
			// An executing read is answered now, not waited for: its
			// response is suppressed when it leaves the backend, and any
			// TASK ABORTED status it owes goes out at once.
			quiet := s == taskExec && c.readOnly(cmd)
			wantStatus := status != nil && status(cmd)
			flags := taskAborted
			if wantStatus && !quiet {
				flags |= taskAbortStatus
			}
			if !cmd.state.CompareAndSwap(s, s|flags) {
				continue
			}
			n++
			if s == taskExec && cmd.task.CDB[0] != opSanitize && !quiet {
				executing = append(executing, cmd)
				break
			}
			delete(c.tasks, itt)
			if wantStatus && (s != taskExec || quiet) {
				answer = append(answer, cmd)
			}
			break
		}
	}
	c.mu.Unlock()
	// Outside the lock: the writer takes c.mu to release commands, and
	// a full queue waits for it.
	for _, cmd := range answer {
		c.send(outMsg{kind: outAborted, cmd: cmd})
	}
	return n, executing
}

// waitAborted returns when none of cmds (tasks of c) executes any more.
func (c *conn) waitAborted(cmds []*command) {
	if len(cmds) == 0 {
		return
	}
	c.mu.Lock()
	for _, cmd := range cmds {
		for abortedWhile(cmd.state.Load(), taskExec) {
			c.aborted.Wait()
		}
	}
	c.mu.Unlock()
}

// abortStatus says which of c's tasks complete with TASK ABORTED status
// when another I_T nexus aborts them: those on an LU whose Control mode
// page has TAS set (SPC-4 7.5.8). An Executor that cannot say has TAS=0.
func (c *conn) abortStatus(cmd *command) bool {
	r, ok := c.exec.(TASReporter)
	return ok && r.TaskAbortedStatus(cmd.task.LUN)
}

// onTMF performs a Task Management Function Request (RFC 7143 sections
// 11.5 and 11.6, SAM-5 section 7). It runs on the reader, in CmdSN order
// unless immediate, and answers only after the affected tasks can no
// longer touch the medium. This nexus's own aborted tasks end without a
// response (section 4.2.3.4: the TMF response concludes them); those of
// other sessions complete with TASK ABORTED status where TAS is set
// (abortTarget). A cold reset ends the connection (errColdReset).
func (c *conn) onTMF(req *pdu.PDU) error {
	b := &req.BHS
	fn := b.Function()
	lun, lunOK := scsi.DecodeLUN(b.LUN())
	resp := byte(pdu.TMFRespComplete)
	cold := false
	switch fn {
	case pdu.TMFAbortTask:
		var err error
		if resp, err = c.abortTask(b); err != nil {
			return err
		}
	case pdu.TMFAbortTaskSet, pdu.TMFClearTaskSet, pdu.TMFLogicalUnitReset:
		if !lunOK || !c.hasLUN(lun) {
			resp = pdu.TMFRespNoLUN
			break
		}
		onLUN := func(cmd *command) bool { return cmd.task.LUN == lun }
		switch fn {
		case pdu.TMFAbortTaskSet:
			// This I_T nexus's tasks on the LU only (SAM-5 7.3).
			_, ex := c.abortWhere(onLUN, nil)
			c.waitAborted(ex)
		case pdu.TMFClearTaskSet:
			// Every nexus's tasks on the LU (SAM-5 7.4); the others
			// learn it from a unit attention.
			victims := c.srv.abortTarget(c.sess.TargetName, onLUN, c)
			c.taskManager().TasksCleared(lun, &c.nexus, othersThan(victims, &c.nexus))
		default:
			// SAM-5 7.7: abort every task of the LU, then reset it.
			c.srv.abortTarget(c.sess.TargetName, onLUN, c)
			c.taskManager().Reset(lun, tscsi.LUReset, &c.nexus)
		}
	case pdu.TMFTargetWarmReset, pdu.TMFTargetColdReset:
		// SAM-5 7.9/7.10 via RFC 7143 11.5.1: every task of every LU of
		// the target, from every session.
		c.srv.abortTarget(c.sess.TargetName, func(*command) bool { return true }, c)
		if fn == pdu.TMFTargetWarmReset {
			c.taskManager().Reset(0, tscsi.WarmReset, &c.nexus)
		} else {
			c.taskManager().Reset(0, tscsi.ColdReset, &c.nexus)
			cold = true
		}
	case pdu.TMFClearACA:
		// tandem never establishes an ACA (NACA=1 is refused).
		resp = pdu.TMFRespNotSupported
	case pdu.TMFTaskReassign:
		// Task reassignment needs ErrorRecoveryLevel 2 (RFC 7143
		// section 11.5.1); tandem runs at 0.
		resp = pdu.TMFRespNoReassign
	default:
		resp = pdu.TMFRespRejected
	}
	c.log.Info("task management", "function", fn, "lun", lun, "response", resp)
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpTaskMgmtResp)
	p.BHS.SetFlags(pdu.FlagFinal)
	p.BHS.SetResponse(resp)
	p.BHS.SetITT(b.ITT())
	c.send(outMsg{kind: outPDU, p: p, stat: true, closeAfter: cold})
	if cold {
		// A cold reset is a power cycle: every connection to the target
		// goes, this one after its response (RFC 7143 section 11.5.1).
		c.srv.dropTarget(c.sess.TargetName, c)
		return errColdReset
	}
	return nil
}

// abortTask performs ABORT TASK on this session's task b names. The
// answer follows RFC 7143 section 11.6.1: "Function complete" for a task
// in the task table (aborted now, or earlier and still executing) and for
// a RefCmdSN in the window not received yet; "Task does not exist" for a
// task that completed or whose abort completed it, which are no longer in
// the task set. Both codes are SAM-5's FUNCTION COMPLETE (the RFC maps
// responses 0 and 1 to it), and the task's own status (GOOD, or TASK
// ABORTED after another nexus aborted it) is queued on this connection
// before this TMF response, so the initiator has seen the task end when
// it reads "Task does not exist".
func (c *conn) abortTask(b *pdu.BHS) (byte, error) {
	ref := b.ReferencedTaskTag()
	c.mu.Lock()
	cmd := c.tasks[ref]
	c.mu.Unlock()
	if cmd != nil {
		n, ex := c.abortWhere(func(x *command) bool { return x == cmd }, nil)
		c.waitAborted(ex)
		if n > 0 || len(ex) > 0 {
			return pdu.TMFRespComplete, nil
		}
		// Its response is already queued: it completed.
		return pdu.TMFRespNoTask, nil
	}
	// RFC 7143 section 11.5.1: a task not received yet whose RefCmdSN is
	// in the window and before the TMF's own CmdSN counts as received
	// and aborted; anything else does not exist.
	refSN, exp := b.RefCmdSN(), c.expCmdSN.Load()
	if classifyCmdSN(refSN, exp, c.depth) != cmdDrop && snLess(refSN, b.CmdSN()) {
		if _, queued := c.pending[refSN]; !queued {
			c.pending[refSN] = pendingCmd{}
			return pdu.TMFRespComplete, c.drainPending()
		}
	}
	return pdu.TMFRespNoTask, nil
}

// hasLUN reports whether the target maps lun; executors that cannot say
// are assumed to map every LUN.
func (c *conn) hasLUN(lun uint64) bool {
	l, ok := c.exec.(interface{ LUNs() []uint64 })
	if !ok {
		return true
	}
	for _, n := range l.LUNs() {
		if n == lun {
			return true
		}
	}
	return false
}

func othersThan(all []*tscsi.Nexus, me *tscsi.Nexus) []*tscsi.Nexus {
	out := all[:0]
	for _, n := range all {
		if n != me {
			out = append(out, n)
		}
	}
	return out
}
