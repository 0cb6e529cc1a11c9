package iscsi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/pdu"
)

// BenchmarkRead4K measures a 4 KiB READ over loopback; allocs/op shows
// what the fabric allocates per I/O (the stub disk allocates nothing).
func BenchmarkRead4K(b *testing.B) {
	ts := startServer(b, defaultParams(), nil)
	c := dial(b, ts.addr)
	c.loginNormal(isid1)
	_ = c.nc.SetReadDeadline(time.Time{})
	cmd := c.scsiCmd(read10(0, 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil)
	c.cmdSN-- // scsiCmd consumed one; the loop numbers the commands
	var in pdu.PDU
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd.BHS.SetCmdSN(c.cmdSN)
		c.cmdSN++
		cmd.BHS.SetITT(uint32(i))
		if err := c.w.Write(cmd); err != nil {
			b.Fatal(err)
		}
		for {
			require.NoError(b, c.r.Read(&in))
			if in.BHS.Flags()&pdu.FlagStatus != 0 {
				break
			}
		}
	}
}

func FuzzParseAHS(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 5, 1, 0, 1, 2, 3, 4, 0, 0, 0, 0})    // extended CDB
	f.Add([]byte{0, 5, 2, 0, 0, 0, 0x10, 0, 0, 0, 0, 0}) // bidi read length
	f.Add([]byte{0xff, 0xff, 1, 0})                      // length beyond the header
	f.Fuzz(func(t *testing.T, ahs []byte) {
		var cmd command
		_ = cmd.parseAHS(ahs)
	})
}
