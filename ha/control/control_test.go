package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/internal/unixsock"
)

type fakeBackend struct {
	mu   sync.Mutex
	cmds []Command
}

func (f *fakeBackend) Status() Status {
	return Status{Cluster: "lab", Node: NodeStatus{Name: "a", State: "active", Alive: true},
		Links: []LinkStatus{{Name: "hb", Up: true, RTT: 150 * time.Microsecond}}}
}

func (f *fakeBackend) Command(_ context.Context, c Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c == CmdTakeover {
		return errors.New("peer is in maintenance")
	}
	f.cmds = append(f.cmds, c)
	return nil
}

func TestServerClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "agent.sock")
	b := &fakeBackend{}
	s, err := Listen(path, b, nil)
	require.NoError(t, err)
	go s.Serve()
	defer s.Close()

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	_, err = Listen(path, b, nil)
	require.ErrorIs(t, err, unixsock.ErrInUse)
	require.ErrorContains(t, err, path)

	ctx := context.Background()
	c := NewClient(path)
	got, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "lab", got.Cluster)
	assert.Equal(t, 150*time.Microsecond, got.Links[0].RTT)

	require.NoError(t, c.Standby(ctx))
	require.NoError(t, c.Maintenance(ctx, true))
	require.NoError(t, c.Maintenance(ctx, false))
	require.ErrorContains(t, c.Takeover(ctx), "peer is in maintenance")
	assert.Equal(t, []Command{CmdStandby, CmdMaintenanceOn, CmdMaintenanceOff}, b.cmds)

	_, err = NewClient(filepath.Join(t.TempDir(), "none.sock")).Status(ctx)
	require.ErrorContains(t, err, "is tandem-agent running")
}
