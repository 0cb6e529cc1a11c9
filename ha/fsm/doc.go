// Package fsm is tandem-agent's failover state machine: a pure,
// deterministic core that decides, for one node of a two-node cluster, when
// to start, stop, restart, hand over or take over the resource group.
//
// It performs no I/O and reads no clock: its inputs are events (Tick,
// Heartbeat, DiskBeat, DiskStatus, ResourceResult, ReservationHolder,
// Command) and its outputs are actions
// (SendHeartbeat, RunResource, SelfFence, Notify), in the manner of etcd
// raft's RawNode. The same inputs always give the same outputs, which is
// what the scenario scripts in testdata/ and the property tests rely on.
//
// # The runtime's duties
//
// The runtime (ha/agent) wraps one Machine and must:
//
//  1. Create it with New(Config) from the validated configuration. Keep one
//     monotonic clock origin; every Now passed in is the time since then.
//  2. Call Step(Tick{Now}) at NextDeadline after every Step, and
//     periodically as a backstop (at least every Keepalive/2). Timing
//     decisions happen on ticks: the peer is declared dead at the first
//     tick at or after last-heard + DeadTime, so a tick at NextDeadline
//     declares it at the deadline itself, not up to a tick period late.
//  3. For every datagram received on link i: heartbeat.Filter.Receive it
//     (drops forged, foreign, looped-back and replayed ones), then
//     Step(Heartbeat{Link: i, Node, Boot, Seq, State, Flags, Now}).
//  4. Carry out the returned actions in order. SendHeartbeat: seal one
//     heartbeat.Message with State and Flags and send it on every link, each
//     copy with its own fresh Seq.
//  5. RunResource: run Op on the named resource in the background with a
//     context bounded by Timeout; when it ends, Step a ResourceResult with
//     the error (a timeout is an error) and, for OpMonitor, the status.
//     Every RunResource gets exactly one result. OpForceStop on a resource
//     that is not a resource.Forcer reports success.
//  6. SelfFence: stop acting and fence the node (production: reboot at once,
//     without stopping anything: a resource that cannot be stopped still
//     runs, and the peer takes over only once it declares this node dead).
//  7. Notify: log it with its Level, Msg and Attrs.
//  8. Pass operator commands as Step(Command{Kind}). Before CmdRejoin,
//     read who holds the reservation and Step(ReservationHolder{Node}).
//  9. Serialize all Steps (one goroutine, or a mutex): Machine is not safe
//     for concurrent use. Status() gives a snapshot for the control socket.
//  10. With an arbiter (Config.Arbiter), run the disk heartbeat: every
//     keepalive Step(DiskStatus{OK, Now}) for our slot's write and the
//     peer's read, and Step(DiskBeat{...}) when the peer's slot changed.
//     A ResourceResult whose Err matches resource.ErrFenced has Fenced set.
//
// # Rules
//
// A node starts the group only if the peer is declared dead, or the peer
// reports an idle state (Init, Standby, Failed) and one of: the peer yields
// (FlagYield), the peer handed the group over (seen holding, then Standby),
// or this node wins the tie (Preferred, else the lexically smaller name).
// It never starts while the peer reports Starting, Active, Stopping,
// Maintenance or Fenced, unless the peer is declared dead. A start decided
// while the peer is alive is a claim: the node reports Starting but runs
// nothing until the peer's heartbeats carry FlagAck ("I am idle and see you
// holding"); if both claim at once (stale views after lost datagrams) the
// tie loser withdraws. Every state or flag change is sent at once. The peer is
// alive while heard on at least one link within DeadTime, or, with an
// arbiter, while its disk slot changed within DeadTime (peerLive, the one
// place that rule lives), so cutting one link never fails over, nor does
// cutting every link while the disk shows the peer alive (a warning
// repeats every NetWarnEvery instead). With an arbiter, a node that hears
// its peer on no link while its own disk I/O has failed for DeadTime is
// isolated: it stops the group and starts nothing.
//
// # Storage fencing
//
// A result with Fenced (the fence resource found our key preempted) stops
// the group at once, each resource forced then stopped, failures logged
// and not escalated; the node is Fenced and, once stopped, emits
// SelfFence{Storage: true} and sends FlagYield, so the peer may take the
// group (its fence preempts first). Nothing restarts: only CmdRejoin,
// accepted when every resource is stopped and ReservationHolder names the
// peer, makes the node Standby again. A fence resource
// (ResourceConfig.Fence) whose start fails while the peer is dead is
// retried after a back-off (DeadTime doubling, up to MaxFenceBackoff), and
// nothing after it starts meanwhile.
//
// The group starts in order and stops in reverse. A monitor failure
// restarts the resource (stopping the ones after it first) up to
// MaxRestarts times, then the group fails over: stopped, and this node
// banned (FlagYield) until an operator command. A start failure stops what
// may run and fails over likewise. A stop failure escalates to OpForceStop,
// then OpStop again; if that fails the node fences itself.
//
// A released heartbeat (Heartbeat.Released: the peer's agent died and its
// guard stopped the group) makes the peer down at once, and this node
// takes the group as after a graceful hand-over, without deadtime.
//
// When both nodes hold the group (a healed partition) the tie winner keeps
// it and the other stops. If the winner still sees the peer holding after
// DeadTime, the peer cannot hear it (one-way failure) and the winner yields.
// With AutoFailback the group moves back to the Preferred node when it
// (re)joins idle. A starting agent first stops every resource (Stop is
// idempotent), reporting Stopping, then waits up to InitDead for the peer
// before taking the group alone.
package fsm
