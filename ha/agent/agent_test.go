package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/heartbeat"
	"github.com/tandem-ha/tandem/ha/internal/clock"
	"github.com/tandem-ha/tandem/ha/link"
	"github.com/tandem-ha/tandem/ha/resource"
)

// fakeRes is a resource whose state is a flag; failMonitor makes Monitor
// report it stopped, failStop makes Stop fail.
type fakeRes struct {
	name                  string
	running               atomic.Bool
	starts                atomic.Int32
	failMonitor, failStop atomic.Bool
	fencedMon             atomic.Bool   // Monitor reports resource.ErrFenced
	holder                atomic.Uint64 // Holder's answer (a fence's)
	announces             atomic.Int32  // Announce calls
}

func (f *fakeRes) Announce(context.Context) error {
	f.announces.Add(1)
	return nil
}

func (f *fakeRes) Holder(context.Context) (uint64, error) { return f.holder.Load(), nil }

func (f *fakeRes) Name() string { return f.name }
func (f *fakeRes) Start(context.Context) error {
	f.starts.Add(1)
	f.running.Store(true)
	return nil
}
func (f *fakeRes) Stop(context.Context) error {
	if f.failStop.Load() {
		return errors.New("device busy")
	}
	f.running.Store(false)
	return nil
}
func (f *fakeRes) Monitor(context.Context) (resource.Status, error) {
	if f.fencedMon.Load() {
		return resource.StatusFailed, fmt.Errorf("fence: %w: key preempted", resource.ErrFenced)
	}
	if f.running.Load() && !f.failMonitor.Load() {
		return resource.StatusRunning, nil
	}
	return resource.StatusStopped, nil
}

// The pair runs in lockstep on a fake clock: the test is the agents' loop
// (what Run does with its select, done in a fixed order), so no assertion
// depends on the scheduler. Each quantum of fake time, every started node
// ticks when a tick is due, runs a disk heartbeat round when one is due,
// and every datagram, resource result and command is handled before time
// moves on. Datagrams take latency (fake time) from sender to receiver.
const (
	quantum = time.Millisecond
	latency = 2 * time.Millisecond
)

type node struct {
	a       *Agent
	res     []*fakeRes
	fenced  atomic.Int32
	inbox   chan link.Datagram
	opt     Options // what New got, for a restart
	arbiter bool
	started bool
	// detached: the node runs its own loop (Run); the lockstep leaves it
	// alone.
	detached bool
}

type delivery struct {
	to int
	at time.Duration
	d  link.Datagram
}

type pair struct {
	t      *testing.T
	clk    *clock.Fake
	t0     time.Time
	nodes  [2]*node
	links  [2][2]*link.Mem // [link][node]
	flight []delivery
}

var names = [2]string{"alpha", "beta"}

func testConfig(self int) *config.Config {
	c := config.DefaultConfig()
	c.Cluster = "unit"
	c.Nodes = names[:]
	c.Node, c.Peer = names[self], names[1-self]
	c.Key = []byte("0123456789abcdef0123")
	c.Timing = config.Timing{Keepalive: 20 * time.Millisecond, DeadTime: 120 * time.Millisecond, InitDead: 400 * time.Millisecond}
	c.Failback.Preferred = "alpha"
	c.Links = []config.Link{{Name: "dedicated", Mode: config.ModeUnicast}, {Name: "public", Mode: config.ModeMulticast}}
	for _, n := range []string{"vip", "svc"} {
		s := resource.Spec{Type: "fake", Name: n, MaxRestarts: 1}.WithDefaults()
		s.Monitor.Interval = 30 * time.Millisecond
		s.StopTimeout = 200 * time.Millisecond
		c.Resources = append(c.Resources, s)
	}
	return &c
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func newPair(t *testing.T, opts ...func(i int, o *Options)) *pair {
	p := &pair{t: t, clk: clock.NewFake(time.Unix(1000, 0))}
	stateRoot := t.TempDir()
	p.t0 = p.clk.Now()
	inbox := [2]chan link.Datagram{make(chan link.Datagram, 64), make(chan link.Datagram, 64)}
	for l := range 2 {
		p.links[l][0], p.links[l][1] = link.MemPair(l, inbox[0], inbox[1])
	}
	for i := range 2 {
		n := &node{res: []*fakeRes{{name: "vip"}, {name: "svc"}}, inbox: inbox[i]}
		o := Options{
			Transports: []link.Transport{p.links[0][i], p.links[1][i]},
			Inbox:      inbox[i],
			Resources:  []resource.Resource{n.res[0], n.res[1]},
			Fence:      func(string) { n.fenced.Add(1) },
			Clock:      p.clk,
			Boot:       uint64(i + 1),
			Log:        logger(t),
		}
		for _, f := range opts {
			f(i, &o)
		}
		cfg := testConfig(i)
		cfg.StateDir = filepath.Join(stateRoot, names[i])
		a, err := New(cfg, o)
		require.NoError(t, err)
		n.opt = o
		if o.Arbiter != nil {
			a.dhb.SetDevice(o.Arbiter)
			n.arbiter = true
		}
		n.a = a
		p.nodes[i] = n
	}
	t.Cleanup(p.stop)
	return p
}

// start starts node i, as Run does: a first tick.
func (p *pair) start(i int) {
	n := p.nodes[i]
	n.started = true
	n.a.step(fsm.Tick{Now: n.a.now()})
	p.settle()
}

func (p *pair) elapsed() time.Duration { return p.clk.Now().Sub(p.t0) }

// live reports whether the lockstep drives node i.
func (p *pair) live(i int) bool { return p.nodes[i].started && !p.nodes[i].detached }

// settle handles everything pending at the current instant: arrived
// datagrams and finished resource operations, until nothing is left.
func (p *pair) settle() {
	for busy := true; busy; {
		busy = false
		for i, n := range p.nodes {
			if n.detached {
				continue
			}
			for len(n.inbox) > 0 {
				d := <-n.inbox
				if n.started {
					p.flight = append(p.flight, delivery{to: i, at: p.elapsed() + latency, d: d})
				}
			}
			if !n.started {
				continue
			}
			for len(n.a.running) > 0 { // fake resources answer at once
				n.a.finished(<-n.a.results)
				busy = true
			}
		}
		rest := p.flight[:0]
		var due []delivery
		for _, f := range p.flight {
			if f.at <= p.elapsed() {
				due = append(due, f)
			} else {
				rest = append(rest, f)
			}
		}
		p.flight = rest
		for _, f := range due {
			if p.live(f.to) {
				p.nodes[f.to].a.receive(f.d)
				busy = true
			}
		}
	}
}

// advance moves fake time by one quantum and runs what comes due.
func (p *pair) advance() {
	p.clk.Advance(quantum)
	for i, n := range p.nodes {
		if !p.live(i) {
			continue
		}
		now := n.a.now()
		woken := false
		select {
		case <-n.a.wake:
			woken = true
		default:
		}
		if woken || now%n.a.tickEvery() == 0 {
			n.a.step(fsm.Tick{Now: now})
		}
		if n.arbiter && now%n.a.cfg.Timing.Keepalive == 0 {
			n.a.diskResult(n.a.dhb.Round(context.Background()))
		}
	}
	p.settle()
}

// run lets d of fake time pass.
func (p *pair) run(d time.Duration) {
	for end := p.elapsed() + d; p.elapsed() < end; {
		p.advance()
	}
}

// until runs until cond holds, failing after limit of fake time.
func (p *pair) until(limit time.Duration, cond func() bool, msg string, args ...any) {
	p.t.Helper()
	for end := p.elapsed() + limit; !cond(); p.advance() {
		if p.elapsed() >= end {
			require.FailNowf(p.t, "condition never satisfied", "after %v of fake time: "+msg, append([]any{limit}, args...)...)
		}
	}
}

func (p *pair) state(i int) string { return p.nodes[i].a.Status().Node.State }

// waitStates runs until alpha and beta are in states s0 and s1.
func (p *pair) waitStates(s0, s1 string) {
	p.t.Helper()
	p.until(5*time.Second, func() bool { return p.state(0) == s0 && p.state(1) == s1 },
		"alpha %s, beta %s; want %s, %s", p.state(0), p.state(1), s0, s1)
}

// command runs an operator command on node i as the loop would.
func (p *pair) command(i int, c control.Command) error {
	req, err := p.nodes[i].a.request(context.Background(), c)
	if err == nil {
		err = p.nodes[i].a.handle(req)
	}
	p.settle()
	return err
}

// detach hands node i to its own Run; cancel ends it, the error arrives
// on the returned channel.
func (p *pair) detach(i int) (cancel context.CancelFunc, done chan error) {
	n := p.nodes[i]
	n.detached = true
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- n.a.Run(ctx) }()
	return cancel, done
}

// stop closes the links of the nodes the lockstep drives (Run closes its
// own).
func (p *pair) stop() {
	for _, n := range p.nodes {
		n.a.markerWG.Wait() // the fenced marker is written before the state dir goes
	}
	for _, n := range p.nodes {
		if n.started && !n.detached {
			n.a.closeLinks()
		}
	}
}

func TestPairElectsPreferredAndMovesOnStandby(t *testing.T) {
	p := newPair(t)
	p.start(1)
	p.start(0)
	p.waitStates("active", "standby")
	a := p.nodes[0]
	assert.True(t, a.res[0].running.Load())
	assert.True(t, a.res[1].running.Load())

	p.until(time.Second, func() bool {
		st := a.a.Status()
		return st.Peer.Alive && st.Links[0].Up && st.Links[0].RTT > 0 && st.Links[1].RTT > 0
	}, "round-trip times measured")
	st := a.a.Status()
	assert.Equal(t, "standby", st.Peer.State)
	assert.Equal(t, 2*latency, st.Links[0].RTT, "rtt is both latencies, without the peer's hold time")
	assert.Positive(t, st.Links[0].Received)
	assert.Equal(t, "running", st.Resources[1].State)

	require.NoError(t, p.command(0, control.CmdStandby))
	p.waitStates("standby", "active")
	assert.False(t, a.res[0].running.Load())
	assert.True(t, p.nodes[1].res[0].running.Load())

	// Standby on a node that holds nothing while the peer is active is a
	// no-op; takeover moves the group back.
	require.NoError(t, p.command(0, control.CmdTakeover))
	p.waitStates("active", "standby")

	// A graceful stop of the active agent (its own Run, cancelled) hands
	// the group over. Whatever the scheduler does, Run returns once its
	// grace has passed in fake time, and beta ends up with the group.
	cancel, done := p.detach(0)
	cancel()
	var err error
	for ran := true; ran; {
		select {
		case err = <-done:
			ran = false
		default:
			p.advance()
		}
	}
	require.NoError(t, err)
	assert.False(t, a.res[0].running.Load())
	assert.False(t, a.res[1].running.Load())
	p.until(5*time.Second, func() bool { return p.state(1) == "active" }, "beta takes the group")
}

func TestPartitionOnOneLinkKeepsGroupDeathOfAllMovesIt(t *testing.T) {
	p := newPair(t)
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	dead := testConfig(0).Timing.DeadTime

	p.links[0][0].SetDown(true) // dedicated cable cut
	p.run(5 * dead)
	assert.Equal(t, "active", p.state(0))
	assert.Equal(t, "standby", p.state(1))
	assert.False(t, p.nodes[1].a.Status().Links[0].Up)
	assert.True(t, p.nodes[1].a.Status().Links[1].Up)

	p.links[1][0].SetDown(true) // and the public network: alpha is dead to beta
	cut := p.elapsed()
	p.until(2*dead, func() bool { return p.state(1) == "active" }, "beta takes over")
	// Deadtime counts from the last heartbeat heard: sent up to a
	// keepalive before the cut, heard latency after it was sent.
	keep := testConfig(0).Timing.Keepalive
	assert.GreaterOrEqual(t, p.elapsed()-cut, dead-keep+latency, "not before deadtime of silence")
	assert.LessOrEqual(t, p.elapsed()-cut, dead+latency, "at deadtime, not on a later tick")
	// The verdict comes at the deadline itself (the machine's NextDeadline),
	// not on the next periodic tick.
	b := p.nodes[1].a
	assert.Equal(t, dead, b.now()-b.state.Peer.LastHeard, "silent exactly deadtime when taking over")
	assert.Equal(t, uint64(1), p.nodes[1].a.Status().Failovers)
	assert.Equal(t, "dead", p.nodes[1].a.Status().Peer.State)
}

func TestMonitorFailureRestartsThenFailsOver(t *testing.T) {
	p := newPair(t)
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	svc := p.nodes[0].res[1]
	svc.failMonitor.Store(true)
	p.until(5*time.Second, func() bool { return p.state(1) == "active" }, "beta takes over")
	assert.GreaterOrEqual(t, svc.starts.Load(), int32(2), "restarted locally first")
	assert.False(t, svc.running.Load())
	assert.Zero(t, p.nodes[1].a.Status().Failovers, "a hand-over, not a failover")
}

func TestStopFailureFences(t *testing.T) {
	p := newPair(t)
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	p.nodes[0].res[0].failStop.Store(true)
	require.NoError(t, p.command(0, control.CmdStandby))
	p.until(5*time.Second, func() bool { return p.state(0) == "fenced" }, "alpha fences itself")
	assert.Equal(t, int32(1), p.nodes[0].fenced.Load())
	err := p.command(0, control.CmdTakeover)
	require.ErrorContains(t, err, "command refused")
}

func TestDropsForgedForeignReplayed(t *testing.T) {
	p := newPair(t)
	n := p.nodes[0].a
	c := n.links[0].Counters()
	seal := func(key string, m heartbeat.Message) []byte { return heartbeat.Seal(nil, []byte(key), &m) }
	good := heartbeat.Message{Cluster: "unit", Node: "beta", Boot: 1, Seq: 5, SentAt: 1}
	n.receive(link.Datagram{Link: 0, Data: []byte("garbage")})
	n.receive(link.Datagram{Link: 0, Data: seal("another-key-0123456789", good)})
	n.receive(link.Datagram{Link: 0, Data: seal("0123456789abcdef0123", heartbeat.Message{Cluster: "other", Node: "beta", Boot: 1, Seq: 1})})
	n.receive(link.Datagram{Link: 0, Data: seal("0123456789abcdef0123", heartbeat.Message{Cluster: "unit", Node: "gamma", Boot: 1, Seq: 1})})
	n.receive(link.Datagram{Link: 0, Data: seal("0123456789abcdef0123", heartbeat.Message{Cluster: "unit", Node: "alpha", Boot: 1, Seq: 1})})
	n.receive(link.Datagram{Link: 0, Data: seal("0123456789abcdef0123", good)})
	n.receive(link.Datagram{Link: 0, Data: seal("0123456789abcdef0123", good)})
	good.Seq = 11 // two rounds of two links missed on this link
	n.receive(link.Datagram{Link: 0, Data: seal("0123456789abcdef0123", good)})
	s := c.Snapshot()
	assert.Equal(t, uint64(1), s.Malformed)
	assert.Equal(t, uint64(1), s.Forged)
	assert.Equal(t, uint64(2), s.Foreign)
	assert.Equal(t, uint64(1), s.Self)
	assert.Equal(t, uint64(1), s.Replayed)
	assert.Equal(t, uint64(2), s.Received)
	assert.Equal(t, uint64(2), s.Lost)
}

// TestHealedPartitionReannounces: both links cut, both nodes take the
// group; on the heal beta stops and alpha, which kept the group, announces
// its resources again (the VIP's gratuitous ARP), so clients that learnt
// beta's MAC during the partition come back.
func TestHealedPartitionReannounces(t *testing.T) {
	p := newPair(t)
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	dead := testConfig(0).Timing.DeadTime
	for l := range 2 {
		for i := range 2 {
			p.links[l][i].SetDown(true)
		}
	}
	p.until(2*dead, func() bool { return p.state(1) == "active" }, "beta takes the group in the partition")
	p.run(dead)
	assert.Zero(t, p.nodes[0].res[0].announces.Load(), "nothing to re-announce while the peer is unheard")
	for l := range 2 {
		for i := range 2 {
			p.links[l][i].SetDown(false)
		}
	}
	p.waitStates("active", "standby")
	p.run(10 * latency) // beta's Standby reaches alpha
	// The announcement runs in its own goroutine, off the loop: wait for
	// it without a bound on its timing that could fail on a slow machine.
	require.Eventually(t, func() bool { return p.nodes[0].res[0].announces.Load() == 1 }, 10*time.Second, time.Millisecond,
		"alpha re-announces once beta stopped")
	assert.Zero(t, p.nodes[1].res[0].announces.Load(), "the loser announces nothing")
}

// TestHeartbeatGapsObserved: the gap between consecutive heartbeats of
// the peer is reported per link; on the quiet lockstep it is the
// keepalive, and a cut shows as one long gap when the link heals.
func TestHeartbeatGapsObserved(t *testing.T) {
	type obs struct {
		link string
		gap  time.Duration
	}
	var got []obs
	p := newPair(t, func(i int, o *Options) {
		if i == 1 {
			o.OnHeartbeatGap = func(link string, d time.Duration) { got = append(got, obs{link, d}) }
		}
	})
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	keep := testConfig(0).Timing.Keepalive
	p.run(10 * keep)
	got = nil
	p.run(10 * keep)
	require.NotEmpty(t, got)
	for _, o := range got {
		assert.Equal(t, keep, o.gap, o.link)
	}
	p.links[0][0].SetDown(true)
	p.run(3 * keep)
	got = nil
	p.links[0][0].SetDown(false)
	p.run(2 * keep)
	var longest time.Duration
	for _, o := range got {
		if o.link == "dedicated" {
			longest = max(longest, o.gap)
		}
	}
	assert.GreaterOrEqual(t, longest, 3*keep, "the cut shows as a long gap on the dedicated link")
}
