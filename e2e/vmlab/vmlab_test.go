package vmlab

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/e2e/labcheck"
	"github.com/tandem-ha/tandem/ha/config"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // the agent's resource types, for Load
)

// TestAgentConfig: the imported seed plus the fence gives the group in
// the order, and the written file loads as the agent would.
func TestAgentConfig(t *testing.T) {
	c, findings, err := AgentConfig(Slave, DefaultTiming, true)
	require.NoError(t, err)
	var order []string
	for _, r := range c.Resources {
		order = append(order, r.Type)
	}
	assert.Equal(t, []string{"iscsi", "fence", "filesystem", "mq", "vip"}, order)
	assert.Equal(t, "MQSlave", c.Node)
	assert.Equal(t, "MQMaster", c.Failback.Preferred, "haresources names MQMaster")
	assert.Equal(t, VIP.String(), c.Resources[4].Params["address"])
	assert.NotEmpty(t, findings, "the importer says what heartbeat lacked (fencing)")

	dir := t.TempDir()
	key := filepath.Join(dir, "authkey")
	require.NoError(t, os.WriteFile(key, []byte("mqha-vm-lab-key-4f1c9a0b7d2e\n"), 0o600))
	c.KeyFile = key
	p := filepath.Join(dir, "agent.yaml")
	require.NoError(t, c.WriteFile(p))
	loaded, err := config.Load(p, config.Options{})
	require.NoError(t, err)
	assert.Equal(t, 200*time.Millisecond, loaded.Timing.Keepalive)
	assert.Len(t, loaded.Links, 2, "the dedicated and the public link")

	nf, _, err := AgentConfig(Master, DefaultTiming, false)
	require.NoError(t, err)
	for _, r := range nf.Resources {
		assert.NotEqual(t, "fence", r.Type, "the negative control has no fence")
	}
}

func TestSlogMsg(t *testing.T) {
	for _, tc := range []struct{ desc, line, want string }{
		{"quoted", `time=x level=INFO msg="filesystem mounted" node=A`, "filesystem mounted"},
		{"bare", `time=x level=INFO msg=running node=A`, "running"},
		{"none", `[ 1.0] kernel line`, ""},
	} {
		assert.Equal(t, tc.want, SlogMsg(tc.line), tc.desc)
	}
}

// Every scenario is listed once in the report's order, under its own name.
func TestScenarioNames(t *testing.T) {
	assert.Len(t, ScenarioNames, len(Scenarios))
	for _, n := range ScenarioNames {
		sc, ok := Scenarios[n]
		require.True(t, ok, n)
		assert.Equal(t, n, sc.Name)
		assert.NotNil(t, sc.Inject, n)
	}
}

func TestFSEventsAndSplit(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	evs := []Event{
		{At: at(0), Node: "MQMaster", Msg: "filesystem mounted"},
		{At: at(1000), Node: "lab", Msg: "power off", Line: "power off node=MQMaster"},
		{At: at(2000), Node: "MQSlave", Msg: "peer dead"},
		{At: at(2000), Node: "MQSlave", Msg: "state", Line: `msg=state node=MQSlave from=Standby to=Starting reason="peer dead"`},
		{At: at(2500), Node: "MQSlave", Msg: "storage taken: our key holds the reservation on every LUN"},
		{At: at(3000), Node: "MQSlave", Msg: "filesystem mounted"},
		{At: at(3500), Node: "MQSlave", Msg: "running"},
		{At: at(3600), Node: "MQSlave", Msg: "vip added"},
		{At: at(3700), Node: "MQSlave", Msg: "preempted the other node's key"},
	}
	ms := labcheck.Intervals(FSEvents(evs))
	assert.Equal(t, []labcheck.Mount{{Node: "MQMaster", From: at(0), To: at(1000)}, {Node: "MQSlave", From: at(3000)}}, ms)
	assert.Empty(t, labcheck.Overlaps(ms))
	puts := []labcheck.Put{{Seq: 8, Start: at(1100), End: at(1200), Outcome: labcheck.OK}, {Seq: 9, Start: at(3650), End: at(3800), Outcome: labcheck.OK}}
	s := Split(evs, puts, at(1000), "MQSlave")
	assert.Equal(t, map[string]time.Duration{"detection": time.Second, "iscsi+fence": 500 * time.Millisecond,
		"fsck+mount": 500 * time.Millisecond, "mq start": 500 * time.Millisecond, "vip": 100 * time.Millisecond,
		"client": 200 * time.Millisecond}, s)
	assert.Equal(t, []labcheck.Fence{{Node: "MQMaster", At: at(3700)}}, Fences(evs))
	assert.Equal(t, NodeIQN(Master), Initiators()["MQMaster"])
}

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	o := Outcome{Scenario: "power-off", Start: t0, Fault: at(1000), Events: []Event{
		{At: at(1000), Node: "lab", Msg: "power off"},
		{At: at(2000), Node: "MQSlave", Msg: "peer dead"},
		{At: at(2000), Node: "MQSlave", Msg: "state", Line: `msg=state node=MQSlave from=Standby to=Starting reason="peer dead"`},
		{At: at(3000), Node: "MQSlave", Msg: "filesystem mounted"},
		{At: at(3100), Node: "MQSlave", Msg: "state"},
	}, Puts: []labcheck.Put{
		{Seq: 1, End: at(900), Outcome: labcheck.OK}, {Seq: 2, End: at(1900), Outcome: labcheck.Info},
	}}
	svg, err := Timeline(o)
	require.NoError(t, err)
	s := string(svg)
	assert.Contains(t, s, "<svg")
	for _, want := range []string{"MQMaster", "MQSlave", "client", "put ok", "put failed", "fsck+mount", "heartbeat", "seconds from the fault"} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, ">iscsi<", "no iscsi step in this run: no legend entry")

	k, ok := MarkOf(Event{Node: "MQSlave", Msg: "state"})
	assert.False(t, ok, "state lines are not drawn: %s", k)
	k, _ = MarkOf(Event{Node: "MQSlave", Msg: "preempted the other node's key"})
	assert.Equal(t, MarkFence, k)
}

func TestChaosScheduleIsSeeded(t *testing.T) {
	draw := func(seed uint64) []string {
		next := Chaos(seed)
		var out []string
		for range 20 {
			out = append(out, next().Name)
		}
		return out
	}
	a := draw(42)
	assert.Equal(t, a, draw(42), "same seed, same schedule")
	assert.NotEqual(t, a, draw(43))
	seen := map[string]bool{}
	for _, n := range a {
		seen[n] = true
	}
	assert.Greater(t, len(seen), 3, "draws from several scenarios")
}
