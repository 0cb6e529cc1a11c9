package initiator

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/tandem-ha/tandem/wire/scsi"
)

// InquiryData is the decoded standard INQUIRY data (SPC-4 section 6.6.2).
type InquiryData struct {
	PeripheralQualifier, PeripheralType byte
	Removable                           bool
	Version                             byte
	Vendor, Product, Revision           string
	Raw                                 []byte
}

// Capacity is the READ CAPACITY (16) answer (SBC-3 section 5.16).
type Capacity struct {
	// LastLBA is the address of the last block; Blocks is LastLBA+1.
	LastLBA, Blocks uint64
	BlockSize       uint32
	// ThinProvisioned is LBPME; ReadZeros is LBPRZ.
	ThinProvisioned, ReadZeros bool
}

// Size is the capacity in bytes.
func (c Capacity) Size() int64 { return int64(c.Blocks) * int64(c.BlockSize) }

// uaRetries bounds how often a convenience call reissues a command that
// got a UNIT ATTENTION. Each UA is reported once per nexus (SAM-5 section
// 5.14) and the command was not executed, so reissuing is safe; a few
// retries cover several pending UAs (power on, mode change, ...).
const uaRetries = 5

// retryUA reports whether a convenience call should reissue a command
// that failed with err: a unit attention other than the persistent
// reservation ones, which the caller needs to see (fencing).
func retryUA(err error, attempt int) bool {
	return attempt < uaRetries && IsUnitAttention(err) && !IsReservationUnitAttention(err)
}

// simple runs a command, reissuing it on unit attentions (see retryUA).
func (s *Session) simple(ctx context.Context, lun uint64, cdb []byte, readLen uint32) (*Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := s.simpleOnce(ctx, lun, cdb, readLen)
		if err == nil || !retryUA(err, attempt) {
			return resp, err
		}
		s.log.Debug("retrying after unit attention", "lun", lun, "op", cdb[0], "err", err)
	}
}

// simpleOnce runs a command once and returns its status as an error.
func (s *Session) simpleOnce(ctx context.Context, lun uint64, cdb []byte, readLen uint32) (*Response, error) {
	resp, err := s.Do(ctx, &Command{LUN: lun, CDB: cdb, ReadLen: readLen})
	if err != nil {
		return nil, err
	}
	return resp, resp.Err()
}

// TestUnitReady sends TEST UNIT READY.
func (s *Session) TestUnitReady(ctx context.Context, lun uint64) error {
	_, err := s.simple(ctx, lun, make([]byte, 6), 0)
	return err
}

// Inquiry reads the standard INQUIRY data.
func (s *Session) Inquiry(ctx context.Context, lun uint64) (*InquiryData, error) {
	resp, err := s.simple(ctx, lun, []byte{scsi.OpInquiry, 0, 0, 0, 96, 0}, 96)
	if err != nil {
		return nil, err
	}
	return DecodeInquiry(resp.Data)
}

// DecodeInquiry decodes standard INQUIRY data (SPC-4 section 6.6.2); the
// SG_IO path (initiator/sgio) shares it.
func DecodeInquiry(d []byte) (*InquiryData, error) {
	if len(d) < 36 {
		return nil, errors.New("initiator: inquiry data is " + strconv.Itoa(len(d)) + " bytes, want at least 36")
	}
	trim := func(b []byte) string { return strings.TrimRight(string(b), " \x00") }
	return &InquiryData{
		PeripheralQualifier: d[0] >> 5, PeripheralType: d[0] & 0x1f,
		Removable: d[1]&0x80 != 0, Version: d[2],
		Vendor: trim(d[8:16]), Product: trim(d[16:32]), Revision: trim(d[32:36]),
		Raw: d,
	}, nil
}

// InquiryVPD reads a vital product data page (EVPD=1).
func (s *Session) InquiryVPD(ctx context.Context, lun uint64, page byte) ([]byte, error) {
	const alloc = 1024
	resp, err := s.simple(ctx, lun, []byte{scsi.OpInquiry, 1, page, alloc >> 8, alloc & 0xff, 0}, alloc)
	if err != nil {
		return nil, err
	}
	return resp.Data, nil
}

// ReadCapacity16 sends READ CAPACITY (16) and remembers the block size
// for ReadInto and Write16.
func (s *Session) ReadCapacity16(ctx context.Context, lun uint64) (Capacity, error) {
	cdb := make([]byte, 16)
	cdb[0], cdb[1] = scsi.OpServiceActionIn16, scsi.SAReadCapacity16
	binary.BigEndian.PutUint32(cdb[10:], 32)
	resp, err := s.simple(ctx, lun, cdb, 32)
	if err != nil {
		return Capacity{}, err
	}
	c, err := DecodeCapacity16(resp.Data)
	if err != nil {
		return c, err
	}
	s.bsMu.Lock()
	if s.blockSizes == nil {
		s.blockSizes = map[uint64]uint32{}
	}
	s.blockSizes[lun] = c.BlockSize
	s.bsMu.Unlock()
	return c, nil
}

// DecodeCapacity16 decodes READ CAPACITY (16) parameter data (SBC-3
// section 5.16); the SG_IO path shares it.
func DecodeCapacity16(d []byte) (Capacity, error) {
	if len(d) < 12 {
		return Capacity{}, errors.New("initiator: read capacity data is too short")
	}
	c := Capacity{LastLBA: binary.BigEndian.Uint64(d), BlockSize: binary.BigEndian.Uint32(d[8:])}
	c.Blocks = c.LastLBA + 1
	if len(d) >= 15 {
		c.ThinProvisioned, c.ReadZeros = d[14]&0x80 != 0, d[14]&0x40 != 0
	}
	if c.BlockSize == 0 {
		return c, errors.New("initiator: target reports a block size of 0")
	}
	return c, nil
}

func (s *Session) blockSize(ctx context.Context, lun uint64) (uint32, error) {
	s.bsMu.RLock()
	bs, ok := s.blockSizes[lun]
	s.bsMu.RUnlock()
	if ok {
		return bs, nil
	}
	c, err := s.ReadCapacity16(ctx, lun)
	return c.BlockSize, err
}

// ReadInto reads len(buf) bytes from block lba with READ (16), straight
// into buf. len(buf) must be a multiple of the block size (found with
// READ CAPACITY (16) on first use).
func (s *Session) ReadInto(ctx context.Context, lun, lba uint64, buf []byte) error {
	bs, err := s.blockSize(ctx, lun)
	if err != nil {
		return err
	}
	if len(buf) == 0 || len(buf)%int(bs) != 0 {
		return errors.New("initiator: read length " + strconv.Itoa(len(buf)) + " is not a positive multiple of the block size " + strconv.Itoa(int(bs)))
	}
	req := request{lun: lun, buf: buf}
	req.cdb[0] = scsi.OpRead16
	binary.BigEndian.PutUint64(req.cdb[2:], lba)
	binary.BigEndian.PutUint32(req.cdb[10:], uint32(len(buf)/int(bs)))
	var resp Response
	for attempt := 0; ; attempt++ {
		if err := s.exec(ctx, req, &resp); err != nil {
			return err
		}
		err := resp.Err()
		if err == nil {
			break
		}
		if !retryUA(err, attempt) {
			return err
		}
	}
	if len(resp.Data) != len(buf) {
		return errors.New("initiator: short read: " + strconv.Itoa(len(resp.Data)) + " of " + strconv.Itoa(len(buf)) + " bytes")
	}
	return nil
}

// Read16 reads blocks blocks from lba into a new buffer.
func (s *Session) Read16(ctx context.Context, lun, lba uint64, blocks uint32) ([]byte, error) {
	bs, err := s.blockSize(ctx, lun)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, int(blocks)*int(bs))
	if err := s.ReadInto(ctx, lun, lba, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Write16 writes data at block lba with WRITE (16); fua sets Force Unit
// Access, so the data is durable when the call returns.
func (s *Session) Write16(ctx context.Context, lun, lba uint64, data []byte, fua bool) error {
	bs, err := s.blockSize(ctx, lun)
	if err != nil {
		return err
	}
	if len(data) == 0 || len(data)%int(bs) != 0 {
		return errors.New("initiator: write length " + strconv.Itoa(len(data)) + " is not a positive multiple of the block size " + strconv.Itoa(int(bs)))
	}
	req := request{lun: lun, dataOut: data}
	req.cdb[0] = scsi.OpWrite16
	if fua {
		req.cdb[1] = 0x08 // FUA (SBC-3 section 5.40)
	}
	binary.BigEndian.PutUint64(req.cdb[2:], lba)
	binary.BigEndian.PutUint32(req.cdb[10:], uint32(len(data)/int(bs)))
	var resp Response
	for attempt := 0; ; attempt++ {
		if err := s.exec(ctx, req, &resp); err != nil {
			return err
		}
		if err := resp.Err(); err == nil || !retryUA(err, attempt) {
			return err
		}
	}
}

// SyncCache sends SYNCHRONIZE CACHE (10) for the whole LUN.
func (s *Session) SyncCache(ctx context.Context, lun uint64) error {
	_, err := s.simple(ctx, lun, []byte{scsi.OpSynchronizeCache10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0)
	return err
}

// ReportLUNs lists the LUN numbers the target exposes (SPC-4 section 6.33).
func (s *Session) ReportLUNs(ctx context.Context) ([]uint64, error) {
	alloc := uint32(8 + 8*64)
	for {
		cdb := make([]byte, 12)
		cdb[0] = scsi.OpReportLUNs
		binary.BigEndian.PutUint32(cdb[6:], alloc)
		resp, err := s.simple(ctx, 0, cdb, alloc)
		if err != nil {
			return nil, err
		}
		d := resp.Data
		if len(d) < 8 {
			return nil, errors.New("initiator: report luns data is too short")
		}
		n := binary.BigEndian.Uint32(d)
		if 8+n > alloc && alloc < 1<<20 {
			alloc = 8 + n
			continue
		}
		var luns []uint64
		for off := 8; off+8 <= len(d) && off < 8+int(n); off += 8 {
			field := binary.BigEndian.Uint64(d[off:])
			if l, ok := decodeLUN(field); ok {
				luns = append(luns, l)
			}
		}
		return luns, nil
	}
}
