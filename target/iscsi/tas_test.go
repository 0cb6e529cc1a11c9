package iscsi

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/login"
	tscsi "github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// gatedBackend holds every WriteAt while its gate is closed, so that
// writes stay executing for as long as a test needs.
type gatedBackend struct {
	backstore.Backend
	mu      sync.Mutex
	gate    chan struct{}
	writing chan struct{} // one token per WriteAt that entered
}

func (b *gatedBackend) WriteAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	g := b.gate
	b.mu.Unlock()
	if g != nil {
		b.writing <- struct{}{}
		<-g
	}
	return b.Backend.WriteAt(p, off)
}

func (b *gatedBackend) close() (open func()) {
	g := make(chan struct{})
	b.mu.Lock()
	b.gate = g
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.gate = nil
			b.mu.Unlock()
			close(g)
		})
	}
}

// startSCSI serves a real scsi.Target with one LU (LUN 0) on a gated
// file backend.
func startSCSI(t *testing.T, params login.Params) (string, *gatedBackend) {
	t.Helper()
	f, err := backstore.Open(filepath.Join(t.TempDir(), "lu.img"), backstore.Options{Create: true, Size: 1 << 20})
	require.NoError(t, err)
	be := &gatedBackend{Backend: f, writing: make(chan struct{}, 64)}
	lu, err := tscsi.NewLU(tscsi.LUConfig{Serial: "TAS0001"}, be)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lu.Close() })
	tgt := tscsi.NewTarget(testIQN, nil)
	require.NoError(t, tgt.AddLU(0, lu))
	s := NewServer(Config{
		NopInterval: -1,
		NewLogin: func(c *login.Config, _ string) Negotiator {
			return &fakeLogin{cfg: c, params: params}
		},
	})
	require.NoError(t, s.AddTarget(login.TargetInfo{Name: testIQN}, tgt))
	addr, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return addr.String(), be
}

// prOut sends PERSISTENT RESERVE OUT and its 24-byte parameter list,
// solicited by an R2T (InitialR2T=Yes, no immediate data); the response
// is left to the caller.
func (c *client) prOut(sa, typ byte, key, saKey uint64) *pdu.PDU {
	c.t.Helper()
	cdb := make([]byte, 10)
	cdb[0], cdb[1], cdb[2] = 0x5f, sa, typ
	cdb[8] = 24
	param := make([]byte, 24)
	binary.BigEndian.PutUint64(param, key)
	binary.BigEndian.PutUint64(param[8:], saKey)
	p := c.scsiCmd(cdb, pdu.FlagWrite|pdu.FlagFinal, 24, nil)
	c.send(p)
	r2t := c.recv()
	require.Equal(c.t, pdu.OpR2T, r2t.BHS.Opcode())
	c.send(dataOut(p.BHS.ITT(), r2t.BHS.TTT(), 0, 0, true, param))
	return p
}

// prOutStatus runs prOut to its status.
func (c *client) prOutStatus(sa, typ byte, key, saKey uint64) byte {
	c.t.Helper()
	p := c.prOut(sa, typ, key, saKey)
	_, st := c.readData()
	require.Equal(c.t, p.BHS.ITT(), st.BHS.ITT())
	return st.BHS.Status()
}

// status sends p and returns the status of its response, reading any
// Data-In before it.
func (c *client) status(p *pdu.PDU) (byte, []byte) {
	c.t.Helper()
	c.send(p)
	data, st := c.readData()
	require.Equal(c.t, p.BHS.ITT(), st.BHS.ITT())
	return st.BHS.Status(), data
}

// clearPowerOnUA consumes the unit attention every new nexus sees first.
func (c *client) clearPowerOnUA() {
	c.t.Helper()
	st, _ := c.status(c.scsiCmd([]byte{0, 0, 0, 0, 0, 0}, pdu.FlagFinal, 0, nil))
	require.Equal(c.t, byte(scsi.StatusCheckCondition), st)
	st, _ = c.status(c.scsiCmd([]byte{0, 0, 0, 0, 0, 0}, pdu.FlagFinal, 0, nil))
	require.Equal(c.t, byte(scsi.StatusGood), st)
}

// TestPreemptAndAbortTaskAbortedStatus is the two-guest hang: nexus A has
// four 4 KiB writes in flight, two executing and two waiting for Data-Out
// after their R2T, when nexus B preempts A's key with PREEMPT AND ABORT.
// With TAS=1 every one of A's writes completes with TASK ABORTED, none
// hangs, and B's next reservation commands run without a unit attention.
func TestPreemptAndAbortTaskAbortedStatus(t *testing.T) {
	params := defaultParams()
	params.InitialR2T, params.ImmediateData = true, false
	addr, be := startSCSI(t, params)
	a := dial(t, addr)
	a.loginNormal(isid1)
	b := dial(t, addr)
	b.loginNormal(isid2)
	a.clearPowerOnUA()
	b.clearPowerOnUA()
	for _, r := range []struct {
		c   *client
		key uint64
	}{{a, 0xa}, {b, 0xb}} {
		require.Equal(t, byte(scsi.StatusGood), r.c.prOutStatus(0x0, 0, 0, r.key)) // REGISTER
	}
	require.Equal(t, byte(scsi.StatusGood), a.prOutStatus(0x1, 0x1, 0xa, 0)) // RESERVE, Write Exclusive

	open := be.close()
	t.Cleanup(open)
	ain := a.pduStream()
	var writes []uint32
	for i := range 4 {
		w := a.scsiCmd(write10(uint32(16*i), 8), pdu.FlagWrite|pdu.FlagFinal, 4096, nil)
		a.send(w)
		writes = append(writes, w.BHS.ITT())
		r2t := next(t, ain)
		require.Equal(t, pdu.OpR2T, r2t.BHS.Opcode())
		if i < 2 {
			// The first two get their data and block in the backend.
			a.send(dataOut(w.BHS.ITT(), r2t.BHS.TTT(), 0, 0, true, make([]byte, 4096)))
			select {
			case <-be.writing:
			case <-time.After(5 * time.Second):
				t.Fatal("write never reached the backend")
			}
		}
	}

	// PREEMPT AND ABORT from B: A's waiting writes are answered at once;
	// B's command waits until the executing ones leave the medium.
	pa := b.prOut(0x5, 0x1, 0xb, 0xa)
	bin := b.pduStream()
	got := map[uint32]byte{}
	for range 2 {
		p := next(t, ain)
		require.Equal(t, pdu.OpSCSIResp, p.BHS.Opcode())
		got[p.BHS.ITT()] = p.BHS.Status()
		assert.Equal(t, uint32(1), p.BHS.DataSN(), "ExpDataSN counts the R2T sent")
	}
	assert.Equal(t, map[uint32]byte{writes[2]: scsi.StatusTaskAborted, writes[3]: scsi.StatusTaskAborted}, got)
	quiet(t, bin, 50*time.Millisecond)

	open()
	for range 2 {
		p := next(t, ain)
		require.Equal(t, pdu.OpSCSIResp, p.BHS.Opcode())
		got[p.BHS.ITT()] = p.BHS.Status()
	}
	for _, itt := range writes {
		assert.Equal(t, byte(scsi.StatusTaskAborted), got[itt], "write itt %d", itt)
	}
	p := next(t, bin)
	require.Equal(t, pa.BHS.ITT(), p.BHS.ITT())
	assert.Equal(t, byte(scsi.StatusGood), p.BHS.Status(), "PREEMPT AND ABORT")
	b.statSN = p.BHS.StatSN() + 1

	// ABORT TASK for a write that already completed with TASK ABORTED:
	// it is no longer in the task set.
	abt := a.tmf(pdu.TMFAbortTask, writes[0], a.cmdSN-4)
	a.send(abt)
	requireTMF(t, next(t, ain), abt.BHS.ITT(), pdu.TMFRespNoTask)

	// B goes on without a unit attention: READ KEYS, READ RESERVATION.
	for _, sa := range []byte{0, 1} {
		in := b.scsiCmd([]byte{0x5e, sa, 0, 0, 0, 0, 0, 0, 64, 0}, pdu.FlagRead|pdu.FlagFinal, 64, nil)
		b.send(in)
		var data []byte
		for {
			p := next(t, bin)
			data = append(data, p.Data...)
			if p.BHS.Opcode() == pdu.OpSCSIResp || p.BHS.Flags()&pdu.FlagStatus != 0 {
				require.Equal(t, in.BHS.ITT(), p.BHS.ITT())
				require.Equal(t, byte(scsi.StatusGood), p.BHS.Status(), "PERSISTENT RESERVE IN sa %d", sa)
				break
			}
		}
		require.GreaterOrEqual(t, len(data), 16)
		assert.Equal(t, uint64(0xb), binary.BigEndian.Uint64(data[8:]), "B's key, B's reservation")
	}
}

// tasDisk is tmfDisk with TAS=1 on every LU.
type tasDisk struct{ *tmfDisk }

func (tasDisk) TaskAbortedStatus(uint64) bool { return true }

func startTAS(t *testing.T, params login.Params) (string, *tmfDisk) {
	t.Helper()
	s := NewServer(Config{
		NopInterval: -1,
		NewLogin: func(c *login.Config, _ string) Negotiator {
			return &fakeLogin{cfg: c, params: params}
		},
	})
	disk := &tmfDisk{memDisk: newMemDisk(256)}
	require.NoError(t, s.AddTarget(login.TargetInfo{Name: testIQN}, tasDisk{disk}))
	addr, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return addr.String(), disk
}

// TestTaskSetFunctionsTaskAbortedStatus: CLEAR TASK SET and LOGICAL UNIT
// RESET from A complete B's tasks (executing, or waiting for Data-Out)
// with TASK ABORTED, while A's own aborted tasks end without a response,
// as the TMF response concludes them. TestLUResetAcrossSessions is the
// negative control: an executor without TAS ends B's task silently.
func TestTaskSetFunctionsTaskAbortedStatus(t *testing.T) {
	for _, fn := range []byte{pdu.TMFClearTaskSet, pdu.TMFLogicalUnitReset} {
		params := defaultParams()
		params.InitialR2T, params.ImmediateData = true, false
		addr, disk := startTAS(t, params)
		a := dial(t, addr)
		a.loginNormal(isid1)
		b := dial(t, addr)
		b.loginNormal(isid2)
		ain, bin := a.pduStream(), b.pduStream()

		release := disk.block()
		t.Cleanup(release)
		rd := b.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
		b.send(rd)
		require.Eventually(t, func() bool { return disk.entered.Load() == 1 }, time.Second, time.Millisecond)
		bw := b.scsiCmd(write10(8, 1), pdu.FlagWrite|pdu.FlagFinal, 512, nil)
		b.send(bw)
		require.Equal(t, pdu.OpR2T, next(t, bin).BHS.Opcode())
		aw := a.scsiCmd(write10(16, 1), pdu.FlagWrite|pdu.FlagFinal, 512, nil)
		a.send(aw)
		require.Equal(t, pdu.OpR2T, next(t, ain).BHS.Opcode())

		req := a.tmf(fn, pdu.ReservedTag, 0)
		a.send(req)
		p := next(t, bin)
		assert.Equal(t, bw.BHS.ITT(), p.BHS.ITT(), "the write waiting for Data-Out is answered first")
		assert.Equal(t, byte(scsi.StatusTaskAborted), p.BHS.Status())
		quiet(t, ain, 20*time.Millisecond)
		release()
		p = next(t, bin)
		assert.Equal(t, rd.BHS.ITT(), p.BHS.ITT())
		assert.Equal(t, byte(scsi.StatusTaskAborted), p.BHS.Status())
		requireTMF(t, next(t, ain), req.BHS.ITT(), pdu.TMFRespComplete)
		quiet(t, ain, 20*time.Millisecond)
		quiet(t, bin, 20*time.Millisecond)
	}
}

// TestAbortTaskSetOwnTasksSilent: the nexus's own ABORT TASK SET ends its
// tasks without a status even with TAS=1.
func TestAbortTaskSetOwnTasksSilent(t *testing.T) {
	params := defaultParams()
	params.InitialR2T, params.ImmediateData = true, false
	addr, _ := startTAS(t, params)
	a := dial(t, addr)
	a.loginNormal(isid1)
	ain := a.pduStream()
	aw := a.scsiCmd(write10(16, 1), pdu.FlagWrite|pdu.FlagFinal, 512, nil)
	a.send(aw)
	require.Equal(t, pdu.OpR2T, next(t, ain).BHS.Opcode())
	req := a.tmf(pdu.TMFAbortTaskSet, pdu.ReservedTag, 0)
	a.send(req)
	requireTMF(t, next(t, ain), req.BHS.ITT(), pdu.TMFRespComplete)
	quiet(t, ain, 20*time.Millisecond)
}
