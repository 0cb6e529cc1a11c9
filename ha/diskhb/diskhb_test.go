package diskhb

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/internal/clock"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
)

func TestSlotRoundTrip(t *testing.T) {
	s := Slot{Cluster: ClusterHash("prod"), Node: "alpha", Boot: 7, Seq: 42, State: 3}
	b := make([]byte, 512)
	for i := range b {
		b[i] = 0xff // Encode zeroes the rest of the block
	}
	require.NoError(t, Encode(b, s))
	assert.Equal(t, make([]byte, 512-SlotLen), b[SlotLen:])
	got, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, s, got)
}

func TestDecodeErrors(t *testing.T) {
	good := make([]byte, SlotLen)
	require.NoError(t, Encode(good, Slot{Node: "a", Seq: 1}))
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		desc string
		b    []byte
		want error
	}{
		{"short", good[:SlotLen-1], io.ErrUnexpectedEOF},
		{"empty", make([]byte, 512), ErrEmpty},
		{"magic", mut(func(b []byte) { b[0] = 'X' }), ErrMagic},
		{"version", mut(func(b []byte) { b[8] = 9 }), ErrVersion},
		{"torn", mut(func(b []byte) { b[30] ^= 1 }), ErrChecksum},
	} {
		_, err := Decode(tc.b)
		assert.ErrorIs(t, err, tc.want, tc.desc)
	}
	assert.ErrorIs(t, Encode(make([]byte, 10), Slot{Node: "a"}), io.ErrShortBuffer)
	assert.ErrorIs(t, Encode(make([]byte, SlotLen), Slot{}), ErrNode)
}

func FuzzDecode(f *testing.F) {
	b := make([]byte, SlotLen)
	_ = Encode(b, Slot{Cluster: 1, Node: "node-a", Boot: 2, Seq: 3, State: 4})
	f.Add(b)
	f.Add(make([]byte, SlotLen))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Decode(in)
		if err != nil {
			return
		}
		out := make([]byte, SlotLen)
		require.NoError(t, Encode(out, s))
		s2, err := Decode(out)
		require.NoError(t, err)
		require.Equal(t, s, s2)
	})
}

func TestTracker(t *testing.T) {
	const dead = time.Second
	c := ClusterHash("c")
	sl := func(boot, seq uint64) Slot { return Slot{Cluster: c, Node: "b", Boot: boot, Seq: seq} }
	type obs struct {
		at      time.Duration
		s       Slot
		changed bool
		err     error
	}
	for _, tc := range []struct {
		desc      string
		obs       []obs
		at        time.Duration
		wantAlive bool
	}{
		{"never read", nil, 0, false},
		{"first read proves nothing", []obs{{0, sl(1, 5), false, nil}}, 100 * time.Millisecond, false},
		{"advancing", []obs{{0, sl(1, 5), false, nil}, {200 * time.Millisecond, sl(1, 6), true, nil}}, 900 * time.Millisecond, true},
		{"stuck slot dies", []obs{{0, sl(1, 5), false, nil}, {200 * time.Millisecond, sl(1, 6), true, nil},
			{400 * time.Millisecond, sl(1, 6), false, nil}, {1100 * time.Millisecond, sl(1, 6), false, nil}}, 1200 * time.Millisecond, false},
		{"new boot counts", []obs{{0, sl(1, 5), false, nil}, {time.Second, sl(2, 1), true, nil}}, 1500 * time.Millisecond, true},
		{"foreign node", []obs{{0, Slot{Cluster: c, Node: "x", Seq: 1}, false, ErrForeign}}, 0, false},
		{"foreign cluster", []obs{{0, Slot{Cluster: c + 1, Node: "b", Seq: 1}, false, ErrForeign}}, 0, false},
	} {
		tr := Tracker{Cluster: c, Peer: "b"}
		for i, o := range tc.obs {
			ch, err := tr.Observe(o.s, o.at)
			assert.ErrorIs(t, err, o.err, "%s #%d", tc.desc, i)
			assert.Equal(t, o.changed, ch, "%s #%d", tc.desc, i)
		}
		assert.Equal(t, tc.wantAlive, tr.Alive(tc.at, dead), tc.desc)
	}
}

// memDisk is an in-memory LUN shared by fake devices.
type memDisk struct {
	mu     sync.Mutex
	blocks map[uint64][]byte
	fail   error
	fua    int
}

type memDev struct {
	device.Device
	d *memDisk
}

func (m memDev) String() string { return "mem" }
func (m memDev) ReadCapacity(context.Context) (initiator.Capacity, error) {
	return initiator.Capacity{BlockSize: 512, Blocks: 16}, m.d.fail
}
func (m memDev) WriteAt(_ context.Context, p []byte, lba uint64, fua bool) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	if m.d.fail != nil {
		return m.d.fail
	}
	if fua {
		m.d.fua++
	}
	m.d.blocks[lba] = append([]byte(nil), p...)
	return nil
}
func (m memDev) ReadAt(_ context.Context, p []byte, lba uint64, _ bool) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	if m.d.fail != nil {
		return m.d.fail
	}
	clear(p)
	copy(p, m.d.blocks[lba])
	return nil
}

func TestRunnerAgainstFakeDevice(t *testing.T) {
	disk := &memDisk{blocks: map[uint64][]byte{}}
	clk := clock.NewFake(time.Unix(0, 0))
	mk := func(self string, state uint8) *Runner {
		r, err := New(Config{Device: memDev{d: disk}, Cluster: "c", Nodes: []string{"b", "a"}, Self: self, Boot: 9,
			BaseLBA: 4, Keepalive: fsm.DefaultKeepalive, State: func() uint8 { return state }, Clock: clk})
		require.NoError(t, err)
		return r
	}
	a, b := mk("a", 3), mk("b", 1)
	assert.Equal(t, "b", a.Peer())
	c := context.Background()

	res := a.Round(c)
	require.NoError(t, res.Err)
	assert.Nil(t, res.Beat, "b has not written yet")
	assert.Contains(t, disk.blocks, uint64(4), "a sorts first: slot 0")

	require.NoError(t, b.Round(c).Err)
	res = b.Round(c)
	require.NoError(t, res.Err)
	assert.Nil(t, res.Beat, "a's slot did not change between b's reads")
	require.True(t, res.PeerValid)
	assert.Equal(t, uint8(3), res.Peer.State)

	clk.Advance(200 * time.Millisecond)
	require.NoError(t, a.Round(c).Err)
	res = b.Round(c)
	require.NotNil(t, res.Beat)
	assert.Equal(t, "a", res.Beat.Node)
	assert.Equal(t, uint64(2), res.Beat.Seq)
	assert.Equal(t, 5, disk.fua, "every write is FUA")

	disk.fail = errors.New("connection reset")
	res = a.Round(c)
	assert.ErrorContains(t, res.Err, "write our slot")

	_, err := New(Config{Device: memDev{d: disk}, Nodes: []string{"a", "b"}, Self: "z", Keepalive: time.Second})
	assert.ErrorContains(t, err, "not in")
	_, err = New(Config{Device: memDev{d: disk}, Nodes: []string{"a", "b"}, Self: "a"})
	assert.ErrorContains(t, err, "keepalive", "the period comes from the agent's timing, no default here")
}
