package diskhb

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// Layout constants (package doc).
const (
	Magic   = "TNDMDHB1"
	Version = 1
	MaxNode = 64
	SlotLen = 104
	crcOff  = 100
	nodeOff = 36
)

// Decode errors.
var (
	// ErrEmpty: the slot was never written (all zero): the peer has not
	// started its disk heartbeat yet.
	ErrEmpty    = errors.New("diskhb: empty slot")
	ErrMagic    = errors.New("diskhb: bad magic: not a tandem disk heartbeat slot (wrong LUN or offset?)")
	ErrVersion  = errors.New("diskhb: unknown slot version")
	ErrChecksum = errors.New("diskhb: slot checksum mismatch (torn or corrupt write)")
	ErrNode     = errors.New("diskhb: bad node name length")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Slot is one node's heartbeat record.
type Slot struct {
	Cluster uint64 // ClusterHash
	Node    string
	Boot    uint64
	Seq     uint64
	State   uint8
}

// ClusterHash is the first 8 bytes of SHA-256(cluster), big-endian: a
// slot of another cluster sharing the LUN by mistake is recognised.
func ClusterHash(cluster string) uint64 {
	h := sha256.Sum256([]byte(cluster))
	return binary.BigEndian.Uint64(h[:8])
}

// Encode writes s into b (at least SlotLen bytes; the rest of b is
// zeroed, so b can be a whole block).
func Encode(b []byte, s Slot) error {
	if len(b) < SlotLen {
		return io.ErrShortBuffer
	}
	if len(s.Node) == 0 || len(s.Node) > MaxNode {
		return ErrNode
	}
	clear(b)
	copy(b, Magic)
	b[8] = Version
	b[9] = s.State
	b[10] = byte(len(s.Node))
	binary.BigEndian.PutUint64(b[12:], s.Cluster)
	binary.BigEndian.PutUint64(b[20:], s.Boot)
	binary.BigEndian.PutUint64(b[28:], s.Seq)
	copy(b[nodeOff:], s.Node)
	binary.BigEndian.PutUint32(b[crcOff:], crc32.Checksum(b[:crcOff], castagnoli))
	return nil
}

// Decode reads a slot from b (a block, or at least SlotLen bytes).
func Decode(b []byte) (Slot, error) {
	if len(b) < SlotLen {
		return Slot{}, io.ErrUnexpectedEOF
	}
	b = b[:SlotLen]
	if allZero(b) {
		return Slot{}, ErrEmpty
	}
	if string(b[:8]) != Magic {
		return Slot{}, ErrMagic
	}
	if b[8] != Version {
		return Slot{}, ErrVersion
	}
	if crc32.Checksum(b[:crcOff], castagnoli) != binary.BigEndian.Uint32(b[crcOff:]) {
		return Slot{}, ErrChecksum
	}
	n := int(b[10])
	if n == 0 || n > MaxNode {
		return Slot{}, ErrNode
	}
	return Slot{
		State:   b[9],
		Cluster: binary.BigEndian.Uint64(b[12:]),
		Boot:    binary.BigEndian.Uint64(b[20:]),
		Seq:     binary.BigEndian.Uint64(b[28:]),
		Node:    string(b[nodeOff : nodeOff+n]),
	}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
