package mqres

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// Setup describes a shared-disk queue manager for a pair: crtmqm on the
// first node with data and log on the shared filesystem, addmqinf on the
// second so it knows the same queue manager.
type Setup struct {
	QMgr string
	// DataDir and LogDir are the -md and -ld parents on the shared
	// filesystem (e.g. /MQHA/qmgrs and /MQHA/log); MQ adds /QM itself.
	DataDir, LogDir string
}

// SetupFor derives DataDir and LogDir from a shared mount point.
func SetupFor(qm, mount string) Setup {
	return Setup{QMgr: qm, DataDir: filepath.Join(mount, "qmgrs"), LogDir: filepath.Join(mount, "log")}
}

// CrtmqmArgs is the crtmqm argv (without the binary) for the first node.
func (s Setup) CrtmqmArgs() []string {
	return []string{"-md", s.DataDir, "-ld", s.LogDir, s.QMgr}
}

// Crtmqm runs crtmqm on this (the first) node.
func (r *Resource) Crtmqm(ctx context.Context, s Setup) (string, error) {
	res, err := r.run.Run(ctx, "crtmqm", s.CrtmqmArgs()...)
	if err != nil {
		return "", fmt.Errorf("crtmqm %s: %w", s.QMgr, err)
	}
	if res.Code != codeOK {
		return string(res.Stdout), fmt.Errorf("crtmqm %s exited %d: %s", s.QMgr, res.Code, msg(res))
	}
	return string(res.Stdout), nil
}

// AddmqinfLine returns the `addmqinf ...` command the second node must run,
// as printed by `dspmqinf -o command QM` on the first node.
func (r *Resource) AddmqinfLine(ctx context.Context) (string, error) {
	res, err := r.run.Run(ctx, "dspmqinf", "-o", "command", r.cfg.QMgr)
	if err != nil {
		return "", fmt.Errorf("dspmqinf -o command %s: %w", r.cfg.QMgr, err)
	}
	if res.Code != codeOK {
		return "", fmt.Errorf("dspmqinf -o command %s exited %d: %s (run it on the node where crtmqm ran)", r.cfg.QMgr, res.Code, msg(res))
	}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "addmqinf ") {
			return l, nil
		}
	}
	return "", fmt.Errorf("dspmqinf -o command %s printed no addmqinf line: %q", r.cfg.QMgr, string(res.Stdout))
}

// AddmqinfArgs splits an addmqinf line into argv (without the binary). The
// values MQ prints hold no spaces (paths and names), so fields suffice.
func AddmqinfArgs(line string) ([]string, error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "addmqinf" {
		return nil, fmt.Errorf("not an addmqinf line: %q", line)
	}
	return f[1:], nil
}

// Addmqinf runs an addmqinf line on this (the second) node.
func (r *Resource) Addmqinf(ctx context.Context, line string) error {
	args, err := AddmqinfArgs(line)
	if err != nil {
		return err
	}
	res, err := r.run.Run(ctx, "addmqinf", args...)
	if err != nil {
		return fmt.Errorf("addmqinf: %w", err)
	}
	if res.Code != codeOK {
		return fmt.Errorf("addmqinf exited %d: %s", res.Code, msg(res))
	}
	return nil
}
