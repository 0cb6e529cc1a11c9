package scsi

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

const prTarget = "iqn.2025-01.test:t"

var (
	nexA = &Nexus{Initiator: "iqn.2025-01.test:A", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, Target: prTarget, TPGT: 1}
	nexB = &Nexus{Initiator: "iqn.2025-01.test:b", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}, Target: prTarget, TPGT: 1}
	nexC = &Nexus{Initiator: "iqn.2025-01.test:c", ISID: [6]byte{0x80, 0, 0, 0, 0, 3}, Target: prTarget, TPGT: 1}
)

// newPRTarget is a target whose LU keeps its reservation state in dir
// (a fresh one when dir is empty).
func newPRTarget(t testing.TB, dir string) (*Target, *LU) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	img := filepath.Join(dir, "lu.img")
	be, err := backstore.Open(img, backstore.Options{Create: true, Size: testBlocks * 512})
	require.NoError(t, err)
	lu, err := NewLU(LUConfig{Serial: "SER0001", StateFile: filepath.Join(dir, "lu.state")}, be)
	require.NoError(t, err)
	t.Cleanup(func() { lu.Close() })
	tgt := NewTarget(prTarget, nil)
	require.NoError(t, tgt.AddLU(0, lu))
	return tgt, lu
}

func runAs(tgt *Target, n *Nexus, cdb []byte, out []byte, inLen uint32) Result {
	task := &Task{Nexus: n, CDB: cdb, DataOut: out, ExpectedLength: inLen, DataIn: make([]byte, 0, inLen)}
	if out != nil {
		task.ExpectedLength = uint32(len(out))
	}
	return tgt.Execute(task)
}

// clearUA consumes the power on unit attention every nexus sees first.
func clearUA(t *testing.T, tgt *Target, ns ...*Nexus) {
	t.Helper()
	for _, n := range ns {
		for range maxPendingUAs + 1 {
			if runAs(tgt, n, make([]byte, 6), nil, 0).Status == wscsi.StatusGood {
				break
			}
		}
		require.Equal(t, byte(wscsi.StatusGood), runAs(tgt, n, make([]byte, 6), nil, 0).Status)
	}
}

func prout(tgt *Target, n *Nexus, sa, typ byte, key, sark uint64, aptpl bool) Result {
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p[0:], key)
	binary.BigEndian.PutUint64(p[8:], sark)
	if aptpl {
		p[20] = 0x01
	}
	cdb := []byte{0x5f, sa, typ, 0, 0, 0, 0, 0, 24, 0}
	return runAs(tgt, n, cdb, p, 0)
}

func prin(tgt *Target, n *Nexus, sa byte) Result {
	return runAs(tgt, n, []byte{0x5e, sa, 0, 0, 0, 0, 0, 0x10, 0, 0}, nil, 4096)
}

func readKeys(t *testing.T, tgt *Target, n *Nexus) []uint64 {
	t.Helper()
	r := prin(tgt, n, 0)
	require.Equal(t, byte(wscsi.StatusGood), r.Status)
	var keys []uint64
	for off := 8; off+8 <= len(r.DataIn); off += 8 {
		keys = append(keys, binary.BigEndian.Uint64(r.DataIn[off:]))
	}
	return keys
}

// reservation returns the key and type READ RESERVATION reports.
func reservation(t *testing.T, tgt *Target, n *Nexus) (uint64, byte, bool) {
	t.Helper()
	r := prin(tgt, n, 1)
	require.Equal(t, byte(wscsi.StatusGood), r.Status)
	if binary.BigEndian.Uint32(r.DataIn[4:]) == 0 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(r.DataIn[8:]), r.DataIn[21] & 0x0f, true
}

func requireStatus(t *testing.T, want byte, r Result, msg ...any) {
	t.Helper()
	require.Equal(t, want, r.Status, msg...)
}

func requireUA(t *testing.T, r Result, asc, ascq byte) {
	t.Helper()
	s := sense(t, r)
	assert.Equal(t, byte(wscsi.SenseUnitAttention), s.Key)
	assert.Equal(t, [2]byte{asc, ascq}, [2]byte{s.ASC, s.ASCQ})
}

func TestPRServiceActions(t *testing.T) {
	tgt, _ := newPRTarget(t, "")
	clearUA(t, tgt, nexA, nexB, nexC)
	good, conflict := byte(wscsi.StatusGood), byte(wscsi.StatusReservationConflict)

	requireStatus(t, good, prout(tgt, nexA, 0x0, 0, 0, 0xa, false))    // REGISTER
	requireStatus(t, good, prout(tgt, nexB, 0x6, 0, 0, 0xb, false))    // REGISTER AND IGNORE
	requireStatus(t, good, prout(tgt, nexC, 0x0, 0, 0, 0xc, false))    // REGISTER
	assert.Equal(t, []uint64{0xa, 0xb, 0xc}, readKeys(t, tgt, nexB))   // READ KEYS
	requireStatus(t, good, prout(tgt, nexA, 0x1, 0x05, 0xa, 0, false)) // RESERVE WE-RO
	key, typ, ok := reservation(t, tgt, nexC)                          // READ RESERVATION
	require.True(t, ok)
	assert.Equal(t, uint64(0xa), key)
	assert.Equal(t, byte(0x05), typ)
	requireStatus(t, conflict, prout(tgt, nexB, 0x1, 0x05, 0xa, 0, false), "wrong key")
	requireStatus(t, good, prin(tgt, nexA, 2)) // REPORT CAPABILITIES
	requireStatus(t, good, prin(tgt, nexA, 3)) // READ FULL STATUS

	// PREEMPT: b takes c's registration; c learns by unit attention.
	requireStatus(t, good, prout(tgt, nexB, 0x4, 0x05, 0xb, 0xc, false))
	assert.Equal(t, []uint64{0xa, 0xb}, readKeys(t, tgt, nexA))
	requireUA(t, runAs(tgt, nexC, make([]byte, 6), nil, 0), 0x2a, 0x05)

	// RELEASE by the holder; the other registrants of a registrants only
	// type hear RESERVATIONS RELEASED (SPC-4 5.12.11.2.2).
	requireStatus(t, good, prout(tgt, nexA, 0x2, 0x05, 0xa, 0, false))
	_, _, ok = reservation(t, tgt, nexA)
	assert.False(t, ok)
	requireUA(t, runAs(tgt, nexB, make([]byte, 6), nil, 0), 0x2a, 0x04)

	// PREEMPT AND ABORT, then CLEAR.
	requireStatus(t, good, prout(tgt, nexA, 0x1, 0x03, 0xa, 0, false))
	requireStatus(t, good, prout(tgt, nexB, 0x5, 0x03, 0xb, 0xa, false))
	key, typ, ok = reservation(t, tgt, nexB)
	require.True(t, ok)
	assert.Equal(t, [2]uint64{0xb, 3}, [2]uint64{key, uint64(typ)})
	requireUA(t, runAs(tgt, nexA, make([]byte, 6), nil, 0), 0x2a, 0x05)
	requireStatus(t, good, prout(tgt, nexB, 0x3, 0, 0xb, 0, false))
	assert.Empty(t, readKeys(t, tgt, nexA))

	// REGISTER AND MOVE with an unsupported parameter list fails cleanly.
	r := runAs(tgt, nexA, []byte{0x5f, 0x7, 0x03, 0, 0, 0, 0, 0, 24, 0}, make([]byte, 24), 0)
	assert.NotEqual(t, good, r.Status)
	// Service action 8 does not exist (SPC-4 4.2.5.1).
	r = runAs(tgt, nexA, []byte{0x5f, 0x8, 0, 0, 0, 0, 0, 0, 24, 0}, make([]byte, 24), 0)
	assert.Equal(t, wantBadCDB, senseOf(t, r))
}

func senseOf(t *testing.T, r Result) senseWant {
	t.Helper()
	s := sense(t, r)
	return senseWant{s.Key, s.ASC, s.ASCQ}
}

// TestPRConflicts checks every command class from a registered
// non-holder and an unregistered nexus under WE-RO and EA.
func TestPRConflicts(t *testing.T) {
	read := cdb10(0x28, 0, 0, 1)
	write := cdb10(0x2a, 0, 0, 1)
	tur := make([]byte, 6)
	inquiry := []byte{0x12, 0, 0, 0, 96, 0}
	modeSense := []byte{0x1a, 0, 0x3f, 0, 255, 0}
	syncCache := cdb10(0x35, 0, 0, 0)
	capacity := cdb10(0x25, 0, 0, 0)
	G, X := byte(wscsi.StatusGood), byte(wscsi.StatusReservationConflict)
	for _, tc := range []struct {
		typ       byte
		cdb       []byte
		out       []byte
		in        uint32
		reg, unrg byte // registered non-holder b, unregistered c
	}{
		{0x05, read, nil, 512, G, G},
		{0x05, write, make([]byte, 512), 0, G, X},
		{0x05, syncCache, nil, 0, G, X},
		{0x05, modeSense, nil, 255, G, G},
		{0x05, tur, nil, 0, G, G},
		{0x05, inquiry, nil, 96, G, G},
		{0x05, capacity, nil, 8, G, G},
		{0x03, read, nil, 512, X, X},
		{0x03, write, make([]byte, 512), 0, X, X},
		{0x03, syncCache, nil, 0, X, X},
		{0x03, modeSense, nil, 255, X, X},
		{0x03, tur, nil, 0, G, G},
		{0x03, inquiry, nil, 96, G, G},
		{0x03, capacity, nil, 8, G, G},
	} {
		tgt, _ := newPRTarget(t, "")
		clearUA(t, tgt, nexA, nexB, nexC)
		requireStatus(t, G, prout(tgt, nexA, 0x0, 0, 0, 0xa, false))
		requireStatus(t, G, prout(tgt, nexB, 0x0, 0, 0, 0xb, false))
		requireStatus(t, G, prout(tgt, nexA, 0x1, tc.typ, 0xa, 0, false))
		requireStatus(t, G, runAs(tgt, nexA, tc.cdb, tc.out, tc.in), "holder, type %x cdb %x", tc.typ, tc.cdb[0])
		requireStatus(t, tc.reg, runAs(tgt, nexB, tc.cdb, tc.out, tc.in), "registered, type %x cdb %x", tc.typ, tc.cdb[0])
		requireStatus(t, tc.unrg, runAs(tgt, nexC, tc.cdb, tc.out, tc.in), "unregistered, type %x cdb %x", tc.typ, tc.cdb[0])
	}
}

func TestReserve6Dispatch(t *testing.T) {
	tgt, _ := newPRTarget(t, "")
	clearUA(t, tgt, nexA, nexB)
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, []byte{0x16, 0, 0, 0, 0, 0}, nil, 0))
	requireStatus(t, wscsi.StatusReservationConflict, runAs(tgt, nexB, []byte{0x16, 0, 0, 0, 0, 0}, nil, 0))
	requireStatus(t, wscsi.StatusReservationConflict, runAs(tgt, nexB, cdb10(0x28, 0, 0, 1), nil, 512))
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexB, []byte{0x12, 0, 0, 0, 96, 0}, nil, 96))
	// RELEASE(10) from the holder; then b may reserve with RESERVE(10).
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, []byte{0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 0))
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexB, []byte{0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 0))
	// Nexus loss of the holder releases it, and the holder hears of it.
	tgt.NexusLoss(nexB)
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, cdb10(0x28, 0, 0, 1), nil, 512))
	requireUA(t, runAs(tgt, nexB, make([]byte, 6), nil, 0), 0x29, 0x07)
}

func TestPRPersistence(t *testing.T) {
	dir := t.TempDir()
	tgt, lu := newPRTarget(t, dir)
	clearUA(t, tgt, nexA, nexB)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa, true))
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexB, 0x0, 0, 0, 0xb, true))
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x1, 0x05, 0xa, 0, false))
	require.NoError(t, lu.Close())

	// Restart: a new LU from the same state file (power on).
	be, err := backstore.Open(filepath.Join(dir, "lu.img"), backstore.Options{})
	require.NoError(t, err)
	lu2, err := NewLU(LUConfig{Serial: "SER0001", StateFile: filepath.Join(dir, "lu.state")}, be)
	require.NoError(t, err)
	defer lu2.Close()
	tgt2 := NewTarget(prTarget, nil)
	require.NoError(t, tgt2.AddLU(0, lu2))
	clearUA(t, tgt2, nexA, nexB, nexC)
	assert.Equal(t, []uint64{0xa, 0xb}, readKeys(t, tgt2, nexC))
	key, typ, ok := reservation(t, tgt2, nexC)
	require.True(t, ok)
	assert.Equal(t, [2]uint64{0xa, 5}, [2]uint64{key, uint64(typ)})
	requireStatus(t, wscsi.StatusReservationConflict, runAs(tgt2, nexC, cdb10(0x2a, 0, 0, 1), make([]byte, 512), 0))
	requireStatus(t, wscsi.StatusGood, runAs(tgt2, nexA, cdb10(0x2a, 0, 0, 1), make([]byte, 512), 0))
}

func TestPRTornStateRefused(t *testing.T) {
	dir := t.TempDir()
	tgt, lu := newPRTarget(t, dir)
	clearUA(t, tgt, nexA)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa, true))
	require.NoError(t, lu.Close())
	state := filepath.Join(dir, "lu.state")
	b, err := os.ReadFile(state)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(state, b[:len(b)-3], 0o600)) // torn write

	be, err := backstore.Open(filepath.Join(dir, "lu.img"), backstore.Options{})
	require.NoError(t, err)
	defer be.Close()
	_, err = NewLU(LUConfig{Serial: "SER0001", StateFile: state}, be)
	require.Error(t, err)
	assert.Contains(t, err.Error(), state)
	assert.Contains(t, err.Error(), "move it away")
	after, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.Equal(t, b[:len(b)-3], after, "the damaged file is left for the operator")
}

func TestPRSaveFailure(t *testing.T) {
	tgt, lu := newPRTarget(t, "")
	clearUA(t, tgt, nexA, nexB)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa, true))
	before, _ := lu.pr.MarshalBinary()
	lu.saveState = func(string, string, []byte) error { return errors.New("disk full") }

	r := prout(tgt, nexB, 0x0, 0, 0, 0xb, true)
	requireStatus(t, wscsi.StatusCheckCondition, r)
	after, _ := lu.pr.MarshalBinary()
	assert.Equal(t, before, after, "state unchanged after a failed save")
	assert.Equal(t, []uint64{0xa}, readKeys(t, tgt, nexB))
	// APTPL stays in effect until a register-type action clears it, so
	// a RESERVE without it must be saved too, and fails the same way.
	requireStatus(t, wscsi.StatusCheckCondition, prout(tgt, nexA, 0x1, 0x05, 0xa, 0, false))
	_, _, ok := reservation(t, tgt, nexA)
	assert.False(t, ok)
}

func TestUnitAttentions(t *testing.T) {
	tgt, lu := newPRTarget(t, "")
	tur := make([]byte, 6)
	// First contact: INQUIRY and REPORT LUNS neither report nor clear.
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, []byte{0x12, 0, 0, 0, 96, 0}, nil, 96))
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, nil, 256))
	requireUA(t, runAs(tgt, nexA, tur, nil, 0), 0x29, 0x00)
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, tur, nil, 0))

	// Queue in order, reported once each.
	lu.mu.Lock()
	ns := lu.nexusLocked(nexA)
	ns.push(uaModeChanged)
	ns.push(uaCapacityChanged)
	ns.push(uaModeChanged) // duplicate
	lu.mu.Unlock()
	requireUA(t, runAs(tgt, nexA, cdb10(0x28, 0, 0, 1), nil, 512), 0x2a, 0x01)
	// REQUEST SENSE returns the next one as data, GOOD, and clears it.
	r := runAs(tgt, nexA, []byte{0x03, 0, 0, 0, 252, 0}, nil, 252)
	requireStatus(t, wscsi.StatusGood, r)
	s, err := wscsi.ParseSense(r.DataIn)
	require.NoError(t, err)
	assert.Equal(t, [3]byte{wscsi.SenseUnitAttention, 0x2a, 0x09}, [3]byte{s.Key, s.ASC, s.ASCQ})
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, tur, nil, 0))

	// The queue is bounded, and resets outrank the rest.
	lu.mu.Lock()
	for i := range 2 * maxPendingUAs {
		ns.push(uaCode{0x2a, byte(0x10 + i)})
	}
	ns.push(uaLUReset)
	require.Len(t, ns.pending, maxPendingUAs)
	assert.Equal(t, uaLUReset, ns.pending[maxPendingUAs-1])
	lu.mu.Unlock()

	// Another spelling of the initiator name is the same nexus.
	upper := *nexA
	upper.Initiator = "IQN.2025-01.TEST:A"
	requireStatus(t, wscsi.StatusCheckCondition, runAs(tgt, &upper, tur, nil, 0))
	lu.mu.RLock()
	assert.Len(t, lu.states, 1)
	lu.mu.RUnlock()
}

func TestModeSelectUA(t *testing.T) {
	tgt, _ := newPRTarget(t, "")
	clearUA(t, tgt, nexA, nexB)
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, []byte{0x15, 0x10, 0, 0, 32, 0}, cachingSelect(4), 0))
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, make([]byte, 6), nil, 0))
	requireUA(t, runAs(tgt, nexB, make([]byte, 6), nil, 0), 0x2a, 0x01)
}

func TestResetEffects(t *testing.T) {
	tgt, lu := newPRTarget(t, "")
	clearUA(t, tgt, nexA, nexB)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa, false))
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x1, 0x03, 0xa, 0, false))
	lu.dsense.Store(true)

	// LU reset: PR kept, mode pages back to defaults, 29/03 for all.
	tgt.Reset(0, LUReset, nexA)
	requireUA(t, runAs(tgt, nexA, make([]byte, 6), nil, 0), 0x29, 0x03)
	requireUA(t, runAs(tgt, nexB, make([]byte, 6), nil, 0), 0x29, 0x03)
	assert.False(t, lu.dsense.Load())
	requireStatus(t, wscsi.StatusReservationConflict, runAs(tgt, nexB, cdb10(0x28, 0, 0, 1), nil, 512))

	// SPC-2 reservations do not survive a warm reset.
	clearUA(t, tgt, nexA, nexB)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x3, 0, 0xa, 0, false)) // CLEAR
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, []byte{0x16, 0, 0, 0, 0, 0}, nil, 0))
	tgt.Reset(0, WarmReset, nexB)
	requireUA(t, runAs(tgt, nexB, make([]byte, 6), nil, 0), 0x29, 0x02)
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexB, cdb10(0x28, 0, 0, 1), nil, 512))

	// A cold reset is a power on: registrations without APTPL go.
	clearUA(t, tgt, nexA)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexB, 0x0, 0, 0, 0xb, false))
	tgt.Reset(0, ColdReset, nil)
	requireUA(t, runAs(tgt, nexA, make([]byte, 6), nil, 0), 0x29, 0x01)
	clearUA(t, tgt, nexB)
	assert.Empty(t, readKeys(t, tgt, nexA))

	// CLEAR TASK SET with TAS=1: the other nexuses' tasks completed with
	// TASK ABORTED status, which told them; no unit attention follows.
	require.True(t, tgt.TaskAbortedStatus(0))
	assert.False(t, tgt.TaskAbortedStatus(7), "no such LU")
	tgt.TasksCleared(0, nexA, []*Nexus{nexA, nexB})
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, make([]byte, 6), nil, 0))
	requireStatus(t, wscsi.StatusGood, runAs(tgt, nexB, make([]byte, 6), nil, 0))
	// The Control mode page says so (byte 5 of the page, TAS bit).
	ms := runAs(tgt, nexB, []byte{0x1a, 0x08, 0x0a, 0, 0xff, 0}, nil, 0xff)
	requireStatus(t, wscsi.StatusGood, ms)
	require.Greater(t, len(ms.DataIn), 4+5)
	assert.Equal(t, byte(0x40), ms.DataIn[4+5]&0x40, "TAS")
}

// TestPreemptAndAbortAborter checks that the Aborter runs outside the LU
// lock: it issues a command on the LU, which would deadlock otherwise,
// and it is asked about the preempted nexus only.
func TestPreemptAndAbortAborter(t *testing.T) {
	tgt, _ := newPRTarget(t, "")
	clearUA(t, tgt, nexA, nexB, nexC)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa, false))
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexB, 0x0, 0, 0, 0xb, false))
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x1, 0x05, 0xa, 0, false))
	var calls int
	var victimWrite Result
	tgt.SetAborter(func(lun uint64, match func(n *Nexus) bool) {
		calls++
		assert.Equal(t, uint64(0), lun)
		assert.True(t, match(nexA))
		assert.False(t, match(nexB), "the issuer")
		assert.False(t, match(nexC))
		// A write from the victim, arriving after the PR change: the
		// state must already say it conflicts.
		victimWrite = runAs(tgt, nexA, cdb10(0x2a, 0, 0, 1), make([]byte, 512), 0)
	})
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexB, 0x5, 0x05, 0xb, 0xa, false))
	assert.Equal(t, 1, calls)
	assert.Equal(t, byte(wscsi.StatusCheckCondition), victimWrite.Status, "the preempted nexus first hears the unit attention")
	requireStatus(t, wscsi.StatusReservationConflict, runAs(tgt, nexA, cdb10(0x2a, 0, 0, 1), make([]byte, 512), 0))

	// Without an Aborter the LU waits for the victims' commands itself.
	tgt.SetAborter(nil)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa2, false))
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexB, 0x5, 0x05, 0xb, 0xa2, false))
}

func TestReplaceLU(t *testing.T) {
	dir := t.TempDir()
	tgt, lu := newPRTarget(t, dir)
	clearUA(t, tgt, nexA, nexB)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa, false))
	require.NoError(t, os.Truncate(filepath.Join(dir, "lu.img"), 2*testBlocks*512))
	be, err := backstore.Open(filepath.Join(dir, "lu.img"), backstore.Options{})
	require.NoError(t, err)
	lu2, err := NewLU(LUConfig{Serial: "SER0001", StateFile: filepath.Join(dir, "lu.state")}, be)
	require.NoError(t, err)
	defer lu2.Close()
	old, err := tgt.ReplaceLU(0, lu2)
	require.NoError(t, err)
	assert.Same(t, lu, old)
	requireUA(t, runAs(tgt, nexB, make([]byte, 6), nil, 0), 0x2a, 0x09)
	assert.Equal(t, []uint64{0xa}, readKeys(t, tgt, nexB), "registrations without APTPL survive a resize")
}

func TestAllocsWithNexus(t *testing.T) {
	tgt, _ := newPRTarget(t, "")
	rd := &Task{Nexus: nexA, CDB: cdb10(0x28, 0, 8, 8), ExpectedLength: 4096, DataIn: make([]byte, 0, 4096)}
	wr := &Task{Nexus: nexA, CDB: cdb10(0x2a, 0, 8, 8), ExpectedLength: 4096, DataOut: make([]byte, 4096)}
	tgt.Execute(rd) // the power on unit attention
	assert.Zero(t, testing.AllocsPerRun(100, func() { tgt.Execute(rd) }), "READ(10)")
	assert.Zero(t, testing.AllocsPerRun(100, func() { tgt.Execute(wr) }), "WRITE(10)")
	// With a registration, as a fenced cluster runs.
	clearUA(t, tgt, nexB)
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x0, 0, 0, 0xa, false))
	requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0x1, 0x05, 0xa, 0, false))
	assert.Zero(t, testing.AllocsPerRun(100, func() { tgt.Execute(wr) }), "WRITE(10) under WE-RO")
}
