package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/agent/agenttest"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store/storetest"
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
