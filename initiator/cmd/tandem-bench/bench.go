package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/initiator"
)

// Spec is one test.
type Spec struct {
	Name   string
	Size   int  // bytes per I/O
	Depth  int  // I/Os in flight, over all sessions
	Random bool // random offsets (else sequential)
	Write  bool
}

// Result is one test's outcome.
type Result struct {
	Name       string  `json:"name"`
	BlockSize  int     `json:"io_size"`
	Depth      int     `json:"depth"`
	Ops        int64   `json:"ops"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	IOPS       float64 `json:"iops"`
	MiBps      float64 `json:"mib_per_s"`
	AvgLatency float64 `json:"avg_latency_us"`
}

func (r Result) String() string {
	return fmt.Sprintf("%-10s %7d B x%-3d %10.0f IOPS %9.1f MiB/s  avg %8.1f us  (%d ops in %.1fs)",
		r.Name, r.BlockSize, r.Depth, r.IOPS, r.MiBps, r.AvgLatency, r.Ops, r.Seconds)
}

func summarize(s Spec, ops int64, elapsed time.Duration) Result {
	sec := elapsed.Seconds()
	r := Result{Name: s.Name, BlockSize: s.Size, Depth: s.Depth, Ops: ops, Bytes: ops * int64(s.Size), Seconds: sec}
	if sec > 0 {
		r.IOPS = float64(ops) / sec
		r.MiBps = float64(r.Bytes) / sec / (1 << 20)
	}
	if ops > 0 {
		// Little's law: latency = depth / throughput.
		r.AvgLatency = float64(s.Depth) * sec / float64(ops) * 1e6
	}
	return r
}

// runTest keeps s.Depth I/Os in flight for d, spread over the sessions.
func runTest(ctx context.Context, sessions []*initiator.Session, lun uint64, blockSize uint32, span int64, s Spec, d time.Duration) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ops atomic.Int64
	var next atomic.Int64 // sequential cursor, in I/O units
	slots := span / int64(s.Size)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := range s.Depth {
		sess := sessions[w%len(sessions)]
		wg.Go(func() {
			buf := make([]byte, s.Size)
			for i := range buf {
				buf[i] = byte(i + w)
			}
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				var slot int64
				if s.Random {
					slot = rng.Int64N(slots)
				} else {
					slot = (next.Add(1) - 1) % slots
				}
				lba := uint64(slot*int64(s.Size)) / uint64(blockSize)
				var err error
				if s.Write {
					err = sess.Write16(ctx, lun, lba, buf, false)
				} else {
					err = sess.ReadInto(ctx, lun, lba, buf)
				}
				if err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return Result{}, firstErr
	}
	return summarize(s, ops.Load(), time.Since(start)), nil
}

// parseTarget accepts "host[:port]" with --target, or
// iscsi://host[:port]/target-iqn/lun (libiscsi's URL form).
func parseTarget(arg, target string, lun uint64, lunSet bool) (portal, name string, l uint64, err error) {
	if !strings.HasPrefix(arg, "iscsi://") {
		if target == "" {
			return "", "", 0, errors.New("give the target name with --target or use iscsi://HOST/TARGET/LUN")
		}
		return arg, target, lun, nil
	}
	u, err := url.Parse(arg)
	if err != nil {
		return "", "", 0, fmt.Errorf("bad iscsi url: %w", err)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if u.Host == "" || len(parts) == 0 || parts[0] == "" {
		return "", "", 0, errors.New("iscsi url needs a host and a target: iscsi://HOST[:PORT]/TARGET/LUN")
	}
	name, l = parts[0], lun
	if len(parts) > 1 && parts[1] != "" {
		l, err = strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			return "", "", 0, fmt.Errorf("bad lun %q in iscsi url", parts[1])
		}
		if lunSet && l != lun {
			return "", "", 0, errors.New("--lun disagrees with the lun in the url")
		}
	}
	if target != "" && target != name {
		return "", "", 0, errors.New("--target disagrees with the target in the url")
	}
	return u.Host, name, l, nil
}
