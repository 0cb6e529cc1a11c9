package iscsi

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/login"
	tscsi "github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
	"github.com/tandem-ha/tandem/wire/text"
)

const testIQN = "iqn.2024-01.test:disk"

// fakeLogin accepts any login in one step with fixed parameters.
type fakeLogin struct {
	cfg    *login.Config
	params login.Params
	res    login.Result
}

func (f *fakeLogin) Step(req, resp *pdu.PDU) login.Outcome {
	kvs, _, _ := text.Parse(req.Data, false)
	ini, _ := text.Get(kvs, "InitiatorName")
	tgt, _ := text.Get(kvs, "TargetName")
	st, _ := text.Get(kvs, "SessionType")
	typ := login.Normal
	if st == "Discovery" {
		typ = login.Discovery
	} else if _, ok := f.cfg.LookupTarget(tgt); !ok {
		loginReject(req, resp, pdu.LoginNotFound)
		return login.Failed
	}
	tsih := f.cfg.NewTSIH()
	f.res = login.Result{Type: typ, InitiatorName: ini, TargetName: tgt, ISID: req.BHS.ISID(),
		TSIH: tsih, CID: req.BHS.CID(), ExpCmdSN: req.BHS.CmdSN(), StatSN: req.BHS.ExpStatSN(), Params: f.params}
	resp.BHS.SetOpcode(pdu.OpLoginResp)
	resp.BHS.SetLoginStages(true, false, pdu.StageOperational, pdu.StageFullFeature)
	resp.BHS.SetISID(req.BHS.ISID())
	resp.BHS.SetTSIH(tsih)
	resp.BHS.SetITT(req.BHS.ITT())
	resp.BHS.SetStatSN(f.res.StatSN)
	resp.BHS.SetExpCmdSN(f.res.ExpCmdSN)
	resp.BHS.SetMaxCmdSN(f.res.ExpCmdSN)
	return login.Done
}

func (f *fakeLogin) Result() login.Result { return f.res }

func defaultParams() login.Params {
	return login.Params{
		MaxRecvDataSegmentLength: 8192, TargetMaxRecvDataSegmentLength: 65536,
		MaxBurstLength: 65536, FirstBurstLength: 16384, MaxOutstandingR2T: 1,
		InitialR2T: false, ImmediateData: true, DataPDUInOrder: true, DataSequenceInOrder: true,
		DefaultTime2Wait: 2, MaxConnections: 1,
	}
}

// memDisk is a stub SCSI target: READ(10), WRITE(10), TEST UNIT READY
// and INQUIRY-ish data for other reads, on 512-byte blocks.
type memDisk struct {
	mu      sync.Mutex
	data    []byte
	block   atomic.Pointer[chan struct{}] // when set, Execute waits on it
	entered atomic.Int32
	calls   int
}

func newMemDisk(blocks int) *memDisk { return &memDisk{data: make([]byte, blocks*512)} }

func (d *memDisk) Execute(t *tscsi.Task) tscsi.Result {
	d.entered.Add(1)
	if b := d.block.Load(); b != nil {
		<-*b
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if t.LUN != 0 {
		return tscsi.Result{Status: scsi.StatusCheckCondition, Sense: []byte{0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0, 0, 0, 0, 0}}
	}
	switch t.CDB[0] {
	case 0x00:
		return tscsi.Result{}
	case 0x28:
		lba := binary.BigEndian.Uint32(t.CDB[2:])
		n := int(binary.BigEndian.Uint16(t.CDB[7:])) * 512
		off := int(lba) * 512
		return tscsi.Result{DataIn: append(t.DataIn, d.data[off:off+n]...)}
	case 0x2a:
		lba := binary.BigEndian.Uint32(t.CDB[2:])
		n := int(binary.BigEndian.Uint16(t.CDB[7:])) * 512
		off := int(lba) * 512
		copy(d.data[off:off+n], t.DataOut)
		return tscsi.Result{DataOutWanted: uint32(n)}
	}
	return tscsi.Result{Status: scsi.StatusCheckCondition, Sense: []byte{0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0}}
}

type testServer struct {
	srv  *Server
	addr string
	disk *memDisk
}

func startServer(t testing.TB, params login.Params, mod func(*Config)) *testServer {
	t.Helper()
	cfg := Config{
		NopInterval: -1,
		NewLogin: func(c *login.Config, _ string) Negotiator {
			return &fakeLogin{cfg: c, params: params}
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	s := NewServer(cfg)
	disk := newMemDisk(256)
	require.NoError(t, s.AddTarget(login.TargetInfo{Name: testIQN}, disk))
	require.NoError(t, s.AddTarget(login.TargetInfo{Name: "iqn.2024-01.test:hidden", Initiators: []string{"iqn.other"}}, disk))
	addr, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return &testServer{srv: s, addr: addr.String(), disk: disk}
}

// client is a hand-driven initiator.
type client struct {
	t      testing.TB
	nc     net.Conn
	r      *pdu.Reader
	w      *pdu.Writer
	cmdSN  uint32
	statSN uint32
	itt    uint32
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	return &client{t: t, nc: nc, r: pdu.NewReader(nc), w: pdu.NewWriter(nc), cmdSN: 1}
}

func (c *client) login(isid [6]byte, kvs ...text.KV) *pdu.PDU {
	c.t.Helper()
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpLoginReq)
	p.BHS.SetImmediate(true)
	p.BHS.SetLoginStages(true, false, pdu.StageOperational, pdu.StageFullFeature)
	p.BHS.SetISID(isid)
	p.BHS.SetCmdSN(c.cmdSN)
	p.Data = text.Append(nil, kvs...)
	c.send(p)
	resp := c.recv()
	require.Equal(c.t, pdu.OpLoginResp, resp.BHS.Opcode())
	return resp
}

func (c *client) loginNormal(isid [6]byte) {
	c.t.Helper()
	resp := c.login(isid, text.KV{Key: "InitiatorName", Value: "iqn.test:ini"}, text.KV{Key: "TargetName", Value: testIQN})
	cl, _ := resp.BHS.LoginStatus()
	require.Zero(c.t, cl)
}

func (c *client) send(p *pdu.PDU) {
	c.t.Helper()
	require.NoError(c.t, c.w.Write(p))
}

func (c *client) recv() *pdu.PDU {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p := &pdu.PDU{}
	require.NoError(c.t, c.r.Read(p))
	return p
}

// recvErr reads the next PDU or the error that ends the stream.
func (c *client) recvErr(d time.Duration) (*pdu.PDU, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	p := &pdu.PDU{}
	return p, c.r.Read(p)
}

func (c *client) scsiCmd(cdb []byte, flags byte, edtl uint32, imm []byte) *pdu.PDU {
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpSCSICmd)
	p.BHS.SetFlags(flags | 1) // simple attribute
	p.BHS.SetLUN(scsi.EncodeLUN(0))
	c.itt++
	p.BHS.SetITT(c.itt)
	p.BHS.SetExpectedDataTransferLength(edtl)
	p.BHS.SetCmdSN(c.cmdSN)
	c.cmdSN++
	p.BHS.SetExpStatSN(c.statSN)
	copy(p.BHS.CDB(), cdb)
	p.Data = imm
	return p
}

func read10(lba uint32, blocks uint16) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x28
	binary.BigEndian.PutUint32(cdb[2:], lba)
	binary.BigEndian.PutUint16(cdb[7:], blocks)
	return cdb
}

func write10(lba uint32, blocks uint16) []byte {
	cdb := read10(lba, blocks)
	cdb[0] = 0x2a
	return cdb
}

func dataOut(itt, ttt, dataSN, off uint32, final bool, data []byte) *pdu.PDU {
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpDataOut)
	if final {
		p.BHS.SetFlags(pdu.FlagFinal)
	}
	p.BHS.SetITT(itt)
	p.BHS.SetTTT(ttt)
	p.BHS.SetDataSN(dataSN)
	p.BHS.SetBufferOffset(off)
	p.Data = data
	return p
}

// readData collects Data-In until status arrives; it returns the data
// and the PDU that carried the status.
func (c *client) readData() ([]byte, *pdu.PDU) {
	c.t.Helper()
	var data []byte
	var dataSN uint32
	for {
		p := c.recv()
		switch p.BHS.Opcode() {
		case pdu.OpDataIn:
			require.Equal(c.t, dataSN, p.BHS.DataSN())
			require.Equal(c.t, uint32(len(data)), p.BHS.BufferOffset())
			dataSN++
			data = append(data, p.Data...)
			if p.BHS.Flags()&pdu.FlagStatus != 0 {
				c.statSN = p.BHS.StatSN() + 1
				return data, p
			}
		case pdu.OpSCSIResp:
			c.statSN = p.BHS.StatSN() + 1
			return data, p
		default:
			c.t.Fatalf("unexpected %v", p.BHS.Opcode())
		}
	}
}
