package pr

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestProperties runs random command sequences from three initiators (A
// also through a second target port) and checks the invariants after
// every step.
func TestProperties(t *testing.T) {
	ports := []Port{pA, pB, pC, pA2}
	keys := []uint64{0, 1, 2, 3}
	rapid.Check(t, func(rt *rapid.T) {
		s := New()
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			p := rapid.SampledFrom(ports).Draw(rt, "port")
			before := viewOf(s)
			beforeBytes, _ := s.MarshalBinary()
			var r Result
			isOut := false
			switch op := rapid.IntRange(0, 9).Draw(rt, "op"); {
			case op < 7:
				isOut = true
				sa := byte(rapid.IntRange(0, 7).Draw(rt, "sa"))
				typ := Type(rapid.SampledFrom([]int{0, 1, 2, 3, 5, 6, 7, 8}).Draw(rt, "type"))
				key := rapid.SampledFrom(keys).Draw(rt, "key")
				sark := rapid.SampledFrom(keys).Draw(rt, "sark")
				var flags byte
				if rapid.Bool().Draw(rt, "allTgPt") {
					flags |= fAllTgPt
				}
				if rapid.Bool().Draw(rt, "aptpl") {
					flags |= fAPTPL
				}
				var param []byte
				switch {
				case sa == saRegisterMove:
					dest := rapid.SampledFrom(ports).Draw(rt, "dest")
					param = moveParams(key, sark, rapid.Bool().Draw(rt, "unreg"), dest.RelTgtPort, tid(dest.Initiator, &dest.ISID))
				case sa == saRegister && rapid.IntRange(0, 4).Draw(rt, "specIPT") == 0:
					q := rapid.SampledFrom(ports).Draw(rt, "tid")
					isid := &q.ISID
					if rapid.Bool().Draw(rt, "format00") {
						isid = nil
					}
					param = specIPTParams(key, sark, flags, tid(q.Initiator, isid))
				default:
					param = basicParams(key, sark, flags)
				}
				r = s.Out(p, proutCDB(sa, typ, len(param)), param)
			case op == 7:
				r = s.In(p, prinCDB(byte(rapid.IntRange(0, 4).Draw(rt, "prin")), rapid.IntRange(0, 300).Draw(rt, "alloc")))
				after, _ := s.MarshalBinary()
				require.Equal(rt, beforeBytes, after, "PERSISTENT RESERVE IN changed the state")
			case op == 8:
				if rapid.Bool().Draw(rt, "reserve") {
					r = s.Reserve6(p, reserve6)
				} else {
					r = s.Release6(p, release6)
				}
			default:
				if rapid.Bool().Draw(rt, "reset") {
					s.Reset()
				} else {
					s.NexusLoss(p)
				}
				r = good
			}
			after := viewOf(s)

			// PRgeneration never decreases and moves by one at most.
			require.GreaterOrEqual(rt, after.Gen, before.Gen)
			require.LessOrEqual(rt, after.Gen-before.Gen, uint32(1))
			if r.Status != StatusGood {
				require.Equal(rt, before, after, "a failed command changed the state: %+v", r)
				require.False(rt, r.Persist)
			}
			if isOut && r.Status == StatusGood && after.Gen == before.Gen {
				// Only RESERVE and RELEASE (and no-ops) leave it alone;
				// they do not touch registrations.
				require.Equal(rt, before.Regs, after.Regs)
			}
			// The holder is registered; keys are nonzero; no nexus is
			// covered by two registrations.
			require.NoError(rt, s.validate())
			for _, q := range ports {
				n := 0
				for _, reg := range after.Regs {
					if reg.Matches(q) {
						n++
					}
				}
				require.LessOrEqual(rt, n, 1)
			}
			// An SPC-2 reservation and registrations exclude each other.
			require.False(rt, after.HasSPC2 && len(after.Regs) > 0)
			// Holders are never in conflict with themselves.
			for _, q := range ports {
				if s.holds(q, s.lookup(q)) {
					require.False(rt, s.Check(q, write16))
				}
			}
			// Round trip.
			b, err := s.MarshalBinary()
			require.NoError(rt, err)
			got := New()
			require.NoError(rt, got.UnmarshalBinary(b))
			require.Equal(rt, after, viewOf(got))
		}
	})
}
