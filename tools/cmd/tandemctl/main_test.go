package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/control"
)

type backend struct{ got []control.Command }

func (b *backend) Status() control.Status {
	now := time.Now()
	return control.Status{Cluster: "lab", GeneratedAt: now,
		Node:  control.NodeStatus{Name: "alpha", State: "active", Alive: true, Key: "0x00000000000000a1"},
		Peer:  control.NodeStatus{Name: "beta", State: "standby", Alive: true, Key: "0x00000000000000b2"},
		Fence: &control.FenceStatus{Resource: "fence", Holder: "alpha", HolderKey: "0x00000000000000a1", Keys: []string{"0x00000000000000a1"}},
		DiskHeartbeat: &control.DiskHeartbeatStatus{OK: true, Seq: 12, PeerAlive: true, PeerLastSeen: now.Add(-150 * time.Millisecond),
			PeerSeq: 11, PeerState: "standby"},
		Links:     []control.LinkStatus{{Name: "hb", Mode: "unicast", Up: true, LastSeen: now.Add(-40 * time.Millisecond), RTT: 120 * time.Microsecond, Sent: 7}},
		Resources: []control.ResourceStatus{{Name: "vip", Type: "vip", State: "running"}}}
}

func (b *backend) Command(_ context.Context, c control.Command) error {
	b.got = append(b.got, c)
	return nil
}

func TestCommands(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "a.sock")
	b := &backend{}
	s, err := control.Listen(sock, b, nil)
	require.NoError(t, err)
	go s.Serve()
	defer s.Close()

	run := func(args ...string) string {
		var out bytes.Buffer
		c := newRoot()
		c.SetOut(&out)
		c.SetArgs(append(args, "--socket", sock))
		require.NoError(t, c.Execute(), args)
		return out.String()
	}
	out := run("status")
	assert.Contains(t, out, "alpha (this node)")
	assert.Regexp(t, `hb\s+unicast\s+yes\s+40ms ago\s+120µs\s+7`, out)
	assert.Regexp(t, `vip\s+vip\s+running`, out)
	assert.Regexp(t, `beta\s+standby\s+yes\s+0x00000000000000b2`, out)
	assert.Contains(t, out, "reservation (fence): held by alpha (0x00000000000000a1); registered keys: 0x00000000000000a1")
	assert.Contains(t, out, "disk heartbeat: io ok, our seq 12; peer alive yes, last seen 150ms ago, seq 11, state standby")
	assert.Contains(t, run("status", "--json"), `"holder": "alpha"`)
	assert.Contains(t, run("status", "--json"), `"cluster": "lab"`)
	run("standby")
	run("takeover")
	run("maintenance", "on")
	run("maintenance", "off")
	assert.Contains(t, run("rejoin"), "rejoined")
	assert.Equal(t, []control.Command{control.CmdStandby, control.CmdTakeover, control.CmdMaintenanceOn, control.CmdMaintenanceOff, control.CmdRejoin}, b.got)

	c := newRoot()
	c.SetArgs([]string{"maintenance", "maybe", "--socket", sock})
	c.SetOut(&bytes.Buffer{})
	c.SetErr(&bytes.Buffer{})
	require.Error(t, c.Execute())
}
