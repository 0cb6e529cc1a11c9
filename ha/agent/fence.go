package agent

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/tandem-ha/tandem/ha/config"
)

// ExitFenced is the exit status of an agent fenced with action exit.
const ExitFenced = 70

// FenceFunc returns the self-fence action the config asks for: reboot
// (sync, then reboot(2) at once, as heartbeat's `reboot -nf`: a node whose
// resource would not stop must vanish before the peer takes over), exit
// (the agent exits with ExitFenced), or command (run with sh -c; the agent
// goes on in state Fenced).
func FenceFunc(sf config.SelfFence, log *slog.Logger) func(reason string) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch sf.Action {
	case config.FenceExit:
		return func(reason string) {
			log.Error("self-fence: exiting", "reason", reason, "status", ExitFenced)
			os.Exit(ExitFenced)
		}
	case config.FenceCommand:
		return func(reason string) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", sf.Command)
			cmd.Env = append(os.Environ(), "TANDEM_FENCE_REASON="+reason)
			out, err := cmd.CombinedOutput()
			log.Error("self-fence: command ran", "command", sf.Command, "reason", reason, "output", string(out), "err", err)
		}
	default:
		return func(reason string) {
			log.Error("self-fence: rebooting now", "reason", reason)
			if err := reboot(); err != nil {
				// Cannot reboot (no CAP_SYS_BOOT?): exiting is the next best
				// thing, resources are still up, but the operator sees it.
				log.Error("self-fence: reboot failed, exiting", "err", err)
				os.Exit(ExitFenced)
			}
		}
	}
}
