package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/scsi/pr"
	"github.com/tandem-ha/tandem/target/scsi/pr/prfile"
)

// Check reports what Start would refuse in cfg, without opening anything
// for writing, taking a lock or creating a file, so that it can run beside
// the daemon that serves cfg (tandem-target --check before a restart):
// every LUN's backing exists (or has a size, so Start creates it), is a
// regular file or a block device this process can read, an lv: backing
// resolves to its device, and a reservation state file, where one exists,
// is whole. cfg has passed config.Load. lv nil means lvm.New's defaults.
func Check(ctx context.Context, cfg *config.Config, lv *lvm.Client) error {
	if lv == nil {
		lv = lvm.New(lvm.Options{})
	}
	var errs []error
	for _, t := range cfg.Targets {
		for _, l := range t.LUNs {
			if err := checkLUN(ctx, cfg, t.Name, l, lv); err != nil {
				errs = append(errs, fmt.Errorf("target %s lun %d: %w", t.Name, l.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

func checkLUN(ctx context.Context, cfg *config.Config, target string, l config.LUN, lv *lvm.Client) error {
	path := l.Path
	if l.LV != "" {
		vg, name, _ := strings.Cut(l.LV, "/")
		dev, err := lv.Device(ctx, vg, name)
		if err != nil {
			if l.Wait > 0 && missing(err) {
				return nil // Start waits for it
			}
			return fmt.Errorf("lv %s: %w", l.LV, err)
		}
		path = dev.Path
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && (l.Wait > 0 || (l.Size > 0 && l.LV == "")):
		// Start waits for it, or creates a sparse file of that size.
	case err != nil:
		return fmt.Errorf("%w (give the LUN a size to create a sparse file, or point path at an existing file or device)", err)
	case !st.Mode().IsRegular() && (st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0):
		return fmt.Errorf("%s is neither a regular file nor a block device: point path at a file or a block device", path)
	default:
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%w (the daemon opens it with its own permissions: fix the owner or mode)", err)
		}
		_ = f.Close()
	}
	if cfg.StateDir == "" {
		return nil
	}
	state := prStateFile(cfg.StateDir, target, l.ID)
	b, err := prfile.Load(filepath.Dir(state), filepath.Base(state))
	if err != nil {
		return err
	}
	if b != nil {
		if err := pr.NewConfig(pr.Config{}).UnmarshalBinary(b); err != nil {
			return fmt.Errorf("reservation state file %s: %w; move it away deliberately to start the LU with no registrations (fences recorded in it are then lost)", state, err)
		}
	}
	return nil
}
