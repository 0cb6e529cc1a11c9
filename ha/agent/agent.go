// Package agent is tandem-agent's runtime around the pure state machine
// ha/fsm: it feeds the machine ticks of a clock, authenticated heartbeats
// from the links and the results of resource operations, and carries out
// the actions it returns (send heartbeats, run resource operations in
// goroutines with their timeouts, fence this node, log). All decisions are
// the machine's; this package only does I/O and bookkeeping (link
// last-seen, round-trip times, counters) for status and metrics.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/diskhb"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/heartbeat"
	"github.com/tandem-ha/tandem/ha/internal/clock"
	"github.com/tandem-ha/tandem/ha/internal/rt"
	"github.com/tandem-ha/tandem/ha/link"
	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/ha/resource/iscsi"
	"github.com/tandem-ha/tandem/initiator/device"
)

// Options are the agent's adapters; zero values pick production ones.
type Options struct {
	// Transports are the links in config order. Nil: opened from the
	// config with link.Open, delivering into Inbox.
	Transports []link.Transport
	// Inbox receives the transports' datagrams. Nil: made by New (then
	// Transports must be nil too).
	Inbox chan link.Datagram
	// Resources are the group in config order. Nil: built from the
	// config with resource.Build.
	Resources []resource.Resource
	// Fence fences this node; it may not return. Nil: FenceFunc(cfg.SelfFence).
	Fence func(reason string)
	// Clock is the time source. Nil: the system clock.
	Clock clock.Clock
	// Boot is this run's boot generation, which must grow from one run to
	// the next so the peer's replay filter accepts the new run. Zero: the
	// wall clock in nanoseconds at New.
	Boot uint64
	// Arbiter is the disk heartbeat's LUN (tests); nil: opened from
	// cfg.DiskHeartbeat with OpenArbiter when that is enabled. Setting it
	// turns the disk heartbeat on.
	Arbiter device.Device
	// OpenArbiter opens the arbiter from the config; nil: openArbiter.
	OpenArbiter func(ctx context.Context) (device.Device, error)
	// OnResourceOp observes each finished resource operation (metrics).
	OnResourceOp func(name string, op string, d time.Duration, err error)
	// OnHeartbeatGap observes the time between two consecutive heartbeats
	// of the peer on a link (metrics); called from the loop.
	OnHeartbeatGap func(link string, d time.Duration)
	// OnLateness observes how late the loop woke for a deadline of the
	// machine (a heartbeat send, a verdict): this node's scheduling delay.
	OnLateness func(d time.Duration)
	// Realtime runs the heartbeat path (the loop, which sends, and the link
	// receivers) on threads with SCHED_RR and locks the agent's memory
	// (ha/internal/rt). Refused for lack of privilege, it is logged once at
	// info and the agent runs at normal priority.
	Realtime bool
	// Log receives the agent's log lines; nil discards.
	Log *slog.Logger
}

// Agent runs one node.
type Agent struct {
	cfg   *config.Config
	opt   Options
	log   *slog.Logger
	clk   clock.Clock
	start time.Time

	m      *fsm.Machine
	filter *heartbeat.Filter
	links  []link.Transport
	res    []resource.Resource
	byName map[string]int

	inbox   chan link.Datagram
	results chan fsm.ResourceResult
	disk    chan diskhb.Result
	dhb     *diskhb.Runner
	// env is the group's resource.Env: the agent publishes cluster, node,
	// key and the fenced flag; resources publish devices and the fence's
	// last answer.
	env  *resource.Env
	key  uint64
	cmds chan cmdReq
	done chan struct{}
	// wake fires at the machine's next deadline (fsm.Machine.NextDeadline):
	// the peer is declared dead at last heard + deadtime, not on the next
	// periodic tick. wakeAt is the armed deadline, wakeStop disarms it.
	wake     chan time.Duration // the deadline that fired
	wakeAt   time.Duration
	wakeStop func() bool
	// The persisted storage-fenced marker (persistFenced): marker is the
	// last reason handed to the writer, markerSeq its number (loop-owned);
	// markerDone is the last number written (under markerMu).
	marker     string
	markerSeq  uint64
	markerMu   sync.Mutex
	markerDone uint64
	markerWG   sync.WaitGroup
	rtRefused  sync.Once // the realtime refusal is logged once

	// Loop-owned state.
	round   uint64
	buf     []byte
	running map[string]bool // resource operations in flight, by name

	mu    sync.Mutex // guards what Status reads
	ls    []linkState
	rs    []resState
	boot  uint64
	state fsm.Status
	ds    diskState
}

type linkState struct {
	lastSeen   time.Time     // wall time of the last accepted heartbeat
	lastSeenAt time.Duration // agent time of the same
	lastSeq    uint64
	peerBoot   uint64
	peerSentAt int64 // for the echo
	rtt        time.Duration
}

type resState struct {
	lastErr string
	// lastFailure is lastErr's last non-empty value, never cleared by a
	// success: the stop after a failed start must not erase why a node
	// is Failed.
	lastFailure string
}

type cmdReq struct {
	kind fsm.CommandKind
	pre  []fsm.Event // stepped before the command (rejoin: the holder)
	done chan error
}

// Boot is this run's boot generation (Options.Boot or the clock at New).
func (a *Agent) Boot() uint64 { return a.boot }

// New builds an agent from a validated config.
func New(cfg *config.Config, opt Options) (*Agent, error) {
	a := &Agent{cfg: cfg, opt: opt, log: opt.Log, clk: opt.Clock}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("node", cfg.Node)
	if a.clk == nil {
		a.clk = clock.Real{}
	}
	a.start = a.clk.Now()
	a.boot = opt.Boot
	if a.boot == 0 {
		a.boot = uint64(time.Now().UnixNano())
	}
	arbiter := opt.Arbiter != nil || cfg.DiskHeartbeat.Enabled()
	mc := machineConfig(cfg, arbiter)
	var err error
	if mc.FencedBy, err = readFenced(cfg.StateDir); err != nil {
		return nil, err
	}
	a.marker = mc.FencedBy
	m, err := fsm.New(mc)
	if err != nil {
		return nil, fmt.Errorf("state machine: %w", err)
	}
	a.m = m
	a.filter = heartbeat.NewFilter(cfg.Cluster, cfg.Node)
	a.key = fence.Key(cfg.Cluster, cfg.Node)
	a.env = groupEnv(cfg)
	if arbiter {
		a.dhb, err = diskhb.New(diskhb.Config{Device: opt.Arbiter, Cluster: cfg.Cluster, Nodes: cfg.Nodes,
			Self: cfg.Node, Boot: a.boot, BaseLBA: cfg.DiskHeartbeat.BaseLBA, Keepalive: cfg.Timing.Keepalive,
			Clock: a.clk, Log: a.log.With("medium", "disk"), State: func() uint8 {
				a.mu.Lock()
				defer a.mu.Unlock()
				return uint8(a.state.State)
			}})
		if err != nil {
			return nil, fmt.Errorf("disk heartbeat: %w", err)
		}
		a.disk = make(chan diskhb.Result, 1)
		if a.opt.OpenArbiter == nil {
			a.opt.OpenArbiter = func(ctx context.Context) (device.Device, error) { return openArbiter(ctx, cfg) }
		}
	}

	if a.res, err = buildGroup(cfg, opt.Resources, a.log); err != nil {
		return nil, err
	}
	a.byName = map[string]int{}
	for i, s := range cfg.Resources {
		a.byName[s.Name] = i
	}
	a.rs = make([]resState, len(a.res))
	a.running = map[string]bool{}

	a.inbox = opt.Inbox
	a.links = opt.Transports
	if a.links == nil {
		if a.inbox == nil {
			a.inbox = make(chan link.Datagram, 64*len(cfg.Links))
		}
		var lopts []link.Option
		if opt.Realtime {
			lopts = append(lopts, link.WithReceiverSetup(func() { a.rtThread("link receiver") }))
		}
		for i, l := range cfg.Links {
			t, err := link.Open(i, l, a.inbox, a.log, lopts...)
			if err != nil {
				a.closeLinks()
				return nil, err
			}
			a.links = append(a.links, t)
		}
	}
	if a.inbox == nil || len(a.links) != len(cfg.Links) {
		a.closeLinks()
		return nil, errors.New("agent: Options.Transports must match config links and come with Options.Inbox")
	}
	a.ls = make([]linkState, len(a.links))
	a.results = make(chan fsm.ResourceResult, 2*len(a.res)+1)
	a.cmds = make(chan cmdReq)
	a.wake = make(chan time.Duration, 1)
	a.done = make(chan struct{})
	if a.opt.Fence == nil {
		a.opt.Fence = FenceFunc(cfg.SelfFence, a.log)
	}
	a.state = m.Status()
	return a, nil
}

// machineConfig is the state machine's view of cfg, for the agent and the
// guard's Release alike.
func machineConfig(cfg *config.Config, arbiter bool) fsm.Config {
	rcs := make([]fsm.ResourceConfig, len(cfg.Resources))
	for i, s := range cfg.Resources {
		rcs[i] = fsm.ResourceConfig{Name: s.Name, MonitorInterval: s.Monitor.Interval,
			MonitorTimeout: s.Monitor.Timeout, StartTimeout: s.StartTimeout,
			StopTimeout: s.StopTimeout, MaxRestarts: s.MaxRestarts, Fence: s.Type == fence.Type}
	}
	return fsm.Config{Self: cfg.Node, Peer: cfg.Peer, Preferred: cfg.Failback.Preferred,
		AutoFailback: cfg.Failback.AutoFailback, Keepalive: cfg.Timing.Keepalive,
		DeadTime: cfg.Timing.DeadTime, InitDead: cfg.Timing.InitDead, Links: len(cfg.Links),
		Resources: rcs, Arbiter: arbiter}
}

// groupEnv is the group's resource.Env with what the agent publishes:
// cluster, node and this node's reservation key.
func groupEnv(cfg *config.Config) *resource.Env {
	env := resource.NewEnv()
	env.Set(fence.ClusterKey, cfg.Cluster)
	env.Set(fence.NodeKey, cfg.Node)
	env.Set(iscsi.KeyEnvKey, fence.FormatKey(fence.Key(cfg.Cluster, cfg.Node)))
	return env
}

// buildGroup returns given (tests), or the group built from cfg.
func buildGroup(cfg *config.Config, given []resource.Resource, log *slog.Logger) ([]resource.Resource, error) {
	res := given
	if res == nil {
		for _, s := range cfg.Resources {
			r, err := resource.Build(s, log)
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", s.Name, err)
			}
			res = append(res, r)
		}
	}
	if len(res) != len(cfg.Resources) {
		return nil, fmt.Errorf("agent: %d resources given for %d configured", len(res), len(cfg.Resources))
	}
	return res, nil
}

func (a *Agent) closeLinks() {
	for _, t := range a.links {
		t.Close()
	}
}

// now is the machine's time: monotonic, since New.
func (a *Agent) now() time.Duration { return a.clk.Now().Sub(a.start) }

// tickEvery is the backstop tick period; the deadlines themselves are
// stepped at the instant the machine names (arm).
func (a *Agent) tickEvery() time.Duration {
	d := a.cfg.Timing.Keepalive / 4
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// Run runs the agent until ctx ends, then gives the group away: it asks the
// machine for standby (the peer takes over at once instead of after
// deadtime) and stops whatever still runs, in reverse order.
func (a *Agent) Run(ctx context.Context) error {
	defer close(a.done)
	defer a.markerWG.Wait() // the fenced marker is on disk before Run returns
	defer a.closeLinks()
	a.log.Info("agent starting", "cluster", a.cfg.Cluster, "peer", a.cfg.Peer, "links", len(a.links),
		"resources", len(a.res), "keepalive", a.cfg.Timing.Keepalive, "deadtime", a.cfg.Timing.DeadTime,
		"initdead", a.cfg.Timing.InitDead, "boot", a.boot)
	if a.opt.Realtime {
		a.realtime()
	}
	tick := a.clk.NewTicker(a.tickEvery())
	defer tick.Stop()
	defer a.arm(0, false)
	a.step(fsm.Tick{Now: a.now()})
	if a.dhb != nil {
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go a.runDisk(dctx)
	}
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case r := <-a.disk:
			a.diskResult(r)
		case <-tick.C():
			a.step(fsm.Tick{Now: a.now()})
		case at := <-a.wake:
			now := a.now()
			if a.opt.OnLateness != nil {
				a.opt.OnLateness(now - at)
			}
			a.step(fsm.Tick{Now: now})
		case d := <-a.inbox:
			a.receive(d)
		case r := <-a.results:
			a.finished(r)
		case c := <-a.cmds:
			c.done <- a.handle(c)
		}
	}
}

// ShutdownGrace bounds how long Run waits, after its context ends, for the
// machine to hand the group over before stopping resources directly.
const ShutdownGrace = 3 * time.Second

func (a *Agent) shutdown() error {
	a.log.Info("agent stopping: handing the group over")
	grace := ShutdownGrace
	if err := refusal(a.step(fsm.Command{Kind: fsm.CmdStandby})); err != nil {
		// No peer to hand over to: stop the group ourselves right away.
		a.log.Warn("no hand-over on shutdown", "err", err)
		grace = 0
	}
	deadline := a.now() + grace
	tick := a.clk.NewTicker(a.tickEvery())
	defer tick.Stop()
	for grace > 0 && a.busy() && a.now() < deadline {
		select {
		case <-tick.C():
			a.step(fsm.Tick{Now: a.now()})
		case <-a.wake:
			a.step(fsm.Tick{Now: a.now()})
		case d := <-a.inbox:
			a.receive(d)
		case r := <-a.results:
			a.finished(r)
		}
	}
	// Whatever the machine did, nothing may keep running after we exit:
	// stop everything in reverse order (Stop is idempotent).
	var errs []error
	for i := len(a.res) - 1; i >= 0; i-- {
		s := a.cfg.Resources[i]
		ctx, cancel := clock.WithTimeout(resource.WithEnv(context.Background(), a.env), a.clk, s.StopTimeout)
		err := a.res[i].Stop(ctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Error("agent stopped with resources that failed to stop", "err", err)
		return err
	}
	a.log.Info("agent stopped")
	return nil
}

// busy is true while the machine still holds or moves resources.
func (a *Agent) busy() bool {
	if len(a.running) > 0 {
		return true
	}
	switch a.state.State {
	case fsm.Active, fsm.Starting, fsm.Stopping:
		return true
	}
	return false
}

// Command hands an operator command to the machine.
func (a *Agent) Command(ctx context.Context, c control.Command) error {
	req, err := a.request(ctx, c)
	if err != nil {
		return err
	}
	select {
	case a.cmds <- req:
	case <-a.done:
		return errors.New("agent is stopping")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-a.done:
		return errors.New("agent is stopping")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// request prepares operator command c for the loop (handle): rejoin
// first reads who holds the reservation.
func (a *Agent) request(ctx context.Context, c control.Command) (cmdReq, error) {
	var k fsm.CommandKind
	switch c {
	case control.CmdStandby:
		k = fsm.CmdStandby
	case control.CmdTakeover:
		k = fsm.CmdTakeover
	case control.CmdMaintenanceOn:
		k = fsm.CmdMaintenanceOn
	case control.CmdMaintenanceOff:
		k = fsm.CmdMaintenanceOff
	case control.CmdRejoin:
		k = fsm.CmdRejoin
	default:
		return cmdReq{}, fmt.Errorf("%w %q", control.ErrUnknownCommand, c)
	}
	req := cmdReq{kind: k, done: make(chan error, 1)}
	if k == fsm.CmdRejoin {
		h, err := a.holder(ctx)
		if err != nil {
			return cmdReq{}, fmt.Errorf("rejoin: cannot read who holds the reservation: %w", err)
		}
		req.pre = append(req.pre, fsm.ReservationHolder{Node: h})
	}
	return req, nil
}

// handle steps a command in the loop and returns the machine's refusal.
func (a *Agent) handle(c cmdReq) error {
	for _, ev := range c.pre {
		a.step(ev)
	}
	return refusal(a.step(fsm.Command{Kind: c.kind}))
}

// step feeds one event to the machine and carries out its actions, which
// it returns.
func (a *Agent) step(ev fsm.Event) []fsm.Action {
	a.mu.Lock()
	acts := a.m.Step(ev)
	a.state = a.m.Status()
	fenced := a.state.State == fsm.Fenced
	at, ok := a.m.NextDeadline()
	marker := ""
	if a.state.StorageFenced {
		marker = a.state.FencedBy
	}
	a.mu.Unlock()
	a.arm(at, ok)
	a.persistFenced(marker)
	// A fenced node never registers its key again on its own (the iscsi
	// resource's re-registration reads this before deciding).
	if fenced {
		a.env.Set(iscsi.FencedKey, "true")
	} else {
		a.env.Delete(iscsi.FencedKey)
	}
	for _, act := range acts {
		a.do(act)
	}
	return acts
}

// arm schedules a wake-up at the machine's next deadline (at, machine
// time), replacing an earlier one. The timer fires no earlier than at, so
// the Tick it causes is at or after the deadline.
func (a *Agent) arm(at time.Duration, ok bool) {
	if ok && at == a.wakeAt && a.wakeStop != nil {
		return
	}
	if a.wakeStop != nil {
		a.wakeStop()
		a.wakeStop = nil
	}
	a.wakeAt = at
	if !ok {
		return
	}
	a.wakeStop = a.clk.AfterFunc(max(at-a.now(), 0), func() {
		select {
		case a.wake <- at:
		default: // a wake-up is already pending
		}
	})
}

// refusal turns the machine's "command refused" notice into an error for
// the operator.
func refusal(acts []fsm.Action) error {
	for _, act := range acts {
		n, ok := act.(fsm.Notify)
		if !ok || n.Msg != "command refused" {
			continue
		}
		for i := 0; i+1 < len(n.Attrs); i += 2 {
			if n.Attrs[i] == "reason" {
				return fmt.Errorf("command refused: %v", n.Attrs[i+1])
			}
		}
		return errors.New("command refused")
	}
	return nil
}

func (a *Agent) do(act fsm.Action) {
	switch act := act.(type) {
	case fsm.SendHeartbeat:
		a.send(act.State, act.Flags)
	case fsm.RunResource:
		a.runResource(act)
	case fsm.SelfFence:
		a.log.Error("SELF-FENCE", "reason", act.Reason, "storage_fenced", act.Storage, "action", a.cfg.SelfFence.Action)
		a.opt.Fence(act.Reason)
	case fsm.Notify:
		a.log.Log(context.Background(), act.Level, act.Msg, act.Attrs...)
	case fsm.Reannounce:
		a.reannounce()
	default:
		a.log.Warn("unknown action from the state machine", "action", fmt.Sprintf("%T", act))
	}
}

func (a *Agent) runResource(act fsm.RunResource) {
	i, ok := a.byName[act.Name]
	if !ok {
		a.log.Error("state machine named an unknown resource", "resource", act.Name)
		return
	}
	r := a.res[i]
	a.running[act.Name] = true
	a.log.Debug("resource operation", "resource", act.Name, "op", opName(act.Op), "timeout", act.Timeout)
	go func() {
		t0 := a.clk.Now()
		res := runOp(resource.WithEnv(context.Background(), a.env), a.clk, r, act)
		if a.opt.OnResourceOp != nil {
			a.opt.OnResourceOp(act.Name, opName(act.Op), a.clk.Now().Sub(t0), res.Err)
		}
		select {
		case a.results <- res:
		case <-a.done:
		}
	}()
}

// AnnounceTimeout bounds one resource's re-announcement (resource.Announcer).
const AnnounceTimeout = 5 * time.Second

// reannounce asks every resource.Announcer of the group to announce itself
// again, in the background: the loop (and the heartbeat) never waits on
// it. It is not a machine operation: no result comes back.
func (a *Agent) reannounce() {
	for i, r := range a.res {
		an, ok := r.(resource.Announcer)
		if !ok {
			continue
		}
		name := a.cfg.Resources[i].Name
		go func() {
			ctx, cancel := clock.WithTimeout(resource.WithEnv(context.Background(), a.env), a.clk, AnnounceTimeout)
			defer cancel()
			if err := an.Announce(ctx); err != nil {
				a.log.Warn("re-announce failed: neighbours learn the address on their next ARP refresh", "resource", name, "err", err)
			}
		}()
	}
}

// runOp carries out one resource operation of the machine within its
// timeout on clk (a minute when the machine gives none): the running
// agent and the guard's Release share it.
func runOp(ctx context.Context, clk clock.Clock, r resource.Resource, act fsm.RunResource) fsm.ResourceResult {
	timeout := act.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := clock.WithTimeout(ctx, clk, timeout)
	defer cancel()
	res := fsm.ResourceResult{Name: act.Name, Op: act.Op, Status: fsm.ResStopped}
	switch act.Op {
	case fsm.OpStart:
		res.Err = r.Start(ctx)
	case fsm.OpStop:
		res.Err = r.Stop(ctx)
	case fsm.OpMonitor:
		var st resource.Status
		st, res.Err = r.Monitor(ctx)
		res.Status = resStatus(st)
	case fsm.OpForceStop:
		if f, ok := r.(resource.Forcer); ok {
			res.Err = f.ForceStop(ctx)
		} // not a Forcer: nothing to escalate, report success (fsm.OpForceStop)
	}
	if res.Err == nil && ctx.Err() != nil {
		res.Err = context.Cause(ctx)
	}
	res.Fenced = res.Err != nil && errors.Is(res.Err, resource.ErrFenced)
	return res
}

func (a *Agent) finished(r fsm.ResourceResult) {
	delete(a.running, r.Name)
	if i, ok := a.byName[r.Name]; ok {
		a.mu.Lock()
		if r.Err != nil {
			a.rs[i].lastErr = fmt.Sprintf("%s: %v", opName(r.Op), r.Err)
			a.rs[i].lastFailure = a.rs[i].lastErr
		} else if r.Op != fsm.OpMonitor || r.Status == fsm.ResRunning {
			a.rs[i].lastErr = ""
		}
		a.mu.Unlock()
	}
	if r.Err != nil {
		a.log.Warn("resource operation failed", "resource", r.Name, "op", opName(r.Op), "err", r.Err)
	}
	a.step(r)
}

func resStatus(s resource.Status) fsm.ResStatus {
	switch s {
	case resource.StatusRunning:
		return fsm.ResRunning
	case resource.StatusStopped:
		return fsm.ResStopped
	}
	return fsm.ResFailed
}

func opName(op fsm.Op) string {
	switch op {
	case fsm.OpStart:
		return "start"
	case fsm.OpStop:
		return "stop"
	case fsm.OpMonitor:
		return "monitor"
	case fsm.OpForceStop:
		return "force-stop"
	}
	return fmt.Sprintf("op%d", int(op))
}

// holderReader is implemented by the fence resource (fence.Fence.Holder).
type holderReader interface {
	Holder(ctx context.Context) (uint64, error)
}

// holder reads who holds the reservation through the group's fence
// resource and names the node ("" none; the hex key for a stranger).
func (a *Agent) holder(ctx context.Context) (string, error) {
	for _, r := range a.res {
		h, ok := r.(holderReader)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(resource.WithEnv(ctx, a.env), a.cfg.Timing.InitDead)
		defer cancel()
		k, err := h.Holder(ctx)
		if err != nil {
			return "", err
		}
		return a.nodeOfKey(k), nil
	}
	return "", errors.New("no fence resource in the group")
}

// nodeOfKey names the node whose derived key is k.
func (a *Agent) nodeOfKey(k uint64) string {
	switch k {
	case 0:
		return ""
	case fence.Key(a.cfg.Cluster, a.cfg.Node):
		return a.cfg.Node
	case fence.Key(a.cfg.Cluster, a.cfg.Peer):
		return a.cfg.Peer
	}
	return fence.FormatKey(k)
}

// realtime locks the agent's memory and puts the loop's thread (it sends
// the heartbeats and feeds the machine) under SCHED_RR. Resource
// operations, the disk heartbeat and the fenced marker run in goroutines
// of their own, never on this thread.
func (a *Agent) realtime() {
	if err := rt.LockMemory(); err != nil {
		a.rtRefusal(err)
	}
	a.rtThread("loop")
}

// rtThread gives the calling goroutine a realtime thread of its own.
func (a *Agent) rtThread(what string) {
	if err := rt.Thread(); err != nil {
		a.rtRefusal(err)
		return
	}
	a.log.Debug("realtime thread", "thread", what, "policy", "SCHED_RR", "priority", rt.Priority)
}

func (a *Agent) rtRefusal(err error) {
	a.rtRefused.Do(func() {
		a.log.Info("realtime scheduling or memory locking not permitted: heartbeats run at normal priority", "err", err)
	})
}
