// Package admin is tandem-target's management API: HTTP with JSON bodies
// on a unix socket (mode 0600, so only root or the daemon's user reach
// it). The handlers are thin; the work is done by a Service, which
// validates a change as the config file is validated and writes it back
// to the config before the handler answers. Errors are JSON
// {"error": "..."} naming the field and the fix: 400 for bad input, 404
// for a name not there, 409 for a conflict (exists, in use, locked).
//
//	GET    /v1/targets                             targets, LUNs, ACL, CHAP users, sessions
//	POST   /v1/targets                             create a target (body: TargetSpec)
//	DELETE /v1/targets/{name}[?force=1]            remove a target (refused while sessions use it)
//	POST   /v1/targets/{name}/luns/{id}            add a LUN   (body: LUN, path or lv)
//	DELETE /v1/targets/{name}/luns/{id}[?force=1]  remove a LUN (refused while sessions use it)
//	POST   /v1/targets/{name}/luns/{id}/resize     grow a LUN  (body: {"size": bytes}; 0 = the backing's size now)
//	PUT    /v1/targets/{name}/chap                 replace CHAP (body: CHAP; empty user = off)
//	PUT    /v1/targets/{name}/acl/{initiator}      allow an initiator
//	DELETE /v1/targets/{name}/acl/{initiator}      disallow it
//	GET    /v1/discovery                           discovery CHAP users
//	PUT    /v1/discovery/chap                      replace discovery CHAP
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/tandem-ha/tandem/internal/unixsock"
	"github.com/tandem-ha/tandem/target/iscsi"
)

// Target is one target as GET /v1/targets shows it.
type Target struct {
	Name           string              `json:"name"`
	Alias          string              `json:"alias,omitempty"`
	Initiators     []string            `json:"initiators"`
	CHAPUser       string              `json:"chap_user,omitempty"`
	MutualCHAPUser string              `json:"mutual_chap_user,omitempty"`
	LUNs           []LUN               `json:"luns"`
	Sessions       []iscsi.SessionInfo `json:"sessions"`
}

// TargetSpec is the body of POST /v1/targets.
type TargetSpec struct {
	Name       string   `json:"name"`
	Alias      string   `json:"alias,omitempty"`
	Initiators []string `json:"initiators,omitempty"`
}

// Discovery is GET /v1/discovery.
type Discovery struct {
	CHAPUser       string `json:"chap_user,omitempty"`
	MutualCHAPUser string `json:"mutual_chap_user,omitempty"`
}

// LUN describes a logical unit; in a POST body only the settings count.
// Path (a file or device) or LV ("VG/NAME") is the backing; in GET, Path
// is what is served (an LV's device).
type LUN struct {
	ID         uint64 `json:"id"`
	Path       string `json:"path,omitempty"`
	LV         string `json:"lv,omitempty"`
	Size       int64  `json:"size"`
	BlockSize  uint32 `json:"block_size,omitempty"`
	Thin       bool   `json:"thin,omitempty"`
	WriteCache *bool  `json:"write_cache,omitempty"`
	ReadOnly   bool   `json:"read_only,omitempty"`
	Serial     string `json:"serial,omitempty"`
}

// CHAP is the body of PUT .../chap; an empty User turns CHAP off.
type CHAP struct {
	User         string `json:"user"`
	Secret       string `json:"secret,omitempty"`
	MutualUser   string `json:"mutual_user,omitempty"`
	MutualSecret string `json:"mutual_secret,omitempty"`
}

// Resize is the body of POST .../resize.
type Resize struct {
	Size int64 `json:"size"`
}

// Service is what the handlers drive; the daemon implements it. Every
// change is checked as the config file is and persisted before it
// returns nil.
type Service interface {
	Targets() []Target
	Discovery() Discovery
	CreateTarget(spec TargetSpec) error
	RemoveTarget(name string, force bool) error
	AddLUN(target string, lun LUN) error
	RemoveLUN(target string, id uint64, force bool) error
	ResizeLUN(target string, id uint64, size int64) error
	SetCHAP(target string, chap CHAP) error
	SetDiscoveryCHAP(chap CHAP) error
	AddInitiator(target, initiator string) error
	RemoveInitiator(target, initiator string) error
}

// Errors a Service returns so the handlers can pick a status code.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid request")
)

// NewHandler returns the HTTP handler of the API.
func NewHandler(svc Service, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/targets", h.targets)
	mux.HandleFunc("POST /v1/targets", h.createTarget)
	mux.HandleFunc("DELETE /v1/targets/{name}", func(w http.ResponseWriter, r *http.Request) {
		h.reply(w, r, http.StatusOK, h.svc.RemoveTarget(r.PathValue("name"), force(r)))
	})
	mux.HandleFunc("POST /v1/targets/{name}/luns/{id}", h.addLUN)
	mux.HandleFunc("DELETE /v1/targets/{name}/luns/{id}", h.removeLUN)
	mux.HandleFunc("POST /v1/targets/{name}/luns/{id}/resize", h.resize)
	mux.HandleFunc("PUT /v1/targets/{name}/chap", h.chap)
	mux.HandleFunc("PUT /v1/targets/{name}/acl/{initiator}", func(w http.ResponseWriter, r *http.Request) {
		h.reply(w, r, http.StatusOK, h.svc.AddInitiator(r.PathValue("name"), r.PathValue("initiator")))
	})
	mux.HandleFunc("DELETE /v1/targets/{name}/acl/{initiator}", func(w http.ResponseWriter, r *http.Request) {
		h.reply(w, r, http.StatusOK, h.svc.RemoveInitiator(r.PathValue("name"), r.PathValue("initiator")))
	})
	mux.HandleFunc("GET /v1/discovery", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.svc.Discovery())
	})
	mux.HandleFunc("PUT /v1/discovery/chap", func(w http.ResponseWriter, r *http.Request) {
		var body CHAP
		if !readJSON(w, r, &body) {
			return
		}
		h.reply(w, r, http.StatusOK, h.svc.SetDiscoveryCHAP(body))
	})
	return mux
}

type handler struct {
	svc Service
	log *slog.Logger
}

func (h *handler) targets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.svc.Targets())
}

func (h *handler) createTarget(w http.ResponseWriter, r *http.Request) {
	var spec TargetSpec
	if !readJSON(w, r, &spec) {
		return
	}
	h.reply(w, r, http.StatusCreated, h.svc.CreateTarget(spec))
}

// force reads ?force=1 (or true).
func force(r *http.Request) bool {
	f, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	return f
}

func (h *handler) addLUN(w http.ResponseWriter, r *http.Request) {
	id, ok := lunID(w, r)
	if !ok {
		return
	}
	var lun LUN
	if !readJSON(w, r, &lun) {
		return
	}
	lun.ID = id
	h.reply(w, r, http.StatusCreated, h.svc.AddLUN(r.PathValue("name"), lun))
}

func (h *handler) removeLUN(w http.ResponseWriter, r *http.Request) {
	id, ok := lunID(w, r)
	if !ok {
		return
	}
	h.reply(w, r, http.StatusOK, h.svc.RemoveLUN(r.PathValue("name"), id, force(r)))
}

func (h *handler) resize(w http.ResponseWriter, r *http.Request) {
	id, ok := lunID(w, r)
	if !ok {
		return
	}
	var body Resize
	if !readJSON(w, r, &body) {
		return
	}
	h.reply(w, r, http.StatusOK, h.svc.ResizeLUN(r.PathValue("name"), id, body.Size))
}

func (h *handler) chap(w http.ResponseWriter, r *http.Request) {
	var body CHAP
	if !readJSON(w, r, &body) {
		return
	}
	h.reply(w, r, http.StatusOK, h.svc.SetCHAP(r.PathValue("name"), body))
}

func (h *handler) reply(w http.ResponseWriter, r *http.Request, okCode int, err error) {
	if err == nil {
		h.log.Info("admin request", "method", r.Method, "path", r.URL.Path)
		writeJSON(w, okCode, map[string]string{"status": "ok"})
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	}
	h.log.Warn("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func lunID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id > 16383 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "lun id must be a number 0..16383"})
		return 0, false
	}
	return id, true
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad json body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Listen opens the admin socket at path, mode 0600 from creation (see
// unixsock.Listen): a stale socket is replaced, a live one refused.
func Listen(path string) (net.Listener, error) {
	l, err := unixsock.Listen(path)
	if err != nil {
		return nil, fmt.Errorf("admin socket (admin_socket in the config): %w", err)
	}
	return l, nil
}
