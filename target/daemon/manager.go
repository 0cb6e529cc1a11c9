// Package daemon assembles a running tandem-target from its config: it
// opens the backing stores (locked while served), builds the logical
// units with their reservation state files, registers the targets with
// the iSCSI fabric, and serves the admin API's Service on top of them.
//
// The config is the one source of truth. Every change, whether it comes
// through the admin API or from a file edited by hand and reloaded on
// SIGHUP, goes the same way:
//
//  1. a candidate config is built (the current one plus the change, or
//     the file as read again) and validated as a whole by config.Validate;
//  2. apply moves the running targets from the current config to the
//     candidate, undoing what it did when a step fails;
//  3. an API change is written back with config.Save before it is
//     answered; a write that fails undoes the change.
package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/audit"
	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/target/scsi"
)

// Options configure a Manager.
type Options struct {
	// ConfigPath is the file changes are written back to; "" keeps them
	// in memory (tests).
	ConfigPath string
	// LVM resolves lv: backings; nil means lvm.New(lvm.Options{}).
	LVM *lvm.Client
	// WaitPoll is how often a LUN with wait: retries its backing. 0 means
	// one second.
	WaitPoll time.Duration
	Log      *slog.Logger
}

// Manager owns the daemon's targets and LUs and implements admin.Service over
// an iscsi.Server.
type Manager struct {
	srv *iscsi.Server
	log *slog.Logger
	o   Options

	mu      sync.Mutex
	cfg     *config.Config // what runs now
	fileSum [32]byte       // of ConfigPath as last read or written
	targets map[string]*managedTarget
}

type managedTarget struct {
	cfg  config.Target
	scsi *scsi.Target
	luns map[uint64]*managedLUN
}

type managedLUN struct {
	cfg config.LUN
	// path is the file or device served: cfg.Path, or the LV's device.
	path string
	// created is set when opening made the file: a failed change removes it.
	created bool
	lu      *scsi.LU
	be      backstore.Backend
	// audit is the LU's write witness when cfg.Audit is set.
	audit *audit.Writer
	// cache is the volatile cache under the LU when cfg.Cache is
	// volatile (the power-cut target).
	cache *backstore.Volatile
	// faulty injects the lab's faults when cfg.Faults is set.
	faulty *backstore.Faulty
}

// close closes the LU, then its audit stream.
func (l *managedLUN) close() error {
	err := l.lu.Close()
	if l.audit != nil {
		l.lu.SetAuditor(nil)
		err = errors.Join(err, l.audit.Close())
	}
	return err
}

// NewManager returns a Manager serving through srv, changes kept in memory.
func NewManager(srv *iscsi.Server, logger *slog.Logger) *Manager {
	return New(srv, Options{Log: logger})
}

// New returns a Manager serving through srv with no targets yet; Start
// serves a config.
func New(srv *iscsi.Server, o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LVM == nil {
		o.LVM = lvm.New(lvm.Options{Log: o.Log})
	}
	if o.WaitPoll <= 0 {
		o.WaitPoll = time.Second
	}
	return &Manager{srv: srv, log: o.Log, o: o, cfg: config.DefaultConfig(), targets: map[string]*managedTarget{}}
}

// SetStateDir sets the directory of persistent state (config.StateDir);
// call it before AddTarget. LUs opened without one refuse APTPL.
func (m *Manager) SetStateDir(dir string) {
	m.mu.Lock()
	m.cfg.StateDir = dir
	m.mu.Unlock()
}

// Start serves cfg: every LUN is opened (waiting up to its wait: for a
// backing not there yet) or Start fails with every LUN that could not be,
// leaving nothing open. A daemon must not serve a target with a LUN
// missing: initiators would see another disk at that LUN or none.
func (m *Manager) Start(ctx context.Context, cfg *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	empty := cfg.Clone()
	empty.Targets = nil
	m.cfg = empty
	if err := m.apply(ctx, cfg); err != nil {
		return err
	}
	m.cfg = cfg
	if m.o.ConfigPath != "" {
		if b, err := os.ReadFile(m.o.ConfigPath); err == nil {
			m.fileSum = config.Fingerprint(b)
		}
	}
	m.srv.SetDiscoveryAuth(AuthFromCHAP(cfg.Discovery.CHAP))
	return nil
}

// prStateFile is where the reservation state of a LUN lives: a readable,
// file-system safe form of the target name plus a hash of the exact name,
// so two names that sanitize alike cannot share a file.
func prStateFile(stateDir, target string, lun uint64) string {
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(stateDir, "pr", fmt.Sprintf("%s-%x-lun%d.state", safeName(target), sum[:4], lun))
}

func safeName(s string) string {
	safe := []byte(strings.ToLower(s))
	for i, c := range safe {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			safe[i] = '_'
		}
	}
	return string(safe)
}

// AuthFromCHAP converts configured CHAP credentials to login.Auth.
func AuthFromCHAP(c config.CHAP) login.Auth {
	var a login.Auth
	if c.User != "" {
		a.Incoming = []login.Credentials{{User: c.User, Secret: c.Secret}}
	}
	if c.MutualUser != "" {
		a.Outgoing = &login.Credentials{User: c.MutualUser, Secret: c.MutualSecret}
	}
	return a
}

// AddTarget serves t in addition to what runs: all its LUNs open, or an
// error and nothing served.
func (m *Manager) AddTarget(t config.Target) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.cfg.Clone()
	next.Targets = append(next.Targets, t)
	next.ApplyDefaults()
	if err := m.apply(context.Background(), next); err != nil {
		return err
	}
	m.cfg = next
	return nil
}

// brokenFUAEnv names the test-only switch that makes a volatile cache
// ignore FUA and SYNCHRONIZE CACHE (backstore.Options.TestBrokenSync):
// the deliberately broken build the durability checker must catch.
const brokenFUAEnv = "TANDEM_TEST_BROKEN_FUA"

// openLUN opens l's backing and LU and maps it in mt.
func (m *Manager) openLUN(ctx context.Context, mt *managedTarget, l config.LUN) error {
	if _, ok := mt.luns[l.ID]; ok {
		return fmt.Errorf("lun %d: %w: already exists", l.ID, admin.ErrConflict)
	}
	ml, err := m.openBacking(ctx, l)
	if err != nil {
		return fmt.Errorf("target %s lun %d: %w", mt.cfg.Name, l.ID, err)
	}
	fail := func(err error) error {
		_ = ml.be.Close()
		if ml.created {
			_ = os.Remove(ml.path) // nothing half-made is left
		}
		return fmt.Errorf("target %s lun %d: %w", mt.cfg.Name, l.ID, err)
	}
	ml.lu, err = m.newLU(mt.cfg.Name, l, ml.be)
	if err != nil {
		return fail(err)
	}
	if l.Audit != "" {
		if ml.audit, err = audit.OpenFile(l.Audit, 0); err != nil {
			_ = ml.lu.Close()
			return fail(err)
		}
		ml.lu.SetAuditor(ml.audit)
	}
	if err := mt.scsi.AddLU(l.ID, ml.lu); err != nil {
		_ = ml.close()
		return fail(fmt.Errorf("%w: %w", admin.ErrConflict, err))
	}
	mt.luns[l.ID] = ml
	m.log.Info("lun added", "target", mt.cfg.Name, "lun", l.ID, "path", ml.path, "lv", l.LV, "size", ml.lu.Size(),
		"audit", l.Audit, "cache", l.Cache)
	return nil
}

// openBacking opens and locks the file, device or LV under l, waiting up
// to l.Wait for one that is not there yet.
func (m *Manager) openBacking(ctx context.Context, l config.LUN) (*managedLUN, error) {
	opts := backstore.Options{ReadOnly: l.ReadOnly, Create: l.Size > 0 && l.LV == "", Size: l.Size,
		VolatileCache: l.Cache == config.CacheVolatile, Lock: true}
	if opts.VolatileCache && os.Getenv(brokenFUAEnv) == "1" {
		opts.TestBrokenSync = true
		m.log.Warn("BROKEN BUILD FOR TESTS: FUA and SYNCHRONIZE CACHE do not flush the volatile cache",
			"env", brokenFUAEnv, "lun", l.ID)
	}
	deadline := time.Now().Add(l.Wait)
	for waited := false; ; waited = true {
		ml, err := m.tryOpen(ctx, l, opts)
		if err == nil || !missing(err) || l.Wait <= 0 || !time.Now().Before(deadline) {
			if err != nil && waited {
				err = fmt.Errorf("%w (waited %s, the LUN's wait)", err, l.Wait)
			}
			return ml, err
		}
		if !waited {
			m.log.Warn("backing not there yet: waiting", "lun", l.ID, "path", l.Path, "lv", l.LV, "wait", l.Wait, "err", err)
		}
		t := time.NewTimer(min(m.o.WaitPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (stopped while waiting for it)", err)
		case <-t.C:
		}
	}
}

// missing reports errors that waiting may cure: a path or LV not there
// yet, an LV not active yet.
func missing(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, lvm.ErrNoDevice) || errors.Is(err, lvm.ErrNotFound)
}

func (m *Manager) tryOpen(ctx context.Context, l config.LUN, opts backstore.Options) (*managedLUN, error) {
	ml := &managedLUN{cfg: l, path: l.Path}
	if l.LV != "" {
		vg, name, _ := strings.Cut(l.LV, "/")
		dev, err := m.o.LVM.Device(ctx, vg, name)
		if err != nil {
			return nil, fmt.Errorf("lv %s: %w", l.LV, err)
		}
		ml.path = dev.Path
	} else if _, err := os.Stat(l.Path); errors.Is(err, os.ErrNotExist) && opts.Create {
		ml.created = true
	}
	be, err := backstore.Open(ml.path, opts)
	if err != nil {
		if ml.created {
			_ = os.Remove(ml.path)
		}
		return nil, err
	}
	ml.be = be
	ml.cache, _ = be.(*backstore.Volatile)
	if l.Faults {
		ml.faulty = backstore.NewFaulty(be, nil)
		ml.be = ml.faulty.Backend()
	}
	return ml, nil
}

// newLU builds the LU of l over be, restoring the LUN's reservation state.
func (m *Manager) newLU(target string, l config.LUN, be backstore.Backend) (*scsi.LU, error) {
	serial := l.Serial
	if serial == "" {
		serial = config.DefaultSerial(target, l.ID)
	}
	stateFile := ""
	if m.cfg.StateDir != "" {
		stateFile = prStateFile(m.cfg.StateDir, target, l.ID)
		if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
			return nil, fmt.Errorf("reservation state directory: %w", err)
		}
	}
	bs := l.BlockSize
	if bs == 0 {
		bs = config.DefaultBlockSize
	}
	lu, err := scsi.NewLU(scsi.LUConfig{BlockSize: bs, Serial: serial, ReadOnly: l.ReadOnly,
		Thin: l.Thin, WriteCache: l.WriteCache, StateFile: stateFile}, be)
	if err != nil {
		return nil, err
	}
	return lu, nil
}

// closeLUN unmaps and closes a LUN; removeCreated also deletes a file
// this Manager made for it (undoing an add).
func (m *Manager) closeLUN(mt *managedTarget, id uint64, removeCreated bool) error {
	l, ok := mt.luns[id]
	if !ok {
		return nil
	}
	_, _ = mt.scsi.RemoveLU(id)
	delete(mt.luns, id)
	err := l.close()
	if removeCreated && l.created {
		_ = os.Remove(l.path)
	}
	return err
}

// Close closes every LU; call it after the iSCSI server has stopped.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, mt := range m.targets {
		for id := range mt.luns {
			if err := m.closeLUN(mt, id, false); err != nil {
				errs = append(errs, fmt.Errorf("close %s lun %d: %w", mt.cfg.Name, id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// randomSuffix names a new secret file, so that a rotation never
// overwrites the file the current config still names.
func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
