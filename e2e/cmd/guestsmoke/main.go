// Command guestsmoke is the guest side of `make e2e-vm-smoke`; it runs
// inside a lab VM (package e2e/vm) with the real kernel initiator and the
// agent's own resources, as a node would:
//
//	guestsmoke up    -portal IP:PORT -target IQN -user U -secret-file F -key HEX -dir /mnt/data
//	guestsmoke down  -portal IP:PORT -target IQN -dir /mnt/data
//	guestsmoke login -portal IP:PORT -target IQN -user U -secret-file F
//
// up starts the `iscsi` resource (discovery, CHAP node record, login
// through iscsiadm, the LUN's block device, the fencing key registered
// through SG_IO), makes an ext4 filesystem when the disk has none, starts
// the `filesystem` resource on ${disk.device}, writes and fsyncs a file and
// reads the keys back through SG_IO. down stops the filesystem and the
// iscsi resource (unmount, logout). login starts only the iscsi resource
// (the wrong-secret check) and exits 3 when iscsiadm reports an
// authorization failure (exit 24). Each phase prints "phase NAME ok TOOK".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/ha/resource"
	_ "github.com/tandem-ha/tandem/ha/resource/filesystem" // type filesystem
	_ "github.com/tandem-ha/tandem/ha/resource/iscsi"      // type iscsi
	"github.com/tandem-ha/tandem/initiator/iscsiadm"
	"github.com/tandem-ha/tandem/initiator/sgio"
)

type opts struct {
	portal, iqn, user, secretFile, dir, file string
	key                                      uint64
	verbose                                  bool
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: guestsmoke up|down|login [flags]")
		os.Exit(2)
	}
	var o opts
	var key string
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	fs.StringVar(&o.portal, "portal", "", "target portal IP:PORT")
	fs.StringVar(&o.iqn, "target", "", "target IQN")
	fs.StringVar(&o.user, "user", "", "CHAP user name")
	fs.StringVar(&o.secretFile, "secret-file", "", "file holding the CHAP secret (mode 0600)")
	fs.StringVar(&key, "key", "0", "PR reservation key, hex; 0 registers none")
	fs.StringVar(&o.dir, "dir", "/mnt/data", "mount point")
	fs.StringVar(&o.file, "file", "hello.txt", "file written below -dir")
	fs.BoolVar(&o.verbose, "v", false, "log the resources' steps to stderr")
	_ = fs.Parse(os.Args[2:])
	k, err := strconv.ParseUint(strings.TrimPrefix(key, "0x"), 16, 64)
	if err != nil {
		fatal(2, fmt.Errorf("-key %q is not hex: %w", key, err))
	}
	o.key = k
	if o.portal == "" || o.iqn == "" {
		fatal(2, errors.New("-portal and -target are required"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// One Env per run, as the agent keeps one per group: the iscsi
	// resource publishes disk.device, the filesystem reads it.
	ctx = resource.WithEnv(ctx, resource.NewEnv())
	switch os.Args[1] {
	case "up":
		err = up(ctx, o)
	case "down":
		err = down(ctx, o)
	case "login":
		err = login(ctx, o)
		if errors.Is(err, iscsiadm.ExitAuthFailed) {
			fatal(3, err)
		}
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fatal(1, err)
	}
}

func fatal(code int, err error) {
	fmt.Fprintln(os.Stderr, "guestsmoke:", err)
	os.Exit(code)
}

// phase runs f and prints its outcome and duration.
func phase(name string, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("phase %s ok %s\n", name, time.Since(start).Round(time.Millisecond))
	return nil
}

func logger(o opts) *slog.Logger {
	if !o.verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// resources builds the group the way the agent's config would declare it.
func resources(o opts) (disk, data resource.Resource, err error) {
	p := map[string]string{"portal": o.portal, "target": o.iqn}
	if o.user != "" {
		p["user"], p["secret_file"] = o.user, o.secretFile
	}
	if o.key != 0 {
		p["pr_key"] = "0x" + strconv.FormatUint(o.key, 16)
	}
	if disk, err = resource.Build(resource.Spec{Type: "iscsi", Name: "disk", Params: p}, logger(o)); err != nil {
		return nil, nil, err
	}
	data, err = resource.Build(resource.Spec{Type: "filesystem", Name: "data", Params: map[string]string{
		"device": "${disk.device}", "directory": o.dir, "fstype": "ext4",
	}}, logger(o))
	return disk, data, err
}

func login(ctx context.Context, o opts) error {
	disk, _, err := resources(o)
	if err != nil {
		return err
	}
	return phase("iscsi start (discovery, CHAP, login, device)", func() error { return disk.Start(ctx) })
}

// hasExt (ext2/3/4) reads the superblock magic 0xEF53 at byte 1080.
func hasExt(dev string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b := make([]byte, 2)
	if _, err := f.ReadAt(b, 1080); err != nil {
		return false, fmt.Errorf("read superblock of %s: %w", dev, err)
	}
	return b[0] == 0x53 && b[1] == 0xef, nil
}

func up(ctx context.Context, o opts) error {
	disk, data, err := resources(o)
	if err != nil {
		return err
	}
	if err := phase("iscsi start (discovery, CHAP, login, device, PR register)", func() error { return disk.Start(ctx) }); err != nil {
		return err
	}
	dev, _ := resource.EnvFrom(ctx).Get("disk.device")
	fmt.Println("device", dev)
	if err := phase("mkfs.ext4 (first time only)", func() error {
		ok, err := hasExt(dev)
		if err != nil {
			return err
		}
		if ok {
			fmt.Println("mkfs skipped: the disk has an ext filesystem")
			return nil
		}
		out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", dev).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mkfs.ext4 %s: %w: %s", dev, err, out)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := phase("filesystem start (fsck, mount)", func() error { return data.Start(ctx) }); err != nil {
		return err
	}
	path := filepath.Join(o.dir, o.file)
	if b, err := os.ReadFile(path); err == nil {
		fmt.Printf("found %s: %s", path, b)
	}
	if err := phase("write and fsync", func() error { return writeSync(path) }); err != nil {
		return err
	}
	return phase("read keys through SG_IO", func() error {
		d, err := sgio.Open(dev)
		if err != nil {
			return err
		}
		defer d.Close()
		keys, err := d.PRReadKeys(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("keys %x\n", keys.Keys)
		for _, k := range keys.Keys {
			if k == o.key {
				return nil
			}
		}
		return fmt.Errorf("key %#x not registered: %x", o.key, keys.Keys)
	})
}

func writeSync(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "written by guestsmoke at %s\n", time.Now().UTC().Format(time.RFC3339)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

func down(ctx context.Context, o opts) error {
	disk, data, err := resources(o)
	if err != nil {
		return err
	}
	// A new process: publish the device again for the filesystem, as the
	// agent's group Env would still hold it.
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t := iscsiadm.Target{Portal: iscsiadm.NormalizePortal(o.portal), Target: o.iqn}
	dev, err := iscsiadm.New("", nil).WaitDevice(dctx, t, 0)
	if err != nil {
		return err
	}
	resource.EnvFrom(ctx).Set("disk.device", dev)
	// A restarted agent probes its resources before it stops them; the
	// probe also resolves ${disk.device} (Stop alone does not, yet).
	if err := phase("filesystem monitor", func() error {
		st, err := data.Monitor(ctx)
		if err == nil && st != resource.StatusRunning {
			err = fmt.Errorf("filesystem is %s, want running", st)
		}
		return err
	}); err != nil {
		return err
	}
	if err := phase("filesystem stop (umount)", func() error { return data.Stop(ctx) }); err != nil {
		return err
	}
	return phase("iscsi stop (logout)", func() error { return disk.Stop(ctx) })
}
