// Command tandem-agent is the node agent of a two-node tandem cluster:
// heartbeats on every configured link, the failover state machine, the
// resource group, the control socket and Prometheus metrics. The group's
// resource types are vip, script, lsb, filesystem, iscsi, fence and mq
// (see ha/resource). A guard process stops the group if the agent dies.
//
//	tandem-agent --config /etc/tandem/agent.yaml
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/ha/agent"
	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/metrics"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // registers every resource type (ha/resource doc)
	"github.com/tandem-ha/tandem/internal/clidoc"
	"github.com/tandem-ha/tandem/internal/sdnotify"
	"github.com/tandem-ha/tandem/internal/unixsock"
)

func main() {
	var path, node string
	var check, noGuard, noRealtime bool
	c := &cobra.Command{
		Use:           "tandem-agent",
		Short:         "Node agent of a two-node tandem cluster",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, config.Options{Node: node})
			if err != nil {
				return err
			}
			if check {
				if err := checkResources(cmd.Context(), cfg); err != nil {
					return fmt.Errorf("config %s: %w", path, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "config %s is valid: node %s, peer %s, %d links, %d resources checked on this host\n",
					path, cfg.Node, cfg.Peer, len(cfg.Links), len(cfg.Resources))
				return nil
			}
			return run(cfg, path, node, !noGuard, !noRealtime)
		},
	}
	f := c.Flags()
	f.StringVar(&path, "config", config.DefaultPath, "configuration file")
	f.StringVar(&node, "node", "", "this node's name (default: the config's node, else the host name)")
	f.BoolVar(&check, "check", false, "validate the configuration and each resource's host checks (no side effect), then exit")
	f.BoolVar(&noGuard, "no-guard", false, "do not start the guard that releases the group if the agent dies")
	f.BoolVar(&noRealtime, "no-realtime", false, "run the heartbeat threads at normal priority and do not lock memory (by default SCHED_RR and mlockall where permitted)")
	c.AddCommand(guardCommand(), paramsCommand())
	clidoc.Attach(c) // --version; man pages and completions for make dist
	if err := c.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tandem-agent:", err)
		os.Exit(1)
	}
}

func run(cfg *config.Config, path, node string, guard, realtime bool) error {
	level := new(slog.LevelVar)
	log := newLeveledLogger(cfg.Log, level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP's default action kills the process, and with it the group
	// (the guard releases it): catch it from the first moment.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(cfg, path, node, level, log)
			}
		}
	}()

	var a *agent.Agent
	m := metrics.New(func() control.Status { return a.Status() })
	a, err := agent.New(cfg, agent.Options{Log: log, OnResourceOp: m.ObserveResourceOp,
		OnHeartbeatGap: m.ObserveHeartbeatGap, OnLateness: m.ObserveLateness, Realtime: realtime})
	if err != nil {
		return err
	}
	srv, err := control.Listen(cfg.ControlSocket, a, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	go func() {
		if err := srv.Serve(); err != nil {
			log.Error("control socket", "err", err)
		}
	}()
	if cfg.MetricsEnabled() {
		// Metrics are not worth an outage: a taken port is logged and the
		// agent runs on without them.
		if ln, err := net.Listen("tcp", cfg.MetricsAddress); err != nil {
			log.Error("metrics off: cannot listen (free the port, or set metrics_address to another IP:PORT or off)",
				"address", cfg.MetricsAddress, "err", err)
		} else {
			hs := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: unixsock.IdleTimeout}
			go func() {
				if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("metrics", "err", err)
				}
			}()
			defer hs.Close()
			log.Info("metrics listening", "address", ln.Addr().String())
		}
	}
	sdnotify.Ready(log) // Type=notify: active once the control socket and metrics listen
	// The guard starts last: from here on this agent may hold resources.
	if guard {
		done, err := startGuard(path, node, a.Boot(), log)
		if err != nil {
			return err
		}
		err = a.Run(ctx)
		done(err == nil) // not clean: the guard retries the stops, then fences
		return err
	}
	return a.Run(ctx)
}

// reload is SIGHUP: re-read the file, apply what is safe live (the log
// level, config.Reload), log what needs a restart. A file that no longer
// loads changes nothing. It never stops the agent.
func reload(cfg *config.Config, path, node string, level *slog.LevelVar, log *slog.Logger) {
	file, err := config.Load(path, config.Options{Node: node})
	if err != nil {
		log.Error("SIGHUP: config not reloaded, the running one stays", "err", err)
		return
	}
	lvl, restart := config.Reload(cfg, file)
	var l slog.Level
	if err := l.UnmarshalText([]byte(lvl)); err == nil && l != level.Level() {
		level.Set(l)
		log.Warn("SIGHUP: log level applied", "level", lvl)
	}
	if len(restart) > 0 {
		log.Warn("SIGHUP: "+config.RestartAdvice(restart), "keys", strings.Join(restart, ","))
		return
	}
	log.Info("SIGHUP: config reloaded", "path", path)
}

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.LevelVar
	return newLeveledLogger(c, &lvl)
}

func newLeveledLogger(c config.Log, level *slog.LevelVar) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	level.Set(lvl)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
