package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// provisioned is what `tandemctl provision --json` prints (tandemctl's
// result).
type provisioned struct {
	Changed bool   `json:"changed"`
	Message string `json:"message"`
	Secret  string `json:"secret"`
}

// parseProvision reads provision's JSON answer. first says whether this is
// the run that must make everything (and print a secret) or the repeat
// that must change nothing.
func parseProvision(out []byte, first bool) (provisioned, error) {
	var p provisioned
	if err := json.Unmarshal(out, &p); err != nil {
		return p, fmt.Errorf("tandemctl provision --json printed no result: %w: %q", err, out)
	}
	switch {
	case first && !p.Changed:
		return p, fmt.Errorf("the first provision changed nothing: %s", p.Message)
	case first && p.Secret == "":
		return p, fmt.Errorf("the first provision printed no CHAP secret: %s", p.Message)
	case !first && p.Changed:
		return p, fmt.Errorf("a second provision changed something: %s", p.Message)
	case !first && p.Secret != "":
		return p, errors.New("a second provision printed a new CHAP secret")
	case !first && !strings.Contains(p.Message, "nothing to change"):
		return p, fmt.Errorf("a second provision did not say that nothing changed: %s", p.Message)
	}
	return p, nil
}

// isCapacityChanged reports whether err is the unit attention CAPACITY
// DATA HAS CHANGED (2Ah/09h, SBC-3 section 4.6).
func isCapacityChanged(err error) bool {
	var se *initiator.SenseError
	return errors.As(err, &se) && se.Key == scsi.SenseUnitAttention && se.ASC == scsi.ASCParametersChanged && se.ASCQ == ascqCapacityChanged
}

// ascqCapacityChanged qualifies ASC 2Ah: CAPACITY DATA HAS CHANGED.
const ascqCapacityChanged = 0x09

// Login status class 2 (initiator error) details, RFC 7143 section
// 11.13.5.
const (
	loginAuthentication = 0x01 // wrong credentials
	loginAuthorization  = 0x02 // the initiator is not allowed on the target
)

// isLoginRefused reports whether err is a login the target refused with
// status 02/detail.
func isLoginRefused(err error, detail byte) bool {
	var le *initiator.LoginError
	return errors.As(err, &le) && le.Class == 2 && le.Detail == detail
}

// unmapCommand is UNMAP (SBC-3 section 5.28) of blocks blocks from lba:
// the CDB and its parameter list, an 8-byte header and one 16-byte block
// descriptor.
func unmapCommand(lba uint64, blocks uint32) (cdb, param []byte) {
	param = make([]byte, 24)
	binary.BigEndian.PutUint16(param[0:], uint16(len(param)-2)) // UNMAP DATA LENGTH
	binary.BigEndian.PutUint16(param[2:], 16)                   // BLOCK DESCRIPTOR DATA LENGTH
	binary.BigEndian.PutUint64(param[8:], lba)
	binary.BigEndian.PutUint32(param[16:], blocks)
	cdb = make([]byte, 10)
	cdb[0] = scsi.OpUnmap
	binary.BigEndian.PutUint16(cdb[7:], uint16(len(param)))
	return cdb, param
}
