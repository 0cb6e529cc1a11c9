// Package ocf is the OCF resource agent ocf:tandem:ibmmq (OCF Resource Agent
// API 1.0/1.1): the same mqres.Resource driven by Pacemaker's actions and
// exit codes, so a pair that outgrows tandem keeps its MQ resource.
package ocf

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tandem-ha/tandem/mqres"
)

// OCF exit codes (OCF Resource Agent API, "Return codes").
const (
	Success          = 0
	ErrGeneric       = 1
	ErrArgs          = 2
	ErrUnimplemented = 3
	ErrPerm          = 4
	ErrInstalled     = 5
	ErrConfigured    = 6
	NotRunning       = 7
)

//go:embed metadata.xml
var metadata string

// Metadata is the agent's meta-data XML (ra-api-1.dtd).
func Metadata() string { return metadata }

// Env reads the agent's environment; os.LookupEnv in production.
type Env func(key string) (string, bool)

// params collects OCF_RESKEY_<param> for every mqres param.
func params(env Env) map[string]string {
	p := map[string]string{}
	for _, k := range []string{mqres.ParamQMgr, mqres.ParamBinDir, mqres.ParamUser, mqres.ParamSharedMount,
		mqres.ParamStartTimeout, mqres.ParamStopTimeout, mqres.ParamEndTimeout, mqres.ParamMonitorTimeout} {
		if v, ok := env("OCF_RESKEY_" + k); ok {
			p[k] = v
		}
	}
	return p
}

// actionTimeout is Pacemaker's timeout for this action (CRM_meta_timeout,
// ms), less a margin so that the agent reports its own error before the
// cluster kills it.
func actionTimeout(env Env) time.Duration {
	v, _ := env("OCF_RESKEY_CRM_meta_timeout")
	ms, err := strconv.Atoi(v)
	if err != nil || ms <= 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond * 9 / 10
}

// Config builds the resource's Config from the environment.
func Config(env Env) (mqres.Config, error) {
	p := params(env)
	cfg, err := mqres.ConfigFromParams(p)
	if err != nil {
		return cfg, err
	}
	if t := actionTimeout(env); t > 0 {
		if _, ok := p[mqres.ParamStartTimeout]; !ok {
			cfg.StartTimeout = t
		}
		if _, ok := p[mqres.ParamStopTimeout]; !ok {
			cfg.StopTimeout = t
		}
		if _, ok := p[mqres.ParamMonitorTimeout]; !ok && t < cfg.MonitorTimeout {
			cfg.MonitorTimeout = t
		}
	}
	return cfg, nil
}

// installed reports whether the MQ control commands are executable.
func installed(cfg mqres.Config) error {
	for _, c := range []string{"strmqm", "endmqm", "dspmq", "dspmqinf"} {
		p := filepath.Join(cfg.BinDir, c)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is missing or not executable: install IBM MQ or set mqbin", p)
		}
	}
	return nil
}

// Run performs one OCF action and returns its exit code. Diagnostics go to
// stderr, which Pacemaker logs.
func Run(action string, env Env, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	switch action {
	case "meta-data":
		io.WriteString(stdout, metadata)
		return Success
	case "usage", "help":
		fmt.Fprintln(stdout, "usage: ibmmq {start|stop|monitor|validate-all|meta-data}")
		return Success
	case "start", "stop", "monitor", "status", "validate-all":
	default:
		fmt.Fprintf(stderr, "ibmmq: action %q is not implemented\n", action)
		return ErrUnimplemented
	}
	cfg, err := Config(env)
	if err != nil {
		log.Error("invalid parameters", "err", err)
		return ErrConfigured
	}
	if err := installed(cfg); err != nil {
		// A probe (monitor, interval 0) on a node without MQ must say "not
		// running here", and stop of a resource that cannot run succeeds.
		interval, _ := env("OCF_RESKEY_CRM_meta_interval")
		switch {
		case (action == "monitor" || action == "status") && (interval == "" || interval == "0"):
			return NotRunning
		case action == "stop":
			return Success
		}
		log.Error("MQ not installed", "err", err)
		return ErrInstalled
	}
	if action == "validate-all" {
		return Success
	}
	cfg.Log = log
	r, err := mqres.New(cfg)
	if err != nil {
		log.Error("invalid parameters", "err", err)
		return ErrConfigured
	}
	ctx := context.Background()
	switch action {
	case "start":
		if err := r.Start(ctx); err != nil {
			log.Error("start failed", "err", err)
			return ErrGeneric
		}
		return Success
	case "stop":
		if err := r.Stop(ctx); err != nil {
			log.Error("stop failed", "err", err)
			return ErrGeneric
		}
		return Success
	}
	st, err := r.Monitor(ctx)
	if err != nil {
		log.Error("monitor failed", "err", err)
	}
	switch st {
	case mqres.StateRunning:
		return Success
	case mqres.StateStopped:
		return NotRunning
	}
	return ErrGeneric
}
