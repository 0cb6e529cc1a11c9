package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/diskhb"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/resource/iscsi"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
)

// diskState is the disk heartbeat as status shows it.
type diskState struct {
	ok           bool
	lastErr      string
	lastOK       time.Time
	seq          uint64
	peerSeen     time.Time
	peerSeenAt   time.Duration
	peerSeq      uint64
	peerState    fsm.NodeState
	peerHeardAny bool
}

// openArbiter opens the configured arbiter LUN: a kernel device, or a
// native session whose initiator name and ISID derive from the node (an
// ISID other than the fence's, so the two never share a nexus).
func openArbiter(ctx context.Context, cfg *config.Config) (device.Device, error) {
	d := cfg.DiskHeartbeat
	if d.Device != "" {
		return device.OpenKernel(d.Device)
	}
	o := initiator.Options{TargetName: d.Target, InitiatorName: fence.InitiatorName(cfg.Cluster, cfg.Node),
		ISID: fence.ISID(^fence.Key(cfg.Cluster, cfg.Node))}
	if d.User != "" {
		sec, err := iscsi.ReadSecret(d.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("disk_heartbeat: %w", err)
		}
		o.CHAP = &initiator.CHAP{User: d.User, Secret: []byte(sec)}
	}
	s, err := initiator.Dial(ctx, d.Portal, o)
	if err != nil {
		return nil, fmt.Errorf("disk_heartbeat: log in to %s at %s: %w", d.Target, d.Portal, err)
	}
	n := device.NewNative(s, d.LUN)
	n.Name = fmt.Sprintf("arbiter %s lun %d", d.Target, d.LUN)
	return &closingNative{n}, nil
}

// closingNative closes its session with the device: the arbiter's
// session serves it alone.
type closingNative struct{ *device.Native }

func (c *closingNative) Close() error {
	// The arbiter is closed after its I/O failed, most likely on a dead
	// storage network: wait for the logout answer only briefly.
	ctx, cancel := context.WithTimeout(context.Background(), arbiterLogout)
	defer cancel()
	return c.S.Close(ctx)
}

// arbiterLogout bounds the arbiter session's logout on close.
const arbiterLogout = time.Second

// runDisk runs the disk heartbeat until ctx ends, (re)opening the arbiter
// as needed, and hands every round to the loop.
func (a *Agent) runDisk(ctx context.Context) {
	r := a.dhb
	var dev device.Device = a.opt.Arbiter
	tick := a.clk.NewTicker(a.cfg.Timing.Keepalive)
	defer tick.Stop()
	defer func() {
		if dev != nil && a.opt.Arbiter == nil {
			dev.Close()
		}
	}()
	for {
		var res diskhb.Result
		if dev == nil {
			octx, cancel := context.WithTimeout(ctx, a.cfg.Timing.DeadTime)
			d, err := a.opt.OpenArbiter(octx)
			cancel()
			if err != nil {
				res.Err = err
			} else {
				dev = d
				r.SetDevice(d)
			}
		}
		if dev != nil {
			rctx, cancel := context.WithTimeout(ctx, a.cfg.Timing.DeadTime)
			res = r.Round(rctx)
			cancel()
			if errors.Is(res.Err, initiator.ErrSessionClosed) && a.opt.Arbiter == nil {
				dev.Close()
				dev = nil
				r.SetDevice(nil)
			}
		}
		select {
		case a.disk <- res:
		case <-ctx.Done():
			return
		}
		select {
		case <-tick.C():
		case <-ctx.Done():
			return
		}
	}
}

// diskResult feeds one disk heartbeat round to the machine.
func (a *Agent) diskResult(res diskhb.Result) {
	now := a.now()
	a.mu.Lock()
	ds := &a.ds
	ds.ok = res.Err == nil
	ds.seq = res.Seq
	if res.Err != nil {
		ds.lastErr = res.Err.Error()
	} else {
		ds.lastErr, ds.lastOK = "", a.clk.Now()
	}
	if res.Beat != nil {
		ds.peerSeen, ds.peerSeenAt, ds.peerHeardAny = a.clk.Now(), now, true
		ds.peerSeq, ds.peerState = res.Beat.Seq, fsm.NodeState(res.Beat.State)
	}
	a.mu.Unlock()
	if res.Err != nil {
		a.log.Debug("disk heartbeat round failed", "err", res.Err)
	}
	a.step(fsm.DiskStatus{OK: res.Err == nil, Now: now})
	if b := res.Beat; b != nil {
		a.step(fsm.DiskBeat{Node: b.Node, Boot: b.Boot, Seq: b.Seq, State: fsm.NodeState(b.State), Now: now})
	}
}
