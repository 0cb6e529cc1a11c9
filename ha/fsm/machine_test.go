package fsm

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testConfig() Config {
	return Config{Self: "a", Peer: "b", Links: 2, Resources: []ResourceConfig{
		{Name: "ip", MonitorInterval: time.Second},
		{Name: "fs", MonitorInterval: time.Second, MaxRestarts: 1},
	}}
}

func runs(acts []Action) []RunResource {
	var r []RunResource
	for _, a := range acts {
		if rr, ok := a.(RunResource); ok {
			r = append(r, rr)
		}
	}
	return r
}

func hasState(acts []Action, s NodeState) bool {
	for _, a := range acts {
		if h, ok := a.(SendHeartbeat); ok && h.State == s {
			return true
		}
	}
	return false
}

// complete answers every RunResource with success until none is left.
func complete(m *Machine, acts []Action) []Action {
	var all []Action
	for len(acts) > 0 {
		all = append(all, acts...)
		var next []Action
		for _, r := range runs(acts) {
			next = append(next, m.Step(ResourceResult{Name: r.Name, Op: r.Op, Status: ResRunning})...)
		}
		acts = next
	}
	return all
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		desc string
		mod  func(c *Config)
		want string
	}{
		{desc: "no peer", mod: func(c *Config) { c.Peer = "" }, want: "required"},
		{desc: "same names", mod: func(c *Config) { c.Peer = "a" }, want: "same name"},
		{desc: "bad preferred", mod: func(c *Config) { c.Preferred = "c" }, want: "neither self nor peer"},
		{desc: "deadtime too short", mod: func(c *Config) { c.DeadTime = 300 * time.Millisecond }, want: "twice keepalive"},
		{desc: "initdead too short", mod: func(c *Config) { c.InitDead = 500 * time.Millisecond }, want: "initdead"},
		{desc: "duplicate resource", mod: func(c *Config) { c.Resources[1].Name = "ip" }, want: "duplicate"},
		{desc: "unnamed resource", mod: func(c *Config) { c.Resources[0].Name = "" }, want: "name is required"},
		{desc: "negative restarts", mod: func(c *Config) { c.Resources[0].MaxRestarts = -1 }, want: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c := testConfig()
			tt.mod(&c)
			_, err := New(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	m, err := New(testConfig())
	require.NoError(t, err)
	assert.Equal(t, DefaultDeadTime, m.cfg.DeadTime)
	assert.Equal(t, DefaultKeepalive, m.cfg.Keepalive)
	assert.Equal(t, DefaultInitDead, m.cfg.InitDead)
}

// activeWithPeer brings a to Standby with b Active, heard at time at.
func standbyWithActivePeer(t *testing.T, at time.Duration) *Machine {
	m, err := New(testConfig())
	require.NoError(t, err)
	complete(m, m.Step(Tick{Now: 0}))
	require.Equal(t, Init, m.Status().State)
	acts := m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 1, State: Active, Now: at})
	require.Empty(t, runs(acts))
	require.Equal(t, Standby, m.Status().State)
	return m
}

// The takeover is decided at the first tick at or after last-heard +
// DeadTime, whatever the tick phase.
func TestTakeoverExactlyAtDeadTime(t *testing.T) {
	for _, last := range []time.Duration{300 * time.Millisecond, 317 * time.Millisecond} {
		m := standbyWithActivePeer(t, last)
		deadline := last + DefaultDeadTime
		for now := last; now < deadline; now += 10 * time.Millisecond {
			acts := m.Step(Tick{Now: now})
			require.Empty(t, runs(acts), "started at %v, before last-heard+deadtime %v", now, deadline)
		}
		next := (deadline/(10*time.Millisecond) + 1) * 10 * time.Millisecond
		if deadline%(10*time.Millisecond) == 0 {
			next = deadline
		}
		acts := m.Step(Tick{Now: next})
		r := runs(acts)
		require.NotEmpty(t, r, "no takeover at %v", next)
		assert.Equal(t, RunResource{Name: "ip", Op: OpStart}, r[0])
		assert.True(t, hasState(acts, Starting))
		assert.Equal(t, uint64(1), m.Status().Counters.Failovers)
	}
}

func TestOneLinkKeepsPeerAlive(t *testing.T) {
	m := standbyWithActivePeer(t, 0)
	// Only link 1 carries heartbeats from now on.
	for now := 100 * time.Millisecond; now < 10*time.Second; now += 100 * time.Millisecond {
		acts := m.Step(Tick{Now: now})
		require.Empty(t, runs(acts))
		if now%(200*time.Millisecond) == 0 {
			m.Step(Heartbeat{Link: 1, Node: "b", Boot: 1, Seq: uint64(now / time.Millisecond), State: Active, Now: now})
		}
	}
	st := m.Status()
	assert.Equal(t, Standby, st.State)
	assert.True(t, st.Peer.Alive)
	assert.False(t, st.Links[0].Up)
	assert.True(t, st.Links[1].Up)
}

func TestHeartbeatsEveryKeepalive(t *testing.T) {
	m, err := New(Config{Self: "a", Peer: "b"})
	require.NoError(t, err)
	var sent []time.Duration
	for now := time.Duration(0); now <= time.Second; now += 50 * time.Millisecond {
		for _, a := range m.Step(Tick{Now: now}) {
			if _, ok := a.(SendHeartbeat); ok {
				sent = append(sent, now)
			}
		}
	}
	assert.Equal(t, []time.Duration{0, 200 * time.Millisecond, 400 * time.Millisecond, 600 * time.Millisecond,
		800 * time.Millisecond, time.Second}, sent)
}

func TestIgnoresStrangers(t *testing.T) {
	m, err := New(testConfig())
	require.NoError(t, err)
	complete(m, m.Step(Tick{Now: 0}))
	m.Step(Heartbeat{Link: 0, Node: "c", Boot: 1, Seq: 1, State: Active})
	m.Step(Heartbeat{Link: 5, Node: "b", Boot: 1, Seq: 1, State: Active})
	assert.False(t, m.Status().Peer.Heard)
	acts := m.Step(ResourceResult{Name: "nope", Op: OpStart})
	assert.Empty(t, runs(acts))
	acts = m.Step(ResourceResult{Name: "ip", Op: OpStart}) // not in flight
	assert.Empty(t, runs(acts))
	assert.Equal(t, Init, m.Status().State)
}

// A heartbeat delivered late over a slower link (lower Seq) proves
// liveness but does not roll the peer's state back.
func TestReorderedHeartbeatKeepsNewestState(t *testing.T) {
	m := standbyWithActivePeer(t, 0)
	m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 10, State: Stopping, Now: 100 * time.Millisecond})
	m.Step(Heartbeat{Link: 1, Node: "b", Boot: 1, Seq: 5, State: Active, Now: 110 * time.Millisecond})
	assert.Equal(t, Stopping, m.Status().Peer.State)
	acts := m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 11, State: Standby, Now: 120 * time.Millisecond})
	assert.True(t, hasState(acts, Starting), "a hand-over starts the group at once")
}

func TestStopEscalationFences(t *testing.T) {
	m, err := New(testConfig())
	require.NoError(t, err)
	acts := m.Step(Tick{Now: 0})
	require.Equal(t, []RunResource{{Name: "fs", Op: OpStop}}, runs(acts))
	boom := errors.New("busy")
	acts = m.Step(ResourceResult{Name: "fs", Op: OpStop, Err: boom})
	require.Equal(t, []RunResource{{Name: "fs", Op: OpForceStop}}, runs(acts))
	acts = m.Step(ResourceResult{Name: "fs", Op: OpForceStop, Err: boom})
	require.Equal(t, []RunResource{{Name: "fs", Op: OpStop}}, runs(acts))
	acts = m.Step(ResourceResult{Name: "fs", Op: OpStop, Err: boom})
	var fenced bool
	for _, a := range acts {
		if f, ok := a.(SelfFence); ok {
			fenced = true
			assert.Contains(t, f.Reason, "fs")
		}
	}
	assert.True(t, fenced)
	assert.Equal(t, Fenced, m.Status().State)
	// A fenced node does nothing more but report it.
	acts = m.Step(Tick{Now: time.Hour})
	assert.Empty(t, runs(acts))
	assert.True(t, hasState(acts, Fenced))
}

func TestStatus(t *testing.T) {
	m := standbyWithActivePeer(t, 0)
	st := m.Status()
	assert.Equal(t, "a", st.Node)
	assert.Equal(t, PeerStatus{Name: "b", Heard: true, Alive: true, State: Active, Boot: 1}, st.Peer)
	require.Len(t, st.Resources, 2)
	assert.Equal(t, ResourceStatus{Name: "ip", Status: ResStopped, Op: OpStop}, st.Resources[0])
	assert.Equal(t, []LinkStatus{{Heard: true, Up: true}, {}}, st.Links)
}

func TestStrings(t *testing.T) {
	assert.Equal(t, "Maintenance", Maintenance.String())
	assert.Equal(t, "NodeState(99)", NodeState(99).String())
	assert.Equal(t, "forcestop", OpForceStop.String())
	assert.Equal(t, "failed", ResFailed.String())
	assert.Equal(t, "maintenance-off", CmdMaintenanceOff.String())
}

// TestStaleReleasedIgnored: the guard's released heartbeat names the run
// that died. When the agent's next run is heard first (a restart that beat
// the guard), the late word is about an earlier run: the peer stays alive
// and is not taken for dead, which left a node "dead" to its peer for good.
func TestStaleReleasedIgnored(t *testing.T) {
	m := standbyWithActivePeer(t, 0) // the peer's run has Boot 1
	now := 100 * time.Millisecond
	// The peer's agent died and restarted (Boot 2) before its guard spoke.
	m.Step(Heartbeat{Link: 0, Node: "b", Boot: 2, Seq: 1, State: Standby, Now: now})
	acts := m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 1 << 63, State: Standby, Flags: FlagYield, Released: true, Now: now})
	st := m.Status()
	assert.True(t, st.Peer.Alive, "the new run stays alive")
	assert.False(t, st.Peer.Released)
	assert.Empty(t, runs(acts))
	m.Step(Heartbeat{Link: 0, Node: "b", Boot: 2, Seq: 2, State: Standby, Now: now + 200*time.Millisecond})
	assert.True(t, m.Status().Peer.Alive)

	// Control: the same word before the restart is taken: the peer is down.
	m = standbyWithActivePeer(t, 0)
	m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 1 << 63, State: Standby, Flags: FlagYield, Released: true, Now: now})
	assert.True(t, m.Status().Peer.Released)
	assert.False(t, m.Status().Peer.Alive)
}
