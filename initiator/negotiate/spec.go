package negotiate

import (
	"errors"
	"io"
	"strconv"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/text"
)

// SessionType is the SessionType key (RFC 7143 section 13.21).
type SessionType int

// Session types.
const (
	Normal SessionType = iota
	Discovery
)

// CHAP holds CHAP credentials (RFC 7143 section 12.1.3).
type CHAP struct {
	// User and Secret answer the target's challenge.
	User   string
	Secret []byte
	// MutualUser and MutualSecret, when MutualSecret is set, make the
	// initiator challenge the target too and check its answer: the
	// target must reply with CHAP_N=MutualUser (when MutualUser is not
	// empty) and a response computed with MutualSecret.
	MutualUser   string
	MutualSecret []byte
	// Algorithms offered in order of preference; default SHA-256, MD5.
	Algorithms []chap.Algorithm
}

// Spec is everything a login needs; it holds no I/O.
type Spec struct {
	Type           SessionType
	InitiatorName  string
	InitiatorAlias string
	// TargetName is required in a normal session.
	TargetName string
	ISID       [6]byte
	TSIH       uint16
	CID        uint16
	ITT        uint32
	CmdSN      uint32
	// CHAP credentials; nil offers AuthMethod=None only.
	CHAP *CHAP
	// Values are the initiator's own values of operational keys, in the
	// text form of RFC 7143 section 13: for list keys the values it
	// supports in order of preference ("CRC32C,None"), for Boolean and
	// numerical keys the value it would choose alone, for declarations
	// the value declared. A key missing here takes InitiatorValue.
	// Extension keys ("X-...") may be given too, to be offered.
	Values map[string]string
	// Offer lists the keys proposed in the first operational request, in
	// order; nil means DefaultOffer(Type). Keys the target proposes are
	// answered from the same values, offered or not.
	Offer []string
	// Rand supplies the mutual CHAP challenge; nil is crypto/rand.
	Rand io.Reader
}

// normalOffer is what a normal session proposes: every key whose outcome
// the initiator cares about, so that the target's answer settles it in
// one round trip.
var normalOffer = []string{
	"HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength",
	"InitialR2T", "ImmediateData", "MaxBurstLength", "FirstBurstLength",
	"MaxOutstandingR2T", "MaxConnections", "DataPDUInOrder", "DataSequenceInOrder",
	"ErrorRecoveryLevel", "DefaultTime2Wait", "DefaultTime2Retain",
}

// DefaultOffer is the keys a session of type t proposes when Spec.Offer
// is nil. A discovery session only needs digests and its segment limit:
// the session-wide keys are irrelevant there (RFC 7143 section 13).
func DefaultOffer(t SessionType) []string {
	if t == Discovery {
		return []string{"HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength"}
	}
	return append([]string(nil), normalOffer...)
}

// initiatorOverrides are where the initiator's own value differs from the
// RFC default. DefaultTime2Retain is 0 because the initiator runs at
// ErrorRecoveryLevel 0 and never reinstates a session, so the target need
// not keep tasks for it.
var initiatorOverrides = map[string]string{
	"DefaultTime2Retain": "0",
}

// InitiatorValue is the value the initiator holds for key when
// Spec.Values does not give one: the RFC default from wire/text's key
// table, except where initiatorOverrides says why not.
func InitiatorValue(key string) string {
	if v, ok := initiatorOverrides[key]; ok {
		return v
	}
	if d := text.LookupKey(key); d != nil {
		return d.Default
	}
	return ""
}

// Digests is the HeaderDigest or DataDigest value that offers CRC32C
// (preferred, with None as fallback) when on, or None only.
func Digests(on bool) string {
	if on {
		return "CRC32C,None"
	}
	return text.None
}

// identityKeys are declared in the first request from Spec's fields.
var identityKeys = map[string]bool{"InitiatorName": true, "InitiatorAlias": true, "TargetName": true, "SessionType": true}

// validate checks that every offered key is one an initiator may propose
// in the operational stage and that every value is well formed.
func (s *Spec) validate() error {
	if s.InitiatorName == "" {
		return errors.New("initiator: login needs an InitiatorName; set one")
	}
	if s.Type == Normal && s.TargetName == "" {
		return errors.New("initiator: a normal session needs a TargetName; pick one from Discover")
	}
	for key, v := range s.Values {
		d := text.LookupKey(key)
		if d == nil {
			continue
		}
		if err := d.Check(v); err != nil {
			return errors.New("initiator: value " + strconv.Quote(v) + " of " + key + " is malformed or out of range; fix it")
		}
	}
	for _, key := range s.Offer {
		if identityKeys[key] {
			return errors.New("initiator: " + key + " is declared from the login's own fields, not offered; remove it from Offer")
		}
		d := text.LookupKey(key)
		if d == nil {
			if _, ok := s.Values[key]; !ok {
				return errors.New("initiator: offered key " + key + " is unknown and has no value in Values; add one")
			}
			continue
		}
		if d.Sender&text.SentByInitiator == 0 {
			return errors.New("initiator: " + key + " may only be sent by a target; remove it from Offer")
		}
		if d.Phase&text.PhaseOperational == 0 {
			return errors.New("initiator: " + key + " may not be sent in the operational stage; remove it from Offer")
		}
	}
	return nil
}
