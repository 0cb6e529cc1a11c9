// Command tandem-lab is the seed's whole deployment in qemu guests (package
// e2e/vmlab): storage, MQMaster and MQSlave inside a lab network
// namespace, a client counting persistent messages through the VIP, faults,
// and the checker's verdict.
//
//	tandem-lab run [-scenarios power-off,heartbeat-cut] [-report DIR]
//	tandem-lab demo        the power-off of MQMaster, step by step
//	tandem-lab bench -n 10 power-off N times: median and worst recovery
//	tandem-lab chaos -duration 10m -seed N   random scenarios until the
//	                       duration is spent (seed printed; 0: from the clock)
//	tandem-lab negative    the checker's negative control: node-links-cut
//	                       with the fence off must be judged a dual mount
//	tandem-lab up          the lab in the foreground until Ctrl-C or down
//	tandem-lab shell NODE [CMD...]   a command (or stdin's lines) in a guest
//	tandem-lab down        tears the running lab down
//
// It needs root (network namespaces, taps) and skips (exit 0) without it
// or without /dev/net/tun, saying why.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/e2e/vmlab"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tandem-lab run|demo|bench [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	scen := fs.String("scenarios", "power-off,heartbeat-cut", "scenarios to run, comma-separated, or all: "+strings.Join(vmlab.ScenarioNames, ", "))
	duration := fs.Duration("duration", 10*time.Minute, "chaos: start scenarios until this much time is spent")
	seed := fs.Uint64("seed", 0, "chaos: the schedule's seed (0: from the clock)")
	noFence := fs.Bool("nofence", false, "leave the fence out of the group (the negative control)")
	report := fs.String("report", "", "report folder (default build/lab/report-TIME)")
	cache := fs.String("cache-dir", "", "image cache (default build/vm in the workspace)")
	accel := fs.String("accel", "tcg", "qemu accelerator")
	n := fs.Int("n", 10, "bench: power-off runs")
	verbose := fs.Bool("v", false, "show every agent line as it arrives")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on the whole run")
	_ = fs.Parse(os.Args[2:])
	if os.Geteuid() != 0 {
		fmt.Println("SKIP tandem-lab: needs root (network namespaces, bridges, taps)")
		return
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		fmt.Println("SKIP tandem-lab: /dev/net/tun is missing (no tap devices for the guests)")
		return
	}
	if cmd == "chaos" && *timeout < *duration+15*time.Minute {
		// the last scenario starts before the duration ends and runs on
		*timeout = *duration + 15*time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *cache == "" {
		var err error
		if *cache, err = vm.DefaultCacheDir(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	switch cmd {
	case "shell":
		if fs.NArg() < 1 {
			fmt.Fprintln(os.Stderr, "usage: tandem-lab shell NODE [CMD...]")
			os.Exit(2)
		}
		_ = shell(socketPath(*cache), fs.Arg(0), fs.Args()[1:], os.Stdin)
		return
	case "down":
		rep, err := call(socketPath(*cache), request{Down: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(rep.Out)
		return
	case "up":
		if err := runUp(ctx, *cache, *accel); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL tandem-lab up:", err)
			os.Exit(1)
		}
		return
	}
	var list []vmlab.Scenario
	switch cmd {
	case "demo":
		list = []vmlab.Scenario{vmlab.Scenarios["power-off"]}
		*verbose = true
	case "bench":
		for range *n {
			list = append(list, vmlab.Scenarios["power-off"])
		}
	case "chaos":
		if *seed == 0 {
			*seed = uint64(time.Now().UnixNano())
		}
		fmt.Printf("tandem-lab chaos: seed %d, duration %s (replay: -seed %d)\n", *seed, *duration, *seed)
		chaos = vmlab.Chaos(*seed)
		chaosEnd = time.Now().Add(*duration)
	case "negative":
		list = []vmlab.Scenario{vmlab.Scenarios["node-links-cut"]}
		*noFence = true
	case "run":
		if *scen == "all" {
			*scen = strings.Join(vmlab.ScenarioNames, ",")
		}
		for _, s := range strings.Split(*scen, ",") {
			sc, ok := vmlab.Scenarios[strings.TrimSpace(s)]
			if !ok {
				fmt.Fprintf(os.Stderr, "unknown scenario %q: use all or %s\n", s, strings.Join(vmlab.ScenarioNames, ", "))
				os.Exit(2)
			}
			list = append(list, sc)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q: use run, demo, bench or negative\n", cmd)
		os.Exit(2)
	}
	if err := run(ctx, cmd, list, *report, *cache, *accel, *verbose, *noFence); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL tandem-lab:", err)
		os.Exit(1)
	}
}

func runUp(ctx context.Context, cache, accel string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	img, err := vm.BuildImage(ctx, vmlab.ImageOptions(cache, "", log))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tdml")
	if err != nil {
		return err
	}
	fmt.Println("logs in", dir)
	l, err := vmlab.Up(ctx, vmlab.Options{Dir: dir, Image: img, Accel: accel, Out: os.Stdout, HandleSignals: true, Logger: log})
	if err != nil {
		return err
	}
	defer l.Close()
	return up(ctx, l, socketPath(cache))
}

// chaos, when set, draws the scenarios until chaosEnd (tandem-lab chaos).
var (
	chaos    func() vmlab.Scenario
	chaosEnd time.Time
)

func run(ctx context.Context, cmd string, list []vmlab.Scenario, report, cache, accel string, verbose, noFence bool) error {
	start := time.Now()
	var err error
	if cache == "" {
		if cache, err = vm.DefaultCacheDir(ctx); err != nil {
			return err
		}
	}
	if report == "" {
		report = filepath.Join(filepath.Dir(cache), "lab", "report-"+start.Format("20060102-150405"))
	}
	if err := os.MkdirAll(report, 0o755); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Printf("tandem-lab %s: building the guest image\n", cmd)
	img, err := vm.BuildImage(ctx, vmlab.ImageOptions(cache, "", log))
	if err != nil {
		return err
	}
	fmt.Printf("  image %s (cached: %v, kernel %s) in %s\n", filepath.Base(img.Initrd), img.Reused, img.KernelVersion, time.Since(start).Round(time.Millisecond))
	// Other labs building images prune the shared cache down to a few
	// images: a hard link of ours (a name the pruning does not match)
	// keeps it for the scenarios still to boot.
	pinned := filepath.Join(cache, fmt.Sprintf("lab-%d.initrd", os.Getpid()))
	if err := os.Link(img.Initrd, pinned); err == nil {
		img.Initrd = pinned
		defer os.Remove(pinned)
	}
	var outs []vmlab.Outcome
	failed := 0
	for k := 0; ; k++ {
		var sc vmlab.Scenario
		total := fmt.Sprint(len(list))
		switch {
		case chaos != nil && time.Now().After(chaosEnd):
		case chaos != nil:
			sc, total = chaos(), "chaos"
		case k < len(list):
			sc = list[k]
		}
		if sc.Name == "" {
			break
		}
		dir, err := os.MkdirTemp("", "tdml")
		if err != nil {
			return err
		}
		var out io.Writer = io.Discard
		if verbose {
			out = os.Stdout
		}
		fmt.Printf("== scenario %s (%d/%s), logs in %s\n", sc.Name, k+1, total, dir)
		t0 := time.Now()
		o, err := vmlab.Run(ctx, vmlab.RunOptions{Lab: vmlab.Options{Dir: dir, Image: img, Accel: accel, Out: out, HandleSignals: true, Logger: log, NoFence: noFence}}, sc)
		if err != nil {
			// The lab itself failed (a guest did not boot): a failed row,
			// and the next scenario still runs.
			o.Scenario, o.Passed = sc.Name, false
			o.Problems = append(o.Problems, err.Error())
		}
		outs = append(outs, o)
		verdict := "PASS"
		if !o.Passed {
			verdict, failed = "FAIL", failed+1
		}
		fmt.Printf("   %s in %s: recovery %s, acked %d lost %d dup %d; %s\n", verdict, time.Since(t0).Round(time.Millisecond),
			o.Recovery.Round(time.Millisecond), o.Acked, o.Lost, o.Dup, strings.Join(o.Problems, "; "))
		if o.Passed {
			os.RemoveAll(dir)
		} else {
			fmt.Println("   logs kept in", dir)
		}
	}
	path, err := vmlab.WriteReport(report, outs)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(vmlab.Table(outs))
	if cmd == "bench" {
		fmt.Print(vmlab.BenchSummary(outs))
	}
	fmt.Printf("\nreport: %s\ntotal %s\n", path, time.Since(start).Round(time.Millisecond))
	if cmd == "negative" {
		return negative(outs[0])
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios failed", failed, len(outs))
	}
	return nil
}

// negative judges the negative control: without the fence, the split
// brain must be caught as a dual mount; a pass means the checker cannot
// fail.
func negative(o vmlab.Outcome) error {
	for _, p := range o.Problems {
		if strings.HasPrefix(p, "dual mount:") {
			fmt.Println("PASS negative control: the checker reported", p)
			return nil
		}
	}
	return fmt.Errorf("negative control: node-links-cut without the fence was not judged a dual mount (passed: %v; problems: %s)",
		o.Passed, strings.Join(o.Problems, "; "))
}
