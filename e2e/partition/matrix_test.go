package partition_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/e2e/partition"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/resource"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // what the agent registers
	"github.com/tandem-ha/tandem/target/audit"
)

var bins struct {
	agent, target, writer string
	err                   error // a build failure fails the matrix, not the pure tests
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

// runMain builds the three binaries, unless PARTITION_AGENT_BIN,
// PARTITION_TARGET_BIN and PARTITION_WRITER_BIN name prebuilt ones (make
// partition-test passes those of ./bin).
func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "partition-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct {
		dst *string
		env string
		pkg string
	}{
		{&bins.agent, "PARTITION_AGENT_BIN", "github.com/tandem-ha/tandem/ha/cmd/tandem-agent"},
		{&bins.target, "PARTITION_TARGET_BIN", "github.com/tandem-ha/tandem/target/cmd/tandem-target"},
		{&bins.writer, "PARTITION_WRITER_BIN", "github.com/tandem-ha/tandem/e2e/cmd/blockwriter"},
	} {
		if p := os.Getenv(b.env); p != "" {
			if *b.dst, err = filepath.Abs(p); err != nil {
				bins.err = err
			}
			continue
		}
		*b.dst = filepath.Join(dir, filepath.Base(b.pkg))
		if out, err := exec.Command("go", "build", "-o", *b.dst, b.pkg).CombinedOutput(); err != nil && bins.err == nil {
			bins.err = fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return m.Run()
}

// Timings: shorter than the defaults (keepalive 200ms, deadtime 1s) so the
// matrix stays well under 5 minutes on two cores; printed with the table.
var timing = partition.Timing{
	Keepalive: 100 * time.Millisecond,
	DeadTime:  600 * time.Millisecond,
	InitDead:  3 * time.Second,
	Monitor:   250 * time.Millisecond, // fence and writer monitor interval
}

const (
	window  = 5 * time.Second        // observation after the fault, before healing
	after   = 2 * time.Second        // observation after healing
	budget  = 6 * time.Second        // the longest a takeover may take
	alpha   = 0                      // the active node at the start of each row
	beta    = 1                      //
	settleT = 500 * time.Millisecond // writing before the fault
)

// Expected outcome of a row.
type expect int

const (
	stay   expect = iota // the group must not move
	move                 // the group must move to beta
	either               // both are safe (depends on the disk heartbeat)
)

func (e expect) String() string { return [...]string{"stay", "move", "either"}[e] }

type row struct {
	name string
	// hb is what Linux-HA heartbeat 3.0 did in the same failure
	// (/work/shared/notes/heartbeat-and-peers.md), or "-" when not measured.
	hb     string
	expect expect
	// noDisk runs the row without the arbiter disk heartbeat, so the
	// fence alone must keep a single writer.
	noDisk bool
	// window overrides the observation window (and the takeover budget
	// with it) where detection takes monitor timeouts, not deadtime.
	window time.Duration
	// volatile puts the data LUN on a volatile cache (the rows that
	// restart the target: a SIGKILL loses what was not flushed);
	// plainEvery sends every plainEvery'th write without FUA.
	volatile   bool
	plainEvery int
	// fault injects the failure at t0; heal undoes it after the window.
	fault, heal func(r *rowRun) error
}

type rowRun struct {
	t   *testing.T
	l   *partition.Lab
	t0  time.Time
	bg  sync.WaitGroup
	err error
	mu  sync.Mutex
	// notes for the report
	notes []string
	// cutMode is the power cut's: "reorder" (a random part of the
	// unflushed writes persists), or "drop" for the broken-FUA control,
	// so that its acknowledged FUA writes are lost whatever the seed.
	cutMode string
}

func (r *rowRun) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *rowRun) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// restartTarget starts the target again after down (in the background).
func (r *rowRun) restartTarget(down time.Duration) {
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		time.Sleep(down)
		if err := r.l.StartTarget(); err != nil {
			r.fail(err)
		}
	}()
}

// seed is the power cut's choice of surviving writes: PARTITION_SEED
// replays a printed one.
func seed() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("PARTITION_SEED"), 10, 64); err == nil {
		return s
	}
	return uint64(time.Now().UnixNano())
}

var rows = []row{
	{
		name: "dedicated link cut", hb: "dual active", expect: stay,
		fault: func(r *rowRun) error { return r.l.CutDedicated(true) },
		heal:  func(r *rowRun) error { return r.l.CutDedicated(false) },
	},
	{
		name: "public link cut (active)", hb: "-", expect: stay,
		fault: func(r *rowRun) error { return r.l.CutPublic(alpha, true) },
		heal:  func(r *rowRun) error { return r.l.CutPublic(alpha, false) },
	},
	{
		// Both heartbeat paths between the nodes are cut (dedicated link
		// down, heartbeats dropped on the public network both ways) while
		// clients and the storage still reach both nodes: the disk
		// heartbeat shows alpha alive, so nothing moves.
		name: "both node links cut, storage up", hb: "dual active", expect: stay,
		fault: cutBoth, heal: healBoth,
	},
	{
		// The same without the disk heartbeat: beta takes over, and the
		// fence must shut alpha's writer out.
		name: "both node links cut, no disk hb", hb: "dual active", expect: move, noDisk: true,
		fault: cutBoth, heal: healBoth,
	},
	{
		// Detected by the disk heartbeat: alpha's arbiter I/O fails for
		// deadtime while beta says it reaches the arbiter, so alpha hands
		// the group over (~0.6 s) and stops its writer, whose I/O hangs
		// (writer.sh: SIGTERM, SIGKILL after 2 s); beta fences and starts.
		name: "active loses the storage", hb: "-", expect: move,
		fault: func(r *rowRun) error { return r.l.CutStorage(alpha, true) },
		heal:  func(r *rowRun) error { return r.l.CutStorage(alpha, false) },
	},
	{
		// The agent and its guard die; the writer is left running, so only
		// fencing can stop it.
		name: "kill -9 active agent, app writes", hb: "dual active", expect: move,
		fault: func(r *rowRun) error { r.l.KillAgent(alpha); return nil },
		heal:  func(r *rowRun) error { return r.l.StartAgent(alpha) },
	},
	{
		name: "power-off of the active node", hb: "moved in 2.2-5.8 s, unfenced", expect: move,
		fault: func(r *rowRun) error { return r.l.PowerOff(alpha) },
		heal:  func(r *rowRun) error { return r.l.PowerOn(alpha) },
	},
	{
		// kill -9 of alpha's agent (its writer keeps going); the target
		// crashes while beta is seen mid-takeover (state starting, before
		// and after the kill), and comes back 1 s later: beta's fence must
		// wait for it and complete, and alpha's writer, logged in again,
		// must lose. On a volatile cache: the crash loses what was not
		// flushed.
		name: "target restart during takeover", hb: "-", expect: move, volatile: true,
		fault: func(r *rowRun) error {
			r.l.KillAgent(alpha)
			r.bg.Add(1)
			go func() {
				defer r.bg.Done()
				if err := killMidTakeover(r); err != nil {
					r.fail(err)
					return
				}
				r.restartTarget(time.Second)
			}()
			return nil
		},
		heal: func(r *rowRun) error { return r.l.StartAgent(alpha) },
	},
	{
		// The data LUN's volatile cache loses its unflushed writes (a
		// random part persists, reordered) while alpha writes, half of
		// them without FUA; 500 ms later the target is killed (the cache
		// lost again) and restarted after 1 s. Every acknowledged FUA
		// write must survive; the group may stay or move.
		name: "storage power cut during writes", hb: "-", expect: either, volatile: true, plainEvery: 2,
		fault: powerCut,
		heal:  func(r *rowRun) error { return nil },
	},
	{
		// alpha's heartbeats to beta are dropped; alpha still hears beta,
		// and beta sees alpha on the disk: nothing moves.
		name: "one-way cut (alpha -> beta dropped)", hb: "-", expect: stay,
		fault: func(r *rowRun) error { return r.l.DropHeartbeats(alpha, true, false) },
		heal:  func(r *rowRun) error { return r.l.DropHeartbeats(alpha, false, false) },
	},
	{
		name: "one-way cut, no disk hb", hb: "-", expect: move, noDisk: true,
		fault: func(r *rowRun) error { return r.l.DropHeartbeats(alpha, true, false) },
		heal:  func(r *rowRun) error { return r.l.DropHeartbeats(alpha, false, false) },
	},
}

// killMidTakeover polls beta's state until it is starting (taking the
// group over), kills the target, and checks beta is still starting: so
// the target died mid-takeover, not before or after it.
func killMidTakeover(r *rowRun) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	last := ""
	for last != "starting" {
		if ctx.Err() != nil {
			return fmt.Errorf("beta was never seen mid-takeover (state starting) within 4s of the fault; last state %q", last)
		}
		last = r.l.State(ctx, beta)
		time.Sleep(2 * time.Millisecond)
	}
	r.l.KillTarget()
	at := time.Since(r.t0)
	after := r.l.State(context.Background(), beta)
	if after != "starting" {
		return fmt.Errorf("beta was %q right after the target was killed: the takeover was no longer in progress when the target died", after)
	}
	r.note("target killed %v after the fault, beta starting before and after the kill", at.Round(time.Millisecond))
	return nil
}

func powerCut(r *rowRun) error {
	sd := seed()
	rep, err := r.l.PowerCut(r.cutMode, sd)
	if err != nil {
		return err
	}
	r.note("power cut (%s, seed %d): %d unflushed writes, %d persisted", r.cutMode, sd, rep.Pending, rep.Persisted)
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		time.Sleep(500 * time.Millisecond)
		r.l.KillTarget()
		r.restartTarget(time.Second)
	}()
	return nil
}

func cutBoth(r *rowRun) error {
	if err := r.l.CutDedicated(true); err != nil {
		return err
	}
	return r.l.DropHeartbeats(alpha, true, true)
}

func healBoth(r *rowRun) error {
	if err := r.l.DropHeartbeats(alpha, false, false); err != nil {
		return err
	}
	return r.l.CutDedicated(false)
}

// result is one row of the printed matrix.
type result struct {
	name, hb, expect, outcome, service, writers, conflict, notes string
	acked                                                        int
	budget                                                       time.Duration
	verdict                                                      partition.Verdict
	// service lists what went wrong with the service (moved when it must
	// stay, too late...); the verdict judges the data.
	serviceProblems []string
	ok              bool
}

// setup is how a row's lab is built: the matrix runs fenced with the
// disk heartbeat; the negative controls switch protections off.
type setup struct {
	fenced, brokenFUA bool
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("partition: skipped, needs root to create network namespaces (run as root: make partition-test)")
	}
	require.NoError(t, bins.err)
	require.True(t, slices.Contains(resource.Types(), fence.Type), "the fence resource is not registered")
}

func TestPartitionMatrix(t *testing.T) {
	needRoot(t)
	var results []result
	for _, rw := range rows {
		t.Run(rw.name, func(t *testing.T) {
			res := runRow(t, rw, setup{fenced: true}, func(t *testing.T, res result) {
				for _, p := range res.serviceProblems {
					t.Error(p)
				}
				for _, p := range res.verdict.Problems {
					t.Errorf("checker: %s", p)
				}
				assert.True(t, res.verdict.OK(), "the checker found a violation (see above)")
			})
			res.ok = !t.Failed()
			results = append(results, res)
		})
	}
	printMatrix("[fence (scsi-pr, native session), writer, vip], disk heartbeat on the arbiter LUN", results)
}

// TestPartitionUnfencedControl is the witness's negative control: with
// neither the fence resource nor the disk heartbeat, cutting both links
// between the nodes makes two writers, and the checker must say so.
func TestPartitionUnfencedControl(t *testing.T) {
	needRoot(t)
	rw := rowNamed(t, "both node links cut, no disk hb")
	rw.name += " (UNFENCED, no disk hb)"
	res := runRow(t, rw, setup{}, func(t *testing.T, res result) {
		assert.Positive(t, res.verdict.Dual, "the checker found no dual writes with fencing off: it cannot see a split brain")
	})
	res.ok = !t.Failed()
	printMatrix("[writer, vip] without fence or disk heartbeat: NEGATIVE CONTROL (verdict: the control's)", []result{res})
	t.Logf("negative control: the checker reported %d dual writes (alpha %+v, beta %+v); first: %v",
		res.verdict.Dual, *res.verdict.Nodes["alpha"], counts(res.verdict, "beta"), firstN(res.verdict.Problems, 3))
}

// TestPartitionBrokenFUAControl is the durability checker's negative
// control: with FUA and SYNCHRONIZE CACHE not flushing the volatile
// cache (TANDEM_TEST_BROKEN_FUA=1), the power cut row must lose
// acknowledged blocks, and the checker must say so.
func TestPartitionBrokenFUAControl(t *testing.T) {
	needRoot(t)
	rw := rowNamed(t, "storage power cut during writes")
	rw.name += " (BROKEN FUA)"
	res := runRow(t, rw, setup{fenced: true, brokenFUA: true}, func(t *testing.T, res result) {
		assert.Positive(t, res.verdict.Lost, "the checker found no lost block although FUA did not flush: it cannot see lost writes")
	})
	res.ok = !t.Failed()
	printMatrix("[fence, writer, vip] with TANDEM_TEST_BROKEN_FUA=1: NEGATIVE CONTROL (verdict: the control's)", []result{res})
	t.Logf("negative control: the checker reported %d lost acknowledged blocks; first: %v", res.verdict.Lost, firstN(res.verdict.Problems, 3))
}

func rowNamed(t *testing.T, name string) row {
	i := slices.IndexFunc(rows, func(r row) bool { return r.name == name })
	require.GreaterOrEqual(t, i, 0, "no row %q", name)
	return rows[i]
}

func counts(v partition.Verdict, node string) partition.NodeCounts {
	if c := v.Nodes[node]; c != nil {
		return *c
	}
	return partition.NodeCounts{}
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

// runRow runs one row and hands its result to check before the lab is
// torn down, so that a failure dumps the logs.
func runRow(t *testing.T, rw row, su setup, check func(*testing.T, result)) result {
	res := result{name: rw.name, hb: rw.hb, expect: rw.expect.String()}
	// Not t.TempDir: the row names hold commas, which the agents' YAML
	// flow mappings would split.
	dir, err := os.MkdirTemp("", "partition-row-")
	require.NoError(t, err)
	defer func() {
		if t.Failed() && os.Getenv("PARTITION_KEEP") != "" {
			t.Logf("lab directory kept: %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	l, err := partition.New(partition.Options{
		AgentBin: bins.agent, TargetBin: bins.target, WriterBin: bins.writer, Dir: dir,
		Timing: timing, Fence: su.fenced, WriterAPTPL: su.fenced,
		DiskHB:   !rw.noDisk && su.fenced,
		Volatile: rw.volatile, PlainEvery: rw.plainEvery, BrokenFUA: su.brokenFUA,
	})
	require.NoError(t, err)
	r := &rowRun{t: t, l: l, cutMode: "reorder"}
	if su.brokenFUA {
		r.cutMode = "drop"
	}
	defer func() {
		r.bg.Wait()
		if t.Failed() {
			for i := range 2 {
				t.Logf("=== %s agent log (tail)\n%s", partition.Nodes[i], tail(l.AgentLog(i), 40))
				t.Logf("=== %s writer output (tail)\n%s", partition.Nodes[i], tail(l.WriterLog(i), 10))
			}
			t.Logf("=== target log (tail)\n%s", tail(l.TargetLog(), 20))
		}
		l.Close()
	}()
	require.NoError(t, l.StartTarget())
	require.NoError(t, l.StartAgent(alpha))
	require.NoError(t, l.StartAgent(beta))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, l.WaitState(ctx, alpha, "active"))
	require.NoError(t, l.WaitState(ctx, beta, "standby"))
	require.Eventually(t, func() bool {
		a := analyze(t, l)
		return !a.LastAckOf(partition.Nodes[alpha]).IsZero()
	}, 10*time.Second, 50*time.Millisecond, "alpha's writer never had a write accepted")
	time.Sleep(settleT)

	// Fault, then watch the VIP from the client until the window ends.
	win, budget := window, budget
	if rw.window > 0 {
		win, budget = rw.window, rw.window-time.Second
	}
	res.budget = budget
	r.t0 = time.Now()
	require.NoError(t, rw.fault(r))
	var vipBeta time.Time
	for time.Since(r.t0) < win {
		if got, err := l.Probe(50 * time.Millisecond); err == nil && got == partition.Nodes[beta] && vipBeta.IsZero() {
			vipBeta = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.bg.Wait()
	require.NoError(t, r.err)
	tHeal := time.Now()
	require.NoError(t, rw.heal(r))
	time.Sleep(after)
	// Who serves at the end: the VIP's answer and the writers of the last second.
	end := time.Now()
	vipEnd, _ := l.Probe(300 * time.Millisecond)
	states := [2]string{l.State(ctx, alpha), l.State(ctx, beta)}

	// The checker's sources: stop every writer, read the range back,
	// stop the target so that its audit is whole, read the ack logs.
	require.NoError(t, l.Quiesce())
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	disk, err := l.ReadRange(rctx)
	rcancel()
	require.NoError(t, err)
	require.NoError(t, l.StopTarget())
	recs, torn, err := audit.ReadFile(l.AuditLog())
	require.NoError(t, err)
	require.False(t, torn, "the audit stream ends inside a record after a clean stop")
	a := analyze(t, l)
	evs, err := partition.ReadAckLogs(l.AckLog(alpha), l.AckLog(beta))
	require.NoError(t, err)
	res.verdict = partition.Judge(evs, recs, disk, partition.Range{Blocks: partition.RangeBlocks})

	res.acked = a.Acked
	takeover := a.FirstAckAfter(partition.Nodes[beta], r.t0)
	moved := !takeover.IsZero()
	switch {
	case moved:
		res.outcome = "moved to beta"
	default:
		res.outcome = "stayed on alpha"
	}
	lastWriters := a.Writers(end.Add(-time.Second))
	res.writers = strings.Join(lastWriters, ",")
	if res.writers == "" {
		res.writers = "none"
	}
	if c := a.FirstConflict(partition.Nodes[alpha], r.t0); !c.IsZero() {
		res.conflict = "+" + c.Sub(r.t0).Round(time.Millisecond).String()
	} else {
		res.conflict = "-"
	}
	if moved {
		at := takeover
		if vipBeta.After(at) {
			at = vipBeta
		}
		if vipBeta.IsZero() {
			res.service = fmt.Sprintf("writer %v, VIP never", takeover.Sub(r.t0).Round(time.Millisecond))
		} else {
			res.service = fmt.Sprintf("%v (<=%v)", at.Sub(r.t0).Round(time.Millisecond), budget)
		}
	} else {
		res.service = "stayed"
	}
	r.note("end: alpha %s, beta %s, VIP answered by %q", states[0], states[1], vipEnd)

	// The service came back within the budget, or stayed put.
	bad := func(format string, args ...any) {
		res.serviceProblems = append(res.serviceProblems, fmt.Sprintf(format, args...))
	}
	switch {
	case rw.expect == move && !moved:
		bad("service did not move to beta within %v", win)
	case rw.expect == move && (vipBeta.IsZero() || takeover.Sub(r.t0) > budget || vipBeta.Sub(r.t0) > budget):
		bad("service moved too late or not on the VIP: %s (budget %v)", res.service, budget)
	case rw.expect == stay && moved:
		bad("service moved to beta at %s, but it must stay on alpha", res.service)
	case rw.expect == stay && a.LastAckOf(partition.Nodes[alpha]).Before(tHeal.Add(-time.Second)):
		bad("alpha stopped writing during the fault (last accepted write %s before healing)", tHeal.Sub(a.LastAckOf(partition.Nodes[alpha])).Round(time.Millisecond))
	case rw.expect == either && moved && (vipBeta.IsZero() || takeover.Sub(r.t0) > budget):
		bad("service moved but too late or not on the VIP: %s (budget %v)", res.service, budget)
	}
	if len(lastWriters) != 1 {
		bad("at the end %d nodes were writing (%s), want exactly one", len(lastWriters), res.writers)
	}
	res.notes = strings.Join(r.notes, "; ")
	v := res.verdict
	t.Logf("%s: %s, service %s, writers in the last second %s, alpha's first conflict %s, %d acked; witness: alpha %+v, beta %+v, fence gen %d, dual %d, disk vs witness %d/%d, lost %d, unexpected %d, acked not audited %d (%d with a kill); %s",
		rw.name, res.outcome, res.service, res.writers, res.conflict, res.acked, counts(v, "alpha"), counts(v, "beta"),
		v.FenceGen, v.Dual, v.DiskVsWitness, v.Blocks, v.Lost, v.Unexpected, v.AckedUnaudited, v.LostWithKill, res.notes)
	check(t, res)
	return res
}

func analyze(t *testing.T, l *partition.Lab) partition.Analysis {
	evs, err := partition.ReadAckLogs(l.AckLog(alpha), l.AckLog(beta))
	require.NoError(t, err)
	return partition.Analyze(evs)
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func printMatrix(group string, results []result) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPartition matrix: group %s\n", group)
	fmt.Fprintf(&b, "timings: keepalive %v, deadtime %v, initdead %v, monitor %v (defaults 200ms/1s); fault window %v, then heal and %v more; takeover budget %v; shared range %d blocks\n",
		timing.Keepalive, timing.DeadTime, timing.InitDead, timing.Monitor, window, after, budget, partition.RangeBlocks)
	fmt.Fprintf(&b, "%-44s | %-6s | %-15s | %-17s | %-8s | %-6s | %-11s | %-11s | %-5s | %-4s | %-8s | %-4s | %-5s | %s\n",
		"scenario", "expect", "outcome", "service back", "alpha CR", "at end", "alpha acc/ref", "beta acc/ref", "fence", "dual", "disk/wit", "lost", "acked", "verdict")
	b.WriteString(strings.Repeat("-", 170) + "\n")
	for _, r := range results {
		v := r.verdict
		verdict := "PASS"
		if !r.ok {
			verdict = "FAIL"
		}
		fence := "-"
		if v.Fenced {
			fence = fmt.Sprintf("g%d:%d", v.FenceGen, v.AfterFence)
		}
		ca, cb := counts(v, "alpha"), counts(v, "beta")
		fmt.Fprintf(&b, "%-44s | %-6s | %-15s | %-17s | %-8s | %-6s | %-13s | %-12s | %-5s | %-4d | %-8s | %-4d | %-5d | %s\n",
			r.name, r.expect, r.outcome, r.service, r.conflict, r.writers,
			fmt.Sprintf("%d/%d", ca.Accepted, ca.Refused), fmt.Sprintf("%d/%d", cb.Accepted, cb.Refused),
			fence, v.Dual, fmt.Sprintf("%d/%d", v.DiskVsWitness, v.Blocks), v.Lost, r.acked, verdict)
	}
	b.WriteString("alpha CR: alpha's first RESERVATION CONFLICT after the fault; at end: nodes with writes acknowledged in the last second;\n" +
		"acc/ref: the target's audit of the node's writes, accepted/refused; fence: PR generation of the fence : the fenced node's writes accepted after it;\n" +
		"dual: writes accepted from a node after the other node's first accepted write (audit order); disk/wit: blocks whose content is not the audit's last writer's;\n" +
		"lost: acknowledged durable (FUA) blocks not read back (durability.Check)\n")
	for _, r := range results {
		v := r.verdict
		fmt.Fprintf(&b, "  %s: unacked-but-accepted alpha %d beta %d; acks not in the audit %d (+%d lost with a target kill); unexpected %d; %s\n",
			r.name, counts(v, "alpha").Unacked, counts(v, "beta").Unacked, v.AckedUnaudited, v.LostWithKill, v.Unexpected, r.notes)
	}
	fmt.Print(b.String())
}
