package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
)

// apiError is an error answer.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Rule    string `json:"rule,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(field, format string, a ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, a...)}
}

// maxBodyBytes bounds a request body: a schedule is at most a few KB.
const maxBodyBytes = 64 << 10

// decodeBody reads one JSON object into dst: application/json, at most
// maxBodyBytes, no unknown fields, nothing after the object. An empty body
// is allowed when the body is optional.
func decodeBody(r *http.Request, dst any, required bool) error {
	return decodeJSON(r.Header.Get("Content-Type"), http.MaxBytesReader(nil, r.Body, maxBodyBytes), dst, required)
}

func decodeJSON(contentType string, body io.Reader, dst any, required bool) error {
	raw, err := io.ReadAll(body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("the request body exceeds %d bytes", maxBodyBytes)}
	}
	if err != nil {
		return badRequest("", "reading the request body: %v", err)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		if required {
			return badRequest("", "a JSON request body is required")
		}
		return nil
	}
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: fmt.Sprintf("Content-Type must be application/json, not %q", contentType)}
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("", "the request body must hold a single JSON object")
	}
	return nil
}

// jsonError names what was wrong with the JSON and where.
func jsonError(err error) *apiError {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return badRequest("", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("", "the request body must be a JSON object, not %s", typ.Value)
		}
		return badRequest(typ.Field, "%s: must be %s, not %s", typ.Field, jsonType(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: the body ends too early")
	}
	// The decoder reports an unknown field as `json: unknown field "x"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		return badRequest(field, "%s: unknown field", name)
	}
	return badRequest("", "malformed JSON: %v", err)
}

func jsonType(goType string) string {
	switch goType {
	case "float64", "*float64":
		return "a number"
	case "int64", "*int64":
		return "an integer"
	case "string":
		return "a string"
	case "[]string":
		return "a list of strings"
	}
	return goType
}

const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// parsePage reads page_size (1..100, default 20) and page_token.
func parsePage(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	p := store.Page{Limit: defaultPageSize, PageToken: q.Get("page_token")}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return p, badRequest("page_size", "page_size: %q is not an integer in 1..%d", truncate(v, 20), maxPageSize)
		}
		p.Limit = n
	}
	if len(p.PageToken) > 512 {
		return p, badRequest("page_token", "page_token: too long")
	}
	return p, nil
}

// parseStatus reads the list filter.
func parseStatus(v string) (store.Status, error) {
	switch store.Status(v) {
	case "", store.StatusActive, store.StatusPaused:
		return store.Status(v), nil
	}
	return "", badRequest("status", "status: %q is not active or paused", truncate(v, 20))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// runView is a run as the API shows it.
type runView struct {
	ID               string     `json:"id"`
	TaskID           string     `json:"task_id"`
	Trigger          string     `json:"trigger"`
	Status           string     `json:"status"`
	StartedAt        time.Time  `json:"started_at"`
	EndedAt          *time.Time `json:"ended_at"`
	CostUSD          float64    `json:"cost_usd"`
	PromptTokens     int64      `json:"prompt_tokens"`
	CompletionTokens int64      `json:"completion_tokens"`
	TotalTokens      int64      `json:"total_tokens"`
	Model            string     `json:"model"`
	Error            string     `json:"error,omitempty"`
	Output           string     `json:"output,omitempty"`
}

func runJSON(r *store.Run) runView {
	return runView{
		ID: r.ID, TaskID: r.TaskID, Trigger: r.Trigger, Status: string(r.Status), StartedAt: r.StartedAt, EndedAt: r.EndedAt,
		CostUSD: roundUSD(r.CostUSD), PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		TotalTokens: r.PromptTokens + r.CompletionTokens, Model: r.Model, Error: r.Error, Output: r.Output,
	}
}

type historyView struct {
	Runs          []runView       `json:"runs"`
	NextPageToken string          `json:"next_page_token,omitempty"`
	Totals        store.RunTotals `json:"totals"`
}

func runHistory(h *schedules.History) historyView {
	hv := historyView{Runs: make([]runView, 0, len(h.Runs)), NextPageToken: h.NextPageToken, Totals: h.Totals}
	hv.Totals.CostUSD = roundUSD(hv.Totals.CostUSD)
	for _, r := range h.Runs {
		hv.Runs = append(hv.Runs, runJSON(r))
	}
	return hv
}

// roundUSD rounds to a billionth of a dollar, below any price, so that sums
// of floating-point costs show without binary noise.
func roundUSD(v float64) float64 { return math.Round(v*1e9) / 1e9 }
