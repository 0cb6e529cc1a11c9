// Package rt keeps the agent's heartbeat path in time on a busy node, as
// heartbeat and corosync do: the threads that send and receive heartbeats
// run with a realtime policy (SCHED_RR, sched(7)) and the process's memory
// is locked (mlockall(2)), so neither CPU-bound applications nor paging
// delay a heartbeat into a false failover. Both need privileges
// (CAP_SYS_NICE, CAP_IPC_LOCK or RLIMIT_MEMLOCK); callers log a refusal
// and run on.
package rt

import "errors"

// Priority is the SCHED_RR priority of heartbeat threads: above every
// normal task, below the kernel's own realtime threads (50 and up) and
// watchdog daemons (99), which must still preempt the agent.
const Priority = 10

// ErrUnsupported is returned where the platform has neither call.
var ErrUnsupported = errors.New("rt: realtime scheduling and memory locking are not supported on this platform")
