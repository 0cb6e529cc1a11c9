package vip

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}

func TestGratuitousFrames(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	req := AppendGratuitous(nil, OpRequest, testMAC, ip)
	require.Len(t, req, FrameLen)
	p, err := ParseFrame(req)
	require.NoError(t, err)
	assert.Equal(t, broadcast, p.Dst)
	assert.Equal(t, testMAC, p.Src)
	assert.Equal(t, OpRequest, p.Op)
	assert.Equal(t, net.HardwareAddr{0, 0, 0, 0, 0, 0}, p.TargetHW)
	assert.True(t, p.IsGratuitous())
	assert.Equal(t, ip, p.SenderIP)

	rep, err := ParseFrame(append(AppendGratuitous(nil, OpReply, testMAC, ip), make([]byte, 18)...))
	require.NoError(t, err, "padding is ignored")
	assert.Equal(t, OpReply, rep.Op)
	assert.Equal(t, testMAC, rep.TargetHW)
}

func TestParseFrameErrors(t *testing.T) {
	good := AppendGratuitous(nil, OpRequest, testMAC, netip.MustParseAddr("10.0.0.1"))
	for _, tc := range []struct {
		desc string
		b    []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"header only", good[:14], io.ErrUnexpectedEOF},
		{"short arp", good[:FrameLen-1], io.ErrUnexpectedEOF},
		{"ipv4 ethertype", append(append([]byte{}, good[:12]...), 0x08, 0x00), errNotARP},
	} {
		_, err := ParseFrame(tc.b)
		assert.ErrorIs(t, err, tc.want, tc.desc)
	}
	bad := bytes.Clone(good)
	bad[14+4] = 8 // hardware length
	_, err := ParseFrame(bad)
	assert.ErrorIs(t, err, errNotARP)
}

func FuzzParseFrame(f *testing.F) {
	f.Add(AppendGratuitous(nil, OpRequest, testMAC, netip.MustParseAddr("192.0.2.10")))
	f.Add(AppendGratuitous(nil, OpReply, testMAC, netip.MustParseAddr("10.1.2.3")))
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseFrame(b)
		if err != nil {
			return
		}
		// Round trip: re-encoding reproduces the frame without its padding.
		assert.Equal(t, b[:FrameLen], p.Append(nil))
	})
}
