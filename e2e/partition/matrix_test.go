package partition_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/e2e/partition"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/resource"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // what the agent registers
	"github.com/tandem-ha/tandem/initiator"
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
}

func (r *rowRun) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
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
		// kill -9 of alpha's agent (its writer keeps going); just before
		// beta declares alpha dead (deadtime - 100ms), the target crashes,
		// and it comes back 1 s later: beta's fence must wait for it and
		// complete, and alpha's writer, logged in again, must lose.
		name: "target restart during takeover", hb: "-", expect: move,
		fault: func(r *rowRun) error {
			r.l.KillAgent(alpha)
			r.bg.Add(1)
			go func() {
				defer r.bg.Done()
				time.Sleep(timing.DeadTime - 100*time.Millisecond)
				r.note("target killed %v after the fault, beta %q", time.Since(r.t0).Round(time.Millisecond), r.l.State(context.Background(), beta))
				r.l.KillTarget()
				time.Sleep(time.Second)
				if err := r.l.StartTarget(); err != nil {
					r.mu.Lock()
					r.err = err
					r.mu.Unlock()
				}
			}()
			return nil
		},
		heal: func(r *rowRun) error { return r.l.StartAgent(alpha) },
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
	acked, lost                                                  int
	budget                                                       time.Duration
	ok                                                           bool
}

func fenceAvailable() bool { return slices.Contains(resource.Types(), fence.Type) }

func TestPartitionMatrix(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("partition: skipped, needs root to create network namespaces (run as root: make partition-test)")
	}
	require.NoError(t, bins.err)
	// PARTITION_UNFENCED=1 runs the negative control: no fence resource
	// and no disk heartbeat, as heartbeat runs; the assertions must fail.
	fenced := fenceAvailable() && os.Getenv("PARTITION_UNFENCED") == ""
	var results []result
	for _, rw := range rows {
		t.Run(rw.name, func(t *testing.T) {
			res := runRow(t, rw, fenced)
			res.ok = !t.Failed()
			results = append(results, res)
		})
	}
	printMatrix(results, fenced)
}

func runRow(t *testing.T, rw row, fenced bool) result {
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
		Timing: timing, Fence: fenced, WriterAPTPL: fenced,
		DiskHB: !rw.noDisk && fenced,
	})
	require.NoError(t, err)
	r := &rowRun{t: t, l: l}
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

	a := analyze(t, l)
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

	// 1. At most one node's writes accepted after the fence point.
	for _, p := range a.Problems {
		t.Errorf("single writer violated: %s", p)
	}
	res.writers = fmt.Sprintf("%s (dual %d)", res.writers, a.DualAcks+a.AfterConflict)
	// 2. Every acknowledged block is on the disk.
	lost, problems, err := readBack(l, a)
	require.NoError(t, err)
	res.lost = lost
	for _, p := range problems {
		t.Errorf("acknowledged write lost: %s", p)
	}
	// 3. Service came back within the budget, or stayed put.
	switch {
	case rw.expect == move && !moved:
		t.Errorf("service did not move to beta within %v", win)
	case rw.expect == move && (vipBeta.IsZero() || takeover.Sub(r.t0) > budget || vipBeta.Sub(r.t0) > budget):
		t.Errorf("service moved too late or not on the VIP: %s (budget %v)", res.service, budget)
	case rw.expect == stay && moved:
		t.Errorf("service moved to beta at %s, but it must stay on alpha", res.service)
	case rw.expect == stay && a.LastAckOf(partition.Nodes[alpha]).Before(tHeal.Add(-time.Second)):
		t.Errorf("alpha stopped writing during the fault (last accepted write %s before healing)", tHeal.Sub(a.LastAckOf(partition.Nodes[alpha])).Round(time.Millisecond))
	case rw.expect == either && moved && (vipBeta.IsZero() || takeover.Sub(r.t0) > budget):
		t.Errorf("service moved but too late or not on the VIP: %s (budget %v)", res.service, budget)
	}
	if len(lastWriters) != 1 {
		t.Errorf("at the end %d nodes were writing (%s), want exactly one", len(lastWriters), res.writers)
	}
	res.notes = strings.Join(r.notes, "; ")
	t.Logf("%s: %s, service %s, writers in the last second %s, alpha's first conflict %s, %d acked, %d lost; %s",
		rw.name, res.outcome, res.service, res.writers, res.conflict, res.acked, res.lost, res.notes)
	return res
}

func analyze(t *testing.T, l *partition.Lab) partition.Analysis {
	evs, err := partition.ReadAckLogs(l.AckLog(alpha), l.AckLog(beta))
	require.NoError(t, err)
	return partition.Analyze(evs)
}

// readBack reads every acknowledged block through a native session from
// the storage namespace (the host side of the storage network).
func readBack(l *partition.Lab, a partition.Analysis) (int, []string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s *initiator.Session
	var err error
	for try := 0; try < 20; try++ { // the target may be restarting
		s, err = initiator.Dial(ctx, partition.Portal, initiator.Options{
			InitiatorName: "iqn.2026-11.io.tandem.partition:checker", TargetName: partition.IQN,
			Dialer: l.StorageDialer,
		})
		if err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("checker login: %w", err)
	}
	defer s.Close(ctx)
	return partition.VerifyAcks(a, func(lba uint64, buf []byte) error {
		return s.ReadInto(ctx, partition.DataLUN, lba, buf)
	})
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func printMatrix(results []result, fenced bool) {
	var b strings.Builder
	group := "[writer, vip] (no fence resource registered: UNFENCED baseline)"
	if fenced {
		group = "[fence (scsi-pr, native session), writer, vip]"
	}
	fmt.Fprintf(&b, "\nPartition matrix: group %s\n", group)
	fmt.Fprintf(&b, "timings: keepalive %v, deadtime %v, initdead %v, monitor %v (defaults 200ms/1s); fault window %v, then heal and %v more; takeover budget %v\n",
		timing.Keepalive, timing.DeadTime, timing.InitDead, timing.Monitor, window, after, budget)
	fmt.Fprintf(&b, "%-36s | %-6s | %-15s | %-20s | %-9s | %-16s | %6s | %4s | %-29s | %s\n",
		"scenario", "expect", "outcome", "service back", "alpha CR", "writers at end", "acked", "lost", "heartbeat 3.0", "verdict")
	b.WriteString(strings.Repeat("-", 175) + "\n")
	for _, r := range results {
		v := "PASS"
		if !r.ok {
			v = "FAIL"
		}
		single := "single writer"
		if strings.Contains(r.writers, "dual 0") {
			single = "single writer"
		} else {
			single = "DUAL WRITER"
		}
		hb := r.hb
		if hb == "dual active" {
			hb = "dual active; ours: " + single
		}
		fmt.Fprintf(&b, "%-36s | %-6s | %-15s | %-20s | %-9s | %-16s | %6d | %4d | %-29s | %s\n",
			r.name, r.expect, r.outcome, r.service, r.conflict, r.writers, r.acked, r.lost, hb, v)
	}
	b.WriteString("alpha CR: alpha's first RESERVATION CONFLICT after the fault; writers at end: nodes with writes accepted in the last second (dual: writes accepted from a fenced or superseded writer)\n")
	for _, r := range results {
		if r.notes != "" {
			fmt.Fprintf(&b, "  %s: %s\n", r.name, r.notes)
		}
	}
	fmt.Print(b.String())
}
