// Package mq registers the resource type "mq": an IBM MQ queue manager
// driven through mqres (strmqm, endmqm escalation, dspmq under a timeout).
// The queue manager defaults to the resource's name.
package mq

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/ha/resource/script"
	"github.com/tandem-ha/tandem/mqres"
)

func init() { resource.Register("mq", Params, New) }

// Params is the mq type's parameter table: mqres's keys. The start, stop
// and monitor timeouts are the resource's own fields (start_timeout,
// stop_timeout, monitor.timeout), not params.
var Params = []resource.Param{
	{Key: mqres.ParamQMgr, Example: "QM1", Doc: "the queue manager (default the resource's name)"},
	{Key: mqres.ParamBinDir, Example: "/opt/mqm/bin", Doc: "directory of strmqm, endmqm, dspmq (default /opt/mqm/bin)"},
	{Key: mqres.ParamUser, Example: "mqm", Doc: "user that runs the MQ commands (default mqm; empty: the agent's)"},
	{Key: mqres.ParamSharedMount, Example: "/MQHA", Doc: "the shared filesystem's mount point; start refuses data or logs elsewhere"},
	{Key: mqres.ParamEndTimeout, Example: "20s", Doc: "bound of each endmqm before escalating (default a third of stop_timeout)"},
}

// New builds an mq resource from its spec. Params are mqres's: qmgr, mqbin,
// user, shared_mount; the spec's timeouts become mqres's.
func New(s resource.Spec, log *slog.Logger) (resource.Resource, error) {
	p := maps.Clone(s.Params)
	if p == nil {
		p = map[string]string{}
	}
	if p["qmgr"] == "" {
		p["qmgr"] = s.Name
	}
	if s.StartTimeout > 0 {
		p["start_timeout"] = s.StartTimeout.String()
	}
	if s.StopTimeout > 0 {
		p["stop_timeout"] = s.StopTimeout.String()
	}
	if s.Monitor.Timeout > 0 {
		p["monitor_timeout"] = s.Monitor.Timeout.String()
	}
	r, err := mqres.NewFromParams(p, log)
	if err != nil {
		return nil, s.Err("params", err.Error(), "")
	}
	return adapter{Resource: r, name: s.Name}, nil
}

// mqCommands are the MQ programs the resource runs.
var mqCommands = []string{"strmqm", "endmqm", "dspmq"}

// Check implements resource.Checker without side effects: MQ's control
// programs are installed and shared_mount is a directory. Whether the
// queue manager's data sits on it is known only once the disk is
// mounted (Start checks it; tandemctl doctor on the active node too).
func (a adapter) Check(context.Context) error {
	cfg := a.Resource.Config()
	dir := cfg.BinDir
	for _, c := range mqCommands {
		if err := script.CheckExecutable(filepath.Join(dir, c)); err != nil {
			return fmt.Errorf("mq %s: %w (install IBM MQ or set params.mqbin to its bin directory)", a.name, err)
		}
	}
	if m := cfg.SharedMount; m != "" {
		if fi, err := os.Stat(m); err != nil || !fi.IsDir() {
			return fmt.Errorf("mq %s: shared_mount %s is not a directory (create the mount point: mkdir -p %s)", a.name, m, m)
		}
	}
	return nil
}

// adapter maps mqres's State onto resource.Status; the rest passes through.
type adapter struct {
	*mqres.Resource
	name string
}

// Name is the group member's name, which may differ from the queue manager's.
func (a adapter) Name() string { return a.name }

var statusOf = map[mqres.State]resource.Status{
	mqres.StateRunning: resource.StatusRunning,
	mqres.StateStopped: resource.StatusStopped,
	mqres.StateFailed:  resource.StatusFailed,
}

func (a adapter) Monitor(ctx context.Context) (resource.Status, error) {
	s, err := a.Resource.Monitor(ctx)
	st, ok := statusOf[s]
	if !ok {
		st = resource.StatusFailed
	}
	return st, err
}

var (
	_ resource.Forcer  = adapter{}
	_ resource.Checker = adapter{}
)
