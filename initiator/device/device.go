// Package device is the one small interface fencing and the disk
// heartbeat use to reach a shared LUN, whoever carries it: the kernel's
// iSCSI initiator (a /dev/sdX driven with SG_IO, Kernel) or tandem's
// native initiator (an initiator.Session and a LUN, Native).
//
// Both implementations report RESERVATION CONFLICT as an error matching
// initiator.ErrReservationConflict (errors.Is), and hand the persistent
// reservation unit attentions (initiator.IsReservationUnitAttention) to
// the caller instead of retrying them. Remember that a registration
// belongs to one I_T nexus (SPC-4 5.12.6): register through the Device
// that carries the I/O you want to protect.
package device

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/sgio"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// Device is one SCSI logical unit.
type Device interface {
	// String names the device in logs ("/dev/sda", "iqn...:lun0").
	String() string
	Inquiry(ctx context.Context) (*initiator.InquiryData, error)
	TestUnitReady(ctx context.Context) error
	// ReadCapacity returns the size; ReadAt and WriteAt use its block size.
	ReadCapacity(ctx context.Context) (initiator.Capacity, error)

	PRReadKeys(ctx context.Context) (initiator.PRKeys, error)
	PRReadReservation(ctx context.Context) (initiator.PRReservation, error)
	// PRRegister changes this nexus' key from old (0: unregistered) to
	// newKey (0: unregister).
	PRRegister(ctx context.Context, old, newKey uint64, o initiator.PROptions) error
	// PRRegisterAndIgnore registers key whatever this nexus had.
	PRRegisterAndIgnore(ctx context.Context, key uint64, o initiator.PROptions) error
	PRReserve(ctx context.Context, key uint64, t initiator.PRType) error
	PRRelease(ctx context.Context, key uint64, t initiator.PRType) error
	PRPreempt(ctx context.Context, key, victim uint64, t initiator.PRType) error
	PRPreemptAndAbort(ctx context.Context, key, victim uint64, t initiator.PRType) error
	PRClear(ctx context.Context, key uint64) error

	// ReadAt reads len(p) bytes (a multiple of the block size) at block
	// lba; fua reads from the medium, bypassing the device's cache.
	ReadAt(ctx context.Context, p []byte, lba uint64, fua bool) error
	// WriteAt writes p at block lba; fua makes it durable on return.
	WriteAt(ctx context.Context, p []byte, lba uint64, fua bool) error
	Close() error
}

// Kernel is a Device on a kernel block device (/dev/sdX) through SG_IO.
type Kernel struct{ *sgio.Dev }

var _ Device = Kernel{}

// OpenKernel opens path (a /dev/sdX, /dev/disk/by-path link or /dev/sgN)
// for SG_IO. Linux only; it needs root.
func OpenKernel(path string) (Kernel, error) {
	d, err := sgio.Open(path)
	if err != nil {
		return Kernel{}, err
	}
	return Kernel{d}, nil
}

// NewKernel wraps an sgio.Dev (tests build one with sgio.New and a fake
// ioctl).
func NewKernel(d *sgio.Dev) Kernel { return Kernel{d} }

func (k Kernel) String() string { return k.Path() }

// ReadCapacity sends READ CAPACITY (16).
func (k Kernel) ReadCapacity(ctx context.Context) (initiator.Capacity, error) {
	return k.ReadCapacity16(ctx)
}

// PRRegister implements Device.
func (k Kernel) PRRegister(ctx context.Context, old, newKey uint64, o initiator.PROptions) error {
	return k.Dev.PRRegister(ctx, old, newKey, o)
}

// Native is a Device on a LUN of a native initiator session. Close does
// not close the session, which may serve other LUNs.
type Native struct {
	S   *initiator.Session
	LUN uint64
	// Name is what String returns; default "lun N".
	Name string

	bs atomic.Uint32 // block size, learnt on the first FUA read
}

var _ Device = (*Native)(nil)

// NewNative returns the Device for lun of s.
func NewNative(s *initiator.Session, lun uint64) *Native {
	return &Native{S: s, LUN: lun}
}

func (n *Native) String() string {
	if n.Name != "" {
		return n.Name
	}
	return "lun " + strconv.FormatUint(n.LUN, 10)
}

// Inquiry implements Device.
func (n *Native) Inquiry(ctx context.Context) (*initiator.InquiryData, error) {
	return n.S.Inquiry(ctx, n.LUN)
}

// TestUnitReady implements Device.
func (n *Native) TestUnitReady(ctx context.Context) error { return n.S.TestUnitReady(ctx, n.LUN) }

// ReadCapacity implements Device.
func (n *Native) ReadCapacity(ctx context.Context) (initiator.Capacity, error) {
	return n.S.ReadCapacity16(ctx, n.LUN)
}

// PRReadKeys implements Device.
func (n *Native) PRReadKeys(ctx context.Context) (initiator.PRKeys, error) {
	return n.S.PRReadKeys(ctx, n.LUN)
}

// PRReadReservation implements Device.
func (n *Native) PRReadReservation(ctx context.Context) (initiator.PRReservation, error) {
	return n.S.PRReadReservation(ctx, n.LUN)
}

// PRRegister implements Device.
func (n *Native) PRRegister(ctx context.Context, old, newKey uint64, o initiator.PROptions) error {
	return n.S.PRRegister(ctx, n.LUN, old, newKey, o)
}

// PRRegisterAndIgnore implements Device.
func (n *Native) PRRegisterAndIgnore(ctx context.Context, key uint64, o initiator.PROptions) error {
	return n.S.PRRegisterAndIgnore(ctx, n.LUN, key, o)
}

// PRReserve implements Device.
func (n *Native) PRReserve(ctx context.Context, key uint64, t initiator.PRType) error {
	return n.S.PRReserve(ctx, n.LUN, key, t)
}

// PRRelease implements Device.
func (n *Native) PRRelease(ctx context.Context, key uint64, t initiator.PRType) error {
	return n.S.PRRelease(ctx, n.LUN, key, t)
}

// PRPreempt implements Device.
func (n *Native) PRPreempt(ctx context.Context, key, victim uint64, t initiator.PRType) error {
	return n.S.PRPreempt(ctx, n.LUN, key, victim, t)
}

// PRPreemptAndAbort implements Device.
func (n *Native) PRPreemptAndAbort(ctx context.Context, key, victim uint64, t initiator.PRType) error {
	return n.S.PRPreemptAndAbort(ctx, n.LUN, key, victim, t)
}

// PRClear implements Device.
func (n *Native) PRClear(ctx context.Context, key uint64) error { return n.S.PRClear(ctx, n.LUN, key) }

// ReadAt implements Device. Without fua it is Session.ReadInto; with fua
// it sends READ (16) with FUA set (SBC-3 5.16), reading into p directly.
func (n *Native) ReadAt(ctx context.Context, p []byte, lba uint64, fua bool) error {
	if !fua {
		return n.S.ReadInto(ctx, n.LUN, lba, p)
	}
	bs := n.bs.Load()
	if bs == 0 {
		c, err := n.S.ReadCapacity16(ctx, n.LUN)
		if err != nil {
			return err
		}
		bs = c.BlockSize
		n.bs.Store(bs)
	}
	if len(p) == 0 || len(p)%int(bs) != 0 {
		return fmt.Errorf("device %s: read length %d is not a positive multiple of the block size %d", n, len(p), bs)
	}
	cdb := make([]byte, 16)
	cdb[0], cdb[1] = scsi.OpRead16, 0x08
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], uint32(len(p)/int(bs)))
	resp, err := n.S.Do(ctx, &initiator.Command{LUN: n.LUN, CDB: cdb, ReadBuf: p})
	if err != nil {
		return err
	}
	if err := resp.Err(); err != nil {
		return err
	}
	if len(resp.Data) != len(p) {
		return errors.New("device " + n.String() + ": short read")
	}
	return nil
}

// WriteAt implements Device.
func (n *Native) WriteAt(ctx context.Context, p []byte, lba uint64, fua bool) error {
	return n.S.Write16(ctx, n.LUN, lba, p, fua)
}

// Close does nothing: the session belongs to the caller.
func (n *Native) Close() error { return nil }
