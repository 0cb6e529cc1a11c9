package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxNameLength is the longest iSCSI name (RFC 7143 section 4.2.7.1).
const maxNameLength = 223

// CheckName reports why name is not a valid iSCSI name in one of the three
// formats of RFC 7143 section 4.2.7: "iqn.yyyy-mm.reversed.domain[:any]",
// "eui." plus 16 hex digits, or "naa." plus 16 or 32 hex digits. Names are
// compared after RFC 3722 stringprep, which lowercases them, so uppercase
// letters in an iqn. name are refused rather than silently folded.
func CheckName(name string) error {
	if name == "" {
		return errors.New("empty iSCSI name: use iqn.yyyy-mm.reversed.domain:id")
	}
	if len(name) > maxNameLength {
		return fmt.Errorf("iSCSI name is %d bytes, the limit is %d (RFC 7143 section 4.2.7.1)", len(name), maxNameLength)
	}
	switch {
	case strings.HasPrefix(name, "iqn."):
		return checkIQN(name)
	case strings.HasPrefix(name, "eui."):
		return checkHexName(name, "eui.", 16)
	case strings.HasPrefix(name, "naa."):
		return checkHexName(name, "naa.", 16, 32)
	}
	return fmt.Errorf("iSCSI name %q must start with iqn., eui. or naa. (RFC 7143 section 4.2.7)", name)
}

func checkIQN(name string) error {
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':'
		if !ok {
			return fmt.Errorf("iSCSI name %q contains %q: use only lowercase a-z, 0-9, '-', '.' and ':' (RFC 3722)", name, r)
		}
	}
	rest := strings.TrimPrefix(name, "iqn.")
	// yyyy-mm: the month the naming authority owned the domain.
	if len(rest) < 8 || rest[4] != '-' || rest[7] != '.' {
		return fmt.Errorf("iSCSI name %q: iqn. must be followed by a date yyyy-mm and a dot, e.g. iqn.2024-01.com.example:disk1", name)
	}
	year, errY := strconv.Atoi(rest[:4])
	month, errM := strconv.Atoi(rest[5:7])
	if errY != nil || errM != nil || year < 1900 || month < 1 || month > 12 {
		return fmt.Errorf("iSCSI name %q: %q is not a valid yyyy-mm date", name, rest[:7])
	}
	authority, _, _ := strings.Cut(rest[8:], ":")
	if authority == "" {
		return fmt.Errorf("iSCSI name %q: a reversed domain name must follow the date, e.g. iqn.2024-01.com.example", name)
	}
	for _, label := range strings.Split(authority, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("iSCSI name %q: %q is not a valid reversed domain name", name, authority)
		}
	}
	return nil
}

func checkHexName(name, prefix string, lengths ...int) error {
	digits := strings.TrimPrefix(name, prefix)
	okLen := false
	for _, l := range lengths {
		okLen = okLen || len(digits) == l
	}
	if _, err := hex.DecodeString(digits); err != nil || !okLen {
		want := fmt.Sprint(lengths[0])
		if len(lengths) > 1 {
			want += " or " + fmt.Sprint(lengths[1])
		}
		return fmt.Errorf("iSCSI name %q: %s must be followed by exactly %s hex digits (RFC 7143 section 4.2.7)", name, prefix, want)
	}
	return nil
}

// DefaultSerial derives a LUN's unit serial number from its target name and
// ID, so that the serial (and the NAA identifier derived from it) stays the
// same across restarts and across the nodes of an HA pair.
func DefaultSerial(target string, id uint64) string {
	sum := sha256.Sum256([]byte(strings.ToLower(target) + "\x00" + strconv.FormatUint(id, 10)))
	return hex.EncodeToString(sum[:8])
}

// ParseSize parses a byte count: a plain integer, or an integer with a
// unit: K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB powers
// of 1000 (case-insensitive).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	lower := strings.ToLower(t)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
		{"b", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q is not a byte count: use e.g. 1073741824, 10GiB or 512MiB", s)
	}
	if n > 0 && mult > (1<<63-1)/n {
		return 0, fmt.Errorf("size %q overflows 64 bits", s)
	}
	return n * mult, nil
}

// equalNames compares iSCSI names as RFC 3722 stringprep does: case folded.
func equalNames(a, b string) bool { return strings.EqualFold(a, b) }
