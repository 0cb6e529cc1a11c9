package iscsi

import (
	"net"
	"strconv"

	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// reject sends a Reject PDU carrying the offending header (RFC 7143
// section 11.17).
func (c *conn) reject(req *pdu.PDU, reason byte) {
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpReject)
	p.BHS.SetFlags(pdu.FlagFinal)
	p.BHS.SetResponse(reason)
	p.BHS.SetITT(pdu.ReservedTag)
	p.Data = append([]byte(nil), req.BHS[:]...)
	c.send(outMsg{kind: outPDU, p: p, stat: true})
}

// onNOPOut answers a ping with a NOP-In echoing its data (RFC 7143
// section 11.18); ITT 0xffffffff asks for no answer.
func (c *conn) onNOPOut(req *pdu.PDU) {
	if req.BHS.ITT() == pdu.ReservedTag {
		return
	}
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpNOPIn)
	p.BHS.SetFlags(pdu.FlagFinal)
	p.BHS.SetLUN(req.BHS.LUN())
	p.BHS.SetITT(req.BHS.ITT())
	p.BHS.SetTTT(pdu.ReservedTag)
	p.Data = append([]byte(nil), req.Data...)
	c.send(outMsg{kind: outPDU, p: p, stat: true})
}

// onText answers Text Requests: SendTargets (RFC 7143 section 12.3 and
// appendix C) and continuation in both directions (section 11.10).
func (c *conn) onText(req *pdu.PDU) {
	b := &req.BHS
	maxSeg := int(c.params.MaxRecvDataSegmentLength)
	if maxSeg <= 0 {
		maxSeg = 8192
	}
	var body []byte
	switch {
	case b.TTT() != pdu.ReservedTag && b.TTT() == c.textTTT && len(c.textOut) > 0:
		// The initiator asks for the next part of a long response.
		body = c.textOut
	case b.Continue():
		// The request continues in the next PDU: keep it, answer empty.
		c.textIn = append(c.textIn, req.Data...)
		c.textTTT = c.newTextTTT()
		c.sendText(b.ITT(), 0, c.textTTT, nil)
		return
	default:
		in := append(c.textIn, req.Data...)
		c.textIn = nil
		kvs, _, err := text.Parse(in, false)
		if err != nil {
			c.reject(req, pdu.RejectProtocolError)
			return
		}
		body = c.textResponse(kvs)
	}
	if len(body) > maxSeg {
		c.textTTT = c.newTextTTT()
		c.textOut = append([]byte(nil), body[maxSeg:]...)
		c.sendText(b.ITT(), pdu.FlagContinue, c.textTTT, body[:maxSeg])
		return
	}
	c.textOut = nil
	c.textTTT = 0
	c.sendText(b.ITT(), pdu.FlagFinal, pdu.ReservedTag, body)
}

func (c *conn) newTextTTT() uint32 {
	c.nextTTT++
	if c.nextTTT >= 0x80000000 {
		c.nextTTT = 1
	}
	return c.nextTTT
}

func (c *conn) sendText(itt uint32, flags byte, ttt uint32, data []byte) {
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpTextResp)
	p.BHS.SetFlags(flags)
	p.BHS.SetITT(itt)
	p.BHS.SetTTT(ttt)
	p.Data = append([]byte(nil), data...)
	c.send(outMsg{kind: outPDU, p: p, stat: true})
}

// textResponse answers the keys of a Text Request. Only SendTargets is
// understood in full feature phase.
func (c *conn) textResponse(kvs []text.KV) []byte {
	var out []byte
	for _, kv := range kvs {
		if kv.Key != "SendTargets" {
			out = text.Append(out, text.KV{Key: kv.Key, Value: text.NotUnderstood})
			continue
		}
		for _, name := range c.sendTargets(kv.Value) {
			out = text.Append(out, text.KV{Key: "TargetName", Value: name})
			out = text.Append(out, text.KV{Key: "TargetAddress", Value: c.portalAddress()})
		}
	}
	return out
}

// sendTargets lists the target names a SendTargets=value request gets
// (RFC 7143 appendix C): All in a discovery session lists every target
// the initiator may see; a normal session only learns about its own.
func (c *conn) sendTargets(value string) []string {
	visible := c.srv.visibleTargets(c.sess.InitiatorName)
	if c.sess.Type == login.Normal {
		if value == "" || value == "All" || value == c.sess.TargetName {
			for _, n := range visible {
				if n == c.sess.TargetName {
					return []string{n}
				}
			}
		}
		return nil
	}
	if value == "All" {
		return visible
	}
	for _, n := range visible {
		if n == value {
			return []string{n}
		}
	}
	return nil
}

// portalAddress is this connection's portal as "ip:port,tpgt".
func (c *conn) portalAddress() string {
	addr := c.nc.LocalAddr().String()
	if ta, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
		addr = net.JoinHostPort(ta.IP.String(), strconv.Itoa(ta.Port))
	}
	return addr + "," + strconv.Itoa(int(c.srv.cfg.PortalGroupTag))
}

// onLogout answers a Logout Request (RFC 7143 sections 11.14, 11.15).
// Closing the session or this connection waits for the commands in
// execution so that their responses go out first.
func (c *conn) onLogout(req *pdu.PDU) error {
	reason := req.BHS.Function()
	p := &pdu.PDU{}
	p.BHS.SetOpcode(pdu.OpLogoutResp)
	p.BHS.SetFlags(pdu.FlagFinal)
	p.BHS.SetITT(req.BHS.ITT())
	closeIt := false
	switch {
	case reason == pdu.LogoutCloseSession:
		closeIt = true
	case reason == pdu.LogoutCloseConnection && req.BHS.CID() == c.sess.CID:
		closeIt = true
	case reason == pdu.LogoutCloseConnection:
		p.BHS.SetResponse(pdu.LogoutRespCIDNotFound)
	default:
		// Connection recovery needs ERL 2.
		p.BHS.SetResponse(pdu.LogoutRespNoRecovery)
	}
	if !closeIt {
		c.send(outMsg{kind: outPDU, p: p, stat: true})
		return nil
	}
	c.inflight.Wait()
	if c.sess.Type == login.Normal {
		// The nexus ends before the initiator hears so: a command it
		// sends after the response, on any connection, finds the SPC-2
		// reservation released (SAM-5 6.3.4).
		c.srv.losses.apply(func() { c.taskManager().NexusLoss(&c.nexus) })
	}
	p.BHS.SetTime2Wait(uint16(c.params.DefaultTime2Wait))
	p.BHS.SetTime2Retain(uint16(c.params.DefaultTime2Retain))
	c.log.Info("logout", "reason", reason)
	c.send(outMsg{kind: outPDU, p: p, stat: true, closeAfter: true})
	return errLogout
}
