// Command failover-bench measures tandem-agent failover in the hanet
// network-namespace lab with the agent's default timings (keepalive 200ms,
// deadtime 1s): N power-offs of the active node (links down + kill -9),
// then N graceful standbys, each timed from the action to the first reply
// of the VIP from the new node, as a client probing every 10 ms sees it.
// Needs root. `make bench-failover` runs it.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/hanet"
)

func main() {
	var agentBin, targetBin, writerBin string
	var rounds, fencedRounds int
	var keep, demo bool
	c := &cobra.Command{
		Use:           "failover-bench",
		Short:         "Time tandem-agent failovers in network namespaces",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if demo {
				return runDemo(agentBin)
			}
			if rounds > 0 {
				if err := run(agentBin, rounds, keep); err != nil {
					return err
				}
			}
			if fencedRounds > 0 {
				fmt.Println()
				return runFenced(agentBin, targetBin, writerBin, fencedRounds, keep)
			}
			return nil
		},
	}
	c.Flags().StringVar(&agentBin, "agent-bin", "bin/tandem-agent", "tandem-agent binary")
	c.Flags().IntVar(&rounds, "rounds", 20, "failovers of each kind")
	c.Flags().IntVar(&fencedRounds, "fenced-rounds", 0, "fenced power-offs (partition lab with tandem-target, fence and disk heartbeat); 0 skips them")
	c.Flags().StringVar(&targetBin, "target-bin", "bin/tandem-target", "tandem-target binary (fenced rounds)")
	c.Flags().StringVar(&writerBin, "writer-bin", "bin/blockwriter", "blockwriter binary (fenced rounds)")
	c.Flags().BoolVar(&keep, "keep-logs", false, "keep the lab directory with the agents' logs")
	c.Flags().BoolVar(&demo, "demo", false, "show one failover step by step instead of measuring (make demo-ha)")
	if err := c.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "failover-bench:", err)
		os.Exit(1)
	}
}

const probeEvery = 10 * time.Millisecond

func run(agentBin string, rounds int, keep bool) error {
	dir, err := os.MkdirTemp("", "failover-bench")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("lab directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	l, err := hanet.New(hanet.Options{AgentBin: agentBin, Dir: dir, LogLevel: "warn"})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Start(0); err != nil {
		return err
	}
	if err := l.Start(1); err != nil {
		return err
	}
	active := 0
	if err := settle(l, active); err != nil {
		return err
	}

	var powerOff, standby []time.Duration
	for r := range rounds {
		peer := 1 - active
		t0 := time.Now()
		if err := l.PowerOff(active); err != nil {
			return err
		}
		d, err := waitVIP(l, peer, t0)
		if err != nil {
			return fmt.Errorf("power-off round %d: %w", r+1, err)
		}
		powerOff = append(powerOff, d)
		fmt.Printf("power-off %2d: %s -> %s in %v\n", r+1, hanet.Nodes[active], hanet.Nodes[peer], d.Round(time.Millisecond))
		if err := l.PowerOn(active); err != nil {
			return err
		}
		active = peer
		if err := settle(l, active); err != nil {
			return err
		}
	}
	for r := range rounds {
		peer := 1 - active
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t0 := time.Now()
		err := l.Client(active).Standby(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("standby round %d: %w", r+1, err)
		}
		d, err := waitVIP(l, peer, t0)
		if err != nil {
			return fmt.Errorf("standby round %d: %w", r+1, err)
		}
		standby = append(standby, d)
		fmt.Printf("standby   %2d: %s -> %s in %v\n", r+1, hanet.Nodes[active], hanet.Nodes[peer], d.Round(time.Millisecond))
		active = peer
		if err := settle(l, active); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Println("default timings: keepalive 200ms, deadtime 1s; client probes the VIP every 10ms")
	report("power-off (links down + kill -9)", powerOff)
	report("graceful standby", standby)
	return nil
}

func waitVIP(l *hanet.Lab, node int, t0 time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	at, err := l.WaitVIP(ctx, hanet.Nodes[node], probeEvery)
	if err != nil {
		return 0, err
	}
	return at.Sub(t0), nil
}

// settle waits until active holds the group and the other node is standby.
func settle(l *hanet.Lab, active int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.WaitState(ctx, active, "active"); err != nil {
		return err
	}
	return l.WaitState(ctx, 1-active, "standby")
}

func report(what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	fmt.Printf("%-34s n=%d  median %v  worst %v  best %v\n", what+":", len(s),
		med.Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), s[0].Round(time.Millisecond))
}
