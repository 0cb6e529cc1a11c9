// Command soak runs N fenced failovers back and forth in the partition
// lab and fails when a state sticks, the LUN's registrations are not the
// active node's two, or an agent's or the target's fds, goroutines,
// threads or RSS grow after warm-up (e2e/soak). Needs root. `make soak
// ROUNDS=N` runs it.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/soak"
)

func main() {
	var o soak.Options
	c := &cobra.Command{
		Use:           "soak",
		Short:         "Fenced failovers back and forth, checking for leaks and stuck states",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = os.Stdout
			res, err := soak.Run(o)
			if err != nil {
				return fmt.Errorf("%w (lab directory %s)", err, res.Dir)
			}
			lines, ok := soak.Judge(res)
			fmt.Printf("\n%d rounds in %v, longest settle %v, agent restarts %d, rejoins %d\n", o.Rounds, res.Elapsed.Round(1e9), res.Settle.Round(1e6), res.Restarts, res.Rejoins)
			fmt.Println("(target goroutines: it serves no metrics; its threads are shown instead)")
			for _, l := range lines {
				fmt.Println(l)
			}
			if !ok {
				return fmt.Errorf("a series grew after warm-up or the run was too short to judge: see above")
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.AgentBin, "agent-bin", "bin/tandem-agent", "tandem-agent binary")
	c.Flags().StringVar(&o.TargetBin, "target-bin", "bin/tandem-target", "tandem-target binary")
	c.Flags().StringVar(&o.WriterBin, "writer-bin", "bin/blockwriter", "blockwriter binary")
	c.Flags().IntVar(&o.Rounds, "rounds", 50, "failovers")
	c.Flags().BoolVar(&o.Keep, "keep-logs", false, "keep the lab directory with the logs")
	if err := c.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}
