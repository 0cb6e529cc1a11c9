package iscsi

import (
	tscsi "github.com/tandem-ha/tandem/target/scsi"
)

// TaskManager is the SCSI layer's side of task management (SAM-5
// section 7); *scsi.Target implements it. The fabric aborts the tasks,
// then calls these for the SCSI effects. An Executor without it gets
// task aborts only. NexusLoss may come twice for one session end (when the
// transport goes and when its tasks have drained) and must be idempotent.
type TaskManager interface {
	Reset(lun uint64, kind tscsi.ResetKind, by *tscsi.Nexus)
	NexusLoss(n *tscsi.Nexus)
	TasksCleared(lun uint64, by *tscsi.Nexus, victims []*tscsi.Nexus)
}

// AborterSetter is implemented by an Executor (*scsi.Target) whose
// commands abort other tasks (PREEMPT AND ABORT); AddTarget registers the
// fabric's Aborter with it.
type AborterSetter interface {
	SetAborter(a tscsi.Aborter)
}

// TASReporter is implemented by an Executor (*scsi.Target) that says
// whether an LU's Control mode page has TAS set (SPC-4 7.5.8): then a task
// aborted by another I_T nexus (PREEMPT AND ABORT, CLEAR TASK SET, LOGICAL
// UNIT RESET, TARGET WARM RESET) completes with TASK ABORTED status
// instead of ending without a response. An Executor without it has TAS=0.
type TASReporter interface {
	TaskAbortedStatus(lun uint64) bool
}

// ReadOnlyReporter is implemented by an Executor (*scsi.Target) that
// says which commands cannot change the medium or the LU (reads,
// inquiries). Task management does not wait for such a task to leave the
// backend before it answers: the abort is complete once the task can no
// longer touch the medium, which a read never does, so a disk that takes
// seconds per read delays no ABORT TASK or LUN RESET. An Executor without
// it has every executing task waited for.
type ReadOnlyReporter interface {
	ReadOnly(cdb []byte) bool
}

// readOnly reports whether cmd, executing, need not be waited for.
func (c *conn) readOnly(cmd *command) bool {
	r, ok := c.exec.(ReadOnlyReporter)
	return ok && r.ReadOnly(cmd.task.CDB)
}

type noTaskManager struct{}

func (noTaskManager) Reset(uint64, tscsi.ResetKind, *tscsi.Nexus)       {}
func (noTaskManager) NexusLoss(*tscsi.Nexus)                            {}
func (noTaskManager) TasksCleared(uint64, *tscsi.Nexus, []*tscsi.Nexus) {}

func (c *conn) taskManager() TaskManager {
	if tm, ok := c.exec.(TaskManager); ok {
		return tm
	}
	return noTaskManager{}
}
