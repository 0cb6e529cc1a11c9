package rt

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Thread wires the calling goroutine to its OS thread for the rest of its
// life (runtime.LockOSThread: the thread ends with the goroutine, so no
// other goroutine ever inherits the policy) and gives that thread
// SCHED_RR at Priority.
func Thread() error {
	runtime.LockOSThread()
	attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: Priority}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("sched_setattr SCHED_RR %d: %w (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of %d)", Priority, err, Priority)
	}
	return nil
}

// LockMemory locks the process's current and future pages in RAM as they
// are touched (MCL_ONFAULT, Linux >= 4.4): a page the agent uses is never
// swapped out, and the Go runtime's large reservations are not made
// resident up front (without ONFAULT the agent's RSS was about 200 MiB).
// A kernel without MCL_ONFAULT gets the plain lock.
func LockMemory() error {
	err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
	}
	if err != nil {
		return fmt.Errorf("mlockall: %w (needs CAP_IPC_LOCK or a large RLIMIT_MEMLOCK)", err)
	}
	return nil
}
