package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/heartbeat"
	"github.com/tandem-ha/tandem/ha/internal/clock"
	"github.com/tandem-ha/tandem/ha/link"
	"github.com/tandem-ha/tandem/ha/resource"
)

// opLog records the operations of recRes resources in order.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, s)
}

func (l *opLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ops...)
}

// recRes is a Forcer whose Stop fails the first failStops times, or hangs
// until its context ends while hang is set (then clears hang).
type recRes struct {
	name      string
	log       *opLog
	failStops int
	hang      bool
}

func (r *recRes) Name() string { return r.name }
func (r *recRes) Start(context.Context) error {
	r.log.add("start " + r.name)
	return nil
}
func (r *recRes) Stop(ctx context.Context) error {
	r.log.add("stop " + r.name)
	if r.hang {
		r.hang = false
		<-ctx.Done()
		return nil // the runtime reports the expired context
	}
	if r.failStops > 0 {
		r.failStops--
		return errors.New("device busy")
	}
	return nil
}
func (r *recRes) ForceStop(context.Context) error {
	r.log.add("force " + r.name)
	return nil
}
func (r *recRes) Monitor(context.Context) (resource.Status, error) {
	return resource.StatusRunning, nil
}

// noLinks: the release tests that are not about the released heartbeat
// send none.
var noLinks = []link.Transport{}

func releaseGroup(l *opLog, svc *recRes) []resource.Resource {
	return []resource.Resource{&recRes{name: "vip", log: l}, svc}
}

func TestReleaseStopsInReverseOrder(t *testing.T) {
	l := &opLog{}
	fenced := 0
	err := Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l}),
		Fence: func(string) { fenced++ }, Clock: clock.NewFake(time.Unix(0, 0)), Transports: noLinks, Log: logger(t)})
	require.NoError(t, err)
	assert.Equal(t, []string{"stop svc", "stop vip"}, l.get())
	assert.Zero(t, fenced)
}

func TestReleaseForcesAFailedStop(t *testing.T) {
	l := &opLog{}
	fenced := 0
	err := Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l, failStops: 1}),
		Fence: func(string) { fenced++ }, Clock: clock.NewFake(time.Unix(0, 0)), Transports: noLinks, Log: logger(t)})
	require.NoError(t, err)
	assert.Equal(t, []string{"stop svc", "force svc", "stop svc", "stop vip"}, l.get())
	assert.Zero(t, fenced)
}

func TestReleaseFencesWhenStopFailsAfterForce(t *testing.T) {
	l := &opLog{}
	var reasons []string
	err := Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l, failStops: 2}),
		Fence: func(r string) { reasons = append(reasons, r) }, Clock: clock.NewFake(time.Unix(0, 0)), Transports: noLinks, Log: logger(t)})
	require.ErrorIs(t, err, ErrNotReleased)
	assert.Equal(t, []string{"stop svc", "force svc", "stop svc"}, l.get(), "nothing after the fence decision")
	require.Len(t, reasons, 1)
	assert.Contains(t, reasons[0], "svc")
}

// A stop that hangs ends at its StopTimeout on the injected clock, then
// escalates like a failed one.
func TestReleaseTimesOutAHangingStopOnTheClock(t *testing.T) {
	l := &opLog{}
	clk := clock.NewFake(time.Unix(0, 0))
	cfg := testConfig(0)
	done := make(chan error, 1)
	go func() {
		done <- Release(cfg, ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l, hang: true}),
			Fence: func(string) { t.Error("fenced") }, Clock: clk, Transports: noLinks, Log: logger(t)})
	}()
	require.Eventually(t, func() bool { return clk.Timers() == 1 }, 10*time.Second, time.Millisecond, "stop armed its timeout")
	clk.Advance(cfg.Resources[1].StopTimeout - time.Millisecond)
	assert.Empty(t, done, "still within the stop timeout")
	assert.Equal(t, []string{"stop svc"}, l.get())
	clk.Advance(time.Millisecond)
	require.NoError(t, <-done)
	assert.Equal(t, []string{"stop svc", "force svc", "stop svc", "stop vip"}, l.get())
}

// TestKilledAgentsPeerTakesOverAtOnce: the guard's Release sends a
// released heartbeat on every link once the group is stopped; the peer's
// agent takes the group at once, well before deadtime, with no
// acknowledgement from the dead node.
func TestKilledAgentsPeerTakesOverAtOnce(t *testing.T) {
	p := newPair(t)
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	// kill -9 of alpha: its loop stops, its resources keep running.
	p.nodes[0].started = false
	p.nodes[0].a.closeLinks()
	l := &opLog{}
	inbox := make(chan link.Datagram, 4)
	guard := [2]*link.Mem{}
	for i := range 2 {
		g, _ := link.MemPair(i, inbox, p.nodes[1].inbox)
		guard[i] = g
	}
	killed := p.elapsed()
	require.NoError(t, Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l}),
		Clock: p.clk, Transports: []link.Transport{guard[0], guard[1]}, Boot: p.nodes[0].a.Boot(), Log: logger(t)}))
	assert.Equal(t, []string{"stop svc", "stop vip"}, l.get())
	p.until(time.Second, func() bool { return p.state(1) == "active" }, "beta takes over")
	dead := testConfig(0).Timing.DeadTime
	// Handed to the lockstep at the next quantum, then latency in flight.
	assert.LessOrEqual(t, p.elapsed()-killed, quantum+latency, "beta starts when the released heartbeat arrives, not after deadtime %v", dead)
	st := p.nodes[1].a.Status()
	assert.Equal(t, "dead", st.Peer.State)
	assert.Equal(t, uint64(1), st.Failovers)
	b := p.nodes[1].a
	assert.True(t, b.state.Peer.Released)
	assert.Equal(t, fsm.Active, b.state.State)
}

// TestReleaseThatFencedSendsNothing: after a self-fence something may still
// run, so the peer must wait for deadtime.
func TestReleaseThatFencedSendsNothing(t *testing.T) {
	l := &opLog{}
	inbox := make(chan link.Datagram, 4)
	g, _ := link.MemPair(0, make(chan link.Datagram, 4), inbox)
	err := Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l, failStops: 2}),
		Fence: func(string) {}, Clock: clock.NewFake(time.Unix(0, 0)), Transports: []link.Transport{g}, Log: logger(t)})
	require.ErrorIs(t, err, ErrNotReleased)
	assert.Empty(t, inbox)
}

// TestReleasedNamesTheDeadRun: the released heartbeat carries the dead
// agent's boot generation, with a sequence number above any it sent, so a
// peer that already hears the next run drops it (a fresh boot made the
// peer take the restarted agent for dead, found by make soak); without the
// boot nothing is sent.
func TestReleasedNamesTheDeadRun(t *testing.T) {
	for _, boot := range []uint64{0, 4242} {
		l := &opLog{}
		inbox := make(chan link.Datagram, 4)
		g, _ := link.MemPair(0, make(chan link.Datagram, 4), inbox)
		cfg := testConfig(0)
		require.NoError(t, Release(cfg, ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l}),
			Clock: clock.NewFake(time.Unix(0, 0)), Transports: []link.Transport{g}, Boot: boot, Log: logger(t)}))
		if boot == 0 {
			assert.Empty(t, inbox, "no boot: no word")
			continue
		}
		require.Len(t, inbox, 1)
		m, err := heartbeat.Open(cfg.Key, (<-inbox).Data)
		require.NoError(t, err)
		assert.Equal(t, heartbeat.TypeReleased, m.Type)
		assert.Equal(t, boot, m.Boot)
		assert.GreaterOrEqual(t, m.Seq, uint64(1<<63))
	}
}
