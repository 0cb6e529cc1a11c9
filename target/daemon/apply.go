package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/target/scsi"
)

// apply moves the running targets from m.cfg to next (validated), step by
// step, and undoes the steps done when one fails, so that a change is
// served whole or not at all. Removals go first so that a LUN moved to
// another id or target finds its backing unlocked. The caller holds m.mu
// and sets m.cfg = next on success.
func (m *Manager) apply(ctx context.Context, next *config.Config) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	cur := m.cfg
	for _, k := range restartChanges(cur, next) {
		return fmt.Errorf("%s changed: tandem-target applies it only at start; restart it, or put the old value back", k)
	}
	if !reflect.DeepEqual(cur.Discovery.CHAP, next.Discovery.CHAP) {
		old := cur.Discovery.CHAP
		m.srv.SetDiscoveryAuth(AuthFromCHAP(next.Discovery.CHAP))
		undo = append(undo, func() { m.srv.SetDiscoveryAuth(AuthFromCHAP(old)) })
	}
	// Targets gone.
	for _, t := range cur.Targets {
		if n, _ := next.Target(t.Name); n != nil {
			continue
		}
		old := t
		m.removeTarget(t.Name)
		undo = append(undo, func() { _ = m.addTarget(context.Background(), old) })
	}
	// Targets kept: LUNs gone or changed first, then the rest.
	type pending struct {
		mt  *managedTarget
		lun config.LUN
	}
	var adds []pending
	for _, t := range next.Targets {
		o, _ := cur.Target(t.Name)
		if o == nil {
			continue
		}
		mt := m.targets[o.Name]
		for _, ol := range o.LUNs {
			nl, _ := t.LUN(ol.ID)
			if nl != nil && sameBacking(ol, *nl) {
				continue
			}
			old := ol
			if err := m.closeLUN(mt, ol.ID, false); err != nil {
				m.log.Warn("closing a LUN", "target", t.Name, "lun", ol.ID, "err", err)
			}
			undo = append(undo, func() { _ = m.openLUN(context.Background(), mt, old) })
		}
		for _, nl := range t.LUNs {
			if ol, _ := o.LUN(nl.ID); ol == nil || !sameBacking(*ol, nl) {
				adds = append(adds, pending{mt, nl})
			} else if mt.luns[nl.ID] != nil {
				mt.luns[nl.ID].cfg = nl // a size or wait change: nothing to reopen
			}
		}
		if t.Alias != o.Alias || !slices.Equal(t.Initiators, o.Initiators) {
			// iscsi.Server has no setter for the ACL: the target is
			// registered again, which ends its sessions (they log in again).
			oldInfo, newInfo := m.info(*o), m.info(t)
			if err := m.reregister(mt, newInfo); err != nil {
				return err
			}
			undo = append(undo, func() { _ = m.reregister(mt, oldInfo) })
		} else if !reflect.DeepEqual(t.CHAP, o.CHAP) {
			oldAuth := AuthFromCHAP(o.CHAP)
			if err := m.srv.SetTargetAuth(t.Name, AuthFromCHAP(t.CHAP)); err != nil {
				return err
			}
			undo = append(undo, func() { _ = m.srv.SetTargetAuth(mt.cfg.Name, oldAuth) })
		}
		oldCfg := mt.cfg
		mt.cfg = t
		undo = append(undo, func() { mt.cfg = oldCfg })
	}
	for _, p := range adds {
		if err := m.openLUN(ctx, p.mt, p.lun); err != nil {
			return err
		}
		mt, id := p.mt, p.lun.ID
		undo = append(undo, func() { _ = m.closeLUN(mt, id, true) })
	}
	// New targets.
	var errs []error
	for _, t := range next.Targets {
		if o, _ := cur.Target(t.Name); o != nil {
			continue
		}
		if err := m.addTarget(ctx, t); err != nil {
			errs = append(errs, err) // at start, name every LUN that fails
			continue
		}
		name := t.Name
		undo = append(undo, func() { m.removeTarget(name) })
	}
	return errors.Join(errs...)
}

// restartChanges lists the keys of config.RestartKeys that differ.
func restartChanges(a, b *config.Config) []string {
	var out []string
	if !slices.Equal(a.Listen, b.Listen) {
		out = append(out, "listen")
	}
	if a.StateDir != b.StateDir {
		out = append(out, "state_dir")
	}
	if a.AdminSocket != b.AdminSocket {
		out = append(out, "admin_socket")
	}
	if a.Limits != b.Limits {
		out = append(out, "limits")
	}
	return out
}

// sameBacking reports whether a LUN can stay open across a change from a
// to b: only its size (a creation size) or wait differ.
func sameBacking(a, b config.LUN) bool {
	a.Size, b.Size, a.Wait, b.Wait = 0, 0, 0, 0
	return a == b
}

func (m *Manager) info(t config.Target) login.TargetInfo {
	return login.TargetInfo{Name: t.Name, Alias: t.Alias, Auth: AuthFromCHAP(t.CHAP), Initiators: slices.Clone(t.Initiators)}
}

// addTarget opens every LUN of t and registers it; on any failure nothing
// of it stays open, and the error names every LUN that failed.
func (m *Manager) addTarget(ctx context.Context, t config.Target) error {
	mt := &managedTarget{cfg: t, scsi: scsi.NewTarget(t.Name, m.log), luns: map[uint64]*managedLUN{}}
	var errs []error
	for _, l := range t.LUNs {
		if err := m.openLUN(ctx, mt, l); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		m.closeAll(mt, true)
		return err
	}
	if err := m.srv.AddTarget(m.info(t), mt.scsi); err != nil {
		m.closeAll(mt, true)
		return err
	}
	m.targets[t.Name] = mt
	return nil
}

func (m *Manager) closeAll(mt *managedTarget, removeCreated bool) {
	for id := range mt.luns {
		_ = m.closeLUN(mt, id, removeCreated)
	}
}

func (m *Manager) removeTarget(name string) {
	mt, ok := m.targets[name]
	if !ok {
		return
	}
	_ = m.srv.RemoveTarget(name)
	m.closeAll(mt, false)
	delete(m.targets, name)
	m.log.Info("target removed", "target", name)
}

func (m *Manager) reregister(mt *managedTarget, info login.TargetInfo) error {
	_ = m.srv.RemoveTarget(mt.cfg.Name)
	return m.srv.AddTarget(info, mt.scsi)
}
