package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
)

// Version is the datagram layout version written by Seal. Receivers reject
// other versions, so a future layout cannot be misread as this one.
const Version = 1

const (
	headerLen = 40
	tagLen    = sha256.Size
	// MaxNameLen is the longest cluster or node name a datagram carries.
	MaxNameLen = 255
	// MinLen is the size of the smallest valid datagram (one-byte names).
	MinLen = headerLen + 2 + tagLen
	// MaxLen is the size of the largest valid datagram; receive buffers of
	// this size never truncate a heartbeat.
	MaxLen = headerLen + 2*MaxNameLen + tagLen
)

var (
	// ErrForged is returned by Open when the tag does not verify: the sender
	// does not hold the shared key, or the datagram was altered in transit.
	ErrForged = errors.New("heartbeat: authentication failed (forged or corrupted datagram, or the nodes use different keys)")
	// ErrMalformed is returned by Open for a datagram whose lengths or fields
	// are inconsistent with the layout.
	ErrMalformed = errors.New("heartbeat: malformed datagram")
	// ErrVersion is returned by Open for a datagram of another layout
	// version; upgrade both nodes to the same tandem-agent release.
	ErrVersion = errors.New("heartbeat: unsupported datagram version (run the same tandem-agent release on both nodes)")
	// ErrName is returned by CheckName for a name Seal cannot carry.
	ErrName = errors.New("heartbeat: cluster and node names must be 1 to 255 bytes")
)

// Type is what a datagram says. The values travel on the wire, so the
// list is append-only; Open refuses a type it does not know.
type Type uint8

const (
	// TypeKeepalive is the periodic heartbeat of a running agent.
	TypeKeepalive Type = iota
	// TypeReleased is sent by the guard of an agent that died, once the
	// group is stopped on its node: the peer may take the group at once.
	// It is authenticated and replay-filtered like a keepalive.
	TypeReleased
	// typeEnd is one past the last known type.
	typeEnd
)

// Message is one heartbeat. State and Flags carry the fsm.NodeState and
// fsm.Flags of the sender; the codec does not interpret them.
type Message struct {
	Cluster string
	Node    string
	// Boot is the sender's boot generation: it must increase on every agent
	// start (wall-clock ns at start, or a persisted counter), so datagrams of
	// an earlier run can be told apart and refused as replays.
	Boot uint64
	// Seq is incremented for every datagram sent, across all links, so each
	// copy is unique for the replay window.
	Seq uint64
	// Type is TypeKeepalive for an agent's heartbeats.
	Type  Type
	State uint8
	Flags uint8
	// SentAt is the sender's monotonic clock in ns when sealing; EchoOf is the
	// SentAt of the last datagram the sender received from its peer, so the
	// peer can measure the round trip without synchronized clocks.
	SentAt int64
	EchoOf int64
}

// CheckName reports whether s can be used as a cluster or node name.
// Configuration validation should call it: Seal panics on such names.
func CheckName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen {
		return ErrName
	}
	return nil
}

// Seal appends the authenticated datagram for m to dst and returns the
// extended slice. With cap(dst)-len(dst) >= MaxLen it does not allocate
// beyond the HMAC state. It panics if a name fails CheckName, a
// configuration error that validation must catch first.
func Seal(dst []byte, key []byte, m *Message) []byte {
	if CheckName(m.Cluster) != nil || CheckName(m.Node) != nil {
		panic(ErrName)
	}
	start := len(dst)
	var h [headerLen]byte
	h[0] = Version
	h[1] = m.State
	h[2] = m.Flags
	h[3] = byte(len(m.Cluster))
	h[4] = byte(len(m.Node))
	h[5] = byte(m.Type)
	binary.BigEndian.PutUint64(h[8:], m.Boot)
	binary.BigEndian.PutUint64(h[16:], m.Seq)
	binary.BigEndian.PutUint64(h[24:], uint64(m.SentAt))
	binary.BigEndian.PutUint64(h[32:], uint64(m.EchoOf))
	dst = append(dst, h[:]...)
	dst = append(dst, m.Cluster...)
	dst = append(dst, m.Node...)
	mac := hmac.New(sha256.New, key)
	mac.Write(dst[start:])
	return mac.Sum(dst)
}

// Open verifies and decodes one datagram. It returns io.ErrUnexpectedEOF
// when b is shorter than its own lengths announce, ErrVersion, ErrMalformed
// (including trailing bytes and unknown types) or ErrForged. Nothing but the version and the
// lengths is read before the tag has been verified.
func Open(key []byte, b []byte) (Message, error) {
	if len(b) < 1 {
		return Message{}, io.ErrUnexpectedEOF
	}
	if b[0] != Version {
		return Message{}, ErrVersion
	}
	if len(b) < headerLen {
		return Message{}, io.ErrUnexpectedEOF
	}
	cl, nl := int(b[3]), int(b[4])
	n := headerLen + cl + nl + tagLen
	switch {
	case len(b) < n:
		return Message{}, io.ErrUnexpectedEOF
	case len(b) > n:
		return Message{}, ErrMalformed
	}
	body, tag := b[:n-tagLen], b[n-tagLen:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	var sum [tagLen]byte
	// hmac.Equal compares in constant time, so the tag cannot be guessed
	// byte by byte from response timing.
	if !hmac.Equal(mac.Sum(sum[:0]), tag) {
		return Message{}, ErrForged
	}
	if cl == 0 || nl == 0 || Type(b[5]) >= typeEnd || b[6] != 0 || b[7] != 0 {
		return Message{}, ErrMalformed
	}
	return Message{
		Type:    Type(b[5]),
		State:   b[1],
		Flags:   b[2],
		Boot:    binary.BigEndian.Uint64(b[8:]),
		Seq:     binary.BigEndian.Uint64(b[16:]),
		SentAt:  int64(binary.BigEndian.Uint64(b[24:])),
		EchoOf:  int64(binary.BigEndian.Uint64(b[32:])),
		Cluster: string(b[headerLen : headerLen+cl]),
		Node:    string(b[headerLen+cl : headerLen+cl+nl]),
	}, nil
}
