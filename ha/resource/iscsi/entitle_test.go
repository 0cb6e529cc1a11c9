package iscsi

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tandem-ha/tandem/initiator"
)

func TestDecide(t *testing.T) {
	const ours, peer = 0xa1, 0xb2
	keys := func(k ...uint64) initiator.PRKeys { return initiator.PRKeys{Keys: k} }
	held := func(k uint64, typ initiator.PRType) initiator.PRReservation {
		return initiator.PRReservation{Reserved: true, Key: k, Type: typ}
	}
	const we = initiator.PRWriteExclusiveRegistrantsOnly
	const wa = initiator.PRWriteExclusiveAllRegistrants
	for _, c := range []struct {
		desc     string
		in       Entitlement
		register bool
		reason   string
	}{
		{"no key configured", Entitlement{Keys: keys(peer)}, false, "no pr_key"},
		{"fresh disk", Entitlement{OurKey: ours}, true, "first registration"},
		{"re-login, our key kept, no reservation", Entitlement{OurKey: ours, Keys: keys(ours)}, true, "register it on this I_T nexus"},
		{"re-login while we hold the reservation", Entitlement{OurKey: ours, Keys: keys(ours, peer), Reservation: held(ours, we)}, true, "holds or shares"},
		{"peer registered, no reservation (failover)", Entitlement{OurKey: ours, Keys: keys(peer)}, true, "nobody holds a reservation"},
		{"peer holds the reservation, we were preempted", Entitlement{OurKey: ours, Keys: keys(peer), Reservation: held(peer, we)}, false, "another node holds"},
		{"peer holds the reservation, our key still registered", Entitlement{OurKey: ours, Keys: keys(ours, peer), Reservation: held(peer, we)}, false, "another node holds"},
		{"all registrants, we are one", Entitlement{OurKey: ours, Keys: keys(ours, peer), Reservation: held(0, wa)}, true, "holds or shares"},
		{"all registrants, we were preempted", Entitlement{OurKey: ours, Keys: keys(peer), Reservation: held(0, wa)}, false, "preempted"},
		{"fenced by the agent, disk looks free", Entitlement{OurKey: ours, Fenced: true}, false, "marked this node fenced"},
		{"fenced by the agent, we hold it", Entitlement{OurKey: ours, Keys: keys(ours), Reservation: held(ours, we), Fenced: true}, false, "marked this node fenced"},
		{"reservation names us, keys do not", Entitlement{OurKey: ours, Keys: keys(peer), Reservation: held(ours, we)}, false, "inconsistent"},
		{"takeover: the fence preempts the holder", Entitlement{OurKey: ours, Keys: keys(peer), Reservation: held(peer, we), Takeover: true}, false, "fence resource takes it over"},
		{"takeover, but fenced", Entitlement{OurKey: ours, Keys: keys(peer), Reservation: held(peer, we), Takeover: true, Fenced: true}, false, "marked this node fenced"},
	} {
		t.Run(c.desc, func(t *testing.T) {
			d := Decide(c.in)
			assert.Equal(t, c.register, d.Register, d.Reason)
			assert.Equal(t, c.in.Takeover && !c.in.Fenced, d.Defer, d.Reason)
			assert.Contains(t, d.Reason, c.reason)
		})
	}
}

// TestDecideNeverUnfences checks the two safety rules over many inputs:
// never register while another key holds the reservation, never when fenced.
func TestDecideNeverUnfences(t *testing.T) {
	ks := []uint64{0, 1, 2, 3}
	for _, our := range ks {
		for _, holder := range ks {
			for mask := range 16 {
				var keys []uint64
				for i, k := range ks {
					if mask&(1<<i) != 0 && k != 0 {
						keys = append(keys, k)
					}
				}
				for _, fenced := range []bool{false, true} {
					in := Entitlement{OurKey: our, Keys: initiator.PRKeys{Keys: keys}, Fenced: fenced,
						Reservation: initiator.PRReservation{Reserved: holder != 0, Key: holder, Type: initiator.PRWriteExclusiveRegistrantsOnly}}
					d := Decide(in)
					if fenced || (holder != 0 && holder != our) || our == 0 {
						assert.False(t, d.Register, "%+v: %s", in, d.Reason)
					}
				}
			}
		}
	}
}
