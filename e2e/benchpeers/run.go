package benchpeers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/lab"
)

// Peer names.
const (
	Tandem = "tandem"
	TGT    = "tgt"
	Gotgt  = "gotgt"
)

// Options configure Run.
type Options struct {
	// Dir is the scratch directory; each peer gets a subdirectory.
	Dir string
	// Peers to measure, in order; the first is the base of the ratios.
	Peers []string
	// TandemBin, GotgtBin and BenchBin are the binaries of tandem-target,
	// gotgt and tandem-bench.
	TandemBin, GotgtBin, BenchBin string
	// LUNSize is the size of every peer's preallocated file LUN.
	LUNSize int64
	// Reps is the number of interleaved repetitions.
	Reps int
	// Stall is how long a run may make no progress before the peer is
	// restarted.
	Stall time.Duration
	// Duration is the run time of each tandem-bench pattern.
	Duration time.Duration
	// Patterns to run.
	Patterns []Pattern
	// Log receives progress lines.
	Log io.Writer
}

// DefaultPatterns are issue 15's: qemu-img bench 4 KiB random read/write
// at depth 32 and 1 and 1 MiB sequential read/write at depth 8, and
// tandem-bench 4 KiB random read/write at depth 32 and 1.
func DefaultPatterns() []Pattern {
	q := "qemu-img"
	tb := "tandem-bench"
	return []Pattern{
		{Name: "qemu 4K randread d32", Client: q, Size: 4096, Depth: 32, Count: 200000},
		{Name: "qemu 4K randwrite d32", Client: q, Write: true, Size: 4096, Depth: 32, Count: 200000},
		{Name: "qemu 4K randread d1", Client: q, Size: 4096, Depth: 1, Count: 30000},
		{Name: "qemu 4K randwrite d1", Client: q, Write: true, Size: 4096, Depth: 1, Count: 30000},
		{Name: "qemu 1M seqread d8", Client: q, Seq: true, Size: 1 << 20, Depth: 8, Count: 4096},
		{Name: "qemu 1M seqwrite d8", Client: q, Seq: true, Write: true, Size: 1 << 20, Depth: 8, Count: 4096},
		{Name: "tandem-bench 4K randread d32", Client: tb, Size: 4096, Depth: 32},
		{Name: "tandem-bench 4K randwrite d32", Client: tb, Write: true, Size: 4096, Depth: 32},
		{Name: "tandem-bench 4K randread d1", Client: tb, Size: 4096, Depth: 1},
		{Name: "tandem-bench 4K randwrite d1", Client: tb, Write: true, Size: 4096, Depth: 1},
	}
}

const iqn = "iqn.2024-01.io.tandem:bench"

// Run measures every pattern against every peer, Reps times, with the
// peers' order rotated in each repetition; it returns all samples.
func Run(ctx context.Context, o Options) ([]Sample, error) {
	peers := map[string]*lab.Target{}
	defer func() {
		for _, t := range peers {
			t.Stop()
		}
	}()
	for _, p := range o.Peers {
		t, err := startPeer(p, o)
		if err != nil {
			return nil, err
		}
		peers[p] = t
	}
	var samples []Sample
	for rep := range o.Reps {
		for _, pat := range o.Patterns {
			for i := range o.Peers {
				peer := o.Peers[(i+rep)%len(o.Peers)]
				if err := ctx.Err(); err != nil {
					return samples, err
				}
				s, err := runOne(ctx, peers[peer], pat, o)
				s.Peer, s.Pattern = peer, pat.Name
				if err != nil {
					// One client failing against one peer is a finding
					// for the table, not the end of the comparison.
					fmt.Fprintf(o.Log, "%s failed on %s: %v\n", peer, pat.Name, err)
					s = Sample{Peer: peer, Pattern: pat.Name, Failed: true}
				}
				if s.Stalled {
					fmt.Fprintf(o.Log, "%s stalled on %s: restarting it\n", peer, pat.Name)
					peers[peer].Stop()
					delete(peers, peer)
					t, err := startPeer(peer, o)
					if err != nil {
						return samples, err
					}
					peers[peer] = t
				} else if !s.Failed {
					fmt.Fprintf(o.Log, "rep %d %-30s %-7s %9.0f IOPS %7.0f MiB/s %6.1f us CPU/IO\n", rep+1, pat.Name, peer,
						s.IOPS, s.MiBps, float64(s.CPUPerIO)/float64(time.Microsecond))
				}
				samples = append(samples, s)
			}
		}
	}
	return samples, nil
}

func startPeer(name string, o Options) (*lab.Target, error) {
	dir := filepath.Join(o.Dir, name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clean %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	lo := lab.Options{Dir: dir, IQN: iqn, LUN: 1, LUNSize: o.LUNSize, Preallocate: true}
	switch name {
	case Tandem:
		return lab.StartTandem(o.TandemBin, []string{"--config", "{config}"}, lo)
	case TGT:
		return lab.StartTGT(lo)
	case Gotgt:
		return startGotgt(o.GotgtBin, lo)
	}
	return nil, fmt.Errorf("unknown peer %q: use tandem, tgt or gotgt", name)
}

// startGotgt writes gotgt's config.json (it reads $HOME/.gotgt) for one
// file LUN and starts its daemon.
func startGotgt(bin string, o lab.Options) (*lab.Target, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	api, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	o.Port = port
	lun := filepath.Join(o.Dir, "lun.img")
	if err := lab.CreateLUNFile(lun, o.LUNSize, true); err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"storages":     []any{map[string]any{"deviceID": 1000, "path": "file:" + lun, "online": true, "blockShift": 9}},
		"iscsiportals": []any{map[string]any{"id": 0, "portal": fmt.Sprintf("127.0.0.1:%d", port)}},
		"iscsitargets": map[string]any{o.IQN: map[string]any{
			"tpgts": map[string]any{"1": []int{0}},
			"luns":  map[string]any{strconv.FormatUint(o.LUN, 10): 1000},
		}},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, ".gotgt"), 0o755); err != nil {
		return nil, fmt.Errorf("gotgt config directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.Dir, ".gotgt", "config.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("write gotgt config: %w", err)
	}
	return lab.StartCommand(fmt.Sprintf("env HOME={dir} %s daemon --port {port} --host tcp://127.0.0.1:%d --log error", bin, api), o)
}

// runOne runs one pattern and measures the target's CPU time over it.
func runOne(ctx context.Context, t *lab.Target, p Pattern, o Options) (Sample, error) {
	pid := t.Proc.PID()
	cpu0, err := procCPU(pid)
	if err != nil {
		return Sample{}, err
	}
	var argv []string
	switch p.Client {
	case "qemu-img":
		argv = []string{"qemu-img", "bench", "-f", "raw", "-t", "none", "-c", strconv.Itoa(p.Count),
			"-d", strconv.Itoa(p.Depth), "-s", strconv.Itoa(p.Size)}
		if p.Write {
			argv = append(argv, "-w")
		}
		if !p.Seq {
			// A step of 1 MiB + 4 KiB walks the LUN in a scattered order.
			argv = append(argv, "-S", "1052672")
		}
		argv = append(argv, t.URL)
	case "tandem-bench":
		test := "randread"
		if p.Write {
			test = "randwrite"
		}
		argv = []string{o.BenchBin, "--json", "--tests", test, "--rand-depth", strconv.Itoa(p.Depth),
			"--rand-size", strconv.Itoa(p.Size), "--duration", o.Duration.String(), t.URL}
	default:
		return Sample{}, fmt.Errorf("unknown client %q", p.Client)
	}
	out, stalled, err := runWatched(ctx, argv, pid, o.Stall)
	if stalled {
		return Sample{Stalled: true}, nil
	}
	if err != nil {
		return Sample{}, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, lastLine(out))
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return Sample{}, err
	}
	var ops float64
	var secs float64
	switch p.Client {
	case "qemu-img":
		d, err := ParseQemuBench(out)
		if err != nil {
			return Sample{}, err
		}
		ops, secs = float64(p.Count), d.Seconds()
	default:
		var res []struct {
			Ops     int64   `json:"ops"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
			return Sample{}, fmt.Errorf("tandem-bench output is not one JSON result: %q", lastLine(out))
		}
		ops, secs = float64(res[0].Ops), res[0].Seconds
	}
	s := Sample{IOPS: ops / secs, MiBps: ops * float64(p.Size) / secs / (1 << 20)}
	if ops > 0 {
		s.CPUPerIO = time.Duration(float64(cpu1-cpu0) / ops)
	}
	return s, nil
}

// runWatched runs argv; while it runs, the target's socket traffic
// (rchar+wchar of /proc/PID/io) is the progress counter of a StallWatch.
// A stalled client is killed by its PID.
func runWatched(ctx context.Context, argv []string, target int, limit time.Duration) (string, bool, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", false, fmt.Errorf("start %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	w := StallWatch{Limit: limit, MinStep: 64 << 10}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return out.String(), false, err
		case now := <-tick.C:
			n, err := procIO(target)
			if err != nil {
				// The target died: that is a stall too.
				_ = cmd.Process.Kill()
				<-done
				return out.String(), true, nil
			}
			if w.Observe(now, n) {
				_ = cmd.Process.Kill()
				<-done
				return out.String(), true, nil
			}
		}
	}
}

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat times.
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time of pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read target CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * clockTick, nil
}

// procIO returns rchar+wchar of pid: every byte it read or wrote.
func procIO(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if ok && (k == "rchar" || k == "wchar") {
			n, _ := strconv.ParseUint(v, 10, 64)
			sum += n
		}
	}
	return sum, nil
}
