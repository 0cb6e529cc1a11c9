package lvm

import (
	"fmt"
	"strings"
)

// maxName is lvm2's NAME_LEN (128) less the terminating NUL; the
// device-mapper name "VG-LV" (hyphens inside either doubled) has the same
// limit (DM_NAME_LEN).
const maxName = 127

// reservedLVPrefixes and reservedLVParts are the LV names lvm keeps for
// its own hidden volumes (lvm(8) VALID NAMES; lib/misc/lvm-string.c).
var (
	reservedLVPrefixes = []string{"snapshot", "pvmove"}
	reservedLVParts    = []string{"_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog",
		"_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig"}
)

// ValidateVG checks a volume group name against lvm(8)'s rules. field
// names where the name came from in the error ("vg", "volume_group").
func ValidateVG(field, name string) error {
	return validateName(field, name)
}

// ValidateLV checks a logical volume name (also a thin pool's) against
// lvm(8)'s rules, including the names lvm reserves for hidden LVs.
func ValidateLV(field, name string) error {
	if err := validateName(field, name); err != nil {
		return err
	}
	for _, p := range reservedLVPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("%s %q: %w: lvm reserves names starting with %q for its own volumes: pick another name", field, name, ErrInvalidName, p)
		}
	}
	for _, p := range reservedLVParts {
		if strings.Contains(name, p) {
			return fmt.Errorf("%s %q: %w: lvm reserves names containing %q for hidden sub-volumes: pick another name", field, name, ErrInvalidName, p)
		}
	}
	return nil
}

// validatePair checks that vg/lv fits the device-mapper name limit.
func validatePair(vg, lv string) error {
	if n := len(dmEscape(vg)) + 1 + len(dmEscape(lv)); n > maxName {
		return fmt.Errorf("lv %q in vg %q: %w: the device-mapper name %s-%s is %d bytes, at most %d allowed: shorten the VG or LV name", lv, vg, ErrInvalidName, dmEscape(vg), dmEscape(lv), n, maxName)
	}
	return nil
}

// dmEscape doubles hyphens, as lvm does when it joins VG and LV into the
// device-mapper name.
func dmEscape(s string) string { return strings.ReplaceAll(s, "-", "--") }

func validateName(field, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: %w: empty: give a name", field, ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q: %w: lvm refuses \".\" and \"..\": pick another name", field, name, ErrInvalidName)
	case name[0] == '-':
		return fmt.Errorf("%s %q: %w: starts with '-', which lvm would read as an option: drop the leading '-'", field, name, ErrInvalidName)
	case len(name) > maxName:
		return fmt.Errorf("%s %q: %w: %d bytes, at most %d allowed: shorten it", field, name, ErrInvalidName, len(name), maxName)
	}
	for _, r := range name {
		if !validChar(r) {
			return fmt.Errorf("%s %q: %w: character %q not allowed: use only a-z, A-Z, 0-9, '+', '_', '.' and '-'", field, name, ErrInvalidName, r)
		}
	}
	return nil
}

func validChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '+' || r == '_' || r == '.' || r == '-'
}
