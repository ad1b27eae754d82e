package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/agent/agenttest"
	"github.com/durabench/durabench/agent/api"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/store/storetest"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// Keys of three users: alice and bob share a tenant, eve is elsewhere.
const (
	aliceKey = "key-alice-0001"
	bobKey   = "key-bob-00001"
	eveKey   = "key-eve-00001"
)

type apiEnv struct {
	*agenttest.Env
	url string
}

func newAPI(t *testing.T, st *store.Store, o agenttest.Options) *apiEnv {
	t.Helper()
	e := agenttest.New(t, st, o)
	keys, err := api.ParseKeys(aliceKey + "=acme:alice," + bobKey + "=acme:bob," + eveKey + "=evil:alice")
	require.NoError(t, err)
	srv := httptest.NewServer(api.New(e.Manager, keys, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return &apiEnv{Env: e, url: srv.URL}
}

// call makes a request; body may be a string (sent as is) or a value
// (sent as JSON). It returns the status and the decoded answer.
func (a *apiEnv) call(t *testing.T, key, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
	}
	return resp.StatusCode, out
}

var dailyTokyo = map[string]any{
	"name": "Morning AI digest", "cron": "0 9 * * *", "timezone": "Asia/Tokyo",
	"query": "Daily digest about AI industry news, LLM cost and durable execution", "budget_usd": 0.5,
}

func eachBackend(t *testing.T, o agenttest.Options, body func(t *testing.T, a *apiEnv)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { body(t, newAPI(t, b.Open(t), o)) })
	}
}

// TestWalkthrough is the README's curl walk-through as a test.
func TestWalkthrough(t *testing.T) {
	eachBackend(t, agenttest.Options{}, func(t *testing.T, a *apiEnv) {
		status, created := a.call(t, aliceKey, "POST", "/api/v1/schedules", dailyTokyo)
		require.Equal(t, http.StatusCreated, status, "%v", created)
		id := created["id"].(string)
		assert.Equal(t, "Asia/Tokyo", created["timezone"])
		assert.True(t, strings.HasSuffix(created["next_run_local"].(string), "T09:00:00+09:00"), created["next_run_local"])
		assert.Contains(t, created["next_run_local_text"], "09:00 JST")

		status, trig := a.call(t, aliceKey, "POST", "/api/v1/schedules/"+id+"/trigger", nil)
		require.Equal(t, http.StatusAccepted, status, "%v", trig)
		runID := trig["run_id"].(string)

		var run map[string]any
		agenttest.WaitFor(t, 60*time.Second, "the triggered run to finish", func(context.Context) (bool, error) {
			_, h := a.call(t, aliceKey, "GET", "/api/v1/schedules/"+id+"/runs", nil)
			runs, _ := h["runs"].([]any)
			if len(runs) == 0 {
				return false, nil
			}
			run = runs[0].(map[string]any)
			return run["ended_at"] != nil, nil
		})
		assert.Equal(t, runID, run["id"])
		assert.Equal(t, "completed", run["status"], "%v", run)
		assert.Greater(t, run["cost_usd"].(float64), 0.0)
		assert.Greater(t, run["total_tokens"].(float64), 0.0)
		assert.Equal(t, "durabench-local-1", run["model"])

		status, got := a.call(t, aliceKey, "GET", "/api/v1/schedules/"+id, nil)
		require.Equal(t, http.StatusOK, status)
		totals := got["totals"].(map[string]any)
		assert.Equal(t, 1.0, totals["runs"])
		assert.Equal(t, run["cost_usd"], totals["cost_usd"])

		status, task := a.call(t, aliceKey, "GET", "/api/v1/tasks/"+trig["task_id"].(string)+"/status", nil)
		require.Equal(t, http.StatusOK, status, "%v", task)
		assert.Equal(t, "completed", task["run"].(map[string]any)["status"])
		calls := task["calls"].([]any)
		require.NotEmpty(t, calls)
		first := calls[0].(map[string]any)
		assert.Equal(t, "decompose", first["name"])
		assert.Equal(t, "durabench-local-1", first["model"])
		assert.Len(t, first["prompt_fingerprint"], 32)
		assert.Contains(t, first, "seed")
		assert.Contains(t, first, "temperature")

		status, p := a.call(t, aliceKey, "POST", "/api/v1/schedules/"+id+"/pause", map[string]string{"reason": "travelling"})
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "paused", p["status"])
		assert.Equal(t, "travelling", p["status_reason"])
		_, list := a.call(t, aliceKey, "GET", "/api/v1/schedules?status=paused", nil)
		assert.Len(t, list["schedules"], 1)
		_, list = a.call(t, aliceKey, "GET", "/api/v1/schedules?status=active", nil)
		assert.Len(t, list["schedules"], 0)
		status, r := a.call(t, aliceKey, "POST", "/api/v1/schedules/"+id+"/resume", nil)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "active", r["status"])

		upd := map[string]any{"name": "Evening digest", "cron": "0 18 * * *", "timezone": "Asia/Tokyo", "query": "AI news"}
		status, u := a.call(t, aliceKey, "PUT", "/api/v1/schedules/"+id, upd)
		require.Equal(t, http.StatusOK, status, "%v", u)
		assert.True(t, strings.HasSuffix(u["next_run_local"].(string), "T18:00:00+09:00"))

		status, _ = a.call(t, aliceKey, "DELETE", "/api/v1/schedules/"+id, nil)
		require.Equal(t, http.StatusNoContent, status)
		status, _ = a.call(t, aliceKey, "GET", "/api/v1/schedules/"+id, nil)
		assert.Equal(t, http.StatusNotFound, status)
	})
}

func TestCrossTenantAnswersNotFound(t *testing.T) {
	eachBackend(t, agenttest.Options{}, func(t *testing.T, a *apiEnv) {
		_, created := a.call(t, aliceKey, "POST", "/api/v1/schedules", dailyTokyo)
		id := created["id"].(string)
		_, trig := a.call(t, aliceKey, "POST", "/api/v1/schedules/"+id+"/trigger", nil)
		taskID := trig["task_id"].(string)
		for _, key := range []string{bobKey, eveKey} {
			for _, req := range []struct{ method, path string }{
				{"GET", "/api/v1/schedules/" + id},
				{"PUT", "/api/v1/schedules/" + id},
				{"DELETE", "/api/v1/schedules/" + id},
				{"POST", "/api/v1/schedules/" + id + "/pause"},
				{"POST", "/api/v1/schedules/" + id + "/resume"},
				{"POST", "/api/v1/schedules/" + id + "/trigger"},
				{"GET", "/api/v1/schedules/" + id + "/runs"},
				{"POST", "/api/v1/tasks/" + taskID + "/cancel"},
				{"POST", "/api/v1/tasks/" + taskID + "/pause"},
				{"GET", "/api/v1/tasks/" + taskID + "/status"},
			} {
				t.Run(key[4:7]+" "+req.method+" "+req.path[8:20], func(t *testing.T) {
					var body any
					if req.method == "PUT" {
						body = dailyTokyo
					}
					status, out := a.call(t, key, req.method, req.path, body)
					assert.Equal(t, http.StatusNotFound, status, "%v", out)
					assert.Equal(t, "not_found", out["error"].(map[string]any)["code"])
				})
			}
			_, list := a.call(t, key, "GET", "/api/v1/schedules", nil)
			assert.Empty(t, list["schedules"])
		}
		status, got := a.call(t, aliceKey, "GET", "/api/v1/schedules/"+id, nil)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "active", got["status"], "nothing the others did had an effect")
		assert.Equal(t, dailyTokyo["name"], got["name"])
	})
}

func TestErrors(t *testing.T) {
	a := newAPI(t, storetest.OpenSQLite(t), agenttest.Options{NoWorker: true, Config: func(c *schedules.Config) { c.Limits.MaxPerUser = 1 }})
	_, created := a.call(t, aliceKey, "POST", "/api/v1/schedules", dailyTokyo)
	id := created["id"].(string)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range dailyTokyo {
			m[k] = v
		}
		m[k] = v
		return m
	}
	for _, tt := range []struct {
		name, key, method, path string
		body                    any
		contentType             string
		status                  int
		code, field, rule       string
	}{
		{name: "no key", method: "GET", path: "/api/v1/schedules", status: 401, code: "unauthorized"},
		{name: "wrong key", key: "not-a-key-at-all", method: "GET", path: "/api/v1/schedules", status: 401, code: "unauthorized"},
		{name: "malformed JSON", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `{"name": "x",`, status: 400, code: "invalid_request"},
		{name: "syntax error", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `{"name": x}`, status: 400, code: "invalid_request"},
		{name: "unknown field", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("cron_expression", "0 9 * * *"), status: 400, field: "cron_expression"},
		{name: "wrong type", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("budget_usd", "lots"), status: 400, field: "budget_usd"},
		{name: "number too large", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `{"name":"n","cron":"0 9 * * *","query":"q","budget_usd":1e400}`, status: 400, field: "budget_usd"},
		{name: "two objects", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `{"name":"n"} {"name":"m"}`, status: 400},
		{name: "not an object", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `[1, 2]`, status: 400},
		{name: "empty body", key: bobKey, method: "POST", path: "/api/v1/schedules", body: ``, status: 400},
		{name: "not JSON", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `name=x`, contentType: "application/x-www-form-urlencoded", status: 415, code: "unsupported_media_type"},
		{name: "too large", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `{"name":"` + strings.Repeat("x", 70000) + `"}`, status: 413, code: "body_too_large"},
		{name: "key in another case", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `{"name":"n","Cron":"0 9 * * *","query":"q"}`, status: 400, code: "invalid_request", field: "cron", rule: "key_case"},
		{name: "duplicate key", key: bobKey, method: "POST", path: "/api/v1/schedules", body: `{"name":"n","cron":"0 9 * * *","cron":"0 10 * * *","query":"q"}`, status: 400, code: "invalid_request", field: "cron", rule: "duplicate_key"},
		{name: "newline in the cron", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("cron", "0 9\n* * *"), status: 400, code: "invalid_request", field: "cron", rule: "control_character"},
		{name: "duplicate key in a replace", key: aliceKey, method: "PUT", path: "/api/v1/schedules/" + id, body: `{"name":"n","cron":"0 9 * * *","query":"q","query":"r"}`, status: 400, field: "query", rule: "duplicate_key"},
		{name: "pause reason in another case", key: aliceKey, method: "POST", path: "/api/v1/schedules/" + id + "/pause", body: `{"Reason":"away"}`, status: 400, field: "reason", rule: "key_case"},
		{name: "0,1 9 against 60 minutes", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("cron", "0,1 9 * * *"), status: 422, field: "cron", rule: "min_interval"},
		{name: "six-field cron", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("cron", "0 0 9 * * *"), status: 422, field: "cron", rule: "cron"},
		{name: "negative budget", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("budget_usd", -1), status: 422, field: "budget_usd", rule: "budget"},
		{name: "budget over the cap", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("budget_usd", 1000), status: 422, rule: "budget"},
		{name: "unknown timezone", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("timezone", "Tokyo"), status: 422, field: "timezone", rule: "timezone"},
		{name: "missing query", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("query", ""), status: 422, field: "query", rule: "query"},
		{name: "timeout too long", key: bobKey, method: "POST", path: "/api/v1/schedules", body: with("timeout_seconds", 86400), status: 422, field: "timeout_seconds", rule: "timeout"},
		{name: "quota", key: aliceKey, method: "POST", path: "/api/v1/schedules", body: dailyTokyo, status: 409, code: "quota_exceeded", rule: "quota"},
		{name: "long pause reason", key: aliceKey, method: "POST", path: "/api/v1/schedules/" + id + "/pause", body: map[string]string{"reason": strings.Repeat("r", 501)}, status: 422, field: "reason"},
		{name: "page size zero", key: aliceKey, method: "GET", path: "/api/v1/schedules?page_size=0", status: 400, field: "page_size"},
		{name: "page size huge", key: aliceKey, method: "GET", path: "/api/v1/schedules?page_size=1000", status: 400, field: "page_size"},
		{name: "bad status", key: aliceKey, method: "GET", path: "/api/v1/schedules?status=deleted", status: 400, field: "status"},
		{name: "bad page token", key: aliceKey, method: "GET", path: "/api/v1/schedules?page_token=zzz", status: 400, field: "page_token"},
		{name: "unknown schedule", key: aliceKey, method: "GET", path: "/api/v1/schedules/nope", status: 404, code: "not_found"},
		{name: "method not allowed", key: aliceKey, method: "PATCH", path: "/api/v1/schedules/" + id, status: 405, code: "method_not_allowed"},
		{name: "unknown endpoint", key: aliceKey, method: "GET", path: "/api/v2/things", status: 404, code: "not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader
			switch b := tt.body.(type) {
			case nil:
			case string:
				rd = strings.NewReader(b)
			default:
				raw, _ := json.Marshal(b)
				rd = bytes.NewReader(raw)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tt.method, a.url+tt.path, rd)
			require.NoError(t, err)
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			if tt.key != "" {
				req.Header.Set("X-API-Key", tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var out struct {
				Error struct{ Code, Message, Field, Rule string }
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			assert.Equal(t, tt.status, resp.StatusCode, "%+v", out)
			assert.NotEmpty(t, out.Error.Message)
			if tt.code != "" {
				assert.Equal(t, tt.code, out.Error.Code)
			}
			if tt.field != "" {
				assert.Equal(t, tt.field, out.Error.Field)
				assert.Contains(t, out.Error.Message, tt.field)
			}
			if tt.rule != "" {
				assert.Equal(t, tt.rule, out.Error.Rule)
			}
		})
	}
	_, list := a.call(t, bobKey, "GET", "/api/v1/schedules", nil)
	assert.Empty(t, list["schedules"], "no refused request created anything")
	_, got := a.call(t, aliceKey, "GET", "/api/v1/schedules/"+id, nil)
	assert.Equal(t, dailyTokyo["name"], got["name"], "no refused replace changed anything")
	assert.Equal(t, "active", got["status"], "no refused pause changed anything")

	// Triggering a paused schedule is a state conflict.
	a.call(t, aliceKey, "POST", "/api/v1/schedules/"+id+"/pause", nil)
	status, out := a.call(t, aliceKey, "POST", "/api/v1/schedules/"+id+"/trigger", nil)
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "invalid_state", out["error"].(map[string]any)["code"])
}

// TestAuthScheme: the scheme of an Authorization header is
// case-insensitive (RFC 7235, section 2.1); what follows it is the key.
func TestAuthScheme(t *testing.T) {
	a := newAPI(t, storetest.OpenSQLite(t), agenttest.Options{NoWorker: true})
	for _, tt := range []struct {
		name, header, value string
		status              int
	}{
		{"Bearer", "Authorization", "Bearer " + aliceKey, http.StatusOK},
		{"bearer in lower case", "Authorization", "bearer " + aliceKey, http.StatusOK},
		{"BEARER in upper case", "Authorization", "BEARER " + aliceKey, http.StatusOK},
		{"mixed case, extra spaces", "Authorization", "bEaReR   " + aliceKey + "  ", http.StatusOK},
		{"X-API-Key", "X-API-Key", aliceKey, http.StatusOK},
		{"another scheme", "Authorization", "Basic " + aliceKey, http.StatusUnauthorized},
		{"no space after the scheme", "Authorization", "Bearer" + aliceKey, http.StatusUnauthorized},
		{"scheme alone", "Authorization", "bearer", http.StatusUnauthorized},
		{"key in another case", "Authorization", "bearer " + strings.ToUpper(aliceKey), http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", a.url+"/api/v1/schedules", nil)
			require.NoError(t, err)
			req.Header.Set(tt.header, tt.value)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
		})
	}
}

// TestRunsAfterDelete: the store keeps a deleted schedule's runs, and its
// owner can still read them; nobody else can.
func TestRunsAfterDelete(t *testing.T) {
	eachBackend(t, agenttest.Options{}, func(t *testing.T, a *apiEnv) {
		_, created := a.call(t, aliceKey, "POST", "/api/v1/schedules", dailyTokyo)
		id := created["id"].(string)
		status, trig := a.call(t, aliceKey, "POST", "/api/v1/schedules/"+id+"/trigger", nil)
		require.Equal(t, http.StatusAccepted, status, "%v", trig)
		run := a.WaitRunClosed(t, store.Scope{TenantID: "acme", UserID: "alice"}, trig["run_id"].(string), 60*time.Second)
		status, _ = a.call(t, aliceKey, "DELETE", "/api/v1/schedules/"+id, nil)
		require.Equal(t, http.StatusNoContent, status)

		status, got := a.call(t, aliceKey, "GET", "/api/v1/schedules/"+id, nil)
		assert.Equal(t, http.StatusNotFound, status, "the schedule itself is gone: %v", got)
		status, h := a.call(t, aliceKey, "GET", "/api/v1/schedules/"+id+"/runs", nil)
		require.Equal(t, http.StatusOK, status, "%v", h)
		runs := h["runs"].([]any)
		require.Len(t, runs, 1)
		assert.Equal(t, run.ID, runs[0].(map[string]any)["id"])
		assert.Equal(t, string(run.Status), runs[0].(map[string]any)["status"])
		assert.Equal(t, 1.0, h["totals"].(map[string]any)["runs"])

		for _, tt := range []struct{ name, key, id string }{
			{"same tenant, another user", bobKey, id},
			{"another tenant", eveKey, id},
			{"an id never created", aliceKey, "no-such-schedule"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, out := a.call(t, tt.key, "GET", "/api/v1/schedules/"+tt.id+"/runs", nil)
				assert.Equal(t, http.StatusNotFound, status, "%v", out)
			})
		}
	})
}

func TestParseKeys(t *testing.T) {
	for _, tt := range []struct {
		spec string
		n    int
		err  string
	}{
		{"abcdefgh=t:u", 1, ""},
		{"abcdefgh=t:u, ijklmnop=t:v ,", 2, ""},
		{"", 0, ""},
		{"short=t:u", 0, "shorter than 8"},
		{"abcdefgh=t", 0, "KEY=TENANT:USER"},
		{"abcdefgh=:u", 0, "KEY=TENANT:USER"},
		{"abcdefgh", 0, "KEY=TENANT:USER"},
		{"abcdefgh=t:u,abcdefgh=t:v", 0, "listed twice"},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			k, err := api.ParseKeys(tt.spec)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assert.NotContains(t, err.Error(), "abcdefgh", "keys are not echoed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.n, k.Len())
		})
	}
}
