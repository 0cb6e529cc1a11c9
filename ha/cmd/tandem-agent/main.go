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
				fmt.Fprintf(cmd.OutOrStdout(), "config %s is valid: node %s, peer %s, %d links, %d resources\n",
					path, cfg.Node, cfg.Peer, len(cfg.Links), len(cfg.Resources))
				return nil
			}
			return run(cfg, path, node, !noGuard, !noRealtime)
		},
	}
	f := c.Flags()
	f.StringVar(&path, "config", config.DefaultPath, "configuration file")
	f.StringVar(&node, "node", "", "this node's name (default: the config's node, else the host name)")
	f.BoolVar(&check, "check", false, "validate the configuration and exit")
	f.BoolVar(&noGuard, "no-guard", false, "do not start the guard that releases the group if the agent dies")
	f.BoolVar(&noRealtime, "no-realtime", false, "run the heartbeat threads at normal priority and do not lock memory (by default SCHED_RR and mlockall where permitted)")
	c.AddCommand(guardCommand())
	clidoc.Attach(c) // --version; man pages and completions for make dist
	if err := c.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tandem-agent:", err)
		os.Exit(1)
	}
}

func run(cfg *config.Config, path, node string, guard, realtime bool) error {
	log := newLogger(cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

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
	if cfg.MetricsAddress != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			return fmt.Errorf("metrics_address %s: %w", cfg.MetricsAddress, err)
		}
		hs := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics", "err", err)
			}
		}()
		defer hs.Close()
	}
	sdnotify.Ready(log) // Type=notify: active once the control socket and metrics listen
	// The guard starts last: from here on this agent may hold resources.
	if guard {
		done, err := startGuard(path, node, log)
		if err != nil {
			return err
		}
		err = a.Run(ctx)
		done(err == nil) // not clean: the guard retries the stops, then fences
		return err
	}
	return a.Run(ctx)
}

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
