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
		Node:      control.NodeStatus{Name: "alpha", State: "active", Alive: true},
		Peer:      control.NodeStatus{Name: "beta", State: "standby", Alive: true},
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
	assert.Contains(t, run("status", "--json"), `"cluster": "lab"`)
	run("standby")
	run("takeover")
	run("maintenance", "on")
	run("maintenance", "off")
	assert.Equal(t, []control.Command{control.CmdStandby, control.CmdTakeover, control.CmdMaintenanceOn, control.CmdMaintenanceOff}, b.got)

	c := newRoot()
	c.SetArgs([]string{"maintenance", "maybe", "--socket", sock})
	c.SetOut(&bytes.Buffer{})
	c.SetErr(&bytes.Buffer{})
	require.Error(t, c.Execute())
}
