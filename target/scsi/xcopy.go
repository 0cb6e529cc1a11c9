package scsi

import (
	"slices"
	"sync"

	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// The copy manager: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4
// 6.4, 6.18). Every LU of a target is a copy manager that reaches every
// LU of the same target; copies run synchronously inside the command,
// block device to block device only.

// Copy manager limits, reported by RECEIVE COPY RESULTS OPERATING
// PARAMETERS and VPD page 0x8F, enforced by parseXCopy.
const (
	xcMaxTargetDescs  = 4    // MAXIMUM CSCD DESCRIPTOR COUNT
	xcMaxSegmentDescs = 16   // MAXIMUM SEGMENT DESCRIPTOR COUNT
	xcMaxDescListLen  = 1024 // MAXIMUM DESCRIPTOR LIST LENGTH, bytes
	// xcMaxSegmentBytes is the MAXIMUM SEGMENT LENGTH: a block to block
	// segment moves at most 65535 blocks of at most 4096 bytes.
	xcMaxSegmentBytes = 0xffff << 12
	// xcChunk is how much one read/write step moves; the destination
	// range lock is held for one step at a time.
	xcChunk = 1 << 20
	// xcHeldRecords bounds the copy status kept for RECEIVE COPY RESULTS.
	xcHeldRecords = 64
)

// Descriptor type codes (SPC-4 6.4.5, 6.4.6).
const (
	xcSegBlockToBlock = 0x02 // block device to block device segment
	xcTgtIdent        = 0xe4 // identification descriptor CSCD descriptor
	xcHeaderLen       = 16   // parameter list header
	xcTgtDescLen      = 32
	xcSegB2BLen       = 28
)

// xcTarget is a parsed identification descriptor target descriptor.
type xcTarget struct {
	at         int    // offset in the parameter list
	periph     byte   // peripheral device type
	designator []byte // the designation descriptor (bytes 4..)
	blockLen   uint32 // DISK BLOCK LENGTH
}

// xcSegment is a parsed block to block segment descriptor.
type xcSegment struct {
	at       int // offset in the parameter list
	src, dst uint16
	blocks   uint32
	srcLBA   uint64
	dstLBA   uint64
}

// xcList is a parsed EXTENDED COPY parameter list.
type xcList struct {
	id       byte
	usage    byte // LIST ID USAGE
	targets  []xcTarget
	segments []xcSegment
}

// holds reports whether the copy status is kept for RECEIVE COPY RESULTS
// (LIST ID USAGE 00b or 10b, SPC-4 table 106).
func (l *xcList) holds() bool { return l.usage != 3 }

// parseXCopy decodes and checks an EXTENDED COPY (LID1) parameter list
// (SPC-4 6.4.3). The checks run in the order the list is laid out, except
// that the descriptor list lengths are checked first: a list longer than
// MAXIMUM DESCRIPTOR LIST LENGTH is a PARAMETER LIST LENGTH ERROR however
// many descriptors it holds.
func parseXCopy(p []byte) (xcList, failure) {
	var l xcList
	if len(p) < xcHeaderLen {
		return l, fail(reasonParamListLength)
	}
	l.id = p[0]
	l.usage = (p[1] >> 3) & 3
	tgtLen := int(get16(p[2:]))
	segLen := uint64(get32(p[8:]))
	inlineLen := uint64(get32(p[12:]))
	if uint64(xcHeaderLen+tgtLen)+segLen+inlineLen > uint64(len(p)) {
		return l, fail(reasonParamListLength)
	}
	if uint64(tgtLen)+segLen > xcMaxDescListLen {
		return l, fail(reasonParamListLength)
	}
	switch {
	case l.usage == 1: // reserved
		return l, badParam(1, 4)
	case l.usage == 3 && l.id != 0:
		// No list identifier: LIST IDENTIFIER shall be zero.
		return l, badParam(0, -1)
	}
	// Target (CSCD) descriptors: fixed lengths by type code.
	end := xcHeaderLen + tgtLen
	for at := xcHeaderLen; at < end; {
		code := p[at]
		size := 0
		switch {
		case code >= 0xe0 && code <= 0xe9:
			size = xcTgtDescLen
		case code == 0xea || code == 0xeb:
			size = 64
		default:
			return l, badParamAt(reasonUnsupportedTargetDesc, at)
		}
		if at+size > end {
			return l, fail(reasonParamListLength)
		}
		if len(l.targets) == xcMaxTargetDescs {
			return l, fail(reasonTooManyTargetDescs)
		}
		if code != xcTgtIdent {
			return l, badParamAt(reasonUnsupportedTargetDesc, at)
		}
		d := p[at : at+size]
		dlen := int(d[7])
		if dlen > 20 {
			return l, badParam(uint16(at+7), -1)
		}
		// LU ID TYPE and NUL are ignored: SPC-4 made them obsolete for
		// identification descriptors.
		l.targets = append(l.targets, xcTarget{
			at:         at,
			periph:     d[1] & 0x1f,
			designator: d[4 : 8+dlen],
			blockLen:   uint32(d[29])<<16 | uint32(get16(d[30:])),
		})
		at += size
	}
	// Segment descriptors: the length is in each header.
	end += int(segLen)
	for at := xcHeaderLen + tgtLen; at < end; {
		if at+4 > end {
			return l, fail(reasonParamListLength)
		}
		d := p[at:]
		size := 4 + int(get16(d[2:]))
		if at+size > end {
			return l, fail(reasonParamListLength)
		}
		if len(l.segments) == xcMaxSegmentDescs {
			return l, fail(reasonTooManySegmentDescs)
		}
		if d[0] != xcSegBlockToBlock {
			return l, badParamAt(reasonUnsupportedSegmentDesc, at)
		}
		if size != xcSegB2BLen {
			return l, badParam(uint16(at+2), -1)
		}
		l.segments = append(l.segments, xcSegment{
			at:     at,
			src:    get16(d[4:]),
			dst:    get16(d[6:]),
			blocks: uint32(get16(d[10:])),
			srcLBA: get64(d[12:]),
			dstLBA: get64(d[20:]),
		})
		at += size
	}
	return l, ok
}

// badParamAt is reason r pointing at byte at of the parameter list; for
// COPY ABORTED this is the segment pointer of SPC-4 4.5.2.4.6 with SD
// zero.
func badParamAt(r reason, at int) failure {
	return failure{reason: r, sks: true, field: uint16(at), bit: -1}
}

// xcStep is one validated segment: where to read and where to write.
type xcStep struct {
	src, dst       *LU
	srcLBA, dstLBA uint64
	blocks         uint64
}

// resolve finds the LU a target descriptor names: one of this target
// whose VPD 0x83 carries the same LU designator. The PIV and protocol
// identifier bits are ignored, they describe how the designator was
// reported, not what it names.
func (t *Target) resolve(d xcTarget) *LU {
	if len(d.designator) < 4 {
		return nil
	}
	for _, lu := range t.allLUs() {
		if designates(lu, d.designator) {
			return lu
		}
	}
	return nil
}

func designates(lu *LU, want []byte) bool {
	page := lu.vpd(0x83)
	for b := page[4:]; len(b) >= 4; {
		n := 4 + int(b[3])
		if n > len(b) {
			return false
		}
		have := b[:n]
		if len(want) == n && have[0]&0x0f == want[0]&0x0f && have[1]&0x3f == want[1]&0x3f &&
			have[1]&0x30 == 0 && string(have[4:]) == string(want[4:]) {
			return true
		}
		b = b[n:]
	}
	return false
}

// plan checks every segment before any data moves, so that a bad segment
// fails the copy without a partial write (SPC-4 allows either; this is
// kinder to the initiator).
func (t *Target) plan(l *xcList) ([]xcStep, failure) {
	lus := make([]*LU, len(l.targets))
	get := func(i uint16, at int) (*LU, failure) {
		if int(i) >= len(l.targets) {
			return nil, badParamAt(reasonUnreachableCopyTarget, at)
		}
		if lus[i] == nil {
			d := l.targets[i]
			if d.periph != 0 { // only block devices are copy targets
				return nil, badParamAt(reasonUnreachableCopyTarget, d.at+1)
			}
			lu := t.resolve(d)
			if lu == nil {
				return nil, badParamAt(reasonUnreachableCopyTarget, d.at+4)
			}
			if d.blockLen != lu.bs {
				return nil, badParamAt(reasonCopyAborted, d.at+29)
			}
			lus[i] = lu
		}
		return lus[i], ok
	}
	steps := make([]xcStep, 0, len(l.segments))
	for _, s := range l.segments {
		src, f := get(s.src, s.at+4)
		if f.failed() {
			return nil, f
		}
		dst, f := get(s.dst, s.at+6)
		if f.failed() {
			return nil, f
		}
		n := uint64(s.blocks)
		switch {
		case src.bs != dst.bs:
			// Copies between block sizes (DC, PAD) are not offered.
			return nil, badParamAt(reasonCopyAborted, s.at+6)
		case !src.inRange(s.srcLBA, n):
			return nil, badParamAt(reasonCopyAborted, s.at+12)
		case !dst.inRange(s.dstLBA, n):
			return nil, badParamAt(reasonCopyAborted, s.at+20)
		}
		steps = append(steps, xcStep{src: src, dst: dst, srcLBA: s.srcLBA, dstLBA: s.dstLBA, blocks: n})
	}
	return steps, ok
}

// admitCopy applies to the LUs a copy touches, other than the one that
// received the command (admit checked that one), what they would apply
// to the issuing nexus reading or writing them itself: reservations
// (SPC-4 5.12.3), write protection and a sanitize in progress.
func admitCopy(issuer *LU, task *Task, steps []xcStep) outcome {
	port := portOf(task.Nexus)
	var rd, wr [16]byte
	rd[0], wr[0] = wscsi.OpRead16, wscsi.OpWrite16
	for _, s := range steps {
		if s.dst.writeProtected() {
			return outcome{fail: fail(reasonWriteProtected)}
		}
		for _, c := range [...]struct {
			lu  *LU
			cdb []byte
		}{{s.src, rd[:]}, {s.dst, wr[:]}} {
			if c.lu.san.active.Load() {
				return outcome{fail: fail(reasonSanitizeInProgress)}
			}
			if c.lu == issuer {
				continue
			}
			c.lu.mu.RLock()
			conflict := c.lu.pr.Check(port, c.cdb)
			c.lu.mu.RUnlock()
			if conflict {
				return outcome{conflict: true}
			}
		}
	}
	return outcome{}
}

// copyBlocks runs one segment through a bounce buffer, a chunk at a
// time, each chunk written under the destination's range lock. When
// source and destination overlap on one LU with the destination above,
// it copies from the end so that no source block is overwritten before
// it is read.
func copyBlocks(s xcStep, buf []byte) error {
	_, err := copySegment(s, buf)
	return err
}

// copySegment is copyBlocks returning the destination's range-lock
// number of its last chunk, for the audit.
func copySegment(s xcStep, buf []byte) (uint64, error) {
	var seq uint64
	per := uint64(len(buf)) >> s.dst.shift
	backwards := s.src == s.dst && s.dstLBA > s.srcLBA && s.dstLBA < s.srcLBA+s.blocks
	for done := uint64(0); done < s.blocks; {
		n := min(per, s.blocks-done)
		off := done
		if backwards {
			off = s.blocks - done - n
		}
		b := buf[:n<<s.dst.shift]
		if _, err := s.src.readAt(b, s.srcLBA+off, n); err != nil {
			return seq, err
		}
		id := s.dst.writers.lock(s.dstLBA+off, n)
		seq = id
		_, err := s.dst.be.WriteAt(b, int64(s.dstLBA+off)<<s.dst.shift)
		s.dst.writers.unlock(id)
		if err != nil {
			return seq, err
		}
		done += n
	}
	return seq, nil
}

// extendedCopy is EXTENDED COPY (LID1) (SPC-4 6.4).
func extendedCopy(t *Target, lu *LU, task *Task) outcome {
	listLen := get32(task.CDB[10:])
	o := outcome{wanted: listLen}
	if listLen == 0 {
		return o // SPC-4 6.4.1: not an error, nothing to copy
	}
	if uint32(len(task.DataOut)) < listLen {
		o.fail = fail(reasonInvalidFieldInIU)
		return o
	}
	l, f := parseXCopy(task.DataOut[:listLen])
	if f.failed() {
		o.fail = f
		return o
	}
	key := keyOf(task.Nexus)
	if l.holds() {
		if f := lu.copies.begin(key, l.id); f.failed() {
			o.fail = f
			return o
		}
	}
	rec := copyRecord{status: copyFailed}
	o = t.runCopy(lu, task, &l, &rec, o)
	if l.holds() {
		lu.copies.finish(key, l.id, rec)
	}
	return o
}

func (t *Target) runCopy(lu *LU, task *Task, l *xcList, rec *copyRecord, o outcome) outcome {
	steps, f := t.plan(l)
	if f.failed() {
		o.fail = f
		return o
	}
	if a := admitCopy(lu, task, steps); a.fail.failed() || a.conflict {
		a.wanted = o.wanted
		return a
	}
	var total uint64
	for _, s := range steps {
		total += s.blocks << s.dst.shift
	}
	buf := make([]byte, min(total, xcChunk))
	written := map[*LU]bool{}
	for i, s := range steps {
		seq, err := copySegment(s, buf)
		s.dst.auditCopy(task, s, seq, err)
		if err != nil {
			o.fail, o.err = badParamAt(reasonCopyAborted, l.segments[i].at), err
			return o
		}
		rec.segments++
		rec.bytes += s.blocks << s.dst.shift
		written[s.dst] = true
	}
	// Durability as for WRITE: synced before GOOD when WCE is off.
	for dst := range written {
		if err := dst.durable(false); err != nil {
			o.fail, o.err = syncFailure(err), err
			return o
		}
	}
	rec.status = copyDone
	return o
}

// Copy operation status of RECEIVE COPY RESULTS COPY STATUS (SPC-4
// table 346).
const (
	copyInProgress = 0x00
	copyDone       = 0x01
	copyFailed     = 0x02
)

// copyRecord is the status of one copy, kept per nexus and list
// identifier for RECEIVE COPY RESULTS.
type copyRecord struct {
	key      nexusKey
	id       byte
	status   byte
	segments uint16
	bytes    uint64
}

// copyStore holds the copy status records of an LU, at most
// xcHeldRecords, oldest dropped first.
type copyStore struct {
	mu   sync.Mutex
	recs []copyRecord
}

func keyOf(n *Nexus) nexusKey {
	if n == nil {
		return nexusKey{}
	}
	return nexusKey{name: n.Initiator, isid: n.ISID, tpgt: n.TPGT}
}

// begin records a copy in progress; a copy with the same list identifier
// still running for the nexus is OPERATION IN PROGRESS (SPC-4 6.4.3.2).
func (s *copyStore) begin(key nexusKey, id byte) failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(key, id); i >= 0 {
		if s.recs[i].status == copyInProgress {
			return fail(reasonOperationInProgress)
		}
		s.recs = append(s.recs[:i], s.recs[i+1:]...)
	}
	if len(s.recs) >= xcHeldRecords {
		for i, r := range s.recs {
			if r.status != copyInProgress {
				s.recs = append(s.recs[:i], s.recs[i+1:]...)
				break
			}
		}
	}
	s.recs = append(s.recs, copyRecord{key: key, id: id, status: copyInProgress})
	return ok
}

func (s *copyStore) finish(key nexusKey, id byte, r copyRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(key, id); i >= 0 {
		r.key, r.id = key, id
		s.recs[i] = r
	}
}

func (s *copyStore) get(key nexusKey, id byte) (copyRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(key, id); i >= 0 {
		return s.recs[i], true
	}
	return copyRecord{}, false
}

// forget drops the records of a nexus that went away.
func (s *copyStore) forget(key nexusKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = slices.DeleteFunc(s.recs, func(r copyRecord) bool { return r.key == key && r.status != copyInProgress })
}

func (s *copyStore) find(key nexusKey, id byte) int {
	for i, r := range s.recs {
		if r.key == key && r.id == id {
			return i
		}
	}
	return -1
}

// receiveCopyResults is RECEIVE COPY RESULTS (SPC-4 6.18): COPY STATUS
// and OPERATING PARAMETERS.
func receiveCopyResults(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	alloc := get32(cdb[10:])
	switch cdb[1] & 0x1f {
	case wscsi.SACopyStatus:
		r, found := lu.copies.get(keyOf(task.Nexus), cdb[2])
		if !found {
			return outcome{fail: badCDB(2, -1)}
		}
		return respond(task, copyStatusData(r), alloc)
	default: // wscsi.SAOperatingParameters; dispatch refused the others
		return respond(task, operatingParameters(), alloc)
	}
}

// copyStatusData is the COPY STATUS parameter data (SPC-4 6.18.2); the
// transfer count is in the smallest unit that fits 32 bits.
func copyStatusData(r copyRecord) []byte {
	b := make([]byte, 12)
	put32(b, 8)
	b[4] = r.status
	b[5], b[6] = byte(r.segments>>8), byte(r.segments)
	units, count := byte(0), r.bytes
	for count > 0xffffffff {
		units++
		count >>= 10
	}
	b[7] = units
	put32(b[8:], uint32(count))
	return b
}

// xcDescCodes are the implemented descriptor type codes.
var xcDescCodes = [...]byte{xcSegBlockToBlock, xcTgtIdent}

// operatingParameters is the OPERATING PARAMETERS parameter data (SPC-4
// 6.18.4).
func operatingParameters() []byte {
	b := make([]byte, 44, 44+len(xcDescCodes))
	b[4] = 0x01 // SNLID: copies without a list identifier are supported
	b[8], b[9] = 0, xcMaxTargetDescs
	b[10], b[11] = 0, xcMaxSegmentDescs
	put32(b[12:], xcMaxDescListLen)
	put32(b[16:], xcMaxSegmentBytes)
	// Inline data, held data and stream devices: none (zero limits).
	b[34], b[35] = 0, 1 // TOTAL CONCURRENT COPIES per command
	b[36] = 1           // MAXIMUM CONCURRENT COPIES
	b[37] = 9           // DATA SEGMENT GRANULARITY: 2^9, the smallest block
	b[43] = byte(len(xcDescCodes))
	b = append(b, xcDescCodes[:]...)
	put32(b, uint32(len(b)-4))
	return b
}

// thirdPartyCopyVPD is the body of the Third-party Copy VPD page (SPC-4
// 7.8.17): the commands of the copy manager, its limits and the
// descriptors it implements.
func thirdPartyCopyVPD() []byte {
	var b []byte
	// Supported Commands descriptor (7.8.17.3).
	cmds := []byte{
		wscsi.OpExtendedCopy, 1, wscsi.SAExtendedCopyLID1,
		wscsi.OpReceiveCopyResults, 2, wscsi.SACopyStatus, wscsi.SAOperatingParameters,
	}
	body := append([]byte{byte(len(cmds))}, cmds...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b = append(b, 0x00, 0x01, 0, byte(len(body)))
	b = append(b, body...)
	// Parameter Data descriptor (7.8.17.4): bytes 8.. of the descriptor.
	pd := make([]byte, 28)
	pd[4], pd[5] = 0, xcMaxTargetDescs
	pd[6], pd[7] = 0, xcMaxSegmentDescs
	put32(pd[8:], xcMaxDescListLen)
	b = append(b, 0x00, 0x04, 0, byte(len(pd)))
	b = append(b, pd...)
	// Supported Descriptors descriptor (7.8.17.5).
	sd := []byte{byte(len(xcDescCodes))}
	sd = append(sd, xcDescCodes[:]...)
	for len(sd)%4 != 0 {
		sd = append(sd, 0)
	}
	b = append(b, 0x00, 0x08, 0, byte(len(sd)))
	return append(b, sd...)
}
