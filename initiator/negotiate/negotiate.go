package negotiate

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// Params are the negotiated session and connection parameters
// (RFC 7143 section 13).
type Params struct {
	HeaderDigest, DataDigest bool
	// MaxRecvDataSegmentLength is what this initiator declared: the most
	// the target may send in one PDU.
	MaxRecvDataSegmentLength uint32
	// TargetMaxRecvDataSegmentLength is what the target declared: the
	// most this initiator may send in one PDU.
	TargetMaxRecvDataSegmentLength                                           uint32
	MaxBurstLength, FirstBurstLength, MaxOutstandingR2T                      uint32
	InitialR2T, ImmediateData, DataPDUInOrder, DataSequenceInOrder           bool
	DefaultTime2Wait, DefaultTime2Retain, ErrorRecoveryLevel, MaxConnections uint32
	// TargetAlias and TargetPortalGroupTag, when the target declared them.
	TargetAlias          string
	TargetPortalGroupTag uint16
}

// Result is what a successful login established.
type Result struct {
	Params Params
	TSIH   uint16
	// StatSN, ExpCmdSN and MaxCmdSN are those of the final Login Response.
	StatSN, ExpCmdSN, MaxCmdSN uint32
	// TargetAddress is what the target declared, if anything.
	TargetAddress string
	// Keys holds the outcome of every key the operational stage settled
	// or the target declared, by name: the negotiated value, or
	// NotUnderstood or Reject where the other side refused an offer.
	Keys map[string]string
}

// maxLoginSteps bounds a login exchange against a target that never
// transits.
const maxLoginSteps = 32

type authStep int

const (
	authNone authStep = iota // no CHAP: AuthMethod=None offered
	authMethodSent
	authAlgSent
	authResponseSent
	authTransit // authentication done, waiting for T=1
)

// Negotiator is the initiator side of one connection's login: fed Login
// Responses, it produces Login Requests. It is not safe for concurrent use.
type Negotiator struct {
	spec  Spec
	stage int
	auth  authStep
	steps int

	expStatSN uint32
	tsih      uint16
	pending   []byte // data of Continue-bit responses

	authOffer  string // the AuthMethod list sent
	algOffer   string // the CHAP_A list sent
	alg        chap.Algorithm
	mutualID   byte
	mutualChal []byte

	offered map[string]string // operational keys sent and not yet answered
	settled map[string]string // outcomes and the target's declarations (Result.Keys)
	ownDecl map[string]string // our declarations
	replies []text.KV         // answers to keys the target proposed
	result  Result
}

// New checks spec and returns a negotiator ready to Start.
func New(spec Spec) (*Negotiator, error) {
	if spec.Offer == nil {
		spec.Offer = DefaultOffer(spec.Type)
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if spec.Rand == nil {
		spec.Rand = rand.Reader
	}
	return &Negotiator{spec: spec, offered: map[string]string{}, settled: map[string]string{}, ownDecl: map[string]string{}}, nil
}

// Result returns what the login established; valid once Step reported done.
func (n *Negotiator) Result() Result { return n.result }

// local is the initiator's own value of key.
func (n *Negotiator) local(key string) string {
	if v, ok := n.spec.Values[key]; ok {
		return v
	}
	return InitiatorValue(key)
}

func (n *Negotiator) header(req *pdu.PDU, transit bool, nsg int) {
	req.Reset()
	req.BHS.SetOpcode(pdu.OpLoginReq)
	req.BHS.SetImmediate(true)
	req.BHS.SetLoginStages(transit, false, n.stage, nsg)
	if !transit {
		req.BHS[1] &^= 3
	}
	req.BHS.SetVersions(0, 0)
	req.BHS.SetISID(n.spec.ISID)
	req.BHS.SetTSIH(n.spec.TSIH)
	req.BHS.SetITT(n.spec.ITT)
	req.BHS.SetCID(n.spec.CID)
	req.BHS.SetCmdSN(n.spec.CmdSN)
	req.BHS.SetExpStatSN(n.expStatSN)
}

// Start fills the first Login Request.
func (n *Negotiator) Start(req *pdu.PDU) {
	n.stage = pdu.StageSecurity
	kvs := []text.KV{{Key: "InitiatorName", Value: n.spec.InitiatorName}}
	if n.spec.InitiatorAlias != "" {
		kvs = append(kvs, text.KV{Key: "InitiatorAlias", Value: n.spec.InitiatorAlias})
	}
	if n.spec.Type == Discovery {
		kvs = append(kvs, text.KV{Key: "SessionType", Value: "Discovery"})
	} else {
		kvs = append(kvs, text.KV{Key: "SessionType", Value: "Normal"},
			text.KV{Key: "TargetName", Value: n.spec.TargetName})
	}
	switch {
	case n.spec.CHAP == nil:
		n.auth = authNone
		n.authOffer = text.None
		n.header(req, true, pdu.StageOperational)
	case len(n.spec.CHAP.MutualSecret) > 0:
		// Mutual CHAP means the target must prove itself: never let it
		// talk us down to None.
		n.auth = authMethodSent
		n.authOffer = "CHAP"
		n.header(req, false, 0)
	default:
		n.auth = authMethodSent
		n.authOffer = "CHAP,None"
		n.header(req, false, 0)
	}
	kvs = append(kvs, text.KV{Key: "AuthMethod", Value: n.authOffer})
	req.Data = text.Append(req.Data, kvs...)
}

// Step consumes a Login Response and fills the next request. done means
// the login succeeded and req is unused.
func (n *Negotiator) Step(resp, req *pdu.PDU) (done bool, err error) {
	n.steps++
	if n.steps > maxLoginSteps {
		return false, &ProtocolError{Msg: "login did not finish after " + strconv.Itoa(maxLoginSteps) + " exchanges"}
	}
	if op := resp.BHS.Opcode(); op != pdu.OpLoginResp {
		return false, &ProtocolError{Msg: "expected Login Response, got " + op.String()}
	}
	if class, detail := resp.BHS.LoginStatus(); class != 0 {
		e := &LoginError{Class: class, Detail: detail}
		if class == 1 {
			if kvs, _, perr := text.Parse(resp.Data, true); perr == nil {
				e.TargetAddress, _ = text.Get(kvs, "TargetAddress")
			}
		}
		return false, e
	}
	if resp.BHS.ITT() != n.spec.ITT {
		return false, &ProtocolError{Msg: "login response with a foreign ITT"}
	}
	if resp.BHS.VersionMinOrActive() != 0 {
		return false, &ProtocolError{Msg: "target chose an unknown iSCSI version " + strconv.Itoa(int(resp.BHS.VersionMinOrActive()))}
	}
	n.expStatSN = resp.BHS.StatSN() + 1
	n.tsih = resp.BHS.TSIH()
	if resp.BHS.CSG() != n.stage {
		return false, &ProtocolError{Msg: fmt.Sprintf("login response for stage %d while in stage %d", resp.BHS.CSG(), n.stage)}
	}
	n.pending = append(n.pending, resp.Data...)
	if resp.BHS.Continue() {
		if resp.BHS.Transit() {
			return false, &ProtocolError{Msg: "login response with both T and C set"}
		}
		// RFC 7143 section 6.2: answer with an empty request to get the rest.
		n.header(req, false, 0)
		return false, nil
	}
	kvs, _, err := text.Parse(n.pending, false)
	n.pending = n.pending[:0]
	if err != nil {
		return false, &ProtocolError{Msg: "login text: " + err.Error()}
	}
	transit, nsg := resp.BHS.Transit(), resp.BHS.NSG()
	switch n.stage {
	case pdu.StageSecurity:
		for _, kv := range kvs {
			if err := n.declared(kv); err != nil {
				return false, err
			}
		}
		return n.stepSecurity(kvs, transit, nsg, req)
	case pdu.StageOperational:
		return n.stepOperational(resp, kvs, transit, nsg, req)
	}
	return false, &ProtocolError{Msg: "login response after the login finished"}
}

// declared records the target's declarations that may come in any login
// stage (the first response carries TargetPortalGroupTag, whatever the
// stage); other keys are left to the stage.
func (n *Negotiator) declared(kv text.KV) error {
	switch kv.Key {
	case "TargetAlias", "TargetPortalGroupTag", "TargetAddress":
	default:
		return nil
	}
	d := text.LookupKey(kv.Key)
	if d.Check(kv.Value) != nil {
		return &ProtocolError{Msg: "target declared a malformed " + kv.Key + "=" + strconv.Quote(kv.Value)}
	}
	n.settled[kv.Key] = kv.Value
	switch kv.Key {
	case "TargetAlias":
		n.result.Params.TargetAlias = kv.Value
	case "TargetPortalGroupTag":
		v, _ := d.Number(kv.Value)
		n.result.Params.TargetPortalGroupTag = uint16(v)
	case "TargetAddress":
		n.result.TargetAddress = kv.Value
	}
	return nil
}

func (n *Negotiator) stepSecurity(kvs []text.KV, transit bool, nsg int, req *pdu.PDU) (bool, error) {
	get := func(k string) string { v, _ := text.Get(kvs, k); return v }
	method := text.LookupKey("AuthMethod")
	switch n.auth {
	case authNone:
		if m := get("AuthMethod"); m != "" {
			if v, err := method.Outcome(n.authOffer, m); err != nil || v != text.None {
				return false, errors.New("initiator: target requires authentication (AuthMethod=" + m + "); set CHAP credentials")
			}
		}
		return n.leaveSecurity(transit, nsg, req)
	case authMethodSent:
		m := get("AuthMethod")
		v, err := method.Outcome(n.authOffer, m)
		if err != nil {
			return false, errors.New("initiator: target did not accept AuthMethod " + n.authOffer + " (it answered " + strconv.Quote(m) + "); check the target's authentication settings")
		}
		if v == text.None {
			n.auth = authTransit
			return n.leaveSecurity(transit, nsg, req)
		}
		algs := n.algorithms()
		s := make([]string, len(algs))
		for i, a := range algs {
			s[i] = strconv.Itoa(int(a))
		}
		n.algOffer = strings.Join(s, ",")
		n.auth = authAlgSent
		n.header(req, false, 0)
		req.Data = text.Append(req.Data, text.KV{Key: "CHAP_A", Value: n.algOffer})
		return false, nil
	case authAlgSent:
		return n.answerChallenge(get, req)
	case authResponseSent:
		if len(n.spec.CHAP.MutualSecret) > 0 {
			if err := n.checkMutual(get); err != nil {
				return false, err
			}
		}
		n.auth = authTransit
		return n.leaveSecurity(transit, nsg, req)
	case authTransit:
		return n.leaveSecurity(transit, nsg, req)
	}
	return false, &ProtocolError{Msg: "bad authentication state"}
}

func (n *Negotiator) algorithms() []chap.Algorithm {
	if algs := n.spec.CHAP.Algorithms; len(algs) > 0 {
		return algs
	}
	return []chap.Algorithm{chap.SHA256, chap.MD5}
}

func (n *Negotiator) answerChallenge(get func(string) string, req *pdu.PDU) (bool, error) {
	c := n.spec.CHAP
	// CHAP_A is a list key: the target must pick one of ours.
	v, err := text.LookupKey("CHAP_A").Outcome(n.algOffer, get("CHAP_A"))
	if err != nil {
		return false, errors.New("initiator: target chose CHAP algorithm " + strconv.Quote(get("CHAP_A")) + ", which was not offered (" + n.algOffer + ")")
	}
	a, _ := strconv.Atoi(v)
	n.alg = chap.Algorithm(a)
	idv, err := text.LookupKey("CHAP_I").Number(get("CHAP_I"))
	if err != nil {
		return false, errors.New("initiator: target sent a bad CHAP_I " + strconv.Quote(get("CHAP_I")))
	}
	challenge, err := chap.Decode(get("CHAP_C"))
	if err != nil {
		return false, fmt.Errorf("initiator: target sent a bad CHAP_C: %w", err)
	}
	r, err := chap.Response(n.alg, byte(idv), c.Secret, challenge)
	if err != nil {
		return false, fmt.Errorf("initiator: chap response: %w", err)
	}
	kvs := []text.KV{{Key: "CHAP_N", Value: c.User}, {Key: "CHAP_R", Value: chap.EncodeHex(r)}}
	if len(c.MutualSecret) > 0 {
		buf := make([]byte, 1+chap.ChallengeLen)
		for {
			if _, err := io.ReadFull(n.spec.Rand, buf); err != nil {
				return false, fmt.Errorf("initiator: mutual chap challenge: %w", err)
			}
			// A challenge equal to the target's would let it reflect ours
			// back at us (RFC 7143 section 12.1.3).
			if !bytes.Equal(buf[1:], challenge) {
				break
			}
		}
		n.mutualID, n.mutualChal = buf[0], buf[1:]
		kvs = append(kvs, text.KV{Key: "CHAP_I", Value: strconv.Itoa(int(n.mutualID))},
			text.KV{Key: "CHAP_C", Value: chap.EncodeHex(n.mutualChal)})
	}
	n.auth = authResponseSent
	n.header(req, true, pdu.StageOperational)
	req.Data = text.Append(req.Data, kvs...)
	return false, nil
}

func (n *Negotiator) checkMutual(get func(string) string) error {
	c := n.spec.CHAP
	name, resp := get("CHAP_N"), get("CHAP_R")
	if resp == "" {
		return fmt.Errorf("%w: it sent no CHAP_R", ErrMutualCHAP)
	}
	if c.MutualUser != "" && name != c.MutualUser {
		return fmt.Errorf("%w: it named itself %q, want %q", ErrMutualCHAP, name, c.MutualUser)
	}
	r, err := chap.Decode(resp)
	if err != nil {
		return fmt.Errorf("%w: bad CHAP_R: %v", ErrMutualCHAP, err)
	}
	if !chap.Verify(n.alg, n.mutualID, c.MutualSecret, n.mutualChal, r) {
		return fmt.Errorf("%w: its response does not match MutualSecret; check the target's mutual secret", ErrMutualCHAP)
	}
	return nil
}

func (n *Negotiator) leaveSecurity(transit bool, nsg int, req *pdu.PDU) (bool, error) {
	if n.auth == authMethodSent || n.auth == authAlgSent {
		return false, &ProtocolError{Msg: "target left the security stage before CHAP finished"}
	}
	if !transit {
		n.header(req, true, pdu.StageOperational)
		return false, nil
	}
	if nsg != pdu.StageOperational {
		return false, &ProtocolError{Msg: "target skipped the operational stage (NSG " + strconv.Itoa(nsg) + ")"}
	}
	n.stage = pdu.StageOperational
	n.header(req, true, pdu.StageFullFeature)
	for _, key := range n.spec.Offer {
		v := n.local(key)
		req.Data = text.Append(req.Data, text.KV{Key: key, Value: v})
		if d := text.LookupKey(key); d != nil && d.Kind == text.KindDeclarative {
			n.ownDecl[key] = v
			continue
		}
		n.offered[key] = v
	}
	return false, nil
}

func (n *Negotiator) stepOperational(resp *pdu.PDU, kvs []text.KV, transit bool, nsg int, req *pdu.PDU) (bool, error) {
	n.replies = n.replies[:0]
	for _, kv := range kvs {
		if err := n.take(kv); err != nil {
			return false, err
		}
	}
	if transit && len(n.replies) == 0 {
		if nsg != pdu.StageFullFeature {
			return false, &ProtocolError{Msg: "target transits to stage " + strconv.Itoa(nsg) + " from the operational stage"}
		}
		if err := n.finish(); err != nil {
			return false, err
		}
		n.result.TSIH = n.tsih
		n.result.StatSN = resp.BHS.StatSN()
		n.result.ExpCmdSN = resp.BHS.ExpCmdSN()
		n.result.MaxCmdSN = resp.BHS.MaxCmdSN()
		n.stage = pdu.StageFullFeature
		return true, nil
	}
	n.header(req, true, pdu.StageFullFeature)
	req.Data = text.Append(req.Data, n.replies...)
	return false, nil
}

// take handles one key of an operational-stage response: the answer to an
// offer, a declaration, or a proposal of the target that needs an answer.
// The rules are wire/text's, the ones target/login applies.
func (n *Negotiator) take(kv text.KV) error {
	if err := n.declared(kv); err != nil {
		return err
	}
	offer, offered := n.offered[kv.Key]
	if offered {
		delete(n.offered, kv.Key)
	}
	d := text.LookupKey(kv.Key)
	if d == nil {
		switch {
		case offered:
			// An extension key we offered: whatever came back, mostly
			// NotUnderstood, is its outcome.
			n.settled[kv.Key] = kv.Value
		case !text.IsReserved(kv.Value):
			n.replies = append(n.replies, text.KV{Key: kv.Key, Value: text.NotUnderstood})
			n.settled[kv.Key] = text.NotUnderstood
		}
		return nil
	}
	if d.Sender&text.SentByTarget == 0 {
		return &ProtocolError{Msg: "target sent " + kv.Key + ", which only an initiator may send"}
	}
	if d.Phase&text.PhaseOperational == 0 {
		return &ProtocolError{Msg: "target sent " + kv.Key + " in the operational stage"}
	}
	if d.Kind == text.KindDeclarative {
		if d.Check(kv.Value) != nil {
			return &ProtocolError{Msg: "target declared a malformed " + kv.Key + "=" + strconv.Quote(kv.Value)}
		}
		n.settled[kv.Key] = kv.Value
		return nil
	}
	if offered {
		v, err := d.Outcome(offer, kv.Value)
		switch {
		case errors.Is(err, text.ErrRejected), errors.Is(err, text.ErrNotUnderstood):
			// The offer did not take: the default holds (RFC 7143 section 6.2).
			n.settled[kv.Key] = kv.Value
		case err != nil:
			return &ProtocolError{Msg: kv.Key + "=" + kv.Value + " does not answer the offer " + offer}
		default:
			n.settled[kv.Key] = v
		}
		return nil
	}
	if _, done := n.settled[kv.Key]; done {
		return &ProtocolError{Msg: "target negotiated " + kv.Key + " twice"}
	}
	if text.IsReserved(kv.Value) {
		return &ProtocolError{Msg: "target answered " + kv.Key + "=" + kv.Value + ", which was not offered"}
	}
	// The target proposes a key we did not send: answer it.
	if n.spec.Type == Discovery && d.IrrelevantInDiscovery {
		n.replies = append(n.replies, text.KV{Key: kv.Key, Value: text.Irrelevant})
		n.settled[kv.Key] = text.Irrelevant
		return nil
	}
	if !d.AnswerRequired(kv.Value) {
		// AND with No, OR with Yes: the offer alone settles it, and the
		// target counts an answer as a second offer (section 6.2.2).
		n.settled[kv.Key] = kv.Value
		return nil
	}
	answer := d.Answer(kv.Value, n.local(kv.Key))
	n.replies = append(n.replies, text.KV{Key: kv.Key, Value: answer})
	n.settled[kv.Key] = answer
	return nil
}

// value is the outcome of key for Params: what was settled, else the RFC
// default. Refusals and Irrelevant leave the default in force.
func (n *Negotiator) value(key string) string {
	d := text.LookupKey(key)
	v, ok := n.settled[key]
	if !ok || text.IsReserved(v) {
		if offer, sent := n.offered[key]; sent && !ok && !d.AnswerRequired(offer) {
			// AND with No, OR with Yes: no answer needed.
			return offer
		}
		return d.Default
	}
	return v
}

// finish computes Params from what both sides said.
func (n *Negotiator) finish() error {
	num := func(key string) uint32 { return parse32(n.value(key)) }
	bl := func(key string) bool { return n.value(key) == "Yes" }
	p := &n.result.Params
	p.HeaderDigest = n.value("HeaderDigest") == "CRC32C"
	p.DataDigest = n.value("DataDigest") == "CRC32C"
	// Both sides declare this key: ours bounds what the target sends,
	// the target's (settled) what we send; undeclared means the default.
	p.MaxRecvDataSegmentLength = parse32(text.LookupKey("MaxRecvDataSegmentLength").Default)
	if v, ok := n.ownDecl["MaxRecvDataSegmentLength"]; ok {
		p.MaxRecvDataSegmentLength = parse32(v)
	}
	p.TargetMaxRecvDataSegmentLength = num("MaxRecvDataSegmentLength")
	p.MaxBurstLength = num("MaxBurstLength")
	p.FirstBurstLength = num("FirstBurstLength")
	p.MaxOutstandingR2T = num("MaxOutstandingR2T")
	p.MaxConnections = num("MaxConnections")
	p.ErrorRecoveryLevel = num("ErrorRecoveryLevel")
	p.DefaultTime2Wait = num("DefaultTime2Wait")
	p.DefaultTime2Retain = num("DefaultTime2Retain")
	p.InitialR2T = bl("InitialR2T")
	p.ImmediateData = bl("ImmediateData")
	p.DataPDUInOrder = bl("DataPDUInOrder")
	p.DataSequenceInOrder = bl("DataSequenceInOrder")
	n.result.Keys = n.settled
	if n.spec.Type == Normal {
		if p.FirstBurstLength > p.MaxBurstLength {
			p.FirstBurstLength = p.MaxBurstLength
		}
		if !p.DataPDUInOrder || !p.DataSequenceInOrder {
			return &ProtocolError{Msg: "target insists on out-of-order data, which tandem's initiator does not support"}
		}
		if p.ErrorRecoveryLevel != 0 {
			return &ProtocolError{Msg: "target negotiated ErrorRecoveryLevel above 0"}
		}
	}
	return nil
}

// parse32 decodes a number that the key table already range-checked.
func parse32(s string) uint32 {
	v, _ := text.ParseNumber(s)
	return uint32(v)
}
