package agent

import (
	"errors"
	"time"

	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/heartbeat"
	"github.com/tandem-ha/tandem/ha/link"
)

// send seals and sends one heartbeat on every link. Sequence numbers are
// round*links + link + 1: unique per datagram, so the peer's replay filter
// accepts the same round on every link, and strided per link, so the peer
// can count losses per link.
//
// Round-trip time without extra datagrams: each heartbeat echoes the last
// SentAt received from the peer on that link plus the time it was held
// (EchoOf = peerSentAt + held). The peer then computes now - EchoOf in its
// own clock, which is exactly the two one-way delays.
func (a *Agent) send(state fsm.NodeState, flags fsm.Flags) {
	a.round++
	now := a.now()
	n := uint64(len(a.links))
	for i, t := range a.links {
		m := heartbeat.Message{Cluster: a.cfg.Cluster, Node: a.cfg.Node, Boot: a.boot,
			Seq: a.round*n + uint64(i) + 1, State: uint8(state), Flags: uint8(flags), SentAt: int64(now) + 1}
		a.mu.Lock()
		ls := &a.ls[i]
		if ls.peerSentAt != 0 && now-ls.lastSeenAt < a.cfg.Timing.DeadTime {
			m.EchoOf = ls.peerSentAt + int64(now-ls.lastSeenAt)
		}
		a.mu.Unlock()
		a.buf = heartbeat.Seal(a.buf[:0], a.cfg.Key, &m)
		if err := t.Send(a.buf); err != nil && !errors.Is(err, link.ErrClosed) {
			a.log.Debug("send heartbeat", "link", a.cfg.Links[i].Name, "err", err)
		}
	}
}

// receive authenticates and filters one datagram, records it and feeds
// the machine.
func (a *Agent) receive(d link.Datagram) {
	if d.Link < 0 || d.Link >= len(a.links) {
		return
	}
	c := a.links[d.Link].Counters()
	m, err := heartbeat.Open(a.cfg.Key, d.Data)
	if err == nil {
		if err = a.filter.Accept(m); err == nil && m.Node != a.cfg.Peer {
			err = heartbeat.ErrForeign
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, heartbeat.ErrSelf):
		c.Self.Add(1)
		return
	case errors.Is(err, heartbeat.ErrForged):
		c.Forged.Add(1)
		a.log.Debug("dropped forged heartbeat", "link", a.cfg.Links[d.Link].Name, "from", d.From)
		return
	case errors.Is(err, heartbeat.ErrForeign):
		c.Foreign.Add(1)
		return
	case errors.Is(err, heartbeat.ErrReplay):
		c.Replayed.Add(1)
		return
	default:
		c.Malformed.Add(1)
		return
	}
	c.Received.Add(1)
	now := a.now()
	n := uint64(len(a.links))
	a.mu.Lock()
	ls := &a.ls[d.Link]
	var gap time.Duration
	if ls.peerBoot == m.Boot && !ls.lastSeen.IsZero() {
		gap = now - ls.lastSeenAt
	}
	if ls.peerBoot == m.Boot && m.Seq > ls.lastSeq && n > 0 && m.Type != heartbeat.TypeReleased {
		if gap := (m.Seq - ls.lastSeq) / n; gap > 1 {
			c.Lost.Add(gap - 1)
		}
	}
	if ls.peerBoot != m.Boot || m.Seq > ls.lastSeq {
		ls.peerBoot, ls.lastSeq = m.Boot, m.Seq
	}
	ls.lastSeen = a.clk.Now()
	ls.lastSeenAt = now
	ls.peerSentAt = m.SentAt
	if m.EchoOf != 0 {
		if rtt := now - time.Duration(m.EchoOf-1); rtt >= 0 && rtt < a.cfg.Timing.DeadTime {
			ls.rtt = rtt
		}
	}
	a.mu.Unlock()
	if gap > 0 && a.opt.OnHeartbeatGap != nil {
		a.opt.OnHeartbeatGap(a.cfg.Links[d.Link].Name, gap)
	}
	a.step(fsm.Heartbeat{Link: d.Link, Node: m.Node, Boot: m.Boot, Seq: m.Seq,
		State: fsm.NodeState(m.State), Flags: fsm.Flags(m.Flags), Released: m.Type == heartbeat.TypeReleased, Now: now})
}
