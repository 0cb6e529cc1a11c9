package text

import (
	"errors"
	"strconv"
	"strings"
)

// Kind is how a key's value is settled between the two sides
// (RFC 7143 section 6.2).
type Kind uint8

const (
	// KindDeclarative keys state the sender's own value; nothing is negotiated.
	KindDeclarative Kind = iota
	// KindList keys carry a preference list; the responder answers with the
	// first offered value it supports (section 6.2.1).
	KindList
	// KindBoolAnd keys settle on Yes only if both sides say Yes.
	KindBoolAnd
	// KindBoolOr keys settle on Yes if either side says Yes.
	KindBoolOr
	// KindNumMin keys settle on the smaller of the two values.
	KindNumMin
	// KindNumMax keys settle on the larger of the two values.
	KindNumMax
)

var kindNames = [...]string{"Declarative", "List", "BoolAnd", "BoolOr", "NumMin", "NumMax"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Phase is a set of session phases in which a key may be sent.
type Phase uint8

// Phases. The login stages are the CSG values of RFC 7143 section 11.12.
const (
	PhaseSecurity Phase = 1 << iota
	PhaseOperational
	PhaseFullFeature

	// PhaseLogin is "IO" (initialize only) in RFC 7143 section 13: any login stage.
	PhaseLogin = PhaseSecurity | PhaseOperational
	// PhaseAll is "ALL": login and full feature phase.
	PhaseAll = PhaseLogin | PhaseFullFeature
)

// Sender is the set of sides that may send (originate or declare) a key.
type Sender uint8

// Senders.
const (
	SentByInitiator Sender = 1 << iota
	SentByTarget
	SentByBoth = SentByInitiator | SentByTarget
)

// KeyDef describes one text key: the rows of RFC 7143 section 13 plus
// AuthMethod and the CHAP keys (section 12), iSCSIProtocolLevel (RFC 7144)
// and the RFC 3720 marker keys that section 13.26 obsoletes.
type KeyDef struct {
	Name string
	Kind Kind
	// Default is the value in force when the key is not negotiated; empty
	// when the RFC gives none.
	Default string
	// Numeric values must lie in [Min, Max].
	Numeric  bool
	Min, Max uint64
	// Values lists the values the RFC defines for list and enumerated
	// declarative keys; nil means free text.
	Values []string
	// Phase says where the key may appear; a key outside it is a protocol error.
	Phase Phase
	// Sender says who may send the key.
	Sender Sender
	// LeadingOnly keys ("LO") may only be negotiated on a session's leading connection.
	LeadingOnly bool
	// IrrelevantInDiscovery keys do not matter in a discovery session.
	IrrelevantInDiscovery bool
}

const maxSegment = 1<<24 - 1

// keyTable is ordered as RFC 7143 section 13, then the extras.
var keyTable = []KeyDef{
	{Name: "AuthMethod", Kind: KindList, Default: None, Values: []string{"KRB5", "SRP", "SPKM1", "SPKM2", "CHAP", None}, Phase: PhaseSecurity, Sender: SentByBoth},
	{Name: "HeaderDigest", Kind: KindList, Default: None, Values: []string{"CRC32C", None}, Phase: PhaseOperational, Sender: SentByBoth},
	{Name: "DataDigest", Kind: KindList, Default: None, Values: []string{"CRC32C", None}, Phase: PhaseOperational, Sender: SentByBoth},
	{Name: "MaxConnections", Kind: KindNumMin, Default: "1", Numeric: true, Min: 1, Max: 65535, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "SendTargets", Kind: KindDeclarative, Phase: PhaseFullFeature, Sender: SentByInitiator},
	{Name: "TargetName", Kind: KindDeclarative, Phase: PhaseAll, Sender: SentByBoth},
	{Name: "InitiatorName", Kind: KindDeclarative, Phase: PhaseLogin, Sender: SentByInitiator},
	{Name: "TargetAlias", Kind: KindDeclarative, Phase: PhaseAll, Sender: SentByTarget},
	{Name: "InitiatorAlias", Kind: KindDeclarative, Phase: PhaseAll, Sender: SentByInitiator},
	{Name: "TargetAddress", Kind: KindDeclarative, Phase: PhaseAll, Sender: SentByTarget},
	{Name: "TargetPortalGroupTag", Kind: KindDeclarative, Numeric: true, Min: 0, Max: 65535, Phase: PhaseLogin, Sender: SentByTarget},
	{Name: "InitialR2T", Kind: KindBoolOr, Default: "Yes", Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "ImmediateData", Kind: KindBoolAnd, Default: "Yes", Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "MaxRecvDataSegmentLength", Kind: KindDeclarative, Default: "8192", Numeric: true, Min: 512, Max: maxSegment, Phase: PhaseOperational | PhaseFullFeature, Sender: SentByBoth},
	{Name: "MaxBurstLength", Kind: KindNumMin, Default: "262144", Numeric: true, Min: 512, Max: maxSegment, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "FirstBurstLength", Kind: KindNumMin, Default: "65536", Numeric: true, Min: 512, Max: maxSegment, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "DefaultTime2Wait", Kind: KindNumMax, Default: "2", Numeric: true, Min: 0, Max: 3600, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true},
	{Name: "DefaultTime2Retain", Kind: KindNumMin, Default: "20", Numeric: true, Min: 0, Max: 3600, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true},
	{Name: "MaxOutstandingR2T", Kind: KindNumMin, Default: "1", Numeric: true, Min: 1, Max: 65535, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "DataPDUInOrder", Kind: KindBoolOr, Default: "Yes", Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "DataSequenceInOrder", Kind: KindBoolOr, Default: "Yes", Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	{Name: "ErrorRecoveryLevel", Kind: KindNumMin, Default: "0", Numeric: true, Min: 0, Max: 2, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true},
	{Name: "SessionType", Kind: KindDeclarative, Default: "Normal", Values: []string{"Discovery", "Normal"}, Phase: PhaseLogin, Sender: SentByInitiator, LeadingOnly: true},
	// RFC 7143 section 13.23.
	{Name: "TaskReporting", Kind: KindList, Default: "RFC3720", Values: []string{"RFC3720", "ResponseFence", "FastAbort"}, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	// RFC 7144 section 2.1: tandem implements level 1 (RFC 7143).
	{Name: "iSCSIProtocolLevel", Kind: KindNumMin, Default: "1", Numeric: true, Min: 0, Max: 31, Phase: PhaseOperational, Sender: SentByBoth, LeadingOnly: true, IrrelevantInDiscovery: true},
	// RFC 3720 markers, obsoleted by RFC 7143 section 13.26: nobody uses them.
	{Name: "IFMarker", Kind: KindBoolAnd, Default: "No", Phase: PhaseOperational, Sender: SentByBoth},
	{Name: "OFMarker", Kind: KindBoolAnd, Default: "No", Phase: PhaseOperational, Sender: SentByBoth},
	{Name: "IFMarkInt", Kind: KindDeclarative, Default: "2048~2048", Phase: PhaseOperational, Sender: SentByBoth},
	{Name: "OFMarkInt", Kind: KindDeclarative, Default: "2048~2048", Phase: PhaseOperational, Sender: SentByBoth},
	// CHAP (RFC 7143 section 12.1.3). CHAP_A is a list the initiator offers;
	// the rest are exchanged values.
	{Name: "CHAP_A", Kind: KindList, Phase: PhaseSecurity, Sender: SentByBoth},
	{Name: "CHAP_I", Kind: KindDeclarative, Numeric: true, Min: 0, Max: 255, Phase: PhaseSecurity, Sender: SentByBoth},
	{Name: "CHAP_C", Kind: KindDeclarative, Phase: PhaseSecurity, Sender: SentByBoth},
	{Name: "CHAP_N", Kind: KindDeclarative, Phase: PhaseSecurity, Sender: SentByBoth},
	{Name: "CHAP_R", Kind: KindDeclarative, Phase: PhaseSecurity, Sender: SentByBoth},
}

var keyIndex = func() map[string]*KeyDef {
	m := make(map[string]*KeyDef, len(keyTable))
	for i := range keyTable {
		m[keyTable[i].Name] = &keyTable[i]
	}
	return m
}()

// LookupKey returns the definition of a key, or nil for a key tandem does
// not know (which a responder answers with NotUnderstood).
func LookupKey(name string) *KeyDef { return keyIndex[name] }

// KeyDefs returns a copy of the key table in RFC order.
func KeyDefs() []KeyDef { return append([]KeyDef(nil), keyTable...) }

// IsPrivateKey reports whether name is a vendor-specific "X-" key or a
// public extension "X#" key (RFC 7143 section 6.1, 13.5).
func IsPrivateKey(name string) bool {
	return strings.HasPrefix(name, "X-") || strings.HasPrefix(name, "X#")
}

// IsReserved reports whether v is one of the answer-only constants
// Reject, Irrelevant or NotUnderstood.
func IsReserved(v string) bool { return v == Reject || v == Irrelevant || v == NotUnderstood }

// Errors of negotiation helpers.
var (
	// ErrBadValue: the value is malformed or out of the key's range.
	ErrBadValue = errors.New("text: value malformed or out of range")
	// ErrRejected: the other side answered Reject.
	ErrRejected = errors.New("text: key rejected by the other side")
	// ErrNotUnderstood: the other side does not know the key.
	ErrNotUnderstood = errors.New("text: key not understood by the other side")
	// ErrNotAdmissible: the answer breaks the key's result function
	// (RFC 7143 section 6.2.2: a protocol error).
	ErrNotAdmissible = errors.New("text: answer not admissible for the offer")
)

// ParseList splits a comma-separated list value. Empty items make it
// malformed (nil, false).
func ParseList(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	items := strings.Split(s, ",")
	for _, it := range items {
		if it == "" {
			return nil, false
		}
	}
	return items, true
}

// SelectList returns the first value of offer that supported contains
// (RFC 7143 section 6.2.1: the originator's order wins).
func SelectList(offer, supported []string) (string, bool) {
	for _, o := range offer {
		for _, s := range supported {
			if o == s {
				return o, true
			}
		}
	}
	return "", false
}

// Check validates a value the peer sent for d (syntax and range). List
// values only need to be well formed: unknown items are ignored.
func (d *KeyDef) Check(v string) error {
	if len(v) > MaxValueLen {
		return ErrBadValue
	}
	switch d.Kind {
	case KindBoolAnd, KindBoolOr:
		if _, err := ParseBool(v); err != nil {
			return ErrBadValue
		}
		return nil
	case KindList:
		if _, ok := ParseList(v); !ok {
			return ErrBadValue
		}
		return nil
	}
	if d.Numeric {
		_, err := d.Number(v)
		return err
	}
	if d.Values != nil && d.Kind == KindDeclarative {
		for _, x := range d.Values {
			if v == x {
				return nil
			}
		}
		return ErrBadValue
	}
	return nil
}

// Number decodes a numeric value of d and checks its range.
func (d *KeyDef) Number(v string) (uint64, error) {
	n, err := ParseNumber(v)
	if err != nil || n < d.Min || n > d.Max {
		return 0, ErrBadValue
	}
	return n, nil
}

// Combine applies d's result function to two valid values (Bool and Num
// kinds). It is the negotiated outcome when one side offered a and the
// other would have chosen b.
func (d *KeyDef) Combine(a, b string) (string, error) {
	switch d.Kind {
	case KindBoolAnd, KindBoolOr:
		x, err1 := ParseBool(a)
		y, err2 := ParseBool(b)
		if err1 != nil || err2 != nil {
			return "", ErrBadValue
		}
		if d.Kind == KindBoolAnd {
			return FormatBool(x && y), nil
		}
		return FormatBool(x || y), nil
	case KindNumMin, KindNumMax:
		x, err1 := d.Number(a)
		y, err2 := d.Number(b)
		if err1 != nil || err2 != nil {
			return "", ErrBadValue
		}
		if (d.Kind == KindNumMin) == (y < x) {
			x = y
		}
		return strconv.FormatUint(x, 10), nil
	}
	return "", errors.New("text: " + d.Name + " has no result function")
}

// Answer is the responder's reply to offer. For list keys local is the
// comma-separated list of values the responder supports; for Bool and Num
// keys it is the value the responder would choose on its own. A malformed
// or out-of-range offer, or a list with no common value, is answered
// Reject. Declarative keys get no answer ("").
func (d *KeyDef) Answer(offer, local string) string {
	if d.Kind == KindDeclarative {
		return ""
	}
	if IsReserved(offer) || d.Check(offer) != nil {
		return Reject
	}
	if d.Kind == KindList {
		o, _ := ParseList(offer)
		s, _ := ParseList(local)
		v, ok := SelectList(o, s)
		if !ok {
			return Reject
		}
		return v
	}
	v, err := d.Combine(offer, local)
	if err != nil {
		return Reject
	}
	return v
}

// AnswerRequired reports whether the responder must answer offer: not for
// declarations, nor when the offer alone settles a Boolean (AND with No,
// OR with Yes; RFC 7143 section 6.2.2).
func (d *KeyDef) AnswerRequired(offer string) bool {
	switch d.Kind {
	case KindDeclarative:
		return false
	case KindBoolAnd:
		return offer != "No"
	case KindBoolOr:
		return offer != "Yes"
	}
	return true
}

// Outcome is the originator's view: the negotiated value after it offered
// offer and the responder answered answer ("" when no answer came, which
// only AnswerRequired=false offers allow). Irrelevant yields the default.
func (d *KeyDef) Outcome(offer, answer string) (string, error) {
	switch answer {
	case Reject:
		return "", ErrRejected
	case NotUnderstood:
		return "", ErrNotUnderstood
	case Irrelevant:
		return d.Default, nil
	case "":
		if d.AnswerRequired(offer) {
			return "", ErrNotAdmissible
		}
		return offer, nil
	}
	if d.Check(answer) != nil {
		return "", ErrNotAdmissible
	}
	switch d.Kind {
	case KindDeclarative:
		return answer, nil
	case KindList:
		o, _ := ParseList(offer)
		if strings.Contains(answer, ",") {
			return "", ErrNotAdmissible
		}
		if _, ok := SelectList([]string{answer}, o); !ok {
			return "", ErrNotAdmissible
		}
		return answer, nil
	case KindBoolAnd, KindBoolOr:
		// The answer must be reachable from the offer: AND can only
		// lower Yes, OR can only raise No.
		if offer == answer || (d.Kind == KindBoolAnd && offer == "Yes") || (d.Kind == KindBoolOr && offer == "No") {
			return answer, nil
		}
		return "", ErrNotAdmissible
	}
	o, err := d.Number(offer)
	if err != nil {
		return "", ErrBadValue
	}
	a, _ := d.Number(answer)
	if (d.Kind == KindNumMin && a > o) || (d.Kind == KindNumMax && a < o) {
		return "", ErrNotAdmissible
	}
	return strconv.FormatUint(a, 10), nil
}
