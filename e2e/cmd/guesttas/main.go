// Command guesttas is the guest side of the aborted-tasks VM test
// (e2e/cmd/tasvm, issue 11); it runs inside a lab VM (package e2e/vm) with
// the real kernel initiator:
//
//	guesttas up      -portal IP:PORT -target IQN -key HEX
//	guesttas reserve -dev /dev/sdX -key HEX
//	guesttas write   -dev /dev/sdX [-depth 4] [-size 1048576] [-max 60s]
//	guesttas preempt -dev /dev/sdX -key HEX -victim HEX
//	guesttas prcheck -dev /dev/sdX -key HEX
//
// up starts the `iscsi` resource (discovery, login through iscsiadm, the
// LUN's block device, the key registered through SG_IO) and prints
// "device /dev/sdX"; reserve takes a WRITE EXCLUSIVE - REGISTRANTS ONLY
// reservation (after every node registered: the resource does not
// register a node while another one holds the reservation). write runs -depth writers, each writing
// -size bytes with O_DIRECT in a loop over its own region of the disk
// until its first error. preempt sends PERSISTENT RESERVE OUT PREEMPT AND
// ABORT against -victim's key. write and preempt report each step as an
// event line (package e2e/vmtas) on the guest's event port, which the host
// stamps on arrival. prcheck sends READ KEYS, READ RESERVATION and
// REGISTER (the key again) once each, without retrying a unit attention
// as the kernel's own users (sg_persist) do not: a reset's unit attention
// fails it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/e2e/vmtas"
	"github.com/tandem-ha/tandem/ha/resource"
	_ "github.com/tandem-ha/tandem/ha/resource/iscsi" // type iscsi
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/sgio"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// prType is the reservation the product's fence takes (ha/resource/fence).
const prType = initiator.PRWriteExclusiveRegistrantsOnly

type opts struct {
	portal, iqn, dev string
	key, victim      uint64
	depth, size      int
	max              time.Duration
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: guesttas up|reserve|write|preempt|prcheck [flags]")
		os.Exit(2)
	}
	var o opts
	var key, victim string
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	fs.StringVar(&o.portal, "portal", "", "target portal IP:PORT (up)")
	fs.StringVar(&o.iqn, "target", "", "target IQN (up)")
	fs.StringVar(&o.dev, "dev", "", "the LUN's block device")
	fs.StringVar(&key, "key", "0", "this node's PR reservation key, hex")
	fs.StringVar(&victim, "victim", "0", "the preempted node's key, hex (preempt)")
	fs.IntVar(&o.depth, "depth", 4, "writers, each with one write in flight (write)")
	fs.IntVar(&o.size, "size", 1<<20, "bytes per write, a multiple of 4096 (write)")
	fs.DurationVar(&o.max, "max", time.Minute, "stop writing after this long even without an error (write)")
	_ = fs.Parse(os.Args[2:])
	var err error
	if o.key, err = hexKey(key); err == nil {
		o.victim, err = hexKey(victim)
	}
	if err != nil {
		fatal(2, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch os.Args[1] {
	case "up":
		err = up(ctx, o)
	case "reserve":
		err = reserve(ctx, o)
	case "write":
		err = write(o)
	case "preempt":
		err = preempt(ctx, o)
	case "prcheck":
		err = prcheck(ctx, o)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fatal(1, err)
	}
}

func hexKey(s string) (uint64, error) {
	k, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("key %q is not hex: %w", s, err)
	}
	return k, nil
}

func fatal(code int, err error) {
	fmt.Fprintln(os.Stderr, "guesttas:", err)
	os.Exit(code)
}

func up(ctx context.Context, o opts) error {
	if o.portal == "" || o.iqn == "" || o.key == 0 {
		return errors.New("up needs -portal, -target and -key")
	}
	ctx = resource.WithEnv(ctx, resource.NewEnv())
	disk, err := resource.Build(resource.Spec{Type: "iscsi", Name: "disk", Params: map[string]string{
		"portal": o.portal, "target": o.iqn, "pr_key": "0x" + strconv.FormatUint(o.key, 16),
	}}, nil)
	if err != nil {
		return err
	}
	if err := disk.Start(ctx); err != nil {
		return err
	}
	dev, _ := resource.EnvFrom(ctx).Get("disk.device")
	fmt.Println("device", dev)
	return nil
}

func reserve(ctx context.Context, o opts) error {
	if o.dev == "" || o.key == 0 {
		return errors.New("reserve needs -dev and -key")
	}
	d, err := sgio.Open(o.dev)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.PRReserve(ctx, o.key, prType); err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	fmt.Printf("reserved %s with key %#x\n", prType, o.key)
	return nil
}

// events writes event lines to the guest's event port, one whole line per
// write so that concurrent writers never interleave.
type events struct {
	mu sync.Mutex
	f  *os.File
}

func openEvents() (*events, error) {
	names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || strings.TrimSpace(string(b)) != vm.EventPortName {
			continue
		}
		f, err := os.OpenFile("/dev/"+filepath.Base(filepath.Dir(n)), os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open event port: %w", err)
		}
		return &events{f: f}, nil
	}
	return nil, fmt.Errorf("no virtio-serial port named %s: boot the guest with an event port", vm.EventPortName)
}

func (e *events) emit(ev vmtas.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.f.WriteString(vmtas.FormatEvent(ev) + "\n")
}

// errText names the errno the kernel gave a write (EBADE for a
// reservation conflict, EIO for most else).
func errText(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s (%s)", unix.ErrnoName(errno), errno.Error())
	}
	return err.Error()
}

func write(o opts) error {
	if o.dev == "" || o.depth < 1 || o.size < 4096 || o.size%4096 != 0 {
		return errors.New("write needs -dev, -depth >= 1 and -size a multiple of 4096")
	}
	ev, err := openEvents()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(o.dev, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// Each writer cycles over its own 16 writes' worth of the disk.
	region := int64(o.size) * 16
	deadline := time.Now().Add(o.max)
	var wg sync.WaitGroup
	results := make([]string, o.depth)
	for w := range o.depth {
		wg.Go(func() {
			// O_DIRECT needs an aligned buffer: mmap gives a page.
			buf, err := unix.Mmap(-1, 0, o.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
			if err != nil {
				results[w] = "mmap: " + err.Error()
				ev.emit(vmtas.Event{Kind: vmtas.KindWriterExit, Writer: w})
				return
			}
			defer unix.Munmap(buf)
			for i := range buf {
				buf[i] = byte(w + 1)
			}
			n := 0
			for ; time.Now().Before(deadline); n++ {
				ev.emit(vmtas.Event{Kind: vmtas.KindWriteStart, Writer: w, Seq: n})
				_, err := f.WriteAt(buf, int64(w)*region+int64(n%16)*int64(o.size))
				ev.emit(vmtas.Event{Kind: vmtas.KindWriteDone, Writer: w, Seq: n, Err: errText(err)})
				if err != nil {
					results[w] = fmt.Sprintf("stopped at write %d: %s", n, errText(err))
					break
				}
			}
			if results[w] == "" {
				results[w] = fmt.Sprintf("%d writes, no error within %s", n, o.max)
			}
			ev.emit(vmtas.Event{Kind: vmtas.KindWriterExit, Writer: w})
		})
	}
	wg.Wait()
	for w, r := range results {
		fmt.Printf("writer %d: %s\n", w, r)
	}
	return nil
}

func preempt(ctx context.Context, o opts) error {
	if o.dev == "" || o.key == 0 || o.victim == 0 {
		return errors.New("preempt needs -dev, -key and -victim")
	}
	ev, err := openEvents()
	if err != nil {
		return err
	}
	d, err := sgio.Open(o.dev)
	if err != nil {
		return err
	}
	defer d.Close()
	ev.emit(vmtas.Event{Kind: vmtas.KindPreemptSent})
	start := time.Now()
	err = d.PRPreemptAndAbort(ctx, o.key, o.victim, prType)
	took := time.Since(start)
	ev.emit(vmtas.Event{Kind: vmtas.KindPreemptDone, Err: errText(err)})
	if err != nil {
		return fmt.Errorf("preempt and abort: %w", err)
	}
	fmt.Printf("preempt and abort of %#x ok in %s\n", o.victim, took.Round(time.Microsecond))
	return nil
}

// prcheck sends each command once through Do: no retry of a unit
// attention, which is what must not be left for B after A's aborts.
func prcheck(ctx context.Context, o opts) error {
	if o.dev == "" || o.key == 0 {
		return errors.New("prcheck needs -dev and -key")
	}
	d, err := sgio.Open(o.dev)
	if err != nil {
		return err
	}
	defer d.Close()
	var errs []error
	in := func(name string, sa byte, decode func([]byte) (string, error)) {
		cdb := wscsi.PRInCDB(sa, 8+8*32)
		buf := make([]byte, 8+8*32)
		n, err := d.Do(ctx, cdb[:], sgio.DirFromDev, buf)
		var s string
		if err == nil {
			s, err = decode(buf[:n])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			fmt.Printf("%s FAILED: %v\n", name, err)
			return
		}
		fmt.Printf("%s ok: %s\n", name, s)
	}
	in("READ KEYS", wscsi.PRInReadKeys, func(b []byte) (string, error) {
		k, err := initiator.DecodePRKeys(b)
		return fmt.Sprintf("generation %d keys %x", k.Generation, k.Keys), err
	})
	in("READ RESERVATION", wscsi.PRInReadReservation, func(b []byte) (string, error) {
		r, err := initiator.DecodePRReservation(b)
		return fmt.Sprintf("%+v", r), err
	})
	param := wscsi.PROutParams(o.key, o.key, 0, nil)
	cdb := wscsi.PROutCDB(byte(initiator.PROutRegister), 0, uint32(len(param)))
	if _, err := d.Do(ctx, cdb[:], sgio.DirToDev, param); err != nil {
		errs = append(errs, fmt.Errorf("REGISTER: %w", err))
		fmt.Printf("REGISTER FAILED: %v\n", err)
	} else {
		fmt.Printf("REGISTER ok: key %#x again\n", o.key)
	}
	return errors.Join(errs...)
}
