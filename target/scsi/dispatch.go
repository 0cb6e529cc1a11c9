package scsi

import (
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// direction is the data transfer a command asks for.
type direction uint8

const (
	dirNone direction = iota
	dirIn
	dirOut
)

// access classifies a command for reservation checks (SPC-4 5.9.1):
// what a conflicting reservation would have to refuse.
type access uint8

const (
	accessNone  access = iota // always allowed (INQUIRY, REPORT LUNS, ...)
	accessRead                // reads the medium
	accessWrite               // modifies the medium or LU state
)

// outcome is what a handler returns, by value so that nothing escapes.
type outcome struct {
	data   []byte  // data-in, normally Task.DataIn[:n]
	wanted uint32  // bytes of data-out the CDB asks for
	fail   failure // reasonNone on success
	err    error   // the backend error behind a medium/internal failure
	// conflict completes the command with RESERVATION CONFLICT.
	conflict bool
	// modeChanged says MODE SELECT changed a page, which the other
	// nexuses learn by unit attention (SPC-4 5.14, 2Ah/01h).
	modeChanged bool
}

type handler func(t *Target, lu *LU, task *Task) outcome

// command describes one operation code (and service action).
type command struct {
	op     byte
	sa     byte
	hasSA  bool
	name   string
	dir    direction
	access access
	// usage is the CDB USAGE DATA of REPORT SUPPORTED OPERATION CODES
	// (SPC-4 6.35.3): byte 0 the opcode, then the bits the device server
	// looks at; its length is the CDB length.
	usage   []byte
	handler handler
	// thin marks commands that exist only on thin-provisioned LUs.
	thin bool
	// need, when set, says whether the LU can offer the command at all.
	need func(lu *LU) bool
	// whileSanitizing marks the commands a sanitize in progress lets
	// through (SBC-4 4.11.2).
	whileSanitizing bool
	// timeout is the recommended timeout in seconds (RCTD); 0 means 30.
	timeout uint32
}

func (c *command) supported(lu *LU) bool {
	return (!c.thin || lu.cfg.Thin) && (c.need == nil || c.need(lu))
}

// commands is the dispatch table.
var commands []*command

func commandTable() []*command {
	return []*command{
		{op: wscsi.OpTestUnitReady, name: "TEST UNIT READY", usage: u(0x00, 0, 0, 0, 0, 0), handler: testUnitReady},
		{op: wscsi.OpRequestSense, name: "REQUEST SENSE", dir: dirIn, whileSanitizing: true, usage: u(0x03, 0x01, 0, 0, 0xff, 0), handler: requestSense},
		{op: wscsi.OpRead6, name: "READ(6)", dir: dirIn, access: accessRead, usage: u(0x08, 0x1f, 0xff, 0xff, 0xff, 0), handler: read},
		{op: wscsi.OpWrite6, name: "WRITE(6)", dir: dirOut, access: accessWrite, usage: u(0x0a, 0x1f, 0xff, 0xff, 0xff, 0), handler: write},
		{op: wscsi.OpInquiry, name: "INQUIRY", dir: dirIn, whileSanitizing: true, usage: u(0x12, 0x01, 0xff, 0xff, 0xff, 0), handler: inquiry},
		{op: wscsi.OpModeSelect6, name: "MODE SELECT(6)", dir: dirOut, access: accessWrite, usage: u(0x15, 0x11, 0, 0, 0xff, 0), handler: modeSelect},
		{op: wscsi.OpReserve6, name: "RESERVE(6)", usage: u(0x16, 0, 0, 0, 0, 0), handler: reserve},
		{op: wscsi.OpRelease6, name: "RELEASE(6)", usage: u(0x17, 0, 0, 0, 0, 0), handler: release},
		{op: wscsi.OpModeSense6, name: "MODE SENSE(6)", dir: dirIn, usage: u(0x1a, 0x08, 0xff, 0xff, 0xff, 0), handler: modeSense},
		{op: wscsi.OpStartStopUnit, name: "START STOP UNIT", access: accessWrite, usage: u(0x1b, 0x01, 0, 0x0f, 0xf7, 0), handler: startStopUnit},
		{op: wscsi.OpPreventAllowRemoval, name: "PREVENT ALLOW MEDIUM REMOVAL", usage: u(0x1e, 0, 0, 0, 0x03, 0), handler: preventAllow},
		{op: wscsi.OpReadCapacity10, name: "READ CAPACITY(10)", dir: dirIn, usage: u(0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0), handler: readCapacity10},
		{op: wscsi.OpRead10, name: "READ(10)", dir: dirIn, access: accessRead, usage: u(0x28, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0), handler: read},
		{op: wscsi.OpWrite10, name: "WRITE(10)", dir: dirOut, access: accessWrite, usage: u(0x2a, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0), handler: write},
		{op: wscsi.OpWriteVerify10, name: "WRITE AND VERIFY(10)", dir: dirOut, access: accessWrite, usage: u(0x2e, 0x12, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0), handler: write},
		{op: wscsi.OpVerify10, name: "VERIFY(10)", dir: dirOut, access: accessRead, usage: u(0x2f, 0x16, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0), handler: verify},
		{op: wscsi.OpPreFetch10, name: "PRE-FETCH(10)", access: accessRead, usage: u(0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0), handler: preFetch},
		{op: wscsi.OpSynchronizeCache10, name: "SYNCHRONIZE CACHE(10)", access: accessWrite, usage: u(0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0), handler: syncCache},
		{op: wscsi.OpReadDefectData10, name: "READ DEFECT DATA(10)", dir: dirIn, access: accessRead, usage: u(0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0), handler: readDefectData},
		{op: wscsi.OpWriteSame10, name: "WRITE SAME(10)", dir: dirOut, access: accessWrite, usage: u(0x41, 0x08, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0), handler: writeSame},
		{op: wscsi.OpSanitize, sa: wscsi.SASanitizeOverwrite, hasSA: true, name: "SANITIZE OVERWRITE", dir: dirOut, access: accessWrite, usage: u(0x48, 0xa1, 0, 0, 0, 0, 0, 0xff, 0xff, 0), handler: sanitize, timeout: 3600},
		{op: wscsi.OpSanitize, sa: wscsi.SASanitizeBlockErase, hasSA: true, name: "SANITIZE BLOCK ERASE", access: accessWrite, need: blockEraseOK, usage: u(0x48, 0xa2, 0, 0, 0, 0, 0, 0xff, 0xff, 0), handler: sanitize, timeout: 3600},
		{op: wscsi.OpSanitize, sa: wscsi.SASanitizeExitFailure, hasSA: true, name: "SANITIZE EXIT FAILURE MODE", access: accessWrite, usage: u(0x48, 0x9f, 0, 0, 0, 0, 0, 0xff, 0xff, 0), handler: sanitize},
		{op: wscsi.OpUnmap, name: "UNMAP", dir: dirOut, access: accessWrite, thin: true, usage: u(0x42, 0, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0), handler: unmap},
		{op: wscsi.OpModeSelect10, name: "MODE SELECT(10)", dir: dirOut, access: accessWrite, usage: u(0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0), handler: modeSelect},
		{op: wscsi.OpReserve10, name: "RESERVE(10)", usage: u(0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0), handler: reserve},
		{op: wscsi.OpRelease10, name: "RELEASE(10)", usage: u(0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0), handler: release},
		{op: wscsi.OpModeSense10, name: "MODE SENSE(10)", dir: dirIn, usage: u(0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0), handler: modeSense},
		{op: wscsi.OpPersistentReserveIn, sa: 0x00, hasSA: true, name: "PERSISTENT RESERVE IN READ KEYS", dir: dirIn, usage: prinUsage(0x00), handler: persistentReserveIn},
		{op: wscsi.OpPersistentReserveIn, sa: 0x01, hasSA: true, name: "PERSISTENT RESERVE IN READ RESERVATION", dir: dirIn, usage: prinUsage(0x01), handler: persistentReserveIn},
		{op: wscsi.OpPersistentReserveIn, sa: 0x02, hasSA: true, name: "PERSISTENT RESERVE IN REPORT CAPABILITIES", dir: dirIn, usage: prinUsage(0x02), handler: persistentReserveIn},
		{op: wscsi.OpPersistentReserveIn, sa: 0x03, hasSA: true, name: "PERSISTENT RESERVE IN READ FULL STATUS", dir: dirIn, usage: prinUsage(0x03), handler: persistentReserveIn},
		{op: wscsi.OpPersistentReserveOut, sa: 0x00, hasSA: true, name: "PERSISTENT RESERVE OUT REGISTER", dir: dirOut, usage: proutUsage(0x00), handler: persistentReserveOut},
		{op: wscsi.OpPersistentReserveOut, sa: 0x01, hasSA: true, name: "PERSISTENT RESERVE OUT RESERVE", dir: dirOut, usage: proutUsage(0x01), handler: persistentReserveOut},
		{op: wscsi.OpPersistentReserveOut, sa: 0x02, hasSA: true, name: "PERSISTENT RESERVE OUT RELEASE", dir: dirOut, usage: proutUsage(0x02), handler: persistentReserveOut},
		{op: wscsi.OpPersistentReserveOut, sa: 0x03, hasSA: true, name: "PERSISTENT RESERVE OUT CLEAR", dir: dirOut, usage: proutUsage(0x03), handler: persistentReserveOut},
		{op: wscsi.OpPersistentReserveOut, sa: 0x04, hasSA: true, name: "PERSISTENT RESERVE OUT PREEMPT", dir: dirOut, usage: proutUsage(0x04), handler: persistentReserveOut},
		{op: wscsi.OpPersistentReserveOut, sa: 0x05, hasSA: true, name: "PERSISTENT RESERVE OUT PREEMPT AND ABORT", dir: dirOut, usage: proutUsage(0x05), handler: persistentReserveOut},
		{op: wscsi.OpPersistentReserveOut, sa: 0x06, hasSA: true, name: "PERSISTENT RESERVE OUT REGISTER AND IGNORE EXISTING KEY", dir: dirOut, usage: proutUsage(0x06), handler: persistentReserveOut},
		{op: wscsi.OpPersistentReserveOut, sa: 0x07, hasSA: true, name: "PERSISTENT RESERVE OUT REGISTER AND MOVE", dir: dirOut, usage: proutUsage(0x07), handler: persistentReserveOut},
		{op: wscsi.OpExtendedCopy, sa: wscsi.SAExtendedCopyLID1, hasSA: true, name: "EXTENDED COPY(LID1)", dir: dirOut, access: accessWrite, usage: u(0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: extendedCopy},
		{op: wscsi.OpReceiveCopyResults, sa: wscsi.SACopyStatus, hasSA: true, name: "RECEIVE COPY RESULTS COPY STATUS", dir: dirIn, usage: u(0x84, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: receiveCopyResults},
		{op: wscsi.OpReceiveCopyResults, sa: wscsi.SAOperatingParameters, hasSA: true, name: "RECEIVE COPY RESULTS OPERATING PARAMETERS", dir: dirIn, usage: u(0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: receiveCopyResults},
		{op: wscsi.OpRead16, name: "READ(16)", dir: dirIn, access: accessRead, usage: u(0x88, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: read},
		{op: wscsi.OpCompareAndWrite, name: "COMPARE AND WRITE", dir: dirOut, access: accessWrite, usage: u(0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x1f, 0), handler: compareAndWrite},
		{op: wscsi.OpWrite16, name: "WRITE(16)", dir: dirOut, access: accessWrite, usage: u(0x8a, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: write},
		{op: wscsi.OpORWrite16, name: "ORWRITE(16)", dir: dirOut, access: accessWrite, usage: u(0x8b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: orWrite},
		{op: wscsi.OpWriteVerify16, name: "WRITE AND VERIFY(16)", dir: dirOut, access: accessWrite, usage: u(0x8e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: write},
		{op: wscsi.OpVerify16, name: "VERIFY(16)", dir: dirOut, access: accessRead, usage: u(0x8f, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: verify},
		{op: wscsi.OpPreFetch16, name: "PRE-FETCH(16)", access: accessRead, usage: u(0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: preFetch},
		{op: wscsi.OpSynchronizeCache16, name: "SYNCHRONIZE CACHE(16)", access: accessWrite, usage: u(0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: syncCache},
		{op: wscsi.OpWriteSame16, name: "WRITE SAME(16)", dir: dirOut, access: accessWrite, usage: u(0x93, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: writeSame},
		{op: wscsi.OpWriteAtomic16, name: "WRITE ATOMIC(16)", dir: dirOut, access: accessWrite, usage: u(0x9c, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0x1f, 0), handler: writeAtomic},
		{op: wscsi.OpServiceActionIn16, sa: wscsi.SAReadCapacity16, hasSA: true, name: "READ CAPACITY(16)", dir: dirIn, usage: u(0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: readCapacity16},
		{op: wscsi.OpServiceActionIn16, sa: wscsi.SAGetLBAStatus, hasSA: true, name: "GET LBA STATUS", dir: dirIn, access: accessRead, usage: u(0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: getLBAStatus},
		{op: wscsi.OpReportLUNs, name: "REPORT LUNS", dir: dirIn, whileSanitizing: true, usage: u(0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: reportLUNs},
		{op: wscsi.OpMaintenanceIn, sa: wscsi.SAReportSupportedOpcodes, hasSA: true, name: "REPORT SUPPORTED OPERATION CODES", dir: dirIn, usage: u(0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: reportOpcodes},
		{op: wscsi.OpRead12, name: "READ(12)", dir: dirIn, access: accessRead, usage: u(0xa8, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: read},
		{op: wscsi.OpWrite12, name: "WRITE(12)", dir: dirOut, access: accessWrite, usage: u(0xaa, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: write},
		{op: wscsi.OpWriteVerify12, name: "WRITE AND VERIFY(12)", dir: dirOut, access: accessWrite, usage: u(0xae, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: write},
		{op: wscsi.OpVerify12, name: "VERIFY(12)", dir: dirOut, access: accessRead, usage: u(0xaf, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0), handler: verify},
		{op: wscsi.OpReadDefectData12, name: "READ DEFECT DATA(12)", dir: dirIn, access: accessRead, usage: u(0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0), handler: readDefectData},
	}
}

func u(b ...byte) []byte { return b }

// prinUsage and proutUsage are the CDB usage data of PERSISTENT RESERVE
// IN and OUT (SPC-4 6.15, 6.16).
func prinUsage(sa byte) []byte  { return u(0x5e, sa, 0, 0, 0, 0, 0, 0xff, 0xff, 0) }
func proutUsage(sa byte) []byte { return u(0x5f, sa, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0) }

// byOpcode indexes commands without service action; bySA the others.
var (
	byOpcode [256]*command
	bySA     [256][]*command
)

func init() {
	commands = commandTable()
	for _, c := range commands {
		if c.timeout == 0 {
			c.timeout = 30
		}
		if c.hasSA {
			bySA[c.op] = append(bySA[c.op], c)
		} else {
			byOpcode[c.op] = c
		}
	}
}

// lookup finds the descriptor of a CDB. An unknown service action of a
// known opcode is INVALID FIELD IN CDB at byte 1 (SPC-4 4.2.5.1).
// ReadOnly reports whether cdb names a command that cannot change the
// medium or the LU's state (no reservation class of write, SPC-4 5.9.1):
// the fabric need not wait for such a task to leave the backend before it
// answers a task management function that aborts it. Unknown commands
// are not read-only.
func (t *Target) ReadOnly(cdb []byte) bool {
	c, f := lookup(cdb)
	return c != nil && !f.failed() && c.access != accessWrite
}

func lookup(cdb []byte) (*command, failure) {
	if len(cdb) == 0 {
		return nil, fail(reasonInvalidOpcode)
	}
	op := cdb[0]
	var c *command
	if sas := bySA[op]; sas != nil {
		if len(cdb) < 2 {
			return nil, fail(reasonInvalidOpcode)
		}
		for _, s := range sas {
			if s.sa == cdb[1]&0x1f {
				c = s
			}
		}
		if c == nil {
			return nil, badCDB(1, 4)
		}
	} else if c = byOpcode[op]; c == nil {
		return nil, fail(reasonInvalidOpcode)
	}
	if len(cdb) < len(c.usage) {
		return nil, fail(reasonInvalidOpcode)
	}
	return c, ok
}

// findCommand is lookup for REPORT SUPPORTED OPERATION CODES.
func findCommand(op byte, sa byte, withSA bool) *command {
	if !withSA {
		return byOpcode[op]
	}
	for _, c := range bySA[op] {
		if c.sa == sa {
			return c
		}
	}
	return nil
}
