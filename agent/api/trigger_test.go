package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/agent/agenttest"
	"github.com/durabench/durabench/agent/store"
)

// TestTriggerLimits: the refusals of a manual trigger as a client sees
// them: 409 rule overlap while a run is in flight, then, once it has ended,
// 429 rule trigger_rate with Retry-After.
func TestTriggerLimits(t *testing.T) {
	eachBackend(t, agenttest.Options{}, func(t *testing.T, a *apiEnv) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		_, created := a.call(t, aliceKey, "POST", "/api/v1/schedules", dailyTokyo)
		path := "/api/v1/schedules/" + created["id"].(string) + "/trigger"
		a.LLM.Hold()
		defer a.LLM.Release()
		status, trig := a.call(t, aliceKey, "POST", path, nil)
		require.Equal(t, http.StatusAccepted, status, "%v", trig)

		status, out := a.call(t, aliceKey, "POST", path, nil)
		assert.Equal(t, http.StatusConflict, status)
		e := out["error"].(map[string]any)
		assert.Equal(t, "run_in_flight", e["code"])
		assert.Equal(t, "overlap", e["rule"])
		assert.Equal(t, "trigger", e["field"])
		assert.Contains(t, e["message"], trig["run_id"])

		a.LLM.Release()
		require.NoError(t, a.Client.GetWorkflow(ctx, trig["run_id"].(string), "").Get(ctx, nil))
		a.WaitRunClosed(t, store.Scope{TenantID: "acme", UserID: "alice"}, trig["run_id"].(string), 30*time.Second)

		req, err := http.NewRequestWithContext(ctx, "POST", a.url+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+aliceKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After"))
		assert.True(t, retry >= 1 && retry <= 60, "Retry-After %d s against one trigger a minute", retry)
		var body struct{ Error map[string]any }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		assert.Equal(t, "rate_limited", body.Error["code"])
		assert.Equal(t, "trigger_rate", body.Error["rule"])
	})
}
