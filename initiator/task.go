package initiator

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/initiator/negotiate"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// TaskAttr is the SAM task attribute of a command.
type TaskAttr byte

// Task attributes (SAM-5 section 8.6). The zero value is SIMPLE.
const (
	AttrSimple TaskAttr = iota
	AttrOrdered
	AttrHeadOfQueue
	AttrACA
)

func (a TaskAttr) wire() byte {
	switch a {
	case AttrOrdered:
		return 2
	case AttrHeadOfQueue:
		return 3
	case AttrACA:
		return 4
	}
	return 1
}

// Command is one SCSI command.
type Command struct {
	LUN uint64
	// CDB is the command descriptor block, at most 16 bytes.
	CDB []byte
	// DataOut is the write data; its length is the expected transfer.
	DataOut []byte
	// ReadLen is the expected Data-In length. When ReadBuf is set and
	// ReadLen is 0, ReadLen is len(ReadBuf).
	ReadLen uint32
	// ReadBuf, when set, receives the read data (no allocation);
	// otherwise a buffer of ReadLen bytes is allocated.
	ReadBuf []byte
	Attr    TaskAttr
}

// Response is a command's outcome.
type Response struct {
	Status byte
	// Sense is the sense data of CHECK CONDITION.
	Sense []byte
	// Data is the read data received: ReadBuf[:n] or a new buffer.
	Data []byte
	// Residual is the residual count; Overflow and Underflow say which
	// way (RFC 7143 section 11.4.5).
	Residual            uint32
	Overflow, Underflow bool
}

// Err converts a non-GOOD status into *SenseError or *StatusError.
func (r *Response) Err() error {
	switch r.Status {
	case scsi.StatusGood, scsi.StatusConditionMet:
		return nil
	case scsi.StatusCheckCondition:
		return NewSenseError(r.Sense)
	}
	return &StatusError{Status: r.Status}
}

type taskState int

const (
	stateFree taskState = iota
	stateActive
	stateCompleted
	stateAbandoned // the caller gave up; the slot waits for the target
)

type r2t struct {
	ttt          uint32
	offset, size uint32
}

// task is one slot of the command window, reused command after command
// so the hot path does not allocate.
type task struct {
	slot uint16
	r2t  chan r2t
	done chan struct{}
	out  pdu.PDU // used only by the goroutine running the command

	// mu guards everything below: the caller sets the task up and the
	// reader fills it in; the caller's buffer is written only under mu,
	// so an abandoned command never touches it again.
	mu        sync.Mutex
	gen       uint16
	itt       uint32
	state     taskState
	lun       uint64
	cmdSN     uint32
	read      bool
	write     bool
	edtl      uint32
	buf       []byte
	received  uint32
	expDataSN uint32
	expR2TSN  uint32
	response  byte
	status    byte
	flags     byte
	residual  uint32
	sense     []byte
	err       error
}

func encodeLUN(lun uint64) uint64 { return scsi.EncodeLUN(lun) }

func decodeLUN(field uint64) (uint64, bool) { return scsi.DecodeLUN(field) }

// Do runs cmd and waits for its response. Errors are transport or
// protocol failures; the SCSI status is in the Response (see
// Response.Err).
func (s *Session) Do(ctx context.Context, cmd *Command) (*Response, error) {
	resp := new(Response)
	if err := s.DoInto(ctx, cmd, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// DoInto is Do filling a caller-owned Response: with cmd.ReadBuf set and
// no sense data it does not allocate.
func (s *Session) DoInto(ctx context.Context, cmd *Command, resp *Response) error {
	if len(cmd.CDB) == 0 || len(cmd.CDB) > 16 {
		return errors.New("initiator: CDB must be 1..16 bytes, got " + strconv.Itoa(len(cmd.CDB)))
	}
	req := request{lun: cmd.LUN, readLen: cmd.ReadLen, buf: cmd.ReadBuf, dataOut: cmd.DataOut, attr: cmd.Attr}
	copy(req.cdb[:], cmd.CDB)
	return s.exec(ctx, req, resp)
}

// request is a Command by value, so a CDB built on the caller's stack
// stays there.
type request struct {
	lun     uint64
	cdb     [16]byte
	readLen uint32
	buf     []byte
	dataOut []byte
	attr    TaskAttr
}

func (s *Session) exec(ctx context.Context, req request, resp *Response) error {
	readLen, buf := req.readLen, req.buf
	if buf != nil {
		if readLen == 0 {
			readLen = uint32(len(buf))
		} else if uint32(len(buf)) < readLen {
			return errors.New("initiator: ReadBuf is shorter than ReadLen")
		}
		buf = buf[:readLen]
	}
	if readLen > 0 && len(req.dataOut) > 0 {
		return errors.New("initiator: bidirectional commands are not supported")
	}
	if s.kind != negotiate.Normal {
		return errors.New("initiator: SCSI commands need a normal session")
	}
	var t *task
	select {
	case <-s.dead:
		return s.deadErr
	default:
	}
	select {
	case t = <-s.free:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.dead:
		return s.deadErr
	}
	if readLen > 0 && buf == nil {
		buf = make([]byte, readLen)
	}
	for len(t.r2t) > 0 {
		<-t.r2t
	}
	select {
	case <-t.done:
	default:
	}
	edtl := readLen
	if len(req.dataOut) > 0 {
		edtl = uint32(len(req.dataOut))
	}
	lun := encodeLUN(req.lun)

	t.mu.Lock()
	t.gen++
	t.itt = uint32(t.gen&0x7fff)<<16 | uint32(t.slot)
	t.state = stateActive
	t.lun = lun
	t.read, t.write = readLen > 0, len(req.dataOut) > 0
	t.edtl = edtl
	t.buf = buf
	t.received, t.expDataSN, t.expR2TSN = 0, 0, 0
	t.response, t.status, t.flags, t.residual = 0, 0, 0, 0
	t.sense = t.sense[:0]
	t.err = nil
	itt := t.itt
	t.mu.Unlock()

	// Unsolicited data: immediate data in the command PDU, then Data-Out
	// PDUs up to FirstBurstLength when InitialR2T=No (RFC 7143 section
	// 4.2.5.2).
	p := &s.params
	data := req.dataOut
	var immLen, unsolEnd uint32
	if len(data) > 0 {
		first := min(p.FirstBurstLength, uint32(len(data)))
		if p.ImmediateData {
			immLen = min(first, p.TargetMaxRecvDataSegmentLength)
		}
		unsolEnd = immLen
		if !p.InitialR2T {
			unsolEnd = first
		}
	}
	o := &t.out
	o.Reset()
	o.BHS.SetOpcode(pdu.OpSCSICmd)
	flags := req.attr.wire()
	if unsolEnd == immLen {
		flags |= pdu.FlagFinal
	}
	if t.read {
		flags |= pdu.FlagRead
	}
	if t.write {
		flags |= pdu.FlagWrite
	}
	o.BHS.SetFlags(flags)
	o.BHS.SetLUN(lun)
	o.BHS.SetITT(itt)
	o.BHS.SetExpectedDataTransferLength(edtl)
	copy(o.BHS.CDB(), req.cdb[:])
	o.Data = data[:immLen]

	if err := s.sendCommand(ctx, t); err != nil {
		s.release(t)
		return err
	}
	if unsolEnd > immLen {
		if err := s.sendDataOut(t, data, pdu.ReservedTag, immLen, unsolEnd-immLen); err != nil {
			return s.wait(ctx, t, buf, resp, data)
		}
	}
	return s.wait(ctx, t, buf, resp, data)
}

// sendCommand writes the command PDU, taking a CmdSN inside the window.
func (s *Session) sendCommand(ctx context.Context, t *task) error {
	for {
		s.wmu.Lock()
		s.snMu.Lock()
		if int32(s.cmdSN-s.maxCmdSN) <= 0 {
			sn := s.cmdSN
			s.cmdSN++
			s.snMu.Unlock()
			t.out.BHS.SetCmdSN(sn)
			t.mu.Lock()
			t.cmdSN = sn
			t.mu.Unlock()
			err := s.writeLocked(&t.out)
			s.wmu.Unlock()
			return err
		}
		if err := s.awaitWindow(ctx); err != nil {
			return err
		}
	}
}

// sendDataOut sends data[off:off+size] as one Data-Out sequence in PDUs
// no larger than the target's MaxRecvDataSegmentLength.
func (s *Session) sendDataOut(t *task, data []byte, ttt, off, size uint32) error {
	mrdsl := s.params.TargetMaxRecvDataSegmentLength
	o := &t.out
	var sn uint32
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for end := off + size; off < end; sn++ {
		n := min(end-off, mrdsl)
		o.Reset()
		o.BHS.SetOpcode(pdu.OpDataOut)
		if off+n == end {
			o.BHS.SetFlags(pdu.FlagFinal)
		}
		o.BHS.SetLUN(t.lun)
		o.BHS.SetITT(t.itt)
		o.BHS.SetTTT(ttt)
		o.BHS.SetDataSN(sn)
		o.BHS.SetBufferOffset(off)
		o.Data = data[off : off+n]
		if err := s.writeLocked(o); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func (s *Session) wait(ctx context.Context, t *task, buf []byte, resp *Response, data []byte) error {
	for {
		select {
		case r := <-t.r2t:
			// t.itt and t.lun are stable while the task is ours.
			_ = s.sendDataOut(t, data, r.ttt, r.offset, r.size)
		case <-t.done:
			return s.finish(t, buf, resp)
		case <-ctx.Done():
			if s.abandon(t) {
				return ctx.Err()
			}
		case <-s.dead:
			if s.abandon(t) {
				return s.deadErr
			}
		}
	}
}

// abandon gives the task up unless it has completed; the slot stays
// taken until the target is done with it (an ABORT TASK asks it to be).
func (s *Session) abandon(t *task) bool {
	t.mu.Lock()
	if t.state == stateCompleted {
		t.mu.Unlock()
		return false
	}
	t.state = stateAbandoned
	itt, lun, sn := t.itt, t.lun, t.cmdSN
	t.mu.Unlock()
	select {
	case <-s.dead:
		return true
	default:
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := s.roundTrip(ctx, 0, true, func(p *pdu.PDU) {
			p.BHS.SetOpcode(pdu.OpTaskMgmtReq)
			p.BHS.SetFlags(pdu.FlagFinal | pdu.TMFAbortTask)
			p.BHS.SetLUN(lun)
			p.BHS.SetReferencedTaskTag(itt)
			p.BHS.SetRefCmdSN(sn)
		})
		if err != nil {
			return
		}
		s.log.Debug("aborted task", "itt", itt, "response", r.bhs.Response())
		// After ABORT TASK completes the target sends nothing more for the
		// task (RFC 7143 section 11.5.1), so the slot is free again.
		t.mu.Lock()
		if t.itt == itt && t.state == stateAbandoned {
			t.state = stateFree
			t.buf = nil
			t.mu.Unlock()
			s.free <- t
			return
		}
		t.mu.Unlock()
	}()
	return true
}

func (s *Session) finish(t *task, buf []byte, resp *Response) error {
	// The reader completed the task before signalling done, so the
	// fields are stable; mu is not needed but keeps the rule simple.
	t.mu.Lock()
	err, response := t.err, t.response
	*resp = Response{Status: t.status, Residual: t.residual,
		Overflow: t.flags&pdu.FlagOverflow != 0, Underflow: t.flags&pdu.FlagUnderflow != 0}
	if len(t.sense) > 0 {
		resp.Sense = append([]byte(nil), t.sense...)
	}
	if buf != nil {
		resp.Data = buf[:t.received]
	}
	t.mu.Unlock()
	s.release(t)
	if err != nil {
		return err
	}
	if response != pdu.RespCommandCompleted {
		return &ServiceResponseError{Response: response}
	}
	return nil
}

func (s *Session) release(t *task) {
	t.mu.Lock()
	t.state = stateFree
	t.buf = nil
	t.mu.Unlock()
	s.free <- t
}

func (s *Session) taskFor(itt uint32) *task {
	if itt&ctrlTagBit != 0 {
		return nil
	}
	i := int(itt & 0xffff)
	if i >= len(s.slots) {
		return nil
	}
	return s.slots[i]
}

// lockTask returns the task for itt locked, or nil when the tag is stale
// (the command was abandoned, or the slot moved on).
func (s *Session) lockTask(itt uint32) (*task, error) {
	t := s.taskFor(itt)
	if t == nil {
		return nil, &ProtocolError{Msg: "PDU for unknown task tag " + strconv.FormatUint(uint64(itt), 16)}
	}
	t.mu.Lock()
	if t.itt != itt || t.state != stateActive {
		t.mu.Unlock()
		return nil, nil
	}
	return t, nil
}

// completeLocked marks t done and signals its caller; it unlocks t.mu.
func (s *Session) completeLocked(t *task) {
	if t.state == stateAbandoned {
		t.state = stateFree
		t.buf = nil
		t.mu.Unlock()
		s.free <- t
		return
	}
	t.state = stateCompleted
	t.mu.Unlock()
	t.done <- struct{}{}
}

func (s *Session) dataIn(p *pdu.PDU) error {
	b := &p.BHS
	t, err := s.lockTask(b.ITT())
	if t == nil {
		return err
	}
	if !t.read {
		t.mu.Unlock()
		return &ProtocolError{Msg: "Data-In for a command that reads nothing"}
	}
	if sn := b.DataSN(); sn != t.expDataSN {
		t.mu.Unlock()
		return &ProtocolError{Msg: "Data-In DataSN " + strconv.FormatUint(uint64(sn), 10) + ", want " + strconv.FormatUint(uint64(t.expDataSN), 10)}
	}
	off, n := b.BufferOffset(), uint32(len(p.Data))
	if off != t.received || uint64(off)+uint64(n) > uint64(len(t.buf)) {
		t.mu.Unlock()
		return &ProtocolError{Msg: "Data-In at offset " + strconv.FormatUint(uint64(off), 10) + " out of order or past the expected length"}
	}
	copy(t.buf[off:], p.Data)
	t.received += n
	t.expDataSN++
	if b.Flags()&pdu.FlagStatus == 0 {
		t.mu.Unlock()
		return nil
	}
	if !b.Final() {
		t.mu.Unlock()
		return &ProtocolError{Msg: "Data-In with S but not F"}
	}
	t.response = pdu.RespCommandCompleted
	t.status = b.Status()
	t.flags = b.Flags()
	t.residual = b.ResidualCount()
	s.completeLocked(t)
	return nil
}

func (s *Session) scsiResponse(p *pdu.PDU) error {
	b := &p.BHS
	t, err := s.lockTask(b.ITT())
	if t == nil {
		return err
	}
	t.response = b.Response()
	t.status = b.Status()
	t.flags = b.Flags()
	t.residual = b.ResidualCount()
	if t.response == pdu.RespCommandCompleted && t.read && b.DataSN() != t.expDataSN {
		// ExpDataSN counts the Data-In PDUs sent; at ERL 0 a gap is fatal
		// for the command (RFC 7143 section 11.4.8).
		t.err = &ProtocolError{Msg: "SCSI Response ExpDataSN does not match the Data-In received"}
	}
	if len(p.Data) >= 2 {
		n := int(p.Data[0])<<8 | int(p.Data[1])
		if n > len(p.Data)-2 {
			n = len(p.Data) - 2
		}
		t.sense = append(t.sense[:0], p.Data[2:2+n]...)
	}
	s.completeLocked(t)
	return nil
}

func (s *Session) r2t(p *pdu.PDU) error {
	b := &p.BHS
	t, err := s.lockTask(b.ITT())
	if t == nil {
		return err
	}
	off, size := b.BufferOffset(), b.DesiredDataTransferLength()
	switch {
	case !t.write:
		err = &ProtocolError{Msg: "R2T for a command that writes nothing"}
	case b.DataSN() != t.expR2TSN:
		err = &ProtocolError{Msg: "R2TSN out of order"}
	case size == 0 || uint64(off)+uint64(size) > uint64(t.edtl):
		err = &ProtocolError{Msg: "R2T outside the expected data transfer length"}
	case size > s.params.MaxBurstLength:
		err = &ProtocolError{Msg: "R2T above MaxBurstLength"}
	case b.TTT() == pdu.ReservedTag:
		err = &ProtocolError{Msg: "R2T with the reserved target transfer tag"}
	}
	if err == nil {
		t.expR2TSN++
		select {
		case t.r2t <- r2t{ttt: b.TTT(), offset: off, size: size}:
		default:
			err = &ProtocolError{Msg: "more R2Ts outstanding than MaxOutstandingR2T"}
		}
	}
	t.mu.Unlock()
	return err
}

// failAll ends every outstanding command after the session died.
func (s *Session) failAll() {
	for _, t := range s.slots {
		t.mu.Lock()
		if t.state == stateActive {
			t.err = s.deadErr
			t.state = stateCompleted
			t.mu.Unlock()
			select {
			case t.done <- struct{}{}:
			default:
			}
			continue
		}
		t.mu.Unlock()
	}
	s.ctrlMu.Lock()
	for _, ch := range s.ctrl {
		select {
		case ch <- ctrlResp{err: s.deadErr}:
		default:
		}
	}
	s.ctrlMu.Unlock()
}
