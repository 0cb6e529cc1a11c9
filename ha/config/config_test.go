package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
)

type dummy struct{ name string }

func (d dummy) Name() string                                   { return d.name }
func (dummy) Start(context.Context) error                      { return nil }
func (dummy) Stop(context.Context) error                       { return nil }
func (dummy) Monitor(context.Context) (resource.Status, error) { return resource.StatusRunning, nil }

func init() {
	resource.Register("configtest", []resource.Param{{Key: "bad"}, {Key: "flag"}, {Key: "num"}, {Key: "empty"}, {Key: "space"}}, func(s resource.Spec, _ *slog.Logger) (resource.Resource, error) {
		if s.Params["bad"] != "" {
			return nil, s.Err("params.bad", "is set", "remove it")
		}
		return dummy{s.Name}, nil
	})
}

func keyFile(t *testing.T, mode os.FileMode, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "authkey")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

const good = `
cluster: lab
nodes: [alpha, beta]
node: alpha
key_file: %s
timing: {keepalive: 100ms, deadtime: 500ms, initdead: 2s}
links:
  - name: hb
    mode: unicast
    interface: hb0
    addresses: {alpha: 10.9.1.1, beta: 10.9.1.2}
  - name: pub
    mode: multicast
    interface: pub0
    group: 239.192.76.94
    port: 7000
  - mode: broadcast
    interface: pub0
resources:
  - {type: configtest, name: r1, max_restarts: 3, monitor: {interval: 1s}}
failback: {auto_failback: true, preferred: beta}
self_fence: {action: command, command: "touch /tmp/x"}
`

func TestParseGood(t *testing.T) {
	kf := keyFile(t, 0o600, "0123456789abcdef0123\n")
	c, err := Parse([]byte(fmt.Sprintf(good, kf)), Options{})
	require.NoError(t, err)
	assert.Equal(t, "alpha", c.Node)
	assert.Equal(t, "beta", c.Peer)
	assert.Equal(t, []byte("0123456789abcdef0123"), c.Key)
	assert.Equal(t, 100*time.Millisecond, c.Timing.Keepalive)
	require.Len(t, c.Links, 3)
	assert.Equal(t, "10.9.1.1", c.Links[0].Local.String())
	assert.Equal(t, "10.9.1.2", c.Links[0].Peer.String())
	assert.Equal(t, DefaultPort, c.Links[0].Port)
	assert.Equal(t, "239.192.76.94", c.Links[1].Peer.String())
	assert.Equal(t, 7000, c.Links[1].Port)
	assert.Equal(t, "link2", c.Links[2].Name)
	assert.Equal(t, "255.255.255.255", c.Links[2].Peer.String())
	require.Len(t, c.Resources, 1)
	assert.Equal(t, 3, c.Resources[0].MaxRestarts)
	assert.Equal(t, time.Second, c.Resources[0].Monitor.Interval)
	assert.Equal(t, resource.DefaultStopTimeout, c.Resources[0].StopTimeout)
	assert.True(t, c.Failback.AutoFailback)
	assert.Equal(t, "/run/tandem/agent.sock", c.ControlSocket)

	assert.False(t, c.DiskHeartbeat.Enabled())
	c, err = Parse([]byte(fmt.Sprintf(good, kf)+"disk_heartbeat: {portal: 10.0.0.1:3260, target: iqn.2026-11.io.tandem:arb, lun: 1, base_lba: 8}\n"), Options{})
	require.NoError(t, err)
	assert.True(t, c.DiskHeartbeat.Enabled())
	assert.Equal(t, uint64(1), c.DiskHeartbeat.LUN)
	assert.Equal(t, uint64(8), c.DiskHeartbeat.BaseLBA)

	c, err = Parse([]byte(fmt.Sprintf(good, kf)), Options{Node: "beta"})
	require.NoError(t, err)
	assert.Equal(t, "alpha", c.Peer)
	assert.Equal(t, "10.9.1.1", c.Links[0].Peer.String())
}

func TestParseErrors(t *testing.T) {
	kf := keyFile(t, 0o600, "0123456789abcdef0123")
	for _, tc := range []struct {
		desc, yaml, want string
		opt              Options
	}{
		{desc: "node not listed", yaml: fmt.Sprintf(good, kf), opt: Options{Node: "gamma"},
			want: `node: this node is "gamma" but nodes lists "alpha" and "beta"`},
		{desc: "deadtime", yaml: fmt.Sprintf(good, kf) + "\n", want: "timing.deadtime"},
		{desc: "unknown key", yaml: fmt.Sprintf(good, kf) + "colour: red\n", want: "colour"},
		{desc: "bad resource", yaml: fmt.Sprintf(good, kf) + "", want: "params.bad"},
		{desc: "bad mode", yaml: fmt.Sprintf(good, kf), want: `mode: "carrier-pigeon"`},
		{desc: "fence after filesystem", yaml: fmt.Sprintf(good, kf), want: `a fence must come before filesystem "fs"`},
		{desc: "disk both", yaml: fmt.Sprintf(good, kf) + "disk_heartbeat: {device: /dev/sdc, portal: 10.0.0.1:3260}\n", want: "device and portal both set"},
		{desc: "disk target", yaml: fmt.Sprintf(good, kf) + "disk_heartbeat: {portal: 10.0.0.1:3260}\n", want: "disk_heartbeat.target"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			y := tc.yaml
			switch tc.desc {
			case "deadtime":
				y = replace(y, "deadtime: 500ms", "deadtime: 150ms")
			case "bad resource":
				y = replace(y, "max_restarts: 3,", "max_restarts: 3, params: {bad: x},")
			case "bad mode":
				y = replace(y, "mode: broadcast", "mode: carrier-pigeon")
			case "fence after filesystem":
				y = replace(y, "resources:\n", "resources:\n  - {type: filesystem, name: fs}\n  - {type: fence, name: fence}\n")
			}
			_, err := Parse([]byte(y), tc.opt)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func replace(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("no " + old)
}

func TestReadKey(t *testing.T) {
	_, err := ReadKey(keyFile(t, 0o644, "0123456789abcdef0123"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chmod 600")
	_, err = ReadKey(keyFile(t, 0o600, "short"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at least 16")
	_, err = ReadKey("")
	require.ErrorContains(t, err, "key_file")
}

// The seed's node names are mixed case; viper lowercases map keys, which
// broke a unicast link's addresses (node "mqslave" is not in nodes).
func TestParseMixedCaseNodes(t *testing.T) {
	kf := keyFile(t, 0o600, "0123456789abcdef0123")
	doc := fmt.Sprintf(`
nodes: [MQMaster, MQSlave]
node: MQSlave
key_file: %s
links: [{name: hb, mode: unicast, addresses: {MQMaster: 10.9.1.1, MQSlave: 10.9.1.2}}]
failback: {preferred: MQMaster}
`, kf)
	c, err := Parse([]byte(doc), Options{})
	require.NoError(t, err)
	assert.Equal(t, "MQMaster", c.Peer)
	assert.Equal(t, map[string]string{"MQMaster": "10.9.1.1", "MQSlave": "10.9.1.2"}, c.Links[0].Addresses)
	assert.Equal(t, "10.9.1.2", c.Links[0].Local.String())
	assert.Equal(t, "10.9.1.1", c.Links[0].Peer.String())

	// Negative controls: a key in the wrong case is not the node, and says so;
	// two spellings of one node are refused.
	_, err = Parse([]byte(replace(doc, "MQSlave: 10.9.1.2", "mqslave: 10.9.1.2")), Options{})
	assert.ErrorContains(t, err, `node "mqslave" is not in nodes ("MQSlave", "MQMaster"): node names keep their case, write "MQSlave"`)
	_, err = Parse([]byte(replace(doc, "MQSlave: 10.9.1.2", "MQSlave: 10.9.1.2, mqslave: 10.9.1.3")), Options{})
	assert.ErrorContains(t, err, "differ only in case")
}

// A duration without a unit is refused with the key and the fix: "30" is
// 30ns to Go and 30 s to a heartbeat user.
func TestParseUnitlessDuration(t *testing.T) {
	kf := keyFile(t, 0o600, "0123456789abcdef0123")
	for _, tc := range []struct{ desc, old, new, want string }{
		{"int", "deadtime: 500ms", "deadtime: 30", `timing.deadtime: 30 has no unit: write "30s"`},
		{"float", "keepalive: 100ms", "keepalive: 1.5", `timing.keepalive: 1.5 has no unit: write "1.5s"`},
		{"quoted", "initdead: 2s", `initdead: "120"`, `timing.initdead: 120 has no unit: write "120s"`},
		{"resource", "monitor: {interval: 1s}", "monitor: {interval: 10}", `resources[0].monitor.interval: 10 has no unit: write "10s"`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse([]byte(replace(fmt.Sprintf(good, kf), tc.old, tc.new)), Options{})
			assert.ErrorContains(t, err, tc.want)
		})
	}
	// Negative control: with units (and a bare 0, the default) it loads.
	c, err := Parse([]byte(replace(fmt.Sprintf(good, kf), "max_restarts: 3,", "max_restarts: 3, start_timeout: 0,")), Options{})
	require.NoError(t, err)
	assert.Equal(t, 500*time.Millisecond, c.Timing.DeadTime)
}
