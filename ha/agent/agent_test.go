package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/heartbeat"
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

type node struct {
	a      *Agent
	res    []*fakeRes
	cancel context.CancelFunc
	done   chan error
	fenced atomic.Int32
}

type pair struct {
	nodes [2]*node
	links [2][2]*link.Mem // [link][node]
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
	p := &pair{}
	inbox := [2]chan link.Datagram{make(chan link.Datagram, 64), make(chan link.Datagram, 64)}
	for l := range 2 {
		p.links[l][0], p.links[l][1] = link.MemPair(l, inbox[0], inbox[1])
	}
	for i := range 2 {
		n := &node{res: []*fakeRes{{name: "vip"}, {name: "svc"}}, done: make(chan error, 1)}
		o := Options{
			Transports: []link.Transport{p.links[0][i], p.links[1][i]},
			Inbox:      inbox[i],
			Resources:  []resource.Resource{n.res[0], n.res[1]},
			Fence:      func(string) { n.fenced.Add(1) },
			Log:        logger(t),
		}
		for _, f := range opts {
			f(i, &o)
		}
		a, err := New(testConfig(i), o)
		require.NoError(t, err)
		n.a = a
		p.nodes[i] = n
	}
	return p
}

func (p *pair) start(t *testing.T, i int) {
	n := p.nodes[i]
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- n.a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-n.done })
}

func (p *pair) state(i int) string { return p.nodes[i].a.Status().Node.State }

func waitState(t *testing.T, p *pair, i int, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return p.state(i) == want }, 5*time.Second, 5*time.Millisecond,
		"%s: state %s, want %s", names[i], p.state(i), want)
}

func TestPairElectsPreferredAndMovesOnStandby(t *testing.T) {
	p := newPair(t)
	p.start(t, 1)
	p.start(t, 0)
	waitState(t, p, 0, "active")
	waitState(t, p, 1, "standby")
	a := p.nodes[0]
	assert.True(t, a.res[0].running.Load())
	assert.True(t, a.res[1].running.Load())

	require.Eventually(t, func() bool {
		st := a.a.Status()
		return st.Peer.Alive && st.Links[0].Up && st.Links[0].RTT > 0 && st.Links[1].RTT > 0
	}, 2*time.Second, 5*time.Millisecond)
	st := a.a.Status()
	assert.Equal(t, "standby", st.Peer.State)
	assert.Less(t, st.Links[0].RTT, 50*time.Millisecond, "rtt excludes the peer's hold time")
	assert.Positive(t, st.Links[0].Received)
	assert.Equal(t, "running", st.Resources[1].State)

	ctx := context.Background()
	require.NoError(t, a.a.Command(ctx, control.CmdStandby))
	waitState(t, p, 1, "active")
	waitState(t, p, 0, "standby")
	assert.False(t, a.res[0].running.Load())
	assert.True(t, p.nodes[1].res[0].running.Load())

	// Standby on a node that holds nothing while the peer is active is a
	// no-op; takeover moves the group back.
	require.NoError(t, a.a.Command(ctx, control.CmdTakeover))
	waitState(t, p, 0, "active")
	waitState(t, p, 1, "standby")

	// A graceful stop of the active agent hands the group over.
	a.cancel()
	require.NoError(t, <-a.done)
	a.done <- nil // for Cleanup
	assert.False(t, a.res[0].running.Load())
	waitState(t, p, 1, "active")
}

func TestPartitionOnOneLinkKeepsGroupDeathOfAllMovesIt(t *testing.T) {
	p := newPair(t)
	p.start(t, 0)
	p.start(t, 1)
	waitState(t, p, 0, "active")
	waitState(t, p, 1, "standby")

	p.links[0][0].SetDown(true) // dedicated cable cut
	time.Sleep(5 * testConfig(0).Timing.DeadTime)
	assert.Equal(t, "active", p.state(0))
	assert.Equal(t, "standby", p.state(1))
	require.Eventually(t, func() bool { return !p.nodes[1].a.Status().Links[0].Up }, time.Second, 5*time.Millisecond)

	p.links[1][0].SetDown(true) // and the public network: alpha is dead to beta
	waitState(t, p, 1, "active")
	assert.Equal(t, uint64(1), p.nodes[1].a.Status().Failovers)
	assert.Equal(t, "dead", p.nodes[1].a.Status().Peer.State)
}

func TestMonitorFailureRestartsThenFailsOver(t *testing.T) {
	p := newPair(t)
	p.start(t, 0)
	p.start(t, 1)
	waitState(t, p, 0, "active")
	waitState(t, p, 1, "standby")
	svc := p.nodes[0].res[1]
	svc.failMonitor.Store(true)
	waitState(t, p, 1, "active")
	assert.GreaterOrEqual(t, svc.starts.Load(), int32(2), "restarted locally first")
	assert.False(t, svc.running.Load())
}

func TestStopFailureFences(t *testing.T) {
	p := newPair(t)
	p.start(t, 0)
	p.start(t, 1)
	waitState(t, p, 0, "active")
	waitState(t, p, 1, "standby")
	p.nodes[0].res[0].failStop.Store(true)
	require.NoError(t, p.nodes[0].a.Command(context.Background(), control.CmdStandby))
	waitState(t, p, 0, "fenced")
	assert.Equal(t, int32(1), p.nodes[0].fenced.Load())
	err := p.nodes[0].a.Command(context.Background(), control.CmdTakeover)
	require.ErrorContains(t, err, "command refused")
	p.nodes[0].res[0].failStop.Store(false) // let Cleanup's shutdown finish
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
