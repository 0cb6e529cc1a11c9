package iscsi

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	tscsi "github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// r2tSeq is one outstanding R2T: the solicited Data-Out sequence it opens.
type r2tSeq struct {
	ttt    uint32
	r2tSN  uint32
	offset uint32
	length uint32
	next   uint32 // next expected buffer offset
	dataSN uint32 // next expected DataSN
}

// command is one SCSI command from arrival to its response. The reader
// owns the data-phase fields until submit; a worker then owns the rest.
type command struct {
	c     *conn
	task  tscsi.Task
	cdb   [16]byte
	itt   uint32
	cmdSN uint32
	lun   uint64 // raw LUN field, echoed in Data-In
	edtl  uint32
	// bidiLen is the Expected Bidirectional Read Data Length (AHS type 2).
	bidiLen uint32
	read    bool
	write   bool

	out *[]byte // Data-Out buffer (pooled)
	in  *[]byte // Data-In buffer (pooled)

	got         uint32 // Data-Out bytes received
	unsolDone   bool   // no more unsolicited Data-Out will come
	unsolDataSN uint32
	requested   uint32 // Data-Out bytes covered by immediate/unsolicited/R2T so far
	r2ts        []r2tSeq
	sn          uint32 // next R2TSN / DataSN (one space, RFC 7143 section 11.8.4)
	r2tsSent    uint32 // R2Ts written (writer-owned): ExpDataSN of a TASK ABORTED
	delivered   bool
	submitted   bool
	failSense   []byte // when set, the command fails with this sense without executing

	// state is the task's life cycle (taskRecv..taskDone) plus the
	// taskAborted bit; task management changes it from other goroutines.
	state atomic.Uint32

	result tscsi.Result
}

var cmdPool = sync.Pool{New: func() any { return &command{r2ts: make([]r2tSeq, 0, 4)} }}

func (c *conn) newCommand() *command {
	cmd := cmdPool.Get().(*command)
	r2ts := cmd.r2ts[:0]
	*cmd = command{c: c, r2ts: r2ts}
	return cmd
}

// release returns a finished command's buffers; the command leaves the
// task table.
func (c *conn) release(cmd *command) {
	c.mu.Lock()
	if c.tasks[cmd.itt] == cmd {
		delete(c.tasks, cmd.itt)
	}
	c.mu.Unlock()
	putBuf(cmd.out)
	putBuf(cmd.in)
	cmd.out, cmd.in = nil, nil
	cmd.task = tscsi.Task{}
	cmd.result = tscsi.Result{}
	cmd.failSense = nil
	cmd.c = nil
	cmdPool.Put(cmd)
}

// Fixed-format sense (SPC-4 section 4.5.3) for errors the fabric itself
// reports: ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT.
var senseInvalidIU = []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x0e, 0x03, 0, 0, 0, 0}

// lunNotServed is passed to the SCSI layer for LUN fields in an
// addressing method tandem does not decode: no LU has it, so the SCSI
// layer answers LOGICAL UNIT NOT SUPPORTED.
const lunNotServed = math.MaxUint64

func (c *conn) onSCSICommand(req *pdu.PDU) error {
	b := &req.BHS
	itt := b.ITT()
	c.mu.Lock()
	_, dup := c.tasks[itt]
	c.mu.Unlock()
	if dup {
		c.reject(req, pdu.RejectTaskInProgress)
		return nil
	}
	cmd := c.newCommand()
	cmd.itt = itt
	cmd.cmdSN = b.CmdSN()
	cmd.lun = b.LUN()
	cmd.edtl = b.ExpectedDataTransferLength()
	cmd.read = b.Flags()&pdu.FlagRead != 0
	cmd.write = b.Flags()&pdu.FlagWrite != 0
	copy(cmd.cdb[:], b.CDB())
	cdb := cmd.cdb[:]
	if err := cmd.parseAHS(req.AHS); err != nil {
		c.release(cmd)
		c.reject(req, pdu.RejectInvalidPDUField)
		return nil
	}
	if cmd.task.CDB != nil {
		cdb = cmd.task.CDB
	}
	lun, ok := scsi.DecodeLUN(cmd.lun)
	if !ok {
		lun = lunNotServed
	}
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("scsi command", "itt", itt, "cmdsn", cmd.cmdSN, "lun", lun, "cdb", hex.EncodeToString(cdb), "edtl", cmd.edtl, "immediate_data", len(req.Data))
	}
	cmd.task = tscsi.Task{
		Nexus: &c.nexus, LUN: lun, CDB: cdb, Attr: b.Flags() & pdu.AttrMask, Tag: itt,
		Read: cmd.read, Write: cmd.write, ExpectedLength: cmd.edtl,
	}

	limit := c.srv.cfg.MaxTransferLength
	imm := uint32(len(req.Data))
	switch {
	case cmd.edtl > limit || cmd.bidiLen > limit:
		cmd.failSense = senseInvalidIU
		cmd.unsolDone = true
	case !cmd.write && imm > 0:
		// Immediate data on a command that writes nothing.
		c.release(cmd)
		c.reject(req, pdu.RejectProtocolError)
		return nil
	case cmd.write:
		ulimit := unsolicitedLimit(cmd.edtl, c.params.FirstBurstLength)
		if imm > ulimit || (imm > 0 && !c.params.ImmediateData) {
			c.release(cmd)
			c.reject(req, pdu.RejectProtocolError)
			return nil
		}
		cmd.out = getBuf(int(cmd.edtl))
		copy(*cmd.out, req.Data)
		cmd.got = imm
		cmd.requested = imm
		// F=0 announces unsolicited Data-Out, allowed only with
		// InitialR2T=No (RFC 7143 sections 11.3.1.1 and 13.10).
		cmd.unsolDone = b.Final() || c.params.InitialR2T || imm >= ulimit
		if !cmd.unsolDone {
			cmd.requested = ulimit
		}
	default:
		cmd.unsolDone = true
	}
	if cmd.failSense == nil {
		if cmd.read && !cmd.write {
			cmd.in = getBuf(int(cmd.edtl))
		} else if cmd.read && cmd.write {
			cmd.in = getBuf(int(cmd.bidiLen))
		}
	}

	if b.Immediate() {
		c.addTask(cmd)
		return c.deliver(cmd)
	}
	exp := c.expCmdSN.Load()
	switch classifyCmdSN(cmd.cmdSN, exp, c.depth) {
	case cmdDeliver:
		c.addTask(cmd)
		c.expCmdSN.Store(exp + 1)
		if err := c.deliver(cmd); err != nil {
			return err
		}
		return c.drainPending()
	case cmdQueue:
		if _, taken := c.pending[cmd.cmdSN]; taken {
			// The CmdSN was consumed already: by an ABORT TASK that
			// named it before it arrived (RFC 7143 section 11.5.1) or by
			// a duplicate; the command is not executed.
			c.log.Debug("command with a consumed CmdSN dropped", "cmdsn", cmd.cmdSN, "itt", itt)
			c.release(cmd)
			return nil
		}
		c.addTask(cmd)
		c.pending[cmd.cmdSN] = pendingCmd{cmd: cmd}
		return nil
	}
	c.log.Debug("command outside the CmdSN window dropped", "cmdsn", cmd.cmdSN, "exp_cmdsn", exp, "itt", itt)
	c.release(cmd)
	return nil
}

// parseAHS reads the extended CDB (type 1) and the bidirectional read
// length (type 2) AHS (RFC 7143 sections 11.2.2 to 11.2.4).
func (cmd *command) parseAHS(ahs []byte) error {
	for len(ahs) > 0 {
		if len(ahs) < 4 {
			return fmt.Errorf("short AHS")
		}
		n := int(binary.BigEndian.Uint16(ahs))
		typ := ahs[2]
		total := (3 + n + 3) &^ 3
		if 3+n > len(ahs) {
			return fmt.Errorf("AHS length %d beyond the header", n)
		}
		body := ahs[3 : 3+n]
		switch typ {
		case 1:
			if n < 1 {
				return fmt.Errorf("empty extended CDB")
			}
			ext := body[1:] // first byte reserved
			full := make([]byte, 16+len(ext))
			copy(full, cmd.cdb[:])
			copy(full[16:], ext)
			cmd.task.CDB = full
		case 2:
			if n < 5 {
				return fmt.Errorf("short bidirectional AHS")
			}
			cmd.bidiLen = binary.BigEndian.Uint32(body[1:5])
		}
		if total > len(ahs) {
			total = len(ahs)
		}
		ahs = ahs[total:]
	}
	return nil
}

func (c *conn) addTask(cmd *command) {
	c.mu.Lock()
	c.tasks[cmd.itt] = cmd
	c.mu.Unlock()
}

// deliver is called when cmd's turn in CmdSN order has come.
func (c *conn) deliver(cmd *command) error {
	if cmd.aborted() {
		// Aborted while it waited for its turn: its CmdSN counts as
		// received, the command itself is dropped.
		return nil
	}
	cmd.delivered = true
	c.advance(cmd)
	return nil
}

// advance moves a delivered command on: solicit more data or execute.
func (c *conn) advance(cmd *command) {
	if !cmd.delivered || cmd.submitted || cmd.aborted() {
		return
	}
	if cmd.failSense != nil || !cmd.write || cmd.got >= cmd.edtl {
		c.submit(cmd)
		return
	}
	if !cmd.unsolDone {
		return
	}
	maxR2T := int(c.params.MaxOutstandingR2T)
	if maxR2T <= 0 {
		maxR2T = 1
	}
	for len(cmd.r2ts) < maxR2T {
		off, n, ok := nextR2T(cmd.requested, cmd.edtl, c.params.MaxBurstLength)
		if !ok {
			return
		}
		c.nextTTT++
		if c.nextTTT >= 0x80000000 {
			c.nextTTT = 1
		}
		seq := r2tSeq{ttt: c.nextTTT, r2tSN: cmd.sn, offset: off, length: n, next: off}
		cmd.sn++
		cmd.requested = off + n
		cmd.r2ts = append(cmd.r2ts, seq)
		c.send(outMsg{kind: outR2T, cmd: cmd, r2t: seq})
	}
}

// onDataOut checks one Data-Out PDU against its sequence and copies it.
// At ERL 0 a DataSN, offset or TTT error cannot be recovered within the
// command (RFC 7143 section 7.1.5); the command ends in CHECK CONDITION
// and the rest of its Data-Out is ignored, while the connection and the
// other commands go on.
func (c *conn) onDataOut(req *pdu.PDU) error {
	b := &req.BHS
	c.mu.Lock()
	cmd := c.tasks[b.ITT()]
	c.mu.Unlock()
	if cmd == nil || cmd.submitted || !cmd.write {
		// The command was dropped or aborted; its data is dropped too.
		c.log.Debug("Data-Out for no active write ignored", "itt", b.ITT())
		return nil
	}
	n := uint32(len(req.Data))
	off := b.BufferOffset()
	if cmd.failSense != nil {
		return nil
	}
	if b.TTT() == pdu.ReservedTag {
		limit := unsolicitedLimit(cmd.edtl, c.params.FirstBurstLength)
		if cmd.unsolDone || b.DataSN() != cmd.unsolDataSN || off != cmd.got || off+n > limit {
			return c.failData(cmd, fmt.Sprintf("unsolicited Data-Out itt %#x datasn %d offset %d len %d",
				b.ITT(), b.DataSN(), off, n))
		}
		copy((*cmd.out)[off:], req.Data)
		cmd.got += n
		cmd.unsolDataSN++
		if b.Final() || cmd.got >= limit {
			cmd.unsolDone = true
			cmd.requested = cmd.got
		}
		c.advance(cmd)
		return nil
	}
	i := 0
	for i < len(cmd.r2ts) && cmd.r2ts[i].ttt != b.TTT() {
		i++
	}
	if i == len(cmd.r2ts) {
		return c.failData(cmd, fmt.Sprintf("Data-Out itt %#x with unknown ttt %#x", b.ITT(), b.TTT()))
	}
	seq := &cmd.r2ts[i]
	if b.DataSN() != seq.dataSN || off != seq.next || off+n > seq.offset+seq.length {
		return c.failData(cmd, fmt.Sprintf("Data-Out itt %#x ttt %#x datasn %d (want %d) offset %d (want %d) len %d",
			b.ITT(), b.TTT(), b.DataSN(), seq.dataSN, off, seq.next, n))
	}
	copy((*cmd.out)[off:], req.Data)
	cmd.got += n
	seq.next += n
	seq.dataSN++
	if seq.next == seq.offset+seq.length {
		cmd.r2ts = append(cmd.r2ts[:i], cmd.r2ts[i+1:]...)
	} else if b.Final() {
		return c.failData(cmd, fmt.Sprintf("Data-Out sequence itt %#x ttt %#x ended at %d of %d",
			b.ITT(), b.TTT(), seq.next, seq.offset+seq.length))
	}
	c.advance(cmd)
	return nil
}

// senseDataPhase is ABORTED COMMAND, DATA PHASE ERROR (SPC-4 annex D).
var senseDataPhase = []byte{0x70, 0, 0x0b, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x4b, 0, 0, 0, 0, 0}

func (c *conn) failData(cmd *command, why string) error {
	c.log.Warn("Data-Out sequence error; command fails", "err", why)
	cmd.failSense = senseDataPhase
	cmd.r2ts = cmd.r2ts[:0]
	cmd.unsolDone = true
	c.advance(cmd)
	return nil
}

// submit hands a complete command to a worker, starting one if all are
// busy and the queue depth allows.
func (c *conn) submit(cmd *command) {
	cmd.submitted = true
	if !cmd.state.CompareAndSwap(taskRecv, taskQueued) {
		return // aborted: dropped without a response
	}
	if cmd.out != nil {
		cmd.task.DataOut = (*cmd.out)[:cmd.got]
	}
	if cmd.in != nil {
		cmd.task.DataIn = (*cmd.in)[:0]
	}
	c.inflight.Add(1)
	if c.busy.Add(1) > 1 {
		c.solo = 0
	} else if c.solo < soloRun {
		c.solo++
	}
	if c.solo >= soloRun && c.inlineCmd == nil && c.rd.Buffered() == 0 {
		// The initiator runs one command at a time (the last soloRun
		// found nothing else executing) and nothing else has arrived:
		// the reader runs it once the PDU is handled (readLoop),
		// sparing a worker wake-up per command. At higher queue depth
		// that would hold up reading the next commands.
		c.inlineCmd = cmd
		return
	}
	c.dispatch(cmd)
}

// dispatch hands a submitted command to a worker.
func (c *conn) dispatch(cmd *command) {
	// Claim an idle worker atomically: a worker that took a job but has
	// not yet marked itself busy must not be counted twice, or a command
	// would queue behind a long one (a SANITIZE, a big read) while the
	// queue depth still allowed another worker.
	for {
		n := c.idle.Load()
		if n == 0 {
			if c.workers < int(c.depth) {
				c.workers++
				go c.worker(cmd)
				return
			}
			break
		}
		if c.idle.CompareAndSwap(n, n-1) {
			break
		}
	}
	c.work <- cmd
}

// worker runs first, then whatever submit hands it; submit decrements
// idle when it claims a waiting worker.
func (c *conn) worker(first *command) {
	c.execute(first)
	for {
		c.idle.Add(1)
		cmd, ok := <-c.work
		if !ok {
			return
		}
		c.execute(cmd)
	}
}

func (c *conn) execute(cmd *command) {
	defer c.inflight.Done()
	if !cmd.state.CompareAndSwap(taskQueued, taskExec) {
		// Aborted while queued for a worker: never executed; a TASK
		// ABORTED status it owes went out from abortWhere.
		c.busy.Add(-1)
		return
	}
	if cmd.failSense != nil {
		cmd.result = tscsi.Result{Status: scsi.StatusCheckCondition, Sense: cmd.failSense}
	} else if c.exec == nil {
		cmd.result = tscsi.Result{Status: scsi.StatusCheckCondition, Sense: senseInvalidIU}
	} else {
		cmd.result = c.safeExecute(&cmd.task)
	}
	// Done before its response is queued, so that the response opens
	// the window again.
	c.busy.Add(-1)
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("scsi command done", "itt", cmd.itt, "status", cmd.result.Status, "sense", hex.EncodeToString(cmd.result.Sense))
	}
	if !cmd.state.CompareAndSwap(taskExec, taskResp) {
		// Aborted while executing: the response is suppressed (RFC 7143
		// section 4.2.3.4), or replaced by TASK ABORTED status, and the
		// aborter, waiting for the medium to be quiet, is woken.
		c.finishAborted(cmd)
		return
	}
	c.respond(cmd)
}

// safeExecute turns a panic in the SCSI layer into a TARGET FAILURE
// answer so one bad command does not take the daemon down.
func (c *conn) safeExecute(t *tscsi.Task) (res tscsi.Result) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("scsi execute panic", "panic", r, "cdb", fmt.Sprintf("%x", t.CDB))
			res = tscsi.Result{Status: scsi.StatusCheckCondition,
				Sense: []byte{0x70, 0, 0x04, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x44, 0, 0, 0, 0, 0}}
		}
	}()
	return c.exec.Execute(t)
}

func (c *conn) writeR2T(p *pdu.PDU, cmd *command, seq r2tSeq, statSN uint32) error {
	p.Reset()
	b := &p.BHS
	b.SetOpcode(pdu.OpR2T)
	b.SetFlags(pdu.FlagFinal)
	b.SetLUN(cmd.lun)
	b.SetITT(cmd.itt)
	b.SetTTT(seq.ttt)
	c.fillSN(b, statSN)
	b.SetDataSN(seq.r2tSN)
	b.SetBufferOffset(seq.offset)
	b.SetDesiredDataTransferLength(seq.length)
	return c.wr.Write(p)
}

// writeAborted sends the SCSI Response of a task that another I_T nexus
// aborted: TASK ABORTED status (SAM-5 5.6), no data, no sense. ExpDataSN
// counts the R2Ts sent for it (RFC 7143 section 11.4.8).
func (c *conn) writeAborted(p *pdu.PDU, cmd *command, statSN uint32) error {
	p.Reset()
	b := &p.BHS
	b.SetOpcode(pdu.OpSCSIResp)
	b.SetFlags(pdu.FlagFinal)
	b.SetResponse(pdu.RespCommandCompleted)
	b.SetStatus(scsi.StatusTaskAborted)
	b.SetITT(cmd.itt)
	c.fillSN(b, statSN)
	b.SetDataSN(cmd.r2tsSent)
	return c.wr.Write(p)
}

// writeDone sends a command's Data-In and status (RFC 7143 sections
// 11.4 and 11.7) and returns the next StatSN.
func (c *conn) writeDone(p *pdu.PDU, senseBuf []byte, cmd *command, statSN uint32) (uint32, error) {
	res := &cmd.result
	status := res.Status
	good := status == scsi.StatusGood || status == scsi.StatusConditionMet
	noSense := len(res.Sense) == 0

	var data []byte
	var flags byte
	var count uint32
	var bidiFlags byte
	var bidiCount uint32
	bidi := cmd.read && cmd.write
	switch {
	case bidi:
		data = res.DataIn
		bidiFlags, bidiCount = bidiResidual(cmd.bidiLen, uint32(len(data)))
		if uint32(len(data)) > cmd.bidiLen {
			data = data[:cmd.bidiLen]
		}
		flags, count = residual(cmd.edtl, res.DataOutWanted)
	case cmd.read:
		data = res.DataIn
		flags, count = residual(cmd.edtl, uint32(len(data)))
		if uint32(len(data)) > cmd.edtl {
			data = data[:cmd.edtl]
		}
	case cmd.write:
		flags, count = residual(cmd.edtl, res.DataOutWanted)
	default:
		// Neither R nor W: any data the device produced has nowhere to go.
		if cmd.edtl > 0 || len(res.DataIn) > 0 {
			flags, count = residual(cmd.edtl, uint32(len(res.DataIn)))
		}
	}
	if cmd.failSense != nil {
		data = nil
	}

	statusInData := good && noSense && !bidi && len(data) > 0
	total := uint32(len(data))
	b := &p.BHS
	for off := uint32(0); off < total; {
		n, final := dataInSegment(off, total, c.params.MaxRecvDataSegmentLength, c.params.MaxBurstLength)
		last := off+n == total
		p.Reset()
		b.SetOpcode(pdu.OpDataIn)
		f := byte(0)
		if final {
			f |= pdu.FlagFinal
		}
		b.SetLUN(cmd.lun)
		b.SetITT(cmd.itt)
		b.SetTTT(pdu.ReservedTag)
		if last && statusInData {
			f |= pdu.FlagStatus | flags
			b.SetStatus(status)
			b.SetResidualCount(count)
			c.fillSN(b, statSN)
			statSN++
		} else {
			c.fillSN(b, 0)
		}
		b.SetFlags(f)
		b.SetDataSN(cmd.sn)
		cmd.sn++
		b.SetBufferOffset(off)
		p.Data = data[off : off+n]
		if err := c.wr.Write(p); err != nil {
			return statSN, err
		}
		off += n
	}
	if statusInData {
		p.Data = nil
		return statSN, nil
	}
	p.Reset()
	b.SetOpcode(pdu.OpSCSIResp)
	b.SetFlags(pdu.FlagFinal | flags | bidiFlags)
	b.SetResponse(pdu.RespCommandCompleted)
	b.SetStatus(status)
	b.SetITT(cmd.itt)
	c.fillSN(b, statSN)
	statSN++
	b.SetDataSN(cmd.sn) // ExpDataSN
	b.SetBidiReadResidualCount(bidiCount)
	b.SetResidualCount(count)
	if !noSense {
		// Data segment: SenseLength, then the sense data (section 11.4.7).
		n := min(len(res.Sense), len(senseBuf)-2)
		binary.BigEndian.PutUint16(senseBuf, uint16(n))
		copy(senseBuf[2:], res.Sense[:n])
		p.Data = senseBuf[:2+n]
	}
	err := c.wr.Write(p)
	p.Data = nil
	return statSN, err
}
