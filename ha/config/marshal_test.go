package config

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
)

func TestMarshalRoundTrip(t *testing.T) {
	kf := keyFile(t, 0o600, "0123456789abcdef0123\n")
	doc := fmt.Sprintf(good, kf) + `
disk_heartbeat: {portal: 10.9.1.9:3260, target: iqn.2026-11.io.tandem:arb, lun: 9, base_lba: 8}
metrics_address: 127.0.0.1:9464
log: {level: debug, format: json}
`
	c, err := Parse([]byte(doc), Options{})
	require.NoError(t, err)
	c.Resources = append(c.Resources, resource.Spec{Type: "configtest", Name: "r2",
		Params: map[string]string{"flag": "true", "num": "0123", "empty": "", "space": " a b "}})
	c.Resources[1].StopTimeout = 1500 * time.Millisecond

	b, err := c.Marshal()
	require.NoError(t, err)
	back, err := Parse(b, Options{})
	require.NoError(t, err, string(b))
	c.Resources[1] = c.Resources[1].WithDefaults()
	assert.Equal(t, *c, *back, string(b))
	assert.Contains(t, string(b), "keepalive: 100ms")
	assert.NotContains(t, string(b), "0123456789abcdef", "the key stays in key_file")
}

// A lab builds a Config value: zero fields take the defaults on load.
func TestMarshalValueUsesDefaults(t *testing.T) {
	kf := keyFile(t, 0o600, "0123456789abcdef0123")
	c := Config{
		Nodes:   []string{"a", "b"},
		Node:    "b",
		KeyFile: kf,
		Links: []Link{{Name: "hb", Mode: ModeUnicast,
			Addresses: map[string]string{"a": "10.1.0.1", "b": "10.1.0.2"}}},
		Timing: Timing{Keepalive: 50 * time.Millisecond, DeadTime: 300 * time.Millisecond, InitDead: time.Second},
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, c.WriteFile(path))
	got, err := Load(path, Options{})
	require.NoError(t, err)
	def := DefaultConfig()
	assert.Equal(t, def.Cluster, got.Cluster)
	assert.Equal(t, def.ControlSocket, got.ControlSocket)
	assert.Equal(t, def.SelfFence, got.SelfFence)
	assert.Equal(t, c.Timing, got.Timing)
	assert.Equal(t, "a", got.Peer)
	assert.Equal(t, "10.1.0.1", got.Links[0].Peer.String())
	assert.Equal(t, DefaultPort, got.Links[0].Port)
}

func TestMarshalRefusesUpperCaseKeys(t *testing.T) {
	c := Config{Resources: []resource.Spec{{Type: "configtest", Name: "r", Params: map[string]string{"Flag": "x"}}}}
	_, err := c.Marshal()
	assert.ErrorContains(t, err, `use "flag"`)
}

// Node names keep their case through Marshal and Parse (heartbeat's
// `node MQMaster`), link addresses included.
func TestMarshalRoundTripMixedCaseNodes(t *testing.T) {
	kf := keyFile(t, 0o600, "0123456789abcdef0123")
	c := Config{
		Nodes:    []string{"MQMaster", "MQSlave"},
		Node:     "MQSlave",
		KeyFile:  kf,
		Links:    []Link{{Name: "hb", Mode: ModeUnicast, Addresses: map[string]string{"MQMaster": "10.1.0.1", "MQSlave": "10.1.0.2"}}},
		Failback: Failback{Preferred: "MQMaster"},
	}
	b, err := c.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(b), "MQMaster: 10.1.0.1")
	back, err := Parse(b, Options{})
	require.NoError(t, err, string(b))
	assert.Equal(t, c.Links[0].Addresses, back.Links[0].Addresses)
	assert.Equal(t, "MQMaster", back.Peer)
	assert.Equal(t, "10.1.0.2", back.Links[0].Local.String())
	assert.Equal(t, "10.1.0.1", back.Links[0].Peer.String())
	again, err := back.Marshal()
	require.NoError(t, err)
	back2, err := Parse(again, Options{})
	require.NoError(t, err, string(again))
	assert.Equal(t, *back, *back2)
}
