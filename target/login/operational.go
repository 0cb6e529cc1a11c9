package login

import (
	"strconv"

	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// targetOffers are the keys the target proposes itself when the initiator
// did not, because tandem's value differs from the RFC default.
var targetOffers = []string{"InitialR2T", "ImmediateData", "MaxBurstLength", "FirstBurstLength",
	"DefaultTime2Wait", "DefaultTime2Retain", "MaxOutstandingR2T"}

// operational handles a request of the operational stage.
func (l *Login) operational(kvs []text.KV, want final) (final, *loginError) {
	if !l.opStarted && l.authRequired() && l.authState != authDone {
		// The initiator skipped the security stage of a protected target.
		return final{}, authFailed("initiator skipped authentication (AuthMethod=CHAP required)")
	}
	first := !l.opStarted
	l.opStarted = true
	l.offerRound = false
	fbl, hasFBL := "", false
	for _, kv := range kvs {
		if identityKeys[kv.Key] {
			continue
		}
		d, err := l.checkKey(kv.Key, text.PhaseOperational)
		if err != nil {
			return final{}, err
		}
		if d == nil {
			continue
		}
		if l.tsih != 0 && d.LeadingOnly {
			// A connection joining a session inherits the session-wide
			// values; only the leading connection negotiates them.
			l.add(d.Name, text.Irrelevant)
			continue
		}
		if offer, ok := l.pending[kv.Key]; ok {
			if err := l.answered(d, offer, kv.Value); err != nil {
				return final{}, err
			}
			continue
		}
		if kv.Key == "FirstBurstLength" {
			// Answered last: whether it is relevant, and its ceiling,
			// depend on InitialR2T, ImmediateData and MaxBurstLength.
			fbl, hasFBL = kv.Value, true
			continue
		}
		if err := l.negotiate(d, kv.Value); err != nil {
			return final{}, err
		}
	}
	if hasFBL {
		d := text.LookupKey("FirstBurstLength")
		if l.params.InitialR2T && !l.params.ImmediateData {
			// RFC 7143 section 13.14: irrelevant when no unsolicited
			// data may be sent.
			l.add(d.Name, text.Irrelevant)
		} else if err := l.negotiate(d, fbl); err != nil {
			return final{}, err
		}
	}
	if first {
		// MaxRecvDataSegmentLength is declarative: the target states its
		// own even if the initiator did not send one (section 13.12).
		l.add("MaxRecvDataSegmentLength", strconv.FormatUint(uint64(l.lim.mrdsl), 10))
		l.params.TargetMaxRecvDataSegmentLength = l.lim.mrdsl
		if l.sessType == Normal && l.tsih == 0 {
			l.offer()
		}
	}
	if !want.transit {
		return want, nil
	}
	if len(l.pending) > 0 {
		if l.offerRound {
			// The initiator must answer the target's offers before the
			// login may end (section 6.2): answer T=0.
			return final{}, nil
		}
		// It did not answer and wants to go on: keep the defaults.
		clear(l.pending)
	}
	return want, nil
}

// local is the value tandem would choose on its own for a key.
func (l *Login) local(key string) string {
	u := func(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
	switch key {
	case "HeaderDigest", "DataDigest":
		if l.lim.digests {
			return "CRC32C,None"
		}
		return text.None
	case "MaxConnections":
		return "1"
	case "InitialR2T":
		return text.FormatBool(l.lim.initialR2T)
	case "ImmediateData":
		return text.FormatBool(l.lim.immediate)
	case "MaxBurstLength":
		return u(l.lim.mbl)
	case "FirstBurstLength":
		return u(min(l.lim.fbl, l.params.MaxBurstLength))
	case "DefaultTime2Wait":
		return u(l.lim.t2w)
	case "DefaultTime2Retain":
		return u(l.lim.t2r)
	case "MaxOutstandingR2T":
		return u(l.lim.r2t)
	case "DataPDUInOrder", "DataSequenceInOrder":
		// tandem keeps Data-In and Data-Out in order.
		return "Yes"
	case "ErrorRecoveryLevel":
		return "0"
	case "TaskReporting":
		return "RFC3720"
	case "iSCSIProtocolLevel":
		return "1"
	case "IFMarker", "OFMarker":
		return "No"
	}
	return ""
}

// negotiate answers one offer of the initiator.
func (l *Login) negotiate(d *text.KeyDef, offer string) *loginError {
	switch d.Name {
	case "MaxRecvDataSegmentLength":
		n, err := d.Number(offer)
		if err != nil {
			return refuse(pdu.LoginInitiatorError, "MaxRecvDataSegmentLength "+strconv.Quote(offer)+" outside 512..16777215")
		}
		l.params.MaxRecvDataSegmentLength = uint32(n)
		return nil
	case "IFMarkInt", "OFMarkInt":
		// Markers are always No, so their intervals do not matter.
		l.add(d.Name, text.Irrelevant)
		return nil
	}
	ans := d.Answer(offer, l.local(d.Name))
	l.add(d.Name, ans)
	if ans != text.Reject {
		l.apply(d.Name, ans)
	}
	return nil
}

// answered settles a key the target offered with the initiator's answer.
func (l *Login) answered(d *text.KeyDef, offer, answer string) *loginError {
	delete(l.pending, d.Name)
	if text.IsReserved(answer) {
		return nil // the default stays
	}
	v, err := d.Outcome(offer, answer)
	if err != nil {
		return refuse(pdu.LoginInitiatorError, d.Name+"="+answer+" does not answer the target's offer "+offer)
	}
	l.apply(d.Name, v)
	return nil
}

// offer proposes tandem's values for keys the initiator left at their
// defaults; those whose outcome the offer alone does not settle wait for
// an answer.
func (l *Login) offer() {
	for _, key := range targetOffers {
		if l.seen[key] {
			continue
		}
		d := text.LookupKey(key)
		v := l.local(key)
		if v == d.Default {
			continue
		}
		if key == "FirstBurstLength" && l.params.InitialR2T && !l.params.ImmediateData {
			continue
		}
		l.add(key, v)
		l.seen[key] = true
		if d.AnswerRequired(v) {
			l.pending[key] = v
			l.offerRound = true
		} else {
			l.apply(key, v)
		}
	}
}

// apply records a negotiated value in Params. Values were validated.
func (l *Login) apply(key, v string) {
	p := &l.params
	n := func() uint32 {
		x, _ := text.ParseNumber(v)
		return uint32(x)
	}
	b := v == "Yes"
	switch key {
	case "HeaderDigest":
		p.HeaderDigest = v == "CRC32C"
	case "DataDigest":
		p.DataDigest = v == "CRC32C"
	case "MaxConnections":
		p.MaxConnections = n()
	case "InitialR2T":
		p.InitialR2T = b
	case "ImmediateData":
		p.ImmediateData = b
	case "MaxBurstLength":
		p.MaxBurstLength = n()
	case "FirstBurstLength":
		p.FirstBurstLength = n()
	case "DefaultTime2Wait":
		p.DefaultTime2Wait = n()
	case "DefaultTime2Retain":
		p.DefaultTime2Retain = n()
	case "MaxOutstandingR2T":
		p.MaxOutstandingR2T = n()
	case "DataPDUInOrder":
		p.DataPDUInOrder = b
	case "DataSequenceInOrder":
		p.DataSequenceInOrder = b
	case "ErrorRecoveryLevel":
		p.ErrorRecoveryLevel = n()
	}
}
