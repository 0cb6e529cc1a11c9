package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"

	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/target/scsi"
)

// Manager owns the daemon's targets and LUs and implements Service over
// an iscsi.Server.
type Manager struct {
	srv *iscsi.Server
	log *slog.Logger

	mu      sync.Mutex
	targets map[string]*managedTarget
}

type managedTarget struct {
	name, alias string
	scsi        *scsi.Target
	luns        map[uint64]*managedLUN
}

type managedLUN struct {
	cfg config.LUN
	lu  *scsi.LU
}

// NewManager returns a Manager serving through srv.
func NewManager(srv *iscsi.Server, logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{srv: srv, log: logger, targets: map[string]*managedTarget{}}
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
			m.closeTarget(mt)
			return fmt.Errorf("target %s: %w", t.Name, err)
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
		return fmt.Errorf("lun %d: %w: already exists", l.ID, ErrConflict)
	}
	be, err := backstore.Open(l.Path, backstore.Options{
		ReadOnly: l.ReadOnly, Create: l.Size > 0, Size: l.Size,
	})
	if err != nil {
		return fmt.Errorf("lun %d: open %s: %w", l.ID, l.Path, err)
	}
	serial := l.Serial
	if serial == "" {
		serial = config.DefaultSerial(mt.name, l.ID)
	}
	lu, err := scsi.NewLU(scsi.LUConfig{BlockSize: l.BlockSize, Serial: serial, ReadOnly: l.ReadOnly,
		Thin: l.Thin, WriteCache: l.WriteCache}, be)
	if err != nil {
		_ = be.Close()
		return fmt.Errorf("lun %d: %w", l.ID, err)
	}
	if err := mt.scsi.AddLU(l.ID, lu); err != nil {
		_ = lu.Close()
		return fmt.Errorf("lun %d: %w: %w", l.ID, ErrConflict, err)
	}
	mt.luns[l.ID] = &managedLUN{cfg: l, lu: lu}
	m.log.Info("lun added", "target", mt.name, "lun", l.ID, "path", l.Path, "size", lu.Size())
	return nil
}

func (m *Manager) closeTarget(mt *managedTarget) {
	for id, l := range mt.luns {
		_, _ = mt.scsi.RemoveLU(id)
		_ = l.lu.Close()
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
			if err := l.lu.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s lun %d: %w", mt.name, id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Targets implements Service.
func (m *Manager) Targets() []Target {
	sessions := m.srv.Sessions()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Target, 0, len(m.targets))
	for _, mt := range m.targets {
		t := Target{Name: mt.name, Alias: mt.alias, LUNs: []LUN{}, Sessions: []iscsi.SessionInfo{}}
		for id, l := range mt.luns {
			wc := l.cfg.WriteCache
			t.LUNs = append(t.LUNs, LUN{ID: id, Path: l.cfg.Path, Size: l.lu.Size(), BlockSize: l.cfg.BlockSize,
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
		return nil, fmt.Errorf("target %q: %w", name, ErrNotFound)
	}
	return mt, nil
}

// AddLUN implements Service.
func (m *Manager) AddLUN(target string, l LUN) error {
	if l.Path == "" {
		return fmt.Errorf("%w: lun needs a path", ErrInvalid)
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

// RemoveLUN implements Service.
func (m *Manager) RemoveLUN(target string, id uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.target(target)
	if err != nil {
		return err
	}
	l, ok := mt.luns[id]
	if !ok {
		return fmt.Errorf("lun %d of %s: %w", id, target, ErrNotFound)
	}
	if _, err := mt.scsi.RemoveLU(id); err != nil {
		return fmt.Errorf("remove lun %d: %w", id, err)
	}
	delete(mt.luns, id)
	return l.lu.Close()
}

// ResizeLUN grows a file-backed LUN: the file is extended, then the LU
// is reopened so READ CAPACITY reports the new size.
func (m *Manager) ResizeLUN(target string, id uint64, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.target(target)
	if err != nil {
		return err
	}
	l, ok := mt.luns[id]
	if !ok {
		return fmt.Errorf("lun %d of %s: %w", id, target, ErrNotFound)
	}
	if size < l.lu.Size() {
		return fmt.Errorf("%w: size %d is below the current %d; shrinking would lose data", ErrInvalid, size, l.lu.Size())
	}
	fi, err := os.Stat(l.cfg.Path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", l.cfg.Path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file; resize the device itself", ErrInvalid, l.cfg.Path)
	}
	if err := os.Truncate(l.cfg.Path, size); err != nil {
		return fmt.Errorf("extend %s: %w", l.cfg.Path, err)
	}
	if _, err := mt.scsi.RemoveLU(id); err != nil {
		return fmt.Errorf("remove lun %d for resize: %w", id, err)
	}
	delete(mt.luns, id)
	_ = l.lu.Close()
	cfg := l.cfg
	cfg.Size = 0
	if err := m.openLUN(mt, cfg); err != nil {
		return fmt.Errorf("reopen after resize: %w", err)
	}
	mt.luns[id].cfg.Size = l.cfg.Size
	return nil
}

// SetCHAP implements Service.
func (m *Manager) SetCHAP(target string, c CHAP) error {
	if (c.User == "") != (c.Secret == "") {
		return fmt.Errorf("%w: user and secret go together", ErrInvalid)
	}
	if c.MutualUser != "" && (c.User == "" || c.MutualSecret == "" || c.MutualSecret == c.Secret) {
		return fmt.Errorf("%w: mutual CHAP needs one-way CHAP and a different secret", ErrInvalid)
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
