package fsm

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// sim drives two (or one) machines over a simulated multi-link network and
// a fake resource layer, in simulated time. Scenario scripts and property
// tests both run on it.
type sim struct {
	now   time.Duration
	step  time.Duration // tick granularity
	links int
	nodes []*simNode
	// cut[link][from] drops datagrams sent by from on link.
	cut []map[string]bool
	// drop, if set, decides per datagram whether it is lost.
	drop func(from string, link int) bool
	// opDelay is how long a resource operation takes.
	opDelay time.Duration
	queue   []queued
	out     []string
	verbose bool
	// onStep, if set, is called after every machine step (invariants).
	onStep func()
	// lastDelivered[from] is when a heartbeat of from last arrived.
	lastDelivered map[string]time.Duration
	delivered     map[string]bool
	// The arbiter LUN (Config.Arbiter): one slot per node, written and
	// the peer's read at every tick; diskCut[node] fails that node's I/O.
	arbiter bool
	slots   map[string]diskSlot
	diskCut map[string]bool
	// fenceLog: a storage SelfFence is only logged (action "command"),
	// so the node stays up, Fenced, for rejoin scenarios.
	fenceLog bool
}

type diskSlot struct {
	boot, seq uint64
	state     NodeState
}

type queued struct {
	at   time.Duration
	node *simNode
	ev   Event
}

type simNode struct {
	name  string
	cfg   Config
	m     *Machine
	up    bool
	boot  uint64
	seq   uint64
	start time.Duration // sim time when powered on (the machine's zero)
	res   map[string]*fakeRes
	order []string
	seen  diskSlot // the peer's slot as last read
	dseq  uint64
}

type fakeRes struct {
	running                        bool
	failStart, failStop, failForce int
	crash                          int // next monitors that report failure
	fenced                         int // next monitors that report resource.ErrFenced
	stuck                          bool
}

var errFenced = errors.New("this node is fenced off the shared storage")

var errInjected = errors.New("injected failure")

func newSim(links int, step time.Duration, cfgs ...Config) (*sim, error) {
	s := &sim{step: step, links: links, lastDelivered: map[string]time.Duration{}, delivered: map[string]bool{},
		slots: map[string]diskSlot{}, diskCut: map[string]bool{}}
	for range links {
		s.cut = append(s.cut, map[string]bool{})
	}
	for _, c := range cfgs {
		n := &simNode{name: c.Self, cfg: c, res: map[string]*fakeRes{}}
		for _, r := range c.Resources {
			n.res[r.Name] = &fakeRes{}
			n.order = append(n.order, r.Name)
		}
		s.nodes = append(s.nodes, n)
	}
	return s, nil
}

func (s *sim) node(name string) *simNode {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (s *sim) peerOf(n *simNode) *simNode {
	for _, o := range s.nodes {
		if o != n && o.name == n.cfg.Peer {
			return o
		}
	}
	return nil
}

// power starts node n's agent: a new Machine and a new boot generation.
// Resources keep their state, as after an agent crash.
func (s *sim) power(n *simNode) error {
	m, err := New(n.cfg)
	if err != nil {
		return err
	}
	n.m, n.up, n.start = m, true, s.now
	n.boot++
	s.stepNode(n, Tick{Now: 0})
	s.drain()
	return nil
}

func (s *sim) powerOff(n *simNode) {
	n.up = false
	n.m = nil
	var q []queued
	for _, e := range s.queue {
		if e.node != n {
			q = append(q, e)
		}
	}
	s.queue = q
}

// kill is kill -9 of n's agent: the machine is gone, its guard stops every
// resource, then sends one released heartbeat (a new boot generation, the
// guard's own) on every link that is not cut. A later start is a newer
// boot still.
func (s *sim) kill(n *simNode) {
	s.powerOff(n)
	s.logf(n, "KILL -9: the guard stops the group")
	for _, name := range n.order {
		n.res[name].running = false
	}
	n.boot++
	p := s.peerOf(n)
	if p == nil {
		return
	}
	for l := range s.links {
		if s.cut[l][n.name] {
			continue
		}
		n.seq++
		s.queue = append(s.queue, queued{at: s.now, node: p, ev: Heartbeat{
			Link: l, Node: n.name, Boot: n.boot, Seq: n.seq, State: Standby, Flags: FlagYield, Released: true,
		}})
	}
	s.drain()
}

func (s *sim) local(n *simNode) time.Duration { return s.now - n.start }

func (s *sim) logf(n *simNode, format string, args ...any) {
	s.out = append(s.out, fmt.Sprintf("%-7s %s: %s", fmtDur(s.now), n.name, fmt.Sprintf(format, args...)))
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%d.%03ds", d/time.Second, (d%time.Second)/time.Millisecond)
}

func (s *sim) stepNode(n *simNode, ev Event) {
	if !n.up {
		return
	}
	acts := n.m.Step(ev)
	for _, a := range acts {
		s.act(n, a)
	}
	if s.onStep != nil {
		s.onStep()
	}
}

func (s *sim) act(n *simNode, a Action) {
	switch a := a.(type) {
	case Notify:
		if a.Level < slog.LevelInfo && !s.verbose {
			return
		}
		if a.Msg == "state" && len(a.Attrs) == 6 {
			s.logf(n, "%v -> %v (%v)", a.Attrs[1], a.Attrs[3], a.Attrs[5])
			return
		}
		var b strings.Builder
		b.WriteString(a.Msg)
		for i := 0; i+1 < len(a.Attrs); i += 2 {
			fmt.Fprintf(&b, " %v=%v", a.Attrs[i], a.Attrs[i+1])
		}
		s.logf(n, "%s", b.String())
	case SelfFence:
		s.logf(n, "SELF-FENCE %s", a.Reason)
		if !(a.Storage && s.fenceLog) {
			s.powerOff(n)
		}
	case SendHeartbeat:
		if s.verbose {
			s.logf(n, "send %v flags=%d", a.State, a.Flags)
		}
		n.seq++
		p := s.peerOf(n)
		if p == nil {
			return
		}
		for l := range s.links {
			if s.cut[l][n.name] || (s.drop != nil && s.drop(n.name, l)) {
				continue
			}
			s.queue = append(s.queue, queued{at: s.now, node: p, ev: Heartbeat{
				Link: l, Node: n.name, Boot: n.boot, Seq: n.seq, State: a.State, Flags: a.Flags,
			}})
			n.seq++
		}
	case RunResource:
		if a.Op != OpMonitor || s.verbose {
			s.logf(n, "run %s %s", a.Op, a.Name)
		}
		s.queue = append(s.queue, queued{at: s.now + s.opDelay, node: n, ev: s.complete(n, a)})
	}
}

// complete applies an operation to the fake resource and returns its result.
func (s *sim) complete(n *simNode, a RunResource) Event {
	r := n.res[a.Name]
	res := ResourceResult{Name: a.Name, Op: a.Op}
	switch a.Op {
	case OpStart:
		if r.failStart > 0 {
			r.failStart--
			res.Err = errInjected
			r.running = true // half started: stop must clean it up
			return res
		}
		r.running = true
	case OpStop:
		if r.failStop > 0 || r.stuck {
			if r.failStop > 0 {
				r.failStop--
			}
			res.Err = errInjected
			return res
		}
		r.running = false
	case OpForceStop:
		if r.failForce > 0 {
			r.failForce--
			res.Err = errInjected
		}
	case OpMonitor:
		switch {
		case r.fenced > 0:
			r.fenced--
			res.Err, res.Fenced, res.Status = errFenced, true, ResFailed
		case r.crash > 0:
			r.crash--
			r.running = false
			res.Status = ResFailed
		case r.running:
			res.Status = ResRunning
		default:
			res.Status = ResStopped
		}
	}
	return res
}

// drain processes every queued event due now, in order.
func (s *sim) drain() {
	for {
		i := -1
		for j, e := range s.queue {
			if e.at <= s.now {
				i = j
				break
			}
		}
		if i < 0 {
			return
		}
		e := s.queue[i]
		s.queue = append(s.queue[:i], s.queue[i+1:]...)
		if !e.node.up {
			continue
		}
		switch ev := e.ev.(type) {
		case Heartbeat:
			ev.Now = s.local(e.node)
			s.lastDelivered[ev.Node] = s.now
			s.delivered[ev.Node] = true
			s.stepNode(e.node, ev)
		default:
			s.stepNode(e.node, ev)
		}
	}
}

// run advances time by d in steps, ticking every powered node.
func (s *sim) run(d time.Duration) {
	end := s.now + d
	for s.now < end {
		s.now += s.step
		if s.now > end {
			s.now = end
		}
		s.drain()
		for _, n := range s.nodes {
			if n.up {
				s.stepNode(n, Tick{Now: s.local(n)})
			}
		}
		s.drain()
		if s.arbiter {
			s.diskRound()
			s.drain()
		}
	}
}

// diskRound is one disk heartbeat round of every powered node: write our
// slot, read the peer's, report a changed slot and the I/O status.
func (s *sim) diskRound() {
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		if s.diskCut[n.name] {
			s.stepNode(n, DiskStatus{OK: false, Now: s.local(n)})
			continue
		}
		n.dseq++
		s.slots[n.name] = diskSlot{boot: n.boot, seq: n.dseq, state: n.m.state}
		p, ok := s.slots[n.cfg.Peer]
		if ok && p != n.seen {
			n.seen = p
			s.lastDelivered[n.cfg.Peer] = s.now
			s.delivered[n.cfg.Peer] = true
			s.stepNode(n, DiskBeat{Node: n.cfg.Peer, Boot: p.boot, Seq: p.seq, State: p.state, Now: s.local(n)})
		}
		if n.up {
			s.stepNode(n, DiskStatus{OK: true, Now: s.local(n)})
		}
	}
}

func (s *sim) flush() string {
	o := strings.Join(s.out, "\n")
	s.out = nil
	return o
}

func (s *sim) status() string {
	var b strings.Builder
	for _, n := range s.nodes {
		if !n.up {
			fmt.Fprintf(&b, "%s: down", n.name)
		} else {
			st := n.m.Status()
			fmt.Fprintf(&b, "%s: %v peer=%v", n.name, st.State, peerWord(st.Peer))
			if st.Banned {
				b.WriteString(" banned")
			}
			if st.Yielding {
				b.WriteString(" yielding")
			}
			var links []string
			for _, l := range st.Links {
				if l.Up {
					links = append(links, "up")
				} else {
					links = append(links, "down")
				}
			}
			fmt.Fprintf(&b, " links=%s", strings.Join(links, ","))
		}
		var rs []string
		for _, name := range n.order {
			w := "stopped"
			if n.res[name].running {
				w = "running"
			}
			rs = append(rs, name+"="+w)
		}
		sort.Strings(rs)
		fmt.Fprintf(&b, " [%s]\n", strings.Join(rs, " "))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func peerWord(p PeerStatus) string {
	switch {
	case !p.Heard:
		return "unknown"
	case !p.Alive:
		return "dead"
	}
	return p.State.String()
}

// active lists the nodes in state Active.
func (s *sim) active() []string {
	var a []string
	for _, n := range s.nodes {
		if n.up && n.m.state == Active {
			a = append(a, n.name)
		}
	}
	return a
}
