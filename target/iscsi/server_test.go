package iscsi

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
	"github.com/tandem-ha/tandem/wire/text"
)

var isid1 = [6]byte{0x80, 0, 0, 0, 0, 1}

func TestReadWriteImmediateAndUnsolicited(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	c := dial(t, ts.addr)
	c.loginNormal(isid1)

	// 32 KiB write: 8 KiB immediate, 8 KiB unsolicited (FirstBurst 16 KiB),
	// then one R2T for the remaining 16 KiB.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 2048)
	cmd := c.scsiCmd(write10(10, 64), pdu.FlagWrite, uint32(len(payload)), payload[:8192])
	c.send(cmd)
	itt := cmd.BHS.ITT()
	c.send(dataOut(itt, pdu.ReservedTag, 0, 8192, true, payload[8192:16384]))
	r2t := c.recv()
	require.Equal(t, pdu.OpR2T, r2t.BHS.Opcode())
	assert.Equal(t, uint32(16384), r2t.BHS.BufferOffset())
	assert.Equal(t, uint32(16384), r2t.BHS.DesiredDataTransferLength())
	assert.Equal(t, uint32(0), r2t.BHS.DataSN())
	c.send(dataOut(itt, r2t.BHS.TTT(), 0, 16384, false, payload[16384:24576]))
	c.send(dataOut(itt, r2t.BHS.TTT(), 1, 24576, true, payload[24576:]))
	_, st := c.readData()
	require.Equal(t, pdu.OpSCSIResp, st.BHS.Opcode())
	assert.Equal(t, byte(scsi.StatusGood), st.BHS.Status())
	assert.Zero(t, st.BHS.Flags()&(pdu.FlagOverflow|pdu.FlagUnderflow))
	assert.Equal(t, payload, ts.disk.data[10*512:10*512+len(payload)])

	// Read it back: split by the initiator's 8 KiB segments, status in
	// the last Data-In.
	c.send(c.scsiCmd(read10(10, 64), pdu.FlagRead|pdu.FlagFinal, uint32(len(payload)), nil))
	data, st := c.readData()
	require.Equal(t, pdu.OpDataIn, st.BHS.Opcode())
	assert.Equal(t, uint32(3), st.BHS.DataSN())
	assert.Equal(t, payload, data)
	assert.Equal(t, c.cmdSN, st.BHS.ExpCmdSN())
}

func TestReadResiduals(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	c := dial(t, ts.addr)
	c.loginNormal(isid1)

	// EDTL 0 for one block: no data, overflow 512, status GOOD.
	c.send(c.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 0, nil))
	data, st := c.readData()
	require.Equal(t, pdu.OpSCSIResp, st.BHS.Opcode())
	assert.Empty(t, data)
	assert.Equal(t, byte(pdu.FlagOverflow), st.BHS.Flags()&(pdu.FlagOverflow|pdu.FlagUnderflow))
	assert.Equal(t, uint32(512), st.BHS.ResidualCount())

	c.send(c.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 10000, nil))
	data, st = c.readData()
	assert.Len(t, data, 512)
	assert.Equal(t, byte(pdu.FlagUnderflow), st.BHS.Flags()&(pdu.FlagOverflow|pdu.FlagUnderflow))
	assert.Equal(t, uint32(10000-512), st.BHS.ResidualCount())

	c.send(c.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 200, nil))
	data, st = c.readData()
	assert.Len(t, data, 200)
	assert.Equal(t, byte(pdu.FlagOverflow), st.BHS.Flags()&(pdu.FlagOverflow|pdu.FlagUnderflow))
	assert.Equal(t, uint32(312), st.BHS.ResidualCount())
}

func TestWriteResiduals(t *testing.T) {
	p := defaultParams()
	p.ImmediateData = false
	p.InitialR2T = true
	ts := startServer(t, p, nil)
	c := dial(t, ts.addr)
	c.loginNormal(isid1)

	// One block with EDTL 10000: all 10000 bytes are solicited, the
	// device wanted 512: underflow 9488.
	cmd := c.scsiCmd(write10(0, 1), pdu.FlagWrite|pdu.FlagFinal, 10000, nil)
	c.send(cmd)
	r2t := c.recv()
	require.Equal(t, pdu.OpR2T, r2t.BHS.Opcode())
	require.Equal(t, uint32(10000), r2t.BHS.DesiredDataTransferLength())
	c.send(dataOut(cmd.BHS.ITT(), r2t.BHS.TTT(), 0, 0, false, make([]byte, 8192)))
	c.send(dataOut(cmd.BHS.ITT(), r2t.BHS.TTT(), 1, 8192, true, make([]byte, 10000-8192)))
	_, st := c.readData()
	assert.Equal(t, byte(pdu.FlagUnderflow), st.BHS.Flags()&(pdu.FlagOverflow|pdu.FlagUnderflow))
	assert.Equal(t, uint32(10000-512), st.BHS.ResidualCount())

	// Two blocks with EDTL 0: overflow 1024, no R2T.
	c.send(c.scsiCmd(write10(0, 2), pdu.FlagWrite|pdu.FlagFinal, 0, nil))
	_, st = c.readData()
	assert.Equal(t, byte(pdu.FlagOverflow), st.BHS.Flags()&(pdu.FlagOverflow|pdu.FlagUnderflow))
	assert.Equal(t, uint32(1024), st.BHS.ResidualCount())
}

func TestCheckConditionSense(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	c := dial(t, ts.addr)
	c.loginNormal(isid1)
	cmd := c.scsiCmd([]byte{0xff}, pdu.FlagFinal, 0, nil)
	cmd.BHS.SetLUN(0xc1 << 56) // extended addressing: not decoded, still executed
	c.send(cmd)
	_, st := c.readData()
	require.Equal(t, pdu.OpSCSIResp, st.BHS.Opcode())
	assert.Equal(t, byte(scsi.StatusCheckCondition), st.BHS.Status())
	require.Len(t, st.Data, 20)
	assert.Equal(t, []byte{0, 18}, st.Data[:2])
	assert.Equal(t, byte(0x25), st.Data[2+12], "LOGICAL UNIT NOT SUPPORTED")

	// Expected length above the limit: INVALID FIELD IN COMMAND IU.
	c.send(c.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 64<<20, nil))
	_, st = c.readData()
	assert.Equal(t, byte(scsi.StatusCheckCondition), st.BHS.Status())
	assert.Equal(t, byte(0x0e), st.Data[2+12])
}

func TestCmdSNOrdering(t *testing.T) {
	ts := startServer(t, defaultParams(), func(c *Config) { c.QueueDepth = 4 })
	c := dial(t, ts.addr)
	c.loginNormal(isid1)
	tur := []byte{0}

	// CmdSN 2 before 1: held until 1 arrives.
	first := c.scsiCmd(tur, pdu.FlagFinal, 0, nil)
	second := c.scsiCmd(tur, pdu.FlagFinal, 0, nil)
	c.send(second)
	_, err := c.recvErr(100 * time.Millisecond)
	require.Error(t, err, "out-of-order command must wait")
	c.send(first)
	got := map[uint32]bool{}
	var last *pdu.PDU
	for range 2 {
		_, last = c.readData()
		got[last.BHS.ITT()] = true
	}
	assert.Equal(t, uint32(3), last.BHS.ExpCmdSN())
	assert.Equal(t, uint32(3+4-1), last.BHS.MaxCmdSN())
	assert.Len(t, got, 2)

	// Too high and too low are dropped silently.
	high := c.scsiCmd(tur, pdu.FlagFinal, 0, nil)
	high.BHS.SetCmdSN(100)
	c.send(high)
	low := c.scsiCmd(tur, pdu.FlagFinal, 0, nil)
	low.BHS.SetCmdSN(1)
	c.send(low)
	c.cmdSN = 3
	_, err = c.recvErr(100 * time.Millisecond)
	require.Error(t, err)
	c.nc.SetReadDeadline(time.Time{})
	c = dial(t, ts.addr) // the timed-out reader leaves the stream unusable
	c.loginNormal([6]byte{0x80, 0, 0, 0, 0, 9})
	c.send(c.scsiCmd(tur, pdu.FlagFinal, 0, nil))
	_, st := c.readData()
	assert.Equal(t, byte(scsi.StatusGood), st.BHS.Status())

	// Immediate commands bypass ordering.
	imm := c.scsiCmd(tur, pdu.FlagFinal, 0, nil)
	imm.BHS.SetImmediate(true)
	c.cmdSN--
	c.send(imm)
	_, st = c.readData()
	assert.Equal(t, c.cmdSN, st.BHS.ExpCmdSN())
}

func TestNOPAndText(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	c := dial(t, ts.addr)
	c.loginNormal(isid1)

	nop := &pdu.PDU{}
	nop.BHS.SetOpcode(pdu.OpNOPOut)
	nop.BHS.SetImmediate(true)
	nop.BHS.SetFlags(pdu.FlagFinal)
	nop.BHS.SetITT(77)
	nop.BHS.SetTTT(pdu.ReservedTag)
	nop.BHS.SetCmdSN(c.cmdSN)
	nop.Data = []byte("nopping\x00")
	c.send(nop)
	in := c.recv()
	require.Equal(t, pdu.OpNOPIn, in.BHS.Opcode())
	assert.Equal(t, uint32(77), in.BHS.ITT())
	assert.Equal(t, []byte("nopping\x00"), in.Data)

	tr := &pdu.PDU{}
	tr.BHS.SetOpcode(pdu.OpTextReq)
	tr.BHS.SetFlags(pdu.FlagFinal)
	tr.BHS.SetITT(78)
	tr.BHS.SetTTT(pdu.ReservedTag)
	tr.BHS.SetCmdSN(c.cmdSN)
	c.cmdSN++
	tr.Data = text.Append(nil, text.KV{Key: "SendTargets", Value: "All"}, text.KV{Key: "X-foo", Value: "1"})
	c.send(tr)
	resp := c.recv()
	require.Equal(t, pdu.OpTextResp, resp.BHS.Opcode())
	kvs, _, err := text.Parse(resp.Data, false)
	require.NoError(t, err)
	assert.Equal(t, []text.KV{{Key: "TargetName", Value: testIQN},
		{Key: "TargetAddress", Value: ts.addr + ",1"}, {Key: "X-foo", Value: "NotUnderstood"}}, kvs)
}

func TestDiscoverySendTargetsContinuation(t *testing.T) {
	p := defaultParams()
	p.MaxRecvDataSegmentLength = 64 // force continuation
	ts := startServer(t, p, nil)
	c := dial(t, ts.addr)
	resp := c.login(isid1, text.KV{Key: "InitiatorName", Value: "iqn.test:ini"}, text.KV{Key: "SessionType", Value: "Discovery"})
	cl, _ := resp.BHS.LoginStatus()
	require.Zero(t, cl)
	tr := &pdu.PDU{}
	tr.BHS.SetOpcode(pdu.OpTextReq)
	tr.BHS.SetFlags(pdu.FlagFinal)
	tr.BHS.SetITT(5)
	tr.BHS.SetTTT(pdu.ReservedTag)
	tr.BHS.SetCmdSN(c.cmdSN)
	tr.Data = text.Append(nil, text.KV{Key: "SendTargets", Value: "All"})
	c.send(tr)
	var all []byte
	for {
		r := c.recv()
		require.Equal(t, pdu.OpTextResp, r.BHS.Opcode())
		all = append(all, r.Data...)
		if r.BHS.Final() {
			break
		}
		require.True(t, r.BHS.Continue())
		next := &pdu.PDU{}
		next.BHS.SetOpcode(pdu.OpTextReq)
		next.BHS.SetImmediate(true)
		next.BHS.SetFlags(pdu.FlagFinal)
		next.BHS.SetITT(5)
		next.BHS.SetTTT(r.BHS.TTT())
		c.send(next)
	}
	kvs, _, err := text.Parse(all, false)
	require.NoError(t, err)
	// The hidden target's ACL excludes this initiator.
	assert.Equal(t, []text.KV{{Key: "TargetName", Value: testIQN}, {Key: "TargetAddress", Value: ts.addr + ",1"}}, kvs)

	// SCSI commands are a protocol error in discovery sessions.
	c.send(c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil))
	rej := c.recv()
	require.Equal(t, pdu.OpReject, rej.BHS.Opcode())
	assert.Equal(t, byte(pdu.RejectProtocolError), rej.BHS.Response())
}

func TestLogout(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	c := dial(t, ts.addr)
	c.loginNormal(isid1)
	require.Eventually(t, func() bool { return len(ts.srv.Sessions()) == 1 }, time.Second, time.Millisecond)
	lo := &pdu.PDU{}
	lo.BHS.SetOpcode(pdu.OpLogoutReq)
	lo.BHS.SetImmediate(true)
	lo.BHS.SetFlags(pdu.FlagFinal | pdu.LogoutCloseSession)
	lo.BHS.SetITT(9)
	lo.BHS.SetCmdSN(c.cmdSN)
	c.send(lo)
	r := c.recv()
	require.Equal(t, pdu.OpLogoutResp, r.BHS.Opcode())
	assert.Equal(t, byte(pdu.LogoutRespSuccess), r.BHS.Response())
	_, err := c.recvErr(2 * time.Second)
	require.Error(t, err, "connection closed after logout")
	require.Eventually(t, func() bool { return len(ts.srv.Sessions()) == 0 }, time.Second, time.Millisecond)
}

func TestReinstatement(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	old := dial(t, ts.addr)
	old.loginNormal(isid1)
	require.Eventually(t, func() bool { return len(ts.srv.Sessions()) == 1 }, time.Second, time.Millisecond)
	oldTSIH := ts.srv.Sessions()[0].TSIH
	c := dial(t, ts.addr)
	c.loginNormal(isid1)
	_, err := old.recvErr(2 * time.Second)
	require.Error(t, err, "old session closed")
	require.Eventually(t, func() bool {
		s := ts.srv.Sessions()
		return len(s) == 1 && s[0].TSIH != oldTSIH
	}, time.Second, time.Millisecond)
	c.send(c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil))
	_, st := c.readData()
	assert.Equal(t, byte(scsi.StatusGood), st.BHS.Status())
}

func TestNopPingAndDeadInitiator(t *testing.T) {
	ts := startServer(t, defaultParams(), func(c *Config) {
		c.NopInterval = 50 * time.Millisecond
		c.NopTimeout = 150 * time.Millisecond
	})
	c := dial(t, ts.addr)
	c.loginNormal(isid1)
	ping := c.recv()
	require.Equal(t, pdu.OpNOPIn, ping.BHS.Opcode())
	require.Equal(t, uint32(pdu.ReservedTag), ping.BHS.ITT())
	require.NotEqual(t, uint32(pdu.ReservedTag), ping.BHS.TTT())
	// Answer it: the connection stays.
	ans := &pdu.PDU{}
	ans.BHS.SetOpcode(pdu.OpNOPOut)
	ans.BHS.SetImmediate(true)
	ans.BHS.SetFlags(pdu.FlagFinal)
	ans.BHS.SetITT(pdu.ReservedTag)
	ans.BHS.SetTTT(ping.BHS.TTT())
	ans.BHS.SetCmdSN(c.cmdSN)
	c.send(ans)
	// Now play dead: next pings go unanswered and the target hangs up.
	deadline := time.Now().Add(3 * time.Second)
	for {
		p, err := c.recvErr(time.Until(deadline))
		if err != nil {
			require.True(t, time.Now().Before(deadline), "target never dropped the connection")
			break
		}
		require.Equal(t, pdu.OpNOPIn, p.BHS.Opcode())
	}
}

func TestMalformedPDUsCloseWithoutPanic(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	// Garbage as the first PDU.
	c := dial(t, ts.addr)
	var junk pdu.BHS
	junk[0] = 0x3f
	_, _ = c.nc.Write(junk[:])
	_, err := c.recvErr(2 * time.Second)
	require.ErrorIs(t, err, io.EOF)

	// A data segment beyond the limit in full feature phase.
	c = dial(t, ts.addr)
	c.loginNormal(isid1)
	var hdr pdu.BHS
	hdr.SetOpcode(pdu.OpSCSICmd)
	hdr.SetDataSegmentLength(1<<24 - 1)
	_, _ = c.nc.Write(hdr[:])
	_, err = c.recvErr(2 * time.Second)
	require.ErrorIs(t, err, io.EOF)

	// A Data-Out with a wrong DataSN fails the command, not the
	// connection (libiscsi's iSCSIDataSnInvalid).
	c = dial(t, ts.addr)
	c.loginNormal(isid1)
	cmd := c.scsiCmd(write10(0, 2), pdu.FlagWrite|pdu.FlagFinal, 1024, nil)
	c.send(cmd)
	r2t := c.recv()
	c.send(dataOut(cmd.BHS.ITT(), r2t.BHS.TTT(), 27, 0, true, make([]byte, 1024)))
	_, st := c.readData()
	assert.Equal(t, byte(scsi.StatusCheckCondition), st.BHS.Status())
	assert.Equal(t, byte(0x0b), st.Data[2+2], "ABORTED COMMAND")

	// Unknown opcode: Reject, connection stays.
	c = dial(t, ts.addr)
	c.loginNormal(isid1)
	odd := &pdu.PDU{}
	odd.BHS.SetOpcode(0x1c)
	c.send(odd)
	rej := c.recv()
	require.Equal(t, pdu.OpReject, rej.BHS.Opcode())
	assert.Equal(t, byte(pdu.RejectCommandNotSupport), rej.BHS.Response())
	// The server still works.
	c.send(c.scsiCmd([]byte{0}, pdu.FlagFinal, 0, nil))
	_, st = c.readData()
	assert.Equal(t, byte(scsi.StatusGood), st.BHS.Status())
}

func TestGracefulClose(t *testing.T) {
	ts := startServer(t, defaultParams(), nil)
	block := make(chan struct{})
	ts.disk.block.Store(&block)
	c := dial(t, ts.addr)
	c.loginNormal(isid1)
	c.send(c.scsiCmd(read10(0, 1), pdu.FlagRead|pdu.FlagFinal, 512, nil))
	require.Eventually(t, func() bool { return ts.disk.entered.Load() == 1 }, time.Second, time.Millisecond)
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- ts.srv.Close(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // let Close start waiting
	close(block)
	data, st := c.readData()
	assert.Len(t, data, 512)
	assert.Equal(t, byte(scsi.StatusGood), st.BHS.Status())
	require.NoError(t, <-closed)
	_, err := c.recvErr(time.Second)
	require.Error(t, err)
}
