package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
)

// configHeader heads a config the daemon wrote back.
const configHeader = "# tandem-target config: the daemon rewrites this file on every admin API change\n" +
	"# (tandemctl); edit it by hand only to then reload (SIGHUP, systemctl reload).\n"

// secrets are the secret files a change writes: path -> secret.
type secrets map[string][]byte

// change runs one admin API change: edit gets a copy of the running
// config to change; the result is validated as a config file is, the
// secret files edit named are written, the change applied and the config
// written back before change returns. Nothing of a failed change stays.
func (m *Manager) change(edit func(c *config.Config) (secrets, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkFileUnchanged(); err != nil {
		return err
	}
	next := m.cfg.Clone()
	newSecrets, err := edit(next)
	if err != nil {
		return err
	}
	if err := next.Validate(); err != nil {
		return fmt.Errorf("%w: %w", admin.ErrInvalid, err)
	}
	drop := func() {
		for p := range newSecrets {
			_ = os.Remove(p)
		}
	}
	for p, s := range newSecrets {
		if err := config.WriteSecret(p, s); err != nil {
			drop()
			return err
		}
	}
	if err := m.apply(context.Background(), next); err != nil {
		drop()
		if errors.Is(err, backstore.ErrLocked) {
			return fmt.Errorf("%w: %w", admin.ErrConflict, err)
		}
		return err
	}
	prev := m.cfg
	if err := m.save(next); err != nil {
		m.cfg = next
		if uerr := m.apply(context.Background(), prev); uerr != nil {
			m.log.Error("undoing a change whose config could not be written", "err", uerr)
		}
		m.cfg = prev
		drop()
		return fmt.Errorf("the change is undone, the config could not be written: %w", err)
	}
	m.cfg = next
	m.dropOldSecrets(prev, next)
	return nil
}

// checkFileUnchanged refuses to overwrite a config edited by hand since
// it was read: that edit would be lost without a word.
func (m *Manager) checkFileUnchanged() error {
	if m.o.ConfigPath == "" {
		return nil
	}
	b, err := os.ReadFile(m.o.ConfigPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", m.o.ConfigPath, err)
	}
	if config.Fingerprint(b) != m.fileSum {
		return fmt.Errorf("%w: %s was edited since tandem-target read it: reload it first (kill -HUP the daemon, or systemctl reload), then retry", admin.ErrConflict, m.o.ConfigPath)
	}
	return nil
}

func (m *Manager) save(c *config.Config) error {
	if m.o.ConfigPath == "" {
		return nil
	}
	if err := config.Save(m.o.ConfigPath, c, configHeader); err != nil {
		return err
	}
	b, err := os.ReadFile(m.o.ConfigPath)
	if err != nil {
		return err
	}
	m.fileSum = config.Fingerprint(b)
	return nil
}

// secretDir is where secrets given through the API are kept: beside the
// config, in chap/.
func (m *Manager) secretDir() string { return filepath.Join(filepath.Dir(m.o.ConfigPath), "chap") }

// dropOldSecrets removes secret files of ours (in secretDir) that prev
// named and next no longer does.
func (m *Manager) dropOldSecrets(prev, next *config.Config) {
	if m.o.ConfigPath == "" {
		return
	}
	used := map[string]bool{}
	for _, f := range secretFiles(next) {
		used[f] = true
	}
	for _, f := range secretFiles(prev) {
		if !used[f] && filepath.Dir(f) == m.secretDir() {
			_ = os.Remove(f)
		}
	}
}

func secretFiles(c *config.Config) []string {
	out := []string{c.Discovery.CHAP.SecretFile, c.Discovery.CHAP.MutualSecretFile}
	for _, t := range c.Targets {
		out = append(out, t.CHAP.SecretFile, t.CHAP.MutualSecretFile)
	}
	return out
}

// Reload reads the config file again and serves it. An invalid file, or
// one that changes what only a restart can, changes nothing: the error
// says why. Each change is logged.
func (m *Manager) Reload(ctx context.Context) error {
	if m.o.ConfigPath == "" {
		return errors.New("no config file to reload")
	}
	b, err := os.ReadFile(m.o.ConfigPath)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	next, err := config.Load(m.o.ConfigPath)
	if err != nil {
		return fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	diff := config.Diff(m.cfg, next)
	if err := m.apply(ctx, next); err != nil {
		return fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	m.cfg = next
	m.fileSum = config.Fingerprint(b)
	for _, d := range diff {
		m.log.Info("config reloaded", "change", d)
	}
	if len(diff) == 0 {
		m.log.Info("config reloaded", "change", "none")
	}
	return nil
}

// Targets implements admin.Service.
func (m *Manager) Targets() []admin.Target {
	sessions := m.srv.Sessions()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]admin.Target, 0, len(m.targets))
	for _, mt := range m.targets {
		c := mt.cfg
		t := admin.Target{Name: c.Name, Alias: c.Alias, Initiators: append([]string{}, c.Initiators...),
			CHAPUser: c.CHAP.User, MutualCHAPUser: c.CHAP.MutualUser, LUNs: []admin.LUN{}, Sessions: []iscsi.SessionInfo{}}
		for id, l := range mt.luns {
			wc := l.cfg.WriteCache
			t.LUNs = append(t.LUNs, admin.LUN{ID: id, Path: l.path, LV: l.cfg.LV, Size: l.lu.Size(), BlockSize: l.cfg.BlockSize,
				Thin: l.cfg.Thin, WriteCache: &wc, ReadOnly: l.cfg.ReadOnly, Serial: l.cfg.Serial})
		}
		sort.Slice(t.LUNs, func(i, j int) bool { return t.LUNs[i].ID < t.LUNs[j].ID })
		for _, s := range sessions {
			if strings.EqualFold(s.Target, c.Name) {
				t.Sessions = append(t.Sessions, s)
			}
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Discovery implements admin.Service.
func (m *Manager) Discovery() admin.Discovery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return admin.Discovery{CHAPUser: m.cfg.Discovery.CHAP.User, MutualCHAPUser: m.cfg.Discovery.CHAP.MutualUser}
}

func findTarget(c *config.Config, name string) (*config.Target, error) {
	t, _ := c.Target(name)
	if t == nil {
		return nil, fmt.Errorf("target %q: %w: create it first (tandemctl target create)", name, admin.ErrNotFound)
	}
	return t, nil
}

// busy refuses a change that would pull a LUN or target from under
// logged-in sessions, unless forced.
func (m *Manager) busy(target, what string, force bool) error {
	if force {
		return nil
	}
	var who []string
	for _, s := range m.srv.Sessions() {
		if strings.EqualFold(s.Target, target) {
			who = append(who, s.Initiator+" from "+s.Remote)
		}
	}
	if len(who) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s is in use by %d session(s) (%s): log them out first, or force it (--force)",
		admin.ErrConflict, what, len(who), strings.Join(who, ", "))
}

// CreateTarget implements admin.Service.
func (m *Manager) CreateTarget(spec admin.TargetSpec) error {
	return m.change(func(c *config.Config) (secrets, error) {
		if t, _ := c.Target(spec.Name); t != nil {
			return nil, fmt.Errorf("target %q: %w: it exists already", spec.Name, admin.ErrConflict)
		}
		c.Targets = append(c.Targets, config.Target{Name: spec.Name, Alias: spec.Alias, Initiators: slices.Clone(spec.Initiators)})
		return nil, nil
	})
}

// RemoveTarget implements admin.Service.
func (m *Manager) RemoveTarget(name string, force bool) error {
	return m.change(func(c *config.Config) (secrets, error) {
		t, i := c.Target(name)
		if t == nil {
			return nil, fmt.Errorf("target %q: %w", name, admin.ErrNotFound)
		}
		if err := m.busy(t.Name, "target "+t.Name, force); err != nil {
			return nil, err
		}
		c.Targets = slices.Delete(c.Targets, i, i+1)
		return nil, nil
	})
}

// AddLUN implements admin.Service: the LUN gets the defaults and the
// checks of a LUN in the config file.
func (m *Manager) AddLUN(target string, l admin.LUN) error {
	return m.change(func(c *config.Config) (secrets, error) {
		t, err := findTarget(c, target)
		if err != nil {
			return nil, err
		}
		if old, _ := t.LUN(l.ID); old != nil {
			return nil, fmt.Errorf("lun %d of %s: %w: it exists already; remove it first or pick another id", l.ID, target, admin.ErrConflict)
		}
		wc := l.WriteCache == nil || *l.WriteCache
		bs := l.BlockSize
		if bs == 0 {
			bs = config.DefaultBlockSize
		}
		serial := l.Serial
		if serial == "" {
			serial = config.DefaultSerial(t.Name, l.ID)
		}
		t.LUNs = append(t.LUNs, config.LUN{ID: l.ID, Path: l.Path, LV: l.LV, Size: l.Size, BlockSize: bs, Thin: l.Thin,
			WriteCache: wc, ReadOnly: l.ReadOnly, Serial: serial})
		return nil, nil
	})
}

// RemoveLUN implements admin.Service.
func (m *Manager) RemoveLUN(target string, id uint64, force bool) error {
	return m.change(func(c *config.Config) (secrets, error) {
		t, err := findTarget(c, target)
		if err != nil {
			return nil, err
		}
		_, i := t.LUN(id)
		if i < 0 {
			return nil, fmt.Errorf("lun %d of %s: %w", id, target, admin.ErrNotFound)
		}
		if err := m.busy(t.Name, fmt.Sprintf("lun %d of %s", id, t.Name), force); err != nil {
			return nil, err
		}
		t.LUNs = slices.Delete(t.LUNs, i, i+1)
		return nil, nil
	})
}

// AddInitiator implements admin.Service.
func (m *Manager) AddInitiator(target, initiator string) error {
	return m.change(func(c *config.Config) (secrets, error) {
		t, err := findTarget(c, target)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(t.Initiators, func(s string) bool { return strings.EqualFold(s, initiator) }) {
			return nil, fmt.Errorf("initiator %s: %w: it is in the ACL of %s already", initiator, admin.ErrConflict, target)
		}
		t.Initiators = append(t.Initiators, initiator)
		return nil, nil
	})
}

// RemoveInitiator implements admin.Service.
func (m *Manager) RemoveInitiator(target, initiator string) error {
	return m.change(func(c *config.Config) (secrets, error) {
		t, err := findTarget(c, target)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(t.Initiators, func(s string) bool { return strings.EqualFold(s, initiator) })
		if i < 0 {
			return nil, fmt.Errorf("initiator %s: %w in the ACL of %s", initiator, admin.ErrNotFound, target)
		}
		t.Initiators = slices.Delete(t.Initiators, i, i+1)
		return nil, nil
	})
}

// SetCHAP implements admin.Service.
func (m *Manager) SetCHAP(target string, ch admin.CHAP) error {
	return m.change(func(c *config.Config) (secrets, error) {
		t, err := findTarget(c, target)
		if err != nil {
			return nil, err
		}
		return m.setCHAP(&t.CHAP, safeName(t.Name), ch)
	})
}

// SetDiscoveryCHAP implements admin.Service.
func (m *Manager) SetDiscoveryCHAP(ch admin.CHAP) error {
	return m.change(func(c *config.Config) (secrets, error) {
		return m.setCHAP(&c.Discovery.CHAP, "discovery", ch)
	})
}

// setCHAP puts ch into dst; with a config file, each secret is to go to
// a new 0600 file in secretDir (the old one is removed once the change
// is written).
func (m *Manager) setCHAP(dst *config.CHAP, base string, ch admin.CHAP) (secrets, error) {
	switch {
	case ch.User == "" && (ch.Secret != "" || ch.MutualUser != "" || ch.MutualSecret != ""):
		return nil, fmt.Errorf("%w: chap.user: empty but other CHAP fields are set: set user, or send an empty body to turn CHAP off", admin.ErrInvalid)
	case ch.User != "" && ch.Secret == "":
		return nil, fmt.Errorf("%w: chap.secret: user is set but no secret is: send one (tandemctl chap set generates it)", admin.ErrInvalid)
	case (ch.MutualUser == "") != (ch.MutualSecret == ""):
		return nil, fmt.Errorf("%w: chap.mutual_secret: mutual_user and mutual_secret go together", admin.ErrInvalid)
	}
	n := config.CHAP{User: ch.User, MutualUser: ch.MutualUser}
	out := secrets{}
	suffix := randomSuffix()
	if ch.Secret != "" {
		n.Secret = []byte(ch.Secret)
		if m.o.ConfigPath != "" {
			n.SecretFile = filepath.Join(m.secretDir(), base+"-"+suffix+".secret")
			out[n.SecretFile] = n.Secret
		}
	}
	if ch.MutualSecret != "" {
		n.MutualSecret = []byte(ch.MutualSecret)
		if m.o.ConfigPath != "" {
			n.MutualSecretFile = filepath.Join(m.secretDir(), base+"-"+suffix+".mutual.secret")
			out[n.MutualSecretFile] = n.MutualSecret
		}
	}
	*dst = n
	return out, nil
}

// ResizeLUN implements admin.Service. A file LUN is grown to size (0:
// to what the file is now); a device or LV LUN takes its device's size
// now (after lvextend), and size must be 0 or that size. The LU is
// swapped in place: reservations kept, every nexus gets CAPACITY DATA
// HAS CHANGED.
func (m *Manager) ResizeLUN(target string, id uint64, size int64) error {
	return m.change(func(c *config.Config) (secrets, error) {
		t, err := findTarget(c, target)
		if err != nil {
			return nil, err
		}
		lc, _ := t.LUN(id)
		if lc == nil {
			return nil, fmt.Errorf("lun %d of %s: %w", id, target, admin.ErrNotFound)
		}
		mt := m.targets[m.runningName(t.Name)]
		l := mt.luns[id]
		if size < 0 {
			return nil, fmt.Errorf("%w: size: negative: give a byte count, or 0 to take the backing's size now", admin.ErrInvalid)
		}
		if size != 0 && size < l.lu.Size() {
			return nil, fmt.Errorf("%w: size: %d is below the current %d; shrinking would lose data", admin.ErrInvalid, size, l.lu.Size())
		}
		if size%int64(lc.BlockSize) != 0 {
			return nil, fmt.Errorf("%w: size: %d is not a multiple of the block size %d", admin.ErrInvalid, size, lc.BlockSize)
		}
		fi, err := os.Stat(l.path)
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", l.path, err)
		}
		if size != 0 && size != l.lu.Size() {
			if l.cfg.LV != "" || !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%w: size: %s is a device: grow it (tandemctl volume resize, lvextend), then resize with no size", admin.ErrInvalid, l.path)
			}
			if err := os.Truncate(l.path, size); err != nil {
				return nil, fmt.Errorf("extend %s: %w", l.path, err)
			}
		}
		if err := m.swap(mt, l); err != nil {
			return nil, err
		}
		if lc.Size != 0 {
			lc.Size = l.lu.Size()
		}
		return nil, nil
	})
}

func (m *Manager) runningName(name string) string {
	for n := range m.targets {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return name
}

// swap reopens l's backing (keeping its lock) at its current size and
// replaces the LU in place.
func (m *Manager) swap(mt *managedTarget, l *managedLUN) error {
	be, err := backstore.Reopen(l.be)
	if err != nil {
		return err
	}
	lu, err := m.newLU(mt.cfg.Name, l.cfg, be)
	if err != nil {
		_ = be.Close()
		return fmt.Errorf("reopen after resize: %w", err)
	}
	if l.audit != nil {
		lu.SetAuditor(l.audit)
	}
	old, err := mt.scsi.ReplaceLU(l.cfg.ID, lu)
	if err != nil {
		_ = lu.Close()
		return fmt.Errorf("swap lun %d after resize: %w", l.cfg.ID, err)
	}
	l.lu, l.be = lu, be
	l.cache, _ = be.(*backstore.Volatile)
	old.SetAuditor(nil)
	if err := old.Close(); err != nil {
		m.log.Warn("closing the LU replaced by a resize", "target", mt.cfg.Name, "lun", l.cfg.ID, "err", err)
	}
	m.log.Info("lun resized", "target", mt.cfg.Name, "lun", l.cfg.ID, "size", lu.Size())
	return nil
}

var _ admin.Service = (*Manager)(nil)
