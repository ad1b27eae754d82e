// Package api is the background agent's HTTP JSON API:
//
//	POST   /api/v1/schedules               create
//	GET    /api/v1/schedules               list (?status=active|paused&page_size=&page_token=)
//	GET    /api/v1/schedules/{id}          read, with next run in local time and totals
//	PUT    /api/v1/schedules/{id}          replace the settings
//	DELETE /api/v1/schedules/{id}          delete (complete, or an error and nothing changed)
//	POST   /api/v1/schedules/{id}/pause    pause ({"reason": "..."} optional); idempotent
//	POST   /api/v1/schedules/{id}/resume   resume; idempotent
//	POST   /api/v1/schedules/{id}/trigger  run now; answers the run and task ids
//	GET    /api/v1/schedules/{id}/runs     run history, newest first, with cumulative cost
//	POST   /api/v1/tasks/{id}/pause|resume|cancel
//	GET    /api/v1/tasks/{id}/status
//
// Every request carries an API key (Authorization: Bearer KEY, or X-API-Key)
// that maps to a tenant and a user; every read and write is scoped by both,
// and anything of another tenant or user is answered 404 like something
// that does not exist. Errors are {"error": {"code", "message", "field",
// "rule"}} with a status that fits: 400 malformed, 401 no key, 404 not
// found, 408 body too slow, 409 quota or state conflict (a run in flight
// refuses a trigger), 413 too large, 415 not JSON, 422 a rule refused a
// field, 429 triggered again too soon (with Retry-After), 503 Temporal or
// the store unavailable.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/workflows"
)

// Keys maps API keys (kept as SHA-256 digests) to their tenant and user.
type Keys struct{ byDigest map[[32]byte]store.Scope }

// ParseKeys reads "KEY=TENANT:USER" entries separated by commas.
func ParseKeys(spec string) (Keys, error) {
	k := Keys{byDigest: map[[32]byte]store.Scope{}}
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, owner, ok := strings.Cut(entry, "=")
		tenant, user, ok2 := strings.Cut(owner, ":")
		if !ok || !ok2 || key == "" || tenant == "" || user == "" {
			return Keys{}, fmt.Errorf("API key entry %q must be KEY=TENANT:USER", redact(entry))
		}
		if err := k.Add(key, store.Scope{TenantID: tenant, UserID: user}); err != nil {
			return Keys{}, err
		}
	}
	return k, nil
}

// Add maps key to scope.
func (k *Keys) Add(key string, scope store.Scope) error {
	if len(key) < 8 {
		return fmt.Errorf("API key %q is shorter than 8 characters", redact(key))
	}
	if k.byDigest == nil {
		k.byDigest = map[[32]byte]store.Scope{}
	}
	d := sha256.Sum256([]byte(key))
	if _, dup := k.byDigest[d]; dup {
		return fmt.Errorf("API key %q is listed twice", redact(key))
	}
	k.byDigest[d] = scope
	return nil
}

// Len is the number of keys.
func (k Keys) Len() int { return len(k.byDigest) }

func redact(s string) string {
	key, rest, found := strings.Cut(s, "=")
	if len(key) > 4 {
		key = key[:4] + "…"
	}
	if found {
		return key + "=" + rest
	}
	return key
}

// lookup compares digests, so that the time taken does not reveal how much
// of a guessed key was right.
func (k Keys) lookup(key string) (store.Scope, bool) {
	s, ok := k.byDigest[sha256.Sum256([]byte(key))]
	return s, ok
}

// Server serves the API.
type Server struct {
	m    *schedules.Manager
	keys Keys
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the API handler.
func New(m *schedules.Manager, keys Keys, log *slog.Logger) *Server {
	s := &Server{m: m, keys: keys, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	allowed := map[string][]string{}
	route := func(method, path string, h func(context.Context, store.Scope, *http.Request) (int, any, error)) {
		s.mux.HandleFunc(method+" "+path, s.authed(h))
		allowed[path] = append(allowed[path], method)
	}
	route("POST", "/api/v1/schedules", s.create)
	route("GET", "/api/v1/schedules", s.list)
	route("GET", "/api/v1/schedules/{id}", s.get)
	route("PUT", "/api/v1/schedules/{id}", s.update)
	route("DELETE", "/api/v1/schedules/{id}", s.delete)
	route("POST", "/api/v1/schedules/{id}/pause", s.pause)
	route("POST", "/api/v1/schedules/{id}/resume", s.resume)
	route("POST", "/api/v1/schedules/{id}/trigger", s.trigger)
	route("GET", "/api/v1/schedules/{id}/runs", s.runs)
	for _, sig := range []string{workflows.SignalPause, workflows.SignalResume, workflows.SignalCancel} {
		route("POST", "/api/v1/tasks/{id}/"+sig, s.signal(sig))
	}
	route("GET", "/api/v1/tasks/{id}/status", s.taskStatus)
	// A pattern without a method is less specific than one with, so these
	// answer only the methods not routed above.
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " is not allowed here; use " + allow})
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) authed(h func(context.Context, store.Scope, *http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := apiKey(r)
		scope, ok := s.keys.lookup(key)
		if key == "" || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="durabench-agent"`)
			writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "a valid API key is required (Authorization: Bearer KEY)"})
			return
		}
		status, body, err := h(r.Context(), scope, r)
		if err != nil {
			var re *schedules.RuleError
			if errors.As(err, &re) && re.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(re.RetryAfter.Seconds())), 10))
			}
			writeError(w, s.toAPIError(r, err))
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, body)
	}
}

// toAPIError maps an error to its status; unexpected ones are logged and
// answered without their details.
func (s *Server) toAPIError(r *http.Request, err error) *apiError {
	var (
		ae *apiError
		re *schedules.RuleError
		te *schedules.TemporalError
		se *schedules.StoreError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &re):
		status, code := http.StatusUnprocessableEntity, "invalid_field"
		switch re.Rule {
		case schedules.RuleQuota:
			status, code = http.StatusConflict, "quota_exceeded"
		case schedules.RuleState:
			status, code = http.StatusConflict, "invalid_state"
		case schedules.RuleOverlap:
			status, code = http.StatusConflict, "run_in_flight"
		case schedules.RuleTriggerRate:
			status, code = http.StatusTooManyRequests, "rate_limited"
		}
		return &apiError{Status: status, Code: code, Message: re.Error(), Field: re.Field, Rule: re.Rule}
	case errors.Is(err, schedules.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	case errors.Is(err, schedules.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	case errors.Is(err, store.ErrBadCursor):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_field", Field: "page_token", Message: "page_token: not a token this API issued"}
	case errors.As(err, &te):
		s.log.Warn("temporal call failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return &apiError{Status: http.StatusServiceUnavailable, Code: "temporal_unavailable", Message: te.Error()}
	case errors.As(err, &se):
		s.log.Error("store write failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: se.Error()}
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

func (s *Server) create(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	var in schedules.Input
	if err := decodeBody(r, &in, true); err != nil {
		return 0, nil, err
	}
	v, err := s.m.Create(ctx, scope, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, v, nil
}

func (s *Server) list(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	p, err := parsePage(r)
	if err != nil {
		return 0, nil, err
	}
	status, err := parseStatus(r.URL.Query().Get("status"))
	if err != nil {
		return 0, nil, err
	}
	views, next, err := s.m.List(ctx, scope, status, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"schedules": views, "next_page_token": next}, nil
}

func (s *Server) get(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	v, err := s.m.Get(ctx, scope, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	v.Totals.CostUSD = roundUSD(v.Totals.CostUSD)
	return http.StatusOK, v, nil
}

func (s *Server) update(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	var in schedules.Input
	if err := decodeBody(r, &in, true); err != nil {
		return 0, nil, err
	}
	v, err := s.m.Update(ctx, scope, r.PathValue("id"), in)
	return http.StatusOK, v, err
}

func (s *Server) delete(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	return http.StatusNoContent, nil, s.m.Delete(ctx, scope, r.PathValue("id"))
}

// pauseRequest is the optional body of a pause.
type pauseRequest struct {
	Reason string `json:"reason"`
}

const maxReasonBytes = 500

func (s *Server) pause(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	var pr pauseRequest
	if err := decodeBody(r, &pr, false); err != nil {
		return 0, nil, err
	}
	if len(pr.Reason) > maxReasonBytes {
		return 0, nil, &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_field", Field: "reason", Rule: "reason",
			Message: fmt.Sprintf("reason: is %d bytes long; at most %d allowed", len(pr.Reason), maxReasonBytes)}
	}
	v, err := s.m.Pause(ctx, scope, r.PathValue("id"), strings.TrimSpace(pr.Reason))
	return http.StatusOK, v, err
}

func (s *Server) resume(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	v, err := s.m.Resume(ctx, scope, r.PathValue("id"))
	return http.StatusOK, v, err
}

func (s *Server) trigger(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	t, err := s.m.Trigger(ctx, scope, r.PathValue("id"))
	return http.StatusAccepted, t, err
}

func (s *Server) runs(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	p, err := parsePage(r)
	if err != nil {
		return 0, nil, err
	}
	h, err := s.m.Runs(ctx, scope, r.PathValue("id"), p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, runHistory(h), nil
}

func (s *Server) signal(sig string) func(context.Context, store.Scope, *http.Request) (int, any, error) {
	return func(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
		id := r.PathValue("id")
		if err := s.m.SignalTask(ctx, scope, id, sig); err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, map[string]string{"task_id": id, "signal": sig}, nil
	}
}

func (s *Server) taskStatus(ctx context.Context, scope store.Scope, r *http.Request) (int, any, error) {
	tv, err := s.m.TaskStatus(ctx, scope, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"task_id": tv.TaskID, "live": tv.Live, "run": runJSON(tv.Run), "calls": tv.Calls}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}
