package scsi

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tandem-ha/tandem/target/scsi/pr"
)

// uaCode is the ASC and ASCQ of a unit attention condition.
type uaCode struct{ asc, ascq byte }

// Unit attention conditions the LU establishes (SPC-4 annex D).
var (
	uaPowerOnReset    = uaCode{0x29, 0x00} // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
	uaPowerOn         = uaCode{0x29, 0x01} // POWER ON OCCURRED
	uaBusReset        = uaCode{0x29, 0x02} // SCSI BUS RESET OCCURRED (hard reset)
	uaLUReset         = uaCode{0x29, 0x03} // BUS DEVICE RESET FUNCTION OCCURRED
	uaNexusLoss       = uaCode{0x29, 0x07} // I_T NEXUS LOSS OCCURRED
	uaModeChanged     = uaCode{0x2a, 0x01} // MODE PARAMETERS CHANGED
	uaCapacityChanged = uaCode{0x2a, 0x09} // CAPACITY DATA HAS CHANGED
	uaCommandsCleared = uaCode{0x2f, 0x00} // COMMANDS CLEARED BY ANOTHER INITIATOR
)

// Bounds of the per-LU nexus state: pending unit attentions per nexus
// (libiscsi's login clears up to 10 with TEST UNIT READY), and nexuses
// remembered per LU.
const (
	maxPendingUAs   = 8
	maxNexusesPerLU = 1024
)

// reset reports whether c is of the 29h family, which SAM-5 ranks above
// every other unit attention (SPC-4 5.14, "unit attention condition
// precedence").
func (c uaCode) reset() bool { return c.asc == 0x29 }

// nexusKey identifies an I_T nexus as the fabric spells it; name is the
// initiator name as sent, so lookups need no lowering (see nexusState).
type nexusKey struct {
	name string
	isid [6]byte
	tpgt uint16
}

// nexusState is what an LU keeps per I_T nexus: its reservation identity,
// its pending unit attentions (SAM-5 5.14: per I_T nexus per LU) and the
// number of its commands executing, which PREEMPT AND ABORT waits for.
// Several keys (case spellings of one initiator name) may share a state.
type nexusState struct {
	port pr.Port
	// pending is a FIFO of unit attentions; it changes under lu.mu
	// held for writing, so readers holding lu.mu for reading see it
	// stable.
	pending []uaCode
	// inflight counts commands between admission and completion.
	inflight atomic.Int32
}

// portOf is the reservation identity of a nexus: initiator names compare
// case-insensitively (RFC 3722), the target port is named after the
// portal group (RFC 7143 13.9), and its relative identifier is the TPGT.
func portOf(n *Nexus) pr.Port {
	if n == nil {
		return pr.Port{}
	}
	return pr.Port{
		Initiator:  strings.ToLower(n.Initiator),
		ISID:       n.ISID,
		TargetPort: n.Target + ",t,0x" + hex4(n.TPGT),
		RelTgtPort: n.TPGT,
	}
}

func hex4(v uint16) string {
	s := strconv.FormatUint(uint64(v), 16)
	return strings.Repeat("0", 4-len(s)) + s
}

// push queues c unless it is redundant: a reset-class condition already
// pending covers another one (both say "everything may have changed"), and
// a duplicate adds nothing. A full queue drops its oldest lowest-ranked
// entry, or c itself when c ranks lowest.
func (ns *nexusState) push(c uaCode) {
	for _, p := range ns.pending {
		if p == c || p.reset() && c.reset() {
			return
		}
	}
	if len(ns.pending) < maxPendingUAs {
		ns.pending = append(ns.pending, c)
		return
	}
	for i, p := range ns.pending {
		if !p.reset() {
			ns.pending = append(ns.pending[:i], ns.pending[i+1:]...)
			ns.pending = append(ns.pending, c)
			return
		}
	}
	// Every pending condition is a reset, which c cannot outrank.
}

// pop removes and returns the oldest pending condition.
func (ns *nexusState) pop() uaCode {
	c := ns.pending[0]
	ns.pending = append(ns.pending[:0], ns.pending[1:]...)
	return c
}

// nexusLocked returns the state of n, creating it (with the power on
// unit attention: the first time a nexus addresses the LU since the
// target started, SAM-5 6.3.1) when it is new. lu.mu must be held for
// writing.
func (lu *LU) nexusLocked(n *Nexus) *nexusState {
	k := nexusKey{name: n.Initiator, isid: n.ISID, tpgt: n.TPGT}
	if ns := lu.nexuses[k]; ns != nil {
		return ns
	}
	p := portOf(n)
	for _, ns := range lu.states {
		if ns.port.Same(p) {
			lu.nexuses[k] = ns // another spelling of a known nexus
			return ns
		}
	}
	if len(lu.states) >= maxNexusesPerLU {
		lu.evictLocked()
	}
	ns := &nexusState{port: p}
	ns.push(uaPowerOnReset)
	lu.nexuses[k] = ns
	lu.states = append(lu.states, ns)
	return ns
}

// evictLocked forgets the oldest nexus with nothing to report and nothing
// executing, so initiators that come and go with fresh ISIDs cannot grow
// the LU without bound; a forgotten nexus that returns sees the power on
// unit attention again, which is conservative.
func (lu *LU) evictLocked() {
	victim := -1
	for i, ns := range lu.states {
		if ns.inflight.Load() == 0 && len(ns.pending) == 0 {
			victim = i
			break
		}
	}
	if victim < 0 {
		victim = 0
	}
	ns := lu.states[victim]
	lu.states = append(lu.states[:victim], lu.states[victim+1:]...)
	for k, s := range lu.nexuses {
		if s == ns {
			delete(lu.nexuses, k)
		}
	}
}

// findLocked returns the state of the nexus with reservation identity p,
// or nil when it never addressed the LU.
func (lu *LU) findLocked(p pr.Port) *nexusState {
	for _, ns := range lu.states {
		if ns.port.Same(p) {
			return ns
		}
	}
	return nil
}

// queueAllLocked establishes c for every nexus known to the LU; nexuses
// yet unknown get the power on condition at first contact anyway.
func (lu *LU) queueAllLocked(c uaCode, except *pr.Port) {
	for _, ns := range lu.states {
		if except == nil || !ns.port.Same(*except) {
			ns.push(c)
		}
	}
}

// queuePRLocked establishes the unit attentions a reservation change asks
// for (SPC-4 5.12.11.2.4 and following).
func (lu *LU) queuePRLocked(uas []pr.UA) {
	for _, ua := range uas {
		for _, ns := range lu.states {
			if ua.AppliesTo(ns.port) {
				ns.push(uaCode{ua.ASC, ua.ASCQ})
			}
		}
	}
}

// modeChanged tells the other nexuses that MODE SELECT from n changed a
// page (SPC-4 5.14: MODE PARAMETERS CHANGED).
func (lu *LU) modeChanged(n *Nexus) {
	var except *pr.Port
	if n != nil {
		p := portOf(n)
		except = &p
	}
	lu.mu.Lock()
	lu.queueAllLocked(uaModeChanged, except)
	lu.mu.Unlock()
}

// inherit moves old's reservation state, nexuses, pending unit attentions
// and mode pages to lu, and queues CAPACITY DATA HAS CHANGED when the
// capacity differs. Commands still admitted on old are not moved.
func (lu *LU) inherit(old *LU) error {
	old.mu.Lock()
	defer old.mu.Unlock()
	b, err := old.pr.MarshalBinary()
	if err != nil {
		return fmt.Errorf("scsi: copy reservation state: %w", err)
	}
	lu.mu.Lock()
	defer lu.mu.Unlock()
	if err := lu.pr.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("scsi: copy reservation state: %w", err)
	}
	moved := make(map[*nexusState]*nexusState, len(old.states))
	lu.states = lu.states[:0]
	for _, ns := range old.states {
		n := &nexusState{port: ns.port, pending: append([]uaCode(nil), ns.pending...)}
		moved[ns] = n
		lu.states = append(lu.states, n)
	}
	clear(lu.nexuses)
	for k, ns := range old.nexuses {
		lu.nexuses[k] = moved[ns]
	}
	if lu.blocks != old.blocks {
		lu.queueAllLocked(uaCapacityChanged, nil)
	}
	lu.wce.Store(old.wce.Load())
	lu.dsense.Store(old.dsense.Load())
	lu.swp.Store(old.swp.Load())
	return nil
}
