package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/scsi"
)

// The lab endpoints sit beside the admin API on the same socket:
//
//	POST /v1/targets/{name}/luns/{id}/power-cut  body PowerCut, reply backstore.CutReport
//	GET  /v1/targets/{name}/luns/{id}/audit      reply AuditStatus
//	GET  /v1/targets/{name}/luns/{id}/faults     reply FaultStatus
//	PUT  /v1/targets/{name}/luns/{id}/faults     body Faults, reply FaultStatus

// PowerCut is the body of POST .../power-cut; an empty body is a drop.
type PowerCut struct {
	// Mode is "drop" (default), "reorder" or "tear" (backstore.CutMode).
	Mode string `json:"mode,omitempty"`
	// Seed picks the writes that survive a reorder or tear.
	Seed uint64 `json:"seed,omitempty"`
}

// AuditStatus is the reply of GET .../audit.
type AuditStatus struct {
	Path     string `json:"path"`
	Appended uint64 `json:"appended"`
	Dropped  uint64 `json:"dropped"`
}

// FaultSpec is one injected fault (backstore.Fault) as the lab API takes
// it: Delay is a Go duration ("2s").
type FaultSpec struct {
	Op    string `json:"op,omitempty"`
	Off   int64  `json:"off,omitempty"`
	Len   int64  `json:"len,omitempty"`
	Err   string `json:"err,omitempty"`
	Delay string `json:"delay,omitempty"`
}

// Faults is the body of PUT .../faults: the faults in effect from now on
// on a LUN with faults: true; an empty list heals it.
type Faults struct {
	Faults []FaultSpec `json:"faults"`
}

// FaultStatus is the reply of GET and PUT .../faults: the faults in
// effect (none on a LUN without faults: true) and the LU's fault
// counters, which every LUN has.
type FaultStatus struct {
	Faults []FaultSpec     `json:"faults"`
	Stats  scsi.FaultStats `json:"stats"`
}

// NewAPIHandler is the admin API (admin.NewHandler) plus the lab
// endpoints above.
func NewAPIHandler(m *Manager, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/", admin.NewHandler(m, logger))
	mux.HandleFunc("POST /v1/targets/{name}/luns/{id}/power-cut", func(w http.ResponseWriter, r *http.Request) {
		id, ok := lunParam(w, r)
		if !ok {
			return
		}
		var body PowerCut
		if r.ContentLength != 0 {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				reply(w, http.StatusBadRequest, map[string]string{"error": "bad json body: " + err.Error()})
				return
			}
		}
		rep, err := m.PowerCut(r.PathValue("name"), id, backstore.Cut{Mode: backstore.CutMode(body.Mode), Seed: body.Seed})
		if err != nil {
			replyErr(w, err)
			return
		}
		logger.Warn("power cut", "target", r.PathValue("name"), "lun", id, "mode", body.Mode, "seed", body.Seed,
			"pending", rep.Pending, "persisted", rep.Persisted, "torn", rep.Torn)
		reply(w, http.StatusOK, rep)
	})
	mux.HandleFunc("GET /v1/targets/{name}/luns/{id}/faults", func(w http.ResponseWriter, r *http.Request) {
		id, ok := lunParam(w, r)
		if !ok {
			return
		}
		st, err := m.FaultStatus(r.PathValue("name"), id)
		if err != nil {
			replyErr(w, err)
			return
		}
		reply(w, http.StatusOK, st)
	})
	mux.HandleFunc("PUT /v1/targets/{name}/luns/{id}/faults", func(w http.ResponseWriter, r *http.Request) {
		id, ok := lunParam(w, r)
		if !ok {
			return
		}
		var body Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": "bad json body: " + err.Error()})
			return
		}
		st, err := m.SetFaults(r.PathValue("name"), id, body.Faults)
		if err != nil {
			replyErr(w, err)
			return
		}
		logger.Warn("lab faults set", "target", r.PathValue("name"), "lun", id, "faults", len(body.Faults))
		reply(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /v1/targets/{name}/luns/{id}/audit", func(w http.ResponseWriter, r *http.Request) {
		id, ok := lunParam(w, r)
		if !ok {
			return
		}
		st, err := m.AuditStatus(r.PathValue("name"), id)
		if err != nil {
			replyErr(w, err)
			return
		}
		reply(w, http.StatusOK, st)
	})
	return mux
}

// PowerCut loses the unsynced writes of a LUN with a volatile cache, as
// a power loss would (backstore.Volatile.PowerCut); the LU then serves
// what is durable.
func (m *Manager) PowerCut(target string, id uint64, c backstore.Cut) (backstore.CutReport, error) {
	l, err := m.lun(target, id)
	if err != nil {
		return backstore.CutReport{}, err
	}
	if l.cache == nil {
		return backstore.CutReport{}, fmt.Errorf("%w: lun %d of %s has no volatile cache: set cache: volatile on it", admin.ErrConflict, id, target)
	}
	rep, err := l.cache.PowerCut(c)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", admin.ErrInvalid, err)
	}
	return rep, nil
}

// AuditStatus reports the audit stream of a LUN.
func (m *Manager) AuditStatus(target string, id uint64) (AuditStatus, error) {
	l, err := m.lun(target, id)
	if err != nil {
		return AuditStatus{}, err
	}
	if l.audit == nil {
		return AuditStatus{}, fmt.Errorf("%w: lun %d of %s has no audit: set audit: <file> on it", admin.ErrConflict, id, target)
	}
	st := l.audit.Stats()
	return AuditStatus{Path: l.cfg.Audit, Appended: st.Appended, Dropped: st.Dropped}, nil
}

// SetFaults replaces the injected faults of a LUN served with faults:
// true.
func (m *Manager) SetFaults(target string, id uint64, specs []FaultSpec) (FaultStatus, error) {
	l, err := m.lun(target, id)
	if err != nil {
		return FaultStatus{}, err
	}
	if l.faulty == nil {
		return FaultStatus{}, fmt.Errorf("%w: lun %d of %s injects no faults: set faults: true on it", admin.ErrConflict, id, target)
	}
	faults := make([]backstore.Fault, 0, len(specs))
	for i, s := range specs {
		f := backstore.Fault{Op: s.Op, Off: s.Off, Len: s.Len, Err: s.Err}
		if s.Delay != "" {
			if f.Delay, err = time.ParseDuration(s.Delay); err != nil {
				return FaultStatus{}, fmt.Errorf("%w: fault %d: delay %q: %w (write it as 2s or 500ms)", admin.ErrInvalid, i, s.Delay, err)
			}
		}
		faults = append(faults, f)
	}
	if err := l.faulty.SetFaults(faults); err != nil {
		return FaultStatus{}, fmt.Errorf("%w: %w", admin.ErrInvalid, err)
	}
	return m.FaultStatus(target, id)
}

// FaultStatus reports a LUN's injected faults and fault counters.
func (m *Manager) FaultStatus(target string, id uint64) (FaultStatus, error) {
	l, err := m.lun(target, id)
	if err != nil {
		return FaultStatus{}, err
	}
	st := FaultStatus{Faults: []FaultSpec{}, Stats: l.lu.FaultStats()}
	if l.faulty != nil {
		for _, f := range l.faulty.Faults() {
			s := FaultSpec{Op: f.Op, Off: f.Off, Len: f.Len, Err: f.Err}
			if f.Delay > 0 {
				s.Delay = f.Delay.String()
			}
			st.Faults = append(st.Faults, s)
		}
	}
	return st, nil
}

func (m *Manager) lun(target string, id uint64) (*managedLUN, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, ok := m.targets[m.runningName(target)]
	if !ok {
		return nil, fmt.Errorf("target %q: %w", target, admin.ErrNotFound)
	}
	l, ok := mt.luns[id]
	if !ok {
		return nil, fmt.Errorf("lun %d of %s: %w", id, target, admin.ErrNotFound)
	}
	return l, nil
}

func lunParam(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id > 16383 {
		reply(w, http.StatusBadRequest, map[string]string{"error": "lun id must be a number 0..16383"})
		return 0, false
	}
	return id, true
}

func replyErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, admin.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, admin.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, admin.ErrInvalid):
		code = http.StatusBadRequest
	}
	reply(w, code, map[string]string{"error": err.Error()})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
