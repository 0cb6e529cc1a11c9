package link

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
)

func recv(t *testing.T, ch <-chan Datagram) Datagram {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram")
	}
	return Datagram{}
}

func TestUnicastLoopback(t *testing.T) {
	a, b := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	outA, outB := make(chan Datagram, 4), make(chan Datagram, 4)
	la := config.Link{Name: "lo", Mode: config.ModeUnicast, Local: a, Peer: b, Port: 47694}
	lb := config.Link{Name: "lo", Mode: config.ModeUnicast, Local: b, Peer: a, Port: 47694}
	ua, err := Open(3, la, outA, nil)
	require.NoError(t, err)
	defer ua.Close()
	ub, err := Open(3, lb, outB, nil)
	require.NoError(t, err)
	defer ub.Close()

	require.NoError(t, ua.Send([]byte("hello")))
	d := recv(t, outB)
	assert.Equal(t, 3, d.Link)
	assert.Equal(t, "hello", string(d.Data))
	assert.Equal(t, a, d.From.Addr())
	require.NoError(t, ub.Send([]byte("back")))
	assert.Equal(t, "back", string(recv(t, outA).Data))
	assert.Equal(t, uint64(1), ua.Counters().Snapshot().Sent)
}

func TestMemPairCut(t *testing.T) {
	outA, outB := make(chan Datagram, 1), make(chan Datagram, 1)
	a, b := MemPair(1, outA, outB)
	require.NoError(t, a.Send([]byte("x")))
	assert.Equal(t, "x", string(recv(t, outB).Data))
	a.SetDown(true)
	require.NoError(t, b.Send([]byte("y")))
	assert.Empty(t, outA)
	a.SetDown(false)
	require.NoError(t, b.Send([]byte("z")))
	require.NoError(t, b.Send([]byte("overflow")))
	assert.Equal(t, "z", string(recv(t, outA).Data))
	assert.Equal(t, uint64(1), a.Counters().Overflow.Load())
	require.NoError(t, a.Close())
	assert.ErrorIs(t, a.Send(nil), ErrClosed)
}
