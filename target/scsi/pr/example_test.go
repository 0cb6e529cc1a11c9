package pr_test

import (
	"encoding/binary"
	"fmt"

	"github.com/tandem-ha/tandem/target/scsi/pr"
)

// A logical unit routes commands to its State and carries out the side
// effects the Result lists.
func Example() {
	lu := pr.New()
	a := pr.Port{Initiator: "iqn.2024-01.example:a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, RelTgtPort: 1}
	b := pr.Port{Initiator: "iqn.2024-01.example:b", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}, RelTgtPort: 1}

	prout := func(p pr.Port, sa byte, typ pr.Type, key, sark uint64) pr.Result {
		cdb := []byte{0x5f, sa, byte(typ), 0, 0, 0, 0, 0, 24, 0}
		param := make([]byte, 24)
		binary.BigEndian.PutUint64(param[0:], key)
		binary.BigEndian.PutUint64(param[8:], sark)
		r := lu.Out(p, cdb, param)
		if r.Persist {
			state, _ := lu.MarshalBinary()
			_ = state // prfile.Save(dir, "lun0.pr", state) before completing
		}
		return r
	}
	prout(a, 0x6, 0, 0, 0xa) // REGISTER AND IGNORE EXISTING KEY
	prout(b, 0x6, 0, 0, 0xb)
	prout(a, 0x1, pr.WriteExclusiveRegistrantsOnly, 0xa, 0)        // RESERVE
	r := prout(b, 0x5, pr.WriteExclusiveRegistrantsOnly, 0xb, 0xa) // PREEMPT AND ABORT
	for _, ua := range r.UAs {
		fmt.Printf("unit attention %02x/%02x for a: %v\n", ua.ASC, ua.ASCQ, ua.AppliesTo(a))
	}
	fmt.Println("abort a's tasks:", r.Abort[0].Matches(a))

	write10 := []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	fmt.Println("a write conflicts:", lu.Check(a, write10))
	fmt.Println("b write conflicts:", lu.Check(b, write10))
	// Output:
	// unit attention 2a/05 for a: true
	// abort a's tasks: true
	// a write conflicts: true
	// b write conflicts: false
}
