package pr

import "encoding/binary"

// PERSISTENT RESERVE IN service actions (SPC-4 table 171).
const (
	opPRIn = 0x5e

	saReadKeys           = 0x0
	saReadReservation    = 0x1
	saReportCapabilities = 0x2
	saReadFullStatus     = 0x3
)

// REPORT CAPABILITIES bits (SPC-4 6.16.4, table 176).
const (
	capCRH   = 0x10 // RESERVE/RELEASE exceptions of 5.12.3 are supported
	capSIPC  = 0x08 // SPEC_I_PT supported
	capATPC  = 0x04 // ALL_TG_PT supported
	capPTPLC = 0x01 // APTPL supported
	capTMV   = 0x80 // the type mask is valid
	// capAllowCommands is ALLOW COMMANDS 001b: TEST UNIT READY is allowed
	// through write exclusive and exclusive access reservations.
	capAllowCommands = 0x10
	capPTPLA         = 0x01
)

// In performs a PERSISTENT RESERVE IN command received on nexus p. The
// returned Data is cut to the CDB's ALLOCATION LENGTH; the length fields
// inside it still describe the whole list (SPC-4 4.2.5.6).
func (s *State) In(p Port, cdb []byte) Result {
	if len(cdb) < 10 || cdb[0] != opPRIn {
		return checkCondition(ReasonInvalidFieldInCDB)
	}
	if s.hasSPC2 {
		return conflict // SPC-3 5.6.1, as for Out
	}
	alloc := int(binary.BigEndian.Uint16(cdb[7:9]))
	var data []byte
	switch cdb[1] & 0x1f {
	case saReadKeys:
		data = s.readKeys()
	case saReadReservation:
		data = s.readReservation()
	case saReportCapabilities:
		data = s.reportCapabilities()
	case saReadFullStatus:
		data = s.readFullStatus()
	default:
		return checkCondition(ReasonInvalidFieldInCDB)
	}
	if len(data) > alloc {
		data = data[:alloc]
	}
	return Result{Status: StatusGood, Data: data}
}

// header appends PRgeneration and a placeholder ADDITIONAL LENGTH.
func (s *State) header(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, s.generation)
	return append(b, 0, 0, 0, 0)
}

// setAdditionalLength fills the ADDITIONAL LENGTH of a list built with
// header.
func setAdditionalLength(b []byte) []byte {
	binary.BigEndian.PutUint32(b[4:8], uint32(len(b)-8))
	return b
}

// readKeys builds the READ KEYS parameter data (SPC-4 6.16.2).
func (s *State) readKeys() []byte {
	b := s.header(make([]byte, 0, 8+8*len(s.regs)))
	for _, r := range s.regs {
		b = binary.BigEndian.AppendUint64(b, r.Key)
	}
	return setAdditionalLength(b)
}

// reservationKey is the key READ RESERVATION and READ FULL STATUS report
// for the reservation: zero for all registrants types (SPC-4 6.16.3).
func (s *State) reservationKey() uint64 {
	if s.res.Type.AllRegistrants() {
		return 0
	}
	if h := s.lookup(s.res.Holder); h >= 0 {
		return s.regs[h].Key
	}
	return 0
}

// readReservation builds the READ RESERVATION parameter data (SPC-4
// 6.16.3).
func (s *State) readReservation() []byte {
	b := s.header(make([]byte, 0, 24))
	if s.hasRes {
		b = binary.BigEndian.AppendUint64(b, s.reservationKey())
		b = append(b, 0, 0, 0, 0, 0, scopeLU<<4|byte(s.res.Type), 0, 0)
	}
	return setAdditionalLength(b)
}

// reportCapabilities builds the REPORT CAPABILITIES parameter data (SPC-4
// 6.16.4).
func (s *State) reportCapabilities() []byte {
	caps := byte(capCRH | capSIPC | capATPC)
	if !s.cfg.NoPersistence {
		caps |= capPTPLC
	}
	flags := byte(capTMV | capAllowCommands)
	if s.aptpl {
		flags |= capPTPLA
	}
	mask := uint16(typeMask)
	return []byte{0, 8, caps, flags, byte(mask), byte(mask >> 8), 0, 0}
}

// readFullStatus builds the READ FULL STATUS parameter data (SPC-4
// 6.16.5): one descriptor per registration, with its TransportID.
func (s *State) readFullStatus() []byte {
	b := s.header(nil)
	for i, r := range s.regs {
		b = binary.BigEndian.AppendUint64(b, r.Key)
		b = append(b, 0, 0, 0, 0)
		var flags, scopeType byte
		if r.AllTgPt {
			flags |= 0x02
		}
		if s.regHolds(i) {
			flags |= 0x01 // R_HOLDER
			scopeType = scopeLU<<4 | byte(s.res.Type)
		}
		b = append(b, flags, scopeType, 0, 0, 0, 0)
		// RELATIVE TARGET PORT IDENTIFIER is ignored with ALL_TG_PT.
		b = binary.BigEndian.AppendUint16(b, r.RelTgtPort)
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		b = appendTransportID(b, r.Selector)
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	return setAdditionalLength(b)
}
