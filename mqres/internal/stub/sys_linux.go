package stub

import "syscall"

// detached puts the queue manager in its own session: it must outlive
// strmqm and escape the process-group kill of a timed-out strmqm.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
