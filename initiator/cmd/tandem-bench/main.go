// Command tandem-bench measures an iSCSI LUN through tandem's native
// initiator: 4 KiB random read and write at queue depth 32 and 1 MiB
// sequential read and write at depth 8, printing IOPS and MiB/s.
//
// The write tests overwrite the LUN's data.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/initiator"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

type flags struct {
	target, initiatorName string
	lun                   uint64
	duration              time.Duration
	tests                 []string
	sessions              int
	json                  bool
	chapUser, chapSecret  string
	headerDigest, dataDig bool
	spanMiB               int64
	randDepth, seqDepth   int
	randSize, seqSize     int
}

func newCommand() *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "tandem-bench PORTAL|iscsi://HOST[:PORT]/TARGET/LUN",
		Short: "Benchmark an iSCSI LUN (the write tests destroy its data)",
		Example: "  tandem-bench iscsi://127.0.0.1/iqn.2025-01.io.tandem:disk0/0\n" +
			"  tandem-bench 127.0.0.1:3260 --target iqn.2025-01.io.tandem:disk0 --tests randread,seqread --json",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return run(ctx, args[0], f, cmd)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.target, "target", "", "target IQN (or in the iscsi:// URL)")
	fl.Uint64Var(&f.lun, "lun", 0, "LUN number (or in the iscsi:// URL)")
	fl.StringVar(&f.initiatorName, "initiator-name", "iqn.2025-01.io.tandem:bench", "initiator IQN")
	fl.DurationVar(&f.duration, "duration", 5*time.Second, "run time of each test")
	fl.StringSliceVar(&f.tests, "tests", []string{"randread", "randwrite", "seqread", "seqwrite"}, "tests to run: randread, randwrite, seqread, seqwrite")
	fl.IntVar(&f.sessions, "sessions", 1, "sessions to spread the queue depth over")
	fl.BoolVar(&f.json, "json", false, "print results as JSON")
	fl.StringVar(&f.chapUser, "chap-user", "", "CHAP user name")
	fl.StringVar(&f.chapSecret, "chap-secret", os.Getenv("TANDEM_CHAP_SECRET"), "CHAP secret (default $TANDEM_CHAP_SECRET)")
	fl.BoolVar(&f.headerDigest, "header-digest", false, "offer CRC32C header digests")
	fl.BoolVar(&f.dataDig, "data-digest", false, "offer CRC32C data digests")
	fl.Int64Var(&f.spanMiB, "span", 1024, "MiB of the LUN to touch, from its start (0 = all)")
	fl.IntVar(&f.randDepth, "rand-depth", 32, "queue depth of the random tests")
	fl.IntVar(&f.seqDepth, "seq-depth", 8, "queue depth of the sequential tests")
	fl.IntVar(&f.randSize, "rand-size", 4096, "I/O size of the random tests, bytes")
	fl.IntVar(&f.seqSize, "seq-size", 1<<20, "I/O size of the sequential tests, bytes")
	return cmd
}

func run(ctx context.Context, arg string, f flags, cmd *cobra.Command) error {
	portal, target, lun, err := parseTarget(arg, f.target, f.lun, cmd.Flags().Changed("lun"))
	if err != nil {
		return err
	}
	if f.sessions < 1 {
		return fmt.Errorf("--sessions must be at least 1")
	}
	opts := initiator.Options{
		InitiatorName: f.initiatorName, TargetName: target,
		HeaderDigest: f.headerDigest, DataDigest: f.dataDig,
		QueueDepth: max(f.randDepth, f.seqDepth),
	}
	if f.chapUser != "" {
		opts.CHAP = &initiator.CHAP{User: f.chapUser, Secret: []byte(f.chapSecret)}
	}
	var sessions []*initiator.Session
	defer func() {
		// The bench's ctx may have ended: log out within a bound of its own.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range sessions {
			s.Close(cctx)
		}
	}()
	for range f.sessions {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := initiator.Dial(dctx, portal, opts)
		cancel()
		if err != nil {
			return err
		}
		sessions = append(sessions, s)
	}
	capa, err := sessions[0].ReadCapacity16(ctx, lun)
	if err != nil {
		return fmt.Errorf("read capacity of lun %d: %w", lun, err)
	}
	span := capa.Size()
	if f.spanMiB > 0 && f.spanMiB<<20 < span {
		span = f.spanMiB << 20
	}
	var results []Result
	for _, name := range f.tests {
		spec, err := specFor(name, f)
		if err != nil {
			return err
		}
		if int64(spec.Size) > span || spec.Size%int(capa.BlockSize) != 0 {
			return fmt.Errorf("%s: I/O size %d does not fit the LUN (block size %d, span %d bytes)", name, spec.Size, capa.BlockSize, span)
		}
		r, err := runTest(ctx, sessions, lun, capa.BlockSize, span, spec, f.duration)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, r)
		if !f.json {
			fmt.Fprintln(cmd.OutOrStdout(), r)
		}
	}
	if f.json {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return nil
}

func specFor(name string, f flags) (Spec, error) {
	switch strings.ToLower(name) {
	case "randread":
		return Spec{Name: name, Size: f.randSize, Depth: f.randDepth, Random: true}, nil
	case "randwrite":
		return Spec{Name: name, Size: f.randSize, Depth: f.randDepth, Random: true, Write: true}, nil
	case "seqread":
		return Spec{Name: name, Size: f.seqSize, Depth: f.seqDepth}, nil
	case "seqwrite":
		return Spec{Name: name, Size: f.seqSize, Depth: f.seqDepth, Write: true}, nil
	}
	return Spec{}, fmt.Errorf("unknown test %q; use randread, randwrite, seqread or seqwrite", name)
}
