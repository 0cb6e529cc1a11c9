// Package text encodes and decodes iSCSI text key=value data segments
// (RFC 7143 section 6): NUL-terminated "key=value" pairs, in order.
package text

import (
	"errors"
	"strconv"
	"strings"
)

// Limits from RFC 7143 section 6.1.
const (
	MaxKeyLen   = 63
	MaxValueLen = 8192
)

// Reserved values.
const (
	NotUnderstood = "NotUnderstood"
	Irrelevant    = "Irrelevant"
	Reject        = "Reject"
	None          = "None"
)

// KV is one key=value pair.
type KV struct {
	Key, Value string
}

// Errors of Parse.
var (
	ErrNoEquals    = errors.New("text: pair without '='")
	ErrKeyTooLong  = errors.New("text: key longer than 63 bytes")
	ErrBadKey      = errors.New("text: key has characters outside a-z A-Z 0-9 . - + @ _")
	ErrValTooLong  = errors.New("text: value longer than 8192 bytes")
	ErrDuplicate   = errors.New("text: key sent twice")
	ErrNotTerminal = errors.New("text: data does not end with NUL")
)

// Parse decodes a data segment. A segment that does not end in NUL is an
// error unless partial is true (a Continue-bit PDU), in which case the
// unterminated tail is returned as rest for the caller to prepend to the
// next segment. Duplicate keys are an error (RFC 7143 section 6.1).
func Parse(data []byte, partial bool) (kvs []KV, rest []byte, err error) {
	seen := map[string]bool{}
	for len(data) > 0 {
		i := indexByte(data, 0)
		if i < 0 {
			if partial {
				return kvs, data, nil
			}
			return nil, nil, ErrNotTerminal
		}
		pair := data[:i]
		data = data[i+1:]
		if len(pair) == 0 {
			// Tolerate padding NULs.
			continue
		}
		eq := indexByte(pair, '=')
		if eq < 0 {
			return nil, nil, ErrNoEquals
		}
		k, v := string(pair[:eq]), string(pair[eq+1:])
		if len(k) > MaxKeyLen {
			return nil, nil, ErrKeyTooLong
		}
		if !validKey(k) {
			return nil, nil, ErrBadKey
		}
		if len(v) > MaxValueLen {
			return nil, nil, ErrValTooLong
		}
		if seen[k] {
			return nil, nil, ErrDuplicate
		}
		seen[k] = true
		kvs = append(kvs, KV{k, v})
	}
	return kvs, nil, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '-' || c == '+' || c == '@' || c == '_':
		case c == '#' && i == 1 && k[0] == 'X':
			// Public extension keys "X#name" (RFC 7143 section 13.5.2).
		default:
			return false
		}
	}
	return true
}

// Append encodes kvs after b.
func Append(b []byte, kvs ...KV) []byte {
	for _, kv := range kvs {
		b = append(b, kv.Key...)
		b = append(b, '=')
		b = append(b, kv.Value...)
		b = append(b, 0)
	}
	return b
}

// Get returns the value of key and whether it was present.
func Get(kvs []KV, key string) (string, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// ParseNumber decodes a numerical value: decimal, or hex with 0x
// (RFC 7143 section 6.1, "numerical values").
func ParseNumber(s string) (uint64, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return strconv.ParseUint(s[2:], 16, 64)
	}
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("text: bad number " + strconv.Quote(s))
	}
	return strconv.ParseUint(s, 10, 64)
}

// ParseBool decodes "Yes" or "No".
func ParseBool(s string) (bool, error) {
	switch s {
	case "Yes":
		return true, nil
	case "No":
		return false, nil
	}
	return false, errors.New("text: bad boolean " + strconv.Quote(s))
}

// FormatBool encodes a boolean as "Yes" or "No".
func FormatBool(v bool) string {
	if v {
		return "Yes"
	}
	return "No"
}
