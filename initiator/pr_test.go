package initiator

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// prInData builds PERSISTENT RESERVE IN data: generation, additional
// length, body.
func prInData(gen uint32, body []byte) []byte {
	d := binary.BigEndian.AppendUint32(nil, gen)
	d = binary.BigEndian.AppendUint32(d, uint32(len(body)))
	return append(d, body...)
}

func TestPRIn(t *testing.T) {
	var keys []byte
	for i := range 40 { // more than the first allocation length holds
		keys = binary.BigEndian.AppendUint64(keys, uint64(0xa000+i))
	}
	isid := [6]byte{0x80, 1, 2, 3, 4, 5}
	tidA := ISCSITransportID("iqn.2025-01.io.tandem:a", &isid)
	tidB := ISCSITransportID("iqn.2025-01.io.tandem:b", nil)
	var full []byte
	full = binary.BigEndian.AppendUint64(full, 0xaa)
	full = append(full, 0, 0, 0, 0, 0x01, PRScopeLU<<4|byte(PRWriteExclusiveRegistrantsOnly), 0, 0, 0, 0, 0, 1)
	full = binary.BigEndian.AppendUint32(full, uint32(len(tidA)))
	full = append(full, tidA...)
	full = binary.BigEndian.AppendUint64(full, 0xbb)
	full = append(full, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 2)
	full = binary.BigEndian.AppendUint32(full, uint32(len(tidB)))
	full = append(full, tidB...)

	var allocs []uint16
	f := newFake(t, func(f *fakeTarget) {
		f.hook = func(cdb, _ []byte) (fakeResult, bool) {
			if cdb[0] != opPRIn {
				return fakeResult{}, false
			}
			allocs = append(allocs, binary.BigEndian.Uint16(cdb[7:9]))
			switch cdb[1] {
			case saReadKeys:
				return fakeResult{data: prInData(9, keys)}, true
			case saReadReservation:
				body := binary.BigEndian.AppendUint64(nil, 0xaa)
				body = append(body, 0, 0, 0, 0, 0, byte(PRWriteExclusiveRegistrantsOnly), 0, 0)
				return fakeResult{data: prInData(10, body)}, true
			case saReportCapabilities:
				return fakeResult{data: []byte{0, 8, 0x1d, 0x91, 0xea, 0x01, 0, 0}}, true
			case saReadFullStatus:
				return fakeResult{data: prInData(11, full)}, true
			}
			return fakeResult{status: scsi.StatusCheckCondition, sense: fixedSense(5, 0x24, 0)}, true
		}
	})
	s := dial(t, f, nil)
	ctx := testCtx(t)

	k, err := s.PRReadKeys(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, uint32(9), k.Generation)
	require.Len(t, k.Keys, 40)
	assert.Equal(t, uint64(0xa000), k.Keys[0])
	assert.Equal(t, uint64(0xa027), k.Keys[39])
	f.mu.Lock()
	assert.Equal(t, []uint16{8 + 8*32, 8 + 8*40}, allocs, "the allocation length grows to the additional length")
	f.mu.Unlock()

	r, err := s.PRReadReservation(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, PRReservation{Generation: 10, Reserved: true, Key: 0xaa, Type: PRWriteExclusiveRegistrantsOnly}, r)

	c, err := s.PRReportCapabilities(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, PRCapabilities{CRH: true, SIPC: true, ATPC: true, PTPLC: true, TMV: true, PTPLA: true,
		AllowCommands: 1, TypeMask: 0x01ea}, c)
	assert.True(t, c.Supports(PRWriteExclusiveRegistrantsOnly))
	assert.False(t, c.Supports(PRType(2)))

	fs, err := s.PRReadFullStatus(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, uint32(11), fs.Generation)
	require.Len(t, fs.Registrants, 2)
	a, b := fs.Registrants[0], fs.Registrants[1]
	assert.Equal(t, PRRegistrant{Key: 0xaa, Holder: true, Type: PRWriteExclusiveRegistrantsOnly, RelativeTargetPort: 1,
		TransportID: tidA, Initiator: "iqn.2025-01.io.tandem:a", ISID: isid, HasISID: true}, a)
	assert.Equal(t, PRRegistrant{Key: 0xbb, AllTgPt: true, RelativeTargetPort: 2,
		TransportID: tidB, Initiator: "iqn.2025-01.io.tandem:b"}, b)
}

func TestPROut(t *testing.T) {
	type rec struct{ cdb, param []byte }
	var got []rec
	conflict := false
	f := newFake(t, func(f *fakeTarget) {
		f.hook = func(cdb, data []byte) (fakeResult, bool) {
			if cdb[0] != opPROut {
				return fakeResult{}, false
			}
			got = append(got, rec{append([]byte(nil), cdb[:10]...), append([]byte(nil), data...)})
			if conflict {
				return fakeResult{status: scsi.StatusReservationConflict}, true
			}
			return fakeResult{}, true
		}
	})
	s := dial(t, f, nil)
	ctx := testCtx(t)
	isid := [6]byte{0x80, 0, 0, 0, 0, 9}
	tid := ISCSITransportID("iqn.2025-01.io.tandem:b", &isid)

	param := func(key, sark uint64, flags byte, extra ...byte) []byte {
		p := binary.BigEndian.AppendUint64(nil, key)
		p = binary.BigEndian.AppendUint64(p, sark)
		p = append(p, 0, 0, 0, 0, flags, 0, 0, 0)
		return append(p, extra...)
	}
	cdb := func(sa, scopeType byte, n int) []byte {
		return []byte{0x5f, sa, scopeType, 0, 0, 0, 0, byte(n >> 8), byte(n), 0}
	}
	specIPT := binary.BigEndian.AppendUint32(nil, uint32(len(tid)))
	specIPT = append(specIPT, tid...)
	move := binary.BigEndian.AppendUint64(nil, 0x11)
	move = binary.BigEndian.AppendUint64(move, 0x22)
	move = append(move, 0, 0x03, 0, 2)
	move = binary.BigEndian.AppendUint32(move, uint32(len(tid)))
	move = append(move, tid...)

	tests := []struct {
		desc string
		call func() error
		want rec
	}{
		{"register", func() error { return s.PRRegister(ctx, 0, 0, 0x11, PROptions{}) },
			rec{cdb(0, 0, 24), param(0, 0x11, 0)}},
		{"register aptpl all_tg_pt", func() error { return s.PRRegister(ctx, 0, 0x11, 0x12, PROptions{APTPL: true, AllTgPt: true}) },
			rec{cdb(0, 0, 24), param(0x11, 0x12, 0x05)}},
		{"register spec_i_pt", func() error { return s.PRRegister(ctx, 0, 0, 0x11, PROptions{TransportIDs: [][]byte{tid}}) },
			rec{cdb(0, 0, 28+len(tid)), param(0, 0x11, 0x08, specIPT...)}},
		{"register and ignore", func() error { return s.PRRegisterAndIgnore(ctx, 0, 0x13, PROptions{APTPL: true}) },
			rec{cdb(6, 0, 24), param(0, 0x13, 0x01)}},
		{"reserve", func() error { return s.PRReserve(ctx, 0, 0x11, PRWriteExclusiveRegistrantsOnly) },
			rec{cdb(1, 5, 24), param(0x11, 0, 0)}},
		{"release", func() error { return s.PRRelease(ctx, 0, 0x11, PRExclusiveAccess) },
			rec{cdb(2, 3, 24), param(0x11, 0, 0)}},
		{"clear", func() error { return s.PRClear(ctx, 0, 0x11) },
			rec{cdb(3, 0, 24), param(0x11, 0, 0)}},
		{"preempt", func() error { return s.PRPreempt(ctx, 0, 0x11, 0x22, PRWriteExclusive) },
			rec{cdb(4, 1, 24), param(0x11, 0x22, 0)}},
		{"preempt and abort", func() error { return s.PRPreemptAndAbort(ctx, 0, 0x11, 0x22, PRExclusiveAccessAllRegistrants) },
			rec{cdb(5, 8, 24), param(0x11, 0x22, 0)}},
		{"register and move", func() error {
			return s.PRRegisterAndMove(ctx, 0, 0x11, 0x22, PRWriteExclusiveRegistrantsOnly,
				PRMove{RelativeTargetPort: 2, TransportID: tid, Unregister: true, APTPL: true})
		}, rec{cdb(7, 5, 24+len(tid)), move}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f.mu.Lock()
			got = nil
			f.mu.Unlock()
			require.NoError(t, tt.call())
			f.mu.Lock()
			defer f.mu.Unlock()
			require.Len(t, got, 1)
			assert.Equal(t, tt.want.cdb, got[0].cdb)
			assert.Equal(t, tt.want.param, got[0].param)
		})
	}

	// A unit attention other than the reservation ones is retried: the
	// command was not executed.
	uas := 0
	f.mu.Lock()
	hook := f.hook
	f.hook = func(cdb, data []byte) (fakeResult, bool) {
		if cdb[0] == opPROut && uas < 2 {
			uas++
			return fakeResult{status: scsi.StatusCheckCondition, sense: fixedSense(6, 0x29, 0)}, true
		}
		return hook(cdb, data)
	}
	got = nil
	f.mu.Unlock()
	require.NoError(t, s.PRClear(ctx, 0, 0x11))
	f.mu.Lock()
	assert.Equal(t, 2, uas)
	assert.Len(t, got, 1)
	conflict = true
	f.mu.Unlock()
	err := s.PRReserve(ctx, 0, 0x11, PRWriteExclusive)
	require.ErrorIs(t, err, ErrReservationConflict)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, byte(scsi.StatusReservationConflict), se.Status)
}

func TestTransportID(t *testing.T) {
	isid := [6]byte{0x80, 0xab, 0, 0, 0, 0x01}
	tid := ISCSITransportID("iqn.2025-01.io.tandem:node", &isid)
	assert.Equal(t, byte(0x45), tid[0])
	assert.Zero(t, len(tid)%4)
	assert.Equal(t, "iqn.2025-01.io.tandem:node,i,0x80ab00000001\x00", string(tid[4:4+len("iqn.2025-01.io.tandem:node,i,0x80ab00000001")+1]))
	name, got, has, err := ParseISCSITransportID(tid)
	require.NoError(t, err)
	assert.Equal(t, "iqn.2025-01.io.tandem:node", name)
	assert.Equal(t, isid, got)
	assert.True(t, has)

	short := ISCSITransportID("iqn.x", nil)
	assert.Len(t, short, 24, "padded to the 20-byte minimum")
	name, _, has, err = ParseISCSITransportID(short)
	require.NoError(t, err)
	assert.Equal(t, "iqn.x", name)
	assert.False(t, has)

	for _, bad := range [][]byte{{0x45}, {0x04, 0, 0, 4, 'a', 0, 0, 0}, {0x45, 0, 0, 4, 'a', 0, 0, 0}, {0x05, 0, 0, 40}} {
		_, _, _, err := ParseISCSITransportID(bad)
		assert.Error(t, err, "%x", bad)
	}
}

func TestReservationConflictAndUnitAttention(t *testing.T) {
	var (
		writes, turs int
		writeAnswer  fakeResult
		turUAs       int
	)
	f := newFake(t, func(f *fakeTarget) {
		f.hook = func(cdb, _ []byte) (fakeResult, bool) {
			switch cdb[0] {
			case scsi.OpWrite16:
				writes++
				if writeAnswer.status != 0 {
					return writeAnswer, true
				}
			case scsi.OpTestUnitReady:
				turs++
				if turs <= turUAs {
					return fakeResult{status: scsi.StatusCheckCondition, sense: fixedSense(6, 0x29, 0)}, true
				}
			}
			return fakeResult{}, false
		}
	})
	s := dial(t, f, nil)
	ctx := testCtx(t)
	set := func(fn func()) { f.mu.Lock(); fn(); f.mu.Unlock() }
	block := make([]byte, 512)

	set(func() { writeAnswer = fakeResult{status: scsi.StatusReservationConflict} })
	err := s.Write16(ctx, 0, 0, block, false)
	require.ErrorIs(t, err, ErrReservationConflict)
	assert.False(t, IsUnitAttention(err))
	set(func() { assert.Equal(t, 1, writes, "a conflict is not retried") })

	// Persistent reservation UAs go back to the caller at once.
	for _, ascq := range []byte{3, 4, 5} {
		set(func() { writes = 0; writeAnswer = fakeResult{status: 2, sense: fixedSense(6, 0x2a, ascq)} })
		err = s.Write16(ctx, 0, 0, block, false)
		require.True(t, IsUnitAttention(err), "%v", err)
		require.True(t, IsReservationUnitAttention(err))
		assert.False(t, errors.Is(err, ErrReservationConflict))
		var se *SenseError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, [3]byte{6, 0x2a, ascq}, [3]byte{se.Key, se.ASC, se.ASCQ})
		set(func() { assert.Equal(t, 1, writes) })
	}

	// Other UAs are retried, a bounded number of times.
	set(func() { writes = 0; writeAnswer = fakeResult{status: 2, sense: fixedSense(6, 0x29, 0)} })
	err = s.Write16(ctx, 0, 0, block, false)
	require.True(t, IsUnitAttention(err))
	assert.False(t, IsReservationUnitAttention(err))
	set(func() { assert.Equal(t, uaRetries+1, writes) })

	set(func() { turUAs = 2 })
	require.NoError(t, s.TestUnitReady(ctx, 0))
	set(func() { assert.Equal(t, 3, turs) })

	assert.False(t, IsUnitAttention(&SenseError{Key: scsi.SenseIllegalRequest}))
	assert.False(t, IsUnitAttention(nil))
	assert.False(t, IsReservationUnitAttention(errors.New("x")))
}

func TestTaskManagement(t *testing.T) {
	f := newFake(t, func(f *fakeTarget) { f.tmfResponse = TMFFunctionComplete })
	s := dial(t, f, nil)
	ctx := testCtx(t)

	calls := []struct {
		desc string
		call func() (byte, error)
		fn   byte
		lun  uint64
		ref  uint32
	}{
		{"abort task", func() (byte, error) { return s.AbortTask(ctx, 2, 0x1234, 77) }, pdu.TMFAbortTask, 2, 0x1234},
		{"abort task set", func() (byte, error) { return s.AbortTaskSet(ctx, 3) }, pdu.TMFAbortTaskSet, 3, pdu.ReservedTag},
		{"clear task set", func() (byte, error) { return s.ClearTaskSet(ctx, 4) }, pdu.TMFClearTaskSet, 4, pdu.ReservedTag},
		{"lun reset", func() (byte, error) { return s.LUNReset(ctx, 5) }, pdu.TMFLogicalUnitReset, 5, pdu.ReservedTag},
		{"target warm reset", func() (byte, error) { return s.TargetWarmReset(ctx) }, pdu.TMFTargetWarmReset, 0, pdu.ReservedTag},
		{"target cold reset", func() (byte, error) { return s.TargetColdReset(ctx) }, pdu.TMFTargetColdReset, 0, pdu.ReservedTag},
	}
	for i, c := range calls {
		t.Run(c.desc, func(t *testing.T) {
			resp, err := c.call()
			require.NoError(t, err)
			assert.Equal(t, byte(TMFFunctionComplete), resp)
			f.mu.Lock()
			defer f.mu.Unlock()
			require.Len(t, f.tmfs, i+1)
			b := f.tmfs[i]
			assert.Equal(t, c.fn, b.Function())
			assert.True(t, b.Final())
			assert.True(t, b.Immediate(), "task management goes immediate")
			assert.Equal(t, scsi.EncodeLUN(c.lun), b.LUN())
			assert.Equal(t, c.ref, b.ReferencedTaskTag())
			switch c.fn {
			case pdu.TMFAbortTask:
				assert.Equal(t, uint32(77), b.RefCmdSN())
			case pdu.TMFAbortTaskSet, pdu.TMFClearTaskSet:
				assert.Equal(t, b.CmdSN(), b.RefCmdSN(), "RFC 7143 11.5.5: its own CmdSN")
			}
		})
	}

	f2 := newFake(t, func(f *fakeTarget) { f.tmfResponse = TMFNotSupported })
	s2 := dial(t, f2, nil)
	resp, err := s2.AbortTaskSet(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, byte(TMFNotSupported), resp)
}
