package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/ha/resource/iscsi"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
)

// Type is the Spec.Type of the fence resource; params.type selects the
// method, of which TypeSCSIPR is the only one.
const (
	Type       = "fence"
	TypeSCSIPR = "scsi-pr"
)

// resource.Env keys the agent publishes for the fence: the cluster and
// this node's name, from which the key is derived.
const (
	ClusterKey = "agent.cluster"
	NodeKey    = "agent.node"
)

func init() { resource.Register(Type, Params, New) }

// Params is the fence type's parameter table.
var Params = []resource.Param{
	{Key: "type", Required: true, Example: TypeSCSIPR, Doc: "the fence method; only " + TypeSCSIPR},
	{Key: "devices", Example: "${disk.device}", Doc: "kernel block devices, comma separated (or portal, target and luns)"},
	{Key: "portal", Example: "10.200.0.1:3260", Doc: "native session: the target's portal"},
	{Key: "target", Example: "iqn.2026-11.io.tandem:disk", Doc: "native session: the target's IQN"},
	{Key: "luns", Example: "0", Doc: "native session: LUN numbers, comma separated (default 0)"},
	{Key: "initiator_name", Example: "iqn.2026-11.io.tandem:node1", Doc: "native session: this node's initiator name"},
	{Key: "user", Example: "node1", Doc: "native session: CHAP user (with secret_file)"},
	{Key: "secret_file", Example: "/etc/tandem/chap.secret", Doc: "native session: file holding the CHAP secret, mode 0600"},
	{Key: "mutual_user", Example: "target", Doc: "native session: mutual CHAP user (with mutual_secret_file)"},
	{Key: "mutual_secret_file", Example: "/etc/tandem/chap-mutual.secret", Doc: "native session: the target's CHAP secret file"},
	{Key: "cluster", Example: "prod", Doc: "override of the cluster name the key derives from"},
	{Key: "node", Example: "node1", Doc: "override of the node name the key derives from"},
	{Key: "key", Example: "0x7a3d0001", Doc: "override of the reservation key (default derived from cluster and node)"},
}

// Config describes one fence resource.
type Config struct {
	// Cluster and Node derive the key (Key) and the native initiator name;
	// empty: read at Start from the group's resource.Env (ClusterKey,
	// NodeKey), which the agent fills.
	Cluster, Node string
	// Key overrides the derived key (0: derived).
	Key uint64
	// Devices are kernel block devices (SG_IO), ${...} expanded at Start.
	Devices []string
	// Portal, Target and LUNs select native sessions instead (one session
	// to Target carries all LUNs). InitiatorName defaults to
	// InitiatorName(Cluster, Node).
	Portal, Target string
	LUNs           []uint64
	InitiatorName  string
	// CHAP for the native session (nil: none).
	CHAP *initiator.CHAP
	// OpenKernel opens a kernel device; default device.OpenKernel.
	OpenKernel func(path string) (device.Device, error)
	// Dial opens the native session; default initiator.Dial.
	Dial func(ctx context.Context, addr string, o initiator.Options) (*initiator.Session, error)
	// Open, if set, replaces both (tests): it returns the devices to act
	// on and a function that releases them.
	Open func(ctx context.Context) ([]device.Device, func(), error)
}

// Fence is the fence resource (resource.Resource).
type Fence struct {
	name string
	cfg  Config
	log  *slog.Logger

	mu   sync.Mutex
	sess *initiator.Session // native: kept open between operations
}

// New builds a Fence from spec params: type (scsi-pr, required), devices
// (comma-separated kernel paths, e.g. ${disk.device}) or portal + target +
// luns (comma-separated, default 0) for native sessions, user +
// secret_file and mutual_user + mutual_secret_file (CHAP, 0600 files),
// initiator_name, cluster, node and key (overrides, normally derived).
func New(spec resource.Spec, log *slog.Logger) (resource.Resource, error) {
	p := resource.NewParams(spec)
	if t := p.Required("type"); t != "" && t != TypeSCSIPR {
		p.Fail("type", fmt.Sprintf("%q is not a fence method", t), "set type: "+TypeSCSIPR)
	}
	cfg := Config{
		Cluster:       p.String("cluster", ""),
		Node:          p.String("node", ""),
		Portal:        p.String("portal", ""),
		Target:        p.String("target", ""),
		InitiatorName: p.String("initiator_name", ""),
	}
	for _, d := range strings.Split(p.String("devices", ""), ",") {
		if d = strings.TrimSpace(d); d != "" {
			cfg.Devices = append(cfg.Devices, d)
		}
	}
	luns := p.String("luns", "")
	if k := p.String("key", ""); k != "" {
		n, err := strconv.ParseUint(k, 0, 64)
		if err != nil || n == 0 {
			p.Fail("key", fmt.Sprintf("%q is not a non-zero 64-bit number", k), "remove it (the key is derived from cluster and node) or write it in hex")
		}
		cfg.Key = n
	}
	native := cfg.Portal != "" || cfg.Target != ""
	switch {
	case native && len(cfg.Devices) > 0:
		p.Fail("devices", "and portal/target are both set", "use kernel devices or a native session, not both")
	case !native && len(cfg.Devices) == 0:
		p.Fail("devices", "is missing", "set devices: ${disk.device} (kernel) or portal, target and luns (native)")
	case native && (cfg.Portal == "" || cfg.Target == ""):
		p.Fail("portal", "and target must be set together", "set both for a native session")
	case !native && luns != "":
		p.Fail("luns", "is for native sessions", "remove it, or set portal and target")
	}
	if native {
		if luns == "" {
			luns = "0"
		}
		for _, l := range strings.Split(luns, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(l), 10, 64)
			if err != nil {
				p.Fail("luns", fmt.Sprintf("%q is not a list of LUN numbers", luns), "write e.g. luns: 0,1")
				break
			}
			cfg.LUNs = append(cfg.LUNs, n)
		}
	}
	user, file := p.String("user", ""), p.String("secret_file", "")
	muser, mfile := p.String("mutual_user", ""), p.String("mutual_secret_file", "")
	if (user == "") != (file == "") {
		p.Fail("secret_file", "and user must be set together", "set both, or neither")
	}
	if (muser == "") != (mfile == "") || muser != "" && user == "" {
		p.Fail("mutual_secret_file", "needs mutual_user, user and secret_file", "set all four, or only user and secret_file")
	}
	if user != "" && file != "" {
		sec, err := iscsi.ReadSecret(file)
		if err != nil {
			p.Fail("secret_file", err.Error(), "")
		}
		cfg.CHAP = &initiator.CHAP{User: user, Secret: []byte(sec)}
		if muser != "" && mfile != "" {
			msec, err := iscsi.ReadSecret(mfile)
			if err != nil {
				p.Fail("mutual_secret_file", err.Error(), "")
			}
			cfg.CHAP.MutualUser, cfg.CHAP.MutualSecret = muser, []byte(msec)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return NewFence(spec.Name, cfg, log), nil
}

// NewFence returns the resource for cfg; it does not touch the storage.
func NewFence(name string, cfg Config, log *slog.Logger) *Fence {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.OpenKernel == nil {
		cfg.OpenKernel = func(p string) (device.Device, error) { return device.OpenKernel(p) }
	}
	if cfg.Dial == nil {
		cfg.Dial = initiator.Dial
	}
	return &Fence{name: name, cfg: cfg, log: log}
}

// Name implements resource.Resource.
func (f *Fence) Name() string { return f.name }

// HolderKey and KeysKey are the resource.Env keys of the last monitor's
// answer: "<name>.holder" (hex key, "" for none) and "<name>.keys".
func (f *Fence) HolderKey() string { return f.name + ".holder" }

// KeysKey: see HolderKey.
func (f *Fence) KeysKey() string { return f.name + ".keys" }

// identity returns cluster, node and key, from the config or the Env.
func (f *Fence) identity(ctx context.Context) (cluster, node string, key uint64, err error) {
	cluster, node, key = f.cfg.Cluster, f.cfg.Node, f.cfg.Key
	env := resource.EnvFrom(ctx)
	if cluster == "" {
		cluster, _ = env.Get(ClusterKey)
	}
	if node == "" {
		node, _ = env.Get(NodeKey)
	}
	if key == 0 {
		if cluster == "" || node == "" {
			return "", "", 0, fmt.Errorf("fence %s: cluster and node names unknown: run it under tandem-agent or set params cluster and node", f.name)
		}
		key = Key(cluster, node)
	}
	return cluster, node, key, nil
}

// devices opens the LUNs; release must be called when done.
func (f *Fence) devices(ctx context.Context, cluster, node string, key uint64) ([]device.Device, func(), error) {
	if f.cfg.Open != nil {
		return f.cfg.Open(ctx)
	}
	if len(f.cfg.Devices) > 0 {
		var ds []device.Device
		release := func() {
			for _, d := range ds {
				d.Close()
			}
		}
		for _, p := range f.cfg.Devices {
			path, err := resource.Expand(ctx, p)
			if err != nil {
				release()
				return nil, nil, fmt.Errorf("fence %s: %w", f.name, err)
			}
			d, err := f.cfg.OpenKernel(path)
			if err != nil {
				release()
				return nil, nil, fmt.Errorf("fence %s: open %s: %w", f.name, path, err)
			}
			ds = append(ds, d)
		}
		return ds, release, nil
	}
	s, err := f.session(ctx, cluster, node, key)
	if err != nil {
		return nil, nil, err
	}
	ds := make([]device.Device, len(f.cfg.LUNs))
	for i, l := range f.cfg.LUNs {
		n := device.NewNative(s, l)
		n.Name = f.cfg.Target + " lun " + strconv.FormatUint(l, 10)
		ds[i] = n
	}
	return ds, func() {}, nil
}

// session returns the open native session, dialling it when needed: same
// initiator name and ISID every time, hence the same I_T nexus.
func (f *Fence) session(ctx context.Context, cluster, node string, key uint64) (*initiator.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sess != nil {
		return f.sess, nil
	}
	name := f.cfg.InitiatorName
	if name == "" {
		name = InitiatorName(cluster, node)
	}
	s, err := f.cfg.Dial(ctx, f.cfg.Portal, initiator.Options{
		InitiatorName: name, TargetName: f.cfg.Target, ISID: ISID(key), CHAP: f.cfg.CHAP, Logger: f.log,
	})
	if err != nil {
		return nil, fmt.Errorf("fence %s: storage unreachable: log in to %s at %s: %w", f.name, f.cfg.Target, f.cfg.Portal, err)
	}
	f.sess = s
	return s, nil
}

// logoutTimeout bounds the logout when the session is closed: on a cut
// storage network the Logout Request is never answered, and an operation
// of the fence (monitor, stop) must not wait for it (Session.Close waits
// five seconds), which would delay the hand-over by as much.
const logoutTimeout = 250 * time.Millisecond

// closeSession logs s out, waiting at most logoutTimeout, then drops the
// connection either way.
func closeSession(s *initiator.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), logoutTimeout)
	defer cancel()
	_ = s.Logout(ctx) // on failure Logout drops the connection too
}

// dropSession closes the native session after an error that may have
// broken it; the next operation dials again.
func (f *Fence) dropSession(err error) {
	if err == nil || errors.Is(err, resource.ErrFenced) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sess != nil {
		closeSession(f.sess)
		f.sess = nil
	}
}

// Start takes the storage (package doc).
func (f *Fence) Start(ctx context.Context) (err error) {
	cluster, node, key, err := f.identity(ctx)
	if err != nil {
		return err
	}
	ds, release, err := f.devices(ctx, cluster, node, key)
	if err != nil {
		return err
	}
	defer release()
	defer func() { f.dropSession(err) }()
	for _, d := range ds {
		if err := Take(ctx, d, key, f.log); err != nil {
			return fmt.Errorf("fence %s: storage not taken, nothing after the fence may start: %w", f.name, err)
		}
	}
	f.log.Info("storage taken: our key holds the reservation on every LUN", "key", FormatKey(key), "luns", len(ds))
	f.publish(ctx, View{Keys: []uint64{key}, Reservation: initiator.PRReservation{Reserved: true, Key: key, Type: Type5}})
	return nil
}

// Stop keeps the reservation (package doc) and closes the native session.
func (f *Fence) Stop(ctx context.Context) error {
	f.mu.Lock()
	if f.sess != nil {
		closeSession(f.sess)
		f.sess = nil
	}
	f.mu.Unlock()
	return nil
}

// Monitor checks our registration and reservation on every LUN.
func (f *Fence) Monitor(ctx context.Context) (st resource.Status, err error) {
	cluster, node, key, err := f.identity(ctx)
	if err != nil {
		return resource.StatusFailed, err
	}
	ds, release, err := f.devices(ctx, cluster, node, key)
	if err != nil {
		return resource.StatusFailed, err
	}
	defer release()
	defer func() { f.dropSession(err) }()
	for _, d := range ds {
		v, err := Check(ctx, d, key)
		if err == nil || errors.Is(err, resource.ErrFenced) {
			f.publish(ctx, v)
		}
		if err != nil {
			if errors.Is(err, resource.ErrFenced) {
				f.log.Error("FENCED: this node lost the shared storage", "lun", d.String(), "key", FormatKey(key), "err", err)
			}
			return resource.StatusFailed, fmt.Errorf("fence %s: %w", f.name, err)
		}
	}
	return resource.StatusRunning, nil
}

func (f *Fence) publish(ctx context.Context, v View) {
	env := resource.EnvFrom(ctx)
	holder := ""
	if v.Reservation.Reserved {
		holder = FormatKey(v.Reservation.Key)
	}
	keys := make([]string, len(v.Keys))
	for i, k := range v.Keys {
		keys[i] = FormatKey(k)
	}
	env.Set(f.HolderKey(), holder)
	env.Set(f.KeysKey(), strings.Join(keys, ","))
}

// Holder reads who holds the reservation on the first LUN, for the
// operator's rejoin check (the group is stopped then, so no monitor runs).
func (f *Fence) Holder(ctx context.Context) (uint64, error) {
	cluster, node, key, err := f.identity(ctx)
	if err != nil {
		return 0, err
	}
	ds, release, err := f.devices(ctx, cluster, node, key)
	if err != nil {
		return 0, err
	}
	defer release()
	defer func() { f.dropSession(err) }()
	if len(ds) == 0 {
		return 0, fmt.Errorf("fence %s: no LUN configured", f.name)
	}
	v, err := Read(ctx, ds[0])
	if err != nil {
		return 0, fmt.Errorf("fence %s: %w", f.name, err)
	}
	f.publish(ctx, v)
	if !v.Reservation.Reserved {
		return 0, nil
	}
	return v.Reservation.Key, nil
}
