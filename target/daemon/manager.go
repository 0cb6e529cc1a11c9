// Package daemon assembles a running tandem-target from its config: it
// opens the backing stores, builds the logical units with their
// reservation state files, registers the targets with the iSCSI fabric,
// and serves the admin API's Service on top of them.
package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/audit"
	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/target/scsi"
)

// Manager owns the daemon's targets and LUs and implements admin.Service over
// an iscsi.Server.
type Manager struct {
	srv *iscsi.Server
	log *slog.Logger

	mu      sync.Mutex
	targets map[string]*managedTarget
	// stateDir holds <stateDir>/pr/*.state, the persistent reservation
	// state of each LUN; empty means LUs cannot persist reservations.
	stateDir string
}

type managedTarget struct {
	name, alias string
	scsi        *scsi.Target
	luns        map[uint64]*managedLUN
}

type managedLUN struct {
	cfg config.LUN
	lu  *scsi.LU
	// audit is the LU's write witness when cfg.Audit is set.
	audit *audit.Writer
	// cache is the volatile cache under the LU when cfg.Cache is
	// volatile (the power-cut target).
	cache *backstore.Volatile
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

// NewManager returns a Manager serving through srv.
func NewManager(srv *iscsi.Server, logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{srv: srv, log: logger, targets: map[string]*managedTarget{}}
}

// SetStateDir sets the directory of persistent state (config.StateDir);
// call it before AddTarget. LUs opened without one refuse APTPL.
func (m *Manager) SetStateDir(dir string) {
	m.mu.Lock()
	m.stateDir = dir
	m.mu.Unlock()
}

// prStateFile is where the reservation state of a LUN lives: a readable,
// file-system safe form of the target name plus a hash of the exact name,
// so two names that sanitize alike cannot share a file.
func prStateFile(stateDir, target string, lun uint64) string {
	safe := []byte(strings.ToLower(target))
	for i, c := range safe {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			safe[i] = '_'
		}
	}
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(stateDir, "pr", fmt.Sprintf("%s-%x-lun%d.state", safe, sum[:4], lun))
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

// AddTarget opens the LUNs of t and makes the target reachable.
func (m *Manager) AddTarget(t config.Target) error {
	mt := &managedTarget{name: t.Name, alias: t.Alias,
		scsi: scsi.NewTarget(t.Name, m.log), luns: map[uint64]*managedLUN{}}
	for _, l := range t.LUNs {
		if err := m.openLUN(mt, l); err != nil {
			// One bad LUN (say, a damaged reservation state file that
			// needs an operator) must not take the others offline.
			m.log.Error("lun not served", "target", t.Name, "lun", l.ID, "err", err)
		}
	}
	info := login.TargetInfo{Name: t.Name, Alias: t.Alias, Auth: AuthFromCHAP(t.CHAP), Initiators: t.Initiators}
	if err := m.srv.AddTarget(info, mt.scsi); err != nil {
		m.closeTarget(mt)
		return err
	}
	m.mu.Lock()
	m.targets[t.Name] = mt
	m.mu.Unlock()
	return nil
}

func (m *Manager) openLUN(mt *managedTarget, l config.LUN) error {
	if _, ok := mt.luns[l.ID]; ok {
		return fmt.Errorf("lun %d: %w: already exists", l.ID, admin.ErrConflict)
	}
	lu, cache, err := m.newLU(mt, l)
	if err != nil {
		return err
	}
	ml := &managedLUN{cfg: l, lu: lu, cache: cache}
	if l.Audit != "" {
		if ml.audit, err = audit.OpenFile(l.Audit, 0); err != nil {
			_ = lu.Close()
			return fmt.Errorf("lun %d: %w", l.ID, err)
		}
		lu.SetAuditor(ml.audit)
	}
	if err := mt.scsi.AddLU(l.ID, lu); err != nil {
		_ = ml.close()
		return fmt.Errorf("lun %d: %w: %w", l.ID, admin.ErrConflict, err)
	}
	mt.luns[l.ID] = ml
	m.log.Info("lun added", "target", mt.name, "lun", l.ID, "path", l.Path, "size", lu.Size(),
		"audit", l.Audit, "cache", l.Cache)
	return nil
}

// brokenFUAEnv names the test-only switch that makes a volatile cache
// ignore FUA and SYNCHRONIZE CACHE (backstore.Options.TestBrokenSync):
// the deliberately broken build the durability checker must catch.
const brokenFUAEnv = "TANDEM_TEST_BROKEN_FUA"

// newLU opens the backend of l and builds its LU, restoring the LUN's
// reservation state. cache is the backend when it is a volatile cache.
func (m *Manager) newLU(mt *managedTarget, l config.LUN) (lu *scsi.LU, cache *backstore.Volatile, err error) {
	opts := backstore.Options{ReadOnly: l.ReadOnly, Create: l.Size > 0, Size: l.Size,
		VolatileCache: l.Cache == config.CacheVolatile}
	if opts.VolatileCache && os.Getenv(brokenFUAEnv) == "1" {
		opts.TestBrokenSync = true
		m.log.Warn("BROKEN BUILD FOR TESTS: FUA and SYNCHRONIZE CACHE do not flush the volatile cache",
			"env", brokenFUAEnv, "lun", l.ID)
	}
	be, err := backstore.Open(l.Path, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("lun %d: open %s: %w", l.ID, l.Path, err)
	}
	cache, _ = be.(*backstore.Volatile)
	serial := l.Serial
	if serial == "" {
		serial = config.DefaultSerial(mt.name, l.ID)
	}
	stateFile := ""
	if m.stateDir != "" {
		stateFile = prStateFile(m.stateDir, mt.name, l.ID)
		if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
			_ = be.Close()
			return nil, nil, fmt.Errorf("lun %d: reservation state directory: %w", l.ID, err)
		}
	}
	lu, err = scsi.NewLU(scsi.LUConfig{BlockSize: l.BlockSize, Serial: serial, ReadOnly: l.ReadOnly,
		Thin: l.Thin, WriteCache: l.WriteCache, StateFile: stateFile}, be)
	if err != nil {
		_ = be.Close()
		return nil, nil, fmt.Errorf("lun %d: %w", l.ID, err)
	}
	return lu, cache, nil
}

func (m *Manager) closeTarget(mt *managedTarget) {
	for id, l := range mt.luns {
		_, _ = mt.scsi.RemoveLU(id)
		_ = l.close()
	}
}

// Close closes every LU; call it after the iSCSI server has stopped.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, mt := range m.targets {
		for id, l := range mt.luns {
			_, _ = mt.scsi.RemoveLU(id)
			if err := l.close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s lun %d: %w", mt.name, id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Targets implements admin.Service.
func (m *Manager) Targets() []admin.Target {
	sessions := m.srv.Sessions()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]admin.Target, 0, len(m.targets))
	for _, mt := range m.targets {
		t := admin.Target{Name: mt.name, Alias: mt.alias, LUNs: []admin.LUN{}, Sessions: []iscsi.SessionInfo{}}
		for id, l := range mt.luns {
			wc := l.cfg.WriteCache
			t.LUNs = append(t.LUNs, admin.LUN{ID: id, Path: l.cfg.Path, Size: l.lu.Size(), BlockSize: l.cfg.BlockSize,
				Thin: l.cfg.Thin, WriteCache: &wc, ReadOnly: l.cfg.ReadOnly, Serial: l.cfg.Serial})
		}
		sort.Slice(t.LUNs, func(i, j int) bool { return t.LUNs[i].ID < t.LUNs[j].ID })
		for _, s := range sessions {
			if s.Target == mt.name {
				t.Sessions = append(t.Sessions, s)
			}
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *Manager) target(name string) (*managedTarget, error) {
	mt, ok := m.targets[name]
	if !ok {
		return nil, fmt.Errorf("target %q: %w", name, admin.ErrNotFound)
	}
	return mt, nil
}

// AddLUN implements admin.Service.
func (m *Manager) AddLUN(target string, l admin.LUN) error {
	if l.Path == "" {
		return fmt.Errorf("%w: lun needs a path", admin.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.target(target)
	if err != nil {
		return err
	}
	wc := true
	if l.WriteCache != nil {
		wc = *l.WriteCache
	}
	bs := l.BlockSize
	if bs == 0 {
		bs = 512
	}
	return m.openLUN(mt, config.LUN{ID: l.ID, Path: l.Path, Size: l.Size, BlockSize: bs, Thin: l.Thin,
		WriteCache: wc, ReadOnly: l.ReadOnly, Serial: l.Serial})
}

// RemoveLUN implements admin.Service.
func (m *Manager) RemoveLUN(target string, id uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.target(target)
	if err != nil {
		return err
	}
	l, ok := mt.luns[id]
	if !ok {
		return fmt.Errorf("lun %d of %s: %w", id, target, admin.ErrNotFound)
	}
	if _, err := mt.scsi.RemoveLU(id); err != nil {
		return fmt.Errorf("remove lun %d: %w", id, err)
	}
	delete(mt.luns, id)
	return l.close()
}

// ResizeLUN grows a file-backed LUN: the file is extended, then the LU
// is reopened and swapped in place, keeping its reservations; initiators
// get CAPACITY DATA HAS CHANGED.
func (m *Manager) ResizeLUN(target string, id uint64, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.target(target)
	if err != nil {
		return err
	}
	l, ok := mt.luns[id]
	if !ok {
		return fmt.Errorf("lun %d of %s: %w", id, target, admin.ErrNotFound)
	}
	if size < l.lu.Size() {
		return fmt.Errorf("%w: size %d is below the current %d; shrinking would lose data", admin.ErrInvalid, size, l.lu.Size())
	}
	fi, err := os.Stat(l.cfg.Path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", l.cfg.Path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file; resize the device itself", admin.ErrInvalid, l.cfg.Path)
	}
	if err := os.Truncate(l.cfg.Path, size); err != nil {
		return fmt.Errorf("extend %s: %w", l.cfg.Path, err)
	}
	cfg := l.cfg
	cfg.Size = 0
	if l.cache != nil {
		// The new LU reopens the file: what the old cache holds must be
		// in it first.
		if err := l.cache.Sync(); err != nil {
			return fmt.Errorf("flush the volatile cache before resize: %w", err)
		}
	}
	lu, cache, err := m.newLU(mt, cfg)
	if err != nil {
		return fmt.Errorf("reopen after resize: %w", err)
	}
	if l.audit != nil {
		lu.SetAuditor(l.audit)
	}
	old, err := mt.scsi.ReplaceLU(id, lu)
	if err != nil {
		_ = lu.Close()
		return fmt.Errorf("swap lun %d after resize: %w", id, err)
	}
	l.lu, l.cache = lu, cache
	old.SetAuditor(nil)
	if err := old.Close(); err != nil {
		m.log.Warn("closing the LU replaced by a resize", "target", target, "lun", id, "err", err)
	}
	m.log.Info("lun resized", "target", target, "lun", id, "size", lu.Size())
	return nil
}

// SetCHAP implements admin.Service.
func (m *Manager) SetCHAP(target string, c admin.CHAP) error {
	if (c.User == "") != (c.Secret == "") {
		return fmt.Errorf("%w: user and secret go together", admin.ErrInvalid)
	}
	if c.MutualUser != "" && (c.User == "" || c.MutualSecret == "" || c.MutualSecret == c.Secret) {
		return fmt.Errorf("%w: mutual CHAP needs one-way CHAP and a different secret", admin.ErrInvalid)
	}
	m.mu.Lock()
	_, err := m.target(target)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	auth := AuthFromCHAP(config.CHAP{User: c.User, Secret: []byte(c.Secret),
		MutualUser: c.MutualUser, MutualSecret: []byte(c.MutualSecret)})
	return m.srv.SetTargetAuth(target, auth)
}

var _ admin.Service = (*Manager)(nil)
