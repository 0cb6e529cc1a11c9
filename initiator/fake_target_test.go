package initiator

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
	"github.com/tandem-ha/tandem/wire/text"
)

// fakeTarget is a small in-process iSCSI target over loopback TCP: just
// enough login, SCSI and data movement to exercise the initiator, with
// knobs that force the paths under test.
type fakeTarget struct {
	t  testing.TB
	ln net.Listener

	name string
	// CHAP: when chapSecret is set the target requires CHAP. When
	// mutualSecret is set it answers the initiator's challenge with it.
	chapUser     string
	chapSecret   []byte
	mutualUser   string
	mutualSecret []byte

	mrdsl         uint32 // what the target declares (the initiator's send limit)
	maxBurst      uint32
	firstBurst    uint32
	immediateData bool
	initialR2T    bool
	digests       bool
	window        uint32 // CmdSN window size
	// hold, when non-nil, delays every SCSI response until it is closed.
	hold chan struct{}
	// pingAfterLogin sends a NOP-In ping once the session is up.
	pingAfterLogin bool
	// sendTargets is the SendTargets answer; chunk splits it (C bit).
	sendTargets string
	chunk       int

	blockSize uint32
	disk      []byte

	// hook, when set, may answer a SCSI command instead of the fake's
	// own emulation; it runs under mu and gets the CDB and the immediate
	// data (copy them to keep them).
	hook func(cdb, data []byte) (fakeResult, bool)
	// tmfResponse is the response code of every task management request.
	tmfResponse byte

	mu        sync.Mutex
	tmfs      []pdu.BHS // task management requests received
	cmds      int       // SCSI commands received
	cmdSNs    []uint32  // their CmdSNs
	immBytes  int       // immediate data received
	unsolicit int       // unsolicited Data-Out PDUs
	solicited int       // solicited Data-Out PDUs
	r2ts      int       // R2Ts sent
	logouts   int
	nopOuts   int  // initiator pings (NOP-Out with an ITT)
	ignoreNOP bool // leave initiator pings unanswered
	nopReply  chan pdu.PDU
	wg        sync.WaitGroup
	conns     []net.Conn
}

func newFake(t testing.TB, configure func(*fakeTarget)) *fakeTarget {
	f := &fakeTarget{
		t: t, name: "iqn.2025-01.io.tandem:fake", mrdsl: 65536, maxBurst: 262144,
		firstBurst: 65536, immediateData: true, window: 64, blockSize: 512,
		disk: make([]byte, 1<<20), nopReply: make(chan pdu.PDU, 4),
	}
	if configure != nil {
		configure(f)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeTarget) addr() string { return f.ln.Addr().String() }

type fakeConn struct {
	f        *fakeTarget
	r        *pdu.Reader
	w        *pdu.Writer
	wmu      sync.Mutex
	statSN   uint32
	expCmdSN uint32
	discover bool
	imrdsl   uint32 // initiator's MaxRecvDataSegmentLength
	writes   map[uint32]*fakeWrite
	pending  []byte // SendTargets still to send
}

type fakeWrite struct {
	lun, lba  uint64
	data      []byte
	got       uint32
	r2tSN     uint32
	nextR2T   uint32 // offset up to which R2Ts were sent
	cmdSN     uint32
	unsolDone bool
}

func (c *fakeConn) send(p *pdu.PDU, status bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	p.BHS.SetStatSN(c.statSN)
	if status {
		c.statSN++
	}
	p.BHS.SetExpCmdSN(c.expCmdSN)
	p.BHS.SetMaxCmdSN(c.expCmdSN + c.f.window - 1)
	_ = c.w.Write(p)
}

func (f *fakeTarget) serve(conn net.Conn) {
	c := &fakeConn{f: f, r: pdu.NewReader(conn), w: pdu.NewWriter(conn), statSN: 100, imrdsl: 8192, writes: map[uint32]*fakeWrite{}}
	if !c.login() {
		return
	}
	if f.pingAfterLogin {
		var p pdu.PDU
		p.BHS.SetOpcode(pdu.OpNOPIn)
		p.BHS.SetFlags(pdu.FlagFinal)
		p.BHS.SetITT(pdu.ReservedTag)
		p.BHS.SetTTT(0x77)
		p.Data = []byte("ping")
		c.send(&p, false)
	}
	var p pdu.PDU // reused: the fake should not dominate allocation counts
	for {
		if err := c.r.Read(&p); err != nil {
			return
		}
		if !c.fullFeature(&p) {
			return
		}
	}
}

func (c *fakeConn) login() bool {
	f := c.f
	var req, resp pdu.PDU
	stage := 0
	var chapID byte
	var challenge []byte
	var alg chap.Algorithm
	authed := f.chapSecret == nil
	for {
		if err := c.r.Read(&req); err != nil {
			return false
		}
		kvs, _, err := text.Parse(req.Data, false)
		if err != nil {
			f.t.Errorf("fake: login text: %v", err)
			return false
		}
		get := func(k string) string { v, _ := text.Get(kvs, k); return v }
		c.expCmdSN = req.BHS.CmdSN()
		resp.Reset()
		resp.BHS.SetOpcode(pdu.OpLoginResp)
		resp.BHS.SetITT(req.BHS.ITT())
		resp.BHS.SetISID(req.BHS.ISID())
		fail := func(code uint16) bool {
			resp.BHS.SetLoginStatus(byte(code>>8), byte(code))
			c.send(&resp, true)
			return false
		}
		var out []text.KV
		if get("SessionType") == "Discovery" {
			c.discover = true
		} else if tn := get("TargetName"); tn != "" && tn != f.name {
			return fail(pdu.LoginNotFound)
		}
		transit := req.BHS.Transit()
		nsg := req.BHS.NSG()
		switch stage {
		case 0:
			switch {
			case get("AuthMethod") != "":
				if f.chapSecret != nil {
					if !strings.Contains(get("AuthMethod"), "CHAP") {
						return fail(pdu.LoginAuthFailed)
					}
					out = append(out, text.KV{Key: "AuthMethod", Value: "CHAP"})
					transit = false
				} else {
					out = append(out, text.KV{Key: "AuthMethod", Value: "None"})
				}
			case get("CHAP_A") != "":
				for _, a := range strings.Split(get("CHAP_A"), ",") {
					n, _ := strconv.Atoi(a)
					if chap.Algorithm(n).Size() > 0 {
						alg = chap.Algorithm(n)
						break
					}
				}
				var err error
				chapID, challenge, err = chap.NewChallenge()
				if err != nil {
					return fail(pdu.LoginTargetError)
				}
				out = append(out, text.KV{Key: "CHAP_A", Value: strconv.Itoa(int(alg))},
					text.KV{Key: "CHAP_I", Value: strconv.Itoa(int(chapID))},
					text.KV{Key: "CHAP_C", Value: chap.EncodeHex(challenge)})
			case get("CHAP_R") != "":
				r, err := chap.Decode(get("CHAP_R"))
				if err != nil || get("CHAP_N") != f.chapUser || !chap.Verify(alg, chapID, f.chapSecret, challenge, r) {
					return fail(pdu.LoginAuthFailed)
				}
				authed = true
				if ci := get("CHAP_C"); ci != "" {
					id, _ := strconv.Atoi(get("CHAP_I"))
					ch, _ := chap.Decode(ci)
					mr, _ := chap.Response(alg, byte(id), f.mutualSecret, ch)
					out = append(out, text.KV{Key: "CHAP_N", Value: f.mutualUser}, text.KV{Key: "CHAP_R", Value: chap.EncodeHex(mr)})
				}
			}
			if transit && !authed {
				return fail(pdu.LoginAuthFailed)
			}
		case 1:
			for _, kv := range kvs {
				switch kv.Key {
				case "HeaderDigest", "DataDigest":
					v := "None"
					if f.digests && strings.Contains(kv.Value, "CRC32C") {
						v = "CRC32C"
					}
					out = append(out, text.KV{Key: kv.Key, Value: v})
				case "MaxRecvDataSegmentLength":
					n, _ := text.ParseNumber(kv.Value)
					c.imrdsl = uint32(n)
					out = append(out, text.KV{Key: kv.Key, Value: strconv.Itoa(int(f.mrdsl))})
				case "MaxBurstLength", "FirstBurstLength":
					n, _ := text.ParseNumber(kv.Value)
					mine := f.maxBurst
					if kv.Key == "FirstBurstLength" {
						mine = f.firstBurst
					}
					out = append(out, text.KV{Key: kv.Key, Value: strconv.Itoa(int(min(uint32(n), mine)))})
				case "InitialR2T":
					v, _ := text.ParseBool(kv.Value)
					out = append(out, text.KV{Key: kv.Key, Value: text.FormatBool(v || f.initialR2T)})
				case "ImmediateData":
					v, _ := text.ParseBool(kv.Value)
					out = append(out, text.KV{Key: kv.Key, Value: text.FormatBool(v && f.immediateData)})
				default:
					out = append(out, kv)
				}
			}
		}
		resp.BHS.SetLoginStages(transit, false, stage, nsg)
		if !transit {
			resp.BHS[1] &^= 3
		}
		if transit && nsg == pdu.StageFullFeature {
			resp.BHS.SetTSIH(0x1234)
		}
		resp.Data = text.Append(resp.Data, out...)
		c.send(&resp, true)
		if transit {
			if nsg == pdu.StageFullFeature {
				c.r.HeaderDigest, c.r.DataDigest = f.digests, f.digests
				c.w.HeaderDigest, c.w.DataDigest = f.digests, f.digests
				return true
			}
			stage = nsg
		}
	}
}

func (c *fakeConn) fullFeature(p *pdu.PDU) bool {
	f := c.f
	b := &p.BHS
	if !b.Immediate() && b.Opcode() != pdu.OpDataOut {
		if b.CmdSN() != c.expCmdSN {
			f.t.Errorf("fake: CmdSN %d, want %d", b.CmdSN(), c.expCmdSN)
		}
		if int32(b.CmdSN()-(c.expCmdSN+f.window-1)) > 0 {
			f.t.Errorf("fake: CmdSN %d beyond the window", b.CmdSN())
		}
		c.wmu.Lock()
		c.expCmdSN++
		c.wmu.Unlock()
	}
	switch b.Opcode() {
	case pdu.OpSCSICmd:
		f.mu.Lock()
		f.cmds++
		f.cmdSNs = append(f.cmdSNs, b.CmdSN())
		f.mu.Unlock()
		c.command(p)
	case pdu.OpDataOut:
		c.dataOut(p)
	case pdu.OpNOPOut:
		if b.ITT() == pdu.ReservedTag {
			q := pdu.PDU{BHS: p.BHS, Data: append([]byte(nil), p.Data...)}
			f.nopReply <- q
			return true
		}
		f.mu.Lock()
		f.nopOuts++
		ignore := f.ignoreNOP
		f.mu.Unlock()
		if ignore {
			return true
		}
		var r pdu.PDU
		r.BHS.SetOpcode(pdu.OpNOPIn)
		r.BHS.SetFlags(pdu.FlagFinal)
		r.BHS.SetITT(b.ITT())
		r.BHS.SetTTT(pdu.ReservedTag)
		c.send(&r, true)
	case pdu.OpTextReq:
		if b.TTT() == pdu.ReservedTag {
			c.pending = []byte(f.sendTargets)
		}
		var r pdu.PDU
		r.BHS.SetOpcode(pdu.OpTextResp)
		r.BHS.SetITT(b.ITT())
		n := len(c.pending)
		if f.chunk > 0 && n > f.chunk {
			n = f.chunk
		}
		r.Data = c.pending[:n]
		c.pending = c.pending[n:]
		if len(c.pending) > 0 {
			r.BHS.SetFlags(pdu.FlagContinue)
			r.BHS.SetTTT(0x99)
		} else {
			r.BHS.SetFlags(pdu.FlagFinal)
			r.BHS.SetTTT(pdu.ReservedTag)
		}
		c.send(&r, true)
	case pdu.OpLogoutReq:
		f.mu.Lock()
		f.logouts++
		f.mu.Unlock()
		var r pdu.PDU
		r.BHS.SetOpcode(pdu.OpLogoutResp)
		r.BHS.SetFlags(pdu.FlagFinal)
		r.BHS.SetITT(b.ITT())
		c.send(&r, true)
		return false
	case pdu.OpTaskMgmtReq:
		f.mu.Lock()
		f.tmfs = append(f.tmfs, *b)
		f.mu.Unlock()
		var r pdu.PDU
		r.BHS.SetOpcode(pdu.OpTaskMgmtResp)
		r.BHS.SetFlags(pdu.FlagFinal)
		r.BHS.SetResponse(f.tmfResponse)
		r.BHS.SetITT(b.ITT())
		c.send(&r, true)
	default:
		f.t.Errorf("fake: unexpected %v", b.Opcode())
		return false
	}
	return true
}

// fakeResult is a hook's answer: read data with GOOD status, or a status
// with optional sense data.
type fakeResult struct {
	status byte
	sense  []byte
	data   []byte
}

func fixedSense(key, asc, ascq byte) []byte {
	s := make([]byte, 18)
	s[0], s[2], s[7], s[12], s[13] = 0x70, key, 10, asc, ascq
	return s
}

func (c *fakeConn) respond(itt uint32, status byte, sense []byte, residual uint32, under bool) {
	do := func() {
		var r pdu.PDU
		r.BHS.SetOpcode(pdu.OpSCSIResp)
		fl := byte(pdu.FlagFinal)
		if residual > 0 {
			if under {
				fl |= pdu.FlagUnderflow
			} else {
				fl |= pdu.FlagOverflow
			}
		}
		r.BHS.SetFlags(fl)
		r.BHS.SetStatus(status)
		r.BHS.SetITT(itt)
		r.BHS.SetResidualCount(residual)
		if sense != nil {
			r.Data = binary.BigEndian.AppendUint16(nil, uint16(len(sense)))
			r.Data = append(r.Data, sense...)
		}
		c.send(&r, true)
	}
	if c.f.hold != nil {
		go func() { <-c.f.hold; do() }()
		return
	}
	do()
}

// dataIn sends data as Data-In PDUs of the initiator's segment limit,
// with the status in the last one (RFC 7143 section 11.7.4).
func (c *fakeConn) dataIn(itt uint32, data []byte, edtl uint32) {
	if c.f.hold != nil {
		go func() { <-c.f.hold; c.sendDataIn(itt, data, edtl) }()
		return
	}
	c.sendDataIn(itt, data, edtl)
}

func (c *fakeConn) sendDataIn(itt uint32, data []byte, edtl uint32) {
	{
		var resid uint32
		under := false
		if uint32(len(data)) > edtl {
			resid = uint32(len(data)) - edtl
			data = data[:edtl]
		} else if uint32(len(data)) < edtl {
			resid, under = edtl-uint32(len(data)), true
		}
		var sn uint32
		for off := 0; off < len(data) || sn == 0; sn++ {
			n := min(len(data)-off, int(c.imrdsl))
			var r pdu.PDU
			r.BHS.SetOpcode(pdu.OpDataIn)
			r.BHS.SetITT(itt)
			r.BHS.SetTTT(pdu.ReservedTag)
			r.BHS.SetDataSN(sn)
			r.BHS.SetBufferOffset(uint32(off))
			r.Data = data[off : off+n]
			last := off+n == len(data)
			if last {
				fl := byte(pdu.FlagFinal | pdu.FlagStatus)
				if resid > 0 {
					if under {
						fl |= pdu.FlagUnderflow
					} else {
						fl |= pdu.FlagOverflow
					}
				}
				r.BHS.SetFlags(fl)
				r.BHS.SetResidualCount(resid)
			}
			c.send(&r, last)
			off += n
		}
	}
}

func (c *fakeConn) command(p *pdu.PDU) {
	f := c.f
	b := &p.BHS
	cdb := b.CDB()
	itt, edtl := b.ITT(), b.ExpectedDataTransferLength()
	if f.hook != nil {
		f.mu.Lock()
		r, ok := f.hook(cdb, p.Data)
		f.mu.Unlock()
		if ok {
			if r.status == 0 && r.data != nil {
				c.dataIn(itt, r.data, edtl)
			} else {
				c.respond(itt, r.status, r.sense, 0, false)
			}
			return
		}
	}
	switch cdb[0] {
	case scsi.OpTestUnitReady, scsi.OpSynchronizeCache10:
		c.respond(itt, 0, nil, 0, false)
	case scsi.OpInquiry:
		d := make([]byte, 96)
		d[2], d[3], d[4] = 6, 2, 91
		copy(d[8:], "TANDEM  FAKEDISK        0001")
		c.dataIn(itt, d, edtl)
	case scsi.OpServiceActionIn16:
		d := make([]byte, 32)
		binary.BigEndian.PutUint64(d, uint64(len(f.disk))/uint64(f.blockSize)-1)
		binary.BigEndian.PutUint32(d[8:], f.blockSize)
		d[14] = 0x80
		c.dataIn(itt, d, edtl)
	case scsi.OpReportLUNs:
		d := make([]byte, 24)
		binary.BigEndian.PutUint32(d, 16)
		binary.BigEndian.PutUint64(d[16:], 3<<48)
		c.dataIn(itt, d, edtl)
	case scsi.OpRead16:
		lba := binary.BigEndian.Uint64(cdb[2:])
		n := binary.BigEndian.Uint32(cdb[10:])
		off, end := lba*uint64(f.blockSize), (lba+uint64(n))*uint64(f.blockSize)
		if end > uint64(len(f.disk)) {
			c.respond(itt, 2, fixedSense(5, 0x21, 0), 0, false)
			return
		}
		c.dataIn(itt, f.disk[off:end], edtl)
	case scsi.OpWrite16:
		lba := binary.BigEndian.Uint64(cdb[2:])
		w := &fakeWrite{lba: lba, data: make([]byte, edtl), cmdSN: b.CmdSN()}
		copy(w.data, p.Data)
		w.got = uint32(len(p.Data))
		f.mu.Lock()
		f.immBytes += len(p.Data)
		f.mu.Unlock()
		w.unsolDone = b.Final()
		c.writes[itt] = w
		c.progress(itt, w)
	default:
		c.respond(itt, 2, fixedSense(5, 0x20, 0), 0, false)
	}
}

func (c *fakeConn) dataOut(p *pdu.PDU) {
	f := c.f
	b := &p.BHS
	w := c.writes[b.ITT()]
	if w == nil {
		f.t.Errorf("fake: Data-Out for unknown ITT %#x", b.ITT())
		return
	}
	off := b.BufferOffset()
	if off != w.got {
		f.t.Errorf("fake: Data-Out offset %d, want %d", off, w.got)
	}
	if int(off)+len(p.Data) > len(w.data) {
		f.t.Errorf("fake: Data-Out past EDTL")
		return
	}
	if len(p.Data) > int(f.mrdsl) {
		f.t.Errorf("fake: Data-Out of %d bytes above MRDSL %d", len(p.Data), f.mrdsl)
	}
	copy(w.data[off:], p.Data)
	w.got += uint32(len(p.Data))
	f.mu.Lock()
	if b.TTT() == pdu.ReservedTag {
		f.unsolicit++
		if w.got > f.firstBurst {
			f.t.Errorf("fake: unsolicited data beyond FirstBurstLength")
		}
	} else {
		f.solicited++
	}
	f.mu.Unlock()
	if b.Final() {
		if b.TTT() == pdu.ReservedTag {
			w.unsolDone = true
		}
		c.progress(b.ITT(), w)
	}
}

// progress sends the next R2T or, with all data in, the response.
func (c *fakeConn) progress(itt uint32, w *fakeWrite) {
	f := c.f
	if !w.unsolDone {
		return
	}
	if w.got == uint32(len(w.data)) {
		f.mu.Lock()
		copy(f.disk[w.lba*uint64(f.blockSize):], w.data)
		f.mu.Unlock()
		delete(c.writes, itt)
		c.respond(itt, 0, nil, 0, false)
		return
	}
	if w.nextR2T < w.got {
		w.nextR2T = w.got
	}
	if w.nextR2T > w.got {
		return // an R2T is outstanding
	}
	size := min(uint32(len(w.data))-w.got, f.maxBurst)
	var r pdu.PDU
	r.BHS.SetOpcode(pdu.OpR2T)
	r.BHS.SetFlags(pdu.FlagFinal)
	r.BHS.SetITT(itt)
	r.BHS.SetTTT(0x1000 + w.r2tSN)
	r.BHS.SetDataSN(w.r2tSN)
	r.BHS.SetBufferOffset(w.got)
	r.BHS.SetDesiredDataTransferLength(size)
	w.r2tSN++
	w.nextR2T = w.got + size
	f.mu.Lock()
	f.r2ts++
	f.mu.Unlock()
	c.send(&r, false)
}

var _ = errors.New
var _ = io.EOF
