package itest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/config"
)

const (
	prIQN = "iqn.2025-01.io.tandem:itest.pr"
	nodeA = "iqn.2025-01.io.tandem:itest.node-a"
	nodeB = "iqn.2025-01.io.tandem:itest.node-b"
	keyA  = uint64(0xa1a1a1a1)
	keyB  = uint64(0xb2b2b2b2)
)

var (
	isidA = [6]byte{0x80, 0, 0, 0, 0, 0x0a}
	isidB = [6]byte{0x80, 0, 0, 0, 0, 0x0b}
)

// startPRLab serves prIQN with LUNs 0 and 1.
func startPRLab(t *testing.T) (*daemon, *config.Config) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	cfg.Targets = []config.Target{{
		Name: prIQN,
		LUNs: []config.LUN{sparseLUN(t, dir, "pr0", 0, lunSize), sparseLUN(t, dir, "pr1", 1, lunSize)},
	}}
	return start(t, dir, cfg), cfg
}

func dialNode(t *testing.T, addr, name string, isid [6]byte) *initiator.Session {
	t.Helper()
	s, err := initiator.Dial(ctx(t), addr, initiator.Options{TargetName: prIQN, InitiatorName: name, ISID: isid})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// requirePR fails fast, with the reason, when the target does not answer
// PERSISTENT RESERVE IN: every test after it depends on reservations.
func requirePR(t *testing.T, s *initiator.Session) {
	t.Helper()
	_, err := s.PRReportCapabilities(ctx(t), 0)
	require.NoError(t, err, "PERSISTENT RESERVE IN (REPORT CAPABILITIES) must work on tandem-target")
}

// again reissues a call once when it returned a persistent reservation
// unit attention, which the initiator hands to the caller; the test
// checks that it is the expected one.
func again(t *testing.T, ascq byte, call func() error) error {
	t.Helper()
	err := call()
	if initiator.IsReservationUnitAttention(err) {
		var se *initiator.SenseError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, ascq, se.ASCQ, "unit attention %v", err)
		err = call()
	}
	return err
}

// TestFenceSCSI runs the fence_scsi sequence: both nodes register, A
// reserves WRITE EXCLUSIVE - REGISTRANTS ONLY and writes, B preempts A
// with PREEMPT AND ABORT; A can then read but not write.
func TestFenceSCSI(t *testing.T) {
	d, _ := startPRLab(t)
	a := dialNode(t, d.addr, nodeA, isidA)
	b := dialNode(t, d.addr, nodeB, isidB)
	requirePR(t, a)
	c := ctx(t)
	const wero = initiator.PRWriteExclusiveRegistrantsOnly

	require.NoError(t, a.PRRegisterAndIgnore(c, 0, keyA, initiator.PROptions{}))
	require.NoError(t, b.PRRegister(c, 0, 0, keyB, initiator.PROptions{}))
	require.NoError(t, a.PRReserve(c, 0, keyA, wero))
	res, err := b.PRReadReservation(c, 0)
	require.NoError(t, err)
	assert.Equal(t, initiator.PRReservation{Generation: res.Generation, Reserved: true, Key: keyA, Type: wero}, res)

	dataA := pattern(4096, 0xa)
	require.NoError(t, a.Write16(c, 0, 0, dataA, false))
	require.NoError(t, b.PRPreemptAndAbort(c, 0, keyB, keyA, wero))

	// A was preempted: REGISTRATIONS PREEMPTED (2A/05) may come first,
	// then every write conflicts.
	err = again(t, 0x05, func() error { return a.Write16(c, 0, 8, pattern(4096, 0xaa), false) })
	require.ErrorIs(t, err, initiator.ErrReservationConflict)
	require.ErrorIs(t, a.Write16(c, 0, 8, pattern(4096, 0xab), true), initiator.ErrReservationConflict)
	got := make([]byte, 4096)
	require.NoError(t, again(t, 0x05, func() error { return a.ReadInto(c, 0, 0, got) }), "a fenced node still reads")
	assert.True(t, bytes.Equal(dataA, got), "A's write before the fence is there")

	dataB := pattern(4096, 0xb)
	require.NoError(t, b.Write16(c, 0, 8, dataB, false))
	require.NoError(t, a.ReadInto(c, 0, 8, got))
	assert.True(t, bytes.Equal(dataB, got), "only B's write reached block 8")

	keys, err := b.PRReadKeys(c, 0)
	require.NoError(t, err)
	assert.Equal(t, []uint64{keyB}, keys.Keys)
	res, err = a.PRReadReservation(c, 0)
	require.NoError(t, err)
	assert.Equal(t, initiator.PRReservation{Generation: res.Generation, Reserved: true, Key: keyB, Type: wero}, res)
	fs, err := b.PRReadFullStatus(c, 0)
	require.NoError(t, err)
	require.Len(t, fs.Registrants, 1)
	assert.Equal(t, nodeB, fs.Registrants[0].Initiator)
	assert.True(t, fs.Registrants[0].Holder)
	// A's registration is gone, so it cannot take the reservation back.
	require.ErrorIs(t, a.PRReserve(c, 0, keyA, wero), initiator.ErrReservationConflict)
}

// fileSums maps every regular file under dir to a hash of its content.
func fileSums(t *testing.T, dir string) map[string][32]byte {
	sums := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sums[p] = sha256.Sum256(b)
		}
		return nil
	})
	require.NoError(t, err)
	return sums
}

// TestPRSurvivesCrash registers and reserves with APTPL, kills the target
// with SIGKILL and checks that the restarted target reports the same
// registrations and reservation; then it corrupts the state file and
// checks that the target refuses to serve that LUN from a blank state.
func TestPRSurvivesCrash(t *testing.T) {
	d, cfg := startPRLab(t)
	s := dialNode(t, d.addr, nodeA, isidA)
	requirePR(t, s)
	c := ctx(t)

	caps, err := s.PRReportCapabilities(c, 0)
	require.NoError(t, err)
	require.True(t, caps.PTPLC, "REPORT CAPABILITIES says APTPL is not supported: the LUN has no reservation state file (does tandem-target pass state_dir to daemon.Manager.SetStateDir?)")

	before := fileSums(t, cfg.StateDir)
	require.NoError(t, s.PRRegister(c, 0, 0, keyA, initiator.PROptions{APTPL: true}))
	require.NoError(t, s.PRReserve(c, 0, keyA, initiator.PRWriteExclusive))
	keys, err := s.PRReadKeys(c, 0)
	require.NoError(t, err)
	res, err := s.PRReadReservation(c, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{keyA}, keys.Keys)
	require.True(t, res.Reserved)
	caps, err = s.PRReportCapabilities(c, 0)
	require.NoError(t, err)
	assert.True(t, caps.PTPLA, "APTPL active")

	// The PR state file is what the PR commands created or changed.
	var changed []string
	for p, sum := range fileSums(t, cfg.StateDir) {
		if old, ok := before[p]; !ok || old != sum {
			changed = append(changed, p)
		}
	}
	require.Len(t, changed, 1, "one PR state file under %s for LUN 0, got %v", cfg.StateDir, changed)
	prFile := changed[0]
	t.Logf("PR state file: %s", prFile)

	d.kill() // SIGKILL: no shutdown path runs
	s.Close(context.Background())
	d2 := d.restart(t)
	require.False(t, d2.exited(), "restart failed (%v); log:\n%s", d2.exitErr, d2.log())
	s2 := dialNode(t, d.addr, nodeA, isidA)
	c2 := ctx(t)
	keys2, err := s2.PRReadKeys(c2, 0)
	require.NoError(t, err)
	res2, err := s2.PRReadReservation(c2, 0)
	require.NoError(t, err)
	assert.Equal(t, keys.Keys, keys2.Keys, "registrations after the crash")
	assert.Equal(t, res.Reserved, res2.Reserved)
	assert.Equal(t, res.Key, res2.Key)
	assert.Equal(t, res.Scope, res2.Scope)
	assert.Equal(t, res.Type, res2.Type)
	// SPC-4 6.16.2: PRgeneration is set to zero by the power on.
	assert.Equal(t, uint32(0), keys2.Generation, "PRgeneration after power on")
	assert.Equal(t, uint32(0), res2.Generation, "PRgeneration after power on")
	// The holder's nexus still holds it: its write goes through.
	require.NoError(t, s2.Write16(c2, 0, 0, pattern(512, 1), false))
	s2.Close(context.Background())
	d2.kill()

	// Cut the state file in half: the checksum must catch it.
	b, err := os.ReadFile(prFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(prFile, b[:len(b)/2], 0o600))
	// tandem-target refuses to start (issue 12: no target is served with
	// a LUN missing): the error names the file and what is wrong with it,
	// and LUN 0 never comes back with a blank reservation state.
	d3 := d.restart(t)
	code, exited := d3.wait(15 * time.Second)
	require.True(t, exited, "tandem-target must not serve a target with LUN 0 missing; log:\n%s", d3.log())
	assert.Equal(t, 1, code)
	log := d3.log()
	assert.Contains(t, log, filepath.Base(prFile), "the log names the corrupt file")
	assert.Contains(t, log, "truncated", "the log says what is wrong with it")
	t.Logf("log with a corrupt PR file for LUN 0:\n%s", lastLines(log, 10))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
