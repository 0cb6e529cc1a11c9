package scsi

import (
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// respond returns data cut to the allocation length, in the fabric's
// buffer (SPC-4 4.2.5.6: a short allocation length truncates, it is not
// an error).
func respond(task *Task, data []byte, alloc uint32) outcome {
	if uint32(len(data)) > alloc {
		data = data[:alloc]
	}
	return outcome{data: append(task.DataIn[:0], data...)}
}

func testUnitReady(_ *Target, _ *LU, _ *Task) outcome { return outcome{} }

// requestSense reports no pending sense: every error is returned with
// its command (autosense), so there is nothing deferred (SPC-4 6.39).
func requestSense(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	f := fail(reasonNoSense)
	switch {
	case lu == nil:
		f = fail(reasonLUNotSupported)
	case lu.san.active.Load():
		// Progress indication of the sanitize (SBC-4 4.11.2).
		f = failure{reason: reasonSanitizeInProgress, progress: true, field: uint16(lu.san.progress.Load())}
	case lu.san.failed.Load():
		f = fail(reasonSanitizeFailed)
	}
	return respond(task, senseData(f, cdb[1]&0x01 != 0), uint32(cdb[4]))
}

// Version descriptors (SPC-4 table 145): SAM-5, iSCSI, SPC-4, SBC-3.
var versionDescriptors = [...]uint16{0x00a0, 0x0960, 0x0460, 0x04c0}

func inquiry(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	alloc := uint32(get16(cdb[3:]))
	if cdb[1]&0x02 != 0 { // CMDDT (obsolete)
		return outcome{fail: badCDB(1, 1)}
	}
	evpd, page := cdb[1]&0x01 != 0, cdb[2]
	if !evpd {
		if page != 0 {
			return outcome{fail: badCDB(2, -1)}
		}
		return respond(task, lu.standardInquiry(), alloc)
	}
	if lu == nil {
		return outcome{fail: fail(reasonLUNotSupported)}
	}
	data := lu.vpd(page)
	if data == nil {
		return outcome{fail: badCDB(2, -1)}
	}
	return respond(task, data, alloc)
}

// standardInquiry is the standard INQUIRY data (SPC-4 6.4.2); a nil LU
// gets peripheral qualifier 3, "not capable of supporting a device".
func (lu *LU) standardInquiry() []byte {
	b := make([]byte, 96)
	if lu == nil {
		b[0] = 0x7f
	}
	b[2] = 0x06 // SPC-4
	b[3] = 0x12 // HISUP, response data format 2
	b[4] = byte(len(b) - 5)
	if lu != nil {
		b[5] = 0x08 // 3PC: EXTENDED COPY (SPC-4 6.4)
	}
	b[7] = 0x02 // CMDQUE
	vendor, product, revision := "TANDEM", "VDISK", "0001"
	if lu != nil {
		vendor, product, revision = lu.cfg.Vendor, lu.cfg.Product, lu.cfg.Revision
	}
	ascii(b[8:16], vendor)
	ascii(b[16:32], product)
	ascii(b[32:36], revision)
	for i, v := range versionDescriptors {
		b[58+2*i], b[59+2*i] = byte(v>>8), byte(v)
	}
	return b
}

// ascii fills dst with s, space padded, replacing what SPC-4 4.3.1 does
// not allow in ASCII fields.
func ascii(dst []byte, s string) {
	for i := range dst {
		c := byte(' ')
		if i < len(s) {
			c = s[i]
			if c < 0x20 || c > 0x7e {
				c = '_'
			}
		}
		dst[i] = c
	}
}

func (lu *LU) vpdPages() []byte {
	pages := []byte{0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1}
	if lu.cfg.Thin {
		pages = append(pages, 0xb2)
	}
	return pages
}

func (lu *LU) vpd(page byte) []byte {
	var body []byte
	switch page {
	case 0x00: // supported VPD pages
		body = lu.vpdPages()
	case 0x80: // unit serial number
		body = []byte(lu.cfg.Serial)
	case 0x83: // device identification (SPC-4 7.8.6)
		// NAA locally assigned, derived from the serial.
		body = append(body, 0x01, 0x03, 0, 8)
		body = append(body, lu.naa[:]...)
		// T10 vendor ID: vendor (8 bytes) then the serial.
		t10 := make([]byte, 8, 8+len(lu.cfg.Serial))
		ascii(t10, lu.cfg.Vendor)
		t10 = append(t10, lu.cfg.Serial...)
		body = append(body, 0x02, 0x01, 0, byte(len(t10)))
		body = append(body, t10...)
		// Relative target port 1 (iSCSI, PIV, target port association).
		body = append(body, 0x51, 0x94, 0, 4, 0, 0, 0, 1)
	case 0x8f: // third-party copy (SPC-4 7.8.17)
		body = thirdPartyCopyVPD()
	case 0xb0: // block limits (SBC-3 6.5.3)
		body = make([]byte, 0x3c)
		body[1] = maxCompareWrite
		gran := lu.gran
		body[2], body[3] = byte(gran>>8), byte(gran)
		put32(body[4:], lu.maxXfer)
		put32(body[8:], min(lu.maxXfer, (1<<20)>>lu.shift)) // optimal transfer length
		if lu.cfg.Thin {
			put32(body[16:], maxUnmapBlocks)
			put32(body[20:], maxUnmapDescs)
			put32(body[24:], gran)
			put32(body[28:], 0x80000000) // UGAVALID, alignment 0
		}
		put32(body[36:], lu.maxWS) // low half of the 8-byte field
		// WRITE ATOMIC (SBC-4 6.6.4): up to the maximum transfer length,
		// in physical blocks, without atomic boundaries.
		put32(body[40:], maxAtomicBytes>>lu.shift)
		put32(body[44:], lu.agran) // ATOMIC ALIGNMENT
		put32(body[48:], lu.agran) // ATOMIC TRANSFER LENGTH GRANULARITY
	case 0xb1: // block device characteristics (SBC-3 6.5.2)
		body = make([]byte, 0x3c)
		body[1] = 0x01 // non-rotating medium
		if blockEraseOK(lu) {
			body[3] = 0x40 // WABEREQ 01: reads after BLOCK ERASE succeed
		}
	case 0xb2: // logical block provisioning (SBC-3 6.5.4)
		if !lu.cfg.Thin {
			return nil
		}
		body = make([]byte, 4)
		body[1] = 0xe0 // LBPU, LBPWS, LBPWS10
		if lu.props.UnmapZeroes {
			body[1] |= 0x04 // LBPRZ
		}
		body[2] = 0x02 // thin provisioned
	default:
		return nil
	}
	b := make([]byte, 4, 4+len(body))
	b[1] = page
	b[2], b[3] = byte(len(body)>>8), byte(len(body))
	return append(b, body...)
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

func startStopUnit(_ *Target, _ *LU, task *Task) outcome {
	// The medium is not removable and never spins down: every power
	// condition and START value is accepted and changes nothing.
	return outcome{}
}

func preventAllow(_ *Target, _ *LU, _ *Task) outcome { return outcome{} }

// reportLUNs lists the mapped LUNs (SPC-4 6.33).
func reportLUNs(t *Target, _ *LU, task *Task) outcome {
	cdb := task.CDB
	alloc := get32(cdb[6:])
	if alloc < 16 {
		return outcome{fail: badCDB(6, -1)}
	}
	var luns []uint64
	switch cdb[2] {
	case 0x00, 0x02:
		luns = t.LUNs()
	case 0x01: // well known LUs only: none
	default:
		return outcome{fail: badCDB(2, -1)}
	}
	b := make([]byte, 8, 8+8*len(luns))
	put32(b, uint32(8*len(luns)))
	for _, n := range luns {
		b = be64(b, wscsi.EncodeLUN(n))
	}
	return respond(task, b, alloc)
}

// reportOpcodes is REPORT SUPPORTED OPERATION CODES (SPC-4 6.35).
func reportOpcodes(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	rctd := cdb[2]&0x80 != 0
	alloc := get32(cdb[6:])
	op, sa := cdb[3], byte(get16(cdb[4:]))
	var b []byte
	switch opts := cdb[2] & 0x07; opts {
	case 0: // all commands
		b = make([]byte, 4)
		for _, c := range commands {
			if !c.supported(lu) {
				continue
			}
			b = append(b, c.op, 0)
			if c.hasSA {
				b = be16(b, uint16(c.sa))
			} else {
				b = be16(b, 0)
			}
			flags := byte(0)
			if c.hasSA {
				flags |= 0x01 // SERVACTV
			}
			if rctd {
				flags |= 0x02 // CTDP
			}
			b = append(b, 0, flags)
			b = be16(b, uint16(len(c.usage)))
			if rctd {
				b = timeoutsDescriptor(b, c)
			}
		}
		put32(b, uint32(len(b)-4))
	case 1, 2, 3:
		var c *command
		switch opts {
		case 1:
			if bySA[op] != nil {
				return outcome{fail: badCDB(2, 2)}
			}
			c = findCommand(op, 0, false)
		case 2:
			if bySA[op] == nil {
				return outcome{fail: badCDB(2, 2)}
			}
			c = findCommand(op, sa, true)
		case 3:
			c = findCommand(op, sa, bySA[op] != nil)
		}
		b = make([]byte, 4)
		if c == nil || !c.supported(lu) {
			b[1] = 0x01 // not supported
			break
		}
		b[1] = 0x03 // supported, conforms to the standard
		if rctd {
			b[1] |= 0x80
		}
		b[2], b[3] = 0, byte(len(c.usage))
		b = append(b, c.usage...)
		if rctd {
			b = timeoutsDescriptor(b, c)
		}
	default:
		return outcome{fail: badCDB(2, 2)}
	}
	return respond(task, b, alloc)
}

// timeoutsDescriptor is the command timeouts descriptor (SPC-4 6.35.4).
func timeoutsDescriptor(b []byte, c *command) []byte {
	b = append(b, 0, 0x0a, 0, 0)
	b = be32(b, 0) // nominal command processing timeout: not specified
	return be32(b, c.timeout)
}
