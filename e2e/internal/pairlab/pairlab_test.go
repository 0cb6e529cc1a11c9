package pairlab

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
)

// TestConfigLoads: the base config a lab writes is one the agent loads,
// with both links resolved for the node it names.
func TestConfigLoads(t *testing.T) {
	dir := t.TempDir()
	p := &Pair{opt: Options{
		Cluster: "lab", Nodes: [2]string{"alpha", "beta"}, Dir: dir, LogLevel: "warn",
		Timing: config.Timing{Keepalive: 100 * time.Millisecond},
		Net: Net{DedicatedIf: "hb", PublicIf: "pub", Group: "239.192.1.1",
			Dedicated: [2]netip.Prefix{netip.MustParsePrefix("10.9.1.1/24"), netip.MustParsePrefix("10.9.1.2/24")}},
	}}
	require.NoError(t, os.WriteFile(p.Path("authkey"), []byte("0123456789abcdef0123\n"), 0o600))
	require.NoError(t, p.WriteConfigs(p.Config))
	c, err := config.Load(p.ConfigFile(1), config.Options{})
	require.NoError(t, err)
	assert.Equal(t, "beta", c.Node)
	assert.Equal(t, "alpha", c.Peer)
	assert.Equal(t, netip.MustParseAddr("10.9.1.1"), c.Links[0].Peer)
	assert.Equal(t, netip.MustParseAddr("239.192.1.1"), c.Links[1].Peer)
	assert.Equal(t, 100*time.Millisecond, c.Timing.Keepalive)
	assert.Equal(t, config.DefaultConfig().Timing.DeadTime, c.Timing.DeadTime, "zero timing fields take the agent's defaults")
	assert.Equal(t, "touch "+p.FencedFile(1), c.SelfFence.Command)

	// Negative control: without the key the agent refuses the config.
	require.NoError(t, os.Remove(p.Path("authkey")))
	_, err = config.Load(p.ConfigFile(1), config.Options{})
	assert.Error(t, err)
}
