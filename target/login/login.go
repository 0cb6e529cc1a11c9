package login

import (
	"crypto/rand"
	"io"
	"log/slog"
	"strconv"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// SessionType is the SessionType key (RFC 7143 section 13.21).
type SessionType int

// Session types.
const (
	Normal SessionType = iota
	Discovery
)

func (s SessionType) String() string {
	if s == Discovery {
		return "Discovery"
	}
	return "Normal"
}

// Credentials are one CHAP name and secret.
type Credentials struct {
	User   string
	Secret []byte
}

// Auth is what a session must present.
type Auth struct {
	// Incoming are the credentials an initiator may present; empty means
	// no CHAP is required (AuthMethod None).
	Incoming []Credentials
	// Outgoing are the target's own credentials for mutual CHAP; nil
	// means mutual CHAP is refused.
	Outgoing *Credentials
}

// TargetInfo describes one target for LookupTarget.
type TargetInfo struct {
	Name, Alias string
	Auth        Auth
	// Initiators is the ACL of initiator names; empty admits everyone.
	Initiators []string
}

// Limits are the target's maxima and preferences for the operational keys
// (RFC 7143 section 13). Zero fields take the defaults noted.
type Limits struct {
	// MaxRecvDataSegmentLength is what the target accepts in one PDU,
	// declared to the initiator; default 262144 bytes.
	MaxRecvDataSegmentLength uint32
	// MaxBurstLength defaults to 1048576 bytes, FirstBurstLength to 262144
	// (clamped to MaxBurstLength).
	MaxBurstLength, FirstBurstLength uint32
	// MaxOutstandingR2T defaults to 1.
	MaxOutstandingR2T uint32
	// ImmediateData and InitialR2T: nil means the RFC defaults Yes and Yes.
	ImmediateData, InitialR2T *bool
	// DefaultTime2Wait and DefaultTime2Retain in seconds; defaults 2 and 20.
	DefaultTime2Wait, DefaultTime2Retain uint32
	// AllowDigests accepts CRC32C header and data digests when offered.
	AllowDigests bool
}

// Config is shared by every login on a portal.
type Config struct {
	// PortalGroupTag is returned as TargetPortalGroupTag.
	PortalGroupTag uint16
	// LookupTarget resolves a TargetName; nil finds nothing.
	LookupTarget func(name string) (TargetInfo, bool)
	// Discovery is the authentication of discovery sessions.
	Discovery Auth
	Limits    Limits
	// Algorithms are the CHAP algorithms in the target's order of
	// preference; default {SHA256, MD5}.
	Algorithms []chap.Algorithm
	// NewTSIH allocates the handle of a new session; returning 0 means no
	// handle is free (the login fails with 0x0302). nil always gives 1.
	NewTSIH func() uint16
	// SessionExists reports whether a login with TSIH != 0 may join or
	// reinstate that session; nil means no session exists.
	SessionExists func(initiator string, isid [6]byte, tsih uint16) bool
	// Rand is the source of CHAP identifiers and challenges; nil means
	// crypto/rand.
	Rand io.Reader
	// Logger receives one Warn line per authentication failure and one
	// Info line per other refusal; nil discards.
	Logger *slog.Logger
	// CmdWindow is MaxCmdSN-ExpCmdSN+1 advertised in login responses, so
	// the initiator may queue commands right after login; 0 means 1.
	CmdWindow uint32
}

// Params are the negotiated operational values (RFC 7143 section 13).
type Params struct {
	HeaderDigest, DataDigest bool
	// MaxRecvDataSegmentLength was declared by the initiator: the most
	// the target may send in one PDU.
	MaxRecvDataSegmentLength uint32
	// TargetMaxRecvDataSegmentLength was declared by the target: the most
	// it accepts in one PDU.
	TargetMaxRecvDataSegmentLength                      uint32
	MaxBurstLength, FirstBurstLength, MaxOutstandingR2T uint32
	InitialR2T, ImmediateData                           bool
	DataPDUInOrder, DataSequenceInOrder                 bool
	DefaultTime2Wait, DefaultTime2Retain                uint32
	ErrorRecoveryLevel, MaxConnections                  uint32
}

// DefaultParams are the RFC 7143 defaults: the values in force for every
// key the login does not negotiate.
func DefaultParams() Params {
	return Params{
		MaxRecvDataSegmentLength:       8192,
		TargetMaxRecvDataSegmentLength: 8192,
		MaxBurstLength:                 262144,
		FirstBurstLength:               65536,
		MaxOutstandingR2T:              1,
		InitialR2T:                     true,
		ImmediateData:                  true,
		DataPDUInOrder:                 true,
		DataSequenceInOrder:            true,
		DefaultTime2Wait:               2,
		DefaultTime2Retain:             20,
		MaxConnections:                 1,
	}
}

// Result is what a successful login established.
type Result struct {
	Type                                      SessionType
	InitiatorName, InitiatorAlias, TargetName string
	ISID                                      [6]byte
	TSIH                                      uint16
	CID                                       uint16
	// ExpCmdSN is the CmdSN the first full-feature command will carry.
	ExpCmdSN uint32
	// StatSN is the StatSN the first full-feature response must carry.
	StatSN uint32
	Params Params
}

// Outcome tells the fabric what to do after writing a response.
type Outcome int

// Outcomes.
const (
	// Continue: wait for the next Login Request.
	Continue Outcome = iota
	// Done: enter full feature phase.
	Done
	// Failed: close the connection.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Continue:
		return "Continue"
	case Done:
		return "Done"
	case Failed:
		return "Failed"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

const (
	// loginSegment is the data segment limit of both sides while the
	// login runs (RFC 7143 section 13.12: the declared value applies only
	// after it was sent; 8192 is the default).
	loginSegment = 8192
	// maxLoginText bounds the text a login may accumulate across C-bit
	// PDUs, so a peer cannot make the target buffer without end.
	maxLoginText = 64 << 10
	// minChallenge is the shortest CHAP_C tandem answers in mutual CHAP;
	// shorter challenges make a dictionary of responses cheap.
	minChallenge = 16
	// maxChallenge is RFC 7143 section 12.1.3's upper bound (1024 bytes).
	maxChallenge = 1024
	// maxNameLen is the iSCSI name limit (RFC 7143 section 4.2.7.1).
	maxNameLen = 223
)

type state int

const (
	stateActive state = iota
	stateDone
	stateFailed
)

type authState int

const (
	authStart authState = iota // AuthMethod not negotiated yet
	authNone                   // AuthMethod=None: nothing to prove
	authWantA                  // CHAP chosen, waiting for CHAP_A
	authWantR                  // challenge sent, waiting for CHAP_N/CHAP_R
	authDone                   // CHAP verified
)

// limits are the resolved Limits.
type limits struct {
	mrdsl, mbl, fbl, r2t, t2w, t2r uint32
	immediate, initialR2T, digests bool
}

func resolveLimits(l Limits) limits {
	r := limits{
		mrdsl: l.MaxRecvDataSegmentLength, mbl: l.MaxBurstLength, fbl: l.FirstBurstLength,
		r2t: l.MaxOutstandingR2T, t2w: l.DefaultTime2Wait, t2r: l.DefaultTime2Retain,
		immediate: true, initialR2T: true, digests: l.AllowDigests,
	}
	def := func(v *uint32, d, lo, hi uint32) {
		if *v == 0 {
			*v = d
		}
		*v = min(max(*v, lo), hi)
	}
	def(&r.mrdsl, 262144, 512, 1<<24-1)
	def(&r.mbl, 1048576, 512, 1<<24-1)
	def(&r.fbl, 262144, 512, r.mbl)
	def(&r.r2t, 1, 1, 65535)
	def(&r.t2w, 2, 0, 3600)
	def(&r.t2r, 20, 0, 3600)
	if l.ImmediateData != nil {
		r.immediate = *l.ImmediateData
	}
	if l.InitialR2T != nil {
		r.initialR2T = *l.InitialR2T
	}
	return r
}

// Login is the login state of one connection. It is not safe for
// concurrent use; a connection steps it from one goroutine.
type Login struct {
	cfg    *Config
	lim    limits
	remote string
	log    *slog.Logger
	rand   io.Reader
	algs   []chap.Algorithm

	state   state
	started bool
	stage   int // the CSG the next request must carry
	isid    [6]byte
	tsih    uint16
	cid     uint16
	statSN  uint32

	in  []byte // text of C-bit request PDUs so far
	out []byte // response text still to send (C-bit responses)
	fin final  // what the last chunk of out concludes

	identified     bool
	initiatorName  string
	initiatorAlias string
	targetName     string
	sessionType    string
	sessType       SessionType
	auth           *Auth

	authState authState
	alg       chap.Algorithm
	chapID    byte
	challenge []byte

	seen       map[string]bool   // keys negotiated so far (a second offer is an error)
	pending    map[string]string // target offers awaiting the initiator's answer
	opStarted  bool
	offerRound bool // offers went out in the response being built

	reply  []text.KV
	params Params
	result Result
}

type final struct {
	transit bool
	nsg     int
	done    bool
}

// New starts the login of one connection from remote (an address, used
// in log lines only).
func New(cfg *Config, remote string) *Login {
	l := &Login{
		cfg:     cfg,
		lim:     resolveLimits(cfg.Limits),
		remote:  remote,
		log:     cfg.Logger,
		rand:    cfg.Rand,
		algs:    cfg.Algorithms,
		seen:    map[string]bool{},
		pending: map[string]string{},
		params:  DefaultParams(),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.rand == nil {
		l.rand = rand.Reader
	}
	if len(l.algs) == 0 {
		l.algs = []chap.Algorithm{chap.SHA256, chap.MD5}
	}
	return l
}

// Result returns what the login established; valid after Step returned Done.
func (l *Login) Result() Result { return l.result }

// loginError is a refusal: a Login Response status and the reason logged.
type loginError struct {
	status uint16
	reason string
}

func refuse(status uint16, reason string) *loginError {
	return &loginError{status: status, reason: reason}
}

// Step consumes one Login Request and fills resp completely: the BHS
// (opcode, flags, version, ISID, TSIH, ITT, StatSN, ExpCmdSN, MaxCmdSN,
// status) and the data segment. resp's AHS and Data storage are reused.
func (l *Login) Step(req *pdu.PDU, resp *pdu.PDU) Outcome {
	h := &req.BHS
	resp.BHS = pdu.BHS{}
	resp.AHS = resp.AHS[:0]
	resp.Data = resp.Data[:0]
	r := &resp.BHS
	r.SetOpcode(pdu.OpLoginResp)
	r.SetVersions(0, 0)
	r.SetISID(h.ISID())
	r.SetTSIH(h.TSIH())
	r.SetITT(h.ITT())
	if !l.started {
		// The first response's StatSN starts the connection's sequence;
		// echoing the initiator's ExpStatSN is as good a start as any.
		l.statSN = h.ExpStatSN()
	}
	r.SetStatSN(l.statSN)
	l.statSN++
	window := max(l.cfg.CmdWindow, 1)
	r.SetExpCmdSN(h.CmdSN())
	r.SetMaxCmdSN(h.CmdSN() + window - 1)

	if l.state != stateActive {
		return l.fail(resp, refuse(pdu.LoginInitiatorError, "login request after the login ended"))
	}
	if h.Opcode() != pdu.OpLoginReq {
		return l.fail(resp, refuse(pdu.LoginInvalidDuringLogin, "non-login PDU "+h.Opcode().String()+" during login"))
	}
	if err := l.checkHeader(h); err != nil {
		return l.fail(resp, err)
	}
	if len(l.out) > 0 {
		// The initiator acknowledges a C-bit response with an empty request.
		if len(req.Data) != 0 {
			return l.fail(resp, refuse(pdu.LoginInitiatorError, "login request with data while the target's response continues"))
		}
		return l.send(resp, h)
	}
	if len(l.in)+len(req.Data) > maxLoginText {
		return l.fail(resp, refuse(pdu.LoginInitiatorError, "login text exceeds "+strconv.Itoa(maxLoginText)+" bytes"))
	}
	l.in = append(l.in, req.Data...)
	if h.Continue() {
		// More text follows (RFC 7143 section 6.1): acknowledge with an
		// empty response and wait.
		r.SetLoginStages(false, false, l.stage, 0)
		return Continue
	}
	kvs, _, err := text.Parse(l.in, false)
	l.in = l.in[:0]
	if err != nil {
		return l.fail(resp, refuse(pdu.LoginInitiatorError, "malformed login text: "+err.Error()))
	}
	l.reply = l.reply[:0]
	fin, lerr := l.process(h, kvs)
	if lerr != nil {
		return l.fail(resp, lerr)
	}
	for _, kv := range l.reply {
		l.out = text.Append(l.out, kv)
	}
	l.fin = fin
	return l.send(resp, h)
}

// checkHeader validates the login fields of a request against the login
// so far (RFC 7143 section 11.12).
func (l *Login) checkHeader(h *pdu.BHS) *loginError {
	if h.VersionMinOrActive() != 0 || h.VersionMax() < h.VersionMinOrActive() {
		return refuse(pdu.LoginUnsupportedVersion, "version range "+strconv.Itoa(int(h.VersionMinOrActive()))+
			".."+strconv.Itoa(int(h.VersionMax()))+" excludes version 0")
	}
	if !l.started {
		csg := h.CSG()
		if csg != pdu.StageSecurity && csg != pdu.StageOperational {
			return refuse(pdu.LoginInitiatorError, "first login request in stage "+strconv.Itoa(csg))
		}
		l.started = true
		l.stage = csg
		l.isid, l.tsih, l.cid = h.ISID(), h.TSIH(), h.CID()
	} else if h.ISID() != l.isid || h.TSIH() != l.tsih || h.CID() != l.cid {
		return refuse(pdu.LoginInitiatorError, "ISID, TSIH or CID changed during login")
	}
	if h.CSG() != l.stage {
		return refuse(pdu.LoginInitiatorError, "login request in stage "+strconv.Itoa(h.CSG())+
			", expected "+strconv.Itoa(l.stage))
	}
	if h.Transit() && h.Continue() {
		return refuse(pdu.LoginInitiatorError, "login request with both T and C set")
	}
	if h.Transit() {
		nsg := h.NSG()
		if nsg <= h.CSG() || nsg == 2 {
			return refuse(pdu.LoginInitiatorError, "invalid stage transition "+strconv.Itoa(h.CSG())+
				" -> "+strconv.Itoa(nsg))
		}
	}
	return nil
}

// send writes the next chunk of l.out into resp and, with the last chunk,
// concludes the step as l.fin says.
func (l *Login) send(resp *pdu.PDU, req *pdu.BHS) Outcome {
	n := min(len(l.out), loginSegment)
	resp.Data = append(resp.Data, l.out[:n]...)
	l.out = append(l.out[:0], l.out[n:]...)
	resp.BHS.SetDataSegmentLength(len(resp.Data))
	if len(l.out) > 0 {
		resp.BHS.SetLoginStages(false, true, l.stage, 0)
		return Continue
	}
	if !l.fin.transit {
		resp.BHS.SetLoginStages(false, false, l.stage, 0)
		return Continue
	}
	resp.BHS.SetLoginStages(true, false, l.stage, l.fin.nsg)
	if !l.fin.done {
		l.stage = l.fin.nsg
		return Continue
	}
	tsih := l.tsih
	if tsih == 0 {
		tsih = 1
		if l.cfg.NewTSIH != nil {
			tsih = l.cfg.NewTSIH()
		}
		if tsih == 0 {
			return l.fail(resp, refuse(pdu.LoginOutOfResources, "no session handle available"))
		}
	}
	resp.BHS.SetTSIH(tsih)
	l.state = stateDone
	p := l.params
	p.FirstBurstLength = min(p.FirstBurstLength, p.MaxBurstLength)
	l.result = Result{
		Type:           l.sessType,
		InitiatorName:  l.initiatorName,
		InitiatorAlias: l.initiatorAlias,
		TargetName:     l.targetName,
		ISID:           l.isid,
		TSIH:           tsih,
		CID:            l.cid,
		ExpCmdSN:       req.CmdSN(),
		StatSN:         l.statSN,
		Params:         p,
	}
	return Done
}

// fail turns resp into a refusal and ends the login.
func (l *Login) fail(resp *pdu.PDU, e *loginError) Outcome {
	resp.Data = resp.Data[:0]
	resp.BHS.SetDataSegmentLength(0)
	resp.BHS.SetLoginStages(false, false, l.stage, 0)
	resp.BHS.SetLoginStatus(byte(e.status>>8), byte(e.status))
	l.state = stateFailed
	l.out = l.out[:0]
	attrs := []any{"initiator", l.initiatorName, "target", l.targetName, "remote", l.remote,
		"status", "0x" + strconv.FormatUint(uint64(e.status), 16), "reason", e.reason}
	if e.status == pdu.LoginAuthFailed {
		l.log.Warn("iscsi login authentication failed", attrs...)
	} else {
		l.log.Info("iscsi login refused", attrs...)
	}
	return Failed
}

func (l *Login) add(key, value string) { l.reply = append(l.reply, text.KV{Key: key, Value: value}) }

// process handles the keys of one complete request and decides whether
// the response transits.
func (l *Login) process(h *pdu.BHS, kvs []text.KV) (final, *loginError) {
	if err := l.declare(kvs); err != nil {
		return final{}, err
	}
	if !l.identified {
		if err := l.identify(); err != nil {
			return final{}, err
		}
	}
	want := final{transit: h.Transit(), nsg: h.NSG()}
	want.done = want.transit && want.nsg == pdu.StageFullFeature
	if l.stage == pdu.StageSecurity {
		return l.security(kvs, want)
	}
	return l.operational(kvs, want)
}

// identityKeys are declared by the initiator and may be repeated with the
// same value in later requests (libiscsi resends them in the operational
// stage after CHAP); a different value is a protocol error.
var identityKeys = map[string]bool{"InitiatorName": true, "InitiatorAlias": true, "TargetName": true, "SessionType": true}

func (l *Login) declare(kvs []text.KV) *loginError {
	for _, kv := range kvs {
		var dst *string
		switch kv.Key {
		case "InitiatorName":
			dst = &l.initiatorName
		case "InitiatorAlias":
			dst = &l.initiatorAlias
		case "TargetName":
			dst = &l.targetName
		case "SessionType":
			dst = &l.sessionType
		default:
			continue
		}
		cur := *dst
		if kv.Key == "SessionType" && l.identified {
			cur = l.sessType.String()
		}
		if kv.Key == "InitiatorAlias" && cur == "" {
			*dst = kv.Value
			continue
		}
		if l.identified || cur != "" {
			if kv.Value != cur {
				return refuse(pdu.LoginInitiatorError, kv.Key+" changed during login")
			}
			continue
		}
		*dst = kv.Value
	}
	return nil
}

// identify checks the leading declarations of the first complete request
// (RFC 7143 section 7.1.1, 11.13.5).
func (l *Login) identify() *loginError {
	if l.initiatorName == "" {
		return refuse(pdu.LoginMissingParameter, "InitiatorName missing")
	}
	if len(l.initiatorName) > maxNameLen || len(l.targetName) > maxNameLen {
		return refuse(pdu.LoginInitiatorError, "iSCSI name longer than 223 bytes")
	}
	switch l.sessionType {
	case "", "Normal":
		l.sessType = Normal
	case "Discovery":
		l.sessType = Discovery
	default:
		return refuse(pdu.LoginSessionTypeNotSupport, "unknown SessionType "+strconv.Quote(l.sessionType))
	}
	if l.sessType == Discovery {
		l.auth = &l.cfg.Discovery
	} else {
		if l.targetName == "" {
			return refuse(pdu.LoginMissingParameter, "TargetName missing in a normal session")
		}
		var ti TargetInfo
		ok := false
		if l.cfg.LookupTarget != nil {
			ti, ok = l.cfg.LookupTarget(l.targetName)
		}
		if !ok {
			return refuse(pdu.LoginNotFound, "unknown target")
		}
		if len(ti.Initiators) > 0 && !contains(ti.Initiators, l.initiatorName) {
			return refuse(pdu.LoginForbidden, "initiator not in the target's ACL")
		}
		l.auth = &ti.Auth
		l.add("TargetPortalGroupTag", strconv.Itoa(int(l.cfg.PortalGroupTag)))
		if ti.Alias != "" {
			l.add("TargetAlias", ti.Alias)
		}
	}
	if l.tsih != 0 && (l.cfg.SessionExists == nil || !l.cfg.SessionExists(l.initiatorName, l.isid, l.tsih)) {
		return refuse(pdu.LoginSessionDoesNotExist, "no session with TSIH "+strconv.Itoa(int(l.tsih)))
	}
	l.identified = true
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkKey vets a key that is not an identity key against the table:
// unknown keys are answered NotUnderstood (d == nil); target-only keys,
// keys outside stage and keys offered twice are protocol errors.
func (l *Login) checkKey(key string, phase text.Phase) (*text.KeyDef, *loginError) {
	d := text.LookupKey(key)
	if d == nil {
		l.add(key, text.NotUnderstood)
		return nil, nil
	}
	if d.Sender&text.SentByInitiator == 0 {
		return nil, refuse(pdu.LoginInitiatorError, key+" may only be sent by a target")
	}
	if d.Phase&phase == 0 {
		return nil, refuse(pdu.LoginInitiatorError, key+" is not allowed in this login stage")
	}
	if _, answering := l.pending[key]; !answering && l.seen[key] {
		return nil, refuse(pdu.LoginInitiatorError, key+" negotiated twice")
	}
	l.seen[key] = true
	return d, nil
}
