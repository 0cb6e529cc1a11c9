package login

import (
	"bytes"
	"crypto/subtle"
	"io"
	"strconv"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

func (l *Login) authRequired() bool { return len(l.auth.Incoming) > 0 }

func authFailed(reason string) *loginError { return refuse(pdu.LoginAuthFailed, reason) }

// security handles a request of the security stage: AuthMethod and the
// CHAP exchange of RFC 7143 section 12.1.3.
//
//	I->T AuthMethod=CHAP,None     T->I AuthMethod=CHAP
//	I->T CHAP_A=<A1,A2...>        T->I CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
//	I->T CHAP_N=<N> CHAP_R=<R>    (mutual: also CHAP_I=<I> CHAP_C=<C>)
//	                              T->I (mutual: CHAP_N=<N> CHAP_R=<R>)
func (l *Login) security(kvs []text.KV, want final) (final, *loginError) {
	var chapKeys map[string]string
	for _, kv := range kvs {
		if identityKeys[kv.Key] {
			continue
		}
		d, err := l.checkKey(kv.Key, text.PhaseSecurity)
		if err != nil {
			return final{}, err
		}
		if d == nil {
			continue
		}
		switch kv.Key {
		case "AuthMethod":
			if err := l.authMethod(d, kv.Value); err != nil {
				return final{}, err
			}
		default: // CHAP_*
			if chapKeys == nil {
				chapKeys = map[string]string{}
			}
			chapKeys[kv.Key] = kv.Value
		}
	}
	if chapKeys != nil {
		if err := l.chapStep(chapKeys); err != nil {
			return final{}, err
		}
	}
	if !want.transit {
		return want, nil
	}
	switch l.authState {
	case authStart:
		if l.authRequired() {
			return final{}, authFailed("initiator left the security stage without authenticating")
		}
	case authWantA, authWantR:
		// CHAP is not finished: stay in the security stage (T=0).
		return final{}, nil
	}
	return want, nil
}

func (l *Login) authMethod(d *text.KeyDef, offer string) *loginError {
	supported := text.None
	if l.authRequired() {
		supported = "CHAP"
	}
	ans := d.Answer(offer, supported)
	l.add("AuthMethod", ans)
	switch ans {
	case "CHAP":
		l.authState = authWantA
	case text.None:
		l.authState = authNone
	default:
		if l.authRequired() {
			return authFailed("initiator does not offer CHAP (AuthMethod=" + offer + ")")
		}
		return authFailed("initiator offers no AuthMethod the target can use without credentials (AuthMethod=" + offer + ")")
	}
	return nil
}

func (l *Login) chapStep(k map[string]string) *loginError {
	if a, ok := k["CHAP_A"]; ok {
		if l.authState != authWantA {
			return authFailed("CHAP_A out of sequence")
		}
		if err := l.chapChallenge(a); err != nil {
			return err
		}
		delete(k, "CHAP_A")
	}
	if len(k) == 0 {
		return nil
	}
	if l.authState != authWantR {
		return authFailed("CHAP keys out of sequence")
	}
	return l.chapVerify(k)
}

// chapChallenge picks the algorithm (the target's preference among the
// initiator's list) and sends identifier and challenge.
func (l *Login) chapChallenge(offer string) *loginError {
	items, ok := text.ParseList(offer)
	if !ok {
		l.add("CHAP_A", text.Reject)
		return authFailed("malformed CHAP_A " + strconv.Quote(offer))
	}
	var alg chap.Algorithm
	for _, a := range l.algs {
		if a.Size() == 0 {
			continue
		}
		if contains(items, strconv.Itoa(int(a))) {
			alg = a
			break
		}
	}
	if alg == 0 {
		l.add("CHAP_A", text.Reject)
		return authFailed("no common CHAP algorithm in CHAP_A=" + offer)
	}
	buf := make([]byte, 1+chap.ChallengeLen)
	if _, err := io.ReadFull(l.rand, buf); err != nil {
		return refuse(pdu.LoginTargetError, "reading the CHAP challenge: "+err.Error())
	}
	l.alg, l.chapID, l.challenge = alg, buf[0], buf[1:]
	l.add("CHAP_A", strconv.Itoa(int(alg)))
	l.add("CHAP_I", strconv.Itoa(int(l.chapID)))
	l.add("CHAP_C", chap.EncodeHex(l.challenge))
	l.authState = authWantR
	return nil
}

// chapVerify checks the initiator's response and, when it sends its own
// challenge, answers it with the target's credentials (mutual CHAP).
func (l *Login) chapVerify(k map[string]string) *loginError {
	name, okN := k["CHAP_N"]
	resp, okR := k["CHAP_R"]
	if !okN || !okR {
		return authFailed("CHAP_N or CHAP_R missing")
	}
	r, err := chap.Decode(resp)
	if err != nil {
		return authFailed("malformed CHAP_R: " + err.Error())
	}
	var cred *Credentials
	for i := range l.auth.Incoming {
		c := &l.auth.Incoming[i]
		if subtle.ConstantTimeCompare([]byte(c.User), []byte(name)) == 1 {
			cred = c
			break
		}
	}
	if cred == nil {
		return authFailed("unknown CHAP user " + strconv.Quote(name))
	}
	if !chap.Verify(l.alg, l.chapID, cred.Secret, l.challenge, r) {
		return authFailed("wrong CHAP response for user " + strconv.Quote(name))
	}
	mi, okI := k["CHAP_I"]
	mc, okC := k["CHAP_C"]
	if !okI && !okC {
		l.authState = authDone
		return nil
	}
	if !okI || !okC {
		return authFailed("mutual CHAP needs both CHAP_I and CHAP_C")
	}
	if l.auth.Outgoing == nil {
		return authFailed("initiator asks for mutual CHAP but the target has no outgoing credentials")
	}
	id, err := text.ParseNumber(mi)
	if err != nil || id > 255 {
		return authFailed("malformed CHAP_I " + strconv.Quote(mi))
	}
	c, err := chap.Decode(mc)
	if err != nil {
		return authFailed("malformed CHAP_C: " + err.Error())
	}
	if len(c) < minChallenge || len(c) > maxChallenge {
		return authFailed("mutual CHAP challenge of " + strconv.Itoa(len(c)) + " bytes, want 16..1024")
	}
	if bytes.Equal(c, l.challenge) {
		// RFC 7143 section 12.1.3: a reflected challenge would let the
		// initiator make the target compute the answer it needs.
		return authFailed("mutual CHAP challenge reflects the target's challenge")
	}
	out, err := chap.Response(l.alg, byte(id), l.auth.Outgoing.Secret, c)
	if err != nil {
		return refuse(pdu.LoginTargetError, "computing the CHAP response: "+err.Error())
	}
	l.add("CHAP_N", l.auth.Outgoing.User)
	l.add("CHAP_R", chap.EncodeHex(out))
	l.authState = authDone
	return nil
}
