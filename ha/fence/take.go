package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// Type5 is the reservation the active node holds: WRITE EXCLUSIVE -
// REGISTRANTS ONLY (SPC-4 table 169): anyone reads, registrants write.
const Type5 = initiator.PRWriteExclusiveRegistrantsOnly

// View is what READ KEYS and READ RESERVATION said on one LUN.
type View struct {
	Keys        []uint64
	Reservation initiator.PRReservation
}

// Verdict is the pure judgement of a View for our key.
type Verdict int

const (
	// Held: our key is registered and holds the reservation.
	Held Verdict = iota
	// Fenced: our key is gone, or another key holds the reservation.
	Fenced
	// Unreserved: our key is registered but nobody holds a reservation
	// (released or cleared behind our back): not fenced, not protected.
	Unreserved
)

func (v Verdict) String() string {
	switch v {
	case Held:
		return "held"
	case Fenced:
		return "fenced"
	case Unreserved:
		return "unreserved"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Judge is the monitor's rule (package doc), with the reason for the log.
func Judge(key uint64, v View) (Verdict, string) {
	ours := slices.Contains(v.Keys, key)
	r := v.Reservation
	switch {
	case !ours:
		return Fenced, fmt.Sprintf("our key %s is not registered: another node preempted it", FormatKey(key))
	case r.Reserved && r.Key != 0 && r.Key != key:
		return Fenced, fmt.Sprintf("key %s holds the reservation (%s)", FormatKey(r.Key), r.Type)
	case !r.Reserved:
		return Unreserved, "our key is registered but no reservation exists"
	}
	return Held, "our key holds the reservation (" + r.Type.String() + ")"
}

// Victims lists the foreign keys to preempt, the holder first: under type
// 5 every registrant may write, so no foreign registration may remain.
func Victims(key uint64, v View) []uint64 {
	var out []uint64
	if r := v.Reservation; r.Reserved && r.Key != 0 && r.Key != key {
		out = append(out, r.Key)
	}
	for _, k := range v.Keys {
		if k != key && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// IsInvalidFieldInCDB reports an ILLEGAL REQUEST, INVALID FIELD IN CDB
// (24h/00h) answer: what tgt 1.0.85 says to PREEMPT AND ABORT.
func IsInvalidFieldInCDB(err error) bool {
	var se *initiator.SenseError
	return errors.As(err, &se) && se.Key == scsi.SenseIllegalRequest && se.ASC == 0x24 && se.ASCQ == 0
}

// isInvalidFieldInParameterList reports ILLEGAL REQUEST, INVALID FIELD IN
// PARAMETER LIST (26h/00h): how a target without persistence answers APTPL.
func isInvalidFieldInParameterList(err error) bool {
	var se *initiator.SenseError
	return errors.As(err, &se) && se.Key == scsi.SenseIllegalRequest && se.ASC == 0x26 && se.ASCQ == 0
}

// again reissues a PR call once after a persistent reservation unit
// attention (the device hands those to the caller; the command did not run).
func again(ctx context.Context, f func(context.Context) error) error {
	err := f(ctx)
	if initiator.IsReservationUnitAttention(err) {
		err = f(ctx)
	}
	return err
}

// Read returns the View of d.
func Read(ctx context.Context, d device.Device) (View, error) {
	var v View
	err := again(ctx, func(ctx context.Context) error {
		k, err := d.PRReadKeys(ctx)
		v.Keys = k.Keys
		return err
	})
	if err != nil {
		return v, fmt.Errorf("read keys on %s: %w", d, err)
	}
	err = again(ctx, func(ctx context.Context) error {
		var err error
		v.Reservation, err = d.PRReadReservation(ctx)
		return err
	})
	if err != nil {
		return v, fmt.Errorf("read reservation on %s: %w", d, err)
	}
	return v, nil
}

// Take makes key the only registered key and the type 5 holder on d (the
// Start sequence of the package doc). It returns nil only after READ KEYS
// and READ RESERVATION confirmed it.
func Take(ctx context.Context, d device.Device, key uint64, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// APTPL keeps the registrations and the reservation across a restart
	// of the target; without it a restarted target forgets our key and
	// the active node would have to fence itself.
	err := again(ctx, func(ctx context.Context) error {
		return d.PRRegisterAndIgnore(ctx, key, initiator.PROptions{APTPL: true})
	})
	if isInvalidFieldInParameterList(err) {
		log.Warn("target cannot persist reservations (APTPL refused): a restart of the target drops them and the active node will fence itself; give the target a state directory",
			"lun", d.String(), "err", err)
		err = again(ctx, func(ctx context.Context) error { return d.PRRegisterAndIgnore(ctx, key, initiator.PROptions{}) })
	}
	if err != nil {
		return fmt.Errorf("register key %s on %s: %w", FormatKey(key), d, err)
	}
	v, err := Read(ctx, d)
	if err != nil {
		return err
	}
	for _, victim := range Victims(key, v) {
		err := again(ctx, func(ctx context.Context) error { return d.PRPreemptAndAbort(ctx, key, victim, Type5) })
		if IsInvalidFieldInCDB(err) {
			log.Warn("target refused PREEMPT AND ABORT: falling back to PREEMPT; in-flight writes of the old node were NOT aborted",
				"lun", d.String(), "victim", FormatKey(victim), "err", err)
			err = again(ctx, func(ctx context.Context) error { return d.PRPreempt(ctx, key, victim, Type5) })
		}
		if err != nil {
			return fmt.Errorf("preempt key %s on %s: %w", FormatKey(victim), d, err)
		}
		log.Warn("preempted the other node's key", "lun", d.String(), "victim", FormatKey(victim), "key", FormatKey(key))
	}
	if v, err = Read(ctx, d); err != nil {
		return err
	}
	if !v.Reservation.Reserved {
		err := again(ctx, func(ctx context.Context) error { return d.PRReserve(ctx, key, Type5) })
		if err != nil {
			return fmt.Errorf("reserve %s on %s: %w", Type5, d, err)
		}
		if v, err = Read(ctx, d); err != nil {
			return err
		}
	}
	if others := Victims(key, v); len(others) > 0 {
		return fmt.Errorf("%s still lists key %s after preemption: another node registered again; check that no other node runs the group", d, FormatKey(others[0]))
	}
	if verdict, why := Judge(key, v); verdict != Held {
		return fmt.Errorf("%s: reservation not taken: %s", d, why)
	}
	if v.Reservation.Type != Type5 {
		log.Warn("our key holds a reservation of another type than "+Type5.String(), "lun", d.String(), "type", v.Reservation.Type)
	}
	return nil
}

// Check runs the monitor on d: nil when our key holds the reservation; an
// error wrapping resource.ErrFenced when this node is fenced.
func Check(ctx context.Context, d device.Device, key uint64) (View, error) {
	v, err := Read(ctx, d)
	if errors.Is(err, initiator.ErrReservationConflict) {
		return v, fmt.Errorf("%w: %v", resource.ErrFenced, err)
	}
	if err != nil {
		return v, err
	}
	switch verdict, why := Judge(key, v); verdict {
	case Fenced:
		return v, fmt.Errorf("%w: %s: %s", resource.ErrFenced, d, why)
	case Unreserved:
		return v, fmt.Errorf("%s: %s: restart the fence to reserve again", d, why)
	}
	return v, nil
}
