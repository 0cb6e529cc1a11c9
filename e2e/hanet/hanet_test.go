package hanet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/e2e/hanet"
)

var agentBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "hanet-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		agentBin = filepath.Join(dir, "tandem-agent")
		out, err := exec.Command("go", "build", "-o", agentBin, "github.com/tandem-ha/tandem/ha/cmd/tandem-agent").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build tandem-agent: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// Fast timings keep the package well under 90 s; bench-failover measures
// the defaults.
var timing = hanet.Timing{Keepalive: 100 * time.Millisecond, DeadTime: 500 * time.Millisecond, InitDead: 2 * time.Second}

func newLab(t *testing.T, opt hanet.Options) *hanet.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("hanet: skipped, needs root to create network namespaces (run as root: go test ./e2e/hanet/)")
	}
	if opt.Timing == (hanet.Timing{}) {
		opt.Timing = timing
	}
	opt.AgentBin, opt.Dir = agentBin, t.TempDir()
	l, err := hanet.New(opt)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for i := range 2 {
				b, _ := os.ReadFile(l.AgentLog(i))
				t.Logf("=== %s agent log\n%s", hanet.Nodes[i], tail(string(b), 60))
			}
		}
		l.Close()
	})
	return l
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startPair starts both agents and waits for the preferred node (alpha)
// to answer on the VIP.
func startPair(t *testing.T, l *hanet.Lab) {
	t.Helper()
	require.NoError(t, l.Start(0))
	require.NoError(t, l.Start(1))
	_, err := l.WaitVIP(ctxT(t, 10*time.Second), "alpha", 20*time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 0, "active"))
	require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 1, "standby"))
}

func TestVIPFailover(t *testing.T) {
	l := newLab(t, hanet.Options{})
	startPair(t, l)
	st, err := l.Client(0).Status(ctxT(t, 2*time.Second))
	require.NoError(t, err)
	assert.Equal(t, "active", st.Node.State)
	assert.True(t, st.Peer.Alive)
	require.Len(t, st.Links, 2)
	for _, link := range st.Links {
		assert.True(t, link.Up, link.Name)
		assert.Positive(t, link.Received, link.Name)
	}

	t.Run("dedicated link cut: no failover", func(t *testing.T) {
		require.NoError(t, l.CutDedicated(true))
		deadline := time.Now().Add(4 * timing.DeadTime)
		for time.Now().Before(deadline) {
			got, err := l.Probe(200 * time.Millisecond)
			require.NoError(t, err)
			require.Equal(t, "alpha", got)
			time.Sleep(50 * time.Millisecond)
		}
		assert.False(t, l.HasVIP(1), "beta must not take the VIP while alpha is heard on the public network")
		st, err := l.Client(1).Status(ctxT(t, 2*time.Second))
		require.NoError(t, err)
		assert.Equal(t, "standby", st.Node.State)
		assert.False(t, st.Links[0].Up)
		assert.True(t, st.Links[1].Up)
		require.NoError(t, l.CutDedicated(false))
	})

	t.Run("standby and takeover move the group", func(t *testing.T) {
		require.NoError(t, l.Client(0).Standby(ctxT(t, 2*time.Second)))
		_, err := l.WaitVIP(ctxT(t, 10*time.Second), "beta", 20*time.Millisecond)
		require.NoError(t, err)
		require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 0, "standby"))
		assert.False(t, l.HasVIP(0))
		require.NoError(t, l.Client(0).Takeover(ctxT(t, 2*time.Second)))
		_, err = l.WaitVIP(ctxT(t, 10*time.Second), "alpha", 20*time.Millisecond)
		require.NoError(t, err)
		require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 1, "standby"))
		assert.False(t, l.HasVIP(1))
	})

	t.Run("kill -9 of the active agent", func(t *testing.T) {
		l.Kill(0)
		// The dead agent's guard releases the VIP: no dual active, unlike
		// heartbeat, whose killed daemon's node kept the resources.
		require.Eventually(t, func() bool { return !l.HasVIP(0) }, 5*time.Second, 10*time.Millisecond)
		_, err := l.WaitVIP(ctxT(t, 5*time.Second), "beta", 20*time.Millisecond)
		require.NoError(t, err)
		// alpha comes back: it stops its leftovers and stays standby.
		require.NoError(t, l.Start(0))
		require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 0, "standby"))
		assert.False(t, l.HasVIP(0), "a restarted agent removes the VIP it left behind")
		got, err := l.Probe(time.Second)
		require.NoError(t, err)
		assert.Equal(t, "beta", got)
	})

	t.Run("power off of the active node", func(t *testing.T) {
		require.NoError(t, l.PowerOff(1))
		_, err := l.WaitVIP(ctxT(t, 5*time.Second), "alpha", 20*time.Millisecond)
		require.NoError(t, err)
		require.NoError(t, l.PowerOn(1))
		require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 1, "standby"))
	})
}

func TestMonitorFailureRestartsThenFailsOver(t *testing.T) {
	l := newLab(t, hanet.Options{ScriptMonitor: 200 * time.Millisecond, MaxRestarts: 1})
	startPair(t, l)
	require.NoError(t, os.WriteFile(l.FailMonitorFile(0), nil, 0o644))
	_, err := l.WaitVIP(ctxT(t, 10*time.Second), "beta", 20*time.Millisecond)
	require.NoError(t, err)
	b, err := os.ReadFile(l.ScriptLog(0))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, strings.Count(string(b), "start\n"), 2, "alpha restarted the script before failing over:\n%s", b)
	assert.False(t, l.HasVIP(0))
}

func TestStopFailureSelfFences(t *testing.T) {
	l := newLab(t, hanet.Options{})
	startPair(t, l)
	require.NoError(t, os.WriteFile(l.FailStopFile(0), nil, 0o644))
	require.NoError(t, l.Client(0).Standby(ctxT(t, 2*time.Second)))
	require.Eventually(t, func() bool {
		_, err := os.Stat(l.FencedFile(0))
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "self-fence command did not run")
	require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 0, "fenced"))
	os.Remove(l.FailStopFile(0))
}

// TestKillServesWithin200ms: kill -9 of the active agent; its guard
// releases the group and tells the peer (a released heartbeat), so the
// peer serves the VIP well before deadtime: within 0.2 s of the kill,
// measured from the client's side. Three kills, back and forth.
func TestKillServesWithin200ms(t *testing.T) {
	l := newLab(t, hanet.Options{Timing: hanet.Timing{Keepalive: 200 * time.Millisecond, DeadTime: time.Second, InitDead: 2 * time.Second}})
	startPair(t, l)
	holder := 0
	var took []time.Duration
	for range 3 {
		other := 1 - holder
		t0 := time.Now()
		l.Kill(holder)
		at, err := l.WaitVIP(ctxT(t, 5*time.Second), hanet.Nodes[other], 10*time.Millisecond)
		require.NoError(t, err)
		took = append(took, at.Sub(t0))
		assert.False(t, l.HasVIP(holder), "the guard removed the VIP of the killed agent")
		require.NoError(t, l.Start(holder))
		require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), holder, "standby"))
		holder = other
	}
	t.Logf("kill -9 -> VIP served by the peer: %v (deadtime 1s)", took)
	for _, d := range took {
		assert.Less(t, d, 200*time.Millisecond, "the peer waited for deadtime instead of the guard's released heartbeat")
	}
}

// TestHealedSplitBrainClientBackWithin1s: both node-to-node links cut
// (no fencing in this lab): beta takes the VIP too and its gratuitous ARP
// moves the client to beta's MAC. On the heal alpha (preferred) keeps the
// group and beta stops; the client, probing through its own ARP cache
// (its neighbour table is never flushed here), must reach alpha within
// 1 s of the heal: alpha re-announces the VIP. Without that the client
// kept beta's MAC until its ARP entry went stale (26-42 s).
func TestHealedSplitBrainClientBackWithin1s(t *testing.T) {
	l := newLab(t, hanet.Options{Timing: hanet.Timing{Keepalive: 200 * time.Millisecond, DeadTime: time.Second, InitDead: 2 * time.Second}})
	startPair(t, l)
	var took []time.Duration
	for range 2 {
		require.NoError(t, l.CutHeartbeat(true))
		_, err := l.WaitVIP(ctxT(t, 10*time.Second), "beta", 20*time.Millisecond)
		require.NoError(t, err, "beta takes the VIP in the split brain and the client follows its gratuitous ARP")
		assert.True(t, l.HasVIP(0), "alpha keeps the VIP: dual active")
		healed := time.Now()
		require.NoError(t, l.CutHeartbeat(false))
		at, err := l.WaitVIP(ctxT(t, 45*time.Second), "alpha", 20*time.Millisecond)
		require.NoError(t, err)
		took = append(took, at.Sub(healed))
		require.NoError(t, l.WaitState(ctxT(t, 5*time.Second), 1, "standby"))
		assert.False(t, l.HasVIP(1))
	}
	t.Logf("heal -> client served by alpha through its own ARP cache: %v", took)
	for _, d := range took {
		assert.Less(t, d, time.Second, "the client kept the loser's MAC")
	}
}
