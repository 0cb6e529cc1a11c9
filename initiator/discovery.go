package initiator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tandem-ha/tandem/initiator/negotiate"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// Portal is one network portal of a target.
type Portal struct {
	// Address is "host:port" (IPv6 hosts in brackets), ready for Dial.
	Address string
	// Tag is the target portal group tag.
	Tag uint16
}

// DiscoveredTarget is one entry of a SendTargets answer.
type DiscoveredTarget struct {
	Name    string
	Portals []Portal
}

// Discover opens a discovery session to addr, asks SendTargets=All and
// logs out (RFC 7143 section 4.3 and appendix C).
func Discover(ctx context.Context, addr string, opts DiscoveryOptions) ([]DiscoveredTarget, error) {
	o := Options{
		InitiatorName: opts.InitiatorName, ISID: opts.ISID, CHAP: opts.CHAP,
		HeaderDigest: opts.HeaderDigest, DataDigest: opts.DataDigest,
		Dialer: opts.Dialer, Logger: opts.Logger, TargetName: "-",
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	conn, err := dialer(o.Dialer)(ctx, "tcp", portalAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("initiator: dial %s: %w", addr, err)
	}
	s, err := newSession(ctx, conn, o, negotiate.Discovery)
	if err != nil {
		return nil, err
	}
	targets, err := s.SendTargets(ctx, "All")
	if err != nil {
		s.fail(nil)
		<-s.readerDone
		return nil, err
	}
	if err := s.Logout(ctx); err != nil {
		s.log.Debug("discovery logout", "err", err)
	}
	return targets, nil
}

// SendTargets asks the target for targets and portals: "All" in a
// discovery session, "" for the session's own target in a normal one.
// A response split over several PDUs (C bit) is reassembled.
func (s *Session) SendTargets(ctx context.Context, which string) ([]DiscoveredTarget, error) {
	s.ctrlMu.Lock()
	s.nextCtrl++
	itt := ctrlTagBit | s.nextCtrl&0x3fffffff
	s.ctrlMu.Unlock()
	var all []byte
	ttt := uint32(pdu.ReservedTag)
	first := true
	for i := 0; ; i++ {
		if i > 1024 {
			return nil, &ProtocolError{Msg: "SendTargets answer never ends"}
		}
		r, err := s.roundTrip(ctx, itt, false, func(p *pdu.PDU) {
			p.BHS.SetOpcode(pdu.OpTextReq)
			p.BHS.SetFlags(pdu.FlagFinal)
			p.BHS.SetTTT(ttt)
			if first {
				p.Data = text.Append(nil, text.KV{Key: "SendTargets", Value: which})
			}
		})
		if err != nil {
			return nil, fmt.Errorf("initiator: sendtargets: %w", err)
		}
		first = false
		all = append(all, r.data...)
		final, cont := r.bhs.Final(), r.bhs.Continue()
		if final && cont {
			return nil, &ProtocolError{Msg: "Text Response with both F and C set"}
		}
		if final {
			break
		}
		ttt = r.bhs.TTT()
		if ttt == pdu.ReservedTag {
			return nil, &ProtocolError{Msg: "partial Text Response without a target transfer tag"}
		}
	}
	return ParseSendTargets(all)
}

// ParseSendTargets decodes a SendTargets answer: TargetName keys, each
// followed by its TargetAddress keys (RFC 7143 appendix C). Unlike other
// text, the keys repeat, so text.Parse does not apply.
func ParseSendTargets(data []byte) ([]DiscoveredTarget, error) {
	var out []DiscoveredTarget
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			return nil, errors.New("initiator: sendtargets answer does not end with NUL")
		}
		pair := string(data[:i])
		data = data[i+1:]
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, errors.New("initiator: sendtargets pair without '=': " + strconv.Quote(pair))
		}
		switch k {
		case "TargetName":
			if v == "" {
				return nil, errors.New("initiator: sendtargets has an empty TargetName")
			}
			out = append(out, DiscoveredTarget{Name: v})
		case "TargetAddress":
			if len(out) == 0 {
				return nil, errors.New("initiator: sendtargets TargetAddress before any TargetName")
			}
			p, err := parseTargetAddress(v)
			if err != nil {
				return nil, err
			}
			t := &out[len(out)-1]
			t.Portals = append(t.Portals, p)
		case "TargetAlias":
		default:
			// Unknown keys are tolerated: they describe the last target.
		}
	}
	return out, nil
}

func parseTargetAddress(v string) (Portal, error) {
	addr, tag, ok := strings.Cut(v, ",")
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		addr, tag, ok = v[:i], v[i+1:], true
	}
	if addr == "" {
		return Portal{}, errors.New("initiator: empty TargetAddress")
	}
	p := Portal{Address: portalAddr(addr)}
	if ok {
		n, err := strconv.ParseUint(tag, 10, 16)
		if err != nil {
			return Portal{}, errors.New("initiator: bad portal group tag in TargetAddress " + strconv.Quote(v))
		}
		p.Tag = uint16(n)
	}
	return p, nil
}
