package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tandem-ha/tandem/internal/unixsock"
)

// Server serves the control API on a unix socket.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
}

// Listen creates the control socket at path, mode 0600 from creation, and
// its directory (mode 0755) if missing (see unixsock.Listen): a stale
// socket is replaced, a live one refused. Serve must be called next.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := unixsock.Listen(path)
	if err != nil {
		return nil, fmt.Errorf("control socket (control_socket in the config): %w", err)
	}
	s := &Server{path: path, ln: ln}
	s.srv = &http.Server{Handler: Handler(b, log), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: unixsock.IdleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return s, nil
}

// Serve serves until Close.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and removes the socket.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

// Handler is the API's HTTP handler.
func Handler(b Backend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, b.Status())
	})
	cmd := func(c Command) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { run(w, r, b, log, c) }
	}
	mux.HandleFunc("POST /v1/standby", cmd(CmdStandby))
	mux.HandleFunc("POST /v1/takeover", cmd(CmdTakeover))
	mux.HandleFunc("POST /v1/rejoin", cmd(CmdRejoin))
	mux.HandleFunc("POST /v1/maintenance", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			On *bool `json:"on"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.On == nil {
			writeJSON(w, http.StatusBadRequest, errorBody{`body must be {"on": true} or {"on": false}`})
			return
		}
		c := CmdMaintenanceOff
		if *req.On {
			c = CmdMaintenanceOn
		}
		run(w, r, b, log, c)
	})
	return mux
}

func run(w http.ResponseWriter, r *http.Request, b Backend, log *slog.Logger, c Command) {
	log.Info("operator command", "command", string(c))
	if err := b.Command(r.Context(), c); err != nil {
		writeJSON(w, http.StatusConflict, errorBody{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, okBody{OK: true, Command: c})
}

type errorBody struct {
	Error string `json:"error"`
}

type okBody struct {
	OK      bool    `json:"ok"`
	Command Command `json:"command"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
