package pr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The persisted state: a 12-byte header (magic "TPRS", version, flags
// reserved, body length), the body, and a CRC32C of header and body, so a
// torn or corrupt file is detected instead of silently dropping
// registrations. All integers are big-endian.
const (
	stateMagic   = "TPRS"
	stateVersion = 1
	headerLen    = 12
	trailerLen   = 4
)

// ErrCorrupt is returned (wrapped) by UnmarshalBinary when the data is not
// a complete, intact state written by MarshalBinary.
var ErrCorrupt = errors.New("corrupt persistent reservation state")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	flagAPTPL = 1 << iota
	flagRes
	flagSPC2
)

const (
	regAnyISID = 1 << iota
	regAllTgPt
)

// MarshalBinary encodes the whole state (not the Config).
func (s *State) MarshalBinary() ([]byte, error) {
	b := append(make([]byte, 0, 64+48*len(s.regs)), stateMagic...)
	b = binary.BigEndian.AppendUint16(b, stateVersion)
	b = append(b, 0, 0, 0, 0, 0, 0) // reserved, body length
	b = binary.BigEndian.AppendUint32(b, s.generation)
	var flags byte
	if s.aptpl {
		flags |= flagAPTPL
	}
	if s.hasRes {
		flags |= flagRes
	}
	if s.hasSPC2 {
		flags |= flagSPC2
	}
	b = append(b, flags, byte(s.res.Type))
	b = appendPort(b, s.res.Holder)
	b = appendPort(b, s.spc2)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.regs)))
	for _, r := range s.regs {
		b = binary.BigEndian.AppendUint64(b, r.Key)
		var f byte
		if r.AnyISID {
			f |= regAnyISID
		}
		if r.AllTgPt {
			f |= regAllTgPt
		}
		b = append(b, f)
		b = appendPort(b, r.Port)
	}
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-headerLen))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

func appendPort(b []byte, p Port) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Initiator)))
	b = append(b, p.Initiator...)
	b = append(b, p.ISID[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.TargetPort)))
	b = append(b, p.TargetPort...)
	return binary.BigEndian.AppendUint16(b, p.RelTgtPort)
}

func corrupt(what string) error {
	return fmt.Errorf("pr: %w: %s; restore the file from a replica, or remove it to start with no registrations", ErrCorrupt, what)
}

// UnmarshalBinary replaces the state with data from MarshalBinary. It
// refuses truncated, torn or inconsistent data with an error wrapping
// ErrCorrupt (and io.ErrUnexpectedEOF when data is short), leaving the
// state unchanged. The Config is kept.
func (s *State) UnmarshalBinary(data []byte) error {
	if len(data) < headerLen+trailerLen {
		return fmt.Errorf("%w (%w)", corrupt("state is truncated"), io.ErrUnexpectedEOF)
	}
	if string(data[0:4]) != stateMagic {
		return corrupt("bad magic, not a tandem reservation state")
	}
	if v := binary.BigEndian.Uint16(data[4:6]); v != stateVersion {
		return corrupt(fmt.Sprintf("unsupported version %d (this build reads %d)", v, stateVersion))
	}
	if data[6] != 0 || data[7] != 0 {
		return corrupt("reserved header bytes are set")
	}
	body := uint64(binary.BigEndian.Uint32(data[8:12]))
	switch total := uint64(len(data)); {
	case headerLen+body+trailerLen > total:
		return fmt.Errorf("%w (%w)", corrupt("state is truncated"), io.ErrUnexpectedEOF)
	case headerLen+body+trailerLen < total:
		return corrupt("trailing bytes after the state")
	}
	end := headerLen + int(body)
	if crc32.Checksum(data[:end], castagnoli) != binary.BigEndian.Uint32(data[end:]) {
		return corrupt("checksum mismatch (torn or damaged write)")
	}
	d := decoder{b: data[headerLen:end]}
	n := New()
	n.cfg = s.cfg
	n.generation = d.u32()
	flags := d.u8()
	if flags&^(flagAPTPL|flagRes|flagSPC2) != 0 {
		return corrupt("unknown state flags")
	}
	n.aptpl = flags&flagAPTPL != 0
	n.hasRes = flags&flagRes != 0
	n.hasSPC2 = flags&flagSPC2 != 0
	n.res.Type = Type(d.u8())
	n.res.Holder = d.port()
	n.spc2 = d.port()
	count := d.u32()
	// Each registration takes at least 21 bytes: bound the count before
	// allocating for it.
	if uint64(count)*21 > uint64(len(d.b)) {
		return corrupt("registration count exceeds the data")
	}
	if count > 0 {
		n.regs = make([]Registration, 0, count)
	}
	for k := uint32(0); k < count && d.err == nil; k++ {
		var r Registration
		r.Key = d.u64()
		f := d.u8()
		if f&^(regAnyISID|regAllTgPt) != 0 {
			return corrupt("unknown registration flags")
		}
		r.AnyISID = f&regAnyISID != 0
		r.AllTgPt = f&regAllTgPt != 0
		r.Port = d.port()
		n.regs = append(n.regs, r)
	}
	if d.err != nil {
		return corrupt("body is truncated")
	}
	if len(d.b) != 0 {
		return corrupt("trailing bytes in the body")
	}
	if err := n.validate(); err != nil {
		return corrupt(err.Error())
	}
	cfg := s.cfg
	*s = *n
	s.cfg = cfg
	return nil
}

// validate checks the invariants Out keeps, for data from outside.
func (s *State) validate() error {
	for i, r := range s.regs {
		if r.Key == 0 {
			return errors.New("registration with a zero key")
		}
		for _, q := range s.regs[:i] {
			if r.overlaps(q.Selector) {
				return errors.New("overlapping registrations")
			}
		}
	}
	if !s.hasRes {
		if s.res != (Reservation{}) {
			return errors.New("reservation fields without a reservation")
		}
		return nil
	}
	if !s.res.Type.Valid() {
		return fmt.Errorf("invalid reservation type %d", s.res.Type)
	}
	if s.res.Type.AllRegistrants() {
		if len(s.regs) == 0 {
			return errors.New("all registrants reservation without registrants")
		}
	} else if s.lookup(s.res.Holder) < 0 {
		return errors.New("reservation holder is not registered")
	}
	return nil
}

// decoder reads big-endian fields and remembers running short.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = io.ErrUnexpectedEOF
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) port() Port {
	var p Port
	p.Initiator = string(d.take(int(d.u16())))
	copy(p.ISID[:], d.take(6))
	p.TargetPort = string(d.take(int(d.u16())))
	p.RelTgtPort = d.u16()
	return p
}
