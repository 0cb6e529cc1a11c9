package scsi

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tandem-ha/tandem/target/audit"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// BenchmarkWrite4K measures what the audit costs a 4 KiB write through
// Execute (page cache backend, parallel writers): compare the plain and
// audit sub-benchmarks' ns/op; dropped/op counts records lost to a full
// buffer.
func BenchmarkWrite4K(b *testing.B) {
	for _, withAudit := range []bool{false, true} {
		name := "plain"
		if withAudit {
			name = "audit"
		}
		b.Run(name, func(b *testing.B) {
			tgt, lu := newTestTarget(b, LUConfig{WriteCache: true}) // page cache, no fdatasync per write
			var w *audit.Writer
			if withAudit {
				f, err := os.Create(filepath.Join(b.TempDir(), "bench.audit"))
				if err != nil {
					b.Fatal(err)
				}
				if w, err = audit.NewWriter(f, 0); err != nil {
					b.Fatal(err)
				}
				lu.SetAuditor(w)
			}
			n := &Nexus{Initiator: "iqn.2025-01.test:bench", ISID: [6]byte{0x80, 0, 0, 0, 0, 9}, Target: prTarget, TPGT: 1}
			for range maxPendingUAs + 1 {
				runAs(tgt, n, make([]byte, 6), nil, 0)
			}
			var next atomic.Uint32
			b.SetBytes(4096)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				data := make([]byte, 4096)
				cdb := cdb10(wscsi.OpWrite10, 0, 0, 8)
				task := &Task{Nexus: n, CDB: cdb, DataOut: data, ExpectedLength: 4096}
				for pb.Next() {
					lba := (next.Add(1) * 2654435761) % (testBlocks/8 - 1) * 8 // scattered 4 KiB writes
					binary.BigEndian.PutUint32(cdb[2:], lba)
					if r := tgt.Execute(task); r.Status != wscsi.StatusGood {
						b.Fatalf("write: status %#x", r.Status)
					}
				}
			})
			if w != nil {
				b.StopTimer()
				_ = w.Close()
				b.ReportMetric(float64(w.Stats().Dropped)/float64(b.N), "dropped/op")
			}
		})
	}
}
