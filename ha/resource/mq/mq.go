// Package mq registers the resource type "mq": an IBM MQ queue manager
// driven through mqres (strmqm, endmqm escalation, dspmq under a timeout).
// The queue manager defaults to the resource's name.
package mq

import (
	"context"
	"log/slog"
	"maps"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/mqres"
)

func init() { resource.Register("mq", New) }

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
		return nil, s.Err("params", err.Error(), "see mqres.ConfigFromParams for the keys")
	}
	return adapter{Resource: r, name: s.Name}, nil
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

var _ resource.Forcer = adapter{}
