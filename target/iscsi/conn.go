package iscsi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/pdu"
)

// loginSegmentLimit bounds login PDUs; RFC 7143 section 13.12 makes 8192
// the default during login, tandem tolerates more.
const loginSegmentLimit = 64 << 10

// errors that end the reader loop
var (
	errLogout    = errors.New("logout")
	errShutdown  = errors.New("server shutting down")
	errColdReset = errors.New("target cold reset")
)

// outKind says what a writer queue entry carries.
type outKind uint8

const (
	outPDU     outKind = iota // a ready PDU
	outR2T                    // an R2T for cmd
	outDone                   // a completed command: Data-In and status
	outAborted                // TASK ABORTED status for cmd (aborted by another nexus)
	outStop                   // flush and stop the writer
)

type outMsg struct {
	kind outKind
	p    *pdu.PDU
	// stat: the PDU carries a new StatSN (responses do, pings and R2Ts not).
	stat bool
	// closeAfter: stop writing and close after this PDU (logout).
	closeAfter bool
	cmd        *command
	r2t        r2tSeq
}

// conn is one TCP connection; with MaxConnections=1 it is also the
// session.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	log    *slog.Logger

	rd *pdu.Reader
	wr *pdu.Writer
	bw *bufio.Writer

	sess   login.Result
	params login.Params
	exec   Executor
	nexus  scsi.Nexus
	depth  uint32

	// CmdSN state: owned by the reader; expCmdSN is also read by the
	// writer to fill ExpCmdSN/MaxCmdSN.
	expCmdSN atomic.Uint32
	pending  map[uint32]pendingCmd

	// task table by ITT (for Data-Out and task management). mu also
	// guards the taskDone transition of aborted tasks, which aborted
	// signals.
	mu      sync.Mutex
	tasks   map[uint32]*command
	aborted *sync.Cond

	nextTTT uint32 // reader-owned
	textTTT uint32 // pending text continuation
	textOut []byte
	textIn  []byte

	out chan outMsg
	// wmu owns the write side (bw, wr, statSN, maxSent, scratch,
	// sense): the writer goroutine takes it per queued message, and a
	// worker whose response finds the queue empty writes it itself
	// instead of waking the writer (one goroutine hand-off less per
	// command). queued counts messages from send until written, so a
	// direct write never overtakes a queued one.
	wmu     sync.Mutex
	queued  atomic.Int32
	statSN  uint32
	scratch pdu.PDU
	sense   [2 + 260]byte

	// inlineCmd is a command the reader executes itself after the
	// current PDU (submit). inline says whether the reader is executing
	// one; if that takes longer than inlineLimit, takeover starts a new
	// reader, so that task management and other commands are read
	// while a disk hangs, and the old one ends after its command.
	inlineCmd  *command // reader-owned
	solo       int      // reader-owned: consecutive submits that found nothing executing
	inline     atomic.Int32
	takeover   *time.Timer
	readerDone chan error

	work     chan *command
	workers  int // reader-owned
	idle     atomic.Int32
	inflight sync.WaitGroup // submitted commands until their response is queued
	// busy counts the submitted commands that have not finished
	// executing; it narrows the advertised CmdSN window, and maxSent
	// (under wmu) is the MaxCmdSN sent last.
	busy    atomic.Int32
	maxSent uint32

	lastRecv   atomic.Int64 // unix nanos of the last PDU received
	pingTTT    atomic.Uint32
	pingSentAt atomic.Int64

	done      chan struct{} // closed when the connection is torn down
	doneOnce  sync.Once
	finished  chan struct{} // closed when serve returns
	stopping  atomic.Bool   // graceful shutdown requested
	writerErr chan struct{}
}

// pendingCmd is a PDU waiting for its CmdSN turn. With both fields nil
// it is a CmdSN that an ABORT TASK consumed before its command arrived
// (RFC 7143 section 11.5.1).
type pendingCmd struct {
	cmd *command // SCSI command, or nil
	p   *pdu.PDU // other PDU (copied)
}

func newConn(s *Server, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	c := &conn{
		srv:      s,
		nc:       nc,
		remote:   remote,
		log:      s.log.With("remote", remote),
		rd:       pdu.NewReader(nc),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
		tasks:    map[uint32]*command{},
		pending:  map[uint32]pendingCmd{},
	}
	c.aborted = sync.NewCond(&c.mu)
	return c
}

// kill drops the connection at once; in-flight responses are discarded.
func (c *conn) kill() {
	c.doneOnce.Do(func() { close(c.done) })
	_ = c.nc.Close()
}

// shutdown asks the reader to stop taking PDUs; serve then drains.
func (c *conn) shutdown() {
	c.stopping.Store(true)
	_ = c.nc.SetReadDeadline(time.Now())
}

func (c *conn) waitDone(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.finished:
	case <-t.C:
	}
}

// serve runs the connection to its end. A panic caused by hostile input
// is logged and only closes this connection.
func (c *conn) serve() {
	defer close(c.finished)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("connection panic; closing it", "panic", r, "stack", string(debug.Stack()))
			c.kill()
		}
	}()
	defer func() { _ = c.nc.Close() }()
	if !c.login() {
		return
	}
	exec, err := c.srv.register(c)
	if err != nil {
		c.log.Warn("session not registered; closing", "err", err)
		return
	}
	defer c.srv.unregister(c)
	c.exec = exec
	c.log.Info("session in full feature phase", "type", c.sess.Type)
	c.fullFeature()
	if c.sess.Type == login.Normal {
		// Logout, connection loss, reinstatement and cold reset all end
		// the I_T nexus (SAM-5 6.3.4); every task has finished by now.
		c.taskManager().NexusLoss(&c.nexus)
	}
}

// login runs the login phase (RFC 7143 section 6) synchronously and
// reports whether full feature phase was reached.
func (c *conn) login() bool {
	_ = c.nc.SetDeadline(time.Now().Add(c.srv.cfg.LoginTimeout))
	c.rd.MaxDataSegmentLength = loginSegmentLimit
	w := pdu.NewWriter(c.nc)
	neg := c.srv.cfg.NewLogin(c.srv.loginConfig(), c.remote)
	var req, resp pdu.PDU
	for first := true; ; first = false {
		if err := c.rd.Read(&req); err != nil {
			if !errors.Is(err, io.EOF) {
				c.log.Info("login read failed; closing", "err", err)
			}
			return false
		}
		if req.BHS.Opcode() != pdu.OpLoginReq {
			c.log.Info("non-login PDU during login; closing", "opcode", req.BHS.Opcode())
			return false
		}
		if first && req.BHS.TSIH() == 0 && c.srv.sessionCount() >= c.srv.cfg.MaxSessions {
			loginReject(&req, &resp, pdu.LoginOutOfResources)
			_ = w.Write(&resp)
			c.log.Warn("session limit reached; login refused", "max_sessions", c.srv.cfg.MaxSessions)
			return false
		}
		resp.Reset()
		outcome := neg.Step(&req, &resp)
		if err := w.Write(&resp); err != nil {
			c.log.Info("login write failed; closing", "err", err)
			return false
		}
		switch outcome {
		case login.Continue:
			continue
		case login.Done:
			c.sess = neg.Result()
			c.params = c.sess.Params
			_ = c.nc.SetDeadline(time.Time{})
			c.log = c.log.With("initiator", c.sess.InitiatorName, "target", c.sess.TargetName,
				"isid", fmt.Sprintf("%012x", c.sess.ISID[:]), "tsih", c.sess.TSIH, "cid", c.sess.CID)
			return true
		default:
			c.log.Info("login failed", "status", fmt.Sprintf("%#04x", uint16(resp.BHS[36])<<8|uint16(resp.BHS[37])))
			return false
		}
	}
}

// loginReject fills resp as a final login response with the given status.
func loginReject(req, resp *pdu.PDU, status uint16) {
	resp.Reset()
	resp.BHS.SetOpcode(pdu.OpLoginResp)
	resp.BHS.SetLoginStages(false, false, req.BHS.CSG(), 0)
	resp.BHS.SetVersions(0, 0)
	resp.BHS.SetISID(req.BHS.ISID())
	resp.BHS.SetTSIH(req.BHS.TSIH())
	resp.BHS.SetITT(req.BHS.ITT())
	resp.BHS.SetStatSN(req.BHS.ExpStatSN())
	resp.BHS.SetExpCmdSN(req.BHS.CmdSN())
	resp.BHS.SetMaxCmdSN(req.BHS.CmdSN())
	resp.BHS.SetLoginStatus(byte(status>>8), byte(status))
}

// fullFeature runs the reader loop with the writer, workers and pinger.
func (c *conn) fullFeature() {
	p := c.params
	c.depth = c.srv.cfg.QueueDepth
	c.expCmdSN.Store(c.sess.ExpCmdSN)
	c.maxSent = c.sess.ExpCmdSN - 1
	c.nexus = scsi.Nexus{Initiator: c.sess.InitiatorName, ISID: c.sess.ISID,
		Target: c.sess.TargetName, TPGT: c.srv.cfg.PortalGroupTag}
	c.rd.HeaderDigest, c.rd.DataDigest = p.HeaderDigest, p.DataDigest
	c.rd.MaxDataSegmentLength = int(p.TargetMaxRecvDataSegmentLength)
	if c.rd.MaxDataSegmentLength == 0 {
		c.rd.MaxDataSegmentLength = 8192
	}
	c.bw = bufio.NewWriterSize(c.nc, 64<<10)
	c.wr = pdu.NewWriter(c.bw)
	c.wr.HeaderDigest, c.wr.DataDigest = p.HeaderDigest, p.DataDigest
	c.out = make(chan outMsg, int(c.depth)*2+16)
	c.work = make(chan *command, int(c.depth))
	c.writerErr = make(chan struct{})
	c.lastRecv.Store(time.Now().UnixNano())

	c.statSN = c.sess.StatSN
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer()
	}()
	pingerDone := make(chan struct{})
	if c.srv.cfg.NopInterval > 0 {
		go func() {
			defer close(pingerDone)
			c.pinger()
		}()
	} else {
		close(pingerDone)
	}

	c.readerDone = make(chan error, 2) // a taken-over reader may still panic
	c.takeover = time.AfterFunc(time.Hour, c.takeOver)
	c.takeover.Stop()
	defer c.takeover.Stop()
	go c.runReader()
	err := <-c.readerDone
	switch {
	case errors.Is(err, errLogout), errors.Is(err, errColdReset):
		// The logout response is queued with closeAfter; wait for it.
		c.inflight.Wait()
	case c.stopping.Load() && !c.isDone():
		c.log.Info("draining for shutdown")
		c.inflight.Wait()
		c.send(outMsg{kind: outStop})
	default:
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.log.Info("connection closed", "err", err)
		}
		c.kill()
	}
	select {
	case <-writerDone:
	case <-c.done:
	}
	c.kill()
	close(c.work)
	<-pingerDone
	c.inflight.Wait()
	<-writerDone
}

func (c *conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// send queues m for the writer; it returns false (and releases a
// command) when the connection is gone.
func (c *conn) send(m outMsg) bool {
	c.queued.Add(1)
	select {
	case c.out <- m:
		return true
	case <-c.done:
		c.queued.Add(-1)
		if m.kind == outDone && m.cmd != nil {
			c.release(m.cmd)
		}
		return false
	}
}

// Reader states while a command executes inline.
const (
	inlineIdle int32 = iota
	inlineRunning
	inlineTakenOver
)

// soloRun is how many consecutive commands must have run alone before
// the reader executes commands itself: a sign of queue depth 1.
const soloRun = 8

// inlineLimit is how long the reader may execute a command itself
// before another goroutine takes over reading: well above a disk's
// service time, well below any initiator's task management timeout.
const inlineLimit = 10 * time.Millisecond

// errHandedOver ends a reader whose role another goroutine took over.
var errHandedOver = errors.New("reader handed over")

// runReader runs the reader loop in its own goroutine and reports how it
// ended to fullFeature. A panic caused by hostile input closes only this
// connection.
func (c *conn) runReader() {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("connection panic; closing it", "panic", r, "stack", string(debug.Stack()))
			c.kill()
			c.readerDone <- fmt.Errorf("panic: %v", r)
		}
	}()
	err := c.readLoop()
	if errors.Is(err, errHandedOver) {
		return
	}
	c.readerDone <- err
}

// takeOver runs when an inline command outlasts inlineLimit: a new
// reader carries on while the old one finishes the command.
func (c *conn) takeOver() {
	if c.inline.CompareAndSwap(inlineRunning, inlineTakenOver) {
		takeovers.Add(1)
		go c.runReader()
	}
}

// takeovers counts reader take-overs in the process (tests check that
// the inline path was the one taken).
var takeovers atomic.Uint64

// runInline executes cmd on the reader; it reports whether the reader
// role was taken over meanwhile, in which case the caller must not touch
// reader state again. A command with more PDUs already waiting goes to
// a worker instead.
func (c *conn) runInline(cmd *command) (handedOver bool) {
	if c.rd.Buffered() > 0 {
		c.dispatch(cmd)
		return false
	}
	c.inline.Store(inlineRunning)
	c.takeover.Reset(inlineLimit)
	c.execute(cmd)
	c.takeover.Stop()
	return !c.inline.CompareAndSwap(inlineRunning, inlineIdle)
}

// readLoop decodes PDUs until an error, a logout or a shutdown.
func (c *conn) readLoop() error {
	req := new(pdu.PDU)
	for {
		err := c.rd.Read(req)
		if err != nil {
			if c.stopping.Load() {
				return errShutdown
			}
			if errors.Is(err, pdu.ErrDataDigest) {
				// The stream is still in sync: reject the PDU (RFC 7143
				// section 7.8) and go on.
				c.log.Warn("data digest error; PDU rejected", "opcode", req.BHS.Opcode())
				c.reject(req, pdu.RejectDataDigest)
				continue
			}
			if c.sess.Type == login.Normal {
				// The transport is gone: end the nexus's SPC-2
				// reservation now, not after its tasks drain, and
				// before any other connection handles a PDU it reads
				// from now on (nexusLosses). serve repeats the call
				// once the tasks have finished, for anything they
				// reserved meanwhile.
				c.srv.losses.apply(func() { c.taskManager().NexusLoss(&c.nexus) })
			}
			var tooBig *pdu.SegmentTooLargeError
			if errors.As(err, &tooBig) {
				return fmt.Errorf("protocol error: %w", err)
			}
			return err
		}
		c.lastRecv.Store(time.Now().UnixNano())
		c.srv.losses.wait()
		err = c.handle(req)
		if cmd := c.inlineCmd; cmd != nil {
			c.inlineCmd = nil
			if err != nil {
				c.dispatch(cmd)
			} else if c.runInline(cmd) {
				return errHandedOver
			}
		}
		if err != nil {
			return err
		}
	}
}

// handle dispatches one PDU of the full feature phase.
func (c *conn) handle(req *pdu.PDU) error {
	op := req.BHS.Opcode()
	if c.sess.Type == login.Discovery {
		switch op {
		case pdu.OpTextReq, pdu.OpLogoutReq, pdu.OpNOPOut:
		default:
			// A discovery session carries only Text, Logout and NOP
			// (RFC 7143 section 4.3); anything else is a protocol error.
			c.reject(req, pdu.RejectProtocolError)
			return nil
		}
	}
	switch op {
	case pdu.OpSCSICmd:
		return c.onSCSICommand(req)
	case pdu.OpDataOut:
		return c.onDataOut(req)
	case pdu.OpNOPOut:
		if req.BHS.TTT() != pdu.ReservedTag {
			// An answer to our ping (RFC 7143 section 11.18.2); it must
			// not advance CmdSN.
			if req.BHS.TTT() == c.pingTTT.Load() {
				c.pingSentAt.Store(0)
			}
			return nil
		}
		return c.ordered(req)
	case pdu.OpTextReq, pdu.OpLogoutReq, pdu.OpTaskMgmtReq:
		return c.ordered(req)
	case pdu.OpSNACKReq:
		// SNACK needs ERL 1 or more; at ERL 0 it is a protocol error.
		c.reject(req, pdu.RejectProtocolError)
		return nil
	default:
		c.reject(req, pdu.RejectCommandNotSupport)
		return nil
	}
}

// ordered passes a non-SCSI command through CmdSN ordering.
func (c *conn) ordered(req *pdu.PDU) error {
	if req.BHS.Immediate() {
		return c.execOther(req)
	}
	exp := c.expCmdSN.Load()
	switch classifyCmdSN(req.BHS.CmdSN(), exp, c.depth) {
	case cmdDeliver:
		c.expCmdSN.Store(exp + 1)
		if err := c.execOther(req); err != nil {
			return err
		}
		return c.drainPending()
	case cmdQueue:
		cp := &pdu.PDU{BHS: req.BHS, AHS: append([]byte(nil), req.AHS...), Data: append([]byte(nil), req.Data...)}
		c.pending[req.BHS.CmdSN()] = pendingCmd{p: cp}
		return nil
	}
	c.log.Debug("PDU outside the CmdSN window dropped", "cmdsn", req.BHS.CmdSN(), "exp_cmdsn", exp)
	return nil
}

// drainPending delivers queued commands whose turn has come.
func (c *conn) drainPending() error {
	for len(c.pending) > 0 {
		exp := c.expCmdSN.Load()
		pc, ok := c.pending[exp]
		if !ok {
			return nil
		}
		delete(c.pending, exp)
		c.expCmdSN.Store(exp + 1)
		var err error
		switch {
		case pc.cmd != nil:
			err = c.deliver(pc.cmd)
		case pc.p != nil:
			err = c.execOther(pc.p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) execOther(req *pdu.PDU) error {
	switch req.BHS.Opcode() {
	case pdu.OpNOPOut:
		c.onNOPOut(req)
	case pdu.OpTextReq:
		c.onText(req)
	case pdu.OpLogoutReq:
		return c.onLogout(req)
	case pdu.OpTaskMgmtReq:
		return c.onTMF(req)
	}
	return nil
}

// fillSN sets StatSN, ExpCmdSN and MaxCmdSN of an outgoing PDU.
func (c *conn) fillSN(b *pdu.BHS, statSN uint32) {
	exp := c.expCmdSN.Load()
	c.maxSent = advertisedMaxCmdSN(exp, c.depth, uint32(max(c.busy.Load(), 0)), c.maxSent)
	b.SetStatSN(statSN)
	b.SetExpCmdSN(exp)
	b.SetMaxCmdSN(c.maxSent)
}

// writer writes the queued messages. It batches: PDUs go into a
// buffered writer that is flushed when the queue runs empty.
func (c *conn) writer() {
	defer close(c.writerErr)
	for {
		var m outMsg
		select {
		case m = <-c.out:
		default:
			c.wmu.Lock()
			err := c.bw.Flush()
			c.wmu.Unlock()
			if err != nil {
				c.writeFailed(err)
				return
			}
			select {
			case m = <-c.out:
			case <-c.done:
				return
			}
		}
		c.wmu.Lock()
		stop, err := c.writeMsg(m)
		c.queued.Add(-1)
		c.wmu.Unlock()
		if err != nil {
			c.writeFailed(err)
			return
		}
		if stop {
			return
		}
	}
}

// writeFailed ends the connection after a failed write.
func (c *conn) writeFailed(err error) {
	if !c.isDone() {
		c.log.Info("write failed; closing", "err", err)
	}
	c.kill()
}

// writeMsg writes one queued message under wmu; stop says the writer is
// done (outStop, or closeAfter).
func (c *conn) writeMsg(m outMsg) (stop bool, err error) {
	switch m.kind {
	case outStop:
		_ = c.bw.Flush()
		return true, nil
	case outPDU:
		c.fillSN(&m.p.BHS, c.statSN)
		if m.stat {
			c.statSN++
		}
		err = c.wr.Write(m.p)
	case outR2T:
		if m.cmd.aborted() {
			return false, nil // the task is gone; soliciting its data is pointless
		}
		err = c.writeR2T(&c.scratch, m.cmd, m.r2t, c.statSN)
		m.cmd.r2tsSent++
	case outAborted:
		// The command is not released: aborted commands go to the
		// garbage collector (abortWhere).
		err = c.writeAborted(&c.scratch, m.cmd, c.statSN)
		c.statSN++
	case outDone:
		c.statSN, err = c.writeDone(&c.scratch, c.sense[:], m.cmd, c.statSN)
		c.release(m.cmd)
	}
	if err != nil {
		return true, err
	}
	if m.closeAfter {
		_ = c.bw.Flush()
		c.kill()
		return true, nil
	}
	return false, nil
}

// respond sends a completed command's response. When no other command
// is executing, nothing is queued and the write side is free, the worker
// writes and flushes it itself: at low queue depth this saves waking the
// writer goroutine (a futex wake and a context switch per command).
// Otherwise the response is queued, so that the writer batches the
// responses of concurrent commands into one write.
func (c *conn) respond(cmd *command) {
	if c.busy.Load() == 0 && c.queued.Load() == 0 && c.wmu.TryLock() {
		if c.queued.Load() == 0 && !c.isDone() {
			var err error
			c.statSN, err = c.writeDone(&c.scratch, c.sense[:], cmd, c.statSN)
			if err == nil {
				err = c.bw.Flush()
			}
			c.wmu.Unlock()
			c.release(cmd)
			if err != nil {
				c.writeFailed(err)
			}
			return
		}
		c.wmu.Unlock()
	}
	c.send(outMsg{kind: outDone, cmd: cmd})
}

// pinger sends NOP-In pings on an idle connection and drops a connection
// whose initiator stays silent (RFC 7143 section 11.19).
func (c *conn) pinger() {
	cfg := c.srv.cfg
	tick := min(cfg.NopInterval, cfg.NopTimeout) / 4
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			if c.stopping.Load() {
				continue
			}
			switch nopAction(now.UnixNano(), c.lastRecv.Load(), c.pingSentAt.Load(), cfg.NopInterval, cfg.NopTimeout) {
			case nopPing:
				c.nextPingTTT()
				c.pingSentAt.Store(now.UnixNano())
				p := &pdu.PDU{}
				p.BHS.SetOpcode(pdu.OpNOPIn)
				p.BHS.SetFlags(pdu.FlagFinal)
				p.BHS.SetITT(pdu.ReservedTag)
				p.BHS.SetTTT(c.pingTTT.Load())
				c.send(outMsg{kind: outPDU, p: p})
			case nopDrop:
				c.log.Warn("initiator did not answer NOP-In; dropping the connection",
					"nop_timeout", cfg.NopTimeout)
				c.kill()
				return
			}
		}
	}
}

func (c *conn) nextPingTTT() {
	v := c.pingTTT.Load() + 1
	if v == pdu.ReservedTag || v == 0 {
		v = 1
	}
	// Pings use the top half of the tag space; R2Ts the bottom half.
	c.pingTTT.Store(v | 0x80000000)
	if c.pingTTT.Load() == pdu.ReservedTag {
		c.pingTTT.Store(0x80000000)
	}
}

type nopVerdict int

const (
	nopNothing nopVerdict = iota
	nopPing
	nopDrop
)

// nopAction decides, at time now, whether to ping or to drop: ping after
// interval without traffic, drop when a ping has been outstanding for
// timeout and nothing arrived since it was sent. Times are unix nanos;
// pingSent 0 means no ping is outstanding.
func nopAction(now, lastRecv, pingSent int64, interval, timeout time.Duration) nopVerdict {
	if pingSent != 0 && lastRecv < pingSent {
		if now-pingSent >= int64(timeout) {
			return nopDrop
		}
		return nopNothing
	}
	if now-lastRecv >= int64(interval) && (pingSent == 0 || now-pingSent >= int64(interval)) {
		return nopPing
	}
	return nopNothing
}

var _ = context.Background
