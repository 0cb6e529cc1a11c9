package scsi

import (
	"os"

	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// Mode pages (SPC-4 7.5, SBC-3 6.4). Only WCE (caching), D_SENSE and
// SWP (control) are changeable; saved values are the defaults, since nothing
// is saved.
const (
	pcCurrent = iota
	pcChangeable
	pcDefault
	pcSaved
)

const (
	pageCaching = 0x08
	pageControl = 0x0a
	pageAll     = 0x3f
)

var modePages = []byte{pageCaching, pageControl}

// modePage returns page code's contents for page control pc.
func (lu *LU) modePage(code byte, pc int) []byte {
	switch code {
	case pageCaching:
		p := make([]byte, 20)
		p[0], p[1] = pageCaching, 0x12
		switch pc {
		case pcChangeable:
			p[2] = 0x04
		case pcCurrent:
			if lu.wce.Load() {
				p[2] = 0x04
			}
		default:
			if lu.cfg.WriteCache {
				p[2] = 0x04
			}
		}
		return p
	case pageControl:
		p := make([]byte, 12)
		p[0], p[1] = pageControl, 0x0a
		switch pc {
		case pcChangeable:
			p[2] = 0x04 // D_SENSE
			p[4] = 0x08 // SWP
		case pcCurrent:
			if lu.dsense.Load() {
				p[2] = 0x04
			}
			if lu.swp.Load() {
				p[4] = 0x08
			}
			fallthrough
		default:
			if taskAbortedStatus {
				p[5] = 0x40 // TAS
			}
			p[8], p[9] = 0xff, 0xff // busy timeout period: unlimited
		}
		if pc == pcChangeable {
			p[5], p[8], p[9] = 0, 0, 0
		}
		return p
	}
	return nil
}

func modeSense(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	ten := cdb[0] == wscsi.OpModeSense10
	dbd := cdb[1]&0x08 != 0
	llbaa := ten && cdb[1]&0x10 != 0
	pc := int(cdb[2] >> 6)
	code, sub := cdb[2]&0x3f, cdb[3]
	alloc := uint32(cdb[4])
	if ten {
		alloc = uint32(get16(cdb[7:]))
	}
	if sub != 0 && sub != 0xff {
		return outcome{fail: badCDB(3, -1)}
	}
	var pages []byte
	if code == pageAll {
		for _, c := range modePages {
			pages = append(pages, lu.modePage(c, pc)...)
		}
	} else {
		pages = lu.modePage(code, pc)
		if pages == nil {
			return outcome{fail: badCDB(2, 5)}
		}
	}
	dev := byte(0x10) // DPOFUA
	if lu.writeProtected() {
		dev |= 0x80 // WP
	}
	var bd []byte
	if !dbd {
		if llbaa {
			bd = be64(make([]byte, 0, 16), lu.blocks)
			bd = be32(bd, 0)
			bd = be32(bd, lu.bs)
		} else {
			n := lu.blocks
			if n > 0xffffff {
				n = 0xffffff
			}
			bd = be32(make([]byte, 0, 8), uint32(n)) // density code 0
			bd = be32(bd, lu.bs)
		}
	}
	var b []byte
	if ten {
		b = make([]byte, 8, 8+len(bd)+len(pages))
		b[3] = dev
		if llbaa {
			b[4] = 0x01 // LONGLBA
		}
		b[6], b[7] = 0, byte(len(bd))
		b = append(append(b, bd...), pages...)
		b[0], b[1] = byte((len(b)-2)>>8), byte(len(b)-2)
	} else {
		b = make([]byte, 4, 4+len(bd)+len(pages))
		b[2], b[3] = dev, byte(len(bd))
		b = append(append(b, bd...), pages...)
		b[0] = byte(len(b) - 1)
	}
	return respond(task, b, alloc)
}

// modeSelect applies changes to WCE and D_SENSE; any other difference
// from the current values is INVALID FIELD IN PARAMETER LIST (SPC-4
// 6.11, 6.12).
func modeSelect(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	ten := cdb[0] == wscsi.OpModeSelect10
	n := uint32(cdb[4])
	hdr := 4
	if ten {
		n, hdr = uint32(get16(cdb[7:])), 8
	}
	o := outcome{wanted: n}
	if cdb[1]&0x01 != 0 { // SP: nothing can be saved
		o.fail = badCDB(1, 0)
		return o
	}
	if n == 0 {
		return o
	}
	if uint32(len(task.DataOut)) < n {
		o.fail = fail(reasonParamListLength)
		return o
	}
	p := task.DataOut[:n]
	if len(p) < hdr {
		o.fail = fail(reasonParamListLength)
		return o
	}
	bdl := int(p[3])
	if ten {
		bdl = int(get16(p[6:]))
	}
	if hdr+bdl > len(p) {
		o.fail = fail(reasonParamListLength)
		return o
	}
	// A block descriptor may restate the block length, not change it.
	for off := hdr; off+8 <= hdr+bdl; off += 8 {
		long := ten && p[4]&0x01 != 0
		if long {
			if off+16 > hdr+bdl {
				break
			}
			if get32(p[off+12:]) != lu.bs {
				o.fail = badParam(uint16(off+12), -1)
				return o
			}
			off += 8
			continue
		}
		if l := uint32(p[off+5])<<16 | uint32(get16(p[off+6:])); l != lu.bs {
			o.fail = badParam(uint16(off+5), -1)
			return o
		}
	}
	wce, dsense, swp := lu.wce.Load(), lu.dsense.Load(), lu.swp.Load()
	for off := hdr + bdl; off < len(p); {
		if p[off]&0x40 != 0 { // SPF: no subpages here
			o.fail = badParam(uint16(off), 6)
			return o
		}
		if off+2 > len(p) {
			o.fail = fail(reasonParamListLength)
			return o
		}
		code, plen := p[off]&0x3f, int(p[off+1])
		cur := lu.modePage(code, pcCurrent)
		if cur == nil {
			o.fail = badParam(uint16(off), 5)
			return o
		}
		if plen != len(cur)-2 {
			o.fail = badParam(uint16(off+1), -1)
			return o
		}
		if off+2+plen > len(p) {
			o.fail = fail(reasonParamListLength)
			return o
		}
		mask := lu.modePage(code, pcChangeable)
		in := p[off : off+2+plen]
		for i := 2; i < len(in); i++ {
			if (in[i]^cur[i])&^mask[i] != 0 {
				o.fail = badParam(uint16(off+i), -1)
				return o
			}
		}
		switch code {
		case pageCaching:
			wce = in[2]&0x04 != 0
		case pageControl:
			dsense = in[2]&0x04 != 0
			swp = in[4]&0x08 != 0
		}
		off += 2 + plen
	}
	// Apply only after the whole list checked out.
	o.modeChanged = wce != lu.wce.Load() || dsense != lu.dsense.Load() || swp != lu.swp.Load()
	lu.wce.Store(wce)
	lu.dsense.Store(dsense)
	lu.swp.Store(swp)
	if !wce {
		// Turning the cache off must not leave dirty data behind.
		if err := lu.be.Sync(); err != nil {
			o.fail, o.err = syncFailure(err), err
		}
	}
	return o
}

// taskAbortedStatus is the TAS bit of the Control mode page (SPC-4
// 7.5.8), not changeable: a task aborted by another I_T nexus (PREEMPT
// AND ABORT, CLEAR TASK SET, a reset) completes with TASK ABORTED status,
// so its initiator learns at once instead of waiting for its command
// timer (TAS=0 would end it without a response).
const taskAbortedStatus = true

// TaskAbortedStatus reports the TAS bit of lun's Control mode page; the
// fabric asks it when another nexus aborts tasks (SAM-5 5.6).
func (t *Target) TaskAbortedStatus(lun uint64) bool {
	return taskAbortedStatus && !testNoTAS && t.lu(lun) != nil
}

// testNoTAS is a TEST-ONLY switch (TANDEM_TEST_NO_TAS=1 in the target's
// environment): tasks aborted by another nexus end without a response
// while the mode page still advertises TAS=1, the bug of issue 11, so the
// VM test (e2e/cmd/tasvm) can show that it catches it. Never set it in
// production.
var testNoTAS = os.Getenv("TANDEM_TEST_NO_TAS") == "1"
