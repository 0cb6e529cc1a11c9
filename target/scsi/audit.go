package scsi

import (
	"time"

	"github.com/tandem-ha/tandem/target/audit"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// Auditor receives one record per WRITE-class command an LU accepted or
// refused (audit.Writer implements it). Append is called on the command's
// own goroutine and must not block.
type Auditor interface {
	Append(r audit.Record)
}

type auditorBox struct{ a Auditor }

// SetAuditor starts (or with nil stops) the audit of the LU's
// WRITE-class commands.
func (lu *LU) SetAuditor(a Auditor) {
	if a == nil {
		lu.auditor.Store(nil)
		return
	}
	lu.auditor.Store(&auditorBox{a})
}

// audited reports whether c changes the medium's data and so belongs in
// the audit: the WRITE family, WRITE AND VERIFY, ORWRITE, WRITE SAME,
// COMPARE AND WRITE, UNMAP, WRITE ATOMIC, EXTENDED COPY and SANITIZE.
func audited(c *command) bool {
	switch c.op {
	case wscsi.OpWrite6, wscsi.OpWrite10, wscsi.OpWrite12, wscsi.OpWrite16,
		wscsi.OpWriteVerify10, wscsi.OpWriteVerify12, wscsi.OpWriteVerify16,
		wscsi.OpORWrite16, wscsi.OpWriteSame10, wscsi.OpWriteSame16,
		wscsi.OpCompareAndWrite, wscsi.OpUnmap, wscsi.OpWriteAtomic16,
		wscsi.OpExtendedCopy, wscsi.OpSanitize:
		return true
	}
	return false
}

// lockWrite takes the range lock for a write of task and notes the
// acquisition number, which orders the audit records of overlapping
// writes (audit.Record.Seq).
func (lu *LU) lockWrite(task *Task, lba, n uint64) uint64 {
	id := lu.writers.lock(lba, n)
	task.auditSeq = id
	return id
}

// prSnapshot is the reservation state a command is judged against, read
// before admission: a write admitted before a fence is never recorded
// with the fence's generation.
type prSnapshot struct {
	gen     uint32
	resType byte
	holder  Nexus
}

func (lu *LU) prSnapshot() prSnapshot {
	lu.mu.RLock()
	defer lu.mu.RUnlock()
	s := prSnapshot{gen: lu.pr.Generation()}
	if res, ok := lu.pr.Reservation(); ok {
		s.resType = byte(res.Type)
		s.holder = Nexus{Initiator: res.Holder.Initiator, ISID: res.Holder.ISID}
	}
	return s
}

func (s *prSnapshot) fill(r *audit.Record, n *Nexus) {
	r.Generation, r.ResType = s.gen, s.resType
	r.HolderInitiator, r.HolderISID = s.holder.Initiator, s.holder.ISID
	if n != nil {
		r.Initiator, r.ISID, r.TPGT = n.Initiator, n.ISID, n.TPGT
	}
}

// executeAudited runs an audited command and records its outcome.
func (t *Target) executeAudited(lu *LU, a Auditor, task *Task, cmd *command, f failure) Result {
	snap := lu.prSnapshot()
	task.auditSeq = 0
	r := t.executeAdmitted(lu, task, cmd, f)
	rec := audit.Record{Kind: audit.KindWrite, Time: time.Now().UnixNano(), Seq: task.auditSeq,
		Op: cmd.op, Status: r.Status}
	if cmd.hasSA {
		rec.SA = cmd.sa
	}
	snap.fill(&rec, task.Nexus)
	if r.Status == wscsi.StatusCheckCondition {
		rec.SenseKey, rec.ASC, rec.ASCQ = senseCodes(r.Sense)
	}
	cdb := task.CDB
	switch cmd.op {
	case wscsi.OpWriteSame10, wscsi.OpWriteSame16:
		if cmd.op == wscsi.OpWriteSame10 {
			rec.LBA, rec.Blocks = uint64(get32(cdb[2:])), uint64(get16(cdb[7:]))
		} else {
			rec.LBA, rec.Blocks = get64(cdb[2:]), uint64(get32(cdb[10:]))
		}
		if rec.Blocks == 0 && rec.LBA < lu.blocks {
			rec.Blocks = lu.blocks - rec.LBA
		}
		if cdb[1]&0x08 != 0 {
			rec.Flags |= audit.FlagUnmap
		}
	case wscsi.OpCompareAndWrite:
		rec.LBA, rec.Blocks = get64(cdb[2:]), uint64(cdb[13])
		rec.Flags |= fuaFlag(cdb[1])
	case wscsi.OpWriteAtomic16:
		rec.LBA, rec.Blocks = get64(cdb[2:]), uint64(get16(cdb[12:]))
		rec.Flags |= fuaFlag(cdb[1])
	case wscsi.OpUnmap:
		rec.Flags |= audit.FlagUnmap
		lu.auditUnmap(a, rec, task)
		return r
	case wscsi.OpExtendedCopy:
		// The segments are recorded on the LUs they wrote (auditCopy);
		// this record says whether the command was let through.
	case wscsi.OpSanitize:
		rec.LBA, rec.Blocks = 0, lu.blocks
		if rec.SA == wscsi.SASanitizeBlockErase {
			rec.Flags |= audit.FlagUnmap
		}
		// The sanitize takes the whole-LU lock later (perhaps in the
		// background); every write before it has a Seq at most this.
		rec.Seq = lu.writers.current()
	default: // WRITE, WRITE AND VERIFY, ORWRITE
		lba, n, flags, _ := rwFields(cdb)
		rec.LBA, rec.Blocks = lba, uint64(n)
		rec.Flags |= fuaFlag(flags)
		switch cmd.op {
		case wscsi.OpWriteVerify10, wscsi.OpWriteVerify12, wscsi.OpWriteVerify16:
			rec.Flags |= audit.FlagFUA // it reaches the medium to be verified
		}
	}
	a.Append(rec)
	return r
}

// auditUnmap records one entry per block descriptor of an UNMAP, or one
// without a range when the parameter list is unusable.
func (lu *LU) auditUnmap(a Auditor, rec audit.Record, task *Task) {
	plen := uint32(get16(task.CDB[7:]))
	if plen >= 8 && uint32(len(task.DataOut)) >= plen {
		p := task.DataOut[:plen]
		bdl := min(uint32(get16(p[2:])), plen-8)
		descs := p[8 : 8+bdl/16*16]
		if len(descs) > 0 {
			for i := 0; i < len(descs); i += 16 {
				rec.LBA, rec.Blocks = get64(descs[i:]), uint64(get32(descs[i+8:]))
				a.Append(rec)
			}
			return
		}
	}
	a.Append(rec)
}

// auditCopy records a segment an EXTENDED COPY wrote to lu, the copy's
// destination, under the issuer's nexus.
func (lu *LU) auditCopy(task *Task, s xcStep, seq uint64, err error) {
	box := lu.auditor.Load()
	if box == nil {
		return
	}
	snap := lu.prSnapshot()
	rec := audit.Record{Kind: audit.KindWrite, Time: time.Now().UnixNano(), Seq: seq,
		Op: wscsi.OpExtendedCopy, SA: wscsi.SAExtendedCopyLID1, Flags: audit.FlagCopy,
		LBA: s.dstLBA, Blocks: s.blocks}
	snap.fill(&rec, task.Nexus)
	if err != nil {
		rec.Status, rec.SenseKey, rec.ASC, rec.ASCQ = wscsi.StatusCheckCondition, 0x0a, 0x0d, 0x00 // COPY ABORTED
	}
	box.a.Append(rec)
}

func fuaFlag(flags byte) byte {
	if flags&0x08 != 0 {
		return audit.FlagFUA
	}
	return 0
}

// senseCodes picks the sense key, ASC and ASCQ out of fixed (70h/71h) or
// descriptor (72h/73h) sense data.
func senseCodes(s []byte) (key, asc, ascq byte) {
	if len(s) == 0 {
		return 0, 0, 0
	}
	switch s[0] & 0x7f {
	case 0x70, 0x71:
		if len(s) >= 14 {
			return s[2] & 0x0f, s[12], s[13]
		}
	case 0x72, 0x73:
		if len(s) >= 4 {
			return s[1] & 0x0f, s[2], s[3]
		}
	}
	return 0, 0, 0
}
