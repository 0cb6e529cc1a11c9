package sgio

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
)

// TestHdrLayout checks Hdr against struct sg_io_hdr's offsets on 64-bit
// Linux (include/scsi/sg.h: "88 bytes long (on i386: 64)").
func TestHdrLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		assert.Equal(t, uintptr(64), unsafe.Sizeof(Hdr{}))
		return
	}
	var h Hdr
	for _, c := range []struct {
		desc string
		got  uintptr
		want uintptr
	}{
		{"interface_id", unsafe.Offsetof(h.InterfaceID), 0},
		{"dxfer_direction", unsafe.Offsetof(h.DxferDirection), 4},
		{"cmd_len", unsafe.Offsetof(h.CmdLen), 8},
		{"mx_sb_len", unsafe.Offsetof(h.MxSbLen), 9},
		{"iovec_count", unsafe.Offsetof(h.IovecCount), 10},
		{"dxfer_len", unsafe.Offsetof(h.DxferLen), 12},
		{"dxferp", unsafe.Offsetof(h.Dxferp), 16},
		{"cmdp", unsafe.Offsetof(h.Cmdp), 24},
		{"sbp", unsafe.Offsetof(h.Sbp), 32},
		{"timeout", unsafe.Offsetof(h.Timeout), 40},
		{"flags", unsafe.Offsetof(h.Flags), 44},
		{"pack_id", unsafe.Offsetof(h.PackID), 48},
		{"usr_ptr", unsafe.Offsetof(h.UsrPtr), 56},
		{"status", unsafe.Offsetof(h.Status), 64},
		{"masked_status", unsafe.Offsetof(h.MaskedStatus), 65},
		{"msg_status", unsafe.Offsetof(h.MsgStatus), 66},
		{"sb_len_wr", unsafe.Offsetof(h.SbLenWr), 67},
		{"host_status", unsafe.Offsetof(h.HostStatus), 68},
		{"driver_status", unsafe.Offsetof(h.DriverStatus), 70},
		{"resid", unsafe.Offsetof(h.Resid), 72},
		{"duration", unsafe.Offsetof(h.Duration), 76},
		{"info", unsafe.Offsetof(h.Info), 80},
		{"sizeof", unsafe.Sizeof(h), 88},
	} {
		assert.Equal(t, c.want, c.got, c.desc)
	}
	assert.Equal(t, 0x2285, ioctlSGIO)
}

func TestCheck(t *testing.T) {
	ua := []byte{0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 0x03, 0, 0, 0, 0}
	desc := []byte{0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0}
	for _, c := range []struct {
		desc string
		h    Hdr
		// check inspects the error.
		check func(t *testing.T, err error)
	}{
		{"good", Hdr{}, func(t *testing.T, err error) { assert.NoError(t, err) }},
		{"reservation conflict", Hdr{Status: 0x18, MaskedStatus: 0x0c, Info: 1}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, initiator.ErrReservationConflict)
		}},
		{"nexus failure is a conflict", Hdr{HostStatus: 0x11, Info: 1}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, initiator.ErrReservationConflict)
		}},
		{"busy", Hdr{Status: 0x08, Info: 1}, func(t *testing.T, err error) {
			var se *initiator.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, byte(0x08), se.Status)
			assert.NotErrorIs(t, err, initiator.ErrReservationConflict)
		}},
		{"unit attention, fixed sense", Hdr{Status: 0x02, SbLenWr: uint8(len(ua)), DriverStatus: 0x08, Info: 1}, func(t *testing.T, err error) {
			assert.True(t, initiator.IsReservationUnitAttention(err), err)
		}},
		{"descriptor sense, driver sense only", Hdr{SbLenWr: uint8(len(desc)), DriverStatus: 0x08, Info: 1}, func(t *testing.T, err error) {
			var se *initiator.SenseError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, byte(0x5), se.Key)
			assert.Equal(t, byte(0x24), se.ASC)
		}},
		{"check condition without sense", Hdr{Status: 0x02, Info: 1}, func(t *testing.T, err error) {
			assert.ErrorContains(t, err, "without sense")
		}},
		{"host timeout", Hdr{HostStatus: 0x03, Info: 1}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorContains(t, err, "DID_TIME_OUT")
		}},
		{"transport disrupted", Hdr{HostStatus: 0x0e, Info: 1}, func(t *testing.T, err error) {
			var te *TransportError
			require.ErrorAs(t, err, &te)
			assert.False(t, te.Timeout())
			assert.ErrorContains(t, err, "DID_TRANSPORT_DISRUPTED")
		}},
		{"driver timeout", Hdr{DriverStatus: 0x06, Info: 1}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		}},
	} {
		t.Run(c.desc, func(t *testing.T) {
			sense := make([]byte, 96)
			if c.desc == "descriptor sense, driver sense only" {
				copy(sense, desc)
			} else {
				copy(sense, ua)
			}
			c.check(t, Check(&c.h, sense))
		})
	}
}

func TestTimeoutMS(t *testing.T) {
	now := time.Unix(1000, 0)
	ms, err := timeoutMS(context.Background(), now)
	require.NoError(t, err)
	assert.Equal(t, uint32(30000), ms)
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(1500*time.Microsecond))
	defer cancel()
	ms, err = timeoutMS(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), ms, "rounded up")
	_, err = timeoutMS(ctx, now.Add(time.Second))
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
}

// FuzzCheck feeds arbitrary completions and sense data to Check: it must
// not panic, and GOOD with nothing else set must be success.
func FuzzCheck(f *testing.F) {
	f.Add(byte(0x02), uint16(0), uint16(0x08), byte(18), []byte{0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 0x03})
	f.Add(byte(0x18), uint16(0), uint16(0), byte(0), []byte{})
	f.Add(byte(0), uint16(0x03), uint16(0x06), byte(200), []byte{0x72})
	f.Fuzz(func(t *testing.T, status byte, host, driver uint16, sbLen byte, sense []byte) {
		h := Hdr{Status: status, HostStatus: host, DriverStatus: driver, SbLenWr: sbLen, Info: 1}
		err := Check(&h, sense)
		if status == 0 && host == 0 && driver&0x0f == 0 && err != nil {
			// Info alone (SG_INFO_CHECK) with nothing set is a host error
			// of zero codes; it must still be an error, not a panic.
			_ = err.Error()
		}
		if status != 0 && err == nil {
			t.Fatalf("status %#x gave no error", status)
		}
	})
}
