package agent

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/resource/iscsi"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
)

func TestStorageFencingStopsGroupUntilRejoin(t *testing.T) {
	p := newPair(t)
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	a := p.nodes[0]
	a.res[0].fencedMon.Store(true) // beta preempted alpha's key
	p.until(5*time.Second, func() bool { return p.state(0) == "fenced" && a.fenced.Load() == 1 }, "alpha fenced, self-fence action ran")
	assert.False(t, a.res[0].running.Load())
	assert.False(t, a.res[1].running.Load())
	st := a.a.Status()
	assert.True(t, st.Node.Fenced)
	assert.Contains(t, st.Node.FencedBy, "key preempted")
	assert.Equal(t, fence.FormatKey(fence.Key("unit", "alpha")), st.Node.Key)
	v, _ := a.a.env.Get(iscsi.FencedKey)
	assert.Equal(t, "true", v, "the iscsi resource must not re-register")
	p.until(5*time.Second, func() bool { return p.state(1) == "active" }, "the fenced node yields once stopped")

	require.ErrorContains(t, p.command(0, control.CmdTakeover), "fenced")
	a.res[0].holder.Store(fence.Key("unit", "alpha"))
	require.ErrorContains(t, p.command(0, control.CmdRejoin), "peer does not hold")
	a.res[0].holder.Store(fence.Key("unit", "beta"))
	a.res[0].fencedMon.Store(false)
	require.NoError(t, p.command(0, control.CmdRejoin))
	p.waitStates("standby", "active")
	_, ok := a.a.env.Get(iscsi.FencedKey)
	assert.False(t, ok)
}

// memDisk is an in-memory arbiter LUN shared by both nodes.
type memDisk struct {
	mu     sync.Mutex
	blocks map[uint64][]byte
}

type memDev struct {
	device.Device
	d *memDisk
}

func (m memDev) String() string { return "mem arbiter" }
func (m memDev) Close() error   { return nil }
func (m memDev) ReadCapacity(context.Context) (initiator.Capacity, error) {
	return initiator.Capacity{BlockSize: 512, Blocks: 8}, nil
}
func (m memDev) WriteAt(_ context.Context, p []byte, lba uint64, _ bool) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	m.d.blocks[lba] = append([]byte(nil), p...)
	return nil
}
func (m memDev) ReadAt(_ context.Context, p []byte, lba uint64, _ bool) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	clear(p)
	copy(p, m.d.blocks[lba])
	return nil
}

func TestDiskHeartbeatKeepsPeerAliveWhenLinksCut(t *testing.T) {
	disk := &memDisk{blocks: map[uint64][]byte{}}
	p := newPair(t, func(_ int, o *Options) { o.Arbiter = memDev{d: disk} })
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	p.until(time.Second, func() bool {
		d := p.nodes[1].a.Status().DiskHeartbeat
		return d != nil && d.OK && d.PeerAlive && d.PeerSeq > 0 && d.PeerState == "active"
	}, "beta reads alpha's disk slot")

	p.links[0][0].SetDown(true)
	p.links[1][0].SetDown(true) // alpha silent on every link, alive on the disk
	p.run(5 * testConfig(0).Timing.DeadTime)
	assert.Equal(t, "active", p.state(0))
	assert.Equal(t, "standby", p.state(1), "no failover while the disk shows the peer")
	st := p.nodes[1].a.Status()
	assert.True(t, st.Peer.Alive)
	assert.True(t, st.DiskHeartbeat.PeerAlive)
	assert.False(t, st.Links[0].Up)
}

// TestFencedMarkerSurvivesRestart: the storage fencing is persisted in
// state_dir; a restarted agent starts Fenced (without running the
// self-fence action again) and shows it in status, until tandemctl rejoin
// removes the marker.
func TestFencedMarkerSurvivesRestart(t *testing.T) {
	p := newPair(t)
	p.start(0)
	p.start(1)
	p.waitStates("active", "standby")
	a := p.nodes[0]
	marker := filepath.Join(a.a.cfg.StateDir, fencedMarker)
	_, err := os.Stat(marker)
	require.ErrorIs(t, err, fs.ErrNotExist, "no marker before fencing")
	a.res[0].fencedMon.Store(true)
	p.until(5*time.Second, func() bool { return p.state(0) == "fenced" && a.fenced.Load() == 1 }, "alpha fenced")
	p.until(5*time.Second, func() bool { return p.state(1) == "active" }, "beta takes over")
	a.a.markerWG.Wait() // written off the loop
	b, err := os.ReadFile(marker)
	require.NoError(t, err)
	assert.Contains(t, string(b), "key preempted")

	// Restart alpha's agent: a new run (boot) on the same state_dir.
	a.res[0].fencedMon.Store(false)
	cfg := *a.a.cfg
	o := a.opt
	o.Boot = 10
	restarted, err := New(&cfg, o)
	require.NoError(t, err)
	a.a = restarted
	p.start(0)
	p.run(5 * cfg.Timing.DeadTime)
	st := a.a.Status()
	assert.Equal(t, "fenced", st.Node.State, "fenced across the restart")
	assert.True(t, st.Node.Fenced)
	assert.Contains(t, st.Node.FencedBy, "key preempted")
	assert.Equal(t, int32(1), a.fenced.Load(), "the self-fence action does not run again")
	assert.Equal(t, "active", p.state(1))
	v, _ := a.a.env.Get(iscsi.FencedKey)
	assert.Equal(t, "true", v, "the iscsi resource must not re-register after the restart either")

	a.res[0].holder.Store(fence.Key("unit", "beta"))
	require.NoError(t, p.command(0, control.CmdRejoin))
	p.waitStates("standby", "active")
	a.a.markerWG.Wait()
	_, err = os.Stat(marker)
	assert.ErrorIs(t, err, fs.ErrNotExist, "rejoin removes the marker")
}

func TestFencedMarkerAtomicWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	got, err := readFenced(dir)
	require.NoError(t, err)
	assert.Empty(t, got, "no state_dir yet: not fenced")
	require.NoError(t, writeFenced(dir, "first"))
	require.NoError(t, writeFenced(dir, "second"))
	got, err = readFenced(dir)
	require.NoError(t, err)
	assert.Equal(t, "second", got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.NoError(t, writeFenced(dir, ""))
	got, err = readFenced(dir)
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, writeFenced(dir, ""), "removing an absent marker is fine")
}
