package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// The file* types mirror Config for decoding: pointer fields tell "absent"
// from "false" where the default is true, and list elements get defaults
// that viper cannot apply by itself.
type fileConfig struct {
	Config  `mapstructure:",squash"`
	Targets []fileTarget `mapstructure:"targets"`
}

type fileTarget struct {
	Target `mapstructure:",squash"`
	LUNs   []fileLUN `mapstructure:"luns"`
}

type fileLUN struct {
	LUN        `mapstructure:",squash"`
	WriteCache *bool `mapstructure:"write_cache"`
}

// Load reads the YAML file at path, applies DefaultConfig, resolves
// relative paths against the file's directory, reads the CHAP secrets and
// validates the result. All problems are reported at once, one per line.
func Load(path string) (*Config, error) {
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	def := DefaultConfig()
	fc := fileConfig{Config: *def}
	fc.Config.Listen = nil // a listen list in the file replaces the default, it does not extend it
	hook := mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		sizeHook,
	)
	if err := v.UnmarshalExact(&fc, viper.DecodeHook(hook)); err != nil {
		return nil, fmt.Errorf("config %s: %w (check the key names and value types against DefaultConfig in target/config)", path, err)
	}
	cfg := fc.Config
	if cfg.Listen == nil {
		cfg.Listen = def.Listen
	}
	for _, ft := range fc.Targets {
		t := ft.Target
		t.LUNs = nil
		for _, fl := range ft.LUNs {
			l := fl.LUN
			l.WriteCache = fl.WriteCache == nil || *fl.WriteCache
			t.LUNs = append(t.LUNs, l)
		}
		cfg.Targets = append(cfg.Targets, t)
	}
	cfg.applyDefaults()
	cfg.resolve(filepath.Dir(path))
	errs := []error{cfg.loadSecrets()}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return &cfg, nil
}

// sizeHook lets LUN sizes carry units ("10GiB"). It only fires for plain
// int64 fields; time.Duration is a distinct type and keeps its own hook.
func sizeHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeOf(int64(0)) {
		return data, nil
	}
	return ParseSize(data.(string))
}

// applyDefaults fills the per-LUN defaults.
func (c *Config) applyDefaults() {
	for i := range c.Targets {
		t := &c.Targets[i]
		for j := range t.LUNs {
			l := &t.LUNs[j]
			if l.BlockSize == 0 {
				l.BlockSize = DefaultBlockSize
			}
			if l.Serial == "" {
				l.Serial = DefaultSerial(t.Name, l.ID)
			}
		}
	}
}

// resolve makes relative paths relative to dir, the config file's
// directory, so a config works whatever the daemon's working directory is.
func (c *Config) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.StateDir)
	abs(&c.AdminSocket)
	chap := func(ch *CHAP) {
		abs(&ch.SecretFile)
		abs(&ch.MutualSecretFile)
	}
	chap(&c.Discovery.CHAP)
	for i := range c.Targets {
		t := &c.Targets[i]
		chap(&t.CHAP)
		for j := range t.LUNs {
			abs(&t.LUNs[j].Path)
			abs(&t.LUNs[j].Audit)
		}
	}
}

// loadSecrets reads every secret file named in the config.
func (c *Config) loadSecrets() error {
	var errs []error
	load := func(key string, ch *CHAP) {
		if ch.SecretFile != "" {
			s, err := ReadSecret(ch.SecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.secret_file: %w", key, err))
			}
			ch.Secret = s
		}
		if ch.MutualSecretFile != "" {
			s, err := ReadSecret(ch.MutualSecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.mutual_secret_file: %w", key, err))
			}
			ch.MutualSecret = s
		}
	}
	load("discovery.chap", &c.Discovery.CHAP)
	for i := range c.Targets {
		load(fmt.Sprintf("targets[%d].chap", i), &c.Targets[i].CHAP)
	}
	return errors.Join(errs...)
}

// ReadSecret reads a CHAP secret file. The file must be a regular file that
// neither group nor others can access, because the secret is all an
// attacker needs to impersonate the initiator. One trailing newline is
// dropped so that `echo secret > file` works.
func ReadSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w: create it with `head -c 16 /dev/urandom | base64 > %s && chmod 600 %s`", err, path, path)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s is accessible by group or others (mode %04o): run `chmod 600 %s`", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return b, nil
}

// Marshal returns c as YAML in the format Load reads. Secrets are not
// written, only their file names.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}
