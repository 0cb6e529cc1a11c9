// Command tasvm is `make e2e-vm-tas`, the VM test of aborted tasks (issue
// 11): two qemu guests (package e2e/vm) log in to one tandem-target LUN
// with the real kernel initiator. A registers and reserves (WRITE
// EXCLUSIVE - REGISTRANTS ONLY, as the fence does) and writes 1 MiB with
// O_DIRECT from several writers at once; B, registered too, sends
// PERSISTENT RESERVE OUT PREEMPT AND ABORT against A's key while A's
// writes are in flight (e2e/cmd/guesttas). Then every write of A must have
// completed within 1 s of the preempt (package e2e/vmtas judges the
// host-stamped events), A's kernel log must show no abort or reset, and
// B's next READ KEYS, READ RESERVATION and REGISTER must succeed first
// time.
//
// The negative control runs the same against a target started with the
// test-only TANDEM_TEST_NO_TAS=1 (aborted tasks end without a response,
// the bug of issue 11) and must see the run fail: a write of A still
// without a response 3 s after the preempt. With A's SCSI command timeout
// lowered to -nc-timeout it then waits for A's error handler to step in
// (its lines in A's kernel log) and for B's next PR command to meet the
// unit attention, and reports both.
//
// It skips (exit 0) only when not root or without /dev/net/tun.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/lab"
	"github.com/tandem-ha/tandem/e2e/internal/vmcmd"
	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/e2e/vmtas"
)

const (
	targetIQN = "iqn.2026-11.io.tandem:tasvm"
	keyA      = 0x7a6e00a1
	keyB      = 0x7a6e00b2
	lunSize   = 256 << 20
	// noTASEnv is the target's test-only switch (target/scsi).
	noTASEnv = "TANDEM_TEST_NO_TAS"
	// guestMiB keeps two TCG guests small on a 2-core machine.
	guestMiB = 160
	// mark is written to the guests' /dev/kmsg before the preempt: only
	// kernel log lines after it are judged.
	mark = "tasvm-mark-before-preempt"
)

type flags struct {
	vmcmd.Flags
	only                             string
	depth                            int
	bound, window, ncTimeout, ncWait time.Duration
}

func main() {
	var f flags
	f.Register(flag.CommandLine, netip.MustParsePrefix("10.213.9.0/24"), 5*time.Minute)
	flag.StringVar(&f.only, "only", "", `run only "tas" (the test) or "no-tas" (the negative control); default both`)
	flag.IntVar(&f.depth, "depth", 8, "A's writers, one 1 MiB write in flight each (more writers, more tasks in the target when the preempt lands: with 4 the negative control saw no hang in 1 of 2 runs)")
	flag.DurationVar(&f.bound, "bound", time.Second, "every write of A must complete this soon after the preempt")
	flag.DurationVar(&f.window, "window", 3*time.Second, "how long after the preempt the writes are watched")
	flag.DurationVar(&f.ncTimeout, "nc-timeout", 5*time.Second, "A's SCSI command timeout in the negative control (kernel default 30s), so its error handler shows within bounds")
	flag.DurationVar(&f.ncWait, "nc-wait", 45*time.Second, "how long the negative control waits for A's error handler; 0 skips that part")
	flag.Parse()
	if why := vmcmd.Unsupported(); why != "" {
		fmt.Println("SKIP e2e-vm-tas:", why)
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
	defer cancel()
	err := run(ctx, f)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL e2e-vm-tas:", err)
		os.Exit(1)
	}
	fmt.Printf("e2e-vm-tas: PASS in %s\n", time.Since(start).Round(time.Millisecond))
}

func run(ctx context.Context, f flags) error {
	env, err := f.Setup(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	img, err := vm.BuildImage(ctx, vm.ImageOptions{
		CacheDir:   env.CacheDir,
		GoBinaries: []vm.GoBinary{{Package: "github.com/tandem-ha/tandem/e2e/cmd/guesttas", Name: "guesttas"}},
		Logger:     env.Log,
	})
	if err != nil {
		return err
	}
	fmt.Printf("guest image %s (cached: %v, kernel %s) in %s\n", filepath.Base(img.Initrd), img.Reused, img.KernelVersion, time.Since(t0).Round(time.Millisecond))
	switch f.only {
	case "tas":
		return scenario(ctx, f, env, img, false)
	case "no-tas":
		return scenario(ctx, f, env, img, true)
	case "":
		if err := scenario(ctx, f, env, img, false); err != nil {
			return err
		}
		return scenario(ctx, f, env, img, true)
	}
	return fmt.Errorf("-only %q: want tas, no-tas or nothing", f.only)
}

// scenario runs one lab: the test (noTAS false) or its negative control.
func scenario(ctx context.Context, f flags, env vmcmd.Env, img *vm.Image, noTAS bool) (err error) {
	name := "test (target with TAS=1)"
	if noTAS {
		name = "negative control (target with " + noTASEnv + "=1)"
	}
	fmt.Println("==", name)
	began := time.Now()
	step := func(what string, since time.Time) {
		fmt.Printf("  %-44s %8s\n", what, time.Since(since).Round(time.Millisecond))
	}
	dir, done, err := f.RunDir("tdmtas")
	if err != nil {
		return err
	}
	defer func() { done(err) }()
	s := time.Now()
	l, err := vm.NewLab(ctx, vm.LabOptions{Dir: dir, Subnet: env.Subnet, Image: img, Accel: f.Accel, HandleSignals: true, Logger: env.Log})
	if err != nil {
		return err
	}
	defer l.Close()
	tgt := vmcmd.Target{Bin: env.TargetBin, Dir: dir, IQN: targetIQN, LUNSize: lunSize}
	if noTAS {
		tgt.Env = []string{noTASEnv + "=1"}
	}
	portal, err := vmcmd.StartTarget(ctx, l, tgt)
	if err != nil {
		return err
	}
	step("namespace, bridge, tandem-target", s)

	s = time.Now()
	var ga, gb *vm.VM
	// One after the other: AddGuest numbers guests as they finish booting.
	if ga, err = l.AddGuest(ctx, "tas-a", vm.GuestOptions{IQN: targetIQN + "-a", MemoryMiB: guestMiB, EventPort: true}); err != nil {
		return err
	}
	if gb, err = l.AddGuest(ctx, "tas-b", vm.GuestOptions{IQN: targetIQN + "-b", MemoryMiB: guestMiB, EventPort: true}); err != nil {
		return err
	}
	step("boot guests A and B ("+f.Accel+")", s)
	diag := func(err error) error {
		return fmt.Errorf("%w\n--- A:\n%s\n--- B:\n%s\n--- target:\n%s", err, ga.Diagnostics(), gb.Diagnostics(), lab.Tail(tgt.LogPath(), 20))
	}
	rec := &recorder{}
	for _, g := range []*vm.VM{ga, gb} {
		c, err := g.DialEvents(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		go rec.read(g.Name(), c, env.Log)
	}

	s = time.Now()
	devA, err := guestUp(ctx, ga, portal, keyA)
	if err != nil {
		return diag(fmt.Errorf("guest A up: %w", err))
	}
	devB, err := guestUp(ctx, gb, portal, keyB)
	if err != nil {
		return diag(fmt.Errorf("guest B up: %w", err))
	}
	if _, err := guest(ctx, ga, "reserve", "-dev", devA, "-key", hex(keyA)); err != nil {
		return diag(fmt.Errorf("guest A reserve: %w", err))
	}
	step("A and B log in and register, A reserves", s)

	// Error recovery logging (SCSI_LOG_ERROR_RECOVERY, the lowest three
	// bits) and libiscsi's error handler debug lines: an abort or reset
	// then shows in the kernel log by name.
	prep := "echo 7 > /proc/sys/dev/scsi/logging_level; echo 1 > /sys/module/libiscsi/parameters/debug_libiscsi_eh; echo " + mark + " > /dev/kmsg"
	if noTAS && f.ncTimeout > 0 {
		prep += fmt.Sprintf("; echo %d > /sys/block/%s/device/timeout", int(f.ncTimeout.Seconds()), filepath.Base(devA))
	}
	for _, g := range []*vm.VM{ga, gb} {
		if _, err := g.Run(ctx, "sh", "-c", prep); err != nil {
			return diag(fmt.Errorf("prepare kernel log: %w", err))
		}
	}

	// A writes until its first error.
	type result struct {
		r   vm.Response
		err error
	}
	writes := make(chan result, 1)
	go func() {
		r, err := ga.Exec(ctx, vm.Request{Argv: []string{"/bin/guesttas", "write", "-dev", devA, "-depth", strconv.Itoa(f.depth), "-max", "90s"}, Timeout: 2 * time.Minute})
		writes <- result{r, err}
	}()
	s = time.Now()
	if err := rec.waitFor(ctx, 30*time.Second, func(ev []vmtas.Event) bool { return okWrites(ev) >= 2*f.depth }); err != nil {
		return diag(fmt.Errorf("A's writes did not get going: %w", err))
	}
	step(fmt.Sprintf("A writes (%d ok so far)", okWrites(rec.snapshot())), s)

	s = time.Now()
	pr, err := gb.Exec(ctx, vm.Request{Argv: []string{"/bin/guesttas", "preempt", "-dev", devB, "-key", hex(keyB), "-victim", hex(keyA)}, Timeout: time.Minute})
	if err != nil {
		return diag(err)
	}
	show("B", pr)
	// Watch until every writer stopped or the window closed; the judge
	// decides from the events, not from this wait.
	ev := rec.snapshot()
	var preemptAt time.Time
	for _, e := range ev {
		if e.Kind == vmtas.KindPreemptSent {
			preemptAt = e.At
		}
	}
	if !preemptAt.IsZero() {
		left := f.window - time.Since(preemptAt)
		_ = rec.waitFor(ctx, max(left, 0), func(ev []vmtas.Event) bool { return exits(ev) >= f.depth })
	}
	now := time.Now()
	rep := vmtas.Judge(rec.snapshot(), now, vmtas.Criteria{Bound: f.bound, MinInFlight: 2})
	step("B preempts and aborts; A's writes watched", s)
	printReport(rep, now)

	if noTAS {
		if rep.OK() {
			return diag(errors.New("negative control: the run passed against a target that drops aborted tasks; the test cannot fail"))
		}
		hung := false
		for _, v := range rep.Violations {
			hung = hung || strings.Contains(v, "got no response")
		}
		if !hung {
			return diag(fmt.Errorf("negative control failed, but not with a hung write: %s", strings.Join(rep.Violations, "; ")))
		}
		fmt.Println("  negative control: the judge reports the hang, as it must")
		if f.ncWait > 0 {
			negativeAftermath(ctx, f, ga, gb, devB)
		}
		step("negative control", began)
		return nil
	}

	var w result
	select {
	case w = <-writes:
	case <-time.After(10 * time.Second):
		return diag(errors.New("A's writer did not exit 10s after its writers stopped"))
	}
	if w.err != nil {
		return diag(w.err)
	}
	show("A", w.r)
	var problems []string
	problems = append(problems, rep.Violations...)
	for _, g := range []*vm.VM{ga, gb} {
		lines, err := escalations(ctx, g)
		if err != nil {
			return diag(err)
		}
		fmt.Printf("  %s kernel log after the mark: %d escalation lines\n", g.Name(), len(lines))
		for _, l := range lines {
			fmt.Println("    ", l)
			problems = append(problems, g.Name()+" kernel log: "+l)
		}
		if g == ga {
			if out, err := g.Run(ctx, "sh", "-c", "dmesg | sed -n '/"+mark+"/,$p' | tail -n 12"); err == nil {
				fmt.Println("  A's kernel log after the mark (last 12 lines):")
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					fmt.Println("    ", l)
				}
			}
		}
	}
	r, err := gb.Exec(ctx, vm.Request{Argv: []string{"/bin/guesttas", "prcheck", "-dev", devB, "-key", hex(keyB)}, Timeout: time.Minute})
	if err != nil {
		return diag(err)
	}
	show("B", r)
	if err := r.Err([]string{"guesttas", "prcheck"}); err != nil {
		problems = append(problems, "B's next PR commands: "+err.Error())
	}
	if len(problems) > 0 {
		return diag(fmt.Errorf("%d problems:\n  %s", len(problems), strings.Join(problems, "\n  ")))
	}
	step("test", began)
	return nil
}

// negativeAftermath waits for A's error handler (its command timeout was
// lowered) and shows what B's next PR commands meet: what issue 11 saw.
func negativeAftermath(ctx context.Context, f flags, ga, gb *vm.VM, devB string) {
	s := time.Now()
	var lines []string
	for time.Since(s) < f.ncWait && ctx.Err() == nil {
		var err error
		if lines, err = escalations(ctx, ga); err != nil {
			fmt.Println("  negative control: A's kernel log:", err)
			return
		}
		// libiscsi's "return timer reset" only extends a timer: wait for
		// the error handler's own steps.
		if handlerStepped.MatchString(strings.Join(lines, "\n")) {
			break
		}
		time.Sleep(time.Second)
	}
	fmt.Printf("  negative control: A's kernel log %s after the window, %d escalation lines:\n", time.Since(s).Round(time.Second), len(lines))
	for _, l := range lines {
		fmt.Println("    ", l)
	}
	r, err := gb.Exec(ctx, vm.Request{Argv: []string{"/bin/guesttas", "prcheck", "-dev", devB, "-key", hex(keyB)}, Timeout: time.Minute})
	if err != nil {
		fmt.Println("  negative control: B prcheck:", err)
		return
	}
	fmt.Printf("  negative control: B's next PR commands (exit %d):\n", r.Exit)
	show("B", r)
}

// handlerStepped matches libiscsi's error handler lines (with
// debug_libiscsi_eh) for ABORT TASK and LOGICAL UNIT RESET.
var handlerStepped = regexp.MustCompile(`(?i)aborting|abort_|LU Reset|device_reset|target_reset`)

func escalations(ctx context.Context, g *vm.VM) ([]string, error) {
	out, err := g.Run(ctx, "dmesg")
	if err != nil {
		return nil, fmt.Errorf("%s dmesg: %w", g.Name(), err)
	}
	return vmtas.Escalations(vmtas.After(out, mark)), nil
}

func printReport(rep vmtas.Report, now time.Time) {
	fmt.Printf("  preempt took %s; writes of A relative to the preempt being sent:\n", rep.PreemptTook.Round(time.Millisecond))
	for _, set := range []struct {
		name string
		ws   []vmtas.Write
	}{{"in flight", rep.InFlight}, {"after", rep.After}} {
		for _, w := range set.ws {
			done := fmt.Sprintf("NO RESPONSE by %+.3fs", now.Sub(rep.Preempt).Seconds())
			if w.Completed {
				res := w.Err
				if res == "" {
					res = "ok"
				}
				done = fmt.Sprintf("completed %+.3fs  %s", w.Done.Seconds(), res)
			}
			fmt.Printf("    %-9s w=%d n=%-3d started %+.3fs  %s\n", set.name, w.Writer, w.Seq, w.Start.Seconds(), done)
		}
	}
	for _, v := range rep.Violations {
		fmt.Println("  VIOLATION:", v)
	}
}

func show(who string, r vm.Response) {
	for _, l := range strings.Split(strings.TrimSpace(string(r.Stdout)+string(r.Stderr)), "\n") {
		if l != "" {
			fmt.Printf("    %s: %s\n", who, l)
		}
	}
}

func hex(k uint64) string { return strconv.FormatUint(k, 16) }

func guest(ctx context.Context, g *vm.VM, args ...string) (vm.Response, error) {
	argv := append([]string{"/bin/guesttas"}, args...)
	r, err := g.Exec(ctx, vm.Request{Argv: argv, Timeout: 2 * time.Minute})
	if err == nil {
		err = r.Err(argv[:2])
	}
	return r, err
}

func guestUp(ctx context.Context, g *vm.VM, portal string, key uint64) (string, error) {
	r, err := guest(ctx, g, "up", "-portal", portal, "-target", targetIQN, "-key", hex(key))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(r.Stdout), "\n") {
		if d, ok := strings.CutPrefix(l, "device "); ok {
			return strings.TrimSpace(d), nil
		}
	}
	return "", fmt.Errorf("no device in %q", r.Stdout)
}

func okWrites(ev []vmtas.Event) int {
	n := 0
	for _, e := range ev {
		if e.Kind == vmtas.KindWriteDone && e.Err == "" {
			n++
		}
	}
	return n
}

func exits(ev []vmtas.Event) int {
	n := 0
	for _, e := range ev {
		if e.Kind == vmtas.KindWriterExit {
			n++
		}
	}
	return n
}

// recorder stamps event lines from the guests' event ports on arrival.
type recorder struct {
	mu     sync.Mutex
	events []vmtas.Event
	notify chan struct{}
}

func (r *recorder) read(guest string, c net.Conn, log *slog.Logger) {
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		at := time.Now()
		e, err := vmtas.ParseEvent(sc.Text())
		if err != nil {
			log.Warn("guest event port", "guest", guest, "line", sc.Text(), "err", err)
			continue
		}
		e.At = at
		r.mu.Lock()
		r.events = append(r.events, e)
		if r.notify != nil {
			close(r.notify)
			r.notify = nil
		}
		r.mu.Unlock()
	}
}

func (r *recorder) snapshot() []vmtas.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]vmtas.Event(nil), r.events...)
}

// waitFor waits up to d until cond holds over the events so far.
func (r *recorder) waitFor(ctx context.Context, d time.Duration, cond func([]vmtas.Event) bool) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if cond(r.events) {
			r.mu.Unlock()
			return nil
		}
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("not within %s", d)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
