package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/heartbeat"
	"github.com/tandem-ha/tandem/ha/internal/clock"
	"github.com/tandem-ha/tandem/ha/link"
	"github.com/tandem-ha/tandem/ha/resource"
)

// ReleaseOptions are Release's adapters; zero values pick production ones.
type ReleaseOptions struct {
	// Resources are the group in config order. Nil: built from the config.
	Resources []resource.Resource
	// Fence fences this node; it may not return. Nil: FenceFunc(cfg.SelfFence).
	Fence func(reason string)
	// Clock times the operations. Nil: the system clock.
	Clock clock.Clock
	// Transports are the heartbeat links in config order, for the released
	// heartbeat. Nil: opened from the config with link.Open (the dead
	// agent's sockets are gone); an empty slice sends nothing.
	Transports []link.Transport
	// Boot is the dead agent's boot generation (Agent.Boot, handed to the
	// guard at its start). The released heartbeat speaks for that run only:
	// a peer that already hears the agent's next run (a restart that beat
	// the guard) drops it as a datagram of an earlier run, instead of
	// taking the new run for dead. Zero: unknown, and nothing is sent (the
	// peer waits for deadtime).
	Boot uint64
	// Log receives the release's log lines; nil discards.
	Log *slog.Logger
}

// releasedSeq is the sequence number of the released heartbeats: far above
// what a run sends (2^63 heartbeats at 1 kHz take 292 million years).
const releasedSeq = 1 << 63

// ErrNotReleased is returned (wrapped, with the reason) by Release when a
// resource would not stop and the self-fence action ran.
var ErrNotReleased = errors.New("resource group not released")

// Release stops the whole group, in reverse order, for the guard after the
// agent died (tandem-agent guard). The escalation is the running agent's,
// from the same state machine: a fresh fsm.Machine's startup cleanup stops
// every resource, forces one whose stop failed (resource.Forcer), stops it
// again, and asks for the self-fence when it still runs. Release carries
// out those operations one at a time, with the same timeouts, and runs
// opt.Fence then. It never starts anything. Once every resource stopped
// it sends a released heartbeat (heartbeat.TypeReleased) on every link, so
// the peer takes the group at once instead of after deadtime, and returns
// nil. After a self-fence it sends nothing: something may still run.
func Release(cfg *config.Config, opt ReleaseOptions) error {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := opt.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	fenceFn := opt.Fence
	if fenceFn == nil {
		fenceFn = FenceFunc(cfg.SelfFence, log)
	}
	res, err := buildGroup(cfg, opt.Resources, log)
	if err != nil {
		return err
	}
	byName := make(map[string]resource.Resource, len(res))
	for i, s := range cfg.Resources {
		byName[s.Name] = res[i]
	}
	m, err := fsm.New(machineConfig(cfg, false))
	if err != nil {
		return fmt.Errorf("state machine: %w", err)
	}
	ctx := resource.WithEnv(context.Background(), groupEnv(cfg))
	// One tick only: the machine's time stays at its boot, so it never
	// reaches initdead and never decides to start the group alone.
	queue := m.Step(fsm.Tick{})
	for len(queue) > 0 {
		act := queue[0]
		queue = queue[1:]
		switch act := act.(type) {
		case fsm.RunResource:
			r, ok := byName[act.Name]
			if !ok || act.Op == fsm.OpStart || act.Op == fsm.OpMonitor {
				return fmt.Errorf("release: the state machine asked to %s %s while stopping the group: report this as a bug", opName(act.Op), act.Name)
			}
			log.Info("resource operation", "resource", act.Name, "op", opName(act.Op))
			rr := runOp(ctx, clk, r, act)
			if rr.Err != nil {
				log.Warn("resource operation failed", "resource", act.Name, "op", opName(act.Op), "err", rr.Err)
			}
			queue = append(queue, m.Step(rr)...)
		case fsm.SelfFence:
			log.Error("SELF-FENCE", "reason", act.Reason, "action", cfg.SelfFence.Action)
			fenceFn(act.Reason)
			return fmt.Errorf("%w: %s", ErrNotReleased, act.Reason)
		case fsm.Notify:
			lvl := act.Level
			if lvl == slog.LevelInfo {
				lvl = slog.LevelDebug // "agent started"... is detail in the guard
			}
			log.Log(context.Background(), lvl, act.Msg, act.Attrs...)
		}
		// fsm.SendHeartbeat: the guard has no links; the peer hears silence.
	}
	if st := m.Status().State; st != fsm.Init {
		return fmt.Errorf("release: state machine ended in %s, not init, with nothing left to run: report this as a bug", st)
	}
	sendReleased(cfg, opt, log)
	return nil
}

// sendReleased tells the peer, on every link, that the group is stopped
// here and the agent is gone. A link that cannot be opened or sent on is
// logged: the peer then waits for deadtime as before.
func sendReleased(cfg *config.Config, opt ReleaseOptions, log *slog.Logger) {
	if opt.Boot == 0 {
		log.Warn("released heartbeat not sent: the dead agent's boot generation is unknown; the peer waits for deadtime")
		return
	}
	links := opt.Transports
	if links == nil {
		inbox := make(chan link.Datagram, 1) // nothing is read: the guard only speaks
		for i, l := range cfg.Links {
			t, err := link.Open(i, l, inbox, log)
			if err != nil {
				log.Warn("released heartbeat not sent on this link: the peer waits for deadtime", "link", l.Name, "err", err)
				continue
			}
			defer t.Close()
			links = append(links, t)
		}
	}
	var buf []byte
	for i, t := range links {
		// The dead run's last words: a sequence number above any it sent,
		// so the replay filter takes them after its heartbeats.
		m := heartbeat.Message{Cluster: cfg.Cluster, Node: cfg.Node, Boot: opt.Boot, Seq: releasedSeq + uint64(i),
			Type: heartbeat.TypeReleased, State: uint8(fsm.Standby), Flags: uint8(fsm.FlagYield), SentAt: 1}
		buf = heartbeat.Seal(buf[:0], cfg.Key, &m)
		if err := t.Send(buf); err != nil {
			log.Warn("released heartbeat not sent: the peer waits for deadtime", "link", i, "err", err)
		}
	}
	log.Info("released heartbeat sent", "links", len(links))
}
