package iscsi

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/login"
	tscsi "github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

var isid2 = [6]byte{0x80, 0, 0, 0, 0, 2}

type resetCall struct {
	lun  uint64
	kind tscsi.ResetKind
	by   [6]byte
}

// tmfDisk is memDisk plus the SCSI layer's task management entry points,
// recording what the fabric calls.
type tmfDisk struct {
	*memDisk
	mu      sync.Mutex
	resets  []resetCall
	losses  [][6]byte
	cleared [][][6]byte
	aborter tscsi.Aborter
}

func (d *tmfDisk) Reset(lun uint64, kind tscsi.ResetKind, by *tscsi.Nexus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resets = append(d.resets, resetCall{lun, kind, by.ISID})
}

// NexusLoss records each nexus once: the fabric calls it when the
// transport goes and again when the session's tasks have drained.
func (d *tmfDisk) NexusLoss(n *tscsi.Nexus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.losses {
		if l == n.ISID {
			return
		}
	}
	d.losses = append(d.losses, n.ISID)
}

func (d *tmfDisk) TasksCleared(lun uint64, by *tscsi.Nexus, victims []*tscsi.Nexus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var v [][6]byte
	for _, n := range victims {
		v = append(v, n.ISID)
	}
	d.cleared = append(d.cleared, v)
}

func (d *tmfDisk) SetAborter(a tscsi.Aborter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborter = a
}

func (d *tmfDisk) lossCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.losses)
}

func (d *tmfDisk) resetCalls() []resetCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]resetCall(nil), d.resets...)
}

// block makes Execute wait until the returned function is called.
func (d *tmfDisk) block() (release func()) {
	ch := make(chan struct{})
	d.memDisk.block.Store(&ch)
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func startTMF(t *testing.T, params login.Params) (*Server, string, *tmfDisk) {
	t.Helper()
	s := NewServer(Config{
		NopInterval: -1,
		NewLogin: func(c *login.Config, _ string) Negotiator {
			return &fakeLogin{cfg: c, params: params}
		},
	})
	disk := &tmfDisk{memDisk: newMemDisk(256)}
	require.NoError(t, s.AddTarget(login.TargetInfo{Name: testIQN}, disk))
	require.NotNil(t, disk.aborter, "the fabric registers its Aborter")
	addr, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, addr.String(), disk
}

func (c *client) tmf(fn byte, ref, refCmdSN uint32) *pdu.PDU {
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpTaskMgmtReq)
	p.BHS.SetImmediate(true)
	p.BHS.SetFlags(pdu.FlagFinal | fn)
	p.BHS.SetLUN(scsi.EncodeLUN(0))
	c.itt++
	p.BHS.SetITT(c.itt)
	p.BHS.SetReferencedTaskTag(ref)
	p.BHS.SetCmdSN(c.cmdSN)
	p.BHS.SetRefCmdSN(refCmdSN)
	p.BHS.SetExpStatSN(c.statSN)
	return p
}

// pduStream reads PDUs in the background, so that a test can check that
// nothing arrives for a while without breaking the stream.
func (c *client) pduStream() <-chan *pdu.PDU {
	ch := make(chan *pdu.PDU, 16)
	_ = c.nc.SetReadDeadline(time.Time{})
	go func() {
		defer close(ch)
		for {
			p := &pdu.PDU{}
			if err := c.r.Read(p); err != nil {
				return
			}
			ch <- p
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan *pdu.PDU) *pdu.PDU {
	t.Helper()
	select {
	case p, ok := <-ch:
		require.True(t, ok, "connection closed")
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no PDU")
		return nil
	}
}

func quiet(t *testing.T, ch <-chan *pdu.PDU, d time.Duration) {
	t.Helper()
	select {
	case p := <-ch:
		t.Fatalf("unexpected %v itt %#x", p.BHS.Opcode(), p.BHS.ITT())
	case <-time.After(d):
	}
}

func closed(t *testing.T, ch <-chan *pdu.PDU) {
	t.Helper()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("connection not closed")
		}
	}
}

func requireTMF(t *testing.T, p *pdu.PDU, itt uint32, resp byte) {
	t.Helper()
	require.Equal(t, pdu.OpTaskMgmtResp, p.BHS.Opcode())
	assert.Equal(t, itt, p.BHS.ITT())
	assert.Equal(t, resp, p.BHS.Response())
}

func TestAbortTaskWaitingForR2T(t *testing.T) {
	params := defaultParams()
	params.InitialR2T, params.ImmediateData = true, false
	_, addr, disk := startTMF(t, params)
	c := dial(t, addr)
	c.loginNormal(isid1)
	w := c.scsiCmd(write10(0, 2), pdu.FlagWrite|pdu.FlagFinal, 1024, nil)
	c.send(w)
	r2t := c.recv()
	require.Equal(t, pdu.OpR2T, r2t.BHS.Opcode())

	abort := c.tmf(pdu.TMFAbortTask, w.BHS.ITT(), w.BHS.CmdSN())
	c.send(abort)
	requireTMF(t, c.recv(), abort.BHS.ITT(), pdu.TMFRespComplete)
	// Data-Out for the aborted task is discarded silently.
	c.send(dataOut(w.BHS.ITT(), r2t.BHS.TTT(), 0, 0, true, make([]byte, 1024)))
	c.send(c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil))
	_, st := c.readData()
	assert.Equal(t, byte(scsi.StatusGood), st.BHS.Status())
	assert.Equal(t, int32(1), disk.entered.Load(), "the aborted write never executed")

	// The ITT is free again.
	again := c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	again.BHS.SetITT(w.BHS.ITT())
	c.send(again)
	_, st = c.readData()
	assert.Equal(t, w.BHS.ITT(), st.BHS.ITT())
}

func TestAbortTaskExecuting(t *testing.T) {
	_, addr, disk := startTMF(t, defaultParams())
	release := disk.block()
	defer release()
	c := dial(t, addr)
	c.loginNormal(isid1)
	rd := c.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
	c.send(rd)
	require.Eventually(t, func() bool { return disk.entered.Load() == 1 }, time.Second, time.Millisecond)
	abort := c.tmf(pdu.TMFAbortTask, rd.BHS.ITT(), rd.BHS.CmdSN())
	c.send(abort)
	in := c.pduStream()
	quiet(t, in, 100*time.Millisecond) // the TMF waits for the task
	release()
	requireTMF(t, next(t, in), abort.BHS.ITT(), pdu.TMFRespComplete)
	tur := c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	c.send(tur)
	p := next(t, in)
	require.Equal(t, pdu.OpSCSIResp, p.BHS.Opcode(), "no Data-In of the aborted read")
	assert.Equal(t, tur.BHS.ITT(), p.BHS.ITT())
}

func TestAbortTaskUnknownAndRefCmdSN(t *testing.T) {
	_, addr, _ := startTMF(t, defaultParams())
	c := dial(t, addr)
	c.loginNormal(isid1)
	// A completed task does not exist any more.
	tur := c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	c.send(tur)
	c.readData()
	abort := c.tmf(pdu.TMFAbortTask, tur.BHS.ITT(), tur.BHS.CmdSN())
	c.send(abort)
	requireTMF(t, c.recv(), abort.BHS.ITT(), pdu.TMFRespNoTask)

	// A command lost on the way (CmdSN n): ABORT TASK with RefCmdSN n and
	// CmdSN n+1 consumes n (RFC 7143 section 11.5.1).
	lost := c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	abort = c.tmf(pdu.TMFAbortTask, lost.BHS.ITT(), lost.BHS.CmdSN())
	c.send(abort)
	r := c.recv()
	requireTMF(t, r, abort.BHS.ITT(), pdu.TMFRespComplete)
	assert.Equal(t, c.cmdSN, r.BHS.ExpCmdSN(), "the lost CmdSN counts as received")
	// If it shows up late, it is dropped; the next command runs.
	c.send(lost)
	tur = c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	c.send(tur)
	_, st := c.readData()
	assert.Equal(t, tur.BHS.ITT(), st.BHS.ITT())

	// RefCmdSN outside the window: task does not exist.
	abort = c.tmf(pdu.TMFAbortTask, 0x7777, c.cmdSN+1000)
	c.send(abort)
	requireTMF(t, c.recv(), abort.BHS.ITT(), pdu.TMFRespNoTask)
}

func TestAbortTaskSet(t *testing.T) {
	params := defaultParams()
	params.InitialR2T, params.ImmediateData = true, false
	_, addr, disk := startTMF(t, params)
	release := disk.block()
	defer release()
	c := dial(t, addr)
	c.loginNormal(isid1)
	w := c.scsiCmd(write10(0, 2), pdu.FlagWrite|pdu.FlagFinal, 1024, nil)
	c.send(w)
	require.Equal(t, pdu.OpR2T, c.recv().BHS.Opcode())
	rd := c.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
	c.send(rd)
	require.Eventually(t, func() bool { return disk.entered.Load() == 1 }, time.Second, time.Millisecond)
	// Non-immediate this time: it takes its CmdSN turn.
	ats := c.tmf(pdu.TMFAbortTaskSet, pdu.ReservedTag, 0)
	ats.BHS.SetImmediate(false)
	c.cmdSN++
	c.send(ats)
	in := c.pduStream()
	quiet(t, in, 50*time.Millisecond)
	release()
	requireTMF(t, next(t, in), ats.BHS.ITT(), pdu.TMFRespComplete)
	tur := c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	c.send(tur)
	p := next(t, in)
	require.Equal(t, pdu.OpSCSIResp, p.BHS.Opcode())
	assert.Equal(t, tur.BHS.ITT(), p.BHS.ITT())
	assert.Equal(t, int32(2), disk.entered.Load(), "the write never executed")
}

func TestLUResetAcrossSessions(t *testing.T) {
	_, addr, disk := startTMF(t, defaultParams())
	a := dial(t, addr)
	a.loginNormal(isid1)
	b := dial(t, addr)
	b.loginNormal(isid2)
	release := disk.block()
	defer release()
	rd := b.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
	b.send(rd)
	require.Eventually(t, func() bool { return disk.entered.Load() == 1 }, time.Second, time.Millisecond)
	bin := b.pduStream()

	reset := a.tmf(pdu.TMFLogicalUnitReset, pdu.ReservedTag, 0)
	a.send(reset)
	ain := a.pduStream()
	quiet(t, ain, 50*time.Millisecond)
	release()
	requireTMF(t, next(t, ain), reset.BHS.ITT(), pdu.TMFRespComplete)
	assert.Equal(t, []resetCall{{0, tscsi.LUReset, isid1}}, disk.resetCalls())

	// B lost its read silently and goes on.
	tur := b.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	b.send(tur)
	p := next(t, bin)
	require.Equal(t, pdu.OpSCSIResp, p.BHS.Opcode())
	assert.Equal(t, tur.BHS.ITT(), p.BHS.ITT())

	// An unmapped LUN is reported.
	bad := a.tmf(pdu.TMFLogicalUnitReset, pdu.ReservedTag, 0)
	bad.BHS.SetLUN(0xc1 << 56)
	a.send(bad)
	requireTMF(t, next(t, ain), bad.BHS.ITT(), pdu.TMFRespNoLUN)
}

func TestClearTaskSetNamesVictims(t *testing.T) {
	_, addr, disk := startTMF(t, defaultParams())
	a := dial(t, addr)
	a.loginNormal(isid1)
	b := dial(t, addr)
	b.loginNormal(isid2)
	release := disk.block()
	rd := b.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
	b.send(rd)
	require.Eventually(t, func() bool { return disk.entered.Load() == 1 }, time.Second, time.Millisecond)
	cts := a.tmf(pdu.TMFClearTaskSet, pdu.ReservedTag, 0)
	a.send(cts)
	ain := a.pduStream()
	quiet(t, ain, 50*time.Millisecond)
	release()
	requireTMF(t, next(t, ain), cts.BHS.ITT(), pdu.TMFRespComplete)
	disk.mu.Lock()
	defer disk.mu.Unlock()
	assert.Equal(t, [][][6]byte{{isid2}}, disk.cleared)
}

func TestColdResetDropsConnections(t *testing.T) {
	s, addr, disk := startTMF(t, defaultParams())
	a := dial(t, addr)
	a.loginNormal(isid1)
	b := dial(t, addr)
	b.loginNormal(isid2)
	require.Eventually(t, func() bool { return len(s.Sessions()) == 2 }, time.Second, time.Millisecond)
	bin := b.pduStream()
	cold := a.tmf(pdu.TMFTargetColdReset, pdu.ReservedTag, 0)
	a.send(cold)
	requireTMF(t, a.recv(), cold.BHS.ITT(), pdu.TMFRespComplete)
	_, err := a.recvErr(2 * time.Second)
	require.Error(t, err, "the connection closes after the response")
	closed(t, bin)
	assert.Equal(t, []resetCall{{0, tscsi.ColdReset, isid1}}, disk.resetCalls())
	require.Eventually(t, func() bool { return disk.lossCount() == 2 }, 2*time.Second, time.Millisecond,
		"NexusLoss for both sessions")
}

func TestWarmResetAndOtherFunctions(t *testing.T) {
	_, addr, disk := startTMF(t, defaultParams())
	c := dial(t, addr)
	c.loginNormal(isid1)
	for _, tc := range []struct {
		fn   byte
		resp byte
	}{
		{pdu.TMFTargetWarmReset, pdu.TMFRespComplete},
		{pdu.TMFClearACA, pdu.TMFRespNotSupported},
		{pdu.TMFTaskReassign, pdu.TMFRespNoReassign},
		{0x3f, pdu.TMFRespRejected},
	} {
		req := c.tmf(tc.fn, pdu.ReservedTag, 0)
		c.send(req)
		requireTMF(t, c.recv(), req.BHS.ITT(), tc.resp)
	}
	assert.Equal(t, []resetCall{{0, tscsi.WarmReset, isid1}}, disk.resetCalls())
	// The session survives a warm reset.
	c.send(c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil))
	_, st := c.readData()
	assert.Equal(t, byte(scsi.StatusGood), st.BHS.Status())
}

func TestAborterFromAnotherSession(t *testing.T) {
	_, addr, disk := startTMF(t, defaultParams())
	b := dial(t, addr)
	b.loginNormal(isid2)
	release := disk.block()
	defer release()
	rd := b.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
	b.send(rd)
	require.Eventually(t, func() bool { return disk.entered.Load() == 1 }, time.Second, time.Millisecond)
	bin := b.pduStream()

	// PREEMPT AND ABORT in the SCSI layer aborts B's tasks on LUN 0 and
	// must not return while the read can still touch the medium.
	done := make(chan struct{})
	go func() {
		disk.aborter(0, func(n *tscsi.Nexus) bool { return n.ISID == isid2 })
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Aborter returned while the task still executed")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Aborter never returned")
	}
	tur := b.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	b.send(tur)
	p := next(t, bin)
	require.Equal(t, pdu.OpSCSIResp, p.BHS.Opcode(), "the aborted read sent nothing")
	assert.Equal(t, tur.BHS.ITT(), p.BHS.ITT())

	// Another LUN or another nexus: nothing to abort, returns at once.
	disk.aborter(1, func(*tscsi.Nexus) bool { return true })
}

func TestNexusLossOnLogoutAndDrop(t *testing.T) {
	s, addr, disk := startTMF(t, defaultParams())
	c := dial(t, addr)
	c.loginNormal(isid1)
	lo := &pdu.PDU{}
	lo.BHS.SetOpcode(pdu.OpLogoutReq)
	lo.BHS.SetImmediate(true)
	lo.BHS.SetFlags(pdu.FlagFinal | pdu.LogoutCloseSession)
	lo.BHS.SetITT(9)
	lo.BHS.SetCmdSN(c.cmdSN)
	c.send(lo)
	require.Equal(t, pdu.OpLogoutResp, c.recv().BHS.Opcode())
	require.Equal(t, 1, disk.lossCount(), "the nexus ended before the logout response")

	c = dial(t, addr)
	c.loginNormal(isid2)
	require.Eventually(t, func() bool { return len(s.Sessions()) == 1 }, time.Second, time.Millisecond)
	_ = c.nc.Close()
	require.Eventually(t, func() bool { return disk.lossCount() == 2 }, 2*time.Second, time.Millisecond)
	disk.mu.Lock()
	defer disk.mu.Unlock()
	assert.Equal(t, [][6]byte{isid1, isid2}, disk.losses)
}

func TestDuplicateITTRejected(t *testing.T) {
	params := defaultParams()
	params.InitialR2T, params.ImmediateData = true, false
	_, addr, _ := startTMF(t, params)
	c := dial(t, addr)
	c.loginNormal(isid1)
	w := c.scsiCmd(write10(0, 1), pdu.FlagWrite|pdu.FlagFinal, 512, nil)
	c.send(w)
	require.Equal(t, pdu.OpR2T, c.recv().BHS.Opcode())
	dup := c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	dup.BHS.SetITT(w.BHS.ITT())
	c.send(dup)
	rej := c.recv()
	require.Equal(t, pdu.OpReject, rej.BHS.Opcode())
	assert.Equal(t, byte(pdu.RejectTaskInProgress), rej.BHS.Response())
}

func TestAbortSanitizeDoesNotWait(t *testing.T) {
	_, addr, disk := startTMF(t, defaultParams())
	release := disk.block()
	defer release()
	c := dial(t, addr)
	c.loginNormal(isid1)
	san := c.scsiCmd([]byte{0x48, 0x01}, pdu.FlagFinal, 0, nil)
	c.send(san)
	require.Eventually(t, func() bool { return disk.entered.Load() == 1 }, time.Second, time.Millisecond)
	// SBC-4 4.11: the sanitize goes on; the abort answers at once.
	abort := c.tmf(pdu.TMFAbortTask, san.BHS.ITT(), san.BHS.CmdSN())
	c.send(abort)
	requireTMF(t, c.recv(), abort.BHS.ITT(), pdu.TMFRespComplete)
	release()
	tur := c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil)
	c.send(tur)
	_, st := c.readData()
	assert.Equal(t, tur.BHS.ITT(), st.BHS.ITT(), "the SANITIZE response is suppressed")
}

// TestNexusLossBeforeLaterPDUs: a reader that read a PDU while a nexus
// loss is being applied handles it only after the loss.
func TestNexusLossBeforeLaterPDUs(t *testing.T) {
	var l nexusLosses
	l.wait() // nothing pending: returns at once
	inLoss, finish := make(chan struct{}), make(chan struct{})
	applied := make(chan struct{})
	go l.apply(func() {
		close(inLoss)
		<-finish
		close(applied)
	})
	<-inLoss
	waited := make(chan struct{})
	go func() {
		l.wait()
		select {
		case <-applied:
		default:
			t.Error("wait returned before the loss was applied")
		}
		close(waited)
	}()
	close(finish)
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("wait never returned")
	}
}
