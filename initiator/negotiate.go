package initiator

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

type sessionKind int

const (
	normalSession sessionKind = iota
	discoverySession
)

// loginSpec is everything the negotiator needs; it holds no I/O.
type loginSpec struct {
	kind           sessionKind
	initiatorName  string
	initiatorAlias string
	targetName     string
	isid           [6]byte
	tsih           uint16
	cid            uint16
	itt            uint32
	cmdSN          uint32
	chap           *CHAP
	headerDigest   bool
	dataDigest     bool
	mrdsl          uint32
	maxBurst       uint32
	firstBurst     uint32
	immediateData  bool
	initialR2T     bool
	// rand supplies the mutual CHAP challenge; nil is crypto/rand.
	rand io.Reader
}

// ErrMutualCHAP is returned (wrapped) when the target's answer to the
// initiator's mutual CHAP challenge is wrong: the target does not know
// Options.CHAP.MutualSecret, or is not the target it claims to be.
var ErrMutualCHAP = errors.New("initiator: target failed mutual CHAP authentication")

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

// negotiator is the initiator side of the login phase (RFC 7143 section
// 6): a pure state machine fed Login Responses, producing Login Requests.
type negotiator struct {
	spec  loginSpec
	stage int
	auth  authStep
	steps int

	expStatSN uint32
	tsih      uint16
	pending   []byte // data of Continue-bit responses

	alg         chap.Algorithm
	mutualID    byte
	mutualChal  []byte
	offered     map[string]string // operational keys sent and not yet answered
	answers     map[string]string // the target's values
	replies     []text.KV         // answers to keys the target proposed
	params      Params
	targetAddr  string
	haveStatSN  bool
	finalStatSN uint32
	finalExpCmd uint32
	finalMaxCmd uint32
}

func newNegotiator(spec loginSpec) *negotiator {
	if spec.rand == nil {
		spec.rand = rand.Reader
	}
	return &negotiator{spec: spec, answers: map[string]string{}, offered: map[string]string{}}
}

func (n *negotiator) header(req *pdu.PDU, transit bool, nsg int) {
	req.Reset()
	req.BHS.SetOpcode(pdu.OpLoginReq)
	req.BHS.SetImmediate(true)
	req.BHS.SetLoginStages(transit, false, n.stage, nsg)
	if !transit {
		req.BHS[1] &^= 3
	}
	req.BHS.SetVersions(0, 0)
	req.BHS.SetISID(n.spec.isid)
	req.BHS.SetTSIH(n.spec.tsih)
	req.BHS.SetITT(n.spec.itt)
	req.BHS.SetCID(n.spec.cid)
	req.BHS.SetCmdSN(n.spec.cmdSN)
	req.BHS.SetExpStatSN(n.expStatSN)
}

// start fills the first Login Request.
func (n *negotiator) start(req *pdu.PDU) {
	n.stage = pdu.StageSecurity
	kvs := []text.KV{{Key: "InitiatorName", Value: n.spec.initiatorName}}
	if n.spec.initiatorAlias != "" {
		kvs = append(kvs, text.KV{Key: "InitiatorAlias", Value: n.spec.initiatorAlias})
	}
	if n.spec.kind == discoverySession {
		kvs = append(kvs, text.KV{Key: "SessionType", Value: "Discovery"})
	} else {
		kvs = append(kvs, text.KV{Key: "SessionType", Value: "Normal"},
			text.KV{Key: "TargetName", Value: n.spec.targetName})
	}
	if n.spec.chap != nil {
		n.auth = authMethodSent
		n.header(req, false, 0)
		kvs = append(kvs, text.KV{Key: "AuthMethod", Value: "CHAP,None"})
		if len(n.spec.chap.MutualSecret) > 0 {
			// Mutual CHAP means the target must prove itself: never let
			// it talk us down to None.
			kvs[len(kvs)-1].Value = "CHAP"
		}
	} else {
		n.auth = authNone
		n.header(req, true, pdu.StageOperational)
		kvs = append(kvs, text.KV{Key: "AuthMethod", Value: "None"})
	}
	req.Data = text.Append(req.Data, kvs...)
}

// step consumes a Login Response and fills the next request. done means
// the login succeeded and req is unused.
func (n *negotiator) step(resp, req *pdu.PDU) (done bool, err error) {
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
	if resp.BHS.ITT() != n.spec.itt {
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
		return n.stepSecurity(kvs, transit, nsg, req)
	case pdu.StageOperational:
		return n.stepOperational(resp, kvs, transit, nsg, req)
	}
	return false, &ProtocolError{Msg: "login response after the login finished"}
}

func (n *negotiator) stepSecurity(kvs []text.KV, transit bool, nsg int, req *pdu.PDU) (bool, error) {
	get := func(k string) string { v, _ := text.Get(kvs, k); return v }
	switch n.auth {
	case authNone:
		if m := get("AuthMethod"); m != "" && m != text.None {
			return false, errors.New("initiator: target requires authentication (AuthMethod=" + m + "); set CHAP credentials")
		}
		return n.leaveSecurity(transit, nsg, req)
	case authMethodSent:
		switch get("AuthMethod") {
		case "CHAP":
		case text.None:
			if len(n.spec.chap.MutualSecret) > 0 {
				return false, errors.New("initiator: target refused CHAP but mutual CHAP is configured")
			}
			n.auth = authTransit
			return n.leaveSecurity(transit, nsg, req)
		default:
			return false, errors.New("initiator: target did not accept AuthMethod CHAP (it answered " + strconv.Quote(get("AuthMethod")) + ")")
		}
		algs := n.spec.chap.Algorithms
		if len(algs) == 0 {
			algs = []chap.Algorithm{chap.SHA256, chap.MD5}
		}
		s := make([]string, len(algs))
		for i, a := range algs {
			s[i] = strconv.Itoa(int(a))
		}
		n.auth = authAlgSent
		n.header(req, false, 0)
		req.Data = text.Append(req.Data, text.KV{Key: "CHAP_A", Value: strings.Join(s, ",")})
		return false, nil
	case authAlgSent:
		return n.answerChallenge(get, req)
	case authResponseSent:
		if len(n.spec.chap.MutualSecret) > 0 {
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

func (n *negotiator) answerChallenge(get func(string) string, req *pdu.PDU) (bool, error) {
	c := n.spec.chap
	a, err := strconv.Atoi(get("CHAP_A"))
	if err != nil {
		return false, errors.New("initiator: target sent no usable CHAP_A (" + strconv.Quote(get("CHAP_A")) + ")")
	}
	n.alg = chap.Algorithm(a)
	algs := c.Algorithms
	if len(algs) == 0 {
		algs = []chap.Algorithm{chap.SHA256, chap.MD5}
	}
	ok := false
	for _, x := range algs {
		ok = ok || x == n.alg
	}
	if !ok {
		return false, errors.New("initiator: target chose CHAP algorithm " + n.alg.String() + ", which was not offered")
	}
	idv, err := text.ParseNumber(get("CHAP_I"))
	if err != nil || idv > 255 {
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
			if _, err := io.ReadFull(n.spec.rand, buf); err != nil {
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

func (n *negotiator) checkMutual(get func(string) string) error {
	c := n.spec.chap
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

func (n *negotiator) leaveSecurity(transit bool, nsg int, req *pdu.PDU) (bool, error) {
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
	req.Data = text.Append(req.Data, n.operationalOffer()...)
	return false, nil
}

func (n *negotiator) operationalOffer() []text.KV {
	digest := func(v bool) string {
		if v {
			return "CRC32C,None"
		}
		return "None"
	}
	u := func(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
	s := n.spec
	kvs := []text.KV{
		{Key: "HeaderDigest", Value: digest(s.headerDigest)},
		{Key: "DataDigest", Value: digest(s.dataDigest)},
		{Key: "MaxRecvDataSegmentLength", Value: u(s.mrdsl)},
	}
	if s.kind == normalSession {
		kvs = append(kvs,
			text.KV{Key: "InitialR2T", Value: text.FormatBool(s.initialR2T)},
			text.KV{Key: "ImmediateData", Value: text.FormatBool(s.immediateData)},
			text.KV{Key: "MaxBurstLength", Value: u(s.maxBurst)},
			text.KV{Key: "FirstBurstLength", Value: u(s.firstBurst)},
			text.KV{Key: "MaxOutstandingR2T", Value: "1"},
			text.KV{Key: "MaxConnections", Value: "1"},
			text.KV{Key: "DataPDUInOrder", Value: "Yes"},
			text.KV{Key: "DataSequenceInOrder", Value: "Yes"},
			text.KV{Key: "ErrorRecoveryLevel", Value: "0"},
			text.KV{Key: "DefaultTime2Wait", Value: "2"},
			text.KV{Key: "DefaultTime2Retain", Value: "0"},
		)
	}
	for _, kv := range kvs {
		if kv.Key != "MaxRecvDataSegmentLength" {
			n.offered[kv.Key] = kv.Value
		}
	}
	return kvs
}

// rfcDefaults are the values that hold when a key is not negotiated
// (RFC 7143 section 13).
var rfcDefaults = map[string]string{
	"HeaderDigest": "None", "DataDigest": "None",
	"InitialR2T": "Yes", "ImmediateData": "Yes",
	"MaxBurstLength": "262144", "FirstBurstLength": "65536",
	"MaxOutstandingR2T": "1", "MaxConnections": "1",
	"DataPDUInOrder": "Yes", "DataSequenceInOrder": "Yes",
	"ErrorRecoveryLevel": "0", "DefaultTime2Wait": "2", "DefaultTime2Retain": "20",
}

type keyKind int

const (
	kindMin keyKind = iota
	kindMax
	kindOr
	kindAnd
	kindDigest
)

var negotiable = map[string]keyKind{
	"HeaderDigest": kindDigest, "DataDigest": kindDigest,
	"InitialR2T": kindOr, "ImmediateData": kindAnd,
	"MaxBurstLength": kindMin, "FirstBurstLength": kindMin,
	"MaxOutstandingR2T": kindMin, "MaxConnections": kindMin,
	"DataPDUInOrder": kindOr, "DataSequenceInOrder": kindOr,
	"ErrorRecoveryLevel": kindMin, "DefaultTime2Wait": kindMax, "DefaultTime2Retain": kindMin,
}

func (n *negotiator) stepOperational(resp *pdu.PDU, kvs []text.KV, transit bool, nsg int, req *pdu.PDU) (bool, error) {
	n.replies = n.replies[:0]
	for _, kv := range kvs {
		if err := n.takeKey(kv); err != nil {
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
		n.finalStatSN = resp.BHS.StatSN()
		n.finalExpCmd = resp.BHS.ExpCmdSN()
		n.finalMaxCmd = resp.BHS.MaxCmdSN()
		n.stage = pdu.StageFullFeature
		return true, nil
	}
	n.header(req, true, pdu.StageFullFeature)
	req.Data = text.Append(req.Data, n.replies...)
	return false, nil
}

func (n *negotiator) takeKey(kv text.KV) error {
	switch kv.Key {
	case "TargetAlias":
		n.params.TargetAlias = kv.Value
		return nil
	case "TargetPortalGroupTag":
		v, err := text.ParseNumber(kv.Value)
		if err != nil || v > 0xffff {
			return &ProtocolError{Msg: "bad TargetPortalGroupTag " + strconv.Quote(kv.Value)}
		}
		n.params.TargetPortalGroupTag = uint16(v)
		return nil
	case "TargetAddress":
		n.targetAddr = kv.Value
		return nil
	case "MaxRecvDataSegmentLength":
		v, err := text.ParseNumber(kv.Value)
		if err != nil || v < 512 || v > 1<<24-1 {
			return &ProtocolError{Msg: "bad MaxRecvDataSegmentLength " + strconv.Quote(kv.Value)}
		}
		n.answers[kv.Key] = kv.Value
		return nil
	}
	kind, known := negotiable[kv.Key]
	ours, offered := n.offered[kv.Key]
	if !known {
		if n.spec.kind == discoverySession || kv.Value == text.NotUnderstood || kv.Value == text.Irrelevant {
			return nil
		}
		n.replies = append(n.replies, text.KV{Key: kv.Key, Value: text.NotUnderstood})
		return nil
	}
	if offered {
		delete(n.offered, kv.Key)
		switch kv.Value {
		case text.Reject, text.Irrelevant, text.NotUnderstood:
			return nil // the default holds
		}
		if kind == kindDigest {
			if kv.Value != "None" && kv.Value != "CRC32C" || !strings.Contains(ours, kv.Value) {
				return &ProtocolError{Msg: kv.Key + "=" + kv.Value + " was not offered"}
			}
		} else if _, err := combine(kind, ours, kv.Value); err != nil {
			return &ProtocolError{Msg: kv.Key + ": " + err.Error()}
		}
		n.answers[kv.Key] = kv.Value
		return nil
	}
	// The target proposes a key we did not send: answer it.
	if n.spec.kind == discoverySession && kind != kindDigest {
		n.replies = append(n.replies, text.KV{Key: kv.Key, Value: text.Irrelevant})
		return nil
	}
	mine := n.ourValue(kv.Key)
	var answer string
	if kind == kindDigest {
		answer = text.Reject
		for _, c := range strings.Split(kv.Value, ",") {
			if c == "None" || (c == "CRC32C" && strings.Contains(mine, "CRC32C")) {
				answer = c
				break
			}
		}
	} else {
		v, err := combine(kind, mine, kv.Value)
		if err != nil {
			answer = text.Reject
		} else {
			answer = v
		}
	}
	if answer != text.Reject {
		n.answers[kv.Key] = answer
	}
	n.replies = append(n.replies, text.KV{Key: kv.Key, Value: answer})
	return nil
}

// ourValue is what this initiator wants for a key it has not offered.
func (n *negotiator) ourValue(key string) string {
	switch key {
	case "HeaderDigest":
		if n.spec.headerDigest {
			return "CRC32C,None"
		}
		return "None"
	case "DataDigest":
		if n.spec.dataDigest {
			return "CRC32C,None"
		}
		return "None"
	case "MaxConnections", "MaxOutstandingR2T":
		return "1"
	case "ErrorRecoveryLevel", "DefaultTime2Retain":
		return "0"
	}
	return rfcDefaults[key]
}

// combine applies a key's result function (RFC 7143 section 6.2.1).
func combine(kind keyKind, a, b string) (string, error) {
	switch kind {
	case kindOr, kindAnd:
		x, err := text.ParseBool(a)
		if err != nil {
			return "", err
		}
		y, err := text.ParseBool(b)
		if err != nil {
			return "", err
		}
		if kind == kindOr {
			return text.FormatBool(x || y), nil
		}
		return text.FormatBool(x && y), nil
	case kindMin, kindMax:
		x, err := text.ParseNumber(a)
		if err != nil {
			return "", err
		}
		y, err := text.ParseNumber(b)
		if err != nil {
			return "", err
		}
		if (kind == kindMin) == (y < x) {
			x = y
		}
		return strconv.FormatUint(x, 10), nil
	}
	return "", errors.New("not a combinable key")
}

// finish computes Params from what both sides said.
func (n *negotiator) finish() error {
	val := func(key string) string {
		mine := n.ourValue(key)
		switch key {
		case "MaxBurstLength":
			mine = strconv.FormatUint(uint64(n.spec.maxBurst), 10)
		case "FirstBurstLength":
			mine = strconv.FormatUint(uint64(n.spec.firstBurst), 10)
		case "InitialR2T":
			mine = text.FormatBool(n.spec.initialR2T)
		case "ImmediateData":
			mine = text.FormatBool(n.spec.immediateData)
		}
		theirs, ok := n.answers[key]
		if !ok {
			theirs = rfcDefaults[key]
		}
		if negotiable[key] == kindDigest {
			return theirs
		}
		if n.spec.kind == discoverySession {
			return theirs
		}
		v, err := combine(negotiable[key], mine, theirs)
		if err != nil {
			return rfcDefaults[key]
		}
		return v
	}
	num := func(key string) uint32 { v, _ := text.ParseNumber(val(key)); return uint32(v) }
	bl := func(key string) bool { v, _ := text.ParseBool(val(key)); return v }
	p := &n.params
	p.HeaderDigest = val("HeaderDigest") == "CRC32C"
	p.DataDigest = val("DataDigest") == "CRC32C"
	p.MaxRecvDataSegmentLength = n.spec.mrdsl
	p.TargetMaxRecvDataSegmentLength = rfcMRDSL
	if v, ok := n.answers["MaxRecvDataSegmentLength"]; ok {
		x, _ := text.ParseNumber(v)
		p.TargetMaxRecvDataSegmentLength = uint32(x)
	}
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
	if n.spec.kind == normalSession {
		if p.MaxBurstLength < 512 || p.FirstBurstLength < 512 || p.MaxOutstandingR2T == 0 {
			return &ProtocolError{Msg: "negotiated burst lengths below 512 bytes or MaxOutstandingR2T=0"}
		}
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
