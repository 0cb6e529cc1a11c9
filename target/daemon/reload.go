package daemon

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// ReloadOnSIGHUP reloads the config file on every SIGHUP until ctx ends.
// A reload that is refused is logged with why and changes nothing; the
// daemon keeps serving what it served.
func (m *Manager) ReloadOnSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				m.log.Info("SIGHUP: reloading the config", "path", m.o.ConfigPath)
				if err := m.Reload(ctx); err != nil {
					m.log.Error("config reload refused: nothing changed", "path", m.o.ConfigPath, "err", err)
				}
			}
		}
	}()
}
