package lvm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tandem-ha/tandem/lvm"
)

func TestValidateNames(t *testing.T) {
	for _, tc := range []struct {
		desc, name string
		vgOK, lvOK bool
		says       string // part of the error
	}{
		{desc: "plain", name: "lun0", vgOK: true, lvOK: true},
		{desc: "every allowed character", name: "aZ09+_.-x", vgOK: true, lvOK: true},
		{desc: "empty", name: "", says: "empty"},
		{desc: "dot", name: ".", says: `"." and ".."`},
		{desc: "dot dot", name: "..", says: `"." and ".."`},
		{desc: "leading hyphen", name: "-lun", says: "drop the leading '-'"},
		{desc: "space", name: "lun 0", says: "character ' ' not allowed"},
		{desc: "slash", name: "vg/lv", says: "character '/' not allowed"},
		{desc: "non-ASCII", name: "lün", says: "not allowed"},
		{desc: "128 bytes", name: strings.Repeat("a", 128), says: "at most 127"},
		{desc: "127 bytes", name: strings.Repeat("a", 127), vgOK: true, lvOK: true},
		{desc: "snapshot prefix", name: "snapshot1", vgOK: true, says: `starting with "snapshot"`},
		{desc: "pvmove prefix", name: "pvmove", vgOK: true, says: `starting with "pvmove"`},
		{desc: "thin data suffix", name: "pool_tdata", vgOK: true, says: `containing "_tdata"`},
		{desc: "thin meta suffix", name: "pool_tmeta", vgOK: true, says: `containing "_tmeta"`},
		{desc: "pool spare", name: "lvol0_pmspare", vgOK: true, says: `"_pmspare"`},
		{desc: "reserved word inside, not as prefix", name: "mysnapshot", vgOK: true, lvOK: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			vgErr, lvErr := lvm.ValidateVG("volume_group", tc.name), lvm.ValidateLV("lv", tc.name)
			if tc.vgOK {
				assert.NoError(t, vgErr)
			} else {
				assert.ErrorIs(t, vgErr, lvm.ErrInvalidName)
				assert.ErrorContains(t, vgErr, "volume_group", "the error names the field")
				assert.ErrorContains(t, vgErr, tc.says)
			}
			if tc.lvOK {
				assert.NoError(t, lvErr)
			} else {
				assert.True(t, errors.Is(lvErr, lvm.ErrInvalidName), "%v", lvErr)
				assert.True(t, strings.HasPrefix(lvErr.Error(), "lv"), "the error names the field: %v", lvErr)
				assert.ErrorContains(t, lvErr, tc.says)
			}
		})
	}
}
