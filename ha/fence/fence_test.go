package fence

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return resource.WithEnv(c, resource.NewEnv())
}

func TestKeyDerivation(t *testing.T) {
	a, b := Key("prod", "alpha"), Key("prod", "beta")
	assert.NotZero(t, a)
	assert.NotEqual(t, a, b)
	assert.Equal(t, a>>32, b>>32, "nodes of one cluster share the high half")
	assert.NotEqual(t, a>>32, Key("test", "alpha")>>32)
	assert.Equal(t, a, Key("prod", "alpha"), "stable")
	// Pinned: a change here breaks every deployed cluster's keys.
	assert.Equal(t, "0x7186b6e1ca978112", FormatKey(Key("tandem", "a")))
	assert.Equal(t, "0x0000000000000001", FormatKey(1))
	assert.Equal(t, "iqn.2026-11.io.tandem:fence.my-cluster.node-1", InitiatorName("My_Cluster", "node-1"))
	id := ISID(a)
	assert.Equal(t, byte(0x80), id[0]&0xc0, "random ISID format")
	assert.Equal(t, id, ISID(a))
}

func TestJudge(t *testing.T) {
	const me, peer = 0x11, 0x22
	res := func(k uint64) initiator.PRReservation {
		return initiator.PRReservation{Reserved: true, Key: k, Type: Type5}
	}
	for _, tc := range []struct {
		desc string
		v    View
		want Verdict
	}{
		{"ours", View{Keys: []uint64{me}, Reservation: res(me)}, Held},
		{"ours with a peer registered", View{Keys: []uint64{me, peer}, Reservation: res(me)}, Held},
		{"key missing", View{Keys: []uint64{peer}, Reservation: res(peer)}, Fenced},
		{"key missing, no reservation", View{}, Fenced},
		{"peer holds", View{Keys: []uint64{me, peer}, Reservation: res(peer)}, Fenced},
		{"unreserved", View{Keys: []uint64{me}}, Unreserved},
	} {
		got, why := Judge(me, tc.v)
		assert.Equal(t, tc.want, got, "%s: %s", tc.desc, why)
	}
	assert.Equal(t, []uint64{peer, 0x33}, Victims(me, View{Keys: []uint64{0x33, me, peer}, Reservation: res(peer)}))
	assert.Empty(t, Victims(me, View{Keys: []uint64{me}, Reservation: res(me)}))
}

func TestTakeFallsBackToPreempt(t *testing.T) {
	lun := newFakeLUN()
	lun.noAbort = true
	old := &fakeDev{lun: lun, nexus: "old"}
	c := ctx(t)
	require.NoError(t, Take(c, old, 0x22, nil))
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := NewFence("fence", Config{Key: 0x11, Open: opener(&fakeDev{lun: lun, nexus: "new"})}, log)
	require.NoError(t, f.Start(c))
	assert.Equal(t, map[string]uint64{"new": 0x11}, lun.regs)
	assert.Equal(t, uint64(0x11), lun.resKey)
	assert.Contains(t, lun.calls, "new preempt-abort")
	assert.Contains(t, lun.calls, "new preempt")
	assert.Contains(t, logs.String(), "in-flight writes of the old node were NOT aborted")
	holder, _ := resource.EnvFrom(c).Get("fence.holder")
	assert.Equal(t, FormatKey(0x11), holder)

	st, err := f.Monitor(c)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
}

func TestTakeRegistersWithAPTPL(t *testing.T) {
	lun := newFakeLUN()
	require.NoError(t, Take(ctx(t), &fakeDev{lun: lun, nexus: "a"}, 0x11, nil))
	assert.True(t, lun.aptpl, "registrations must survive a target restart")

	lun = newFakeLUN()
	lun.noAPTPL = true
	var logs bytes.Buffer
	require.NoError(t, Take(ctx(t), &fakeDev{lun: lun, nexus: "a"}, 0x11, slog.New(slog.NewTextHandler(&logs, nil))))
	assert.False(t, lun.aptpl)
	assert.Equal(t, uint64(0x11), lun.resKey)
	assert.Contains(t, logs.String(), "cannot persist reservations")
}

func TestMonitorDetectsFencing(t *testing.T) {
	lun := newFakeLUN()
	me := &fakeDev{lun: lun, nexus: "me"}
	f := NewFence("fence", Config{Key: 0x11, Open: opener(me)}, nil)
	c := ctx(t)
	require.NoError(t, f.Start(c))

	// The peer takes over: our key is preempted.
	require.NoError(t, Take(c, &fakeDev{lun: lun, nexus: "peer"}, 0x22, nil))
	st, err := f.Monitor(c)
	assert.Equal(t, resource.StatusFailed, st)
	require.ErrorIs(t, err, resource.ErrFenced)
	assert.Contains(t, err.Error(), "not registered")
	holder, _ := resource.EnvFrom(c).Get("fence.holder")
	assert.Equal(t, FormatKey(0x22), holder)

	// RESERVATION CONFLICT on the read itself is fenced too.
	lun.down = errConflict
	f = NewFence("fence", Config{Key: 0x11, Open: func(context.Context) ([]device.Device, func(), error) {
		return []device.Device{me}, func() {}, nil
	}}, nil)
	_, err = f.Monitor(c)
	require.ErrorIs(t, err, resource.ErrFenced)

	// An I/O error is an ordinary failure, not fencing.
	lun.down = errors.New("connection reset")
	_, err = f.Monitor(c)
	require.Error(t, err)
	assert.NotErrorIs(t, err, resource.ErrFenced)
}

func TestStartFailsWhenPortalUnreachable(t *testing.T) {
	f := NewFence("fence", Config{Cluster: "c", Node: "a", Portal: "127.0.0.1:1", Target: "iqn.2026-11.io.tandem:x", LUNs: []uint64{0}}, nil)
	c, cancel := context.WithTimeout(ctx(t), 5*time.Second)
	defer cancel()
	err := f.Start(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "storage unreachable")
	assert.NotErrorIs(t, err, resource.ErrFenced)
}

func TestIdentityFromEnv(t *testing.T) {
	lun := newFakeLUN()
	f := NewFence("fence", Config{Open: opener(&fakeDev{lun: lun, nexus: "me"})}, nil)
	c := ctx(t)
	require.ErrorContains(t, f.Start(c), "cluster and node names unknown")
	resource.EnvFrom(c).Set(ClusterKey, "prod")
	resource.EnvFrom(c).Set(NodeKey, "alpha")
	require.NoError(t, f.Start(c))
	assert.Equal(t, Key("prod", "alpha"), lun.resKey)
}

func TestSpecParams(t *testing.T) {
	build := func(p map[string]string) error {
		_, err := New(resource.Spec{Type: Type, Name: "fence", Params: p}, nil)
		return err
	}
	assert.NoError(t, build(map[string]string{"type": "scsi-pr", "devices": "${disk.device}, /dev/sdc"}))
	assert.NoError(t, build(map[string]string{"type": "scsi-pr", "portal": "10.0.0.1:3260", "target": "iqn.x", "luns": "0,1"}))
	assert.ErrorContains(t, build(map[string]string{"type": "sbd", "devices": "/dev/sdb"}), "not a fence method")
	assert.ErrorContains(t, build(map[string]string{"type": "scsi-pr"}), "devices is missing")
	assert.ErrorContains(t, build(map[string]string{"type": "scsi-pr", "devices": "/dev/sdb", "portal": "x:1", "target": "iqn.x"}), "both set")
	assert.ErrorContains(t, build(map[string]string{"type": "scsi-pr", "portal": "x:1", "target": "iqn.x", "luns": "a"}), "LUN numbers")
	assert.ErrorContains(t, build(map[string]string{"type": "scsi-pr", "devices": "/dev/sdb", "key": "0"}), "non-zero")
}
