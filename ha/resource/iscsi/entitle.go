package iscsi

import (
	"fmt"
	"slices"

	"github.com/tandem-ha/tandem/initiator"
)

// Entitlement is what the node knows when it decides whether to register
// its fencing key on a new session (after a login: a new ISID is a new I_T
// nexus, which holds no registration, SPC-4 5.12.6).
type Entitlement struct {
	// OurKey is this node's reservation key; 0 means none configured.
	OurKey uint64
	// Keys and Reservation are READ KEYS and READ RESERVATION, read through
	// the new session.
	Keys        initiator.PRKeys
	Reservation initiator.PRReservation
	// Fenced is set by the agent when this node was fenced (or lost and
	// has not been cleared): it owns that flag, not the resource.
	Fenced bool
	// Takeover: a fence resource follows in the group and takes the
	// reservation (ha/fence) at Start; a foreign holder is its business.
	Takeover bool
}

// Decision says whether to register, and why (for the log).
type Decision struct {
	Register bool
	Reason   string
	// Defer: not registering is not an error: the fence resource after
	// this one registers and preempts (Takeover).
	Defer bool
}

// Decide is the pure re-registration rule. A target accepts a fresh
// REGISTER from anyone, so a node that re-registers on its own un-fences
// itself: it registers only when nobody else holds the reservation and the
// agent has not marked it fenced. fence_scsi users hit the opposite bug
// (keys not re-registered after a new session), hence "register whenever
// entitled".
func Decide(in Entitlement) Decision {
	ours := slices.Contains(in.Keys.Keys, in.OurKey)
	r := in.Reservation
	switch {
	case in.OurKey == 0:
		return Decision{Register: false, Reason: "no pr_key configured"}
	case in.Fenced:
		return Decision{Register: false, Reason: "the agent marked this node fenced: registering would un-fence it"}
	case in.Takeover && r.Reserved && r.Key != in.OurKey:
		return Decision{Reason: fmt.Sprintf("key %#x holds the reservation: the fence resource takes it over", r.Key), Defer: true}
	case r.Reserved && r.Key != 0 && r.Key != in.OurKey:
		return Decision{Register: false, Reason: fmt.Sprintf("key %#x of another node holds the reservation (%s): this node was fenced or the peer owns the disk", r.Key, r.Type)}
	case r.Reserved && r.Key == 0 && !ours:
		return Decision{Register: false, Reason: fmt.Sprintf("an all-registrants reservation (%s) exists and our key is not registered: this node was preempted", r.Type)}
	case r.Reserved && r.Key == in.OurKey && !ours:
		return Decision{Register: false, Reason: "the reservation names our key but READ KEYS does not list it: inconsistent answer, not registering"}
	case r.Reserved:
		return Decision{Register: true, Reason: "our key holds or shares the reservation: register it on this I_T nexus too"}
	case ours:
		return Decision{Register: true, Reason: "our key is registered and no reservation exists: register it on this I_T nexus too"}
	case len(in.Keys.Keys) > 0:
		return Decision{Register: true, Reason: "other nodes are registered but nobody holds a reservation: registering is safe"}
	}
	return Decision{Register: true, Reason: "no registrations and no reservation: first registration"}
}
