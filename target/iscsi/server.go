package iscsi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
)

// Executor runs SCSI tasks; *scsi.Target implements it. Execute is called
// concurrently from many goroutines.
type Executor interface {
	Execute(task *scsi.Task) scsi.Result
}

// Negotiator is one connection's login state machine; *login.Login
// implements it.
type Negotiator interface {
	Step(req, resp *pdu.PDU) login.Outcome
	Result() login.Result
}

// Config configures a Server. Zero values select the documented defaults.
type Config struct {
	// PortalGroupTag is the target portal group tag of every listener;
	// default 1.
	PortalGroupTag uint16
	// Discovery holds the CHAP credentials of discovery sessions.
	Discovery login.Auth
	// Limits are the target's negotiation limits (see login.Limits).
	Limits login.Limits
	// Algorithms are the CHAP digests offered; nil = login's default.
	Algorithms []chap.Algorithm
	// MaxSessions bounds the number of sessions; default 64.
	MaxSessions int
	// QueueDepth is the CmdSN window of a session and the number of its
	// commands that execute concurrently; default 128.
	QueueDepth uint32
	// MaxTransferLength bounds a command's Expected Data Transfer Length
	// in bytes; bigger commands end in CHECK CONDITION. Default 16 MiB.
	MaxTransferLength uint32
	// LoginTimeout bounds the whole login phase; default 15 s.
	LoginTimeout time.Duration
	// NopInterval is the idle time after which the target sends a NOP-In
	// ping; default 10 s, negative disables pings.
	NopInterval time.Duration
	// NopTimeout is how long a ping may stay unanswered (with nothing
	// else received) before the connection is dropped; default 60 s
	// (see target/config for why it is long).
	NopTimeout time.Duration
	// Rand is the CHAP challenge source; nil = crypto/rand.
	Rand io.Reader
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// NewLogin builds a connection's login state machine; nil uses
	// login.New. Tests replace it.
	NewLogin func(cfg *login.Config, remote string) Negotiator
}

func (c *Config) setDefaults() {
	if c.PortalGroupTag == 0 {
		c.PortalGroupTag = 1
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 64
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = 128
	}
	if c.MaxTransferLength == 0 {
		c.MaxTransferLength = 16 << 20
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 15 * time.Second
	}
	if c.NopInterval == 0 {
		c.NopInterval = 10 * time.Second
	}
	if c.NopTimeout <= 0 {
		c.NopTimeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.NewLogin == nil {
		c.NewLogin = func(cfg *login.Config, remote string) Negotiator { return login.New(cfg, remote) }
	}
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("iscsi: server closed")

type targetEntry struct {
	info login.TargetInfo
	exec Executor
}

// Server is an iSCSI target portal group: listeners, targets and sessions.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	targets   map[string]*targetEntry
	discovery login.Auth
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sessions  map[uint16]*conn // by TSIH, full-feature normal and discovery sessions
	lastTSIH  uint16
	closed    bool

	// losses orders nexus losses before later commands: see nexusLoss.
	losses nexusLosses

	wg sync.WaitGroup // accept loops and connections
}

// NewServer returns a Server with no targets and no listeners.
func NewServer(cfg Config) *Server {
	cfg.setDefaults()
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		targets:   map[string]*targetEntry{},
		discovery: cfg.Discovery,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		sessions:  map[uint16]*conn{},
	}
}

// AddTarget makes a target (and its LUNs, through exec) reachable.
func (s *Server) AddTarget(info login.TargetInfo, exec Executor) error {
	if info.Name == "" || exec == nil {
		return errors.New("iscsi: target needs a name and an executor")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.targets[info.Name]; ok {
		return fmt.Errorf("iscsi: target %q already exists; remove it first", info.Name)
	}
	s.targets[info.Name] = &targetEntry{info: info, exec: exec}
	name := info.Name
	// PREEMPT AND ABORT (SPC-4 5.9.11.5) aborts other nexuses' tasks on
	// an LU through the fabric, which alone knows them.
	if as, ok := exec.(AborterSetter); ok {
		as.SetAborter(func(lun uint64, match func(n *scsi.Nexus) bool) {
			s.abortTarget(name, func(cmd *command) bool {
				return cmd.task.LUN == lun && cmd.task.CDB[0] != opPersistentReserveOut && match(cmd.task.Nexus)
			}, nil)
		})
	}
	return nil
}

// RemoveTarget removes a target and closes its sessions.
func (s *Server) RemoveTarget(name string) error {
	s.mu.Lock()
	if _, ok := s.targets[name]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("iscsi: no target %q", name)
	}
	delete(s.targets, name)
	var victims []*conn
	for _, c := range s.sessions {
		if c.sess.TargetName == name {
			victims = append(victims, c)
		}
	}
	s.mu.Unlock()
	for _, c := range victims {
		c.kill()
	}
	return nil
}

// SetTargetAuth replaces a target's CHAP credentials; new logins use them.
func (s *Server) SetTargetAuth(name string, auth login.Auth) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[name]
	if !ok {
		return fmt.Errorf("iscsi: no target %q", name)
	}
	t.info.Auth = auth
	return nil
}

// SetDiscoveryAuth replaces the CHAP credentials of discovery sessions.
func (s *Server) SetDiscoveryAuth(auth login.Auth) {
	s.mu.Lock()
	s.discovery = auth
	s.mu.Unlock()
}

// TargetInfo returns a copy of a target's login information.
func (s *Server) TargetInfo(name string) (login.TargetInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[name]
	if !ok {
		return login.TargetInfo{}, false
	}
	return t.info, true
}

// TargetNames lists the targets, sorted.
func (s *Server) TargetNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.targets))
	for n := range s.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SessionInfo describes one logged-in session.
type SessionInfo struct {
	Target    string `json:"target,omitempty"`
	Initiator string `json:"initiator"`
	ISID      string `json:"isid"`
	TSIH      uint16 `json:"tsih"`
	Remote    string `json:"remote"`
	Discovery bool   `json:"discovery,omitempty"`
}

// Sessions lists the sessions in full feature phase, by TSIH.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, c := range s.sessions {
		out = append(out, SessionInfo{
			Target: c.sess.TargetName, Initiator: c.sess.InitiatorName,
			ISID: fmt.Sprintf("%012x", c.sess.ISID[:]), TSIH: c.sess.TSIH,
			Remote: c.remote, Discovery: c.sess.Type == login.Discovery,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TSIH < out[j].TSIH })
	return out
}

// Listen opens a TCP listener on addr and serves it in the background.
func (s *Server) Listen(addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("iscsi: listen on %s: %w; check the address and that the port is free", addr, err)
	}
	go func() { _ = s.Serve(l) }()
	return l.Addr(), nil
}

// Serve accepts connections on l until l fails or the server closes.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.listeners, l)
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("iscsi: accept on %s: %w", l.Addr(), err)
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
			_ = tc.SetKeepAlive(true)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the listeners, lets in-flight commands finish and their
// responses go out, then closes every connection. When ctx ends first,
// the remaining connections are closed at once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		_ = l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.kill()
		}
		<-done
		return fmt.Errorf("iscsi: close: %w; connections were dropped", ctx.Err())
	}
}

// loginConfig snapshots the server state a new login needs.
func (s *Server) loginConfig() *login.Config {
	s.mu.Lock()
	disc := s.discovery
	s.mu.Unlock()
	return &login.Config{
		PortalGroupTag: s.cfg.PortalGroupTag,
		LookupTarget: func(name string) (login.TargetInfo, bool) {
			return s.TargetInfo(name)
		},
		Discovery:     disc,
		Limits:        s.cfg.Limits,
		Algorithms:    s.cfg.Algorithms,
		NewTSIH:       s.newTSIH,
		SessionExists: s.sessionExists,
		Rand:          s.cfg.Rand,
		Logger:        s.log,
	}
}

// newTSIH allocates a TSIH that is neither 0 nor in use (RFC 7143
// section 11.12.6).
func (s *Server) newTSIH() uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.lastTSIH++
		if s.lastTSIH == 0 {
			continue
		}
		if _, used := s.sessions[s.lastTSIH]; !used {
			return s.lastTSIH
		}
	}
}

// sessionExists answers logins that name an existing TSIH. With
// MaxConnections=1 and ERL 0 tandem cannot add a connection to a session
// or reinstate one inside it, so such logins are refused.
func (s *Server) sessionExists(initiator string, isid [6]byte, tsih uint16) bool {
	return false
}

func (s *Server) sessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// register enters c into the session table. A normal session with the
// same initiator name and ISID is reinstated: the old one is closed first
// and its in-flight tasks are dropped (RFC 7143 section 6.3.5).
func (s *Server) register(c *conn) (Executor, error) {
	s.mu.Lock()
	var exec Executor
	if c.sess.Type == login.Normal {
		t, ok := s.targets[c.sess.TargetName]
		if !ok {
			s.mu.Unlock()
			return nil, fmt.Errorf("iscsi: target %q vanished during login", c.sess.TargetName)
		}
		exec = t.exec
	}
	var old []*conn
	for _, o := range s.sessions {
		if o.sess.Type == c.sess.Type && o.sess.InitiatorName == c.sess.InitiatorName &&
			o.sess.ISID == c.sess.ISID && o.sess.TargetName == c.sess.TargetName {
			old = append(old, o)
		}
	}
	s.mu.Unlock()
	for _, o := range old {
		c.log.Info("reinstating session", "old_tsih", o.sess.TSIH)
		o.kill()
		o.waitDone(5 * time.Second)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	s.sessions[c.sess.TSIH] = c
	return exec, nil
}

// sessionsOf lists the normal sessions logged in to target.
func (s *Server) sessionsOf(target string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for _, c := range s.sessions {
		if c.sess.Type == login.Normal && c.sess.TargetName == target {
			out = append(out, c)
		}
	}
	return out
}

// abortTarget aborts the matching tasks of every session of target and
// returns once none of them can still touch the medium, with the nexuses
// that lost tasks. by is the session that asked (nil: the SCSI layer's
// PREEMPT AND ABORT, which never matches its own nexus): the tasks of
// every other session are aborted by another I_T nexus and complete with
// TASK ABORTED status where their LU has TAS set (SAM-5 5.6), by's own
// end silently.
func (s *Server) abortTarget(target string, match func(cmd *command) bool, by *conn) []*scsi.Nexus {
	conns := s.sessionsOf(target)
	var victims []*scsi.Nexus
	waits := make([][]*command, len(conns))
	for i, c := range conns {
		status := c.abortStatus
		if c == by {
			status = nil
		}
		n, ex := c.abortWhere(match, status)
		if n > 0 {
			victims = append(victims, &c.nexus)
		}
		waits[i] = ex
	}
	for i, c := range conns {
		c.waitAborted(waits[i])
	}
	return victims
}

// dropTarget closes every session of target except keep.
func (s *Server) dropTarget(target string, keep *conn) {
	for _, c := range s.sessionsOf(target) {
		if c != keep {
			c.kill()
		}
	}
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	if s.sessions[c.sess.TSIH] == c {
		delete(s.sessions, c.sess.TSIH)
	}
	s.mu.Unlock()
}

// visibleTargets lists the targets initiator may see, for SendTargets.
func (s *Server) visibleTargets(initiator string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n, t := range s.targets {
		if len(t.info.Initiators) == 0 || slices.Contains(t.info.Initiators, initiator) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// nexusLosses makes the end of a nexus visible before anything read
// after it. An initiator that drops one connection and goes on at once
// on another (libiscsi's suites do: the SPC-2 holder's socket closes,
// the other session's command follows) must find the reservation gone;
// the two readers race, so a reader that sees its transport end counts
// itself here before applying the loss, and every reader waits for the
// count to reach zero before it handles a PDU it read. "Later" thus means
// read after the end of the transport was seen; a command read before is
// earlier and may still meet the reservation, as on a real bus.
type nexusLosses struct {
	pending atomic.Int32
	mu      sync.Mutex
	cond    *sync.Cond
}

// apply runs loss (the SCSI layer's NexusLoss) with the count held.
func (l *nexusLosses) apply(loss func()) {
	l.pending.Add(1)
	defer func() {
		l.mu.Lock()
		l.pending.Add(-1)
		if l.cond != nil {
			l.cond.Broadcast()
		}
		l.mu.Unlock()
	}()
	loss()
}

// wait returns when no loss is being applied; one atomic load when none
// is.
func (l *nexusLosses) wait() {
	if l.pending.Load() == 0 {
		return
	}
	l.mu.Lock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
	}
	for l.pending.Load() != 0 {
		l.cond.Wait()
	}
	l.mu.Unlock()
}
