package benchscale

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestCheck(t *testing.T) {
	g := DefaultGoals()
	good := Result{ManyIOPS: 97, OneIOPS: 100, Storm: time.Second, PerSession: 40 << 10, Sessions: 256}
	assert.Empty(t, g.Check(good))
	assert.InDelta(t, 0.03, good.Loss(), 1e-9)

	bad := Result{ManyIOPS: 90, OneIOPS: 100, Storm: 3 * time.Second, PerSession: 100 << 10, Sessions: 256}
	miss := g.Check(bad)
	assert.Len(t, miss, 3)
	assert.Contains(t, miss[0], "lose 10.0%")
	assert.Contains(t, miss[1], "3s")
	assert.Contains(t, miss[2], "100 KiB")
}

func TestTable(t *testing.T) {
	out := Table(Result{ManyIOPS: 110000, OneIOPS: 100000, Storm: 1500 * time.Millisecond, PerSession: 30 << 10,
		Sessions: 256, Initiators: 64, LUNs: 64, Depth: 256}, DefaultGoals())
	assert.Contains(t, out, "| same, 256 sessions from 64 initiators over 64 LUNs | 110.0k IOPS (+10.0%) | loss < 5% |")
	assert.Contains(t, out, "| login storm, 256 sessions | 1.5s | < 2s |")
	assert.Contains(t, out, "| target memory per idle session (RSS delta) | 30.0 KiB | < 64 KiB |")
}
