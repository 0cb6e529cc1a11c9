// Package iscsi is the agent's `iscsi` resource: the kernel initiator's
// session to the shared LUN, driven through iscsiadm.
//
// Start: node record (discovery first unless disabled, then CHAP, one-way
// or mutual, from 0600 secret files; discovery resets CHAP, so it comes
// after), replacement timeout, login, wait for the LUN's block device,
// publish it as "<name>.device" in the group's resource.Env (a filesystem
// resource reads it as `device: ${<name>.device}`), and register the
// node's fencing key on the new session when entitled (Decide). Stop:
// logout (after the resources above it, e.g. the filesystem, stopped).
// Monitor: the session is logged in and the device node exists; a new
// session (another SID) re-runs the registration decision.
package iscsi

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
	"github.com/tandem-ha/tandem/initiator/iscsiadm"
)

// Type is the Spec.Type of this package.
const Type = "iscsi"

// FencedKey is the resource.Env key the agent sets to "true" while this
// node is fenced; the resource then never registers its key.
const FencedKey = "agent.fenced"

// DefaultReplacementTimeout is the replacement timeout set on the node
// record: short, so that I/O on a lost session fails within seconds and
// failover is not stuck behind open-iscsi's default of 120 s.
const DefaultReplacementTimeout = 5 * time.Second

func init() { resource.Register(Type, Params, New) }

// Params is the iscsi type's parameter table.
var Params = []resource.Param{
	{Key: "portal", Required: true, Example: "10.200.0.1:3260", Doc: "the target's portal, host:port"},
	{Key: "target", Required: true, Example: "iqn.2026-11.io.tandem:disk", Doc: "the target's IQN"},
	{Key: "lun", Example: "0", Doc: "the LUN whose device is ${NAME.device} (default 0)"},
	{Key: "user", Example: "node1", Doc: "CHAP user (with secret_file)"},
	{Key: "secret_file", Example: "/etc/tandem/chap.secret", Doc: "file holding the CHAP secret, mode 0600"},
	{Key: "mutual_user", Example: "target", Doc: "mutual CHAP: the target's user (with mutual_secret_file)"},
	{Key: "mutual_secret_file", Example: "/etc/tandem/chap-mutual.secret", Doc: "file holding the target's CHAP secret, mode 0600"},
	{Key: "discovery_user", Example: "node1", Doc: "discovery CHAP user (with discovery_secret_file)"},
	{Key: "discovery_secret_file", Example: "/etc/tandem/discovery.secret", Doc: "file holding the discovery CHAP secret, mode 0600"},
	{Key: "replacement_timeout", Example: "5s", Doc: "how long I/O waits for a lost session (default 5s)"},
	{Key: "fence", Example: "false", Doc: "register this node's reservation key on the LUN (default false)"},
	{Key: "discovery", Example: "true", Doc: "run SendTargets discovery before the login (default true)"},
	{Key: "pr_key", Example: "0x7a3d0001", Doc: "this node's reservation key (default derived from cluster and node)"},
	{Key: "iscsiadm", Example: "/usr/sbin/iscsiadm", Doc: "iscsiadm's path (default from $PATH)"},
	{Key: "dev_dir", Example: "/dev", Doc: "where the kernel's disk devices appear (default /dev)"},
}

// Config describes one iSCSI attachment.
type Config struct {
	Target iscsiadm.Target
	LUN    uint64
	// Discover runs SendTargets discovery first (default); off, the node
	// record is created directly.
	Discover bool
	// User/SecretFile: one-way CHAP ("" none); MutualUser/MutualSecretFile
	// make it mutual. DiscoveryUser/DiscoverySecretFile protect discovery.
	User, SecretFile                   string
	MutualUser, MutualSecretFile       string
	DiscoveryUser, DiscoverySecretFile string
	ReplacementTimeout                 time.Duration
	// PRKey is the fencing key registered on the session (0: none).
	PRKey uint64
	// Fence: a fence resource follows in the group (param fence: true). A
	// reservation held by another key then does not fail Start: the fence
	// registers on this session's device and preempts (Entitlement.Takeover).
	Fence bool
	// Client runs iscsiadm.
	Client *iscsiadm.Client
	// OpenDevice opens the LUN's block device for PR commands; default
	// device.OpenKernel (SG_IO).
	OpenDevice func(path string) (device.Device, error)
}

// ISCSI is a resource.Resource.
type ISCSI struct {
	name string
	cfg  Config
	log  *slog.Logger

	mu  sync.Mutex
	sid string // the session our key was last decided on
	dev string
}

// New builds an ISCSI from spec params: portal, target, lun (0),
// discovery (true), user, secret_file, mutual_user, mutual_secret_file,
// discovery_user, discovery_secret_file, replacement_timeout (5s), pr_key
// (hex 0x... or decimal), iscsiadm (path, default from $PATH), dev_dir
// (/dev).
func New(spec resource.Spec, log *slog.Logger) (resource.Resource, error) {
	p := resource.NewParams(spec)
	cfg := Config{
		Target: iscsiadm.Target{
			Portal: p.Required("portal"),
			Target: p.Required("target"),
		},
		LUN:                 uint64(p.Int("lun", 0)),
		User:                p.String("user", ""),
		SecretFile:          p.String("secret_file", ""),
		MutualUser:          p.String("mutual_user", ""),
		MutualSecretFile:    p.String("mutual_secret_file", ""),
		DiscoveryUser:       p.String("discovery_user", ""),
		DiscoverySecretFile: p.String("discovery_secret_file", ""),
		ReplacementTimeout:  p.Duration("replacement_timeout", DefaultReplacementTimeout),
	}
	cfg.Target.Portal = iscsiadm.NormalizePortal(cfg.Target.Portal)
	switch v := strings.ToLower(p.String("fence", "false")); v {
	case "true", "yes", "on", "1":
		cfg.Fence = true
	case "false", "no", "off", "0":
	default:
		p.Fail("fence", fmt.Sprintf("%q is not a boolean", v), "write true or false")
	}
	switch v := strings.ToLower(p.String("discovery", "true")); v {
	case "true", "yes", "on", "1":
		cfg.Discover = true
	case "false", "no", "off", "0":
	default:
		p.Fail("discovery", fmt.Sprintf("%q is not a boolean", v), "write true or false")
	}
	if cfg.Target.Target != "" && !strings.HasPrefix(cfg.Target.Target, "iqn.") && !strings.HasPrefix(cfg.Target.Target, "eui.") && !strings.HasPrefix(cfg.Target.Target, "naa.") {
		p.Fail("target", fmt.Sprintf("%q is not an iSCSI name", cfg.Target.Target), "use the target's IQN, e.g. iqn.2026-11.io.tandem:disk")
	}
	if k := p.String("pr_key", ""); k != "" {
		n, err := strconv.ParseUint(k, 0, 64)
		if err != nil || n == 0 {
			p.Fail("pr_key", fmt.Sprintf("%q is not a non-zero 64-bit number", k), "write it in hex, e.g. 0x7a3d0001, unique per node")
		}
		cfg.PRKey = n
	}
	pairs := []struct{ user, file, ukey, fkey string }{
		{cfg.User, cfg.SecretFile, "user", "secret_file"},
		{cfg.MutualUser, cfg.MutualSecretFile, "mutual_user", "mutual_secret_file"},
		{cfg.DiscoveryUser, cfg.DiscoverySecretFile, "discovery_user", "discovery_secret_file"},
	}
	for _, c := range pairs {
		switch {
		case (c.user == "") != (c.file == ""):
			p.Fail(c.fkey, "and "+c.ukey+" must be set together", "set both, or neither")
		case c.file != "":
			if _, err := ReadSecret(c.file); err != nil {
				p.Fail(c.fkey, err.Error(), "")
			}
		}
	}
	if cfg.MutualUser != "" && cfg.User == "" {
		p.Fail("mutual_user", "needs one-way CHAP too", "set user and secret_file")
	}
	client := iscsiadm.New(p.String("iscsiadm", ""), log)
	if d := p.String("dev_dir", ""); d != "" {
		client.DevDir = d
	}
	cfg.Client = client
	if err := p.Err(); err != nil {
		return nil, err
	}
	return NewISCSI(spec.Name, cfg, log), nil
}

// NewISCSI returns the resource for cfg; it does not touch the host.
func NewISCSI(name string, cfg Config, log *slog.Logger) *ISCSI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = iscsiadm.New("", log)
	}
	if cfg.OpenDevice == nil {
		cfg.OpenDevice = func(path string) (device.Device, error) { return device.OpenKernel(path) }
	}
	return &ISCSI{name: name, cfg: cfg, log: log}
}

// ReadSecret reads a CHAP secret file: it must be a regular file that
// neither group nor others can read (like heartbeat's authkeys), and not
// empty. A trailing newline is dropped.
func ReadSecret(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("secret file %s has mode %04o, readable by group or others; chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// Name implements resource.Resource.
func (r *ISCSI) Name() string { return r.name }

// DeviceKey is the resource.Env key of the device path: "<name>.device".
func (r *ISCSI) DeviceKey() string { return r.name + ".device" }

func (r *ISCSI) auth() (sess, disc *iscsiadm.CHAP, err error) {
	if r.cfg.User != "" {
		sess = &iscsiadm.CHAP{Username: r.cfg.User}
		if sess.Password, err = ReadSecret(r.cfg.SecretFile); err != nil {
			return nil, nil, err
		}
		if r.cfg.MutualUser != "" {
			sess.UsernameIn = r.cfg.MutualUser
			if sess.PasswordIn, err = ReadSecret(r.cfg.MutualSecretFile); err != nil {
				return nil, nil, err
			}
		}
	}
	if r.cfg.DiscoveryUser != "" {
		disc = &iscsiadm.CHAP{Username: r.cfg.DiscoveryUser}
		if disc.Password, err = ReadSecret(r.cfg.DiscoverySecretFile); err != nil {
			return nil, nil, err
		}
	}
	return sess, disc, nil
}

// Start logs in (if not already), waits for the device, publishes it and
// registers the fencing key when entitled. ctx bounds it all.
func (r *ISCSI) Start(ctx context.Context) error {
	sess, disc, err := r.auth()
	if err != nil {
		return fmt.Errorf("iscsi %s: %w", r.name, err)
	}
	// Fast path: the standby keeps its session logged in, so a takeover
	// only resolves the device; discovery and login again would cost
	// seconds (and discovery resets the node record's CHAP settings).
	dev, sid, ok := r.loggedIn(ctx)
	if ok {
		r.log.Info("session already logged in", "sid", sid, "device", dev, "target", r.cfg.Target.Target)
	} else {
		dev, err = r.cfg.Client.Attach(ctx, iscsiadm.Setup{
			Target: r.cfg.Target, LUN: r.cfg.LUN, Discover: r.cfg.Discover,
			DiscoveryAuth: disc, Auth: sess, ReplacementTimeout: r.cfg.ReplacementTimeout,
		})
		if err != nil {
			return fmt.Errorf("iscsi %s: %w", r.name, err)
		}
		if s, ok, err := r.cfg.Client.Session(ctx, r.cfg.Target); err == nil && ok {
			sid = s.SID
		}
	}
	resource.EnvFrom(ctx).Set(r.DeviceKey(), dev)
	r.mu.Lock()
	r.dev = dev
	r.mu.Unlock()
	r.log.Info("iscsi device attached", "device", dev, "target", r.cfg.Target.Target, "portal", r.cfg.Target.Portal, "lun", r.cfg.LUN)
	return r.register(ctx, dev, sid, true)
}

// loggedIn returns the LUN's device and the session's SID when a session
// to the target is logged in and the device node exists (the by-path link
// when udev made one, as WaitDevice).
func (r *ISCSI) loggedIn(ctx context.Context) (dev, sid string, ok bool) {
	s, found, err := r.cfg.Client.Session(ctx, r.cfg.Target)
	if err != nil || !found || !s.LoggedIn() {
		return "", "", false
	}
	if by := r.cfg.Client.ByPath(r.cfg.Target, r.cfg.LUN); fileExists(by) {
		return by, s.SID, true
	}
	d, found := s.Disk(r.cfg.LUN)
	if !found || d.Name == "" {
		return "", "", false
	}
	dev = filepath.Join(r.cfg.Client.DevDir, d.Name)
	if !fileExists(dev) {
		return "", "", false
	}
	return dev, s.SID, true
}

// register runs the entitlement decision on the session's device and
// registers the key when it says so. Not being entitled fails Start: this
// node must not use the disk.
func (r *ISCSI) register(ctx context.Context, dev, sid string, atStart bool) error {
	key := r.key(ctx)
	if key == 0 {
		return nil
	}
	d, err := r.cfg.OpenDevice(dev)
	if err != nil {
		return fmt.Errorf("iscsi %s: open %s for persistent reservations: %w", r.name, dev, err)
	}
	defer d.Close()
	in := Entitlement{OurKey: key, Takeover: r.cfg.Fence && atStart}
	in.Fenced = r.fenced(ctx)
	if in.Keys, err = again(ctx, d.PRReadKeys); err != nil {
		return fmt.Errorf("iscsi %s: read keys on %s: %w", r.name, dev, err)
	}
	if in.Reservation, err = again(ctx, d.PRReadReservation); err != nil {
		return fmt.Errorf("iscsi %s: read reservation on %s: %w", r.name, dev, err)
	}
	dec := Decide(in)
	if dec.Defer {
		r.log.Info("not registering the fencing key here: the fence resource takes the reservation", "device", dev, "reason", dec.Reason)
		return nil
	}
	if !dec.Register {
		r.log.Warn("not registering the fencing key", "device", dev, "key", fmt.Sprintf("%#x", key), "reason", dec.Reason)
		if !atStart && !in.Fenced && in.Reservation.Reserved && !slices.Contains(in.Keys.Keys, key) {
			// A new session while active, and our key is gone: the peer
			// preempted us. The agent must stop the group, not restart it.
			return fmt.Errorf("iscsi %s: %w: %s", r.name, resource.ErrFenced, dec.Reason)
		}
		return fmt.Errorf("iscsi %s: not entitled to %s: %s", r.name, dev, dec.Reason)
	}
	_, err = again(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, d.PRRegisterAndIgnore(ctx, key, initiator.PROptions{})
	})
	if err != nil {
		return fmt.Errorf("iscsi %s: register key %#x on %s: %w", r.name, key, dev, err)
	}
	r.log.Info("fencing key registered", "device", dev, "key", fmt.Sprintf("%#x", key), "sid", sid, "reason", dec.Reason)
	r.mu.Lock()
	r.sid = sid
	r.mu.Unlock()
	return nil
}

// again reissues a PR call once after a persistent reservation unit
// attention (the device hands those to the caller; the command did not run).
func again[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	v, err := f(ctx)
	if initiator.IsReservationUnitAttention(err) {
		v, err = f(ctx)
	}
	return v, err
}

// KeyEnvKey is the resource.Env key where the agent publishes this node's
// fencing key (hex, ha/fence.Key); with param fence: true and no pr_key,
// the resource registers that key.
const KeyEnvKey = "agent.key"

// key is the configured pr_key, else with Fence the agent's node key.
func (r *ISCSI) key(ctx context.Context) uint64 {
	if r.cfg.PRKey != 0 || !r.cfg.Fence {
		return r.cfg.PRKey
	}
	v, _ := resource.EnvFrom(ctx).Get(KeyEnvKey)
	k, _ := strconv.ParseUint(v, 0, 64)
	return k
}

func (r *ISCSI) fenced(ctx context.Context) bool {
	v, _ := resource.EnvFrom(ctx).Get(FencedKey)
	return v == "true"
}

// Stop logs out; no session is success.
func (r *ISCSI) Stop(ctx context.Context) error {
	resource.EnvFrom(ctx).Delete(r.DeviceKey())
	if err := r.cfg.Client.Logout(ctx, r.cfg.Target); err != nil {
		return fmt.Errorf("iscsi %s: %w", r.name, err)
	}
	r.mu.Lock()
	r.sid, r.dev = "", ""
	r.mu.Unlock()
	r.log.Info("iscsi session logged out", "target", r.cfg.Target.Target, "portal", r.cfg.Target.Portal)
	return nil
}

// Monitor reports running when the session is logged in and the LUN's
// device node exists; stopped when there is no session; failed otherwise.
// A session with another SID than the one the key was registered on
// (iscsid logged in anew) gets the registration decision again.
func (r *ISCSI) Monitor(ctx context.Context) (resource.Status, error) {
	s, ok, err := r.cfg.Client.Session(ctx, r.cfg.Target)
	if err != nil {
		return resource.StatusFailed, fmt.Errorf("iscsi %s: %w", r.name, err)
	}
	if !ok {
		return resource.StatusStopped, nil
	}
	if !s.LoggedIn() {
		return resource.StatusFailed, fmt.Errorf("iscsi %s: session %s is %s (connection %s): the path to the target is down",
			r.name, s.SID, s.ISCSISessionState, s.ISCSIConnectionState)
	}
	d, ok := s.Disk(r.cfg.LUN)
	if !ok || d.Name == "" {
		return resource.StatusFailed, fmt.Errorf("iscsi %s: session %s has no disk for lun %d", r.name, s.SID, r.cfg.LUN)
	}
	dev := filepath.Join(r.cfg.Client.DevDir, d.Name)
	if _, err := os.Stat(dev); err != nil {
		return resource.StatusFailed, fmt.Errorf("iscsi %s: lun %d: %w", r.name, r.cfg.LUN, err)
	}
	if by := r.cfg.Client.ByPath(r.cfg.Target, r.cfg.LUN); fileExists(by) {
		dev = by
	}
	resource.EnvFrom(ctx).Set(r.DeviceKey(), dev)
	r.mu.Lock()
	known := r.sid
	r.mu.Unlock()
	if r.key(ctx) != 0 && known != s.SID {
		if err := r.register(ctx, dev, s.SID, false); err != nil {
			return resource.StatusFailed, err
		}
	}
	return resource.StatusRunning, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
