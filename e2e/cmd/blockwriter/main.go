// Command blockwriter is the application of the partition test matrix
// (e2e/partition): it stands for a database writing the shared disk. It
// opens its own native iSCSI session (its own ISID, so its own I_T nexus),
// registers the node's fencing key on that nexus once with REGISTER AND
// IGNORE EXISTING KEY (SPC-4 section 5.12.7), then writes blocks stamped
// with (node, generation, sequence) round and round over one shared LBA
// range, the same for every node and generation (as two nodes mounting
// one filesystem write the same superblock and journal), and appends the
// outcome of every write (acknowledged, conflict, error) to an fsync'ed
// ack log. Writes carry FUA, except every --plain-every'th, which the
// target may keep in a volatile cache until a later FUA.
//
// It never registers again: after a RESERVATION CONFLICT (the peer
// preempted this node's key) it logs the conflict and, with
// --on-conflict=retry (the default), keeps trying every --conflict-interval
// like an application nobody stopped would, so the test can prove the
// fence holds against it; with --on-conflict=stop it exits with status 3.
// A lost session is logged in again with the same ISID (the registration
// of the nexus survives with APTPL), without registering.
//
//	blockwriter --portal 10.217.3.100:3260 --target iqn... --node alpha \
//	  --key 0x7464... --gen-file DIR/gen --ack-log DIR/alpha.acks
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/partition/stamp"
	"github.com/tandem-ha/tandem/initiator"
)

// Exit statuses.
const (
	exitConflict = 3 // stopped after a RESERVATION CONFLICT (--on-conflict=stop)
)

type options struct {
	portal, target, initiator, node, key, genFile, ackLog, readyFile, onConflict string
	lun, baseLBA, rangeBlocks, genOffset, plainEvery                             uint64
	interval, conflictInterval, ioTimeout, startWait                             time.Duration
	aptpl                                                                        bool
}

func main() {
	var o options
	c := &cobra.Command{
		Use:           "blockwriter",
		Short:         "Write stamped FUA blocks over a native iSCSI session and log every acknowledged one",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			code, err := run(o)
			if err != nil {
				return err
			}
			if code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.portal, "portal", "", "target portal host:port (required)")
	f.StringVar(&o.target, "target", "", "target IQN (required)")
	f.Uint64Var(&o.lun, "lun", 0, "data LUN")
	f.StringVar(&o.initiator, "initiator", "", "initiator name (default "+stamp.WriterInitiator("NODE")+")")
	f.StringVar(&o.node, "node", "", "node name stamped on every block (required)")
	f.StringVar(&o.key, "key", "", "the node's fencing key, 0x-hex or decimal (required)")
	f.BoolVar(&o.aptpl, "aptpl", true, "register with APTPL, as the fence resource does (APTPL is per LU: a mismatch would turn it off)")
	f.StringVar(&o.genFile, "gen-file", "", "lab-wide generation counter, incremented under flock (required)")
	f.Uint64Var(&o.baseLBA, "base-lba", 0, "first block of the shared range")
	f.Uint64Var(&o.rangeBlocks, "range-blocks", 1024, "blocks of the shared range, written round and round by every writer")
	f.Uint64Var(&o.genOffset, "gen-offset", 0, "generation g starts writing g*N blocks into the range (so a new writer overwrites the old one's latest blocks last)")
	f.Uint64Var(&o.plainEvery, "plain-every", 0, "send every Nth write without FUA (0: all FUA)")
	f.StringVar(&o.ackLog, "ack-log", "", "ack log, appended and fsync'ed (required)")
	f.StringVar(&o.readyFile, "ready-file", "", "created once registered and the first write was tried")
	f.DurationVar(&o.interval, "interval", 5*time.Millisecond, "time between two writes")
	f.StringVar(&o.onConflict, "on-conflict", "retry", "after a RESERVATION CONFLICT: retry (never re-register) or stop")
	f.DurationVar(&o.conflictInterval, "conflict-interval", 20*time.Millisecond, "time between two writes after a conflict")
	f.DurationVar(&o.ioTimeout, "io-timeout", 2*time.Second, "deadline of one write or login")
	f.DurationVar(&o.startWait, "start-wait", 5*time.Second, "how long the first login and registration are retried (the storage may be restarting)")
	if err := c.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "blockwriter:", err)
		os.Exit(1)
	}
}

func (o *options) check() (uint64, error) {
	for _, r := range []struct{ name, v string }{{"portal", o.portal}, {"target", o.target}, {"node", o.node}, {"key", o.key}, {"gen-file", o.genFile}, {"ack-log", o.ackLog}} {
		if r.v == "" {
			return 0, fmt.Errorf("--%s is required", r.name)
		}
	}
	if o.onConflict != "retry" && o.onConflict != "stop" {
		return 0, fmt.Errorf("--on-conflict %q: use retry or stop", o.onConflict)
	}
	if len(o.node) > stamp.MaxNode || strings.ContainsAny(o.node, " \n") {
		return 0, fmt.Errorf("--node %q: at most %d bytes, no spaces", o.node, stamp.MaxNode)
	}
	key, err := strconv.ParseUint(o.key, 0, 64)
	if err != nil || key == 0 {
		return 0, fmt.Errorf("--key %q: a non-zero 64-bit number (0x-hex or decimal)", o.key)
	}
	if o.rangeBlocks == 0 {
		return 0, errors.New("--range-blocks must be at least 1")
	}
	if o.initiator == "" {
		o.initiator = stamp.WriterInitiator(o.node)
	}
	return key, nil
}

// nextGen increments the lab-wide counter at path under an exclusive
// flock, so writers started at once on both nodes get distinct
// generations.
func nextGen(path string) (uint64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("generation file: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("lock generation file: %w", err)
	}
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	g, _ := strconv.ParseUint(strings.TrimSpace(string(b[:n])), 10, 64)
	g++
	if err := f.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := f.WriteAt([]byte(strconv.FormatUint(g, 10)+"\n"), 0); err != nil {
		return 0, err
	}
	return g, f.Sync()
}

type writer struct {
	o    options
	key  uint64
	gen  uint64
	isid [6]byte
	log  *os.File
	buf  []byte
	sess *initiator.Session
}

func (w *writer) record(e stamp.Event) {
	e.Node, e.Gen = w.o.node, w.gen
	w.buf = stamp.Append(w.buf[:0], e)
	if _, err := w.log.Write(w.buf); err != nil {
		fmt.Fprintln(os.Stderr, "blockwriter: ack log:", err)
		os.Exit(1) // an ack we cannot record is a promise we cannot check
	}
	if err := w.log.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, "blockwriter: fsync ack log:", err)
		os.Exit(1)
	}
}

func (w *writer) dial(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, w.o.ioTimeout)
	defer cancel()
	s, err := initiator.Dial(dctx, w.o.portal, initiator.Options{
		InitiatorName: w.o.initiator, TargetName: w.o.target, ISID: w.isid,
		QueueDepth: 4, KeepAliveInterval: 250 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	w.sess = s
	return nil
}

func (w *writer) closeSession() {
	if w.sess != nil {
		// A short logout: on a cut storage network a long one would wait
		// for an answer that never comes, and hold up the group's stop.
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		_ = w.sess.Close(ctx)
		cancel()
		w.sess = nil
	}
}

func run(o options) (int, error) {
	key, err := o.check()
	if err != nil {
		return 1, err
	}
	gen, err := nextGen(o.genFile)
	if err != nil {
		return 1, err
	}
	logf, err := os.OpenFile(o.ackLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 1, fmt.Errorf("ack log: %w", err)
	}
	defer logf.Close()
	w := &writer{o: o, key: key, gen: gen, log: logf}
	// A random ISID of the "random" type (RFC 7143 section 11.12.5): this
	// writer's own initiator port, kept across re-logins.
	rand.Read(w.isid[1:])
	w.isid[0] = 0x80

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// Log in and register once, retried while the storage comes back, like
	// a database waiting for its disk at start.
	deadline := time.Now().Add(o.startWait)
	for {
		err = w.dial(ctx)
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, o.ioTimeout)
			err = w.sess.PRRegisterAndIgnore(rctx, o.lun, key, initiator.PROptions{APTPL: o.aptpl})
			cancel()
			if err != nil {
				w.closeSession()
				err = fmt.Errorf("register key %#x on LUN %d: %w", key, o.lun, err)
			}
		} else {
			err = fmt.Errorf("login to %s %s: %w", o.portal, o.target, err)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 1, err
		}
		fmt.Fprintln(os.Stderr, "blockwriter: retrying:", err)
		time.Sleep(100 * time.Millisecond)
	}
	w.record(stamp.Event{Kind: stamp.KindStart, Time: time.Now().UnixNano(), Info: stamp.StartInfo(w.isid, key, os.Getpid())})
	code, why := w.loop(ctx)
	w.record(stamp.Event{Kind: stamp.KindStop, Time: time.Now().UnixNano(), Info: why})
	w.closeSession()
	return code, nil
}

func (w *writer) loop(ctx context.Context) (int, string) {
	block := make([]byte, stamp.BlockSize)
	ready := w.o.readyFile == ""
	conflicted := false
	for seq := uint64(1); ; seq++ {
		wait := w.o.interval
		if conflicted {
			wait = w.o.conflictInterval
		}
		select {
		case <-ctx.Done():
			return 0, "signal"
		case <-time.After(wait):
		}
		if w.sess == nil {
			if err := w.dial(ctx); err != nil {
				w.record(stamp.Event{Kind: stamp.KindLogin, Seq: seq, Time: time.Now().UnixNano(), Info: err.Error()})
				time.Sleep(100 * time.Millisecond)
				seq-- // nothing was sent: the next try writes this sequence
				continue
			}
		}
		lba := w.o.baseLBA + (w.gen*w.o.genOffset+seq-1)%w.o.rangeBlocks
		fua := w.o.plainEvery == 0 || seq%w.o.plainEvery != 0
		t0 := time.Now()
		_ = stamp.Encode(block, stamp.Stamp{Node: w.o.node, Gen: w.gen, Seq: seq, LBA: lba, Time: t0.UnixNano()})
		wctx, cancel := context.WithTimeout(ctx, w.o.ioTimeout)
		err := w.sess.Write16(wctx, w.o.lun, lba, block, fua)
		cancel()
		t1 := time.Now()
		ev := stamp.Event{Seq: seq, LBA: lba, Time: t0.UnixNano(), Acked: t1.UnixNano(), FUA: fua}
		switch {
		case err == nil:
			ev.Kind = stamp.KindAck
		case errors.Is(err, initiator.ErrReservationConflict), initiator.IsReservationUnitAttention(err):
			ev.Kind, ev.Info = stamp.KindConflict, err.Error()
			conflicted = true
		default:
			ev.Kind, ev.Info, ev.Acked = stamp.KindError, err.Error(), 0
			if w.sess.Err() != nil || ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				w.closeSession() // log in again with the same ISID
			}
		}
		w.record(ev)
		if ctx.Err() != nil && ev.Kind == stamp.KindError {
			return 0, "signal"
		}
		if !ready {
			if f, err := os.Create(w.o.readyFile); err == nil {
				f.Close()
			}
			ready = true
		}
		if ev.Kind == stamp.KindConflict && w.o.onConflict == "stop" {
			return exitConflict, "reservation conflict"
		}
	}
}
