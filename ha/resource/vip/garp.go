package vip

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
)

// ARP opcodes (RFC 826).
const (
	OpRequest uint16 = 1
	OpReply   uint16 = 2
)

const (
	etherTypeARP = 0x0806
	// FrameLen is an Ethernet header plus an IPv4-over-Ethernet ARP packet.
	// The kernel pads it to the 60-byte minimum.
	FrameLen = 14 + 28
)

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Packet is an Ethernet frame carrying an IPv4 ARP packet.
type Packet struct {
	Dst, Src net.HardwareAddr // Ethernet header
	Op       uint16
	SenderHW net.HardwareAddr
	SenderIP netip.Addr
	TargetHW net.HardwareAddr
	TargetIP netip.Addr
}

var errNotARP = errors.New("vip: not an IPv4-over-Ethernet ARP frame")

// AppendGratuitous appends a broadcast gratuitous ARP frame announcing that
// ip is at mac. Per RFC 5944 section 4.6 (and RFC 5227 section 3 for the
// request) sender and target IP are both ip; the request leaves the target
// hardware address zero, the reply repeats mac there. Sending both makes
// every neighbour update its cache whichever kind its stack honours.
func AppendGratuitous(dst []byte, op uint16, mac net.HardwareAddr, ip netip.Addr) []byte {
	tha := net.HardwareAddr(make([]byte, 6))
	if op == OpReply {
		tha = mac
	}
	return Packet{Dst: broadcast, Src: mac, Op: op, SenderHW: mac, SenderIP: ip, TargetHW: tha, TargetIP: ip}.Append(dst)
}

// Append appends the frame. Hardware addresses must be 6 bytes and IPs IPv4.
func (p Packet) Append(dst []byte) []byte {
	dst = append(dst, p.Dst[:6]...)
	dst = append(dst, p.Src[:6]...)
	dst = binary.BigEndian.AppendUint16(dst, etherTypeARP)
	dst = binary.BigEndian.AppendUint16(dst, 1)      // hardware type Ethernet
	dst = binary.BigEndian.AppendUint16(dst, 0x0800) // protocol IPv4
	dst = append(dst, 6, 4)
	dst = binary.BigEndian.AppendUint16(dst, p.Op)
	sip, tip := p.SenderIP.As4(), p.TargetIP.As4()
	dst = append(dst, p.SenderHW[:6]...)
	dst = append(dst, sip[:]...)
	dst = append(dst, p.TargetHW[:6]...)
	dst = append(dst, tip[:]...)
	return dst
}

// ParseFrame decodes an Ethernet frame holding an IPv4 ARP packet; trailing
// padding is ignored. Short input returns io.ErrUnexpectedEOF.
func ParseFrame(b []byte) (Packet, error) {
	if len(b) < 14 {
		return Packet{}, io.ErrUnexpectedEOF
	}
	if binary.BigEndian.Uint16(b[12:14]) != etherTypeARP {
		return Packet{}, errNotARP
	}
	if len(b) < FrameLen {
		return Packet{}, io.ErrUnexpectedEOF
	}
	a := b[14:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != 0x0800 || a[4] != 6 || a[5] != 4 {
		return Packet{}, errNotARP
	}
	cp := func(s []byte) net.HardwareAddr { return append(net.HardwareAddr(nil), s...) }
	return Packet{
		Dst:      cp(b[0:6]),
		Src:      cp(b[6:12]),
		Op:       binary.BigEndian.Uint16(a[6:8]),
		SenderHW: cp(a[8:14]),
		SenderIP: netip.AddrFrom4([4]byte(a[14:18])),
		TargetHW: cp(a[18:24]),
		TargetIP: netip.AddrFrom4([4]byte(a[24:28])),
	}, nil
}

// IsGratuitous reports whether p announces its sender: sender and target IP
// are equal.
func (p Packet) IsGratuitous() bool { return p.SenderIP == p.TargetIP }
