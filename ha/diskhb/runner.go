package diskhb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tandem-ha/tandem/ha/internal/clock"
	"github.com/tandem-ha/tandem/initiator/device"
)

// Config configures a Runner.
type Config struct {
	// Device is the arbiter LUN, through any I_T nexus (reads and writes
	// are allowed to everyone on it: keep it out of the reservation).
	Device device.Device
	// Cluster, Nodes (both names, any order) and Self place the slots.
	Cluster string
	Nodes   []string
	Self    string
	// Boot is this run's boot generation (the agent's).
	Boot uint64
	// BaseLBA is the block of the first slot (default 0).
	BaseLBA uint64
	// Keepalive is the round period, the agent's fsm.Timing.Keepalive;
	// required.
	Keepalive time.Duration
	// State returns what to write as our state (fsm.NodeState).
	State func() uint8
	// Report receives every round's Result, from Run's goroutine.
	Report func(Result)
	// Clock is the time source (nil: the system clock); Now is measured
	// from Runner creation.
	Clock clock.Clock
	Log   *slog.Logger
}

// Result is one round: Err is nil when our slot was written and the
// peer's read; Beat is set when the peer's slot changed (Tracker).
type Result struct {
	Err  error
	Beat *Slot
	// Peer is the peer's slot as last read (Valid false before any).
	Peer      Slot
	PeerValid bool
	Seq       uint64 // our sequence just written
}

// Runner writes our slot and reads the peer's every keepalive.
type Runner struct {
	cfg        Config
	self, peer uint64 // slot LBAs
	cluster    uint64
	tr         Tracker
	seq        uint64
	bs         int
	buf        []byte
	start      time.Time
}

// New checks cfg and returns a Runner; it does no I/O.
func New(cfg Config) (*Runner, error) {
	nodes := slices.Clone(cfg.Nodes)
	slices.Sort(nodes)
	if len(nodes) != 2 || nodes[0] == nodes[1] {
		return nil, fmt.Errorf("diskhb: need two distinct node names, got %q", cfg.Nodes)
	}
	i := slices.Index(nodes, cfg.Self)
	if i < 0 {
		return nil, fmt.Errorf("diskhb: node %q is not in %q", cfg.Self, cfg.Nodes)
	}
	if len(cfg.Self) > MaxNode {
		return nil, fmt.Errorf("diskhb: node name %q is longer than %d bytes", cfg.Self, MaxNode)
	}
	if cfg.Keepalive <= 0 {
		// No default of its own: the round period is the agent's keepalive
		// (fsm.Timing), so both media agree.
		return nil, fmt.Errorf("diskhb: keepalive %v: must be positive: pass the agent's timing.keepalive", cfg.Keepalive)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.State == nil {
		cfg.State = func() uint8 { return 0 }
	}
	ch := ClusterHash(cfg.Cluster)
	r := &Runner{cfg: cfg, self: cfg.BaseLBA + uint64(i), peer: cfg.BaseLBA + uint64(1-i), cluster: ch,
		tr: Tracker{Cluster: ch, Peer: nodes[1-i]}, start: cfg.Clock.Now()}
	return r, nil
}

// Peer is the peer's node name.
func (r *Runner) Peer() string { return r.tr.Peer }

// Round writes our slot (FUA) and reads the peer's (FUA) once.
func (r *Runner) Round(ctx context.Context) Result {
	if r.cfg.Device == nil {
		return Result{Err: fmt.Errorf("arbiter: not connected")}
	}
	if r.bs == 0 {
		c, err := r.cfg.Device.ReadCapacity(ctx)
		if err != nil {
			return Result{Err: fmt.Errorf("arbiter %s: read capacity: %w", r.cfg.Device, err)}
		}
		if int(c.BlockSize) < SlotLen {
			return Result{Err: fmt.Errorf("arbiter %s: block size %d is smaller than a slot (%d)", r.cfg.Device, c.BlockSize, SlotLen)}
		}
		r.bs = int(c.BlockSize)
		r.buf = make([]byte, r.bs)
	}
	r.seq++
	res := Result{Seq: r.seq}
	if err := Encode(r.buf, Slot{Cluster: r.cluster, Node: r.cfg.Self, Boot: r.cfg.Boot, Seq: r.seq, State: r.cfg.State()}); err != nil {
		res.Err = err
		return res
	}
	if err := r.cfg.Device.WriteAt(ctx, r.buf, r.self, true); err != nil {
		res.Err = fmt.Errorf("arbiter %s: write our slot (block %d): %w", r.cfg.Device, r.self, err)
		return res
	}
	if err := r.cfg.Device.ReadAt(ctx, r.buf, r.peer, true); err != nil {
		res.Err = fmt.Errorf("arbiter %s: read the peer's slot (block %d): %w", r.cfg.Device, r.peer, err)
		return res
	}
	s, err := Decode(r.buf)
	switch {
	case err == ErrEmpty:
		// The peer never wrote: our I/O works, the peer is just silent.
	case err != nil:
		r.cfg.Log.Warn("unreadable peer slot on the arbiter", "lba", r.peer, "err", err)
	default:
		changed, err := r.tr.Observe(s, r.cfg.Clock.Now().Sub(r.start))
		if err != nil {
			r.cfg.Log.Warn("foreign slot on the arbiter: check the cluster name and node list", "lba", r.peer, "err", err)
		} else if changed {
			res.Beat = &s
		}
	}
	res.Peer, _, res.PeerValid = r.tr.Last()
	return res
}

// Run does a Round every keepalive until ctx ends, reporting each.
func (r *Runner) Run(ctx context.Context) error {
	t := r.cfg.Clock.NewTicker(r.cfg.Keepalive)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, r.cfg.Keepalive*4)
		res := r.Round(rctx)
		cancel()
		if r.cfg.Report != nil {
			r.cfg.Report(res)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
		}
	}
}

// SetDevice replaces the arbiter device (after a reconnect); the next
// Round reads its capacity again.
func (r *Runner) SetDevice(d device.Device) {
	r.cfg.Device = d
	r.bs = 0
}
