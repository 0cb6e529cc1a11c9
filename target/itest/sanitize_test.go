package itest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/config"
)

// TestSanitizeOverwrite runs SANITIZE OVERWRITE (SBC-4 5.30) through the
// daemon on a thin file LUN: the command completes GOOD, the LU is ready
// again afterwards, and the data written before reads back as the pattern.
func TestSanitizeOverwrite(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	l := sparseLUN(t, dir, "s0", 0, 4<<20)
	l.Thin = true
	cfg.Targets = []config.Target{{Name: prIQN, LUNs: []config.LUN{l}}}
	d := start(t, dir, cfg)
	a := dialNode(t, d.addr, "iqn.2026-11.dev.tandem:a", isidA)
	do := func(cdb, out []byte, in uint32) *initiator.Response {
		t.Helper()
		r, err := a.Do(ctx(t), &initiator.Command{LUN: 0, CDB: cdb, DataOut: out, ReadLen: in})
		require.NoError(t, err)
		require.NoError(t, r.Err(), "CDB % x", cdb)
		return r
	}
	tur := []byte{0, 0, 0, 0, 0, 0}
	read0 := []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}  // READ(10) LBA 0, 1 block
	write0 := []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0} // WRITE(10) LBA 0, 1 block

	// The new nexus first sees the power-on unit attention (29h/00h).
	r, err := a.Do(ctx(t), &initiator.Command{LUN: 0, CDB: tur})
	require.NoError(t, err)
	var se *initiator.SenseError
	require.ErrorAs(t, r.Err(), &se)
	require.Equal(t, byte(0x29), se.ASC, "power-on unit attention expected first")
	do(tur, nil, 0)

	data := pattern(512, 0x5a)
	do(write0, data, 0)
	require.Equal(t, data, do(read0, nil, 512).Data)

	// Parameter list: one pass (OWCOUNT 1), a 512-byte pattern of 0xa5.
	fill := make([]byte, 512)
	for i := range fill {
		fill[i] = 0xa5
	}
	list := append([]byte{0x01, 0, 0x02, 0x00}, fill...)
	do([]byte{0x48, 0x01, 0, 0, 0, 0, 0, 0x02, 0x04, 0}, list, 0) // SANITIZE, SA OVERWRITE, 516 bytes
	do(tur, nil, 0)
	assert.Equal(t, fill, do(read0, nil, 512).Data)
}
