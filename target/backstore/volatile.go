package backstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
)

// Volatile is a File under a write cache of its own, in memory, like
// LazyFS's: a write stays in the cache until Sync (FUA, SYNCHRONIZE
// CACHE, WCE=0), and PowerCut loses what is still there, or persists a
// random part of it, reordered or torn. The kernel's page cache survives
// a SIGKILL of the daemon, so only a cache the daemon owns lets a lab
// catch an acknowledgement given before the data was made durable.
//
// It works in 512-byte sectors; the LU only writes whole blocks. Unmap
// is not cached: it drops the cached sectors it covers and punches the
// file at once.
type Volatile struct {
	file *File
	// brokenSync makes Sync leave the cache alone: the deliberately
	// broken build the durability checker's negative control needs.
	brokenSync bool

	mu      sync.RWMutex
	pending []cached         // unsynced writes, oldest first
	sectors map[int64][]byte // sector -> its newest unsynced content
}

type cached struct {
	off  int64
	data []byte
}

const sector = 512

var errUnaligned = errors.New("backstore: volatile cache takes whole 512-byte sectors only")

func openVolatile(path string, opts Options) (*Volatile, error) {
	f, err := openFile(path, opts)
	if err != nil {
		return nil, err
	}
	return &Volatile{file: f, brokenSync: opts.TestBrokenSync, sectors: map[int64][]byte{}}, nil
}

// ReadAt reads the file and lays the cached sectors over it.
func (v *Volatile) ReadAt(p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n, err := v.file.ReadAt(p, off)
	if err != nil || len(v.sectors) == 0 || off%sector != 0 || len(p)%sector != 0 {
		return n, err
	}
	for i := 0; i < len(p); i += sector {
		if d, ok := v.sectors[(off+int64(i))/sector]; ok {
			copy(p[i:i+sector], d)
		}
	}
	return n, nil
}

// WriteAt keeps a copy of p in the cache.
func (v *Volatile) WriteAt(p []byte, off int64) (int, error) {
	if v.file.readOnly {
		return 0, ErrReadOnly
	}
	if off%sector != 0 || len(p)%sector != 0 {
		return 0, errUnaligned
	}
	if off+int64(len(p)) > v.file.size {
		return 0, fmt.Errorf("backstore: write at %d+%d beyond the end (%d bytes)", off, len(p), v.file.size)
	}
	d := append([]byte(nil), p...)
	v.mu.Lock()
	v.pending = append(v.pending, cached{off: off, data: d})
	for i := 0; i < len(d); i += sector {
		v.sectors[(off+int64(i))/sector] = d[i : i+sector]
	}
	v.mu.Unlock()
	return len(p), nil
}

// Sync writes the cache to the file in order and fdatasyncs it.
func (v *Volatile) Sync() error {
	if v.brokenSync {
		return nil
	}
	v.mu.Lock()
	for i, c := range v.pending {
		if _, err := v.file.WriteAt(c.data, c.off); err != nil {
			v.pending = v.pending[i:]
			v.reindexLocked()
			v.mu.Unlock()
			return fmt.Errorf("backstore: flush volatile cache: %w", err)
		}
	}
	v.pending, v.sectors = nil, map[int64][]byte{}
	v.mu.Unlock()
	return v.file.Sync()
}

// reindexLocked rebuilds the sector index from pending.
func (v *Volatile) reindexLocked() {
	v.sectors = map[int64][]byte{}
	for _, c := range v.pending {
		for i := 0; i < len(c.data); i += sector {
			v.sectors[(c.off+int64(i))/sector] = c.data[i : i+sector]
		}
	}
}

// Unmap drops the cached sectors of the range, then punches the file.
func (v *Volatile) Unmap(off, length int64) error {
	if v.file.readOnly {
		return ErrReadOnly
	}
	if length <= 0 {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	end := off + length
	kept := v.pending[:0:0]
	for _, c := range v.pending {
		cend := c.off + int64(len(c.data))
		if cend <= off || c.off >= end {
			kept = append(kept, c)
			continue
		}
		if c.off < off {
			kept = append(kept, cached{off: c.off, data: c.data[:off-c.off]})
		}
		if cend > end {
			kept = append(kept, cached{off: end, data: c.data[end-c.off:]})
		}
	}
	v.pending = kept
	v.reindexLocked()
	return v.file.Unmap(off, length)
}

// Size is the file size in bytes.
func (v *Volatile) Size() int64 { return v.file.size }

// Close writes the cache out, as a drive flushes on an orderly stop, and
// closes the file. Only PowerCut (or a SIGKILL) loses it.
func (v *Volatile) Close() error {
	err := v.Sync()
	return errors.Join(err, v.file.Close())
}

// Properties are the file's, never write-through: the LU must call Sync.
func (v *Volatile) Properties() Properties {
	p := v.file.Properties()
	p.WriteThrough = false
	return p
}

// Cut selects what a power cut does with the unsynced writes.
type Cut struct {
	// Mode: CutDrop loses them all; CutReorder persists a random subset,
	// whole, in random order; CutTear does the same but may persist only
	// a leading part of each chosen write.
	Mode CutMode
	// Seed makes the choice repeatable; print it with a failure.
	Seed uint64
}

// CutMode is the kind of power cut.
type CutMode string

// Power cut modes.
const (
	CutDrop    CutMode = "drop"
	CutReorder CutMode = "reorder"
	CutTear    CutMode = "tear"
)

// CutReport says what a power cut did.
type CutReport struct {
	// Pending writes were in the cache; Persisted of them reached the
	// file (Torn of those only in part); the rest were lost.
	Pending   int `json:"pending"`
	Persisted int `json:"persisted"`
	Torn      int `json:"torn"`
}

// CutStep is one unsynced write a power cut persists: the index of the
// write among the pending ones and how many of its sectors.
type CutStep struct {
	Write, Sectors int
}

// PlanCut is the pure choice of a power cut: which of the pending writes
// (given by their sizes in sectors, oldest first) reach the medium, in
// which order, and how much of each.
func PlanCut(sizes []int, c Cut) ([]CutStep, error) {
	switch c.Mode {
	case CutDrop, "":
		return nil, nil
	case CutReorder, CutTear:
	default:
		return nil, fmt.Errorf("backstore: power cut mode %q unknown (use drop, reorder or tear)", c.Mode)
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x7a6e64656d)) // fixed stream per seed
	var steps []CutStep
	for i, n := range sizes {
		if rng.IntN(2) == 0 {
			continue
		}
		s := CutStep{Write: i, Sectors: n}
		if c.Mode == CutTear && n > 0 && rng.IntN(2) == 0 {
			s.Sectors = rng.IntN(n) // a torn write: a leading part, maybe nothing
		}
		steps = append(steps, s)
	}
	rng.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
	return steps, nil
}

// PowerCut empties the cache as a power loss would (see Cut): the LU then
// reads only what is durable. The persisted part is fdatasynced.
func (v *Volatile) PowerCut(c Cut) (CutReport, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	sizes := make([]int, len(v.pending))
	for i, p := range v.pending {
		sizes[i] = len(p.data) / sector
	}
	steps, err := PlanCut(sizes, c)
	if err != nil {
		return CutReport{}, err
	}
	rep := CutReport{Pending: len(v.pending)}
	for _, s := range steps {
		p := v.pending[s.Write]
		if s.Sectors < sizes[s.Write] {
			rep.Torn++
		}
		if s.Sectors == 0 {
			continue
		}
		rep.Persisted++
		if _, err := v.file.WriteAt(p.data[:s.Sectors*sector], p.off); err != nil {
			return rep, fmt.Errorf("backstore: power cut: persist a cached write: %w", err)
		}
	}
	v.pending, v.sectors = nil, map[int64][]byte{}
	if err := v.file.Sync(); err != nil {
		return rep, err
	}
	return rep, nil
}

// Unsynced is the number of writes in the cache.
func (v *Volatile) Unsynced() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.pending)
}
