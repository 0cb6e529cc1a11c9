package pr

import "encoding/binary"

// PERSISTENT RESERVE OUT service actions (SPC-4 table 180).
const (
	opPROut = 0x5f

	saRegister       = 0x0
	saReserve        = 0x1
	saRelease        = 0x2
	saClear          = 0x3
	saPreempt        = 0x4
	saPreemptAbort   = 0x5
	saRegisterIgnore = 0x6
	saRegisterMove   = 0x7
)

// basicParamLen is the length of the basic PERSISTENT RESERVE OUT
// parameter list (SPC-4 6.15.3), and specIPTHeaderLen the offset of the
// TransportIDs when SPEC_I_PT is set.
const (
	basicParamLen    = 24
	specIPTHeaderLen = 28
)

// outParams is the decoded basic parameter list (SPC-4 table 182).
type outParams struct {
	key, sark              uint64
	specIPT, allTgPt, aptp bool
	tids                   []byte // TransportID list when specIPT
}

// Out performs a PERSISTENT RESERVE OUT command received on nexus p. cdb
// is the 10-byte CDB; param is the Data-Out buffer, which may be shorter
// than the CDB's PARAMETER LIST LENGTH (that is a length error).
func (s *State) Out(p Port, cdb []byte, param []byte) Result {
	if len(cdb) < 10 || cdb[0] != opPROut {
		return checkCondition(ReasonInvalidFieldInCDB)
	}
	// SPC-2 5.5.1 / SPC-3 5.6.1: while a RESERVE reservation exists every
	// PERSISTENT RESERVE command conflicts, whoever sends it.
	if s.hasSPC2 {
		return conflict
	}
	sa := cdb[1] & 0x1f
	scope := cdb[2] >> 4
	typ := Type(cdb[2] & 0x0f)
	plen := binary.BigEndian.Uint32(cdb[5:9])
	if sa > saRegisterMove {
		return checkCondition(ReasonInvalidFieldInCDB)
	}
	if uint64(len(param)) < uint64(plen) {
		return checkCondition(ReasonParameterListLengthError)
	}
	param = param[:plen]
	aptplBefore := s.aptpl
	var (
		r       Result
		changed bool
	)
	if sa == saRegisterMove {
		r, changed = s.registerAndMove(p, scope, typ, param)
	} else {
		if len(param) < basicParamLen {
			return checkCondition(ReasonParameterListLengthError)
		}
		a := outParams{
			key:     binary.BigEndian.Uint64(param[0:8]),
			sark:    binary.BigEndian.Uint64(param[8:16]),
			specIPT: param[20]&0x08 != 0,
			allTgPt: param[20]&0x04 != 0,
			aptp:    param[20]&0x01 != 0,
		}
		if a.specIPT {
			// SPC-4 6.15.3: SPEC_I_PT is valid for REGISTER only.
			if sa != saRegister {
				return checkCondition(ReasonInvalidFieldInParameterList)
			}
			if len(param) < specIPTHeaderLen {
				return checkCondition(ReasonParameterListLengthError)
			}
			n := binary.BigEndian.Uint32(param[24:28])
			if uint64(n)+specIPTHeaderLen != uint64(len(param)) {
				return checkCondition(ReasonParameterListLengthError)
			}
			a.tids = param[specIPTHeaderLen:]
		} else if len(param) != basicParamLen {
			return checkCondition(ReasonParameterListLengthError)
		}
		switch sa {
		case saRegister, saRegisterIgnore:
			if a.aptp && s.cfg.NoPersistence {
				return checkCondition(ReasonInvalidFieldInParameterList)
			}
			r, changed = s.register(p, a, sa == saRegisterIgnore)
		case saReserve:
			r, changed = s.reserve(p, a, scope, typ)
		case saRelease:
			r, changed = s.release(p, a, scope, typ)
		case saClear:
			r, changed = s.clear(p, a)
		case saPreempt, saPreemptAbort:
			r, changed = s.preempt(p, a, scope, typ, sa == saPreemptAbort)
		}
	}
	if r.Status == StatusGood && changed && (aptplBefore || s.aptpl) {
		r.Persist = true
	}
	return r
}

// keyed returns the index of the registration of p when its key is key;
// ok is false when p is unregistered or the key differs, which is a
// RESERVATION CONFLICT for every service action but REGISTER AND IGNORE
// EXISTING KEY (SPC-4 5.12.7, 5.12.9, 5.12.11).
func (s *State) keyed(p Port, key uint64) (int, bool) {
	i := s.lookup(p)
	return i, i >= 0 && s.regs[i].Key == key
}

// covers reports whether every nexus b selects is selected by a.
func covers(a, b Selector) bool {
	return a.Initiator == b.Initiator &&
		(a.AnyISID || !b.AnyISID && a.ISID == b.ISID) &&
		(a.AllTgPt || !b.AllTgPt && a.RelTgtPort == b.RelTgtPort)
}

// register performs REGISTER and REGISTER AND IGNORE EXISTING KEY
// (SPC-4 5.12.7, tables 40 and 41).
func (s *State) register(p Port, a outParams, ignore bool) (Result, bool) {
	i := s.lookup(p)
	if i < 0 {
		if !ignore && a.key != 0 {
			return conflict, false
		}
		if a.sark == 0 {
			if a.specIPT {
				return checkCondition(ReasonInvalidFieldInParameterList), false
			}
			return good, false // unregistering an unregistered nexus: nothing
		}
		add := []Selector{{Port: p, AllTgPt: a.allTgPt}}
		if a.specIPT {
			var ok bool
			if add, ok = addTransportIDs(add, p, a.allTgPt, a.tids); !ok {
				return checkCondition(ReasonInvalidFieldInParameterList), false
			}
		}
		// With ALL_TG_PT or SPEC_I_PT a new registration can cover a nexus
		// that is already registered through another target port.
		for _, n := range add {
			for _, r := range s.regs {
				if n.overlaps(r.Selector) {
					return checkCondition(ReasonInvalidFieldInParameterList), false
				}
			}
		}
		if len(s.regs)+len(add) > s.cfg.MaxRegistrations {
			return checkCondition(ReasonInsufficientRegistrationResources), false
		}
		for _, n := range add {
			s.regs = append(s.regs, Registration{Selector: n, Key: a.sark})
		}
		s.aptpl = a.aptp
		s.generation++
		return good, true
	}
	if !ignore && a.key != s.regs[i].Key {
		return conflict, false
	}
	if a.specIPT {
		return checkCondition(ReasonInvalidFieldInParameterList), false
	}
	var r Result
	if a.sark == 0 {
		typ := s.res.Type
		if s.removeReg(i) && typ.RegistrantsOnly() && !typ.AllRegistrants() {
			// SPC-4 5.12.11.2.3: the holder of a registrants only
			// reservation unregistered; tell the remaining registrants.
			r.UAs = s.uasExcept(nil, ASCReservationsReleased, ASCQReservationsReleased)
		}
	} else {
		// ALL_TG_PT is ignored for a registered nexus: the key changes
		// for the registration as it was made.
		s.regs[i].Key = a.sark
	}
	s.aptpl = a.aptp
	s.generation++
	return r, true
}

// addTransportIDs appends the nexuses named by the SPEC_I_PT TransportID
// list to add (which holds p's own registration), merging duplicates.
func addTransportIDs(add []Selector, p Port, allTgPt bool, tids []byte) ([]Selector, bool) {
	for len(tids) > 0 {
		sel, n, ok := parseTransportID(tids)
		if !ok {
			return nil, false
		}
		tids = tids[n:]
		// The registration is for the nexus between that initiator port
		// and the target port that received the command (SPC-4 5.12.7).
		sel.TargetPort, sel.RelTgtPort, sel.AllTgPt = p.TargetPort, p.RelTgtPort, allTgPt
		merged := false
		for k := range add {
			if covers(add[k], sel) {
				merged = true
				break
			}
			if covers(sel, add[k]) {
				add[k] = sel
				merged = true
				break
			}
		}
		if !merged {
			add = append(add, sel)
		}
	}
	return add, true
}

// uasExcept returns a unit attention for every registered nexus except p
// (all of them when p is nil).
func (s *State) uasExcept(p *Port, asc, ascq byte) []UA {
	var uas []UA
	for _, r := range s.regs {
		ua := UA{To: r.Selector, ASC: asc, ASCQ: ascq}
		if p != nil && r.Matches(*p) {
			if !r.AnyISID && !r.AllTgPt {
				continue
			}
			q := *p
			ua.Except = &q
		}
		uas = append(uas, ua)
	}
	return uas
}

// reserve performs RESERVE (SPC-4 5.12.9).
func (s *State) reserve(p Port, a outParams, scope byte, typ Type) (Result, bool) {
	if scope != scopeLU || !typ.Valid() {
		return checkCondition(ReasonInvalidFieldInCDB), false
	}
	i, ok := s.keyed(p, a.key)
	if !ok {
		return conflict, false
	}
	if s.hasRes {
		// The holder may repeat its RESERVE but not change the type;
		// anyone else conflicts.
		if s.holds(p, i) && s.res.Type == typ {
			return good, false
		}
		return conflict, false
	}
	s.res = Reservation{Type: typ, Holder: p}
	s.hasRes = true
	return good, true
}

// release performs RELEASE (SPC-4 5.12.11.2.2).
func (s *State) release(p Port, a outParams, scope byte, typ Type) (Result, bool) {
	i, ok := s.keyed(p, a.key)
	if !ok {
		return conflict, false
	}
	if !s.holds(p, i) {
		return good, false // no reservation, or another nexus holds it
	}
	if scope != scopeLU || typ != s.res.Type {
		return checkCondition(ReasonInvalidRelease), false
	}
	var r Result
	if s.res.Type.RegistrantsOnly() {
		r.UAs = s.uasExcept(&p, ASCReservationsReleased, ASCQReservationsReleased)
	}
	s.hasRes = false
	s.res = Reservation{}
	return r, true
}

// clear performs CLEAR (SPC-4 5.12.11.2.6).
func (s *State) clear(p Port, a outParams) (Result, bool) {
	if _, ok := s.keyed(p, a.key); !ok {
		return conflict, false
	}
	r := Result{UAs: s.uasExcept(&p, ASCReservationsPreempted, ASCQReservationsPreempted)}
	s.regs = nil
	s.hasRes = false
	s.res = Reservation{}
	s.generation++
	return r, true
}

// preempt performs PREEMPT and PREEMPT AND ABORT (SPC-4 5.12.11.2.4,
// 5.12.11.2.5). The preempting nexus never loses its own registration.
func (s *State) preempt(p Port, a outParams, scope byte, typ Type, abort bool) (Result, bool) {
	i, ok := s.keyed(p, a.key)
	if !ok {
		return conflict, false
	}
	takeRes := false
	if s.hasRes {
		if s.res.Type.AllRegistrants() {
			takeRes = a.sark == 0
		} else if h := s.lookup(s.res.Holder); h >= 0 {
			takeRes = a.sark == s.regs[h].Key
		}
	}
	if !takeRes && a.sark == 0 {
		return checkCondition(ReasonInvalidFieldInParameterList), false
	}
	if takeRes && (scope != scopeLU || !typ.Valid()) {
		return checkCondition(ReasonInvalidFieldInCDB), false
	}
	// Victims: every other registration with the key, or with an all
	// registrants reservation and a zero key, every other registration.
	var victims []Selector
	for j, r := range s.regs {
		if j != i && (r.Key == a.sark || takeRes && a.sark == 0) {
			victims = append(victims, r.Selector)
		}
	}
	if len(victims) == 0 && !takeRes {
		// SPC-4 5.12.11.2.4.3: the key must name a registered nexus.
		return conflict, false
	}
	oldType := s.res.Type
	var r Result
	for _, v := range victims {
		for j := range s.regs {
			if s.regs[j].Selector == v {
				s.removeReg(j)
				break
			}
		}
		r.UAs = append(r.UAs, UA{To: v, ASC: ASCRegistrationsPreempted, ASCQ: ASCQRegistrationsPreempted})
	}
	if takeRes {
		s.res = Reservation{Type: typ, Holder: p}
		s.hasRes = true
		if typ != oldType {
			// The scope is always LU_SCOPE, so only the type can change.
			r.UAs = append(r.UAs, s.uasExcept(&p, ASCReservationsReleased, ASCQReservationsReleased)...)
		}
	}
	if abort {
		r.Abort = victims
	}
	s.generation++
	return r, true
}

// registerAndMove performs REGISTER AND MOVE (SPC-4 5.12.8, parameter
// list in table 183).
func (s *State) registerAndMove(p Port, scope byte, typ Type, param []byte) (Result, bool) {
	if len(param) < basicParamLen {
		return checkCondition(ReasonParameterListLengthError), false
	}
	key := binary.BigEndian.Uint64(param[0:8])
	sark := binary.BigEndian.Uint64(param[8:16])
	unreg := param[17]&0x02 != 0
	aptp := param[17]&0x01 != 0
	rtpi := binary.BigEndian.Uint16(param[18:20])
	tidLen := binary.BigEndian.Uint32(param[20:24])
	if uint64(tidLen)+basicParamLen > uint64(len(param)) {
		return checkCondition(ReasonParameterListLengthError), false
	}
	if scope != scopeLU || !typ.Valid() {
		return checkCondition(ReasonInvalidFieldInCDB), false
	}
	if aptp && s.cfg.NoPersistence {
		return checkCondition(ReasonInvalidFieldInParameterList), false
	}
	i, ok := s.keyed(p, key)
	if !ok || !s.hasRes || s.res.Type.AllRegistrants() || !s.holds(p, i) {
		return conflict, false
	}
	if sark == 0 {
		return checkCondition(ReasonInvalidFieldInParameterList), false
	}
	sel, n, ok := parseTransportID(param[basicParamLen : basicParamLen+int(tidLen)])
	if !ok || sel.AnyISID || n != int(tidLen) {
		return checkCondition(ReasonInvalidFieldInParameterList), false
	}
	dest := Port{Initiator: sel.Initiator, ISID: sel.ISID, RelTgtPort: rtpi}
	if rtpi == p.RelTgtPort {
		dest.TargetPort = p.TargetPort
	}
	if dest.Same(p) {
		return checkCondition(ReasonInvalidFieldInParameterList), false
	}
	j := s.lookup(dest)
	if j == i && unreg {
		// The destination shares p's ALL_TG_PT registration: UNREG would
		// drop the registration the reservation moves to.
		return checkCondition(ReasonInvalidFieldInParameterList), false
	}
	if j < 0 {
		if len(s.regs) >= s.cfg.MaxRegistrations {
			return checkCondition(ReasonInsufficientRegistrationResources), false
		}
		s.regs = append(s.regs, Registration{Selector: Selector{Port: dest}, Key: sark})
	}
	s.res = Reservation{Type: typ, Holder: dest}
	if unreg {
		s.removeReg(i)
	}
	s.aptpl = aptp
	s.generation++
	return good, true
}
