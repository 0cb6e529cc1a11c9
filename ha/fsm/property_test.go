package fsm

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// chaos drives a two-node sim with random network faults, operator
// commands, resource failures and agent restarts.
type chaos struct {
	s        *sim
	rng      *rand.Rand
	loss     [][2]float64 // per link, per sender (a=0, b=1): drop probability
	failures bool
	lastBad  time.Duration
	deadTime time.Duration
}

func newChaos(t *rapid.T, failures bool, arbiter ...bool) *chaos {
	arb := len(arbiter) > 0 && arbiter[0]
	links := rapid.IntRange(1, 3).Draw(t, "links")
	pref := rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "preferred")
	fb := rapid.Bool().Draw(t, "autofailback")
	nres := rapid.IntRange(0, 3).Draw(t, "resources")
	var rcs []ResourceConfig
	for i := range nres {
		rcs = append(rcs, ResourceConfig{Name: fmt.Sprintf("r%d", i), MonitorInterval: 500 * time.Millisecond, MaxRestarts: 1})
	}
	mk := func(self, peer string) Config {
		return Config{Self: self, Peer: peer, Preferred: pref, AutoFailback: fb, Links: links, Resources: rcs,
			Keepalive: 200 * time.Millisecond, DeadTime: time.Second, InitDead: 3 * time.Second, Arbiter: arb}
	}
	s, _ := newSim(links, 50*time.Millisecond, mk("a", "b"), mk("b", "a"))
	s.arbiter = arb
	s.opDelay = rapid.SampledFrom([]time.Duration{0, 20 * time.Millisecond, 150 * time.Millisecond}).Draw(t, "opdelay")
	c := &chaos{s: s, rng: rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1)), loss: make([][2]float64, links),
		failures: failures, deadTime: time.Second, lastBad: -time.Hour}
	s.drop = func(from string, l int) bool {
		i := 0
		if from == "b" {
			i = 1
		}
		return c.loss[l][i] > 0 && c.rng.Float64() < c.loss[l][i]
	}
	s.onStep = func() { c.check(t) }
	return c
}

// gaps records when a direction last went silent for (almost) deadtime:
// only such a gap can let a node declare its peer dead.
func (c *chaos) gaps() {
	for _, n := range c.s.nodes {
		p := c.s.peerOf(n)
		if !n.up || !p.up {
			continue
		}
		last, ok := c.s.lastDelivered[n.name]
		if !ok || last < p.start {
			last = p.start
		}
		if c.s.now-last >= c.deadTime-c.s.step {
			c.lastBad = c.s.now
		}
	}
}

// check is the safety property: both nodes Active only within a short
// window after heartbeats failed to arrive for deadtime in some direction.
func (c *chaos) check(t *rapid.T) {
	c.gaps()
	if len(c.s.active()) < 2 {
		return
	}
	window := c.deadTime + 3*200*time.Millisecond
	if c.s.now-c.lastBad > window {
		t.Fatalf("both nodes Active at %v with heartbeats flowing (last deadtime gap %v)\n%s", c.s.now, c.lastBad, c.s.status())
	}
}

func (c *chaos) power(t *rapid.T, n *simNode) {
	if err := c.s.power(n); err != nil {
		t.Fatal(err)
	}
}

func (c *chaos) step(t *rapid.T) {
	s := c.s
	n := s.nodes[rapid.IntRange(0, 1).Draw(t, "node")]
	switch rapid.IntRange(0, 9).Draw(t, "event") {
	case 0, 1, 2:
		s.run(time.Duration(rapid.IntRange(1, 60).Draw(t, "ticks")) * s.step)
	case 3:
		l := rapid.IntRange(0, s.links-1).Draw(t, "link")
		c.loss[l][0] = rapid.SampledFrom([]float64{0, 0, 0.3, 1}).Draw(t, "loss-a")
		c.loss[l][1] = rapid.SampledFrom([]float64{0, 0, 0.3, 1}).Draw(t, "loss-b")
	case 4:
		k := CommandKind(rapid.IntRange(0, 3).Draw(t, "cmd"))
		if n.up {
			s.stepNode(n, Command{Kind: k})
			s.drain()
		}
	case 5:
		if n.up {
			s.powerOff(n)
		} else {
			c.power(t, n)
		}
	case 6:
		if !n.up {
			c.power(t, n)
		}
	case 7, 8:
		if !c.failures || len(n.order) == 0 {
			break
		}
		r := n.res[n.order[rapid.IntRange(0, len(n.order)-1).Draw(t, "res")]]
		switch rapid.IntRange(0, 3).Draw(t, "fault") {
		case 0:
			r.crash++
		case 1:
			r.failStart++
		case 2:
			r.failStop++
		case 3:
			r.failStop += 2
		}
	case 9:
		s.run(time.Duration(rapid.IntRange(1, 5).Draw(t, "secs")) * time.Second)
	}
}

// heal ends all faults and leaves maintenance.
func (c *chaos) heal(t *rapid.T) {
	for l := range c.loss {
		c.loss[l] = [2]float64{}
	}
	for _, n := range c.s.nodes {
		for _, r := range n.res {
			r.crash, r.failStart, r.failStop, r.failForce = 0, 0, 0, 0
		}
		if !n.up {
			c.power(t, n)
		}
		if n.m.state == Maintenance {
			c.s.stepNode(n, Command{Kind: CmdMaintenanceOff})
			c.s.drain()
		}
	}
}

// churn powers a random subset of the nodes on, applies 5..80 random
// events, heals the network and lets the simulation run for settle.
func (c *chaos) churn(t *rapid.T, settle time.Duration) {
	for _, n := range c.s.nodes {
		if rapid.Bool().Draw(t, "start-"+n.name) {
			c.power(t, n)
		}
	}
	steps := rapid.IntRange(5, 80).Draw(t, "steps")
	for range steps {
		c.step(t)
	}
	c.heal(t)
	c.s.run(settle)
}

func TestPropertyNeverBothActiveWhileHeartbeatsFlow(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := newChaos(t, true)
		c.churn(t, 10*time.Second)
	})
}

func TestPropertyExactlyOneActiveAfterHeal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := newChaos(t, false)
		c.churn(t, 15*time.Second)
		act := c.s.active()
		a, b := c.s.nodes[0].m.Status(), c.s.nodes[1].m.Status()
		if len(act) == 0 && a.Yielding && b.Yielding {
			return // the operator put both nodes in standby
		}
		if len(act) != 1 {
			t.Fatalf("after heal: active=%v\n%s", act, c.s.status())
		}
	})
}

// With an arbiter both nodes reach, cutting every network link never makes
// two active nodes: only a node silent on the disk too (powered off) can be
// declared dead.
func TestPropertyArbiterNeverBothActive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := newChaos(t, true, true)
		c.churn(t, 10*time.Second)
	})
}
