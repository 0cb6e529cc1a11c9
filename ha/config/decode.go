package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

// errUnitless marks a duration written without a unit. mapstructure would
// read the number 30 as 30ns; heartbeat users mean seconds. Guessing either
// way is wrong for someone, so the loader refuses and says what to write.
type errUnitless struct{ value string }

func (e errUnitless) Error() string { return fmt.Sprintf("%s has no unit", e.value) }

// unitlessDurationHook refuses a bare number (YAML 30, 1.5 or "30") where a
// time.Duration is expected.
func unitlessDurationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return data, nil // 0 is 0 in every unit: "use the default"
		}
		return nil, errUnitless{fmt.Sprint(data)}
	case reflect.String:
		s := strings.TrimSpace(data.(string))
		if f, err := strconv.ParseFloat(s, 64); err == nil && f != 0 {
			return nil, errUnitless{s}
		}
	}
	return data, nil
}

// explainDecode turns mapstructure's error for a unitless duration into one
// that names the key and the fix; other errors are returned unchanged.
func explainDecode(err error) error {
	var u errUnitless
	var de *mapstructure.DecodeError
	if !errors.As(err, &u) || !errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("%s: %s: write %q (a duration needs a unit: s, ms, m; heartbeat's unitless times are seconds)",
		de.Name(), u, u.value+"s")
}

// restoreNodeKeys gives every link's addresses map back the keys as
// written. viper lowercases map keys, but a node name is a name (uname -n,
// heartbeat's `node MQMaster`) and must match nodes exactly, so the keys
// are read again from the YAML itself; viper's values are kept. Matching
// case-insensitively instead would make "alpha" and "Alpha" one node and
// let a typo in case pass on one node and fail on the other.
func restoreNodeKeys(data []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil // viper read it; nothing to restore from
	}
	links := lookupFold(doc.Content[0], "links")
	if links == nil || links.Kind != yaml.SequenceNode {
		return nil
	}
	for i, ln := range links.Content {
		if i >= len(c.Links) || c.Links[i].Addresses == nil {
			continue
		}
		addrs := lookupFold(ln, "addresses")
		if addrs == nil || addrs.Kind != yaml.MappingNode {
			continue
		}
		written := map[string]string{} // lowercased -> as written
		for j := 0; j+1 < len(addrs.Content); j += 2 {
			k := addrs.Content[j].Value
			if prev, dup := written[strings.ToLower(k)]; dup && prev != k {
				return fmt.Errorf("links[%d].addresses: keys %q and %q differ only in case: keep one, spelt as in nodes", i, prev, k)
			}
			written[strings.ToLower(k)] = k
		}
		restored := make(map[string]string, len(c.Links[i].Addresses))
		for k, v := range c.Links[i].Addresses {
			if w, ok := written[k]; ok {
				k = w
			}
			restored[k] = v
		}
		c.Links[i].Addresses = restored
	}
	return nil
}

// lookupFold returns the value of key in mapping node m, matched without
// regard to case as viper matches keys.
func lookupFold(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if strings.EqualFold(m.Content[j].Value, key) {
			return m.Content[j+1]
		}
	}
	return nil
}
