// Command chaos-timing runs the timing chaos of e2e/chaostiming twice,
// with and without the agents' realtime option, and fails on any
// failover. Needs root. `make chaos-timing DURATION=10m` runs it.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/chaostiming"
)

func main() {
	var o chaostiming.Options
	c := &cobra.Command{
		Use: "chaos-timing", Short: "No false failover under CPU, loss and GC pressure", Args: cobra.NoArgs,
		SilenceUsage: true, SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bad := false
			for _, rt := range []bool{true, false} {
				o.Realtime = rt
				res, err := chaostiming.Run(o)
				if err != nil {
					return fmt.Errorf("realtime %t: %w", rt, err)
				}
				fmt.Printf("realtime %-5t %v: failovers %d, worst heartbeat gap <= %gs (alpha, %s), <= %gs (beta, %s)\n",
					rt, o.Duration, res.Failovers, res.Worst[0], res.Link[0], res.Worst[1], res.Link[1])
				bad = bad || res.Failovers > 0
			}
			if bad {
				return fmt.Errorf("a false failover happened: see above")
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.AgentBin, "agent-bin", "bin/tandem-agent", "tandem-agent binary")
	c.Flags().StringVar(&o.TargetBin, "target-bin", "bin/tandem-target", "tandem-target binary")
	c.Flags().StringVar(&o.WriterBin, "writer-bin", "bin/blockwriter", "blockwriter binary")
	c.Flags().DurationVar(&o.Duration, "duration", 10*time.Minute, "chaos duration of each run")
	c.Flags().IntVar(&o.Burners, "burners", runtime.NumCPU(), "busy loops on the active node")
	if err := c.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos-timing:", err)
		os.Exit(1)
	}
}
