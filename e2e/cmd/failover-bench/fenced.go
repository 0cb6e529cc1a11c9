package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tandem-ha/tandem/e2e/partition"
)

// runFenced measures the fenced power-off in the partition lab (e2e/
// partition): group [fence (scsi-pr), blockwriter, vip] with the disk
// heartbeat on, default timings. Each round powers the active node off
// (links down, every process of the node killed) and times, from the kill,
// the new node's first write accepted by the target (it has preempted the
// old key, checked it is gone and started the writer) and the first VIP
// answer from it; the round's time is the later of the two.
func runFenced(agentBin, targetBin, writerBin string, rounds int, keep bool) error {
	dir, err := os.MkdirTemp("", "failover-bench-fenced")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("fenced lab directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	l, err := partition.New(partition.Options{
		AgentBin: agentBin, TargetBin: targetBin, WriterBin: writerBin, Dir: dir,
		Timing: partition.Timing{Keepalive: 200 * time.Millisecond, DeadTime: time.Second, InitDead: 10 * time.Second, Monitor: time.Second},
		Fence:  true, DiskHB: true, LogLevel: "warn",
	})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.StartTarget(); err != nil {
		return err
	}
	for i := range 2 {
		if err := l.StartAgent(i); err != nil {
			return err
		}
	}
	active := 0
	if err := settleFenced(l, active); err != nil {
		return err
	}
	var total, fenced []time.Duration
	for r := range rounds {
		peer := 1 - active
		t0 := time.Now()
		if err := l.PowerOff(active); err != nil {
			return err
		}
		vip, write, err := waitFenced(l, peer, t0)
		if err != nil {
			return fmt.Errorf("fenced power-off round %d: %w", r+1, err)
		}
		d := max(vip, write)
		total, fenced = append(total, d), append(fenced, write)
		fmt.Printf("fenced power-off %2d: %s -> %s: fenced and writing in %v, VIP in %v\n", r+1,
			partition.Nodes[active], partition.Nodes[peer], write.Round(time.Millisecond), vip.Round(time.Millisecond))
		if err := l.PowerOn(active); err != nil {
			return err
		}
		active = peer
		if err := settleFenced(l, active); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Println("fenced: group [fence scsi-pr, writer, vip], disk heartbeat on; keepalive 200ms, deadtime 1s")
	report("fenced power-off: fenced + writing", fenced)
	report("fenced power-off: + VIP answers", total)
	return nil
}

// waitFenced waits until node answers on the VIP and a writer started on
// node after t0 had a write accepted; it returns both delays from t0.
func waitFenced(l *partition.Lab, node int, t0 time.Time) (vip, write time.Duration, err error) {
	deadline := t0.Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if vip == 0 {
			if got, err := l.Probe(probeEvery); err == nil && got == partition.Nodes[node] {
				vip = time.Since(t0)
			}
		} else {
			time.Sleep(probeEvery)
		}
		if write == 0 {
			evs, err := partition.ReadAckLogs(l.AckLog(node))
			if err != nil {
				return 0, 0, err
			}
			if at := partition.Analyze(evs).FirstAckAfter(partition.Nodes[node], t0); !at.IsZero() {
				write = at.Sub(t0)
			}
		}
		if vip != 0 && write != 0 {
			return vip, write, nil
		}
	}
	return 0, 0, fmt.Errorf("%s did not take over within 20s (VIP %v, first write %v)", partition.Nodes[node], vip, write)
}

func settleFenced(l *partition.Lab, active int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.WaitState(ctx, active, "active"); err != nil {
		return err
	}
	return l.WaitState(ctx, 1-active, "standby")
}
