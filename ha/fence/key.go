package fence

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
)

// Key is the persistent reservation key of node in cluster:
// SHA-256(cluster)[0:4] || SHA-256(node)[0:4], big-endian, never 0.
func Key(cluster, node string) uint64 {
	c := sha256.Sum256([]byte(cluster))
	n := sha256.Sum256([]byte(node))
	k := uint64(binary.BigEndian.Uint32(c[:4]))<<32 | uint64(binary.BigEndian.Uint32(n[:4]))
	if k == 0 {
		k = 1 // SPC-4 6.16.2: 0 is not a reservation key
	}
	return k
}

// FormatKey writes a key as operators read it in sg_persist: 0x%016x.
func FormatKey(k uint64) string {
	s := strconv.FormatUint(k, 16)
	return "0x" + strings.Repeat("0", 16-len(s)) + s
}

// IQNPrefix is the prefix of the derived initiator names.
const IQNPrefix = "iqn.2026-11.io.tandem:fence"

// InitiatorName is the native initiator's iSCSI name for node in cluster:
// IQNPrefix.<cluster>.<node>, lowercased, characters outside RFC 3722's
// set replaced by '-'.
func InitiatorName(cluster, node string) string {
	return IQNPrefix + "." + iscsiSafe(cluster) + "." + iscsiSafe(node)
}

func iscsiSafe(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "x"
	}
	return string(b)
}

// ISID is the session id of the fence's native sessions: the "random"
// format (T=10b, RFC 7143 11.12.5) filled from the key, so a redial reuses
// the I_T nexus that holds the registration.
func ISID(key uint64) [6]byte {
	var id [6]byte
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], key)
	copy(id[1:], b[3:])
	id[0] = 0x80 | b[2]&0x3f
	return id
}
