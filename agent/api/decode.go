package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// Rules of a request body's keys and text that encoding/json does not
// enforce; checkKeys applies them.
const (
	ruleUnknownField     = "unknown_field"
	ruleKeyCase          = "key_case"
	ruleDuplicateKey     = "duplicate_key"
	ruleControlCharacter = "control_character"
)

// refused is a 400 naming the field and the rule the body broke.
func refused(field, rule, format string, a ...any) *apiError {
	e := badRequest(field, format, a...)
	e.Rule = rule
	e.Message += " (rule " + rule + ")"
	return e
}

// multilineFields may span lines; their text is left to the field's own
// rule (a query's allows newlines and tabs, and no other control character).
var multilineFields = map[string]bool{"query": true}

// maxBodyBytes bounds a request body: a schedule is at most a few KB.
const maxBodyBytes = 64 << 10

// decodeBody reads one JSON object into dst, a pointer to a struct:
// application/json, at most maxBodyBytes, the keys as checkKeys requires,
// nothing after the object. An empty body is allowed when the body is
// optional.
func decodeBody(r *http.Request, dst any, required bool) error {
	return decodeJSON(r.Header.Get("Content-Type"), http.MaxBytesReader(nil, r.Body, maxBodyBytes), dst, required)
}

func decodeJSON(contentType string, body io.Reader, dst any, required bool) error {
	raw, err := io.ReadAll(body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("the request body exceeds %d bytes", maxBodyBytes)}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &apiError{Status: http.StatusRequestTimeout, Code: "request_timeout", Message: "the request body did not arrive in the time allowed"}
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
	if err := checkKeys(raw, dst); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
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
	return badRequest("", "malformed JSON: %v", err)
}

// checkKeys reads the top-level object of raw for what encoding/json lets
// pass when it decodes into dst: it matches keys without regard to case (so
// "Cron" sets cron) and lets a repeated key overwrite the first. Every key
// must be exactly the JSON name of one of dst's fields and appear once, and
// the string value of a single-line field must hold no control character (a
// newline in a cron was stored as is). A body that is not an object, and
// malformed JSON met on the way, are left to the decoder, whose errors say
// what and where.
func checkKeys(raw []byte, dst any) error {
	fields := jsonFields(dst)
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		if err != nil || !isKey {
			return nil
		}
		field, quoted := truncate(key, 40), strconv.Quote(truncate(key, 40))
		if key == "" {
			field = quoted // an answer names its field, the empty key as the body spells it
		}
		switch {
		case seen[key]:
			return refused(field, ruleDuplicateKey, "%s: appears more than once; a key may appear once", quoted)
		case !fields[key]:
			names := slices.Sorted(maps.Keys(fields))
			for _, name := range names {
				if strings.EqualFold(name, key) {
					return refused(name, ruleKeyCase, "%s: keys are case-sensitive; the field is %q", quoted, name)
				}
			}
			return refused(field, ruleUnknownField, "%s: unknown field; the fields are %s", quoted, strings.Join(names, ", "))
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
		var text string
		if multilineFields[key] || json.Unmarshal(value, &text) != nil {
			continue
		}
		if i := strings.IndexFunc(text, unicode.IsControl); i >= 0 {
			r, _ := utf8.DecodeRuneInString(text[i:])
			return refused(key, ruleControlCharacter, "%s: holds the control character %U at byte %d; it must be a single line of text", key, r, i)
		}
	}
	return nil
}

// jsonFields are the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	return names
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
