package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/agent/agenttest"
	"github.com/durabench/durabench/agent/api"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store/storetest"
	"github.com/durabench/durabench/agent/tools"
	"github.com/durabench/durabench/agent/workflows"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

func options(t *testing.T) Options {
	return Options{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), Namespace: "default", ReconcileEvery: time.Hour,
		Config: schedules.DefaultConfig(), Settings: workflows.DefaultSettings(),
	}
}

// serve runs Run until the test ends and returns its ready line.
func serve(t *testing.T, o Options) Ready {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, o, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "a clean shutdown")
		case <-time.After(60 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("Run ended before it was ready: %v", <-done)
		}
		var r Ready
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		require.True(t, r.Ready)
		return r
	case <-time.After(120 * time.Second):
		t.Fatal("not ready after 120s")
	}
	return Ready{}
}

func call(t *testing.T, r Ready, method, path string, body string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.API+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+r.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// TestServeWalkthrough is what a new user does after `durabench agent
// serve`: create a daily schedule in Tokyo, see its next run in local time,
// trigger it and read the run with its cost and tokens. By default it runs
// on the embedded server and SQLite; the second case points it at an
// existing server and PostgreSQL, as --temporal-address and --postgres-dsn do.
func TestServeWalkthrough(t *testing.T) {
	for _, tt := range []struct {
		name     string
		edit     func(t *testing.T, o *Options)
		embedded bool
	}{
		{"embedded server and sqlite", func(*testing.T, *Options) {}, true},
		{"external server and postgres", func(t *testing.T, o *Options) {
			o.PostgresDSN = storetest.PostgresDSN(t)
			o.TemporalAddress = agenttest.Addr(t)
			o.Config.TaskQueue, o.Config.IDPrefix = agenttest.Unique(t, "tq-"), agenttest.Unique(t, "agent-")
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t)
			tt.edit(t, &o)
			r := serve(t, o)
			assert.NotEmpty(t, r.APIKey, "a key is generated when none is given")
			assert.Equal(t, "durabench-local-1", r.Model)
			assert.Equal(t, tt.embedded, strings.Contains(r.Temporal, "embedded"), r.Temporal)

			status, created := call(t, r, "POST", "/api/v1/schedules",
				`{"name":"Morning AI digest","cron":"0 9 * * *","timezone":"Asia/Tokyo","query":"AI industry news","budget_usd":0.5}`)
			require.Equal(t, http.StatusCreated, status, "%v", created)
			assert.True(t, strings.HasSuffix(created["next_run_local"].(string), "T09:00:00+09:00"))
			id := created["id"].(string)
			status, trig := call(t, r, "POST", "/api/v1/schedules/"+id+"/trigger", "")
			require.Equal(t, http.StatusAccepted, status, "%v", trig)

			var run map[string]any
			agenttest.WaitFor(t, 60*time.Second, "the triggered run to finish", func(context.Context) (bool, error) {
				_, h := call(t, r, "GET", "/api/v1/schedules/"+id+"/runs", "")
				runs, _ := h["runs"].([]any)
				if len(runs) == 0 {
					return false, nil
				}
				run = runs[0].(map[string]any)
				return run["ended_at"] != nil, nil
			})
			assert.Equal(t, "completed", run["status"], "%v", run)
			assert.Greater(t, run["cost_usd"].(float64), 0.0)
			assert.Greater(t, run["total_tokens"].(float64), 0.0)
		})
	}
}

func TestServeConfigErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, tt := range []struct {
		name string
		edit func(*Options)
		flag string
	}{
		{"busy port", func(o *Options) { o.Listen = busy.Addr().String() }, "--listen"},
		{"data dir is a file", func(o *Options) { o.DataDir = file }, "--data-dir"},
		{"unreachable PostgreSQL", func(o *Options) { o.PostgresDSN = "postgres://postgres@127.0.0.1:1/x?connect_timeout=2" }, "--postgres-dsn"},
		{"webhook not a URL", func(o *Options) { o.NotifyWebhook = "hooks.example.com/notify" }, "--notify-webhook"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t)
			tt.edit(&o)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			err := Run(ctx, o, &out, io.Discard)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, tt.flag, ce.Flag)
			assert.Empty(t, out.String(), "not ready")
		})
	}
}

// TestReadTimeout: a client that sends its headers or its body too slowly
// is cut off after the read timeout instead of holding the connection.
func TestReadTimeout(t *testing.T) {
	keys, err := api.ParseKeys("key-alice-0001=acme:alice")
	require.NoError(t, err)
	const timeout = 300 * time.Millisecond
	// No request below reaches the manager: the body never arrives whole.
	hs := newHTTPServer(api.New(nil, keys, slog.New(slog.NewTextHandler(io.Discard, nil))), timeout)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	for _, tt := range []struct {
		name, send string
		status     int // 0: the connection is closed without an answer
	}{
		{"request in time", "GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\n", http.StatusOK},
		{"body too slow", "POST /api/v1/schedules HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer key-alice-0001\r\n" +
			"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ", http.StatusRequestTimeout},
		{"headers too slow", "GET /healthz HTTP/1.1\r\nHost: agent\r\n", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			start := time.Now()
			_, err = io.WriteString(conn, tt.send)
			require.NoError(t, err)
			// The deadline is the test's bound: without a read timeout the
			// server would wait for the rest of the request forever.
			require.NoError(t, conn.SetReadDeadline(start.Add(10*time.Second)))
			if tt.status == 0 {
				answer, err := io.ReadAll(conn)
				require.NoError(t, err, "closed by the server")
				assert.Empty(t, answer)
			} else {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, tt.status, resp.StatusCode)
			}
			if tt.status != http.StatusOK {
				assert.GreaterOrEqual(t, time.Since(start), timeout, "not cut off before the timeout")
			}
		})
	}
}

// receiver is a local webhook receiver on 127.0.0.1. Each schedule (by
// name) gets the statuses of its script in turn, the last one repeated.
type receiver struct {
	mu      sync.Mutex
	scripts map[string][]int
	got     map[string][]receivedNotification
}

type receivedNotification struct {
	idempotencyKey string
	body           tools.Delivery
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var d tools.Delivery
	if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got[d.ScheduleName] = append(rc.got[d.ScheduleName], receivedNotification{r.Header.Get("Idempotency-Key"), d})
	script := rc.scripts[d.ScheduleName]
	w.WriteHeader(script[min(len(rc.got[d.ScheduleName]), len(script))-1])
}

func (rc *receiver) received(name string) []receivedNotification {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got[name])
}

// TestServeDelivers: with --notify-webhook, notify posts the report to the
// webhook, retried while the receiver fails and not once it refuses; an
// approved restricted operation goes to the simulator, which records it.
func TestServeDelivers(t *testing.T) {
	rc := &receiver{got: map[string][]receivedNotification{}, scripts: map[string][]int{
		"flaky receiver":    {http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusNoContent},
		"refusing receiver": {http.StatusUnprocessableEntity},
	}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	o := options(t)
	o.NotifyWebhook = hook.URL + "/hooks/s3cret"
	r := serve(t, o)
	assert.Equal(t, "webhook at "+hook.URL, r.Notify)
	assert.Equal(t, filepath.Join(o.DataDir, "simulated-operations.jsonl"), r.Simulator)

	run := func(t *testing.T, name string, deliver string) map[string]any {
		t.Helper()
		status, created := call(t, r, "POST", "/api/v1/schedules", `{"name":"`+name+`","cron":"0 9 * * *","query":"AI industry news",`+
			`"deliver":[`+deliver+`],"approved_operations":["send_email"]}`)
		require.Equal(t, http.StatusCreated, status, "%v", created)
		id := created["id"].(string)
		status, trig := call(t, r, "POST", "/api/v1/schedules/"+id+"/trigger", "")
		require.Equal(t, http.StatusAccepted, status, "%v", trig)
		var got map[string]any
		agenttest.WaitFor(t, 60*time.Second, "the triggered run to finish", func(context.Context) (bool, error) {
			_, h := call(t, r, "GET", "/api/v1/schedules/"+id+"/runs", "")
			runs, _ := h["runs"].([]any)
			if len(runs) == 0 {
				return false, nil
			}
			got = runs[0].(map[string]any)
			return got["ended_at"] != nil, nil
		})
		assert.Equal(t, trig["run_id"], got["id"])
		return got
	}

	t.Run("notify retried until the webhook takes it", func(t *testing.T) {
		got := run(t, "flaky receiver", `"notify","send_email"`)
		assert.Equal(t, "completed", got["status"], "%v", got)
		sent := rc.received("flaky receiver")
		require.Len(t, sent, 3, "two failed attempts and the one that delivered")
		for _, n := range sent {
			assert.Equal(t, got["id"].(string)+"/notify", n.idempotencyKey, "one key for every attempt")
			assert.Equal(t, got["id"], n.body.RunID)
			assert.Equal(t, "notify", n.body.Operation)
			assert.NotEmpty(t, n.body.Report)
		}

		record, err := os.ReadFile(r.Simulator)
		require.NoError(t, err)
		var asked []tools.SimulatedRequest
		for line := range strings.Lines(string(record)) {
			var req tools.SimulatedRequest
			require.NoError(t, json.Unmarshal([]byte(line), &req), line)
			asked = append(asked, req)
		}
		require.Len(t, asked, 1)
		assert.Equal(t, "send_email", asked[0].Operation)
		assert.Equal(t, got["id"], asked[0].RunID)
		assert.Equal(t, "flaky receiver", asked[0].ScheduleName)
		assert.NotEmpty(t, asked[0].Report)
	})
	t.Run("a refusal is not retried and fails the run", func(t *testing.T) {
		got := run(t, "refusing receiver", `"notify"`)
		assert.Equal(t, "failed", got["status"], "%v", got)
		assert.Contains(t, got["error"], "HTTP 422")
		assert.Contains(t, got["error"], hook.URL)
		assert.NotContains(t, got["error"], "s3cret", "the webhook's path may be a secret")
		assert.Len(t, rc.received("refusing receiver"), 1)
	})
}
