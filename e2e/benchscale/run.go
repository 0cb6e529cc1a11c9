package benchscale

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/lab"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/config"
)

// Options configure Run.
type Options struct {
	Dir       string // scratch: config, LUN files, log
	TandemBin string
	// Sessions, Initiators and LUNs shape the many-session run; Depth is
	// the total queue depth of both runs.
	Sessions, Initiators, LUNs, Depth int
	// LUNSize is each LUN's size in bytes (preallocated).
	LUNSize int64
	// Duration of each I/O run.
	Duration time.Duration
	// Settle is how long the idle sessions sit before RSS is read, so
	// that their buffers are in place.
	Settle time.Duration
}

const iqn = "iqn.2024-01.io.tandem:scale"

// Run starts tandem-target with o.LUNs LUNs and measures.
func Run(ctx context.Context, o Options) (Result, error) {
	r := Result{Sessions: o.Sessions, Initiators: o.Initiators, LUNs: o.LUNs, Depth: o.Depth}
	port, err := lab.FreePort()
	if err != nil {
		return r, err
	}
	cfgPath, err := writeConfig(o, port)
	if err != nil {
		return r, err
	}
	p, err := lab.StartProcess(o.TandemBin, []string{"--config", cfgPath}, filepath.Join(o.Dir, "target.log"))
	if err != nil {
		return r, err
	}
	defer p.Stop(5 * time.Second)
	portal := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := lab.WaitReady(portal, p, 60*time.Second); err != nil {
		return r, fmt.Errorf("%w\n%s", err, lab.Tail(filepath.Join(o.Dir, "target.log"), 20))
	}

	// Login storm, then memory per idle session.
	rss0, err := rss(p.PID())
	if err != nil {
		return r, err
	}
	start := time.Now()
	many, err := dialAll(ctx, portal, o.Sessions, o.Initiators, max(o.Depth/o.Sessions, 1))
	r.Storm = time.Since(start)
	defer closeAll(many)
	if err != nil {
		return r, err
	}
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(o.Settle):
	}
	rss1, err := rss(p.PID())
	if err != nil {
		return r, err
	}
	r.PerSession = (rss1 - rss0) / int64(o.Sessions)

	// Session i reads LUN i % LUNs: all LUNs busy, same total depth.
	if r.ManyIOPS, err = readLoad(ctx, many, o.LUNs, o.LUNSize, max(o.Depth/o.Sessions, 1), o.Duration); err != nil {
		return r, err
	}
	one, err := dialAll(ctx, portal, 1, 1, o.Depth)
	defer closeAll(one)
	if err != nil {
		return r, err
	}
	r.OneIOPS, err = readLoad(ctx, one, 1, o.LUNSize, o.Depth, o.Duration)
	return r, err
}

func writeConfig(o Options, port int) (string, error) {
	cfg := config.DefaultConfig()
	cfg.Listen = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	cfg.StateDir = filepath.Join(o.Dir, "state")
	cfg.AdminSocket = filepath.Join(o.Dir, "admin.sock")
	cfg.MetricsAddress = "off"
	cfg.Limits.MaxSessions = uint32(o.Sessions + 8)
	cfg.Limits.QueueDepth = uint32(max(o.Depth, 128))
	cfg.Limits.HeaderDigest, cfg.Limits.DataDigest = false, false
	t := config.Target{Name: iqn}
	for i := range o.LUNs {
		path := filepath.Join(o.Dir, fmt.Sprintf("lun%d.img", i))
		if err := lab.CreateLUNFile(path, o.LUNSize, true); err != nil {
			return "", err
		}
		t.LUNs = append(t.LUNs, config.LUN{ID: uint64(i), Path: path, Size: o.LUNSize, BlockSize: config.DefaultBlockSize,
			WriteCache: true, Serial: config.DefaultSerial(iqn, uint64(i))})
	}
	cfg.Targets = []config.Target{t}
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("generated config is invalid: %w", err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		return "", err
	}
	path := filepath.Join(o.Dir, "target.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

// dialAll logs in n sessions at once, from names initiator names (each
// name's sessions told apart by their ISID).
func dialAll(ctx context.Context, portal string, n, names, depth int) ([]*initiator.Session, error) {
	out := make([]*initiator.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			opts := initiator.Options{
				InitiatorName: fmt.Sprintf("iqn.2024-01.io.tandem:scale-%02d", i%names),
				TargetName:    iqn, QueueDepth: depth,
				ISID: [6]byte{0x80, 0, 0, 0, byte(i >> 8), byte(i)},
			}
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			out[i], errs[i] = initiator.Dial(dctx, portal, opts)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return compact(out), fmt.Errorf("login: %w", err)
	}
	return out, nil
}

func compact(ss []*initiator.Session) []*initiator.Session {
	var out []*initiator.Session
	for _, s := range ss {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func closeAll(ss []*initiator.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() { _ = s.Close(ctx) })
	}
	wg.Wait()
}

// readLoad runs depth 4 KiB random readers per session for d and
// returns the aggregate IOPS; session i reads LUN i % luns.
func readLoad(ctx context.Context, ss []*initiator.Session, luns int, lunSize int64, depth int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ops atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	slots := lunSize / 4096
	for i, s := range ss {
		lun := uint64(i % luns)
		for w := range depth {
			wg.Go(func() {
				buf := make([]byte, 4096)
				rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				for ctx.Err() == nil && time.Now().Before(deadline) {
					if err := s.ReadInto(ctx, lun, uint64(rng.Int64N(slots))*8, buf); err != nil {
						if ctx.Err() == nil {
							once.Do(func() { firstErr = err; cancel() })
						}
						return
					}
					ops.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("read: %w", firstErr)
	}
	return float64(ops.Load()) / time.Since(start).Seconds(), nil
}

// rss returns the resident set size of pid in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read target memory: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}
