package scsi

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/scsi/pr"
	"github.com/tandem-ha/tandem/target/scsi/pr/prfile"
)

// LUConfig describes one logical unit.
type LUConfig struct {
	// BlockSize is the logical block size in bytes: 512 (default), 1024,
	// 2048 or 4096.
	BlockSize uint32
	// Vendor, Product and Revision fill standard INQUIRY data; defaults
	// "TANDEM", "VDISK", "0001". Longer values are cut to 8, 16 and 4.
	Vendor, Product, Revision string
	// Serial is the unit serial number (VPD 0x80). The NAA identifier of
	// VPD 0x83 is derived from it, so keep it stable across restarts and
	// equal on every node that exports the same data.
	Serial string
	// ReadOnly write-protects the LU: MODE SENSE reports WP and writes end
	// in DATA PROTECT.
	ReadOnly bool
	// Thin enables thin provisioning: UNMAP, WRITE SAME with UNMAP, LBPME
	// in READ CAPACITY 16 and VPD page 0xB2.
	Thin bool
	// WriteCache is the initial WCE bit: true means writes may sit in the
	// page cache until SYNCHRONIZE CACHE or FUA; false syncs every write
	// before GOOD. MODE SELECT may change it.
	WriteCache bool
	// SanitizeRate caps how fast SANITIZE OVERWRITE writes, in bytes per
	// second, so that a sanitize (which rewrites the whole LU, possibly
	// many times) does not starve the other LUs sharing the disk. 0
	// selects DefaultSanitizeRate; a negative value means no limit.
	SanitizeRate int64
	// StateFile is where the persistent reservation state is kept when
	// an initiator sets APTPL (SPC-4 5.12.5), e.g.
	// <state_dir>/pr/<target>-<lun>.state; its directory must exist.
	// NewLU restores it. Empty means the LU cannot persist reservations,
	// and APTPL=1 is refused.
	StateFile string
}

// DefaultSanitizeRate is the SANITIZE OVERWRITE rate used when
// LUConfig.SanitizeRate is 0: 128 MiB/s, so a 1 GiB LU takes 8 s a pass.
const DefaultSanitizeRate = 128 << 20

// Limits reported in the Block Limits VPD page (SBC-3 section 6.5.3) and
// enforced by the handlers.
const (
	maxTransferBytes = 8 << 20 // MAXIMUM TRANSFER LENGTH, in bytes
	maxWriteSame     = 0x10000 // MAXIMUM WRITE SAME LENGTH, blocks
	maxCompareWrite  = 255     // MAXIMUM COMPARE AND WRITE LENGTH, blocks
	maxUnmapBlocks   = 0xffffffff
	maxUnmapDescs    = 4095 // what fits a 16-bit UNMAP parameter list
	// maxAtomicBytes is the MAXIMUM ATOMIC TRANSFER LENGTH in bytes: as
	// large as any write, since the range lock makes every write atomic.
	maxAtomicBytes = maxTransferBytes
)

// LU is a logical unit: a backend plus the SPC/SBC state the initiators
// see. It is safe for concurrent use.
type LU struct {
	cfg     LUConfig
	be      backstore.Backend
	props   backstore.Properties
	mapper  backstore.Mapper
	blocks  uint64 // capacity in logical blocks
	bs      uint32
	shift   uint   // log2(bs)
	lbppbe  uint8  // logical blocks per physical block exponent, always 0 (see NewLU)
	gran    uint32 // optimal (unmap) granularity in blocks
	agran   uint32 // atomic write alignment and granularity in blocks, 0 none
	naa     [8]byte
	maxXfer uint32 // blocks
	// maxWS bounds WRITE SAME to the maximum transfer length, so an
	// initiator that checks a WRITE SAME by reading the range back can
	// do so in one command.
	maxWS uint32

	wce    atomic.Bool // caching mode page WCE
	dsense atomic.Bool // control mode page D_SENSE
	swp    atomic.Bool // control mode page SWP (software write protect)

	writers rangeLock
	// atomics counts WRITE ATOMIC commands in progress and plainReads
	// the reads that run without the range lock: a read takes the lock
	// only while an atomic write is about, so the hot path stays cheap
	// (see readAt and writeAtomic).
	atomics    atomic.Int32
	plainReads atomic.Int32

	san sanitizeState

	// copies keeps the status of EXTENDED COPY commands for RECEIVE
	// COPY RESULTS (SPC-4 6.18).
	copies copyStore

	// mu guards the reservation state and the per-nexus state: commands
	// take it for reading to check them, changes take it for writing.
	mu      sync.RWMutex
	pr      *pr.State
	nexuses map[nexusKey]*nexusState
	states  []*nexusState // distinct values of nexuses, oldest first
	// anon stands for tasks without a Nexus (internal callers, tests):
	// no unit attentions, the zero reservation identity.
	anon nexusState
	// saveState writes the reservation state (prfile.Save; tests swap it).
	saveState func(dir, name string, state []byte) error

	// faults counts the commands that met a backend fault (FaultStats).
	faults faultCounters
	// io counts executed commands by class (IOStats).
	io ioCounters

	// auditor, when set, records every WRITE-class command (SetAuditor).
	auditor atomic.Pointer[auditorBox]
}

// NewLU builds a logical unit over be, which it owns from now on (Close
// closes it).
func NewLU(cfg LUConfig, be backstore.Backend) (*LU, error) {
	if be == nil {
		return nil, errors.New("scsi: new LU: no backend")
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 512
	}
	switch cfg.BlockSize {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("scsi: block size %d unsupported (use 512 or 4096)", cfg.BlockSize)
	}
	if cfg.Serial == "" {
		return nil, errors.New("scsi: LU needs a serial (set LUConfig.Serial; VPD 0x83 derives from it)")
	}
	if cfg.Vendor == "" {
		cfg.Vendor = "TANDEM"
	}
	if cfg.Product == "" {
		cfg.Product = "VDISK"
	}
	if cfg.Revision == "" {
		cfg.Revision = "0001"
	}
	blocks := uint64(be.Size()) / uint64(cfg.BlockSize)
	if blocks == 0 {
		return nil, fmt.Errorf("scsi: backend of %d bytes holds no %d-byte block (grow the file or device)", be.Size(), cfg.BlockSize)
	}
	lu := &LU{cfg: cfg, be: be, blocks: blocks, bs: cfg.BlockSize, shift: uint(bits.TrailingZeros32(cfg.BlockSize))}
	if p, ok := be.(backstore.Prober); ok {
		lu.props = p.Properties()
	}
	if m, ok := be.(backstore.Mapper); ok {
		lu.mapper = m
	}
	if cfg.Thin && !lu.props.CanUnmap {
		return nil, errors.New("scsi: thin LU on a backend that cannot unmap (turn thin off)")
	}
	// The backend's allocation unit is reported as the optimal (unmap)
	// granularity of the Block Limits page, not as LBPPBE: libiscsi's GET
	// LBA STATUS test misreads descriptors when LBPPBE > 0, and Linux
	// takes discard alignment from the granularity anyway.
	lu.gran = 1
	if pbs := lu.props.PhysicalBlockSize; pbs > int64(lu.bs) && pbs <= 1<<16 && pbs&(pbs-1) == 0 {
		lu.gran = uint32(pbs) >> lu.shift
	}
	lu.maxXfer = maxTransferBytes / lu.bs
	lu.maxWS = min(maxWriteSame, lu.maxXfer)
	// WRITE ATOMIC is atomic against other commands at any size (range
	// lock), but a crash can tear a write only within what the backend
	// writes as a unit, so atomic writes cover whole physical blocks.
	if lu.gran > 1 && blocks%uint64(lu.gran) == 0 {
		lu.agran = lu.gran
	}
	sum := sha256.Sum256([]byte("tandem-lu\x00" + cfg.Serial))
	copy(lu.naa[:], sum[:8])
	lu.naa[0] = 0x30 | lu.naa[0]&0x0f // NAA 3: locally assigned (SPC-4 7.8.6.6.3)
	lu.wce.Store(cfg.WriteCache)
	lu.writers.cond.L = &lu.writers.mu
	lu.san.stop = make(chan struct{})
	lu.pr = pr.NewConfig(pr.Config{NoPersistence: cfg.StateFile == ""})
	lu.nexuses = map[nexusKey]*nexusState{}
	lu.saveState = prfile.Save
	if cfg.StateFile != "" {
		if err := lu.loadState(); err != nil {
			return nil, err
		}
	}
	return lu, nil
}

// writeProtected reports whether writes end in DATA PROTECT: a read-only
// LU, or SWP set in the control mode page (SPC-4 7.5.8).
func (lu *LU) writeProtected() bool { return lu.cfg.ReadOnly || lu.swp.Load() }

// Size is the capacity in bytes.
func (lu *LU) Size() int64 { return int64(lu.blocks) << lu.shift }

// Close stops a background sanitize, if any, and closes the backend.
func (lu *LU) Close() error {
	lu.closeSanitize()
	return lu.be.Close()
}

// durable makes a completed write durable when SBC-3 requires it before
// GOOD: FUA set, or the write cache disabled (WCE=0), unless the backend
// already writes through.
func (lu *LU) durable(fua bool) error {
	if lu.props.WriteThrough || (!fua && lu.wce.Load()) {
		return nil
	}
	return lu.be.Sync()
}

// rangeLock serializes writers of overlapping block ranges, so COMPARE
// AND WRITE and ORWRITE are atomic against every other write (SBC-3
// section 5.2). It does not allocate once its slice has grown.
type rangeLock struct {
	mu   sync.Mutex
	cond sync.Cond
	held []lockedRange
	next uint64
}

type lockedRange struct{ start, end, id uint64 }

func (l *rangeLock) lock(start, n uint64) uint64 {
	end := start + n
	l.mu.Lock()
	for l.busy(start, end) {
		l.cond.Wait()
	}
	l.next++
	id := l.next
	l.held = append(l.held, lockedRange{start, end, id})
	l.mu.Unlock()
	return id
}

// current is the last acquisition number handed out.
func (l *rangeLock) current() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

func (l *rangeLock) busy(start, end uint64) bool {
	for _, r := range l.held {
		if start < r.end && r.start < end {
			return true
		}
	}
	return false
}

func (l *rangeLock) unlock(id uint64) {
	l.mu.Lock()
	for i, r := range l.held {
		if r.id == id {
			last := len(l.held) - 1
			l.held[i] = l.held[last]
			l.held = l.held[:last]
			break
		}
	}
	l.mu.Unlock()
	l.cond.Broadcast()
}
