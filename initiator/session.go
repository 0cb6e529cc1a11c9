package initiator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/initiator/negotiate"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// Session is a logged-in normal (or discovery) session over one TCP
// connection. All methods are safe for concurrent use.
type Session struct {
	conn   net.Conn
	r      *pdu.Reader
	w      *pdu.Writer
	opts   Options
	params Params
	log    *slog.Logger
	kind   negotiate.SessionType
	isid   [6]byte
	tsih   uint16

	// wmu serialises writes and, for commands, CmdSN assignment, so
	// commands reach the wire in CmdSN order.
	wmu sync.Mutex

	snMu          sync.Mutex
	cmdSN         uint32
	expCmdSN      uint32
	maxCmdSN      uint32
	windowWaiters int
	windowCh      chan struct{} // closed when MaxCmdSN advances and someone waits

	expStatSN atomic.Uint32

	slots []*task
	free  chan *task

	ctrlMu   sync.Mutex
	ctrl     map[uint32]chan ctrlResp
	nextCtrl uint32

	pings chan ping

	dead       chan struct{}
	deadOnce   sync.Once
	deadErr    error
	readerDone chan struct{}
	bgDone     chan struct{} // closed to stop keep-alive and responder

	bsMu       sync.RWMutex
	blockSizes map[uint64]uint32 // per LUN, from READ CAPACITY (16)
	rp         pdu.PDU           // the reader's PDU, reused
}

type ctrlResp struct {
	bhs  pdu.BHS
	data []byte
	err  error
}

type ping struct {
	ttt  uint32
	lun  uint64
	data []byte
}

// Control-PDU tags carry the top bit; SCSI tasks use slot | generation<<16
// below it.
const ctrlTagBit = 0x80000000

// Dial connects to the portal addr ("host:port"; port 3260 when omitted),
// logs in to opts.TargetName and starts the session. It follows up to
// three login redirects.
func Dial(ctx context.Context, addr string, opts Options) (*Session, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	for redirects := 0; ; redirects++ {
		conn, err := dialer(o.Dialer)(ctx, "tcp", portalAddr(addr))
		if err != nil {
			return nil, fmt.Errorf("initiator: dial %s: %w", addr, err)
		}
		s, err := newSession(ctx, conn, o, negotiate.Normal)
		var le *LoginError
		if errors.As(err, &le) && le.Class == 1 && le.TargetAddress != "" && redirects < 3 {
			addr = le.TargetAddress
			continue
		}
		return s, err
	}
}

// NewSession logs in over an established connection (any net.Conn; Dial
// opens a TCP one). The session owns conn from then on, also on error.
func NewSession(ctx context.Context, conn net.Conn, opts Options) (*Session, error) {
	o, err := opts.withDefaults()
	if err != nil {
		conn.Close()
		return nil, err
	}
	return newSession(ctx, conn, o, negotiate.Normal)
}

// portalAddr turns a SendTargets TargetAddress ("host:port,tpgt", IPv6
// in brackets) or a bare host into a dialable address.
func portalAddr(a string) string {
	if i := strings.LastIndexByte(a, ','); i >= 0 {
		a = a[:i]
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		a = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		return net.JoinHostPort(a, "3260")
	}
	return a
}

func newSession(ctx context.Context, conn net.Conn, o Options, kind negotiate.SessionType) (*Session, error) {
	s := &Session{
		conn: conn, r: pdu.NewReader(conn), w: pdu.NewWriter(conn),
		opts: o, log: discard(o.Logger), kind: kind, isid: o.ISID,
		ctrl: map[uint32]chan ctrlResp{}, pings: make(chan ping, 16),
		dead: make(chan struct{}), readerDone: make(chan struct{}), bgDone: make(chan struct{}),
		windowCh: make(chan struct{}),
	}
	u := func(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
	spec := negotiate.Spec{
		Type: kind, InitiatorName: o.InitiatorName, InitiatorAlias: o.InitiatorAlias,
		TargetName: o.TargetName, ISID: o.ISID, ITT: 0, CmdSN: 1, CHAP: o.CHAP,
		Values: map[string]string{
			"HeaderDigest":             negotiate.Digests(o.HeaderDigest),
			"DataDigest":               negotiate.Digests(o.DataDigest),
			"MaxRecvDataSegmentLength": u(o.MaxRecvDataSegmentLength),
			"MaxBurstLength":           u(o.MaxBurstLength),
			"FirstBurstLength":         u(o.FirstBurstLength),
			"ImmediateData":            text.FormatBool(o.ImmediateData == nil || *o.ImmediateData),
			"InitialR2T":               text.FormatBool(o.InitialR2T != nil && *o.InitialR2T),
		},
	}
	res, err := s.login(ctx, spec)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.params = res.Params
	s.tsih = res.TSIH
	s.cmdSN, s.expCmdSN, s.maxCmdSN = res.ExpCmdSN, res.ExpCmdSN, res.MaxCmdSN
	s.expStatSN.Store(res.StatSN + 1)
	// Digests start with the first PDU after the final Login Response.
	s.r.HeaderDigest, s.r.DataDigest = s.params.HeaderDigest, s.params.DataDigest
	s.w.HeaderDigest, s.w.DataDigest = s.params.HeaderDigest, s.params.DataDigest
	s.r.MaxDataSegmentLength = int(s.params.MaxRecvDataSegmentLength)

	depth := o.QueueDepth
	if kind == negotiate.Discovery {
		depth = 0
	}
	s.slots = make([]*task, depth)
	s.free = make(chan *task, depth)
	r2tDepth := int(s.params.MaxOutstandingR2T) + 1
	for i := range s.slots {
		t := &task{slot: uint16(i), r2t: make(chan r2t, r2tDepth), done: make(chan struct{}, 1)}
		s.slots[i] = t
		s.free <- t
	}
	s.log.Debug("logged in", "target", o.TargetName, "tsih", s.tsih, "params", fmt.Sprintf("%+v", s.params))
	go s.readLoop()
	go s.respond()
	if o.KeepAliveInterval > 0 {
		go s.keepAlive()
	}
	return s, nil
}

// login runs the login phase; the negotiator makes every decision.
func (s *Session) login(ctx context.Context, spec negotiate.Spec) (negotiate.Result, error) {
	if d, ok := ctx.Deadline(); ok {
		s.conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		s.conn.SetDeadline(time.Time{})
	}()
	n, err := negotiate.New(spec)
	if err != nil {
		return negotiate.Result{}, err
	}
	var req, resp pdu.PDU
	n.Start(&req)
	for {
		if err := s.w.Write(&req); err != nil {
			return negotiate.Result{}, loginIOError(ctx, err)
		}
		if err := s.r.Read(&resp); err != nil {
			return negotiate.Result{}, loginIOError(ctx, err)
		}
		done, err := n.Step(&resp, &req)
		if err != nil {
			return negotiate.Result{}, err
		}
		if done {
			return n.Result(), nil
		}
	}
}

func loginIOError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("initiator: login: %w", ctx.Err())
	}
	return fmt.Errorf("initiator: login: %w", err)
}

// Params returns the negotiated parameters.
func (s *Session) Params() Params { return s.params }

// TSIH returns the target-assigned session handle.
func (s *Session) TSIH() uint16 { return s.tsih }

// ISID returns the initiator session id.
func (s *Session) ISID() [6]byte { return s.isid }

// Done is closed when the session ends; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.dead }

// Err is nil while the session runs, ErrSessionClosed (possibly wrapping
// a cause) after.
func (s *Session) Err() error {
	select {
	case <-s.dead:
		return s.deadErr
	default:
		return nil
	}
}

// fail ends the session once; the reader then fails outstanding tasks.
func (s *Session) fail(err error) {
	s.deadOnce.Do(func() {
		if err == nil || errors.Is(err, ErrSessionClosed) {
			s.deadErr = ErrSessionClosed
		} else {
			s.deadErr = fmt.Errorf("%w: %w", ErrSessionClosed, err)
			s.log.Warn("session failed", "target", s.opts.TargetName, "err", err)
		}
		close(s.dead)
		close(s.bgDone)
		s.conn.Close()
	})
}

// Close logs out, waiting for the target's answer until ctx ends (the
// caller picks the bound: on a dead network, a short one), and closes the
// connection either way. Outstanding commands fail with ErrSessionClosed.
func (s *Session) Close(ctx context.Context) error {
	select {
	case <-s.dead:
		<-s.readerDone
		return nil
	default:
	}
	err := s.Logout(ctx)
	s.fail(nil)
	<-s.readerDone
	return err
}

// Logout sends a Logout Request closing the session (RFC 7143 section
// 11.14) and closes the connection after the response.
func (s *Session) Logout(ctx context.Context) error {
	r, err := s.roundTrip(ctx, 0, true, func(p *pdu.PDU) {
		p.BHS.SetOpcode(pdu.OpLogoutReq)
		p.BHS.SetFlags(pdu.FlagFinal | pdu.LogoutCloseSession)
	})
	if err != nil {
		s.fail(nil)
		return fmt.Errorf("initiator: logout: %w", err)
	}
	s.fail(nil)
	<-s.readerDone
	if code := r.bhs.Response(); code != pdu.LogoutRespSuccess {
		return fmt.Errorf("initiator: logout refused with response %d", code)
	}
	return nil
}

// Ping sends a NOP-Out and waits for the target's NOP-In.
func (s *Session) Ping(ctx context.Context) error {
	_, err := s.roundTrip(ctx, 0, true, func(p *pdu.PDU) {
		p.BHS.SetOpcode(pdu.OpNOPOut)
		p.BHS.SetFlags(pdu.FlagFinal)
		p.BHS.SetTTT(pdu.ReservedTag)
	})
	return err
}

// LUNReset sends a LOGICAL UNIT RESET task management request and
// returns the TMF response code (0 is "function complete").
func (s *Session) LUNReset(ctx context.Context, lun uint64) (byte, error) {
	return s.tmf(ctx, pdu.TMFLogicalUnitReset, lun, pdu.ReservedTag, 0)
}

func (s *Session) tmf(ctx context.Context, fn byte, lun uint64, ref, refCmdSN uint32) (byte, error) {
	r, err := s.roundTrip(ctx, 0, true, func(p *pdu.PDU) {
		p.BHS.SetOpcode(pdu.OpTaskMgmtReq)
		p.BHS.SetFlags(pdu.FlagFinal | fn)
		p.BHS.SetLUN(encodeLUN(lun))
		p.BHS.SetReferencedTaskTag(ref)
		p.BHS.SetRefCmdSN(refCmdSN)
	})
	if err != nil {
		return 0, fmt.Errorf("initiator: task management: %w", err)
	}
	return r.bhs.Response(), nil
}

// roundTrip sends one control PDU and waits for the response with the
// same ITT. itt 0 allocates a new tag. Immediate PDUs carry the current
// CmdSN without taking one (RFC 7143 section 4.2.2.1).
func (s *Session) roundTrip(ctx context.Context, itt uint32, immediate bool, build func(*pdu.PDU)) (ctrlResp, error) {
	ch := make(chan ctrlResp, 1)
	s.ctrlMu.Lock()
	if itt == 0 {
		s.nextCtrl++
		itt = ctrlTagBit | s.nextCtrl&0x3fffffff
	}
	s.ctrl[itt] = ch
	s.ctrlMu.Unlock()
	defer func() {
		s.ctrlMu.Lock()
		delete(s.ctrl, itt)
		s.ctrlMu.Unlock()
	}()
	var p pdu.PDU
	build(&p)
	p.BHS.SetITT(itt)
	if err := s.sendNumbered(ctx, &p, immediate); err != nil {
		return ctrlResp{}, err
	}
	select {
	case r := <-ch:
		return r, r.err
	case <-ctx.Done():
		return ctrlResp{}, ctx.Err()
	case <-s.dead:
		// The response may have arrived just before the connection
		// closed (a target closes right after a Logout Response).
		select {
		case r := <-ch:
			return r, r.err
		default:
		}
		return ctrlResp{}, s.deadErr
	}
}

// sendNumbered writes a PDU that carries a CmdSN, waiting for the CmdSN
// window when it is not immediate.
func (s *Session) sendNumbered(ctx context.Context, p *pdu.PDU, immediate bool) error {
	for {
		s.wmu.Lock()
		s.snMu.Lock()
		if immediate || int32(s.cmdSN-s.maxCmdSN) <= 0 {
			p.BHS.SetImmediate(immediate)
			p.BHS.SetCmdSN(s.cmdSN)
			if refersToItself(&p.BHS) {
				p.BHS.SetRefCmdSN(s.cmdSN)
			}
			if !immediate {
				s.cmdSN++
			}
			s.snMu.Unlock()
			err := s.writeLocked(p)
			s.wmu.Unlock()
			return err
		}
		// The window is closed: MaxCmdSN has been reached.
		if err := s.awaitWindow(ctx); err != nil {
			return err
		}
	}
}

// awaitWindow is entered with snMu and wmu held and releases both; it
// returns once MaxCmdSN may have moved, ctx ended or the session died.
func (s *Session) awaitWindow(ctx context.Context) error {
	s.windowWaiters++
	ch := s.windowCh
	s.snMu.Unlock()
	s.wmu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.dead:
		err = s.deadErr
	}
	s.snMu.Lock()
	s.windowWaiters--
	s.snMu.Unlock()
	return err
}

// refersToItself reports whether b is an ABORT TASK SET or CLEAR TASK
// SET request, whose RefCmdSN must be its own CmdSN (RFC 7143 section
// 11.5.5).
func refersToItself(b *pdu.BHS) bool {
	if b.Opcode() != pdu.OpTaskMgmtReq {
		return false
	}
	fn := b.Function()
	return fn == pdu.TMFAbortTaskSet || fn == pdu.TMFClearTaskSet
}

// writeLocked writes p with the current ExpStatSN; wmu is held.
func (s *Session) writeLocked(p *pdu.PDU) error {
	select {
	case <-s.dead:
		return s.deadErr
	default:
	}
	p.BHS.SetExpStatSN(s.expStatSN.Load())
	if err := s.w.Write(p); err != nil {
		s.fail(fmt.Errorf("write: %w", err))
		return s.deadErr
	}
	return nil
}

func (s *Session) write(p *pdu.PDU) error {
	s.wmu.Lock()
	err := s.writeLocked(p)
	s.wmu.Unlock()
	return err
}

// updateWindow applies ExpCmdSN and MaxCmdSN of a target PDU (RFC 7143
// section 4.2.2.1): ignored when MaxCmdSN < ExpCmdSN-1, otherwise taken
// when newer.
func (s *Session) updateWindow(b *pdu.BHS) {
	exp, max := b.ExpCmdSN(), b.MaxCmdSN()
	if int32(max-exp) < -1 {
		return
	}
	s.snMu.Lock()
	if int32(exp-s.expCmdSN) > 0 {
		s.expCmdSN = exp
	}
	if int32(max-s.maxCmdSN) > 0 {
		s.maxCmdSN = max
		if s.windowWaiters > 0 {
			close(s.windowCh)
			s.windowCh = make(chan struct{})
		}
	}
	s.snMu.Unlock()
}

// takeStatSN advances ExpStatSN past a status-carrying PDU.
func (s *Session) takeStatSN(b *pdu.BHS) {
	next := b.StatSN() + 1
	if cur := s.expStatSN.Load(); int32(next-cur) > 0 {
		s.expStatSN.Store(next)
	}
}

func (s *Session) readLoop() {
	defer close(s.readerDone)
	var err error
	for {
		if err = s.r.Read(&s.rp); err != nil {
			break
		}
		if err = s.dispatch(&s.rp); err != nil {
			break
		}
	}
	select {
	case <-s.dead:
	default:
		s.fail(fmt.Errorf("read: %w", err))
	}
	s.failAll()
}

func (s *Session) dispatch(p *pdu.PDU) error {
	b := &p.BHS
	switch op := b.Opcode(); op {
	case pdu.OpDataIn:
		s.updateWindow(b)
		if b.Flags()&pdu.FlagStatus != 0 {
			s.takeStatSN(b)
		}
		return s.dataIn(p)
	case pdu.OpSCSIResp:
		s.updateWindow(b)
		s.takeStatSN(b)
		return s.scsiResponse(p)
	case pdu.OpR2T:
		s.updateWindow(b)
		return s.r2t(p)
	case pdu.OpNOPIn:
		s.updateWindow(b)
		if b.ITT() != pdu.ReservedTag {
			s.takeStatSN(b)
			s.deliver(p, nil)
		}
		if b.TTT() != pdu.ReservedTag {
			// A ping from the target: answer from another goroutine so the
			// reader never blocks on a write.
			select {
			case s.pings <- ping{ttt: b.TTT(), lun: b.LUN(), data: append([]byte(nil), p.Data...)}:
			default:
				s.log.Warn("dropping target ping: responder is behind")
			}
		}
		return nil
	case pdu.OpTextResp, pdu.OpLogoutResp, pdu.OpTaskMgmtResp:
		s.updateWindow(b)
		s.takeStatSN(b)
		s.deliver(p, nil)
		return nil
	case pdu.OpAsyncMsg:
		s.updateWindow(b)
		s.takeStatSN(b)
		return s.async(p)
	case pdu.OpReject:
		s.takeStatSN(b)
		return s.reject(p)
	default:
		return &ProtocolError{Msg: "unexpected " + op.String() + " in full feature phase"}
	}
}

func (s *Session) deliver(p *pdu.PDU, err error) {
	itt := p.BHS.ITT()
	s.ctrlMu.Lock()
	ch := s.ctrl[itt]
	s.ctrlMu.Unlock()
	if ch == nil {
		s.log.Debug("response for no waiter", "op", p.BHS.Opcode().String(), "itt", itt)
		return
	}
	select {
	case ch <- ctrlResp{bhs: p.BHS, data: append([]byte(nil), p.Data...), err: err}:
	default:
	}
}

func (s *Session) async(p *pdu.PDU) error {
	event, _ := p.BHS.AsyncEvent()
	_, _, p3 := p.BHS.AsyncParameters()
	switch event {
	case pdu.AsyncSCSIEvent:
		s.log.Info("asynchronous scsi event", "sense", fmt.Sprintf("%x", p.Data))
	case pdu.AsyncRequestLogout:
		// RFC 7143 section 11.9.1: log out within Parameter3 seconds.
		wait := time.Duration(p3) * time.Second
		if wait <= 0 {
			wait = 5 * time.Second
		}
		s.log.Info("target requests logout", "within", wait)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_ = s.Logout(ctx)
		}()
	case pdu.AsyncDropConnection, pdu.AsyncDropAll:
		return fmt.Errorf("target is dropping the connection (async event %d)", event)
	default:
		s.log.Debug("ignoring async message", "event", event)
	}
	return nil
}

func (s *Session) reject(p *pdu.PDU) error {
	reason := p.BHS.Response()
	if len(p.Data) < pdu.BHSLen {
		return &ProtocolError{Msg: "Reject without the rejected header"}
	}
	var hdr pdu.BHS
	copy(hdr[:], p.Data)
	itt := hdr.ITT()
	rerr := &RejectError{Reason: reason}
	s.log.Warn("target rejected a PDU", "op", hdr.Opcode().String(), "reason", reason, "itt", itt)
	if itt == pdu.ReservedTag {
		return nil
	}
	if itt&ctrlTagBit != 0 {
		var q pdu.PDU
		q.BHS = hdr
		s.deliver(&q, rerr)
		return nil
	}
	if t := s.taskFor(itt); t != nil {
		t.mu.Lock()
		if t.itt == itt && t.state == stateActive {
			t.err = rerr
			s.completeLocked(t)
			return nil
		}
		t.mu.Unlock()
	}
	return nil
}

// respond answers target pings.
func (s *Session) respond() {
	for {
		select {
		case <-s.bgDone:
			return
		case pg := <-s.pings:
			var p pdu.PDU
			p.BHS.SetOpcode(pdu.OpNOPOut)
			p.BHS.SetImmediate(true)
			p.BHS.SetFlags(pdu.FlagFinal)
			p.BHS.SetLUN(pg.lun)
			p.BHS.SetITT(pdu.ReservedTag)
			p.BHS.SetTTT(pg.ttt)
			p.Data = pg.data
			s.wmu.Lock()
			s.snMu.Lock()
			p.BHS.SetCmdSN(s.cmdSN)
			s.snMu.Unlock()
			err := s.writeLocked(&p)
			s.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

func (s *Session) keepAlive() {
	tick := time.NewTicker(s.opts.KeepAliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.bgDone:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.KeepAliveTimeout)
			err := s.Ping(ctx)
			cancel()
			if err != nil && errors.Is(err, context.DeadlineExceeded) {
				s.fail(fmt.Errorf("keep-alive ping unanswered for %v", s.opts.KeepAliveTimeout))
				return
			}
		}
	}
}
