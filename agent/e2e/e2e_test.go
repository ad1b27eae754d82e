// Package e2e tests the background agent across processes on a real dev
// server: a worker child process SIGKILLed in the middle of a run, and the
// run completing on another worker with its record closed exactly once.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/agent/agenttest"
	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/store/storetest"
	"github.com/durabench/durabench/agent/tools"
	"github.com/durabench/durabench/agent/workflows"
)

// envWorker holds the workerConfig of a worker child process.
const envWorker = "DURABENCH_AGENT_E2E_WORKER"

const workerReady = "AGENT_WORKER_READY"

// workerConfig tells a child process what to serve.
type workerConfig struct {
	Address   string             `json:"address"`
	TaskQueue string             `json:"task_queue"`
	Dialect   store.Dialect      `json:"dialect"`
	DSN       string             `json:"dsn"`
	LLMURL    string             `json:"llm_url"`
	Config    schedules.Config   `json:"config"`
	Settings  workflows.Settings `json:"settings"`
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(envWorker); cfg != "" {
		os.Exit(runWorker(cfg))
	}
	agenttest.Main(m)
}

// runWorker is the body of a worker child process: the same wiring as
// `durabench agent serve` has, without the API.
func runWorker(raw string) int {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "worker config:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, cfg.Dialect, cfg.DSN)
	if err != nil {
		fmt.Fprintln(os.Stderr, "store:", err)
		return 1
	}
	defer st.Close()
	c, err := client.DialContext(ctx, client.Options{HostPort: cfg.Address})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer c.Close()
	corpus, err := tools.DefaultCorpus()
	if err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		return 1
	}
	mgr := schedules.New(c, st, cfg.Config)
	w := worker.New(c, cfg.TaskQueue, worker.Options{StickyScheduleToStartTimeout: time.Second})
	workflows.Register(w, &workflows.Activities{
		Store: st, LLM: &llm.Client{BaseURL: cfg.LLMURL}, Corpus: corpus, HTTP: http.DefaultClient,
		Schedules: mgr, Reconciler: mgr, Settings: cfg.Settings,
	})
	if err := w.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	fmt.Println(workerReady)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	w.Stop()
	return 0
}

// childWorker is a worker child process.
type childWorker struct {
	cmd  *exec.Cmd
	done chan error
}

// startChildWorker re-executes the test binary as a worker and waits until
// it polls; it is killed at the end of the test if still running.
func startChildWorker(t *testing.T, cfg workerConfig) *childWorker {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"="+string(raw))
	logf, err := os.Create(filepath.Join(t.TempDir(), "worker.log"))
	require.NoError(t, err)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	cw := &childWorker{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == workerReady {
				close(ready)
			}
		}
		cw.done <- cmd.Wait()
		logf.Close()
	}()
	t.Cleanup(func() { cw.kill(t) })
	select {
	case <-ready:
	case err := <-cw.done:
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("worker exited before ready: %v\n%s", err, log)
	case <-time.After(60 * time.Second):
		t.Fatal("worker not ready after 60s")
	}
	return cw
}

// kill SIGKILLs the worker and waits until it is gone.
func (w *childWorker) kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill worker: %v", err)
		return
	}
	select {
	case <-w.done:
		w.done <- nil // later kills find it gone at once
	case <-time.After(30 * time.Second):
		t.Errorf("worker pid %d did not exit after SIGKILL", w.cmd.Process.Pid)
	}
}

// TestWorkerKilledMidRun SIGKILLs the worker while the run's first LLM
// call is in flight. Another worker process takes over once the call's
// heartbeat times out; the run completes and its record is closed once.
func TestWorkerKilledMidRun(t *testing.T) {
	for _, b := range []struct {
		name    string
		dialect store.Dialect
		dsn     func(t *testing.T) string
	}{
		{"sqlite", store.SQLite, func(t *testing.T) string { return filepath.Join(t.TempDir(), "agent.db") }},
		{"postgres", store.Postgres, func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			st, err := store.Open(ctx, b.dialect, dsn)
			require.NoError(t, err)
			defer st.Close()
			e := agenttest.New(t, st, agenttest.Options{NoWorker: true, Settings: func(s *workflows.Settings) {
				s.LLMAttempts = 5
				s.HeartbeatTimeout = 2 * time.Second
			}})
			cfg := workerConfig{Address: agenttest.Addr(t), TaskQueue: e.Config.TaskQueue, Dialect: b.dialect, DSN: dsn,
				LLMURL: e.LLM.URL(), Config: e.Config, Settings: e.Settings}
			scope := store.Scope{TenantID: "acme", UserID: "alice"}

			first := startChildWorker(t, cfg)
			v, err := e.Manager.Create(ctx, scope, schedules.Input{Name: "digest", Cron: "0 9 * * *", Timezone: "Asia/Tokyo", Query: "Daily digest about durable execution and worker crashes"})
			require.NoError(t, err)
			e.LLM.Hold()
			tr, err := e.Manager.Trigger(ctx, scope, v.ID)
			require.NoError(t, err)
			agenttest.WaitFor(t, 60*time.Second, "the run's first LLM call to be in flight", func(context.Context) (bool, error) { return e.LLM.Held() >= 1, nil })
			run, err := st.GetRun(ctx, scope, tr.RunID)
			require.NoError(t, err)
			require.Nil(t, run.EndedAt, "the run is under way")

			first.kill(t)
			e.LLM.Release()
			startChildWorker(t, cfg)

			run = e.WaitRunClosed(t, scope, tr.RunID, 2*time.Minute)
			assert.Equal(t, store.RunCompleted, run.Status, run.Error)
			assert.Greater(t, run.CostUSD, 0.0)
			assert.Greater(t, run.PromptTokens, int64(0))
			assert.GreaterOrEqual(t, e.LLM.Requests(), int64(3), "the interrupted call was made again")

			// The workflow finished, so nothing can close the record again.
			require.NoError(t, e.Client.GetWorkflow(ctx, tr.RunID, "").Get(ctx, nil))
			trail, err := st.AuditTrail(ctx, scope, v.ID)
			require.NoError(t, err)
			counts := map[string]int{}
			for _, ev := range trail {
				if ev.RunID == tr.RunID {
					counts[ev.Action]++
				}
			}
			assert.Equal(t, 1, counts["run.started"])
			assert.Equal(t, 1, counts["run.closed"], "the record is closed exactly once")
			calls, err := st.RunCalls(ctx, scope, tr.RunID)
			require.NoError(t, err)
			steps := map[string]int{}
			for _, c := range calls {
				steps[c.Name]++
				if c.Name == "decompose attempt 1 failed: no answer: the attempt timed out or its worker was lost" {
					assert.Equal(t, int64(e.Settings.DecomposeMaxTokens), c.CompletionTokens, "charged its worst case")
					assert.Greater(t, c.CostUSD, 0.0)
				}
			}
			assert.Equal(t, 1, steps["decompose attempt 1 failed: no answer: the attempt timed out or its worker was lost"],
				"the attempt lost with its worker is charged, from its last heartbeat: %+v", calls)
			assert.Equal(t, 1, steps["decompose"], "the retried call answered once")
			assert.Equal(t, 1, steps["synthesise"])
		})
	}
}
