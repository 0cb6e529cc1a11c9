package audit

import (
	"encoding/binary"
	"errors"
	"io"
)

// Kind is the type of a record.
type Kind uint8

// Record kinds; append-only.
const (
	// KindWrite is one WRITE-class command and its outcome.
	KindWrite Kind = 1
	// KindDropped says Dropped records were lost (buffer full) here.
	KindDropped Kind = 2
	// KindStart opens the records of one run of the daemon: Seq starts
	// again after it, and everything after it happened after everything
	// before it.
	KindStart Kind = 3
)

// Flags of a write record.
const (
	// FlagFUA: the command had FUA set (or is WRITE AND VERIFY).
	FlagFUA byte = 0x01
	// FlagUnmap: the range was deallocated (UNMAP, WRITE SAME with UNMAP,
	// SANITIZE BLOCK ERASE) rather than written.
	FlagUnmap byte = 0x02
	// FlagCopy: a segment of an EXTENDED COPY written to this LU; Op is
	// EXTENDED COPY and the nexus is the copy's issuer.
	FlagCopy byte = 0x04
)

// Status values, as in SAM-5.
const (
	StatusGood                = 0x00
	StatusCheckCondition      = 0x02
	StatusReservationConflict = 0x18
)

// Record is one entry of the stream.
type Record struct {
	Kind Kind
	// Time is the host clock at completion, unix nanoseconds.
	Time int64
	// Seq is the LU's range-lock acquisition number of the write: among
	// records whose ranges overlap, the larger Seq reached the medium
	// later. 0 means the command never took the lock (refused, or the
	// whole-LU SANITIZE, which excludes every other writer anyway).
	Seq uint64
	// Op and SA are the operation code and service action.
	Op, SA byte
	Flags  byte
	// Status is the SCSI status returned; SenseKey, ASC and ASCQ are set
	// with CHECK CONDITION.
	Status              byte
	SenseKey, ASC, ASCQ byte
	// LBA and Blocks are the range the command writes (0 blocks for a
	// command whose range is not known, e.g. a refused EXTENDED COPY).
	LBA, Blocks uint64
	// Generation is the PRgeneration when the command was admitted.
	Generation uint32
	// Initiator, ISID and TPGT name the I_T nexus.
	Initiator string
	ISID      [6]byte
	TPGT      uint16
	// ResType is the persistent reservation type then (0: none) and
	// HolderInitiator/HolderISID its holder.
	ResType         byte
	HolderInitiator string
	HolderISID      [6]byte
	// Dropped is the count of lost records, for KindDropped.
	Dropped uint64
}

// Accepted reports whether the command completed with GOOD: the data may
// be on the medium.
func (r *Record) Accepted() bool { return r.Kind == KindWrite && r.Status == StatusGood }

// Magic opens every stream.
const Magic = "TNDAUD01"

const (
	writeFixed   = 8 + 8 + 7 + 8 + 8 + 4 + 6 + 2 + 2 + 1 + 6 + 2 // without the two names
	droppedFixed = 8 + 8
	maxName      = 1 << 10
)

var (
	errUnknownKind = errors.New("audit: unknown record kind")
	errNameLength  = errors.New("audit: initiator name longer than 1024 bytes")
	errBadLength   = errors.New("audit: record length does not match its contents")
	errMagic       = errors.New("audit: not an audit stream (bad magic)")
)

// AppendRecord appends the framed encoding of r to b.
func AppendRecord(b []byte, r *Record) ([]byte, error) {
	switch r.Kind {
	case KindWrite:
		if len(r.Initiator) > maxName || len(r.HolderInitiator) > maxName {
			return b, errNameLength
		}
		n := 1 + writeFixed + len(r.Initiator) + len(r.HolderInitiator)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = append(b, byte(r.Kind))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
		b = binary.BigEndian.AppendUint64(b, r.Seq)
		b = append(b, r.Op, r.SA, r.Flags, r.Status, r.SenseKey, r.ASC, r.ASCQ)
		b = binary.BigEndian.AppendUint64(b, r.LBA)
		b = binary.BigEndian.AppendUint64(b, r.Blocks)
		b = binary.BigEndian.AppendUint32(b, r.Generation)
		b = append(b, r.ISID[:]...)
		b = binary.BigEndian.AppendUint16(b, r.TPGT)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Initiator)))
		b = append(b, r.Initiator...)
		b = append(b, r.ResType)
		b = append(b, r.HolderISID[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.HolderInitiator)))
		b = append(b, r.HolderInitiator...)
		return b, nil
	case KindStart:
		b = binary.BigEndian.AppendUint16(b, 1+8)
		b = append(b, byte(r.Kind))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
		return b, nil
	case KindDropped:
		b = binary.BigEndian.AppendUint16(b, 1+droppedFixed)
		b = append(b, byte(r.Kind))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
		b = binary.BigEndian.AppendUint64(b, r.Dropped)
		return b, nil
	}
	return b, errUnknownKind
}

// DecodeRecord decodes the first framed record of b and returns it with
// the number of bytes it took. Short input is io.ErrUnexpectedEOF.
func DecodeRecord(b []byte) (Record, int, error) {
	var r Record
	if len(b) < 2 {
		return r, 0, io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return r, 0, io.ErrUnexpectedEOF
	}
	p := b[2 : 2+n]
	if len(p) < 1 {
		return r, 0, errBadLength
	}
	r.Kind, p = Kind(p[0]), p[1:]
	switch r.Kind {
	case KindWrite:
		if len(p) < writeFixed {
			return r, 0, errBadLength
		}
		r.Time = int64(binary.BigEndian.Uint64(p))
		r.Seq = binary.BigEndian.Uint64(p[8:])
		r.Op, r.SA, r.Flags, r.Status, r.SenseKey, r.ASC, r.ASCQ = p[16], p[17], p[18], p[19], p[20], p[21], p[22]
		r.LBA = binary.BigEndian.Uint64(p[23:])
		r.Blocks = binary.BigEndian.Uint64(p[31:])
		r.Generation = binary.BigEndian.Uint32(p[39:])
		copy(r.ISID[:], p[43:49])
		r.TPGT = binary.BigEndian.Uint16(p[49:])
		p = p[51:]
		name, rest, ok := str(p)
		if !ok || len(rest) < 1+6+2 {
			return r, 0, errBadLength
		}
		r.Initiator = name
		r.ResType = rest[0]
		copy(r.HolderISID[:], rest[1:7])
		name, rest, ok = str(rest[7:])
		if !ok || len(rest) != 0 {
			return r, 0, errBadLength
		}
		r.HolderInitiator = name
	case KindStart:
		if len(p) != 8 {
			return r, 0, errBadLength
		}
		r.Time = int64(binary.BigEndian.Uint64(p))
	case KindDropped:
		if len(p) != droppedFixed {
			return r, 0, errBadLength
		}
		r.Time = int64(binary.BigEndian.Uint64(p))
		r.Dropped = binary.BigEndian.Uint64(p[8:])
	default:
		return r, 0, errUnknownKind
	}
	return r, 2 + n, nil
}

// str reads a u16-length-prefixed string.
func str(p []byte) (string, []byte, bool) {
	if len(p) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > maxName || len(p) < 2+n {
		return "", nil, false
	}
	return string(p[2 : 2+n]), p[2+n:], true
}
