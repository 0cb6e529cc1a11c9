package fsm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func notified(acts []Action, msg string) (Notify, bool) {
	for _, a := range acts {
		if n, ok := a.(Notify); ok && n.Msg == msg {
			return n, true
		}
	}
	return Notify{}, false
}

func attr(n Notify, key string) any {
	for i := 0; i+1 < len(n.Attrs); i += 2 {
		if n.Attrs[i] == key {
			return n.Attrs[i+1]
		}
	}
	return nil
}

// TestPeerDeadAtTheDeadline: a runtime that ticks only at NextDeadline
// declares the peer dead at last heard + DeadTime exactly, not a tick
// period later; one nanosecond before, it is alive.
func TestPeerDeadAtTheDeadline(t *testing.T) {
	cfg := testConfig()
	cfg.DeadTime, cfg.Keepalive = 2*time.Second, 500*time.Millisecond
	m, err := New(cfg)
	require.NoError(t, err)
	complete(m, m.Step(Tick{Now: 0}))
	heard := 300 * time.Millisecond
	complete(m, m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 1, State: Active, Now: heard}))
	require.True(t, m.Status().Peer.Alive)

	deadline := heard + cfg.DeadTime
	for {
		at, ok := m.NextDeadline()
		require.True(t, ok, "a heard peer always leaves a deadline")
		require.LessOrEqual(t, at, deadline, "the peer's deadline must not be skipped")
		if at == deadline {
			break
		}
		acts := complete(m, m.Step(Tick{Now: at}))
		_, dead := notified(acts, "peer dead")
		require.False(t, dead, "peer declared dead at %v, before its deadline %v", at, deadline)
	}
	acts := m.Step(Tick{Now: deadline - 1})
	_, dead := notified(acts, "peer dead")
	require.False(t, dead, "one nanosecond before the deadline the peer is alive")
	n, dead := notified(m.Step(Tick{Now: deadline}), "peer dead")
	require.True(t, dead)
	assert.Equal(t, cfg.DeadTime, attr(n, "silent"))
}

func TestNextDeadlineCoversInitDeadAndMonitors(t *testing.T) {
	cfg := testConfig()
	m, err := New(cfg)
	require.NoError(t, err)
	_, ok := m.NextDeadline()
	assert.False(t, ok, "nothing is pending before the first event")
	complete(m, m.Step(Tick{Now: 0}))
	// Alone: tick only at the deadlines until the group runs after initdead.
	var now time.Duration
	for m.Status().State != Active {
		at, ok := m.NextDeadline()
		require.True(t, ok)
		require.Greater(t, at, now)
		now = at
		require.LessOrEqual(t, now, DefaultInitDead, "initdead passed without the group starting")
		complete(m, m.Step(Tick{Now: now}))
	}
	assert.Equal(t, DefaultInitDead, now, "the group starts at initdead itself")
	// Active: the next monitor is a deadline.
	acts := []Action{}
	for len(runs(acts)) == 0 {
		at, ok := m.NextDeadline()
		require.True(t, ok)
		require.LessOrEqual(t, at, now+time.Second)
		now = at
		acts = m.Step(Tick{Now: now})
	}
	assert.Equal(t, DefaultInitDead+time.Second, now, "monitors run at their interval")
}

// TestReleasedPeerStaysDownForItsDeadRun: after the guard's released
// heartbeat, a late keepalive or disk slot of the run that died does not
// bring the peer back (it would make this node yield to a dead agent); a
// new run of the peer's agent does.
func TestReleasedPeerStaysDownForItsDeadRun(t *testing.T) {
	cfg := testConfig()
	cfg.Preferred, cfg.Arbiter = "b", true
	m, err := New(cfg)
	require.NoError(t, err)
	complete(m, m.Step(Tick{Now: 0}))
	complete(m, m.Step(DiskStatus{OK: true, Now: 0}))
	complete(m, m.Step(Heartbeat{Link: 0, Node: "b", Boot: 10, Seq: 1, State: Active, Flags: FlagAck, Now: time.Millisecond}))
	require.Equal(t, Standby, m.Status().State)

	acts := complete(m, m.Step(Heartbeat{Link: 1, Node: "b", Boot: 11, Seq: 1, Released: true, Now: 2 * time.Millisecond}))
	_, ok := notified(acts, "taking over from released peer")
	require.True(t, ok)
	require.Equal(t, Active, m.Status().State, "no acknowledgement awaited from a released peer")
	assert.True(t, m.Status().Peer.Released)

	complete(m, m.Step(Heartbeat{Link: 0, Node: "b", Boot: 10, Seq: 2, State: Active, Now: 3 * time.Millisecond}))
	complete(m, m.Step(DiskBeat{Node: "b", Boot: 10, Seq: 7, State: Active, Now: 4 * time.Millisecond}))
	st := m.Status()
	assert.False(t, st.Peer.Alive, "the dead run's datagrams do not revive the peer")
	assert.Equal(t, Active, st.State)

	complete(m, m.Step(Heartbeat{Link: 0, Node: "b", Boot: 12, Seq: 1, State: Init, Now: 5 * time.Millisecond}))
	st = m.Status()
	assert.True(t, st.Peer.Alive, "a new run of the peer's agent is heard")
	assert.False(t, st.Peer.Released)
}

// TestFencedRestoredFromAnEarlierRun: a node whose storage fencing was
// persisted starts Fenced, forces and stops its leftovers without running
// the self-fence action again, lets the peer in (FlagYield) and leaves
// only on CmdRejoin.
func TestFencedRestoredFromAnEarlierRun(t *testing.T) {
	cfg := testConfig()
	cfg.FencedBy = "storage fenced this node (fs): key preempted"
	m, err := New(cfg)
	require.NoError(t, err)
	acts := m.Step(Tick{Now: 0})
	var ops []string
	for len(runs(acts)) > 0 {
		var next []Action
		for _, a := range acts {
			_, fence := a.(SelfFence)
			require.False(t, fence, "the self-fence ran in the earlier run")
		}
		for _, r := range runs(acts) {
			ops = append(ops, r.Op.String()+" "+r.Name)
			next = append(next, m.Step(ResourceResult{Name: r.Name, Op: r.Op})...)
		}
		acts = next
	}
	assert.Equal(t, []string{"forcestop fs", "stop fs", "forcestop ip", "stop ip"}, ops)
	st := m.Status()
	assert.Equal(t, Fenced, st.State)
	assert.True(t, st.StorageFenced)
	assert.Equal(t, cfg.FencedBy, st.FencedBy)
	assert.NotZero(t, st.Flags&FlagYield, "stopped: the peer may take the group")

	m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 1, State: Active, Now: time.Millisecond})
	m.Step(Tick{Now: time.Hour})
	assert.Equal(t, Fenced, m.Status().State, "nothing but rejoin leaves Fenced")
	m.Step(Heartbeat{Link: 0, Node: "b", Boot: 1, Seq: 2, State: Active, Now: time.Hour})
	m.Step(ReservationHolder{Node: "b"})
	m.Step(Command{Kind: CmdRejoin})
	st = m.Status()
	assert.Equal(t, Standby, st.State)
	assert.False(t, st.StorageFenced)
}
