package itest

import (
	"testing"
	"time"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/config"
)

func TestZZSan(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	l := sparseLUN(t, dir, "s0", 0, 1<<30)
	l.Thin = true
	cfg.Targets = []config.Target{{Name: prIQN, LUNs: []config.LUN{l}}}
	d := start(t, dir, cfg)
	a := dialNode(t, d.addr, "iqn.2026-11.dev.tandem:a", isidA)
	do := func(name string, cdb []byte, out []byte, in uint32) {
		st := time.Now()
		r, err := a.Do(ctx(t), &initiator.Command{LUN: 0, CDB: cdb, DataOut: out, ReadLen: in})
		if err != nil {
			t.Logf("%s: err %v", name, err)
			return
		}
		t.Logf("%s: %v status %x sense %x", name, time.Since(st), r.Status, r.Sense)
	}
	do("tur", []byte{0, 0, 0, 0, 0, 0}, nil, 0)
	p := make([]byte, 516)
	p[0] = 1
	p[2], p[3] = 2, 0
	do("sanitize", []byte{0x48, 0x01, 0, 0, 0, 0, 0, 2, 4, 0}, p, 0)
	do("tur", []byte{0, 0, 0, 0, 0, 0}, nil, 0)
}
