// Package sgiotest is a fake SCSI disk behind sgio.IoctlFunc, for tests of
// code that uses SG_IO (initiator/device, fencing) on a machine without
// SCSI devices. It models one I_T nexus (ours) plus registrations of other
// nodes set by the test.
package sgiotest

import (
	"encoding/binary"
	"slices"
	"sync"
	"unsafe"

	"github.com/tandem-ha/tandem/initiator/sgio"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// Disk is an in-memory disk with persistent reservations. Set the fields
// before use or under Lock.
type Disk struct {
	sync.Mutex
	BlockSize uint32
	Data      []byte
	// MyKey is the key registered through our nexus (0: none); OtherKeys
	// are registrations of other nodes.
	MyKey     uint64
	OtherKeys []uint64
	// ResKey/ResType: the reservation (ResType 0: none). ResMine says our
	// nexus holds it.
	ResKey  uint64
	ResType byte
	ResMine bool
	Gen     uint32
	// Host, when not zero, fails every command with that host status.
	Host uint16
	// CDBs records the CDBs received.
	CDBs [][]byte
}

// New returns a disk of blocks blocks of 512 bytes.
func New(blocks int) *Disk {
	return &Disk{BlockSize: 512, Data: make([]byte, blocks*512)}
}

// Ioctl is the sgio.IoctlFunc of the disk.
func (d *Disk) Ioctl(_ uintptr, h *sgio.Hdr) error {
	d.Lock()
	defer d.Unlock()
	cdb := slices.Clone(unsafe.Slice((*byte)(h.Cmdp), h.CmdLen))
	d.CDBs = append(d.CDBs, cdb)
	var data []byte
	if h.DxferLen > 0 {
		data = unsafe.Slice((*byte)(h.Dxferp), h.DxferLen)
	}
	sense := unsafe.Slice((*byte)(h.Sbp), h.MxSbLen)
	if d.Host != 0 {
		h.HostStatus, h.Info = d.Host, 1
		return nil
	}
	n, status, key, asc := d.exec(cdb, data)
	h.Resid = int32(h.DxferLen) - int32(n)
	h.Status = status
	if status != 0 {
		h.Info = 1
		h.MaskedStatus = status >> 1
	}
	if status == scsi.StatusCheckCondition {
		s := []byte{0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, byte(asc >> 8), byte(asc), 0, 0, 0, 0}
		h.SbLenWr = uint8(copy(sense, s))
		h.DriverStatus = 0x08
	}
	return nil
}

const (
	conflict = scsi.StatusReservationConflict
	check    = scsi.StatusCheckCondition
)

func (d *Disk) writeAllowed() bool {
	switch d.ResType {
	case 0:
		return true
	case 1, 3: // exclusive: holder only
		return d.ResMine
	default: // registrants only / all registrants
		return d.MyKey != 0
	}
}

func (d *Disk) exec(cdb, data []byte) (n int, status, key byte, asc uint16) {
	switch cdb[0] {
	case scsi.OpTestUnitReady:
		return 0, 0, 0, 0
	case scsi.OpInquiry:
		inq := make([]byte, 36)
		inq[2], inq[3], inq[4] = 6, 2, 31
		copy(inq[8:], "TANDEM  ")
		copy(inq[16:], "FAKE DISK       ")
		copy(inq[32:], "0001")
		return copy(data, inq), 0, 0, 0
	case scsi.OpServiceActionIn16:
		b := make([]byte, 32)
		binary.BigEndian.PutUint64(b, uint64(len(d.Data))/uint64(d.BlockSize)-1)
		binary.BigEndian.PutUint32(b[8:], d.BlockSize)
		return copy(data, b), 0, 0, 0
	case scsi.OpRead16, scsi.OpWrite16:
		lba := binary.BigEndian.Uint64(cdb[2:])
		nb := binary.BigEndian.Uint32(cdb[10:])
		off, end := lba*uint64(d.BlockSize), (lba+uint64(nb))*uint64(d.BlockSize)
		if end > uint64(len(d.Data)) {
			return 0, check, scsi.SenseIllegalRequest, 0x2100 // LBA OUT OF RANGE
		}
		if cdb[0] == scsi.OpRead16 {
			return copy(data, d.Data[off:end]), 0, 0, 0
		}
		if !d.writeAllowed() {
			return 0, conflict, 0, 0
		}
		return copy(d.Data[off:end], data), 0, 0, 0
	case scsi.OpPersistentReserveIn:
		return d.prIn(cdb, data)
	case scsi.OpPersistentReserveOut:
		return d.prOut(cdb, data)
	}
	return 0, check, scsi.SenseIllegalRequest, 0x2000 // INVALID COMMAND OPERATION CODE
}

func (d *Disk) keys() []uint64 {
	var ks []uint64
	if d.MyKey != 0 {
		ks = append(ks, d.MyKey)
	}
	return append(ks, d.OtherKeys...)
}

func (d *Disk) prIn(cdb, data []byte) (int, byte, byte, uint16) {
	b := binary.BigEndian.AppendUint32(nil, d.Gen)
	switch cdb[1] & 0x1f {
	case scsi.PRInReadKeys:
		ks := d.keys()
		b = binary.BigEndian.AppendUint32(b, uint32(8*len(ks)))
		for _, k := range ks {
			b = binary.BigEndian.AppendUint64(b, k)
		}
	case scsi.PRInReadReservation:
		if d.ResType == 0 {
			b = binary.BigEndian.AppendUint32(b, 0)
			break
		}
		b = binary.BigEndian.AppendUint32(b, 16)
		b = binary.BigEndian.AppendUint64(b, d.ResKey)
		b = append(b, 0, 0, 0, 0, 0, d.ResType, 0, 0)
	default:
		return 0, check, scsi.SenseIllegalRequest, 0x2400
	}
	return copy(data, b), 0, 0, 0
}

func (d *Disk) prOut(cdb, data []byte) (int, byte, byte, uint16) {
	if len(data) < 24 {
		return 0, check, scsi.SenseIllegalRequest, 0x1a00
	}
	key, sark := binary.BigEndian.Uint64(data), binary.BigEndian.Uint64(data[8:])
	typ := cdb[2] & 0x0f
	sa := cdb[1] & 0x1f
	if sa != 0x0 && sa != 0x6 && (d.MyKey == 0 || key != d.MyKey) {
		return 0, conflict, 0, 0
	}
	switch sa {
	case 0x0: // REGISTER
		if key != d.MyKey {
			return 0, conflict, 0, 0
		}
		d.MyKey = sark
	case 0x6: // REGISTER AND IGNORE EXISTING KEY
		d.MyKey = sark
	case 0x1: // RESERVE
		if d.ResType != 0 && !d.ResMine {
			return 0, conflict, 0, 0
		}
		d.ResKey, d.ResType, d.ResMine = key, typ, true
	case 0x2: // RELEASE
		if d.ResMine {
			d.ResKey, d.ResType, d.ResMine = 0, 0, false
		}
	case 0x3: // CLEAR
		d.MyKey, d.OtherKeys, d.ResKey, d.ResType, d.ResMine = 0, nil, 0, 0, false
	case 0x4, 0x5: // PREEMPT (AND ABORT)
		d.OtherKeys = slices.DeleteFunc(d.OtherKeys, func(k uint64) bool { return k == sark })
		if d.ResType != 0 && d.ResKey == sark {
			d.ResKey, d.ResType, d.ResMine = key, typ, true
		}
	default:
		return 0, check, scsi.SenseIllegalRequest, 0x2400
	}
	d.Gen++
	return len(data), 0, 0, 0
}
