package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/ha/agent"
	"github.com/tandem-ha/tandem/ha/config"
)

// The guard closes the gap heartbeat left open: a kill -9 (or crash) of the
// agent leaves its resources running while the peer, hearing silence, starts
// them too: dual active. The agent starts a guard process holding the read
// end of a pipe; the agent writes one byte before a clean exit. If the pipe
// closes without that byte, the agent died: the guard stops the group in
// reverse order (forcing a failed stop) and self-fences if something still
// will not stop. Once the group is stopped it sends a released heartbeat
// on every link, so the peer takes over at once rather than after
// deadtime: a crash of the agent costs what a graceful standby does. It
// runs in its own session so a Ctrl-C or a
// terminal hang-up of the agent does not take it down too. The stops and
// their escalation are agent.Release's, the running agent's own.

const guardClean = 1

// startGuard starts the guard; the returned func tells it the agent exits
// cleanly (true) or not (false: the guard releases the group).
// boot is the agent's boot generation: the guard's released heartbeat
// speaks for that run only.
func startGuard(path, node string, boot uint64, log *slog.Logger) (func(clean bool), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	args := []string{"guard", "--config", path, "--boot", strconv.FormatUint(boot, 10)}
	if node != "" {
		args = append(args, "--node", node)
	}
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = []*os.File{r} // fd 3
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("guard: start: %w", err)
	}
	r.Close()
	go cmd.Wait()
	log.Info("guard started", "pid", cmd.Process.Pid)
	return func(clean bool) {
		if clean {
			w.Write([]byte{guardClean})
		}
		w.Close()
	}, nil
}

func guardCommand() *cobra.Command {
	var path, node string
	var boot uint64
	c := &cobra.Command{
		Use:    "guard",
		Short:  "Release the resource group when the agent dies (started by the agent)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			pipe := os.NewFile(3, "agent-pipe")
			if pipe == nil {
				return errors.New("guard: no pipe from the agent on fd 3 (the agent starts the guard itself)")
			}
			var b [1]byte
			n, _ := pipe.Read(b[:])
			if n == 1 && b[0] == guardClean {
				return nil
			}
			cfg, err := config.Load(path, config.Options{Node: node})
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log).With("node", cfg.Node, "guard", true)
			log.Error("agent died: releasing the resource group")
			if err := agent.Release(cfg, agent.ReleaseOptions{Boot: boot, Log: log}); err != nil {
				return err
			}
			log.Warn("resource group released after the agent died")
			return nil
		},
	}
	c.Flags().StringVar(&path, "config", config.DefaultPath, "configuration file")
	c.Flags().StringVar(&node, "node", "", "this node's name")
	c.Flags().Uint64Var(&boot, "boot", 0, "the agent's boot generation (0: send no released heartbeat)")
	return c
}
