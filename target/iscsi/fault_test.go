package iscsi

import (
	"context"
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

// stall is the sleep of a Faulty backend: every delayed I/O announces
// itself on entered and then hangs until release, however long the fault's
// delay says, so no test depends on how fast the machine is.
type stall struct {
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func newStall() *stall { return &stall{entered: make(chan struct{}, 64), gate: make(chan struct{})} }

func (s *stall) sleep(time.Duration) { s.entered <- struct{}{}; <-s.gate }
func (s *stall) release()            { s.once.Do(func() { close(s.gate) }) }

func (s *stall) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the I/O never reached the backend")
	}
}

// startFaulty serves a real scsi.Target whose LUN 0 sits on a Faulty file.
func startFaulty(t *testing.T, depth uint32) (string, *backstore.Faulty, *tscsi.LU, *stall) {
	t.Helper()
	f, err := backstore.Open(filepath.Join(t.TempDir(), "lu.img"), backstore.Options{Create: true, Size: 1 << 20})
	require.NoError(t, err)
	st := newStall()
	fb := backstore.NewFaulty(f, st.sleep)
	lu, err := tscsi.NewLU(tscsi.LUConfig{Serial: "FAULT0001", WriteCache: true}, fb.Backend())
	require.NoError(t, err)
	t.Cleanup(func() { _ = lu.Close() })
	tgt := tscsi.NewTarget(testIQN, nil)
	require.NoError(t, tgt.AddLU(0, lu))
	s := NewServer(Config{
		NopInterval: -1,
		QueueDepth:  depth,
		NewLogin: func(c *login.Config, _ string) Negotiator {
			return &fakeLogin{cfg: c, params: defaultParams()}
		},
	})
	require.NoError(t, s.AddTarget(login.TargetInfo{Name: testIQN}, tgt))
	addr, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() {
		st.release() // let stalled I/O finish so that Close can drain
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return addr.String(), fb, lu, st
}

func TestMediumErrorOverISCSI(t *testing.T) {
	addr, fb, lu, _ := startFaulty(t, 0)
	c := dial(t, addr)
	c.loginNormal(isid1)
	c.clearPowerOnUA()
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultRead, Off: 40 * 512, Len: 512, Err: backstore.FaultEIO}}))

	bad := c.scsiCmd(read10(32, 16), pdu.FlagRead|pdu.FlagFinal, 16*512, nil)
	c.send(bad)
	_, resp := c.readData()
	require.Equal(t, bad.BHS.ITT(), resp.BHS.ITT())
	require.Equal(t, byte(scsi.StatusCheckCondition), resp.BHS.Status())
	require.Greater(t, len(resp.Data), 2, "sense travels in the response")
	// The SCSI Response's data segment: SenseLength, then the sense.
	sense, err := scsi.ParseSense(resp.Data[2:])
	require.NoError(t, err)
	assert.Equal(t, scsi.ParsedSense{Key: scsi.SenseMediumError, ASC: 0x11, ASCQ: 0, Information: 40, InfoValid: true}, sense)
	assert.Equal(t, uint64(1), lu.FaultStats().ReadErrors)

	// The session and the LU go on: the next good read is served.
	st, data := c.status(c.scsiCmd(read10(48, 8), pdu.FlagRead|pdu.FlagFinal, 8*512, nil))
	require.Equal(t, byte(scsi.StatusGood), st)
	assert.Len(t, data, 8*512)
}

// TestAbortTaskOfSlowRead: a read stuck in a disk that takes seconds is
// aborted at once, without waiting for the disk; its late completion
// sends nothing, and the next command is served.
func TestAbortTaskOfSlowRead(t *testing.T) {
	addr, fb, _, st := startFaulty(t, 0)
	c := dial(t, addr)
	c.loginNormal(isid1)
	c.clearPowerOnUA()
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultRead, Delay: 30 * time.Second}}))
	before := takeovers.Load()

	rd := c.scsiCmd(read10(0, 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil)
	c.send(rd)
	st.waitEntered(t)
	in := c.pduStream()
	abort := c.tmf(pdu.TMFAbortTask, rd.BHS.ITT(), rd.BHS.CmdSN())
	c.send(abort)
	// Answered while the read still hangs in the backend (the stall is
	// released only below): next's 5 s bound is not a timing assumption.
	requireTMF(t, next(t, in), abort.BHS.ITT(), pdu.TMFRespComplete)
	// The negative control of the inline test below: the first command
	// of a session goes to a worker, nothing is taken over.
	assert.Equal(t, before, takeovers.Load())

	st.release()
	require.NoError(t, fb.SetFaults(nil))
	good := c.scsiCmd(read10(8, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
	c.send(good)
	for {
		p := next(t, in)
		require.NotEqual(t, rd.BHS.ITT(), p.BHS.ITT(), "the aborted read answered after its abort")
		if p.BHS.Opcode() == pdu.OpSCSIResp || p.BHS.Flags()&pdu.FlagStatus != 0 {
			assert.Equal(t, good.BHS.ITT(), p.BHS.ITT())
			assert.Equal(t, byte(scsi.StatusGood), p.BHS.Status())
			break
		}
	}
}

// TestAbortTaskOfSlowReadInline: at queue depth 1 the reader executes
// commands itself; when one hangs in the backend a new reader takes
// over, so the ABORT TASK is still read and answered at once.
func TestAbortTaskOfSlowReadInline(t *testing.T) {
	addr, fb, _, st := startFaulty(t, 0)
	c := dial(t, addr)
	c.loginNormal(isid1)
	c.clearPowerOnUA()
	for range 2 * soloRun {
		c.send(c.scsiCmd(read10(0, 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil))
		_, p := c.readData()
		require.Equal(t, byte(scsi.StatusGood), p.BHS.Status())
	}
	before := takeovers.Load()
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultRead, Delay: 30 * time.Second}}))
	rd := c.scsiCmd(read10(0, 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil)
	c.send(rd)
	st.waitEntered(t)
	in := c.pduStream()
	abort := c.tmf(pdu.TMFAbortTask, rd.BHS.ITT(), rd.BHS.CmdSN())
	c.send(abort)
	requireTMF(t, next(t, in), abort.BHS.ITT(), pdu.TMFRespComplete)
	assert.Equal(t, before+1, takeovers.Load(), "the stuck read ran on the reader, which was taken over")

	st.release()
	require.NoError(t, fb.SetFaults(nil))
	good := c.scsiCmd(read10(8, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil)
	c.send(good)
	for {
		p := next(t, in)
		require.NotEqual(t, rd.BHS.ITT(), p.BHS.ITT(), "the aborted read answered after its abort")
		if p.BHS.Opcode() == pdu.OpSCSIResp || p.BHS.Flags()&pdu.FlagStatus != 0 {
			assert.Equal(t, good.BHS.ITT(), p.BHS.ITT())
			assert.Equal(t, byte(scsi.StatusGood), p.BHS.Status())
			break
		}
	}
}

// TestLUResetWithSlowReads: LOGICAL UNIT RESET with reads stuck in the
// backend completes without them.
func TestLUResetWithSlowReads(t *testing.T) {
	addr, fb, _, st := startFaulty(t, 0)
	c := dial(t, addr)
	c.loginNormal(isid1)
	c.clearPowerOnUA()
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultRead, Delay: 30 * time.Second}}))
	for i := range 3 {
		c.send(c.scsiCmd(read10(uint32(8*i), 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil))
		st.waitEntered(t)
	}
	in := c.pduStream()
	reset := c.tmf(pdu.TMFLogicalUnitReset, 0, 0)
	c.send(reset)
	requireTMF(t, next(t, in), reset.BHS.ITT(), pdu.TMFRespComplete)
}

// TestAbortTaskOfSlowWriteWaits is the other side: a write in the backend
// may still reach the medium, so ABORT TASK answers only once it left it
// (SAM-5 7.2); the wait is one backend call, which the stall bounds here.
func TestAbortTaskOfSlowWriteWaits(t *testing.T) {
	addr, fb, _, st := startFaulty(t, 0)
	c := dial(t, addr)
	c.loginNormal(isid1)
	c.clearPowerOnUA()
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultWrite, Delay: 30 * time.Second}}))
	wr := c.scsiCmd(write10(0, 1), pdu.FlagWrite|pdu.FlagFinal, 512, make([]byte, 512))
	c.send(wr)
	st.waitEntered(t)
	in := c.pduStream()
	abort := c.tmf(pdu.TMFAbortTask, wr.BHS.ITT(), wr.BHS.CmdSN())
	c.send(abort)
	quiet(t, in, 100*time.Millisecond)
	st.release()
	requireTMF(t, next(t, in), abort.BHS.ITT(), pdu.TMFRespComplete)
}

// TestCmdSNWindowClosesWhenTheQueueIsFull: with every slot of the queue
// taken by commands stuck in a slow disk, MaxCmdSN stops advancing (the
// window closes: MaxCmdSN = ExpCmdSN-1), and reopens as they finish.
func TestCmdSNWindowClosesWhenTheQueueIsFull(t *testing.T) {
	const depth = 4
	addr, fb, _, st := startFaulty(t, depth)
	c := dial(t, addr)
	c.loginNormal(isid1)
	c.clearPowerOnUA()
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultRead, Delay: 30 * time.Second}}))
	for i := range depth {
		c.send(c.scsiCmd(read10(uint32(8*i), 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil))
		st.waitEntered(t)
	}
	in := c.pduStream()
	ping := &pdu.PDU{}
	ping.BHS.SetOpcode(pdu.OpNOPOut)
	ping.BHS.SetImmediate(true)
	ping.BHS.SetFlags(pdu.FlagFinal)
	c.itt++
	ping.BHS.SetITT(c.itt)
	ping.BHS.SetTTT(pdu.ReservedTag)
	ping.BHS.SetCmdSN(c.cmdSN)
	c.send(ping)
	p := next(t, in)
	require.Equal(t, pdu.OpNOPIn, p.BHS.Opcode())
	assert.Equal(t, c.cmdSN, p.BHS.ExpCmdSN())
	assert.Equal(t, c.cmdSN-1, p.BHS.MaxCmdSN(), "the window is closed while the queue is full")

	st.release()
	var last uint32
	for range depth {
		p = next(t, in)
		last = p.BHS.MaxCmdSN()
	}
	assert.Equal(t, c.cmdSN+depth-1, last, "the window is whole again once they finished")
}

func TestAdvertisedMaxCmdSN(t *testing.T) {
	for _, tc := range []struct {
		desc                   string
		exp, depth, busy, prev uint32
		want                   uint32
	}{
		{desc: "idle: the whole depth", exp: 10, depth: 8, busy: 0, prev: 9, want: 17},
		{desc: "half busy", exp: 10, depth: 8, busy: 4, prev: 9, want: 13},
		{desc: "full: closed", exp: 10, depth: 8, busy: 8, prev: 9, want: 9},
		{desc: "over full: still closed", exp: 10, depth: 8, busy: 20, prev: 9, want: 9},
		{desc: "never below what was sent", exp: 12, depth: 8, busy: 8, prev: 17, want: 17},
		{desc: "serial wrap", exp: 0xfffffffe, depth: 4, busy: 1, prev: 0, want: 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			assert.Equal(t, tc.want, advertisedMaxCmdSN(tc.exp, tc.depth, tc.busy, tc.prev))
		})
	}
}
