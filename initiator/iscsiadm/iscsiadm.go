package iscsiadm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dell/goiscsi"
)

// DefaultTimeout bounds a call whose ctx has no deadline. A login can take
// a while: iscsid retries the connection for node.conn[0].timeo.login_timeout
// (15 s by default) a few times.
const DefaultTimeout = 2 * time.Minute

// Client runs iscsiadm. The zero value is not usable: use New.
type Client struct {
	path string
	log  *slog.Logger
	// DevDir is where block devices appear ("/dev"); tests point it at a
	// temporary folder the fake iscsiadm fills.
	DevDir string
	// Env, when set, is the environment of iscsiadm (tests pass the fake's
	// state file); nil inherits the agent's.
	Env []string
	// PollInterval is how often WaitDevice looks for the device.
	PollInterval time.Duration
}

// New returns a Client for the iscsiadm at path ("" means "iscsiadm" from
// $PATH). A nil log discards.
func New(path string, log *slog.Logger) *Client {
	if path == "" {
		path = "iscsiadm"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{path: path, log: log, DevDir: "/dev", PollInterval: 100 * time.Millisecond}
}

// Path is the iscsiadm binary the client runs.
func (c *Client) Path() string { return c.path }

// InitiatorName reads the initiator's IQN from file (default
// /etc/iscsi/initiatorname.iscsi) with goiscsi's reader.
func InitiatorName(file string) (string, error) {
	names, err := goiscsi.NewLinuxISCSI(nil).GetInitiators(file)
	if err != nil {
		return "", fmt.Errorf("iscsiadm: read initiator name: %w", err)
	}
	if len(names) == 0 {
		if file == "" {
			file = goiscsi.DefaultInitiatorNameFile
		}
		return "", fmt.Errorf("iscsiadm: %s has no InitiatorName= line; write one (each node needs its own)", file)
	}
	return names[0], nil
}

// secretKeys are the record keys whose values are secrets.
func isSecretKey(k string) bool {
	return strings.HasSuffix(k, ".password") || strings.HasSuffix(k, ".password_in")
}

// redactArgs replaces the value following "-v" when the preceding "-n"
// names a secret key.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i+3 < len(out); i++ {
		if (out[i] == "-n" || out[i] == "--name") && isSecretKey(out[i+1]) && (out[i+2] == "-v" || out[i+2] == "--value") {
			out[i+3] = "***"
		}
	}
	return out
}

// redact removes every secret from s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// run executes iscsiadm with args under ctx (DefaultTimeout when ctx has
// none). ok lists exit codes that count as success for this op.
func (c *Client) run(ctx context.Context, op string, secrets []string, args []string, ok ...ExitCode) (string, error) {
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	shown := redactArgs(args)
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Env = c.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so a deadline also stops what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	out := redact(stdout.String(), secrets)
	errOut := redact(stderr.String(), secrets)
	rc := -1
	if cmd.ProcessState != nil {
		rc = cmd.ProcessState.ExitCode()
	}
	c.log.Debug("iscsiadm", "op", op, "args", strings.Join(shown, " "), "rc", rc, "took", time.Since(start).Round(time.Millisecond))
	if err == nil {
		return out, nil
	}
	for _, code := range ok {
		if rc == int(code) {
			return out, nil
		}
	}
	oe := &OpError{Op: op, Args: shown, ExitCode: rc, Stderr: errOut}
	if errOut == "" {
		oe.Stderr = out
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		oe.ExitCode, oe.Err = -1, fmt.Errorf("%w (killed at the deadline)", ctx.Err())
	case errors.As(err, &ee) && rc > 0:
		oe.Err = ExitCode(rc)
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		oe.Err = fmt.Errorf("%w: install open-iscsi or set the iscsiadm path", err)
	default:
		oe.Err = err
	}
	return out, oe
}

func nodeArgs(t Target) []string {
	return []string{"-m", "node", "-T", t.Target, "-p", t.Portal}
}

// CHAP is a set of CHAP credentials. Password authenticates us to the
// target; UsernameIn/PasswordIn, when PasswordIn is set, make the
// authentication mutual (the target proves itself with them).
type CHAP struct {
	Username, Password     string
	UsernameIn, PasswordIn string
}

func (a *CHAP) secrets() []string {
	if a == nil {
		return nil
	}
	return []string{a.Password, a.PasswordIn}
}

// settings returns the record keys for a under prefix (node.session.auth
// or discovery.sendtargets.auth); nil a sets AuthMethod None.
func (a *CHAP) settings(prefix string) [][2]string {
	if a == nil {
		return [][2]string{{prefix + ".authmethod", "None"}}
	}
	return [][2]string{
		{prefix + ".authmethod", "CHAP"},
		{prefix + ".username", a.Username},
		{prefix + ".password", a.Password},
		{prefix + ".username_in", a.UsernameIn},
		{prefix + ".password_in", a.PasswordIn},
	}
}

// Discover runs SendTargets discovery against portal ("IP" or "IP:PORT")
// through a discoverydb record, so discovery itself can use CHAP (auth
// nil: none). iscsiadm creates or rewrites a node record for each target
// found, resetting its CHAP settings.
func (c *Client) Discover(ctx context.Context, portal string, auth *CHAP) ([]Target, error) {
	db := []string{"-m", "discoverydb", "-t", "sendtargets", "-p", portal}
	if _, err := c.run(ctx, "discoverydb new", nil, append(db, "-o", "new"), ExitSessExists); err != nil {
		return nil, err
	}
	for _, kv := range auth.settings("discovery.sendtargets.auth") {
		args := append(append([]string{}, db...), "-o", "update", "-n", kv[0], "-v", kv[1])
		if _, err := c.run(ctx, "discoverydb update "+kv[0], auth.secrets(), args); err != nil {
			return nil, err
		}
	}
	out, err := c.run(ctx, "discovery", auth.secrets(), append(db, "--discover"))
	if err != nil {
		return nil, err
	}
	return ParseDiscovery(out), nil
}

// CreateNode makes sure a node record exists for t (after discovery it
// does already; a static setup has none).
func (c *Client) CreateNode(ctx context.Context, t Target) error {
	_, err := c.run(ctx, "new node", nil, append(nodeArgs(t), "-o", "new"), ExitSessExists)
	return err
}

// DeleteNode removes t's node record; no record (exit 21) is success.
func (c *Client) DeleteNode(ctx context.Context, t Target) error {
	_, err := c.run(ctx, "delete node", nil, append(nodeArgs(t), "-o", "delete"), ExitNoObjsFound)
	return err
}

// UpdateNode sets key to value in t's node record. Secret values (keys
// ending in password or password_in) are redacted from logs and errors.
func (c *Client) UpdateNode(ctx context.Context, t Target, key, value string) error {
	var secrets []string
	if isSecretKey(key) {
		secrets = []string{value}
	}
	_, err := c.run(ctx, "update node "+key, secrets, append(nodeArgs(t), "-o", "update", "-n", key, "-v", value))
	return err
}

// SetCHAP writes auth into t's node record (nil: AuthMethod None). Call it
// after Discover, which resets these settings.
func (c *Client) SetCHAP(ctx context.Context, t Target, auth *CHAP) error {
	for _, kv := range auth.settings("node.session.auth") {
		if err := c.UpdateNode(ctx, t, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// SetReplacementTimeout sets node.session.timeo.replacement_timeout: how
// long the kernel queues I/O for a session that lost its connection
// before failing it upwards. Failover wants it short (a few seconds), so
// a dead path turns into I/O errors instead of a hung filesystem. It takes
// effect at the next login.
func (c *Client) SetReplacementTimeout(ctx context.Context, t Target, d time.Duration) error {
	secs := int((d + time.Second - 1) / time.Second)
	return c.UpdateNode(ctx, t, "node.session.timeo.replacement_timeout", strconv.Itoa(secs))
}

// Login logs in to t. An existing session (exit 15) is success.
func (c *Client) Login(ctx context.Context, t Target) error {
	_, err := c.run(ctx, "login to "+t.Target+" at "+t.Portal, nil, append(nodeArgs(t), "--login"), ExitSessExists)
	return err
}

// Logout logs out of t. No session (exit 21) is success: Stop of a
// stopped resource must succeed.
func (c *Client) Logout(ctx context.Context, t Target) error {
	_, err := c.run(ctx, "logout of "+t.Target+" at "+t.Portal, nil, append(nodeArgs(t), "--logout"), ExitNoObjsFound)
	return err
}

// Sessions lists the sessions with their disks (-m session -P 3). No
// session (exit 21) is an empty list.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	out, err := c.run(ctx, "list sessions", nil, []string{"-m", "session", "-P", "3"})
	var oe *OpError
	if errors.As(err, &oe) && oe.ExitCode == int(ExitNoObjsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseSessions(out), nil
}

// Session returns t's session; ok is false when there is none. The portal
// is compared without the ",TPGT" suffix.
func (c *Client) Session(ctx context.Context, t Target) (s Session, ok bool, err error) {
	ss, err := c.Sessions(ctx)
	if err != nil {
		return Session{}, false, err
	}
	for _, s := range ss {
		if s.Target == t.Target && samePortal(s.Portal, t.Portal) {
			return s, true, nil
		}
	}
	return Session{}, false, nil
}

func samePortal(a, b string) bool { return NormalizePortal(a) == NormalizePortal(b) }

// NormalizePortal returns portal as IP:PORT without a ",TPGT" suffix,
// adding iscsiadm's default port 3260 when there is none
// ("10.0.0.1" -> "10.0.0.1:3260", "[fd00::1]" -> "[fd00::1]:3260").
func NormalizePortal(portal string) string {
	p, _, _ := strings.Cut(portal, ",")
	if strings.HasPrefix(p, "[") {
		if strings.HasSuffix(p, "]") {
			p += ":3260"
		}
		return p
	}
	if !strings.Contains(p, ":") {
		p += ":3260"
	}
	return p
}

// Rescan asks the kernel to rescan the LUNs of session sid (after the
// target added a LUN, or when sd_mod was loaded late).
func (c *Client) Rescan(ctx context.Context, sid string) error {
	_, err := c.run(ctx, "rescan session "+sid, nil, []string{"-m", "session", "-r", sid, "--rescan"})
	return err
}

// ByPath is the udev link of a LUN:
// /dev/disk/by-path/ip-PORTAL-iscsi-IQN-lun-N.
func (c *Client) ByPath(t Target, lun uint64) string {
	return filepath.Join(c.DevDir, "disk", "by-path", "ip-"+NormalizePortal(t.Portal)+"-iscsi-"+t.Target+"-lun-"+strconv.FormatUint(lun, 10))
}

// ErrNoDevice is returned (wrapped) by WaitDevice when the deadline passed
// before the LUN's block device appeared.
var ErrNoDevice = errors.New("block device did not appear")

// WaitDevice waits until t is logged in and LUN lun has a block device
// node, and returns its path: the /dev/disk/by-path link when udev made
// one, else /dev/sdX from the session's "Attached scsi disk" line. It
// polls every PollInterval until ctx ends.
func (c *Client) WaitDevice(ctx context.Context, t Target, lun uint64) (string, error) {
	tick := time.NewTicker(c.PollInterval)
	defer tick.Stop()
	var last string
	for {
		if p := c.ByPath(t, lun); exists(p) {
			return p, nil
		}
		s, ok, err := c.Session(ctx, t)
		switch {
		case err != nil && ctx.Err() != nil && last != "":
			// keep the last real observation, not the deadline's kill
		case err != nil:
			last = err.Error()
		case !ok:
			last = "no session"
		case !s.LoggedIn():
			last = fmt.Sprintf("session %s is %s/%s", s.SID, s.ISCSISessionState, s.ISCSIConnectionState)
		default:
			d, ok := s.Disk(lun)
			switch {
			case !ok || d.Name == "":
				last = fmt.Sprintf("session %s has no disk for lun %d (is sd_mod loaded?)", s.SID, lun)
			case !exists(filepath.Join(c.DevDir, d.Name)):
				last = fmt.Sprintf("lun %d is %s but %s does not exist (no udev? run mdev -s)", lun, d.Name, filepath.Join(c.DevDir, d.Name))
			default:
				return filepath.Join(c.DevDir, d.Name), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("iscsiadm: lun %d of %s at %s: %w: %s", lun, t.Target, t.Portal, ErrNoDevice, last)
		case <-tick.C:
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Setup is the whole attach sequence of a node: discovery (with
// discoveryAuth; skipped when portal discovery is off), the node record,
// CHAP (after discovery, which resets it), the replacement timeout (when
// not zero), login, then the device of lun. It returns the device path.
type Setup struct {
	Target        Target
	LUN           uint64
	Discover      bool
	DiscoveryAuth *CHAP
	Auth          *CHAP
	// ReplacementTimeout, when not zero, is set before login.
	ReplacementTimeout time.Duration
}

// Attach runs s and returns the device path.
func (c *Client) Attach(ctx context.Context, s Setup) (string, error) {
	if s.Discover {
		found, err := c.Discover(ctx, s.Target.Portal, s.DiscoveryAuth)
		if err != nil {
			return "", err
		}
		var seen bool
		for _, f := range found {
			seen = seen || f.Target == s.Target.Target
		}
		if !seen {
			return "", fmt.Errorf("iscsiadm: discovery at %s did not list %s (found %d targets); check the target name and the target's ACL", s.Target.Portal, s.Target.Target, len(found))
		}
	} else if err := c.CreateNode(ctx, s.Target); err != nil {
		return "", err
	}
	if err := c.SetCHAP(ctx, s.Target, s.Auth); err != nil {
		return "", err
	}
	if s.ReplacementTimeout > 0 {
		if err := c.SetReplacementTimeout(ctx, s.Target, s.ReplacementTimeout); err != nil {
			return "", err
		}
	}
	if err := c.Login(ctx, s.Target); err != nil {
		return "", err
	}
	return c.WaitDevice(ctx, s.Target, s.LUN)
}
