// Command bench-peers measures tandem-target against tgt and gotgt with
// the same clients (qemu-img bench over libiscsi, tandem-bench) and
// prints a Markdown table of medians, ratios and target CPU per I/O
// (package benchpeers).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/benchpeers"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := benchpeers.Options{Log: os.Stderr}
	var lunSize int64
	var only, out string
	cmd := &cobra.Command{
		Use:          "bench-peers",
		Short:        "Benchmark tandem-target, tgt and gotgt side by side (interleaved, medians)",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			o.LUNSize = lunSize << 20
			for _, p := range benchpeers.DefaultPatterns() {
				if only == "" || strings.Contains(p.Name, only) {
					o.Patterns = append(o.Patterns, p)
				}
			}
			if len(o.Patterns) == 0 {
				return fmt.Errorf("--only %q matches no pattern", only)
			}
			dir, err := os.MkdirTemp("", "tandem-bench-peers-")
			if err != nil {
				return fmt.Errorf("scratch directory: %w", err)
			}
			defer os.RemoveAll(dir)
			o.Dir = dir
			meta := benchpeers.Meta{Date: time.Now(), Machine: machine(), Reps: o.Reps, Command: "make bench-peers"}
			samples, err := benchpeers.Run(ctx, o)
			if err != nil {
				return err
			}
			var names []string
			seq := map[string]bool{}
			for _, p := range o.Patterns {
				names = append(names, p.Name)
				seq[p.Name] = p.Seq
			}
			table := benchpeers.Table(benchpeers.Summarize(names, samples), o.Peers, o.Peers[0], seq, meta)
			fmt.Print(table)
			if out != "" {
				if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.Peers, "peers", []string{benchpeers.Tandem, benchpeers.TGT, benchpeers.Gotgt}, "targets to compare; the first is the base of the ratios")
	fl.StringVar(&o.TandemBin, "tandem-bin", "bin/tandem-target", "tandem-target binary")
	fl.StringVar(&o.GotgtBin, "gotgt-bin", "bin/gotgt", "gotgt binary (built from the module cache: make bench-peers does it)")
	fl.StringVar(&o.BenchBin, "bench-bin", "bin/tandem-bench", "tandem-bench binary")
	fl.Int64Var(&lunSize, "lun-size-mib", 1024, "size of every peer's preallocated file LUN, MiB")
	fl.IntVar(&o.Reps, "reps", 3, "interleaved repetitions")
	fl.DurationVar(&o.Stall, "stall", 10*time.Second, "a run without progress this long counts as stalled; the peer is restarted")
	fl.DurationVar(&o.Duration, "duration", 4*time.Second, "run time of each tandem-bench pattern")
	fl.StringVar(&only, "only", "", "run only the patterns whose name contains this")
	fl.StringVar(&out, "out", "", "also write the table to this file")
	return cmd
}

// machine describes the host for the table's footnote.
func machine() string {
	osName := "Linux"
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			load = ", load average " + f[0] + " at the start"
		}
	}
	return fmt.Sprintf("%d cores, %s%s (client and target share the cores)", runtime.NumCPU(), osName, load)
}
