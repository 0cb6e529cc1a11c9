// Command tandem-target is the tandem iSCSI target daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/internal/clidoc"
	"github.com/tandem-ha/tandem/internal/sdnotify"
	"github.com/tandem-ha/tandem/internal/unixsock"
	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/daemon"
	"github.com/tandem-ha/tandem/target/iscsi"
	"github.com/tandem-ha/tandem/target/login"
)

func main() {
	var cfgPath, logLevel string
	var check bool
	cmd := &cobra.Command{
		Use:           "tandem-target",
		Short:         "userspace iSCSI target",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if check {
				return runCheck(ctx, cmd, cfgPath)
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
			}
			return run(ctx, cfgPath, lvl)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "/etc/tandem/target.yaml", "configuration file")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().BoolVar(&check, "check", false, "validate the config and every LUN's backing, serve nothing, and exit (0: it would start)")
	clidoc.Attach(cmd) // --version; man pages and completions for make dist
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tandem-target:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfgPath string, level slog.Level) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	srv := iscsi.NewServer(serverConfig(cfg, log))
	mgr := daemon.New(srv, daemon.Options{ConfigPath: cfgPath, Log: log})
	defer func() {
		if err := mgr.Close(); err != nil {
			log.Error("closing LUNs", "err", err)
		}
	}()
	// Signal.Notify before anything can send a SIGHUP (systemctl reload
	// right after start): its default action would kill the daemon.
	mgr.ReloadOnSIGHUP(ctx)
	if err := mgr.Start(ctx, cfg); err != nil {
		return fmt.Errorf("%w\n(fix the LUN or its backing in %s; nothing was served)", err, cfgPath)
	}
	for _, addr := range cfg.Listen {
		a, err := srv.Listen(addr)
		if err != nil {
			shutdown(srv, log)
			return err
		}
		log.Info("listening", "addr", a.String())
	}
	var api *http.Server
	if cfg.AdminSocket != "" {
		l, err := admin.Listen(cfg.AdminSocket)
		if err != nil {
			shutdown(srv, log)
			return err
		}
		api = &http.Server{Handler: daemon.NewAPIHandler(mgr, log), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: unixsock.IdleTimeout}
		go func() {
			if err := api.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin api stopped", "err", err)
			}
		}()
		defer func() { _ = os.Remove(cfg.AdminSocket) }()
	}
	if cfg.MetricsEnabled() {
		daemon.ServeMetrics(ctx, cfg.MetricsAddress, mgr, log)
	}
	sdnotify.Ready(log) // Type=notify: active once every portal and the admin socket listen
	<-ctx.Done()
	log.Info("shutting down")
	if api != nil {
		_ = api.Close()
	}
	shutdown(srv, log)
	return nil
}

// runCheck is --check: what Start would refuse, found without serving,
// locking or creating anything, so it runs beside the live daemon.
func runCheck(ctx context.Context, cmd *cobra.Command, cfgPath string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if err := daemon.Check(ctx, cfg, nil); err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	luns := 0
	for _, t := range cfg.Targets {
		luns += len(t.LUNs)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d targets, %d LUNs)\n", cfgPath, len(cfg.Targets), luns)
	return nil
}

func shutdown(srv *iscsi.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
}

func serverConfig(cfg *config.Config, log *slog.Logger) iscsi.Config {
	l := cfg.Limits
	imm, r2t := l.ImmediateData, l.InitialR2T
	nop := l.NopInterval
	if nop == 0 {
		nop = -1 // config: 0 disables pings
	}
	return iscsi.Config{
		Discovery: daemon.AuthFromCHAP(cfg.Discovery.CHAP),
		Limits: login.Limits{
			MaxRecvDataSegmentLength: l.MaxRecvDataSegmentLength,
			MaxBurstLength:           l.MaxBurstLength,
			FirstBurstLength:         l.FirstBurstLength,
			MaxOutstandingR2T:        l.MaxOutstandingR2T,
			ImmediateData:            &imm,
			InitialR2T:               &r2t,
			AllowDigests:             l.HeaderDigest || l.DataDigest,
		},
		MaxSessions: int(l.MaxSessions),
		QueueDepth:  l.QueueDepth,
		NopInterval: nop,
		NopTimeout:  l.NopTimeout,
		Logger:      log,
	}
}
