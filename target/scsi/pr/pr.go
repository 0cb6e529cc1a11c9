package pr

// Port is an I_T nexus: the SCSI initiator port (iSCSI initiator name and
// ISID) and the SCSI target port. Two Ports are the same nexus when
// Initiator, ISID and RelTgtPort are equal; TargetPort is kept for
// reports and logs only, because REGISTER AND MOVE names target ports by
// relative identifier alone (SPC-4 6.15.4).
type Port struct {
	// Initiator is the iSCSI initiator name, normalized to lower case as
	// RFC 3722 stringprep does; TransportIDs are lowered the same way.
	Initiator string
	ISID      [6]byte
	// TargetPort names the target port (e.g. "iqn...,t,0x0001").
	TargetPort string
	// RelTgtPort is the relative target port identifier (SPC-4 7.8.5.6),
	// unique per target port of the SCSI target device.
	RelTgtPort uint16
}

// Same reports whether p and q are the same I_T nexus.
func (p Port) Same(q Port) bool {
	return p.RelTgtPort == q.RelTgtPort && p.ISID == q.ISID && p.Initiator == q.Initiator
}

// Selector selects I_T nexuses: one nexus, or with wildcards every ISID of
// an initiator name (a format 00 TransportID) and every target port (a
// registration made with ALL_TG_PT).
type Selector struct {
	Port
	// AnyISID matches every initiator port with Port.Initiator's name.
	AnyISID bool
	// AllTgPt matches every target port.
	AllTgPt bool
}

// Matches reports whether the nexus p is selected.
func (s Selector) Matches(p Port) bool {
	return s.Initiator == p.Initiator &&
		(s.AnyISID || s.ISID == p.ISID) &&
		(s.AllTgPt || s.RelTgtPort == p.RelTgtPort)
}

// overlaps reports whether some nexus is selected by both s and t.
func (s Selector) overlaps(t Selector) bool {
	return s.Initiator == t.Initiator &&
		(s.AnyISID || t.AnyISID || s.ISID == t.ISID) &&
		(s.AllTgPt || t.AllTgPt || s.RelTgtPort == t.RelTgtPort)
}

// Registration is a reservation key registered for the nexuses its
// Selector matches. At most one registration matches any nexus.
type Registration struct {
	Selector
	Key uint64
}

// Type is a persistent reservation type (SPC-4 table 178 "Persistent
// reservation type codes").
type Type uint8

// Reservation types.
const (
	WriteExclusive                 Type = 0x1
	ExclusiveAccess                Type = 0x3
	WriteExclusiveRegistrantsOnly  Type = 0x5
	ExclusiveAccessRegistrantsOnly Type = 0x6
	WriteExclusiveAllRegistrants   Type = 0x7
	ExclusiveAccessAllRegistrants  Type = 0x8
)

// scopeLU is the only scope SPC-4 keeps (LU_SCOPE, 6.15.3.3).
const scopeLU = 0x0

// typeMask has bit t set for every valid Type t.
const typeMask = 1<<WriteExclusive | 1<<ExclusiveAccess | 1<<WriteExclusiveRegistrantsOnly |
	1<<ExclusiveAccessRegistrantsOnly | 1<<WriteExclusiveAllRegistrants | 1<<ExclusiveAccessAllRegistrants

// Valid reports whether t is one of the six defined types.
func (t Type) Valid() bool { return t < 16 && typeMask&(uint16(1)<<t) != 0 }

// AllRegistrants reports whether every registrant holds the reservation
// (SPC-4 5.12.10: types 7h and 8h).
func (t Type) AllRegistrants() bool {
	return t == WriteExclusiveAllRegistrants || t == ExclusiveAccessAllRegistrants
}

// RegistrantsOnly reports whether registrants other than the holder may
// access the medium (types 5h to 8h).
func (t Type) RegistrantsOnly() bool {
	return t >= WriteExclusiveRegistrantsOnly && t <= ExclusiveAccessAllRegistrants
}

// exclusiveAccess reports whether reads conflict too (EA family).
func (t Type) exclusiveAccess() bool {
	return t == ExclusiveAccess || t == ExclusiveAccessRegistrantsOnly || t == ExclusiveAccessAllRegistrants
}

func (t Type) String() string {
	switch t {
	case WriteExclusive:
		return "WE"
	case ExclusiveAccess:
		return "EA"
	case WriteExclusiveRegistrantsOnly:
		return "WE-RO"
	case ExclusiveAccessRegistrantsOnly:
		return "EA-RO"
	case WriteExclusiveAllRegistrants:
		return "WE-AR"
	case ExclusiveAccessAllRegistrants:
		return "EA-AR"
	}
	return "invalid"
}

// Reservation is the persistent reservation of the logical unit.
type Reservation struct {
	Type Type
	// Holder is the nexus that holds a reservation of a type other than
	// all registrants; every registrant holds an all registrants one.
	Holder Port
}

// Reason says why a command ended in CHECK CONDITION. The SCSI layer maps
// it to sense data through SenseKey, ASC and ASCQ.
type Reason uint8

// Reasons. All have the sense key ILLEGAL REQUEST.
const (
	ReasonNone Reason = iota
	// ReasonInvalidFieldInCDB is 24h/00h INVALID FIELD IN CDB.
	ReasonInvalidFieldInCDB
	// ReasonInvalidFieldInParameterList is 26h/00h.
	ReasonInvalidFieldInParameterList
	// ReasonParameterListLengthError is 1Ah/00h.
	ReasonParameterListLengthError
	// ReasonInsufficientRegistrationResources is 55h/04h.
	ReasonInsufficientRegistrationResources
	// ReasonInvalidRelease is 26h/04h INVALID RELEASE OF PERSISTENT
	// RESERVATION (SPC-4 5.12.11.2.2: RELEASE with the wrong type).
	ReasonInvalidRelease
)

// Sense key ILLEGAL REQUEST and UNIT ATTENTION (SPC-4 table 47).
const (
	SenseKeyIllegalRequest = 0x05
	SenseKeyUnitAttention  = 0x06
)

var reasonCodes = [...][2]byte{
	ReasonNone:                              {0, 0},
	ReasonInvalidFieldInCDB:                 {0x24, 0x00},
	ReasonInvalidFieldInParameterList:       {0x26, 0x00},
	ReasonParameterListLengthError:          {0x1a, 0x00},
	ReasonInsufficientRegistrationResources: {0x55, 0x04},
	ReasonInvalidRelease:                    {0x26, 0x04},
}

// SenseKey is the sense key of r (0 for ReasonNone).
func (r Reason) SenseKey() byte {
	if r == ReasonNone || int(r) >= len(reasonCodes) {
		return 0
	}
	return SenseKeyIllegalRequest
}

// ASC is the additional sense code of r.
func (r Reason) ASC() byte {
	if int(r) >= len(reasonCodes) {
		return 0
	}
	return reasonCodes[r][0]
}

// ASCQ is the additional sense code qualifier of r.
func (r Reason) ASCQ() byte {
	if int(r) >= len(reasonCodes) {
		return 0
	}
	return reasonCodes[r][1]
}

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonInvalidFieldInCDB:
		return "invalid field in cdb"
	case ReasonInvalidFieldInParameterList:
		return "invalid field in parameter list"
	case ReasonParameterListLengthError:
		return "parameter list length error"
	case ReasonInsufficientRegistrationResources:
		return "insufficient registration resources"
	case ReasonInvalidRelease:
		return "invalid release of persistent reservation"
	}
	return "unknown"
}

// Unit attention additional sense codes (ASC 2Ah) a State asks for; the
// sense key is UNIT ATTENTION.
const (
	ASCReservationsPreempted   = 0x2a
	ASCQReservationsPreempted  = 0x03
	ASCReservationsReleased    = 0x2a
	ASCQReservationsReleased   = 0x04
	ASCRegistrationsPreempted  = 0x2a
	ASCQRegistrationsPreempted = 0x05
)

// UA is a unit attention to establish for every nexus To matches, except
// the nexus Except when it is not nil (the one that sent the command,
// when its own registration covers several nexuses).
type UA struct {
	To        Selector
	Except    *Port
	ASC, ASCQ byte
}

// AppliesTo reports whether the unit attention is for nexus p.
func (u UA) AppliesTo(p Port) bool {
	return u.To.Matches(p) && (u.Except == nil || !u.Except.Same(p))
}

// SCSI status codes (SAM-5 5.3).
const (
	StatusGood                = 0x00
	StatusCheckCondition      = 0x02
	StatusReservationConflict = 0x18
)

// Result is the outcome of a command and the side effects the caller
// performs (see the package documentation for the order).
type Result struct {
	// Status is StatusGood, StatusCheckCondition or
	// StatusReservationConflict.
	Status byte
	// Sense says why Status is CHECK CONDITION.
	Sense Reason
	// Data is the parameter data of PERSISTENT RESERVE IN, already cut to
	// the allocation length.
	Data []byte
	// UAs are the unit attentions to establish.
	UAs []UA
	// Abort lists the nexuses whose tasks PREEMPT AND ABORT aborts (all
	// their tasks except the PREEMPT AND ABORT command itself).
	Abort []Selector
	// Persist is set when the state changed while APTPL is (or was) in
	// effect: save MarshalBinary before completing the command.
	Persist bool
}

// Conflict reports whether r is RESERVATION CONFLICT.
func (r Result) Conflict() bool { return r.Status == StatusReservationConflict }

var (
	good     = Result{Status: StatusGood}
	conflict = Result{Status: StatusReservationConflict}
)

func checkCondition(r Reason) Result { return Result{Status: StatusCheckCondition, Sense: r} }

// Config sets the capabilities of a State.
type Config struct {
	// MaxRegistrations bounds the number of registrations; more fail
	// with INSUFFICIENT REGISTRATION RESOURCES. Zero means 256.
	MaxRegistrations int
	// NoPersistence is set when the logical unit cannot save its state:
	// APTPL=1 is then refused (INVALID FIELD IN PARAMETER LIST) and
	// REPORT CAPABILITIES clears PTPL_C.
	NoPersistence bool
}

// DefaultMaxRegistrations is the registration limit when Config leaves it
// zero: far beyond any cluster, small enough to bound READ FULL STATUS.
const DefaultMaxRegistrations = 256

// State is the reservation state of one logical unit.
type State struct {
	cfg Config
	// generation is PRgeneration (SPC-4 6.16.2).
	generation uint32
	// regs in registration order, which READ KEYS reports.
	regs []Registration
	// res is the persistent reservation when hasRes.
	res    Reservation
	hasRes bool
	// aptpl is the last APTPL bit of a successful register-type action.
	aptpl bool
	// spc2 is the holder of an SPC-2 RESERVE when hasSPC2.
	spc2    Port
	hasSPC2 bool
}

// New returns the empty state of a logical unit with the default Config.
func New() *State { return NewConfig(Config{}) }

// NewConfig returns the empty state of a logical unit.
func NewConfig(cfg Config) *State {
	if cfg.MaxRegistrations <= 0 {
		cfg.MaxRegistrations = DefaultMaxRegistrations
	}
	return &State{cfg: cfg}
}

// Generation returns PRgeneration.
func (s *State) Generation() uint32 { return s.generation }

// APTPL reports whether the state persists through power loss.
func (s *State) APTPL() bool { return s.aptpl }

// Registrations returns a copy of the registrations in registration order.
func (s *State) Registrations() []Registration {
	return append([]Registration(nil), s.regs...)
}

// Reservation returns the persistent reservation, if any.
func (s *State) Reservation() (Reservation, bool) { return s.res, s.hasRes }

// SPC2Holder returns the holder of an SPC-2 reservation, if any.
func (s *State) SPC2Holder() (Port, bool) { return s.spc2, s.hasSPC2 }

// lookup returns the index of the registration of nexus p, or -1.
func (s *State) lookup(p Port) int {
	for i := range s.regs {
		if s.regs[i].Matches(p) {
			return i
		}
	}
	return -1
}

// holds reports whether nexus p, registered as regs[i] (i may be -1),
// holds the persistent reservation (SPC-4 5.12.10).
func (s *State) holds(p Port, i int) bool {
	if !s.hasRes || i < 0 {
		return false
	}
	if s.res.Type.AllRegistrants() {
		return true
	}
	return s.res.Holder.Same(p)
}

// regHolds reports whether registration i covers the reservation holder.
func (s *State) regHolds(i int) bool {
	if !s.hasRes {
		return false
	}
	if s.res.Type.AllRegistrants() {
		return true
	}
	return s.regs[i].Matches(s.res.Holder)
}

// removeReg deletes registration i and releases a reservation that no
// longer has a holder: the holder's registration went, or the last
// registrant of an all registrants reservation (SPC-4 5.12.11.2.3). It
// reports whether the reservation was released that way.
func (s *State) removeReg(i int) (released bool) {
	held := s.regHolds(i)
	s.regs = append(s.regs[:i], s.regs[i+1:]...)
	if !held {
		return false
	}
	if s.res.Type.AllRegistrants() && len(s.regs) > 0 {
		return false
	}
	s.hasRes = false
	s.res = Reservation{}
	return true
}

// Reset clears the SPC-2 reservation, as a LOGICAL UNIT RESET, a target
// reset or a power on does (SPC-2 5.5.1). Persistent reservations and
// registrations are kept (SPC-4 5.12.1).
func (s *State) Reset() {
	s.hasSPC2 = false
	s.spc2 = Port{}
}

// NexusLoss clears the SPC-2 reservation when nexus p held it (SAM-5 6.3.4
// I_T nexus loss). Persistent reservations are kept.
func (s *State) NexusLoss(p Port) {
	if s.hasSPC2 && s.spc2.Same(p) {
		s.Reset()
	}
}

// PowerOn applies a power on to a restored state: the SPC-2 reservation
// goes, PRgeneration restarts at zero, and registrations and the
// reservation survive only if APTPL was set (SPC-4 5.12.5, 6.16.2).
func (s *State) PowerOn() {
	s.Reset()
	s.generation = 0
	if !s.aptpl {
		s.regs = nil
		s.hasRes = false
		s.res = Reservation{}
	}
}
