package sgio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// IoctlFunc issues SG_IO on fd with h. The real one is unix ioctl(2)
// (Linux); tests pass a fake that plays the device.
type IoctlFunc func(fd uintptr, h *Hdr) error

// DefaultTimeout bounds a command whose ctx has no deadline.
const DefaultTimeout = 30 * time.Second

// senseLen is the sense buffer size (SPC-4 allows up to 252 bytes; 96
// holds any sense a disk target sends in practice, as sg3_utils uses).
const senseLen = 96

// Dev is one SCSI device reached through SG_IO. It is safe for concurrent
// use; each command is one ioctl.
type Dev struct {
	path  string
	fd    uintptr
	ioctl IoctlFunc
	close func() error

	bsMu      sync.Mutex
	blockSize uint32
}

// New returns a Dev that issues commands through ioctl on fd; path only
// names the device in errors. Close calls closeFn when it is not nil.
func New(path string, fd uintptr, ioctl IoctlFunc, closeFn func() error) *Dev {
	return &Dev{path: path, fd: fd, ioctl: ioctl, close: closeFn}
}

// Path is the device path given to Open or New.
func (d *Dev) Path() string { return d.path }

// Close closes the device.
func (d *Dev) Close() error {
	if d.close == nil {
		return nil
	}
	return d.close()
}

// timeoutMS converts ctx's deadline to sg_io_hdr.timeout: the kernel
// aborts the command itself then, since an ioctl cannot be cancelled.
func timeoutMS(ctx context.Context, now time.Time) (uint32, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return uint32(DefaultTimeout / time.Millisecond), nil
	}
	left := dl.Sub(now)
	if left <= 0 {
		return 0, context.DeadlineExceeded
	}
	ms := (left + time.Millisecond - 1) / time.Millisecond
	return uint32(min(ms, 1<<31)), nil
}

// Do sends cdb with a data buffer moving in dir and returns how many bytes
// were transferred. The error is what Check makes of the result.
func (d *Dev) Do(ctx context.Context, cdb []byte, dir Direction, data []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(cdb) == 0 || len(cdb) > 16 {
		return 0, fmt.Errorf("sgio %s: cdb of %d bytes, want 1 to 16", d.path, len(cdb))
	}
	to, err := timeoutMS(ctx, time.Now())
	if err != nil {
		return 0, err
	}
	var sense [senseLen]byte
	h := Hdr{
		InterfaceID: interfaceID, DxferDirection: dir,
		CmdLen: uint8(len(cdb)), MxSbLen: senseLen,
		Cmdp: unsafe.Pointer(&cdb[0]), Sbp: unsafe.Pointer(&sense[0]),
		Timeout: to,
	}
	if len(data) > 0 && dir != DirNone {
		h.DxferLen, h.Dxferp = uint32(len(data)), unsafe.Pointer(&data[0])
	} else {
		h.DxferDirection = DirNone
	}
	err = d.ioctl(d.fd, &h)
	runtime.KeepAlive(cdb)
	runtime.KeepAlive(data)
	if err != nil {
		return 0, fmt.Errorf("sgio %s: SG_IO ioctl: %w", d.path, err)
	}
	n := int(h.DxferLen) - int(h.Resid)
	if n < 0 {
		n = 0
	}
	if err := Check(&h, sense[:]); err != nil {
		return n, fmt.Errorf("sgio %s: opcode %#02x: %w", d.path, cdb[0], err)
	}
	return n, nil
}

// doRetry reissues a command after a unit attention other than the
// persistent reservation ones (as the native initiator does): the command
// was not executed (SAM-5 5.14), and fencing code needs to see the PR ones.
func (d *Dev) doRetry(ctx context.Context, cdb []byte, dir Direction, data []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		n, err := d.Do(ctx, cdb, dir, data)
		if err == nil || attempt >= 5 || !initiator.IsUnitAttention(err) || initiator.IsReservationUnitAttention(err) {
			return n, err
		}
	}
}

// TestUnitReady sends TEST UNIT READY.
func (d *Dev) TestUnitReady(ctx context.Context) error {
	_, err := d.doRetry(ctx, make([]byte, 6), DirNone, nil)
	return err
}

// Inquiry reads the standard INQUIRY data.
func (d *Dev) Inquiry(ctx context.Context) (*initiator.InquiryData, error) {
	buf := make([]byte, 96)
	n, err := d.doRetry(ctx, []byte{scsi.OpInquiry, 0, 0, 0, 96, 0}, DirFromDev, buf)
	if err != nil {
		return nil, err
	}
	return initiator.DecodeInquiry(buf[:n])
}

// ReadCapacity16 sends READ CAPACITY (16) and remembers the block size for
// ReadAt and WriteAt.
func (d *Dev) ReadCapacity16(ctx context.Context) (initiator.Capacity, error) {
	cdb := make([]byte, 16)
	cdb[0], cdb[1] = scsi.OpServiceActionIn16, scsi.SAReadCapacity16
	binary.BigEndian.PutUint32(cdb[10:], 32)
	buf := make([]byte, 32)
	n, err := d.doRetry(ctx, cdb, DirFromDev, buf)
	if err != nil {
		return initiator.Capacity{}, err
	}
	c, err := initiator.DecodeCapacity16(buf[:n])
	if err != nil {
		return c, fmt.Errorf("sgio %s: %w", d.path, err)
	}
	d.bsMu.Lock()
	d.blockSize = c.BlockSize
	d.bsMu.Unlock()
	return c, nil
}

func (d *Dev) bs(ctx context.Context) (uint32, error) {
	d.bsMu.Lock()
	bs := d.blockSize
	d.bsMu.Unlock()
	if bs != 0 {
		return bs, nil
	}
	c, err := d.ReadCapacity16(ctx)
	return c.BlockSize, err
}

// rw16 builds READ (16) / WRITE (16) (SBC-3 sections 5.16, 5.40).
func rw16(op byte, lba uint64, blocks uint32, fua bool) []byte {
	cdb := make([]byte, 16)
	cdb[0] = op
	if fua {
		cdb[1] = 0x08
	}
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], blocks)
	return cdb
}

func (d *Dev) blocks(ctx context.Context, n int) (uint32, error) {
	bs, err := d.bs(ctx)
	if err != nil {
		return 0, err
	}
	if n == 0 || n%int(bs) != 0 {
		return 0, errors.New("sgio " + d.path + ": length " + strconv.Itoa(n) + " is not a positive multiple of the block size " + strconv.Itoa(int(bs)))
	}
	return uint32(n / int(bs)), nil
}

// ReadAt reads len(p) bytes at block lba with READ (16); fua makes the
// device read from the medium, not its cache (a disk heartbeat must see
// the other node's writes).
func (d *Dev) ReadAt(ctx context.Context, p []byte, lba uint64, fua bool) error {
	nb, err := d.blocks(ctx, len(p))
	if err != nil {
		return err
	}
	n, err := d.doRetry(ctx, rw16(scsi.OpRead16, lba, nb, fua), DirFromDev, p)
	if err == nil && n != len(p) {
		err = fmt.Errorf("sgio %s: read %d of %d bytes", d.path, n, len(p))
	}
	return err
}

// WriteAt writes p at block lba with WRITE (16); fua makes it durable when
// the call returns.
func (d *Dev) WriteAt(ctx context.Context, p []byte, lba uint64, fua bool) error {
	nb, err := d.blocks(ctx, len(p))
	if err != nil {
		return err
	}
	_, err = d.doRetry(ctx, rw16(scsi.OpWrite16, lba, nb, fua), DirToDev, p)
	return err
}

// prIn runs PERSISTENT RESERVE IN, growing the allocation length until the
// list fits (the ADDITIONAL LENGTH tells the whole size, SPC-4 4.2.5.6).
func (d *Dev) prIn(ctx context.Context, sa byte) ([]byte, error) {
	alloc := 8 + 8*32
	for {
		cdb := scsi.PRInCDB(sa, uint16(alloc))
		buf := make([]byte, alloc)
		n, err := d.doRetry(ctx, cdb[:], DirFromDev, buf)
		if err != nil {
			return nil, fmt.Errorf("persistent reserve in: %w", err)
		}
		b := buf[:n]
		if sa == scsi.PRInReportCapabilities || len(b) < 8 {
			return b, nil
		}
		need := 8 + int(binary.BigEndian.Uint32(b[4:8]))
		if need <= alloc || alloc == 0xffff {
			return b, nil
		}
		alloc = min(need, 0xffff)
	}
}

// PRReadKeys sends PERSISTENT RESERVE IN / READ KEYS.
func (d *Dev) PRReadKeys(ctx context.Context) (initiator.PRKeys, error) {
	b, err := d.prIn(ctx, scsi.PRInReadKeys)
	if err != nil {
		return initiator.PRKeys{}, err
	}
	return initiator.DecodePRKeys(b)
}

// PRReadReservation sends PERSISTENT RESERVE IN / READ RESERVATION.
func (d *Dev) PRReadReservation(ctx context.Context) (initiator.PRReservation, error) {
	b, err := d.prIn(ctx, scsi.PRInReadReservation)
	if err != nil {
		return initiator.PRReservation{}, err
	}
	return initiator.DecodePRReservation(b)
}

// PRReadFullStatus sends PERSISTENT RESERVE IN / READ FULL STATUS.
func (d *Dev) PRReadFullStatus(ctx context.Context) (initiator.PRFullStatus, error) {
	b, err := d.prIn(ctx, scsi.PRInReadFullStatus)
	if err != nil {
		return initiator.PRFullStatus{}, err
	}
	return initiator.DecodePRFullStatus(b)
}

// PersistentReserveOut sends PERSISTENT RESERVE OUT with a parameter list
// (build it with scsi.PROutParams). RESERVATION CONFLICT matches
// initiator.ErrReservationConflict.
func (d *Dev) PersistentReserveOut(ctx context.Context, sa initiator.PROutAction, t initiator.PRType, param []byte) error {
	cdb := scsi.PROutCDB(byte(sa), byte(t), uint32(len(param)))
	if _, err := d.doRetry(ctx, cdb[:], DirToDev, param); err != nil {
		return fmt.Errorf("persistent reserve out (service action %d): %w", sa, err)
	}
	return nil
}

func params(key, sark uint64, o initiator.PROptions) []byte {
	return scsi.PROutParams(key, sark, o.Flags(), o.TransportIDs)
}

// PRRegister registers newKey for this I_T nexus (key is the current one,
// 0 when unregistered); newKey 0 unregisters.
func (d *Dev) PRRegister(ctx context.Context, key, newKey uint64, o initiator.PROptions) error {
	return d.PersistentReserveOut(ctx, initiator.PROutRegister, 0, params(key, newKey, o))
}

// PRRegisterAndIgnore registers newKey whatever key is registered now.
func (d *Dev) PRRegisterAndIgnore(ctx context.Context, newKey uint64, o initiator.PROptions) error {
	return d.PersistentReserveOut(ctx, initiator.PROutRegisterAndIgnore, 0, params(0, newKey, o))
}

// PRReserve creates a persistent reservation of type t held through key.
func (d *Dev) PRReserve(ctx context.Context, key uint64, t initiator.PRType) error {
	return d.PersistentReserveOut(ctx, initiator.PROutReserve, t, params(key, 0, initiator.PROptions{}))
}

// PRRelease releases the reservation of type t held through key.
func (d *Dev) PRRelease(ctx context.Context, key uint64, t initiator.PRType) error {
	return d.PersistentReserveOut(ctx, initiator.PROutRelease, t, params(key, 0, initiator.PROptions{}))
}

// PRClear removes every registration and the reservation.
func (d *Dev) PRClear(ctx context.Context, key uint64) error {
	return d.PersistentReserveOut(ctx, initiator.PROutClear, 0, params(key, 0, initiator.PROptions{}))
}

// PRPreempt removes victim's registrations (taking over a reservation it
// holds, as type t).
func (d *Dev) PRPreempt(ctx context.Context, key, victim uint64, t initiator.PRType) error {
	return d.PersistentReserveOut(ctx, initiator.PROutPreempt, t, params(key, victim, initiator.PROptions{}))
}

// PRPreemptAndAbort is PRPreempt that also aborts the victim's tasks.
func (d *Dev) PRPreemptAndAbort(ctx context.Context, key, victim uint64, t initiator.PRType) error {
	return d.PersistentReserveOut(ctx, initiator.PROutPreemptAndAbort, t, params(key, victim, initiator.PROptions{}))
}
