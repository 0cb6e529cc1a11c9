package fence

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// fakeLUN is an in-memory persistent reservation model (SPC-4 5.12), just
// enough for the fence: registrations by nexus, one reservation.
type fakeLUN struct {
	mu       sync.Mutex
	regs     map[string]uint64 // nexus -> key
	resKey   uint64
	resType  initiator.PRType
	reserved bool
	// noAbort answers PREEMPT AND ABORT with INVALID FIELD IN CDB (tgt).
	noAbort bool
	// noAPTPL answers REGISTER with APTPL set with INVALID FIELD IN
	// PARAMETER LIST (a target without a state directory).
	noAPTPL bool
	aptpl   bool
	// down fails every command (storage unreachable).
	down  error
	calls []string
}

func newFakeLUN() *fakeLUN { return &fakeLUN{regs: map[string]uint64{}} }

// fakeDev is one nexus to a fakeLUN.
type fakeDev struct {
	device.Device // nil: unused methods panic
	lun           *fakeLUN
	nexus         string
}

var errIllegal = &initiator.SenseError{Key: scsi.SenseIllegalRequest, ASC: 0x24}
var errConflict = &initiator.StatusError{Status: 0x18}

func (d *fakeDev) String() string { return "fake " + d.nexus }
func (d *fakeDev) Close() error   { return nil }

func (d *fakeDev) op(name string) error {
	d.lun.calls = append(d.lun.calls, d.nexus+" "+name)
	return d.lun.down
}

func (d *fakeDev) PRReadKeys(context.Context) (initiator.PRKeys, error) {
	l := d.lun
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := d.op("readkeys"); err != nil {
		return initiator.PRKeys{}, err
	}
	var ks []uint64
	for _, k := range l.regs {
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return initiator.PRKeys{Keys: ks}, nil
}

func (d *fakeDev) PRReadReservation(context.Context) (initiator.PRReservation, error) {
	l := d.lun
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := d.op("readres"); err != nil {
		return initiator.PRReservation{}, err
	}
	if !l.reserved {
		return initiator.PRReservation{}, nil
	}
	return initiator.PRReservation{Reserved: true, Key: l.resKey, Type: l.resType}, nil
}

func (d *fakeDev) PRRegisterAndIgnore(_ context.Context, key uint64, o initiator.PROptions) error {
	l := d.lun
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := d.op("register"); err != nil {
		return err
	}
	if o.APTPL && l.noAPTPL {
		return &initiator.SenseError{Key: scsi.SenseIllegalRequest, ASC: 0x26}
	}
	l.aptpl = o.APTPL
	l.regs[d.nexus] = key
	return nil
}

func (d *fakeDev) PRReserve(_ context.Context, key uint64, t initiator.PRType) error {
	l := d.lun
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := d.op("reserve"); err != nil {
		return err
	}
	if l.regs[d.nexus] != key || (l.reserved && l.resKey != key) {
		return errConflict
	}
	l.reserved, l.resKey, l.resType = true, key, t
	return nil
}

func (d *fakeDev) preempt(name string, key, victim uint64, t initiator.PRType) error {
	l := d.lun
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := d.op(name); err != nil {
		return err
	}
	if name == "preempt-abort" && l.noAbort {
		return errIllegal
	}
	if l.regs[d.nexus] != key {
		return errConflict
	}
	for n, k := range l.regs {
		if k == victim {
			delete(l.regs, n)
		}
	}
	if l.reserved && l.resKey == victim {
		l.resKey, l.resType = key, t
	}
	return nil
}

func (d *fakeDev) PRPreempt(_ context.Context, key, victim uint64, t initiator.PRType) error {
	return d.preempt("preempt", key, victim, t)
}

func (d *fakeDev) PRPreemptAndAbort(_ context.Context, key, victim uint64, t initiator.PRType) error {
	return d.preempt("preempt-abort", key, victim, t)
}

func opener(ds ...device.Device) func(context.Context) ([]device.Device, func(), error) {
	return func(context.Context) ([]device.Device, func(), error) {
		for _, d := range ds {
			if fd, ok := d.(*fakeDev); ok && fd.lun.down != nil {
				return nil, nil, errors.New("storage unreachable: " + fd.lun.down.Error())
			}
		}
		return ds, func() {}, nil
	}
}
