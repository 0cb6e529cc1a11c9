// Command bench-scale measures tandem-target at scale: many sessions over
// many LUNs against one session at the same total depth, a login storm
// and memory per idle session (package benchscale). It exits 1 when a
// goal is missed.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/benchscale"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var o benchscale.Options
	var lunMiB int64
	cmd := &cobra.Command{
		Use:          "bench-scale",
		Short:        "Sessions, LUNs, login storm and memory per session of tandem-target",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			dir, err := os.MkdirTemp("", "tandem-bench-scale-")
			if err != nil {
				return fmt.Errorf("scratch directory: %w", err)
			}
			defer os.RemoveAll(dir)
			o.Dir, o.LUNSize = dir, lunMiB<<20
			r, err := benchscale.Run(ctx, o)
			if err != nil {
				return err
			}
			g := benchscale.DefaultGoals()
			fmt.Print(benchscale.Table(r, g))
			fmt.Printf("\nMeasured on %s (client and target share the cores).\n", time.Now().UTC().Format("2006-01-02"))
			if miss := g.Check(r); len(miss) > 0 {
				for _, m := range miss {
					fmt.Println("goal missed:", m)
				}
				return fmt.Errorf("%d goal(s) missed", len(miss))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.TandemBin, "tandem-bin", "bin/tandem-target", "tandem-target binary")
	fl.IntVar(&o.Sessions, "sessions", 256, "sessions of the many-session run and the login storm")
	fl.IntVar(&o.Initiators, "initiators", 64, "initiator names the sessions come from")
	fl.IntVar(&o.LUNs, "luns", 64, "LUNs of the target")
	fl.IntVar(&o.Depth, "depth", 256, "total queue depth of both runs")
	fl.Int64Var(&lunMiB, "lun-size-mib", 16, "size of each preallocated file LUN, MiB")
	fl.DurationVar(&o.Duration, "duration", 5*time.Second, "run time of each I/O run")
	fl.DurationVar(&o.Settle, "settle", 2*time.Second, "idle time before the target's RSS is read")
	return cmd
}
