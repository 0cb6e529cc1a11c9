package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/resource"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // the types whose specs the doctor validates
	"github.com/tandem-ha/tandem/ha/resource/iscsi"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/mqres"
	targetconfig "github.com/tandem-ha/tandem/target/config"
)

// Options say where the probes look.
type Options struct {
	Role string
	// ConfigPath is the agent's config; Node overrides its node name.
	ConfigPath, Node string
	// Socket is the agent's control socket.
	Socket string
	// InitiatorNameFile is open-iscsi's; PeerInitiatorName the peer's
	// InitiatorName when the operator knows it.
	InitiatorNameFile, PeerInitiatorName string
	// TargetConfigPath is tandem-target's config (storage role).
	TargetConfigPath string
	// Timeout bounds each network probe (agent, login).
	Timeout time.Duration
}

// Gather probes the host for opt.Role. It only reads: no resource is
// started, the logins log out at once and send no command that changes
// the LUN (REPORT CAPABILITIES only).
func Gather(ctx context.Context, opt Options) *Facts {
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	f := &Facts{Role: opt.Role, ConfigPath: opt.ConfigPath, EUID: os.Geteuid(), NodeFromFlag: opt.Node != ""}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f.Uname, f.KernelRelease = unix.ByteSliceToString(u.Nodename[:]), unix.ByteSliceToString(u.Release[:])
	}
	f.Realtime, f.Mlock = permissions()
	if opt.Role == "storage" {
		f.TargetConfigPath = opt.TargetConfigPath
		if _, err := targetconfig.Load(opt.TargetConfigPath); err != nil {
			f.TargetConfigErr = err.Error()
		}
		return f
	}
	cfg, err := config.Load(opt.ConfigPath, config.Options{Node: opt.Node, Inspect: true})
	if err != nil {
		f.ConfigErr = err.Error()
		return f
	}
	f.Config = cfg
	f.Key = statFile(cfg.KeyFile)
	if _, err := config.ReadKey(cfg.KeyFile); err != nil {
		f.KeyErr = err.Error()
	}
	f.SpecErrs, f.Files = map[string]string{}, map[string]FileFact{}
	for _, s := range cfg.Resources {
		if err := s.Validate(); err != nil {
			f.SpecErrs[s.Name] = err.Error()
		}
		if s.Type == "script" || s.Type == "lsb" {
			p := ScriptPath(s.Type, s.Params["path"])
			f.Files[p] = statFile(p)
		}
	}
	f.Addrs, err = interfaceAddrs()
	if err != nil {
		f.AddrsErr = "(" + err.Error() + ")"
	}
	actx, cancel := context.WithTimeout(ctx, opt.Timeout)
	st, err := control.NewClient(opt.Socket).Status(actx)
	cancel()
	if err != nil {
		f.AgentErr = err.Error()
	} else {
		f.Agent = &st
	}
	f.Iscsid = processRuns("iscsid")
	f.InitiatorName, err = readInitiatorName(opt.InitiatorNameFile)
	if err != nil {
		f.InitiatorErr = err.Error()
	}
	f.PeerInitiatorName = opt.PeerInitiatorName
	for _, l := range sessions(cfg, f.InitiatorName) {
		f.Logins = append(f.Logins, tryLogin(ctx, l, opt.Timeout))
	}
	f.MQ = mqFacts(ctx, cfg)
	return f
}

func statFile(path string) FileFact {
	ff := FileFact{Path: path}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		ff.Err = "(" + err.Error() + ")"
	default:
		ff.Exists, ff.Mode = true, st.Mode()
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			ff.UID = int(s.Uid)
		}
	}
	return ff
}

func interfaceAddrs() (map[string][]netip.Prefix, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	m := map[string][]netip.Prefix{}
	for _, i := range ifs {
		m[i.Name] = nil
		as, err := i.Addrs()
		if err != nil {
			return m, err
		}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok {
					ones, _ := n.Mask.Size()
					m[i.Name] = append(m[i.Name], netip.PrefixFrom(ip, ones))
				}
			}
		}
	}
	return m, nil
}

// processRuns reports whether a process has comm name.
func processRuns(name string) bool {
	ds, _ := os.ReadDir("/proc")
	for _, d := range ds {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(b)) == name {
			return true
		}
	}
	return false
}

// readInitiatorName returns InitiatorName= of open-iscsi's file ("" when
// the file is absent or sets none).
func readInitiatorName(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "InitiatorName="); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil
}

// permissions: SCHED_RR needs CAP_SYS_NICE or a non-zero RLIMIT_RTPRIO;
// mlockall needs CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK.
func permissions() (rt, mlock bool) {
	caps := effectiveCaps()
	var l unix.Rlimit
	rt = caps&(1<<unix.CAP_SYS_NICE) != 0 || unix.Getrlimit(unix.RLIMIT_RTPRIO, &l) == nil && l.Cur > 0
	mlock = caps&(1<<unix.CAP_IPC_LOCK) != 0 || unix.Getrlimit(unix.RLIMIT_MEMLOCK, &l) == nil && l.Cur == unix.RLIM_INFINITY
	return rt, mlock
}

func effectiveCaps() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}

// session is one configured native login to try.
type session struct {
	what, portal, target, initiator string
	lun                             uint64
	user, secretFile                string
}

// sessions lists the logins the config implies: every iscsi resource
// (with open-iscsi's InitiatorName, which the target's ACL knows), a
// native fence, and a native disk heartbeat.
func sessions(cfg *config.Config, kernelName string) []session {
	var out []session
	native := fence.InitiatorName(cfg.Cluster, cfg.Node)
	for _, s := range cfg.Resources {
		p := s.Params
		switch {
		case s.Type == "iscsi" && p["portal"] != "" && p["target"] != "":
			lun, _ := strconv.ParseUint(p["lun"], 10, 64)
			name := kernelName
			if name == "" {
				name = native
			}
			out = append(out, session{what: "resource " + s.Name, portal: p["portal"], target: p["target"], initiator: name,
				lun: lun, user: p["user"], secretFile: p["secret_file"]})
		case s.Type == fence.Type && p["portal"] != "" && p["target"] != "":
			name := p["initiator_name"]
			if name == "" {
				name = native
			}
			lun := uint64(0)
			if l, err := strconv.ParseUint(strings.Split(p["luns"], ",")[0], 10, 64); err == nil {
				lun = l
			}
			out = append(out, session{what: "resource " + s.Name, portal: p["portal"], target: p["target"], initiator: name,
				lun: lun, user: p["user"], secretFile: p["secret_file"]})
		}
	}
	if d := cfg.DiskHeartbeat; d.Portal != "" {
		out = append(out, session{what: "disk_heartbeat", portal: d.Portal, target: d.Target, initiator: native,
			lun: d.LUN, user: d.User, secretFile: d.SecretFile})
	}
	return out
}

func tryLogin(ctx context.Context, s session, timeout time.Duration) LoginFact {
	lf := LoginFact{What: s.what, Portal: s.portal, Target: s.target, LUN: s.lun, CHAP: s.user != ""}
	opts := initiator.Options{InitiatorName: s.initiator, TargetName: s.target, Logger: slog.New(slog.DiscardHandler)}
	if s.user != "" {
		sec, err := iscsi.ReadSecret(s.secretFile)
		if err != nil {
			lf.Err = err.Error()
			return lf
		}
		opts.CHAP = &initiator.CHAP{User: s.user, Secret: []byte(sec)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sess, err := initiator.Dial(ctx, s.portal, opts)
	if err != nil {
		lf.Err = err.Error()
		return lf
	}
	defer sess.Close(ctx)
	caps, err := sess.PRReportCapabilities(ctx, s.lun)
	if err != nil {
		lf.PRErr = err.Error()
		return lf
	}
	lf.PRTypes = []uint8{}
	for t := range 16 {
		if caps.Supports(initiator.PRType(t)) {
			lf.PRTypes = append(lf.PRTypes, uint8(t))
		}
	}
	return lf
}

// mqFacts asks each mq resource with a shared_mount for its queue
// manager's paths (dspmqinf, qm.ini): known only where the shared
// filesystem is mounted.
func mqFacts(ctx context.Context, cfg *config.Config) []MQFact {
	var out []MQFact
	for _, s := range cfg.Resources {
		if s.Type != "mq" || s.Params[mqres.ParamSharedMount] == "" {
			continue
		}
		mf := MQFact{Name: s.Name, QMgr: s.Params[mqres.ParamQMgr], SharedMount: s.Params[mqres.ParamSharedMount]}
		if mf.QMgr == "" {
			mf.QMgr = s.Name
		}
		r, err := resource.Build(s, nil)
		if err != nil {
			mf.Err = err.Error()
			out = append(out, mf)
			continue
		}
		q, ok := r.(interface {
			QMPaths(context.Context) (mqres.Paths, error)
		})
		if !ok {
			mf.Err = fmt.Sprintf("resource %s cannot report its paths", s.Name)
			out = append(out, mf)
			continue
		}
		p, err := q.QMPaths(ctx)
		if err != nil {
			mf.Err = err.Error()
		}
		mf.Data, mf.Log = p.Data, p.Log
		mf.DataOnMountDev, mf.LogOnMountDev = sameDev(p.Data, mf.SharedMount), sameDev(p.Log, mf.SharedMount)
		out = append(out, mf)
	}
	return out
}

func sameDev(a, b string) bool {
	var x, y syscall.Stat_t
	if syscall.Stat(a, &x) != nil || syscall.Stat(b, &y) != nil {
		return true // lexical check only; MQ reports missing paths better
	}
	return x.Dev == y.Dev
}
