package vmlab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/e2e/labcheck"
	"github.com/tandem-ha/tandem/e2e/mqclient"
	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/target/audit"
)

// Scenario is one fault injected into a running lab.
type Scenario struct {
	Name string
	// Failover: the group is expected on the other node afterwards;
	// false: it stays where it was.
	Failover bool
	// Inject injects the fault into the lab whose active node is active
	// and returns when it is in place; Heal (may be nil) undoes it.
	Inject func(ctx context.Context, l *Lab, active int) error
	Heal   func(ctx context.Context, l *Lab, active int) error
	// Hold is how long the fault lasts before Heal.
	Hold time.Duration
	// HealLate heals only after the first ack after the fault (a fault
	// the service must get around while it lasts).
	HealLate bool
}

// Scenarios are the faults the lab knows, by name.
var Scenarios = map[string]Scenario{
	"power-off": {Name: "power-off", Failover: true,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.PowerOff(a) }},
	"heartbeat-cut": {Name: "heartbeat-cut", Failover: false, Hold: 5 * time.Second,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.SetHeartbeatLinks(ctx, false) },
		Heal:   func(ctx context.Context, l *Lab, a int) error { return l.SetHeartbeatLinks(ctx, true) }},
	// The guard releases the group of a killed agent: a failover as fast
	// as a graceful standby, and never dual active.
	"kill-agent": {Name: "kill-agent", Failover: true,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.KillAgent(ctx, a) }},
	// The active node loses the client and the storage, not the peer.
	"public-cut": {Name: "public-cut", Failover: true, HealLate: true,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.SetPublicLink(ctx, a, false) },
		Heal:   func(ctx context.Context, l *Lab, a int) error { return l.SetPublicLink(ctx, a, true) }},
	// Split brain: both node-to-node paths gone, the storage reachable
	// from both; the fence must let exactly one node write.
	"node-links-cut": {Name: "node-links-cut", Failover: true, Hold: 10 * time.Second,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.SetNodeLinks(ctx, false) },
		Heal:   func(ctx context.Context, l *Lab, a int) error { return l.SetNodeLinks(ctx, true) }},
	"target-restart": {Name: "target-restart", Failover: false,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.RestartTarget(ctx) }},
	// The queue manager dies: the agent restarts it in place.
	"mq-kill": {Name: "mq-kill", Failover: false,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.KillQueueManager(ctx, a) }},
	"standby": {Name: "standby", Failover: true,
		Inject: func(ctx context.Context, l *Lab, a int) error { return l.Standby(ctx, a) }},
}

// ScenarioNames are every scenario, in the report's order.
var ScenarioNames = []string{"power-off", "heartbeat-cut", "kill-agent", "public-cut", "node-links-cut",
	"target-restart", "mq-kill", "standby"}

// KillAgent kill -9s node i's agent (its guard stays).
func (l *Lab) KillAgent(ctx context.Context, i int) error {
	l.Events.Lab("kill -9 agent", "node", NodeNames[i])
	_, err := l.Sh(ctx, i, "kill -9 $(cat /run/agent.pid)", nil)
	return err
}

// SetPublicLink sets node i's public NIC's link (the guest sees carrier go).
func (l *Lab) SetPublicLink(ctx context.Context, i int, up bool) error {
	state := map[bool]string{false: "off", true: "on"}[up]
	l.Events.Lab("public link "+state, "node", NodeNames[i])
	g := l.guest(i)
	if g == nil {
		return fmt.Errorf("vmlab: %s is not running", GuestNames[i])
	}
	_, err := g.Monitor(ctx, "set_link net0 "+state)
	return err
}

// SetNodeLinks cuts (or heals) every path between the two nodes: the
// heartbeat links, and on the public bridge the traffic between the
// nodes' taps (nftables in the lab namespace), so the storage and the
// client still reach both.
func (l *Lab) SetNodeLinks(ctx context.Context, up bool) error {
	body := ""
	if !up {
		body = fmt.Sprintf(`	chain nodecut {
		type filter hook forward priority 0; policy accept;
		iifname %[1]q oifname %[2]q drop
		iifname %[2]q oifname %[1]q drop
	}
`, PublicTap(Master), PublicTap(Slave))
	}
	l.Events.Lab("node-to-node public path " + map[bool]string{false: "cut", true: "healed"}[up])
	if err := l.net.SetTable("lab", "bridge", "tdml_nodecut", body); err != nil {
		return err
	}
	return l.SetHeartbeatLinks(ctx, up)
}

// RestartTarget kill -9s tandem-target in the storage guest and starts it
// again on the same state directory.
func (l *Lab) RestartTarget(ctx context.Context) error {
	l.Events.Lab("kill -9 tandem-target and restart it")
	_, err := l.Sh(ctx, Storage, "kill -9 $(cat /run/target.pid)\n"+startTarget, nil)
	if err == nil {
		l.Events.Lab("tandem-target listening again")
	}
	return err
}

// KillQueueManager kill -9s the queue manager's process on node i (its
// pid from the stand-in's status file on the shared filesystem).
func (l *Lab) KillQueueManager(ctx context.Context, i int) error {
	l.Events.Lab("kill -9 queue manager", "node", NodeNames[i])
	_, err := l.Sh(ctx, i, fmt.Sprintf(`f=$(find %s -name qmstatus | head -1)
p=$(sed -n 's/^pid=//p' "$f")
[ -n "$p" ] || { echo "no queue manager pid in $f" >&2; exit 1; }
kill -9 $p`, SharedDir), nil)
	return err
}

// Standby asks node i's agent to hand the group over (tandemctl standby).
func (l *Lab) Standby(ctx context.Context, i int) error {
	l.Events.Lab("tandemctl standby", "node", NodeNames[i])
	_, err := l.Sh(ctx, i, "tandemctl --socket /run/tandem/agent.sock standby", nil)
	return err
}

// Peer is the other node.
func Peer(i int) int { return Master + Slave - i }

// PowerOff kills node i's qemu: a power cut.
func (l *Lab) PowerOff(i int) error {
	l.Events.Lab("power off", "node", NodeNames[i])
	l.mu.Lock()
	g := l.Guests[i]
	l.Guests[i] = nil
	l.mu.Unlock()
	return g.Close()
}

// SetHeartbeatLinks sets both nodes' heartbeat NICs' link (qemu set_link:
// the guests see carrier go).
func (l *Lab) SetHeartbeatLinks(ctx context.Context, up bool) error {
	state := "off"
	if up {
		state = "on"
	}
	l.Events.Lab("heartbeat link "+state, "node", "both")
	for _, i := range []int{Master, Slave} {
		if g := l.guest(i); g != nil {
			if _, err := g.Monitor(ctx, "set_link net1 "+state); err != nil {
				return err
			}
		}
	}
	return nil
}

// Active is the node that holds the VIP (-1: none).
func (l *Lab) Active(ctx context.Context) int {
	for _, i := range []int{Master, Slave} {
		out, err := l.Sh(ctx, i, "ip -o addr show dev eth0", nil)
		if err == nil && strings.Contains(out, " "+VIP.Addr().String()+"/") {
			return i
		}
	}
	return -1
}

// StopAgent sends node i's agent SIGTERM (it hands the group over) and
// waits up to 40 s for it to exit.
func (l *Lab) StopAgent(ctx context.Context, i int) error {
	_, err := l.Sh(ctx, i, `p=$(cat /run/agent.pid) || exit 0
kill -TERM $p 2>/dev/null || exit 0
i=0; while kill -0 $p 2>/dev/null; do i=$((i+1)); [ $i -gt 800 ] && { echo "agent did not stop in 40s" >&2; exit 1; }; sleep 0.05; done`, nil)
	return err
}

// Fsck runs e2fsck -fn on the LV in the storage guest.
func (l *Lab) Fsck(ctx context.Context) (bool, string) {
	out, err := l.Sh(ctx, Storage, "e2fsck -fn "+LVPath+" 2>&1", nil)
	return err == nil, out + errString(err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Outcome is one scenario run's row of the report.
type Outcome struct {
	Scenario string
	Passed   bool
	// Recovery is from the fault to the first acknowledged put after it;
	// Outage the longest time without an acknowledged put from the fault
	// to the end of the client (a fault whose effect comes late shows
	// here, not in Recovery).
	Recovery, Outage time.Duration
	// Split of the takeover (power-off): detection, fence, fsck+mount,
	// MQ start, VIP, and the client's first ack after the VIP.
	Split map[string]time.Duration
	// Lost is -1 when the queue could not be read back.
	Acked, Lost, Dup, BadDup int
	Fenced                   string
	Before, After            string // active node before and after
	Fault                    time.Time
	Problems                 []string
	Puts                     []labcheck.Put
	Events                   []Event
	Start                    time.Time
	Mounts                   []labcheck.Mount
	Fences                   []labcheck.Fence
	// Refused counts the writes the target refused (fenced writers);
	// WritesAfterFence those it accepted from a fenced node (must be 0).
	Refused, WritesAfterFence int
}

// RunOptions configure Run.
type RunOptions struct {
	Lab Options
	// Warmup: client running before the fault; Settle: after the first
	// ack after it.
	Warmup, Settle time.Duration
	// Recover bounds the wait for the first ack after the fault.
	Recover time.Duration
}

// Run brings a lab up, runs the client, injects sc, judges the run and
// tears the lab down.
func Run(ctx context.Context, o RunOptions, sc Scenario) (out Outcome, err error) {
	if o.Warmup == 0 {
		o.Warmup = 3 * time.Second
	}
	if o.Settle == 0 {
		o.Settle = 3 * time.Second
	}
	if o.Recover == 0 {
		o.Recover = 60 * time.Second
	}
	out.Scenario = sc.Name
	l, err := Up(ctx, o.Lab)
	if err != nil {
		return out, err
	}
	defer l.Close()
	out.Start = l.start
	cl := mqclient.New(mqclient.Config{Addr: MQAddr(), Queue: Queue, Dial: l.Host().DialContext})
	cctx, stopClient := context.WithCancel(ctx)
	clientDone := make(chan struct{})
	go func() { cl.Run(cctx); close(clientDone) }()
	defer func() { stopClient(); <-clientDone }()
	if _, err := waitAck(ctx, cl, l.start, 90*time.Second); err != nil {
		return out, fmt.Errorf("vmlab: the service never came up: %w", err)
	}
	l.Events.Lab("first put acknowledged", "msg", "1")
	active := l.Active(ctx)
	if active < 0 {
		return out, errors.New("vmlab: no node holds the VIP although puts are acknowledged")
	}
	// The standby keeps its session logged in, so a takeover needs no
	// login (open-iscsi's login takes seconds under TCG).
	if err := login(ctx, l, Peer(active)); err != nil {
		return out, fmt.Errorf("vmlab: standby login: %w", err)
	}
	l.Events.Lab("standby logged in", "node", NodeNames[Peer(active)])
	time.Sleep(o.Warmup)
	out.Before = NodeNames[active]
	l.Events.Lab("fault", "scenario", sc.Name, "active", NodeNames[active])
	out.Fault = time.Now()
	if err := sc.Inject(ctx, l, active); err != nil {
		return out, fmt.Errorf("vmlab: inject %s: %w", sc.Name, err)
	}
	if sc.Hold > 0 {
		time.Sleep(sc.Hold)
	}
	heal := func() error {
		if sc.Heal == nil {
			return nil
		}
		if err := sc.Heal(ctx, l, active); err != nil {
			return fmt.Errorf("vmlab: heal %s: %w", sc.Name, err)
		}
		l.Events.Lab("healed", "scenario", sc.Name)
		return nil
	}
	if !sc.HealLate {
		if err := heal(); err != nil {
			return out, err
		}
	}
	ack, werr := waitAck(ctx, cl, out.Fault, o.Recover)
	if werr == nil {
		out.Recovery = ack.Sub(out.Fault)
		l.Events.Lab("first put acknowledged after the fault", "after", out.Recovery.Round(time.Millisecond).String())
	}
	if sc.HealLate {
		if err := heal(); err != nil {
			return out, err
		}
	}
	time.Sleep(o.Settle)
	// A fault whose consequences come late (the old node acks on until
	// its monitor fails the group) may still be moving the group: judge
	// where it is once a node holds the VIP and a put was acknowledged
	// after that.
	after := settled(ctx, l, cl, o.Recover)
	if after >= 0 {
		out.After = NodeNames[after]
	}
	stopClient()
	<-clientDone
	var final []int
	var derr error
	if werr == nil {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		final, derr = mqclient.Drain(dctx, l.Host().DialContext, MQAddr(), Queue)
		cancel()
		l.Events.Lab("queue read back", "messages", fmt.Sprint(len(final)))
	}
	// The standby first: stopping the active one first would hand the
	// group over to it.
	for _, i := range []int{Peer(active), active} {
		if l.alive(i) {
			if err := l.StopAgent(ctx, i); err != nil {
				out.Problems = append(out.Problems, err.Error())
			}
		}
	}
	l.Events.Lab("agents stopped")
	clean, fsck := l.Fsck(ctx)
	recs, aerr := l.Audit(ctx)
	if aerr != nil {
		out.Problems = append(out.Problems, aerr.Error())
	}
	out.Events = l.Events.All()
	out.Puts = cl.Puts()
	out.Mounts = labcheck.Intervals(FSEvents(out.Events))
	out.Fences = Fences(out.Events)
	res := labcheck.Check(labcheck.History{Puts: out.Puts, Final: final, Mounts: out.Mounts, FsckClean: clean, FsckOutput: fsck,
		Fences: out.Fences, Audit: recs, Initiators: Initiators()})
	out.Refused, out.WritesAfterFence = audit.Summarize(recs).Refused, len(res.WritesAfterFence)
	out.Acked, out.Lost, out.Dup, out.BadDup = res.Acked, len(res.Lost), len(res.Duplicated), len(res.BadDuplicates)
	if final == nil {
		// The queue was not read back: nothing can be said about losses.
		out.Lost = -1
		res.Problems = slices.DeleteFunc(res.Problems, func(p string) bool { return strings.Contains(p, "acknowledged messages lost") })
		out.Problems = append(out.Problems, "the queue was not read back: losses unknown")
	}
	out.Problems = append(out.Problems, res.Problems...)
	out.Outage = labcheck.LongestGap(out.Puts, out.Fault, labcheck.LastEnd(out.Puts))
	if werr != nil {
		out.Problems = append(out.Problems, werr.Error())
	}
	if derr != nil {
		out.Problems = append(out.Problems, derr.Error())
	}
	want := out.Before
	if sc.Failover {
		want = NodeNames[Peer(active)]
	}
	if out.After != want {
		out.Problems = append(out.Problems, fmt.Sprintf("group on %q after the fault, want %q", out.After, want))
	}
	for _, f := range out.Fences {
		if f.At.After(out.Fault) {
			out.Fenced = f.Node
			break
		}
	}
	if sc.Failover {
		out.Split = Split(out.Events, out.Puts, out.Fault, NodeNames[Peer(active)])
	}
	out.Passed = len(out.Problems) == 0
	l.Events.Lab("scenario done", "scenario", sc.Name, "passed", fmt.Sprint(out.Passed))
	return out, nil
}

// settled waits up to d until a node holds the VIP and a put was
// acknowledged after that was seen, and returns the node (-1: none).
func settled(ctx context.Context, l *Lab, cl *mqclient.Client, d time.Duration) int {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		seen := time.Now()
		if a := l.Active(ctx); a >= 0 {
			if _, err := waitAck(ctx, cl, seen, time.Until(deadline)); err == nil && l.Active(ctx) == a {
				return a
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return l.Active(ctx)
}

// waitAck waits up to d for a put acknowledged after t.
func waitAck(ctx context.Context, cl *mqclient.Client, t time.Time, d time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return cl.WaitAck(ctx, t)
}

// Fences are the fences the agents logged: the preempting node logs it,
// so the victim is its peer.
func Fences(evs []Event) []labcheck.Fence {
	var out []labcheck.Fence
	for _, ev := range evs {
		if ev.Msg != "preempted the other node's key" {
			continue
		}
		for _, i := range []int{Master, Slave} {
			if NodeNames[i] == ev.Node {
				out = append(out, labcheck.Fence{Node: NodeNames[Peer(i)], At: ev.At})
			}
		}
	}
	return out
}

// Initiators maps the nodes to their initiator names.
func Initiators() map[string]string {
	return map[string]string{NodeNames[Master]: NodeIQN(Master), NodeNames[Slave]: NodeIQN(Slave)}
}

// Audit reads the target's audit stream of the shared LUN from the
// storage guest (a torn tail of the live file is cut).
func (l *Lab) Audit(ctx context.Context) ([]audit.Record, error) {
	out, err := l.Sh(ctx, Storage, "cat "+AuditFile, nil)
	if err != nil {
		return nil, fmt.Errorf("vmlab: read the target's audit: %w", err)
	}
	recs, _, err := audit.ReadAll(strings.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("vmlab: the target's audit %s: %w", AuditFile, err)
	}
	return recs, nil
}

// Split cuts the time from the fault to the first ack into the takeover's
// steps, from the survivor's lines as they arrived: detection (its state
// becomes Starting), fence (storage taken), fsck+mount (filesystem
// mounted), MQ start (queue manager running), VIP (vip added), client
// (first ack after the VIP). A step that did not happen is left out.
func Split(evs []Event, puts []labcheck.Put, fault time.Time, survivor string) map[string]time.Duration {
	marks := []struct {
		name string
		is   func(Event) bool
	}{
		{"detection", func(ev Event) bool { return ev.Msg == "state" && strings.Contains(ev.Line, "to=Starting") }},
		{"iscsi+fence", msgIs("storage taken: our key holds the reservation on every LUN")},
		{"fsck+mount", msgIs("filesystem mounted")}, {"mq start", msgIs("running")}, {"vip", msgIs("vip added")},
	}
	out := map[string]time.Duration{}
	prev := fault
	for _, m := range marks {
		for _, ev := range evs {
			if ev.Node == survivor && ev.At.After(prev) && m.is(ev) {
				out[m.name] = ev.At.Sub(prev)
				prev = ev.At
				break
			}
		}
	}
	if a := labcheck.FirstAckAfter(puts, prev); !a.IsZero() && len(out) > 0 {
		out["client"] = a.Sub(prev)
	}
	return out
}

func msgIs(msg string) func(Event) bool { return func(ev Event) bool { return ev.Msg == msg } }

func (l *Lab) guest(i int) *vm.VM {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Guests[i]
}

func (l *Lab) alive(i int) bool { return l.guest(i) != nil }

// Chaos returns seed's random schedule of scenarios: each call the next
// one, drawn from ScenarioNames. The same seed gives the same schedule,
// so a failed chaos run is replayed with its printed seed.
func Chaos(seed uint64) func() Scenario {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() Scenario { return Scenarios[ScenarioNames[r.IntN(len(ScenarioNames))]] }
}
