package pr

// Command classes of the reservation tables: SPC-4 5.12.3 table 67 "SPC
// commands that are allowed in the presence of various reservations" and
// SBC-3 4.17 table 13. Columns there are: write exclusive, exclusive
// access (from any nexus but the holder), then registrants only / all
// registrants types from a registered nexus, then from an unregistered
// one.
const (
	// classWrite is "Conflict, Conflict, Allowed, Allowed, Conflict,
	// Conflict": commands that change the medium or the device, and any
	// command this table does not know.
	classWrite uint8 = iota
	// classRead is "Allowed, Conflict, Allowed, Allowed, Allowed,
	// Conflict": commands that only read.
	classRead
	// classAllowed is allowed from every nexus under every type.
	classAllowed
	// classPR is PERSISTENT RESERVE IN/OUT: allowed under a persistent
	// reservation (Out applies its own rules), conflicting under an
	// SPC-2 reservation.
	classPR
	// classReserve and classRelease are RESERVE and RELEASE (6)/(10).
	classReserve
	classRelease
	// classSA is an opcode whose class depends on its service action or
	// on a CDB bit.
	classSA
)

// Operation codes that need more than the table (service actions, bits).
const (
	opTestUnitReady      = 0x00
	opRequestSense       = 0x03
	opInquiry            = 0x12
	opReserve6           = 0x16
	opRelease6           = 0x17
	opStartStopUnit      = 0x1b
	opPreventAllow       = 0x1e
	opReserve10          = 0x56
	opRelease10          = 0x57
	opVariableLength     = 0x7f
	opReceiveCopyResults = 0x84
	opServiceActionIn16  = 0x9e
	opReportLUNs         = 0xa0
	opMaintenanceIn      = 0xa3
	opServiceActionIn12  = 0xab
	saReadCapacity16     = 0x10
	saReadMediaSerial    = 0x01
	saReportTargetPGs    = 0x0a
	saReportAliases      = 0x0b
	saReportIdentifying  = 0x05
	saReportPriority     = 0x0e
	saReportTimestamp    = 0x0f
	saReadLong16         = 0x11
	saGetLBAStatus       = 0x12
	saReportReferrals    = 0x13
	saReportOpcodes      = 0x0c
	saReportTMFs         = 0x0d
	saManagementProtoIn  = 0x10
	saVarRead32          = 0x0009
	saVarVerify32        = 0x000a
	saVarXDRead32        = 0x0003
)

// classes maps an operation code to its class; unknown codes are writes,
// the safe answer.
var classes = func() (t [256]uint8) {
	for _, op := range []byte{
		opTestUnitReady, // SPC-4: allowed under every type
		opRequestSense,
		opInquiry,
		0x4d,       // LOG SENSE
		0x25,       // READ CAPACITY(10)
		0x86, 0x87, // ACCESS CONTROL IN/OUT
		opReportLUNs,
	} {
		t[op] = classAllowed
	}
	for _, op := range []byte{
		0x08, 0x28, 0xa8, 0x88, // READ(6/10/12/16)
		0x2f, 0xaf, 0x8f, // VERIFY(10/12/16)
		0x1a, 0x5a, // MODE SENSE(6/10)
		0x3c,       // READ BUFFER
		0x8c,       // READ ATTRIBUTE
		0x1c,       // RECEIVE DIAGNOSTIC RESULTS
		0xa2,       // SECURITY PROTOCOL IN
		0x34, 0x90, // PRE-FETCH(10/16)
		0x37, 0xb7, // READ DEFECT DATA(10/12)
		0x3e, // READ LONG(10)
		0x52, // XDREAD(10)
	} {
		t[op] = classRead
	}
	t[0x5e], t[0x5f] = classPR, classPR
	t[opReserve6], t[opReserve10] = classReserve, classReserve
	t[opRelease6], t[opRelease10] = classRelease, classRelease
	for _, op := range []byte{opStartStopUnit, opPreventAllow, opVariableLength,
		opReceiveCopyResults, opServiceActionIn16, opMaintenanceIn, opServiceActionIn12} {
		t[op] = classSA
	}
	return t
}()

// classify returns the class of a CDB.
func classify(cdb []byte) uint8 {
	if len(cdb) == 0 {
		return classWrite
	}
	c := classes[cdb[0]]
	if c != classSA {
		return c
	}
	sa := byte(0)
	if len(cdb) > 1 {
		sa = cdb[1] & 0x1f
	}
	switch cdb[0] {
	case opStartStopUnit:
		// SBC-3: START=1 with POWER CONDITION=0 is allowed everywhere.
		if len(cdb) > 4 && cdb[4]&0x01 != 0 && cdb[4]&0xf0 == 0 {
			return classAllowed
		}
	case opPreventAllow:
		// SBC-3: PREVENT=0 (allow removal) is allowed everywhere.
		if len(cdb) > 4 && cdb[4]&0x03 == 0 {
			return classAllowed
		}
	case opVariableLength:
		if len(cdb) > 9 {
			switch uint16(cdb[8])<<8 | uint16(cdb[9]) {
			case saVarRead32, saVarVerify32, saVarXDRead32:
				return classRead
			}
		}
	case opReceiveCopyResults:
		return classRead // RECEIVE COPY RESULTS / ROD TOKEN INFORMATION
	case opServiceActionIn16:
		switch sa {
		case saReadCapacity16:
			return classAllowed
		case saReadLong16, saGetLBAStatus, saReportReferrals:
			return classRead
		}
	case opMaintenanceIn:
		switch sa {
		case saReportTargetPGs, saReportAliases, saReportIdentifying, saReportPriority, saReportTimestamp:
			return classAllowed
		case saReportOpcodes, saReportTMFs, saManagementProtoIn:
			return classRead
		}
	case opServiceActionIn12:
		if sa == saReadMediaSerial {
			return classAllowed
		}
	}
	return classWrite
}

// Check reports whether a command received on nexus p conflicts with the
// reservations of the logical unit, in which case it completes with
// RESERVATION CONFLICT status without being executed. It allocates
// nothing. For PERSISTENT RESERVE IN/OUT and RESERVE/RELEASE it gives
// the answer In, Out, Reserve6 and Release6 would; those four check again
// themselves, so calling Check first is optional for them.
func (s *State) Check(p Port, cdb []byte) bool {
	if !s.hasRes && !s.hasSPC2 && len(s.regs) == 0 {
		return false // the common case: no reservation of any kind
	}
	c := classify(cdb)
	switch c {
	case classPR:
		return s.hasSPC2
	case classReserve:
		return s.reserveConflict(p)
	case classRelease:
		return s.releaseConflict(p)
	}
	if s.hasSPC2 {
		return s.spc2Conflict(p, cdb, c)
	}
	if !s.hasRes || c == classAllowed {
		return false
	}
	i := s.lookup(p)
	if s.holds(p, i) {
		return false
	}
	// Registrants only and all registrants types admit every registrant
	// (an all registrants one makes it a holder, handled above).
	if i >= 0 && s.res.Type.RegistrantsOnly() {
		return false
	}
	// Reads pass write exclusive types; writes pass nothing.
	return c == classWrite || s.res.Type.exclusiveAccess()
}

// spc2Conflict applies an SPC-2 reservation (SPC-2 5.5.1): the holder may
// do anything; other nexuses only what cannot disturb it.
func (s *State) spc2Conflict(p Port, cdb []byte, c uint8) bool {
	if s.spc2.Same(p) {
		return false
	}
	switch cdb[0] {
	case opInquiry, opRequestSense, opReportLUNs:
		return false
	case opPreventAllow:
		return c != classAllowed
	case opMaintenanceIn:
		return len(cdb) < 2 || cdb[1]&0x1f != saReportTargetPGs
	}
	return true
}

// registeredHolderOrRO reports whether p is registered and either holds
// the persistent reservation or shares a registrants only or all
// registrants one: the cases where RESERVE and RELEASE are no-ops with
// CRH=1 (SPC-4 5.12.3).
func (s *State) registeredHolderOrRO(p Port) (registered, exempt bool) {
	i := s.lookup(p)
	if i < 0 {
		return false, false
	}
	return true, s.holds(p, i) || s.hasRes && s.res.Type.RegistrantsOnly()
}

// reserveConflict reports whether RESERVE from p ends in RESERVATION
// CONFLICT.
func (s *State) reserveConflict(p Port) bool {
	if len(s.regs) > 0 {
		// SPC-2 5.5.1: while registrations exist, RESERVE conflicts, but
		// for the CRH exceptions of SPC-4 5.12.3.
		_, exempt := s.registeredHolderOrRO(p)
		return !exempt
	}
	return s.hasSPC2 && !s.spc2.Same(p)
}

// releaseConflict reports whether RELEASE from p ends in RESERVATION
// CONFLICT: only while registrations exist, with the same exceptions.
func (s *State) releaseConflict(p Port) bool {
	if len(s.regs) > 0 {
		_, exempt := s.registeredHolderOrRO(p)
		return !exempt
	}
	return false
}

// Reserve6 performs RESERVE(6) or RESERVE(10) (SPC-2 7.21, 7.22) from
// nexus p, with the CRH=1 exceptions for persistent reservations.
func (s *State) Reserve6(p Port, cdb []byte) Result {
	if len(cdb) < 6 {
		return checkCondition(ReasonInvalidFieldInCDB)
	}
	switch cdb[0] {
	case opReserve6:
		if cdb[1]&0x11 != 0 { // third-party and extents: unsupported
			return checkCondition(ReasonInvalidFieldInCDB)
		}
	case opReserve10:
		if cdb[1]&0x13 != 0 { // 3RDPTY, LONGID and extents: unsupported
			return checkCondition(ReasonInvalidFieldInCDB)
		}
	default:
		return checkCondition(ReasonInvalidFieldInCDB)
	}
	if s.reserveConflict(p) {
		return conflict
	}
	if len(s.regs) > 0 {
		return good // CRH exception: no reservation established
	}
	s.spc2 = p
	s.hasSPC2 = true
	return good
}

// Release6 performs RELEASE(6) or RELEASE(10) from nexus p. Releasing a
// reservation p does not hold succeeds and changes nothing (SPC-2 7.17).
func (s *State) Release6(p Port, cdb []byte) Result {
	if len(cdb) < 6 || cdb[0] != opRelease6 && cdb[0] != opRelease10 {
		return checkCondition(ReasonInvalidFieldInCDB)
	}
	if s.releaseConflict(p) {
		return conflict
	}
	if s.hasSPC2 && s.spc2.Same(p) {
		s.Reset()
	}
	return good
}
