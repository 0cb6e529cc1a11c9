package soak

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// noisy is a flat series: level plus noise of ±spread, seeded.
func noisy(n int, level, spread float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float64, n)
	for i := range v {
		v[i] = level + (r.Float64()*2-1)*spread
	}
	return v
}

func TestFlat(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		vals   []float64
		lim    Limits
		judged bool
		ok     bool
	}{
		{desc: "flat fds with noise", vals: noisy(50, 14, 2, 1), lim: DefaultLimits(FDSlack), judged: true, ok: true},
		{desc: "flat RSS in KiB, 3 % noise", vals: noisy(1000, 20000, 600, 2), lim: DefaultLimits(RSSSlackKiB), judged: true, ok: true},
		{desc: "warm-up growth is not judged", vals: append([]float64{5, 8, 10, 12, 14}, noisy(45, 20, 1, 3)...), lim: DefaultLimits(FDSlack), judged: true, ok: true},
		{desc: "one spike in the last window", vals: append(noisy(49, 30, 1, 4), 300), lim: DefaultLimits(GoroutineSlack), judged: true, ok: true},
		// Negative controls: what a leak looks like must fail.
		{desc: "one fd leaked per round", vals: func() []float64 {
			v := noisy(50, 14, 1, 5)
			for i := range v {
				v[i] += float64(i)
			}
			return v
		}(), lim: DefaultLimits(FDSlack), judged: true, ok: false},
		{desc: "RSS growing 64 KiB per round", vals: func() []float64 {
			v := noisy(100, 20000, 300, 6)
			for i := range v {
				v[i] += 64 * float64(i)
			}
			return v
		}(), lim: DefaultLimits(RSSSlackKiB), judged: true, ok: false},
		{desc: "a step of goroutines after round 30", vals: func() []float64 {
			v := noisy(50, 40, 1, 7)
			for i := 30; i < 50; i++ {
				v[i] += 15
			}
			return v
		}(), lim: DefaultLimits(GoroutineSlack), judged: true, ok: false},
		{desc: "too short", vals: []float64{1, 2, 3, 4, 5, 6, 7, 8}, lim: DefaultLimits(0), judged: false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			v := Flat(tc.vals, tc.lim)
			assert.Equal(t, tc.judged, v.Judged, v.String())
			if tc.judged {
				assert.Equal(t, tc.ok, v.OK, v.String())
			}
		})
	}
}

func TestFlatWindows(t *testing.T) {
	v := Flat(noisy(1000, 10, 0, 1), DefaultLimits(0))
	assert.Equal(t, 100, v.Window, "10 %% of 1000 rounds")
	v = Flat(noisy(50, 10, 0, 1), DefaultLimits(0))
	assert.Equal(t, 5, v.Window)
	v = Flat(noisy(10, 10, 0, 1), DefaultLimits(0))
	assert.Equal(t, 3, v.Window, "at least MinWindow")
	assert.True(t, v.Judged)
	assert.InDelta(t, 10.5, v.Allowed, 1e-9, "5 %% of 10, no slack")
}
