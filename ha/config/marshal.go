package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Marshal returns c as YAML that Parse (and Load) read back to an equal
// Config. Keys come from the same mapstructure tags Parse decodes, so the
// two cannot drift apart. Zero values are left out, so Parse fills them
// from DefaultConfig and WithDefaults: labs can build a Config value with
// only what they need and write it with WriteFile. Fields Load resolves
// (Peer, Key, a link's Local and Peer) are not written; the key stays in
// KeyFile. Durations are written as "1.5s", in config order.
//
// Resource params keys must be lowercase: Parse reads them through viper,
// which lowercases keys. Link addresses keep their case (node names; Parse
// restores them from the YAML).
func (c Config) Marshal() ([]byte, error) {
	n, err := encodeNode(reflect.ValueOf(c), "config")
	if err != nil {
		return nil, err
	}
	if n == nil {
		n = &yaml.Node{Kind: yaml.MappingNode}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile writes c.Marshal() to path with mode 0644 (the key is in
// KeyFile, not in the config).
func (c Config) WriteFile(path string) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write config: %w: check that the directory of %s exists and is writable", err, path)
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// encodeNode turns v into a YAML node, nil for a zero value (left out).
// path names the field in errors.
func encodeNode(v reflect.Value, path string) (*yaml.Node, error) {
	if v.IsZero() {
		return nil, nil
	}
	if v.Type() == durationType {
		return scalar(time.Duration(v.Int()).String())
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if key == "" || key == "-" {
				continue
			}
			n, err := encodeNode(v.Field(i), path+"."+key)
			if err != nil {
				return nil, err
			}
			if n != nil {
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, n)
			}
		}
		if len(m.Content) == 0 {
			return nil, nil
		}
		return m, nil
	case reflect.Slice:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			n, err := encodeNode(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if n == nil {
				n = &yaml.Node{Kind: yaml.MappingNode} // a zero element keeps its place
			}
			s.Content = append(s.Content, n)
		}
		return s, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map key %s: only string keys can be written", path, v.Type().Key())
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range keys {
			nodeKeyed := strings.HasSuffix(path, ".addresses") // see restoreNodeKeys
			if k != strings.ToLower(k) && !nodeKeyed {
				return nil, fmt.Errorf("%s: key %q has upper case letters, which loading lowercases: use %q", path, k, strings.ToLower(k))
			}
			val, err := scalar(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())).Interface())
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", path, k, err)
			}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, val)
		}
		return m, nil
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint64:
		return scalar(v.Interface())
	}
	return nil, fmt.Errorf("%s: type %s cannot be written as YAML: keep config fields to strings, numbers, durations, lists and string maps", path, v.Type())
}

// scalar encodes one value; yaml quotes strings that would read back as
// another type ("true", "0123").
func scalar(x any) (*yaml.Node, error) {
	n := &yaml.Node{}
	if err := n.Encode(x); err != nil {
		return nil, fmt.Errorf("encode %v: %w", x, err)
	}
	return n, nil
}
